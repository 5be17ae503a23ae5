"""Settings: built-in defaults, a TOML file, then ``XDSI_<SECTION>_<KEY>`` environment variables.

One frozen dataclass per section; the keys are those of ``ARCHITECTURE.md`` ("Configuration keys")
plus the few each issue adds (documented in ``config/gateway.toml``). Validation happens once, at
start-up: an unknown section or key, or a value of the wrong type, raises :class:`ConfigError` whose
message is one line naming the key (the CLI prints it and exits with code 2).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError

ENV_PREFIX = "XDSI_"
# Variables with the prefix that are not configuration: the test suite's and tools' own
# (XDSI_TEST_POSTGRES_URL ...). Every other XDSI_* variable must name a key (see _check_environ).
NOT_CONFIG_PREFIXES: tuple[str, ...] = ("XDSI_TEST_",)


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings:
    data_dir: str = "var"
    # The database every actor keeps its state in (registry, repository index, imaging index,
    # claims, process leases); empty = registry.database_url if set, else
    # sqlite:///<data_dir>/registry.sqlite (the embedded default, one process).
    database_url: str = ""
    lease_seconds: int = 30  # a process silent this long is gone: its pending work is taken over


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 32  # worker threads: requests served at once
    public_url: str = ""  # base URL written into served WSDLs; empty = from the request's Host
    request_timeout: int = 60  # seconds a silent client may hold a connection
    shutdown_timeout: int = 30  # seconds to finish requests in flight on SIGINT/SIGTERM
    workers: int = 1  # gateway processes sharing the listeners (serve --workers); >1: PostgreSQL


@dataclass(frozen=True, slots=True, kw_only=True)
class SoapSettings:
    max_envelope_bytes: int = 32 * 1024 * 1024  # the XML root part (MTOM) or whole body (plain)
    # Whole HTTP body, attachments included (2 GiB: see config/gateway.toml); 0 = no limit.
    max_request_bytes: int = 2 * 1024 * 1024 * 1024
    max_xml_depth: int = 256
    memory_threshold: int = 1024 * 1024  # attachments larger than this are spooled to disk


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSettings:
    level: str = "INFO"
    format: str = "text"  # "text" or "json"
    patient_ids: bool = True  # false: patient identifiers (CX) in log lines are masked


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrySettings:
    enabled: bool = True
    database_url: str = ""  # the registry's tables elsewhere; empty = gateway.database_url
    patient_id_domain: str = "1.3.6.1.4.1.21367.13.20.1000"
    codes_file: str = ""  # affinity-domain code set; empty = no strict code validation
    max_leafclass_results: int = 1000  # ITI-18 LeafClass answers above this: XDSTooManyResults
    home_community_id: str = ""  # urn:oid:... of this community; empty = no community checks


@dataclass(frozen=True, slots=True, kw_only=True)
class RepositorySettings:
    enabled: bool = True
    unique_id: str = "1.3.6.1.4.1.21367.13.40.100"
    registry_url: str = ""  # empty = the registry of this process
    storage_dir: str = "repository"  # documents/ and staging/ (may be shared, e.g. NFS)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardSettings:
    """One ``[[imaging_source.forward]]`` rule (gateway.notify.forward); empty filters match all."""

    destination: str = ""  # AET@host:port of the C-STORE SCP
    calling_ae_title: str = ""  # only instances sent by this AE (C-STORE); "" = any
    modality: str = ""  # only this Modality (0008,0060), e.g. "CT"; "" = any
    study_description: str = ""  # glob on Study Description (0008,1030), case-insensitive
    tls: bool = False  # DICOM over TLS with the node's [tls] client certificate


@dataclass(frozen=True, slots=True, kw_only=True)
class ImagingSourceSettings:
    enabled: bool = True
    unique_id: str = "1.3.6.1.4.1.21367.13.80.100"
    ae_title: str = "XDSI_SOURCE"
    dicom_port: int = 11112
    repository_url: str = ""  # empty = the repository of this process
    # ITI-57 endpoint of the registry of the manifests (IOCM deprecation); empty =
    # repository.registry_url when the repository is in this process, else this process's registry
    registry_url: str = ""
    study_idle_seconds: int = 30
    publish_parallel: int = 4  # manifests of different studies sent at once (RAD-68)
    host: str = "127.0.0.1"  # DICOM listener address
    retrieve_ae_title: str = ""  # Retrieve AE Title written in manifests; empty = ae_title
    source_id: str = ""  # SubmissionSet.sourceId (OID); empty = unique_id
    max_pdu: int = 1024 * 1024  # maximum PDU size received on DICOM associations
    max_associations: int = 64  # DICOM associations served at once by each process
    # per presentation context: "sender" = the sender's first supported syntax, or UIDs in order
    transfer_syntax_preference: str = "sender"
    # Codes of the manifest's DocumentEntry/SubmissionSet, as code^display name^coding scheme
    class_code: str = "IMAGES^Images^1.3.6.1.4.1.19376.1.2.6.1"
    type_code: str = "18748-4^Diagnostic imaging study^2.16.840.1.113883.6.1"
    confidentiality_code: str = "N^normal^2.16.840.1.113883.5.25"
    healthcare_facility_type_code: str = "22232009^Hospital^2.16.840.1.113883.6.96"
    practice_setting_code: str = (
        "309964003^Radiology department (environment)^2.16.840.1.113883.6.96"
    )
    content_type_code: str = "22232009^Hospital^2.16.840.1.113883.6.96"
    language_code: str = "en-US"
    accession_issuer: str = ""  # OID of accession numbers whose instances name no issuer
    storage_dir: str = "imaging"  # received instances (may be shared, e.g. NFS)
    # [[imaging_source.forward]]: instances received (C-STORE, STOW-RS) sent on by C-STORE
    forward: list[ForwardSettings] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hl7Settings:
    enabled: bool = True
    host: str = "127.0.0.1"
    mllp_port: int = 2575
    max_message_bytes: int = 1024 * 1024
    idle_timeout: int = 300  # seconds before a silent MLLP connection is closed


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerSettings:
    registry_url: str = ""  # ITI-18 endpoint; empty = this gateway's own registry
    parallel_requests: int = 4  # RAD-69 requests in flight at once
    batch_size: int = 50  # instances per RAD-69 request
    timeout: int = 120  # seconds per request
    retries: int = 3  # per missing or corrupt instance
    # repositoryUniqueId -> ITI-43 URL, Retrieve Location UID -> RAD-69 URL (this gateway's own
    # actors are known without configuration). Environment form: "uid=url,uid=url".
    repositories: dict[str, str] = field(default_factory=dict)
    imaging_sources: dict[str, str] = field(default_factory=dict)
    # ITI-18 and the retrieval of other communities' documents go here (XCA); empty = this
    # gateway's own /xca/ig when xca.enabled, else none (queries go to registry_url).
    initiating_gateway_url: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSettings:
    enabled: bool = False  # TLS on every listener and outbound connection (ITI-19)
    certificate: str = ""  # this node's certificate (PEM)
    private_key: str = ""  # its private key (PEM)
    ca_file: str = ""  # CA bundle of the affinity domain (PEM)
    require_client_cert: bool = True  # mutual authentication on listeners
    ciphers: str = ""  # TLS 1.2 cipher list (OpenSSL names); empty = BCP 195 (RFC 9325 §4.2)
    verify_hostname: bool = True  # outbound: the server's certificate must name the host dialled


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessSettings:
    rules_file: str = ""  # access rules (TOML); empty = any authenticated node may call anything


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditSettings:
    enabled: bool = False  # ITI-20 Record Audit Event
    destinations: str = ""  # comma-separated tls://host:6514, udp://host:514, file:PATH
    source_id: str = ""  # AuditSourceID; empty = xdsi-gateway@<hostname>
    enterprise_site_id: str = ""
    app_name: str = "xdsi-gateway"  # RFC 5424 APP-NAME
    queue_dir: str = "audit"  # durable queue of records not yet delivered
    retry_max_seconds: int = 60  # longest wait between delivery attempts


@dataclass(frozen=True, slots=True, kw_only=True)
class DicomWebSettings:
    enabled: bool = True  # QIDO-RS, WADO-RS, STOW-RS at /dicomweb (needs the imaging source)
    public_url: str = ""  # base URL written into RetrieveURL and the KOS; "" = request's Host
    max_results: int = 1000  # QIDO-RS matches per response at most (limit is capped to this)
    max_upload_bytes: int = 2 * 1024 * 1024 * 1024  # largest STOW-RS request body


@dataclass(frozen=True, slots=True, kw_only=True)
class CommunitySettings:
    """One remote community of ``[xca.communities."urn:oid:..."]`` (keyed by homeCommunityId)."""

    url: str = ""  # its Responding Gateway: ITI-38, ITI-39 and RAD-75
    patient_id_domain: str = ""  # its patient identifier domain (OID); "" = the same as ours


@dataclass(frozen=True, slots=True, kw_only=True)
class XcaSettings:
    enabled: bool = False  # serves /xca/rg and /xca/ig (XCA, XCA-I)
    home_community_id: str = ""  # urn:oid:...; "" = registry.home_community_id
    timeout: int = 30  # seconds allowed to each remote community
    communities: dict[str, CommunitySettings] = field(default_factory=dict)

    def home(self, settings: Settings) -> str:
        """This community's homeCommunityId: ``xca.home_community_id`` or the registry's."""
        return self.home_community_id or settings.registry.home_community_id


@dataclass(frozen=True, slots=True, kw_only=True)
class MhdSettings:
    enabled: bool = False  # IHE MHD (FHIR R4) at /fhir: ITI-65..68, ImagingStudy, Patient
    max_bundle_bytes: int = 64 * 1024 * 1024  # largest request body (ITI-65 Bundle) read
    page_size: int = 100  # search matches per page when the client gives no _count


@dataclass(frozen=True, slots=True, kw_only=True)
class UiSettings:
    enabled: bool = True  # the exchange browser at /ui and the metrics at /metrics
    accounts_file: str = ""  # operator accounts (ui add-user); "" = open on loopback only


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSettings:
    """One ``[[notify.webhook]]``: a CloudEvents POST per matching publication."""

    url: str = ""
    secret: str = ""  # HMAC-SHA256 key of the X-XDSI-Signature header; "" = unsigned
    # FindDocuments-style filter (gateway.notify.filters): key = "value[,value...]"
    filter: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifySettings:
    """The durable outbox (gateway.notify): webhooks, DSUB notifications, forwarding, XDR."""

    poll_seconds: int = 1  # how often a process looks for due outbox rows
    parallel: int = 4  # outbox rows sent at once per process
    retry_initial_seconds: int = 2  # first back-off after a failed delivery, then doubling
    retry_max_seconds: int = 300  # longest back-off
    webhook: list[WebhookSettings] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class XdrSettings:
    """The XDR Document Recipient at /xdr/recipient (ITI-41 / RAD-68 without registry)."""

    enabled: bool = True
    auto_import: bool = False  # import each received submission at once (as inbox accept)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentSettings:
    # IHE BPPC (gateway.consent): the affinity domain's privacy policies, policy OID ->
    # "opt-in" or "opt-out" (what a consent document naming it in eventCodeList means);
    # empty = consent is not enforced.
    policies: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """All settings of one gateway process."""

    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    soap: SoapSettings = field(default_factory=SoapSettings)
    log: LogSettings = field(default_factory=LogSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    repository: RepositorySettings = field(default_factory=RepositorySettings)
    imaging_source: ImagingSourceSettings = field(default_factory=ImagingSourceSettings)
    hl7: Hl7Settings = field(default_factory=Hl7Settings)
    consumer: ConsumerSettings = field(default_factory=ConsumerSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    access: AccessSettings = field(default_factory=AccessSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    dicomweb: DicomWebSettings = field(default_factory=DicomWebSettings)
    xca: XcaSettings = field(default_factory=XcaSettings)
    mhd: MhdSettings = field(default_factory=MhdSettings)
    ui: UiSettings = field(default_factory=UiSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    xdr: XdrSettings = field(default_factory=XdrSettings)
    consent: ConsentSettings = field(default_factory=ConsentSettings)

    @property
    def data_dir(self) -> Path:
        return Path(self.gateway.data_dir).expanduser().resolve()

    def path(self, value: str) -> Path:
        """Resolve a configured path: relative paths are relative to ``gateway.data_dir``."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else self.data_dir / candidate

    @property
    def gateway_database_url(self) -> str:
        """The gateway database (every actor's state): ``gateway.database_url``, else
        ``registry.database_url`` (configurations of earlier versions kept everything there),
        else the embedded SQLite file ``<data_dir>/registry.sqlite``."""
        return (
            self.gateway.database_url
            or self.registry.database_url
            or f"sqlite:///{self.data_dir / 'registry.sqlite'}"
        )

    @property
    def database_url(self) -> str:
        """The registry's SQLAlchemy URL: ``registry.database_url``, else the gateway database."""
        return self.registry.database_url or self.gateway_database_url

    @property
    def repository_storage_dir(self) -> Path:
        """Where the repository keeps documents (``repository.storage_dir``)."""
        return self.path(self.repository.storage_dir)

    @property
    def imaging_storage_dir(self) -> Path:
        """Where the imaging source keeps instances (``imaging_source.storage_dir``)."""
        return self.path(self.imaging_source.storage_dir)


def _is_oid(value: str) -> bool:
    parts = value.split(".")
    return len(parts) >= 2 and all(
        p.isdigit() and (p == "0" or not p.startswith("0")) for p in parts
    )


_CODE_KEYS = (
    "class_code",
    "type_code",
    "confidentiality_code",
    "healthcare_facility_type_code",
    "practice_setting_code",
    "content_type_code",
)

_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings)}


def _convert_bool(key: str, raw: Any, *, from_env: bool) -> bool:
    if isinstance(raw, bool):
        return raw
    if from_env and isinstance(raw, str) and raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if from_env and isinstance(raw, str) and raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{key}: expected true or false, got {raw!r}")


def _convert_int(key: str, raw: Any, *, from_env: bool) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if from_env and isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
    raise ConfigError(f"{key}: expected an integer, got {raw!r}")


def _convert_str(key: str, raw: Any, *, from_env: bool) -> str:
    if isinstance(raw, str):
        return raw
    raise ConfigError(f"{key}: expected a string, got {raw!r}")


def _convert(key: str, raw: Any, target: Any, *, from_env: bool) -> Any:
    """Check (TOML) or parse (environment string) one value against the key's declared type."""
    converters = {bool: _convert_bool, int: _convert_int, str: _convert_str}
    if target in converters:
        return converters[target](key, raw, from_env=from_env)
    if typing.get_origin(target) is list:
        return _convert_list_of_tables(key, raw, typing.get_args(target)[0], from_env=from_env)
    if typing.get_origin(target) is dict:
        value_type = typing.get_args(target)[1]
        if isinstance(value_type, type) and dataclasses.is_dataclass(value_type):
            return _convert_tables(key, raw, value_type, from_env=from_env)
        return _convert_table(key, raw, from_env=from_env)
    raise ConfigError(f"{key}: unsupported setting type {target!r}")  # pragma: no cover


def _convert_table(key: str, raw: Any, *, from_env: bool) -> dict[str, str]:
    """A table of strings: a TOML table, or ``id=value,id=value`` from the environment."""
    if from_env and isinstance(raw, str):
        table: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in raw.split(","))):
            name, sep, value = item.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise ConfigError(f"{key}: expected id=value[,id=value...], got {raw!r}")
            table[name.strip()] = value.strip()
        return table
    if not isinstance(raw, dict):
        raise ConfigError(f'{key}: expected a table of id = "value" entries, got {raw!r}')
    for name, value in raw.items():
        if not isinstance(value, str):
            raise ConfigError(f"{key}.{name}: expected a string, got {value!r}")
    return dict(raw)


def _convert_tables(key: str, raw: Any, cls: type, *, from_env: bool) -> dict[str, Any]:
    """A table of tables, one per id (``[xca.communities."urn:oid:1.2"]``); from the environment
    ``id=value|value,id=value``: the values of the entry's keys in declaration order, "|"
    between them (``urn:oid:1.2=https://b.example/xca/rg|1.3.6.1.4.1.99``)."""
    names = [f.name for f in dataclasses.fields(cls)]
    if from_env and isinstance(raw, str):
        given: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in raw.split(","))):
            name, sep, text = item.partition("=")
            parts = [v.strip() for v in text.split("|")]
            if not sep or not name.strip() or len(parts) > len(names):
                raise ConfigError(f"{key}: expected id={'|'.join(names)}[,id=...], got {raw!r}")
            given[name.strip()] = dict(zip(names, parts, strict=False))
        raw = given
    if not isinstance(raw, dict):
        raise ConfigError(f"{key}: expected a table of tables, one per id, got {raw!r}")
    hints = typing.get_type_hints(cls)
    built: dict[str, Any] = {}
    for name, entry in raw.items():
        where = f'{key}."{name}"'
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a table ({', '.join(names)}), got {entry!r}")
        unknown = sorted(set(entry) - set(names))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown configuration key")
        converted = {
            field_name: _convert(f"{where}.{field_name}", value, hints[field_name], from_env=False)
            for field_name, value in entry.items()
        }
        built[name] = cls(**converted)
    return built


def _convert_list_of_tables(key: str, raw: Any, cls: type, *, from_env: bool) -> list[Any]:
    """An array of tables (``[[notify.webhook]]``); from the environment a JSON array of
    objects (``XDSI_NOTIFY_WEBHOOK='[{"url": "https://..."}]'``)."""
    if from_env and isinstance(raw, str):
        import json

        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{key}: expected a JSON array of objects ({exc})") from exc
    if not isinstance(raw, list):
        raise ConfigError(f"{key}: expected an array of tables ([[{key}]]), got {raw!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    hints = typing.get_type_hints(cls)
    built = []
    for number, entry in enumerate(raw, 1):
        where = f"{key}[{number}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a table ({', '.join(names)}), got {entry!r}")
        unknown = sorted(set(entry) - set(names))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown configuration key")
        built.append(
            cls(
                **{
                    name: _convert(f"{where}.{name}", value, hints[name], from_env=False)
                    for name, value in entry.items()
                }
            )
        )
    return built


def _check_values(settings: Settings) -> None:
    """Range checks that a type alone does not express."""
    ports = {
        "http.port": settings.http.port,
        "imaging_source.dicom_port": settings.imaging_source.dicom_port,
        "hl7.mllp_port": settings.hl7.mllp_port,
    }
    for key, port in ports.items():
        if not 0 <= port <= 65535:
            raise ConfigError(f"{key}: port must be between 0 and 65535, got {port}")
    positive = {
        "http.threads": settings.http.threads,
        "http.workers": settings.http.workers,
        "soap.max_envelope_bytes": settings.soap.max_envelope_bytes,
        "soap.max_xml_depth": settings.soap.max_xml_depth,
        "hl7.max_message_bytes": settings.hl7.max_message_bytes,
        "hl7.idle_timeout": settings.hl7.idle_timeout,
        "registry.max_leafclass_results": settings.registry.max_leafclass_results,
        "consumer.parallel_requests": settings.consumer.parallel_requests,
        "consumer.batch_size": settings.consumer.batch_size,
        "consumer.timeout": settings.consumer.timeout,
        "imaging_source.study_idle_seconds": settings.imaging_source.study_idle_seconds,
        "imaging_source.publish_parallel": settings.imaging_source.publish_parallel,
        "imaging_source.max_pdu": settings.imaging_source.max_pdu,
        "imaging_source.max_associations": settings.imaging_source.max_associations,
        "audit.retry_max_seconds": settings.audit.retry_max_seconds,
        "dicomweb.max_results": settings.dicomweb.max_results,
        "dicomweb.max_upload_bytes": settings.dicomweb.max_upload_bytes,
        "xca.timeout": settings.xca.timeout,
        "mhd.max_bundle_bytes": settings.mhd.max_bundle_bytes,
        "mhd.page_size": settings.mhd.page_size,
        "gateway.lease_seconds": settings.gateway.lease_seconds,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key}: must be greater than 0, got {value}")
    if settings.soap.max_request_bytes < 0:
        raise ConfigError(
            f"soap.max_request_bytes: must be 0 (no limit) or more, got "
            f"{settings.soap.max_request_bytes}"
        )
    if settings.log.level.upper() not in _LOG_LEVELS:
        raise ConfigError(
            f"log.level: expected one of {sorted(_LOG_LEVELS)}, got {settings.log.level!r}"
        )
    if settings.log.format not in {"text", "json"}:
        raise ConfigError(f"log.format: expected 'text' or 'json', got {settings.log.format!r}")
    for key in _CODE_KEYS:
        value = getattr(settings.imaging_source, key)
        parts = value.split("^")
        if len(parts) != 3 or not parts[0] or not parts[2]:
            raise ConfigError(
                f"imaging_source.{key}: expected code^display name^coding scheme, got {value!r}"
            )
    home = settings.registry.home_community_id
    if home and not _is_home(home):
        raise ConfigError(f"registry.home_community_id: expected urn:oid:<OID>, got {home!r}")
    ae = settings.imaging_source.ae_title
    if not 0 < len(ae) <= 16 or "\\" in ae:
        raise ConfigError(f"imaging_source.ae_title: 1 to 16 characters without '\\', got {ae!r}")
    _check_security(settings)
    _check_syntax_preference(settings.imaging_source.transfer_syntax_preference)
    _check_xca(settings)
    _check_notify(settings)
    _check_consent(settings)


_DESTINATION = re.compile(r"^[^@\\]{1,16}@[^:@]+:\d{1,5}$")


def _check_notify(settings: Settings) -> None:
    """[[imaging_source.forward]] destinations, [[notify.webhook]] URLs, outbox timings."""
    for number, rule in enumerate(settings.imaging_source.forward, 1):
        if not _DESTINATION.match(rule.destination):
            raise ConfigError(
                f"imaging_source.forward[{number}].destination: expected AET@host:port, got "
                f"{rule.destination!r}"
            )
    for number, hook in enumerate(settings.notify.webhook, 1):
        if not hook.url.startswith(("http://", "https://")):
            raise ConfigError(
                f"notify.webhook[{number}].url: expected an http(s) URL, got {hook.url!r}"
            )
    n = settings.notify
    if n.poll_seconds < 1 or n.parallel < 1 or n.retry_initial_seconds < 1:
        raise ConfigError("notify.poll_seconds, parallel and retry_initial_seconds: at least 1")
    if n.retry_max_seconds < n.retry_initial_seconds:
        raise ConfigError("notify.retry_max_seconds: at least notify.retry_initial_seconds")


def _check_consent(settings: Settings) -> None:
    """``[consent] policies``: OIDs, each "opt-in" or "opt-out" (IHE BPPC, ITI TF-1 §19)."""
    for oid, effect in settings.consent.policies.items():
        if not _is_oid(oid):
            raise ConfigError(f'consent.policies."{oid}": the key must be a policy OID')
        if effect not in {"opt-in", "opt-out"}:
            raise ConfigError(
                f'consent.policies."{oid}": expected "opt-in" or "opt-out", got {effect!r}'
            )


def _check_syntax_preference(value: str) -> None:
    """``sender`` or transfer syntax UIDs, comma-separated (which ones the DICOM listener
    accepts is checked when it is built)."""
    items = [item.strip() for item in value.split(",")]
    if value.strip().lower() != "sender" and not all(_is_oid(item) for item in items):
        raise ConfigError(
            "imaging_source.transfer_syntax_preference: expected 'sender' or transfer syntax "
            f"UIDs, comma-separated, got {value!r}"
        )


def _check_xca(settings: Settings) -> None:
    """``[xca]``: a homeCommunityId when enabled, urn:oid: ids, a URL per community."""
    xca = settings.xca
    if xca.home_community_id and not _is_home(xca.home_community_id):
        raise ConfigError(
            f"xca.home_community_id: expected urn:oid:<OID>, got {xca.home_community_id!r}"
        )
    home = xca.home(settings)
    if xca.enabled and not home:
        raise ConfigError(
            "xca.home_community_id: required when xca.enabled is true (or set "
            "registry.home_community_id)"
        )
    for name, community in xca.communities.items():
        where = f'xca.communities."{name}"'
        if not _is_home(name):
            raise ConfigError(
                f"{where}: the table name must be urn:oid:<OID>, the community's homeCommunityId"
            )
        if name == home:
            raise ConfigError(f"{where}: is this community's own homeCommunityId")
        if not community.url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{where}.url: expected the http(s) URL of its responding gateway, "
                f"got {community.url!r}"
            )
        domain = community.patient_id_domain
        if domain and not _is_oid(domain):
            raise ConfigError(f"{where}.patient_id_domain: expected an OID, got {domain!r}")


def _is_home(value: str) -> bool:
    return value.startswith("urn:oid:") and _is_oid(value[8:])


def _check_security(settings: Settings) -> None:
    """TLS files exist when TLS is on; audit has a destination when on; named files exist."""
    tls = settings.tls
    if tls.enabled:
        for key in ("certificate", "private_key", "ca_file"):
            value = getattr(tls, key)
            if not value:
                raise ConfigError(f"tls.{key}: required when tls.enabled is true")
            if not settings.path(value).is_file():
                raise ConfigError(f"tls.{key}: file {str(settings.path(value))!r} does not exist")
    rules = settings.access.rules_file
    if rules and not settings.path(rules).is_file():
        raise ConfigError(f"access.rules_file: file {str(settings.path(rules))!r} does not exist")
    audit = settings.audit
    if audit.enabled:
        urls = [u.strip() for u in audit.destinations.split(",") if u.strip()]
        if not urls:
            raise ConfigError("audit.destinations: required when audit.enabled is true")
        for url in urls:
            if url.startswith("tls://") and not tls.enabled:
                raise ConfigError(f"audit.destinations: {url!r} needs tls.enabled = true")
            if not url.startswith(("tls://", "udp://", "file:")):
                raise ConfigError(
                    f"audit.destinations: expected tls://host:port, udp://host:port or "
                    f"file:PATH, got {url!r}"
                )


def _read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration file ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc


def _build_section(
    section: str, cls: type, given: dict[str, Any], environ: Mapping[str, str]
) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in given:
        if key not in known:
            hint = _did_you_mean(f"{section}.{key}", [f"{section}.{k}" for k in sorted(known)])
            raise ConfigError(f"{section}.{key}: unknown configuration key{hint}")
    values: dict[str, Any] = {}
    for key in known:
        dotted = f"{section}.{key}"
        env_name = f"{ENV_PREFIX}{section}_{key}".upper()
        if env_name in environ:
            values[key] = _convert(dotted, environ[env_name], hints[key], from_env=True)
        elif key in given:
            values[key] = _convert(dotted, given[key], hints[key], from_env=False)
    return cls(**values)


def _did_you_mean(name: str, candidates: list[str]) -> str:
    """`` (did you mean X?)`` for the closest candidate, or "" when none is close."""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def environment_names(sections: Mapping[str, type] | None = None) -> dict[str, str]:
    """Every configuration environment variable: ``{"XDSI_HTTP_PORT": "http.port", ...}``."""
    names = {}
    for section, cls in (sections or _section_types()).items():
        for f in dataclasses.fields(cls):
            names[f"{ENV_PREFIX}{section}_{f.name}".upper()] = f"{section}.{f.name}"
    return names


def _check_environ(environ: Mapping[str, str], sections: Mapping[str, type]) -> None:
    """An ``XDSI_*`` variable that names no key is a typo, refused like one in the file.

    The rule: every variable starting with ``XDSI_`` is configuration and must be
    ``XDSI_<SECTION>_<KEY>`` of a known key, except those starting with one of
    :data:`NOT_CONFIG_PREFIXES` (``XDSI_TEST_``: the test suite's own settings).
    """
    known = environment_names(sections)
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name.startswith(NOT_CONFIG_PREFIXES):
            continue
        if name not in known:
            hint = _did_you_mean(name, sorted(known))
            raise ConfigError(
                f"{name}: environment variable names no configuration key{hint}; unset or "
                "rename it (XDSI_<SECTION>_<KEY>; every key is in config/gateway.toml)"
            )


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings: defaults, then the TOML file (if any), then environment overrides.

    Raises:
        ConfigError: unreadable file, unknown section or key (in the file or an ``XDSI_*``
            environment variable), wrong type or out-of-range value.
    """
    environ = os.environ if environ is None else environ
    document = _read_toml(path) if path is not None else {}
    sections = _section_types()
    _check_environ(environ, sections)
    for name, value in document.items():
        if name not in sections:
            hint = _did_you_mean(name, sorted(sections))
            raise ConfigError(f"{name}: unknown configuration section{hint}")
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a [{name}] table")
    built = {
        section: _build_section(section, cls, document.get(section, {}), environ)
        for section, cls in sections.items()
    }
    settings = Settings(**built)
    _check_values(settings)
    return settings


def settings_from_dict(document: Mapping[str, Any]) -> Settings:
    """Settings from :func:`settings_as_dict`'s form, checked like a TOML file, no environment.

    ``serve --workers N`` hands its effective settings to each worker this way, so that every
    worker, restarted ones included, runs exactly the supervisor's configuration.
    Raises:
        ConfigError: as :func:`load_settings`.
    """
    sections = _section_types()
    for name in document:
        if name not in sections:
            raise ConfigError(f"{name}: unknown configuration section")
    settings = Settings(
        **{
            section: _build_section(section, cls, dict(document.get(section, {})), {})
            for section, cls in sections.items()
        }
    )
    _check_values(settings)
    return settings


def settings_as_dict(settings: Settings) -> dict[str, dict[str, Any]]:
    """Settings as nested plain data (for ``xdsi-gateway config`` and logs)."""
    return {
        f.name: dataclasses.asdict(getattr(settings, f.name)) for f in dataclasses.fields(settings)
    }
