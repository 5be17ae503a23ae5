"""Who is on the other end of a TLS connection: the authenticated peer's subject DN and SANs.

Every listener reads the peer the same way, from the certificate the TLS handshake verified:
HTTPS (cheroot puts the PEM in the WSGI environ as ``SSL_CLIENT_CERT``), MLLP (asyncio's
``ssl_object``), DICOM (the association's ``SSLSocket``), or any ``getpeercert()`` dict. Access
rules (:mod:`gateway.security.access`) and audit records use the result.

Distinguished names are written as RFC 4514 strings (most specific RDN first, e.g.
``CN=hospital-a,O=XDS-I Demo Affinity Domain``); SANs as ``DNS:host``, ``IP:1.2.3.4``,
``URI:urn:...``, ``email:a@b`` (the OpenSSL spellings). Standard: RFC 5280 §4.1.2.6 (subject),
§4.2.1.6 (subjectAltName); RFC 4514 (DN strings).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

# Short names for the attribute types RFC 4514 §3 lists, plus the usual extras; matching folds
# long names (``commonName``) and OIDs onto these.
_SHORT_NAMES = {
    "commonname": "CN",
    "cn": "CN",
    "organizationname": "O",
    "o": "O",
    "organizationalunitname": "OU",
    "ou": "OU",
    "countryname": "C",
    "c": "C",
    "localityname": "L",
    "l": "L",
    "stateorprovincename": "ST",
    "st": "ST",
    "streetaddress": "STREET",
    "street": "STREET",
    "domaincomponent": "DC",
    "dc": "DC",
    "userid": "UID",
    "uid": "UID",
    "emailaddress": "EMAILADDRESS",
    "serialnumber": "SERIALNUMBER",
    "2.5.4.3": "CN",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.6": "C",
    "1.2.840.113549.1.9.1": "EMAILADDRESS",
}


def attribute_name(name: str) -> str:
    """The canonical (short, upper-case) name of a DN attribute type."""
    return _SHORT_NAMES.get(name.strip().lower(), name.strip().upper())


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerIdentity:
    """The identity a peer proved with its certificate during the TLS handshake."""

    subject: str  # RFC 4514, most specific RDN first
    rdns: tuple[tuple[str, str], ...]  # (attribute, value), certificate order (C/O first)
    sans: tuple[str, ...] = ()  # "DNS:host", "IP:addr", "URI:...", "email:..."
    issuer: str = ""

    @property
    def common_name(self) -> str | None:
        """The subject's (last) CN, if any."""
        names = [value for attr, value in self.rdns if attr == "CN"]
        return names[-1] if names else None

    def __str__(self) -> str:
        return self.subject


def _rfc4514(rdns: Iterable[tuple[str, str]]) -> str:
    def escape(value: str) -> str:
        out = value.replace("\\", "\\\\")
        for char in ',+"<>;=':
            out = out.replace(char, "\\" + char)
        if out.startswith((" ", "#")):
            out = "\\" + out
        if out.endswith(" "):
            out = out[:-1] + "\\ "
        return out

    return ",".join(f"{attr}={escape(value)}" for attr, value in reversed(list(rdns)))


def _name_pairs(name: x509.Name) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for attribute in name:
        key = attribute_name(attribute.rfc4514_attribute_name)
        if attribute.oid == NameOID.EMAIL_ADDRESS:
            key = "EMAILADDRESS"
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.hex()
        pairs.append((key, value))
    return tuple(pairs)


def _san_strings(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    sans: list[str] = []
    for general in ext.value:
        if isinstance(general, x509.DNSName):
            sans.append(f"DNS:{general.value}")
        elif isinstance(general, x509.IPAddress):
            sans.append(f"IP:{general.value}")
        elif isinstance(general, x509.UniformResourceIdentifier):
            sans.append(f"URI:{general.value}")
        elif isinstance(general, x509.RFC822Name):
            sans.append(f"email:{general.value}")
    return tuple(sans)


def peer_from_certificate(cert: x509.Certificate) -> PeerIdentity:
    """The identity named by a parsed certificate."""
    rdns = _name_pairs(cert.subject)
    return PeerIdentity(
        subject=_rfc4514(rdns),
        rdns=rdns,
        sans=_san_strings(cert),
        issuer=_rfc4514(_name_pairs(cert.issuer)),
    )


def peer_from_der(der: bytes) -> PeerIdentity:
    """The identity in a DER certificate (``SSLSocket.getpeercert(binary_form=True)``)."""
    return peer_from_certificate(x509.load_der_x509_certificate(der))


def peer_from_pem(pem: str | bytes) -> PeerIdentity:
    """The identity in a PEM certificate (cheroot's ``SSL_CLIENT_CERT``)."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    return peer_from_certificate(x509.load_pem_x509_certificate(data))


def peer_from_getpeercert(info: Mapping[str, Any]) -> PeerIdentity | None:
    """The identity in a ``getpeercert()`` dict (``None`` for an empty dict: no certificate)."""
    if not info or "subject" not in info:
        return None
    rdns: list[tuple[str, str]] = []
    for rdn in info.get("subject", ()):
        for attr, value in rdn:
            rdns.append((attribute_name(attr), value))
    issuer: list[tuple[str, str]] = []
    for rdn in info.get("issuer", ()):
        for attr, value in rdn:
            issuer.append((attribute_name(attr), value))
    kinds = {"DNS": "DNS", "IP Address": "IP", "URI": "URI", "email": "email"}
    sans = tuple(
        f"{kinds[kind]}:{value.strip()}"
        for kind, value in info.get("subjectAltName", ())
        if kind in kinds
    )
    return PeerIdentity(
        subject=_rfc4514(rdns), rdns=tuple(rdns), sans=sans, issuer=_rfc4514(issuer)
    )


def peer_from_ssl(ssl_socket: ssl.SSLSocket | ssl.SSLObject | None) -> PeerIdentity | None:
    """The verified peer of an SSLSocket (DICOM association) or SSLObject (asyncio MLLP).

    ``None`` when the connection is not TLS or the peer sent no certificate. Use it after the
    handshake (for DICOM: in an ``EVT_REQUESTED`` handler, ``event.assoc.dul.socket.socket``).
    """
    if ssl_socket is None or not hasattr(ssl_socket, "getpeercert"):
        return None
    try:
        der = ssl_socket.getpeercert(binary_form=True)
    except (ValueError, OSError):  # handshake not done, or the socket is gone
        return None
    return peer_from_der(der) if der else None


def peer_from_wsgi_environ(environ: Mapping[str, Any]) -> PeerIdentity | None:
    """The verified client of an HTTPS request served by cheroot's builtin TLS adapter.

    cheroot sets ``SSL_CLIENT_CERT`` (PEM) only after OpenSSL verified the chain; without it
    (plain HTTP, or no client certificate) the peer is anonymous.
    """
    pem = environ.get("SSL_CLIENT_CERT")
    if not pem or environ.get("SSL_CLIENT_VERIFY", "SUCCESS") != "SUCCESS":
        return None
    return peer_from_pem(pem)


def parse_dn(text: str) -> tuple[tuple[str, str], ...]:
    """Split an RFC 4514 DN (or the comma-joined form cheroot writes) into (attribute, value).

    Escapes (``\\,``) are honoured; multi-valued RDNs (``+``) count as separate pairs. Pairs
    are returned in the order written.
    """
    pairs: list[tuple[str, str]] = []
    current, escaped = [], False
    parts: list[str] = []
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",+":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    for part in parts:
        if not part.strip():
            continue
        attr, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"not a distinguished name: {text!r}")
        pairs.append((attribute_name(attr), value.strip()))
    return tuple(pairs)


def dn_key(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """A comparison key for a DN: order-insensitive, case- and space-insensitive values."""
    return tuple(sorted((attr, " ".join(value.split()).casefold()) for attr, value in pairs))
