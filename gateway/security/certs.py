"""Demo certificates for a small affinity domain: one CA, and a certificate per node.

``xdsi-gateway certs init DIR`` writes, with the ``cryptography`` package::

    DIR/ca.pem            the domain CA (every node trusts it: tls.ca_file)
    DIR/ca.key            its private key (0600; keep it offline in real deployments)
    DIR/<node>.pem        node certificate: serverAuth + clientAuth, SANs for its hosts
    DIR/<node>.key        its private key (0600)

Nodes default to ``region``, ``hospital-a`` and ``hospital-b``. Each node certificate serves
both as the TLS server certificate of the node's listeners and as the client certificate of its
outbound connections (ITI-19 mutual authentication), hence both extended key usages.

Standard: RFC 5280 §4.2.1.3 (keyUsage), §4.2.1.6 (subjectAltName), §4.2.1.9 (basicConstraints),
§4.2.1.12 (extKeyUsage); ITI TF-2 §3.19.6 (node certificates); RFC 9325 §4.2 (key types).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_NODES = ("region", "hospital-a", "hospital-b")
DEFAULT_HOSTS = ("localhost", "127.0.0.1")
DEFAULT_ORGANIZATION = "XDS-I Demo Affinity Domain"
DEFAULT_DNS_SUFFIX = "example"  # RFC 2606: reserved for documentation and examples
CA_DAYS = 3650
NODE_DAYS = 825
_NODE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFiles:
    """A node's certificate and key files, and the names it is known by."""

    name: str
    certificate: Path
    private_key: Path
    subject: str  # RFC 4514
    sans: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainFiles:
    """Everything ``certs init`` wrote."""

    directory: Path
    ca_certificate: Path
    ca_private_key: Path
    ca_subject: str
    nodes: dict[str, NodeFiles] = field(default_factory=dict)


def _new_key(key_type: str) -> PrivateKey:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise ValueError(f"key type must be 'ec' or 'rsa', got {key_type!r}")


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a file only its owner may read or write (0600), replacing it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_key(path: Path, key: PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(path, pem)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(path, 0o644)


def _san_entries(node: str, hosts: Iterable[str], dns_suffix: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    wanted = [f"{node}.{dns_suffix}" if dns_suffix else node, *hosts]
    for host in dict.fromkeys(wanted):  # keep order, drop repeats
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _validity(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    # Back-dated a little so that peers with slightly slow clocks accept a fresh certificate.
    return now - datetime.timedelta(minutes=10), now + datetime.timedelta(days=days)


def _ca_certificate(key: PrivateKey, organization: str, days: int) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organization} CA"),
        ]
    )
    start, end = _validity(days)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _node_certificate(
    key: PrivateKey,
    *,
    subject: x509.Name,
    sans: list[x509.GeneralName],
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    days: int,
) -> x509.Certificate:
    start, end = _validity(days)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _san_text(names: Iterable[x509.GeneralName]) -> tuple[str, ...]:
    out: list[str] = []
    for general in names:
        prefix = "IP" if isinstance(general, x509.IPAddress) else "DNS"
        out.append(f"{prefix}:{general.value}")
    return tuple(out)


def _check_names(nodes: Sequence[str]) -> None:
    if not nodes:
        raise ValueError("at least one node name is needed")
    for node in nodes:
        if not _NODE_NAME.match(node) or node == "ca":
            raise ValueError(
                f"node name {node!r}: use lower-case letters, digits and '-' (not 'ca')"
            )
    if len(set(nodes)) != len(nodes):
        raise ValueError("node names must be unique")


def init_domain(
    directory: str | os.PathLike[str],
    *,
    nodes: Sequence[str] = DEFAULT_NODES,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    organization: str = DEFAULT_ORGANIZATION,
    dns_suffix: str = DEFAULT_DNS_SUFFIX,
    key_type: str = "ec",
    days: int = NODE_DAYS,
    force: bool = False,
) -> DomainFiles:
    """Create a demo CA and one certificate per node in ``directory`` (created 0700).

    Node subjects are ``CN=<node>,O=<organization>``; SANs are ``DNS:<node>.<dns_suffix>`` and
    every entry of ``hosts`` (IP or DNS). Keys are ECDSA P-256 (``key_type="ec"``) or RSA 3072.
    Standard: RFC 5280 §4.2.1; ITI TF-2 §3.19.6.
    Raises:
        FileExistsError: a file would be overwritten and ``force`` is false.
        ValueError: a node name is unusable, or the key type unknown.
    """
    _check_names(nodes)
    root = Path(directory)
    targets = [root / "ca.pem", root / "ca.key"]
    targets += [root / f"{n}{suffix}" for n in nodes for suffix in (".pem", ".key")]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        raise FileExistsError(f"would overwrite {', '.join(existing)} (use --force)")
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key = _new_key(key_type)
    ca_cert = _ca_certificate(ca_key, organization, max(days, CA_DAYS))
    _write_key(root / "ca.key", ca_key)
    _write_cert(root / "ca.pem", ca_cert)
    result = DomainFiles(
        directory=root,
        ca_certificate=root / "ca.pem",
        ca_private_key=root / "ca.key",
        ca_subject=ca_cert.subject.rfc4514_string(),
    )
    for node in nodes:
        result.nodes[node] = _issue_node(
            root,
            node,
            organization=organization,
            sans=_san_entries(node, hosts, dns_suffix),
            ca=(ca_cert, ca_key),
            key_type=key_type,
            days=days,
        )
    return result


def _issue_node(
    root: Path,
    node: str,
    *,
    organization: str,
    sans: list[x509.GeneralName],
    ca: tuple[x509.Certificate, PrivateKey],
    key_type: str,
    days: int,
) -> NodeFiles:
    """Make, sign and write one node's key and certificate."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, node),
        ]
    )
    key = _new_key(key_type)
    cert = _node_certificate(
        key, subject=subject, sans=sans, ca_cert=ca[0], ca_key=ca[1], days=days
    )
    _write_key(root / f"{node}.key", key)
    _write_cert(root / f"{node}.pem", cert)
    return NodeFiles(
        name=node,
        certificate=root / f"{node}.pem",
        private_key=root / f"{node}.key",
        subject=subject.rfc4514_string(),
        sans=_san_text(sans),
    )


# -- command line ---------------------------------------------------------------------------------


def add_certs_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``init`` (and its options) under an ``xdsi-gateway certs`` parser."""
    actions = parser.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    init = actions.add_parser(
        "init",
        help="create a demo CA and node certificates for a small affinity domain",
        description="Create, in DIR, a demo certificate authority and one certificate per node "
        "(TLS server and client use, ITI-19), for trying the secure setup. Keys are written "
        "readable by their owner only. Not for production: use your domain's PKI there.",
    )
    init.add_argument("directory", metavar="DIR", type=Path)
    init.add_argument(
        "--nodes",
        default=",".join(DEFAULT_NODES),
        help="comma-separated node names (default: %(default)s)",
    )
    init.add_argument(
        "--host",
        dest="hosts",
        action="append",
        metavar="NAME_OR_IP",
        help="a host name or IP every node certificate names in its subjectAltName "
        f"(repeatable; default: {', '.join(DEFAULT_HOSTS)})",
    )
    init.add_argument("--organization", default=DEFAULT_ORGANIZATION, help="O= of every subject")
    init.add_argument(
        "--dns-suffix",
        default=DEFAULT_DNS_SUFFIX,
        help="each node also gets DNS:<node>.<suffix> (default: %(default)s)",
    )
    init.add_argument("--key-type", choices=("ec", "rsa"), default="ec", help="default: ec")
    init.add_argument("--days", type=int, default=NODE_DAYS, help="node certificate lifetime")
    init.add_argument("--force", action="store_true", help="overwrite existing files")


def run_certs_init(args: argparse.Namespace) -> int:
    """Run ``certs init``: write the files, print what was made and the settings to use.

    Returns 0, or 2 (one line on stderr) when files exist (``--force`` replaces them) or an
    argument is unusable; a folder that cannot be written ends the command with 1 (``main``).
    """
    nodes = [n.strip() for n in str(args.nodes).split(",") if n.strip()]
    try:
        domain = init_domain(
            args.directory,
            nodes=nodes,
            hosts=tuple(args.hosts or DEFAULT_HOSTS),
            organization=args.organization,
            dns_suffix=args.dns_suffix,
            key_type=args.key_type,
            days=args.days,
            force=args.force,
        )
    except (FileExistsError, ValueError) as exc:
        print(f"xdsi-gateway certs init: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    out.write(f"CA          {domain.ca_certificate}  ({domain.ca_subject})\n")
    out.write(f"CA key      {domain.ca_private_key}  (keep it private)\n")
    for node in domain.nodes.values():
        out.write(f"{node.name:<11} {node.certificate}  {node.subject}  {' '.join(node.sans)}\n")
    first = next(iter(domain.nodes.values()))
    directory = domain.directory.resolve()
    out.write(
        "\nSettings for a node (here "
        f"{first.name}; use each node's own files):\n\n"
        "[tls]\n"
        "enabled = true\n"
        f'certificate = "{directory / first.certificate.name}"\n'
        f'private_key = "{directory / first.private_key.name}"\n'
        f'ca_file = "{directory / "ca.pem"}"\n'
    )
    return 0
