"""Access rules: which authenticated node may call which transaction.

A rules file (TOML, ``access.rules_file``) maps client certificates, by subject DN or by
subjectAltName, to the transactions they may call::

    [access]
    default = "deny"       # authenticated peers no rule names: "deny" (default) or "allow"
    anonymous = []         # transactions callable without a client certificate (default: none)

    [[access.rule]]
    name = "hospitals"
    subject = ["CN=hospital-a,O=XDS-I Demo Affinity Domain",
               "CN=hospital-b,O=XDS-I Demo Affinity Domain"]
    transactions = ["ITI-41", "ITI-18", "ITI-43", "RAD-69", "C-STORE"]

    [[access.rule]]
    name = "region repository"
    san = "DNS:region.example"
    transactions = ["ITI-42"]

    [[access.rule]]
    name = "hospital A"
    subject = "CN=hospital-a,O=XDS-I Demo Affinity Domain"
    transactions = ["*"]
    organization = "hospital-a"             # patient consent (gateway.consent): who the peer is
    source_ids = ["1.3.6.1.4.1.21367.13.80.100"]  # SubmissionSet.sourceIds it publishes with

A peer may call a transaction when some rule that matches the peer lists it (or ``"*"``). A peer
that matches rules none of which lists the transaction is refused; a peer no rule matches gets
``default``. ``subject`` and ``san`` take a string or a list; ``subject = "*"`` matches every
authenticated peer. DNs compare attribute by attribute, in any order, ignoring case and repeated
spaces; SANs compare case-insensitively (``DNS:``, ``IP:``, ``URI:``, ``email:``).

Transaction names: ITI-8, ITI-18, ITI-41, ITI-42, ITI-43, RAD-69, ITI-38, ITI-39, RAD-75 (the
cross-community transactions a Responding Gateway answers at ``/xca/rg``; a local consumer calls
the Initiating Gateway at ``/xca/ig`` with ITI-18, ITI-43 and RAD-69), C-STORE (DICOM storage
into the Imaging Document Source), C-ECHO; at ``/fhir`` ITI-65, ITI-66, ITI-67 (also
ImagingStudy), ITI-68 and ITI-78 (Patient); at ``/dicomweb`` QIDO-RS, WADO-RS and STOW-RS; ``UI``
(every route of ``/ui``) and ``METRICS`` (``/metrics``); ITI-57 (Update Document Set) and ITI-62
(Remove Metadata) at ``/xds/registry``, ITI-86 (Remove Documents) at ``/xds/repository``: grant
them to Document Administrators only.
``RAD-68`` is accepted as a synonym of ITI-41: on the wire the repository receives a Provide and
Register Document Set-b (RAD TF-3 §4.68.4.1).

Organizations (IHE BPPC, ITI TF-1 §19; ``gateway.consent``): a rule may name the
``organization`` of the peers it matches and the ``source_ids`` (SubmissionSet.sourceId, ITI TF-3
§4.2.3.3.9) its document sources publish with. :meth:`AccessRules.organization` gives a peer's
organization (the first matching rule that names one), :meth:`AccessRules.source_organizations`
which organization published under which sourceId. A peer no rule gives an organization to is of
no organization: with an opt-out consent in force it sees only what every outsider sees.

Standard: ITI TF-1 §9.4 (ATNA: "Access control ... is the responsibility of each secure node"),
ITI TF-2 §3.19.6.1 (the certificate identifies the node).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import ConfigError
from gateway.security.peer import PeerIdentity, dn_key, parse_dn

KNOWN_TRANSACTIONS = (
    "ITI-8",
    "ITI-18",
    "ITI-41",
    "ITI-42",
    "ITI-43",
    "RAD-69",
    "ITI-38",
    "ITI-39",
    "RAD-75",
    "C-STORE",
    "C-ECHO",
    # MHD at /fhir (gateway.fhir): ITI-65 Provide Document Bundle, ITI-66 Find Document Lists,
    # ITI-67 Find Document References (also ImagingStudy searches), ITI-68 Retrieve Document,
    # ITI-78 (PDQm) for the Patient reads.
    "ITI-65",
    "ITI-66",
    "ITI-67",
    "ITI-68",
    "ITI-78",
    # DICOMweb at /dicomweb (gateway.dicomweb): search, retrieve (also XDS-I.b RAD-107), store.
    "QIDO-RS",
    "WADO-RS",
    "STOW-RS",
    # The exchange browser at /ui and the Prometheus metrics at /metrics (gateway.ui).
    "UI",
    "METRICS",
    # Registry operations (gateway.registry.update, gateway.registry.remove) and the
    # repository's ITI-86 (gateway.repository.remove): Metadata Update, RMD.
    "ITI-57",
    "ITI-62",
    "ITI-86",
)
_SYNONYMS = {"RAD-68": "ITI-41"}
_SAN_TYPES = {"dns": "DNS", "ip": "IP", "uri": "URI", "email": "email"}
_RULE_KEYS = {"name", "subject", "san", "transactions", "organization", "source_ids"}
_ACCESS_KEYS = {"default", "anonymous", "rule"}


def canonical_transaction(name: str) -> str:
    """The name rules use for a transaction (upper case; RAD-68 becomes ITI-41)."""
    upper = name.strip().upper()
    return _SYNONYMS.get(upper, upper)


def _transactions(where: str, raw: Any) -> frozenset[str]:
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{where}: expected a list of transaction names")
    names = {canonical_transaction(v) for v in values}
    unknown = sorted(n for n in names if n != "*" and n not in KNOWN_TRANSACTIONS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown transaction {', '.join(unknown)} "
            f"(known: {', '.join(KNOWN_TRANSACTIONS)}, or '*')"
        )
    return frozenset(names)


def normalise_san(text: str) -> str:
    """``dns:Host.Example`` -> ``DNS:host.example`` (type canonical, value case-folded)."""
    kind, sep, value = text.strip().partition(":")
    if not sep or kind.strip().lower() not in _SAN_TYPES:
        raise ValueError(f"subjectAltName {text!r}: expected DNS:, IP:, URI: or email: prefix")
    return f"{_SAN_TYPES[kind.strip().lower()]}:{value.strip().casefold()}"


def _strings(where: str, raw: Any) -> list[str]:
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{where}: expected a string or a list of strings")
    return values


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessRule:
    """One rule: the peers it names and the transactions they may call."""

    name: str
    subjects: frozenset[tuple[tuple[str, str], ...]] = frozenset()
    sans: frozenset[str] = frozenset()
    any_peer: bool = False
    transactions: frozenset[str] = frozenset()
    organization: str | None = None  # patient consent: the organization of the peers matched
    source_ids: frozenset[str] = frozenset()  # SubmissionSet.sourceIds of that organization

    def matches(self, peer: PeerIdentity) -> bool:
        """Does this rule name ``peer`` (by subject DN or by one of its SANs)?"""
        if self.any_peer or dn_key(peer.rdns) in self.subjects:
            return True
        for san in peer.sans:
            try:
                if normalise_san(san) in self.sans:
                    return True
            except ValueError:
                continue
        return False

    def permits(self, transaction: str) -> bool:
        return "*" in self.transactions or canonical_transaction(transaction) in self.transactions


def _rule(index: int, raw: Any) -> AccessRule:
    where = f"access.rule[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a table")
    for key in raw:
        if key not in _RULE_KEYS:
            raise ConfigError(f"{where}.{key}: unknown key (use {', '.join(sorted(_RULE_KEYS))})")
    if "transactions" not in raw:
        raise ConfigError(f"{where}: 'transactions' is required")
    subjects = _strings(f"{where}.subject", raw.get("subject", []))
    sans = _strings(f"{where}.san", raw.get("san", []))
    if not subjects and not sans:
        raise ConfigError(f"{where}: give 'subject' or 'san' to say whom the rule names")
    try:
        subject_keys = frozenset(dn_key(parse_dn(s)) for s in subjects if s.strip() != "*")
        san_keys = frozenset(normalise_san(s) for s in sans)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    name = raw.get("name", f"rule {index}")
    if not isinstance(name, str):
        raise ConfigError(f"{where}.name: expected a string")
    organization = raw.get("organization")
    if organization is not None and (not isinstance(organization, str) or not organization):
        raise ConfigError(f"{where}.organization: expected a non-empty string")
    source_ids = _strings(f"{where}.source_ids", raw.get("source_ids", []))
    if source_ids and organization is None:
        raise ConfigError(f"{where}.source_ids: only with 'organization' (whose sources they are)")
    return AccessRule(
        name=name,
        subjects=subject_keys,
        sans=san_keys,
        any_peer=any(s.strip() == "*" for s in subjects),
        transactions=_transactions(f"{where}.transactions", raw["transactions"]),
        organization=organization,
        source_ids=frozenset(s.strip() for s in source_ids),
    )


class AccessRules:
    """The access table of one gateway; :meth:`allowed` is asked once per call."""

    def __init__(
        self,
        rules: Iterable[AccessRule] = (),
        *,
        default_allow: bool = False,
        anonymous: Iterable[str] = (),
    ) -> None:
        self.rules = tuple(rules)
        self.default_allow = default_allow
        self.anonymous = frozenset(canonical_transaction(t) for t in anonymous)

    @classmethod
    def allow_all(cls) -> AccessRules:
        """No rules configured: every caller (with or without certificate) may call everything.

        The TLS layer still decides who gets in: with mutual authentication on, only nodes of
        the affinity domain reach a handler at all.
        """
        return cls(default_allow=True, anonymous=["*"])

    @classmethod
    def load(cls, source: str | os.PathLike[str] | Mapping[str, Any]) -> AccessRules:
        """Read rules from a TOML file path or from an already parsed mapping.

        The mapping may be the whole document (with an ``[access]`` table) or that table.
        Raises:
            ConfigError: unreadable file, unknown key, unknown transaction, malformed DN/SAN.
        """
        if isinstance(source, Mapping):
            document: Mapping[str, Any] = source
            origin = "access rules"
        else:
            origin = os.fspath(source)
            try:
                with open(origin, "rb") as handle:
                    document = tomllib.load(handle)
            except OSError as exc:
                raise ConfigError(f"{origin}: cannot read access rules ({exc.strerror})") from exc
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{origin}: not valid TOML ({exc})") from exc
        table = document.get("access", document)
        if not isinstance(table, Mapping):
            raise ConfigError(f"{origin}: expected an [access] table")
        return cls._from_table(table)

    @classmethod
    def _from_table(cls, table: Mapping[str, Any]) -> AccessRules:
        for key in table:
            if key not in _ACCESS_KEYS:
                raise ConfigError(f"access.{key}: unknown key (use default, anonymous, rule)")
        default = table.get("default", "deny")
        if default not in {"allow", "deny"}:
            raise ConfigError(f"access.default: expected 'allow' or 'deny', got {default!r}")
        raw_rules = table.get("rule", [])
        if not isinstance(raw_rules, list):
            raise ConfigError("access.rule: expected [[access.rule]] tables")
        anonymous = _transactions("access.anonymous", table.get("anonymous", []))
        return cls(
            (_rule(i, raw) for i, raw in enumerate(raw_rules)),
            default_allow=default == "allow",
            anonymous=anonymous,
        )

    def allowed(self, peer: PeerIdentity | None, transaction_name: str) -> bool:
        """May ``peer`` (``None``: no client certificate) call ``transaction_name``?"""
        name = canonical_transaction(transaction_name)
        if peer is None:
            return "*" in self.anonymous or name in self.anonymous
        matching = [rule for rule in self.rules if rule.matches(peer)]
        if not matching:
            return self.default_allow
        return any(rule.permits(name) for rule in matching)

    def organization(self, peer: PeerIdentity | None) -> str | None:
        """The organization of ``peer`` (IHE BPPC consent): that of the first rule matching it
        that names one; None without a certificate or when no such rule matches."""
        if peer is None:
            return None
        for rule in self.rules:
            if rule.organization is not None and rule.matches(peer):
                return rule.organization
        return None

    def source_organizations(self) -> dict[str, str]:
        """SubmissionSet.sourceId -> the organization that publishes with it."""
        found: dict[str, str] = {}
        for rule in self.rules:
            if rule.organization is not None:
                for source_id in rule.source_ids:
                    found.setdefault(source_id, rule.organization)
        return found

    def explain(self, peer: PeerIdentity | None, transaction_name: str) -> str:
        """One line saying why a call is refused or allowed (for logs and audit records)."""
        verdict = "allowed" if self.allowed(peer, transaction_name) else "refused"
        if peer is None:
            return f"{transaction_name} {verdict} for a caller without a client certificate"
        names = [rule.name for rule in self.rules if rule.matches(peer)]
        via = f"rules {', '.join(names)}" if names else "the default policy"
        return f"{transaction_name} {verdict} for {peer.subject} by {via}"
