"""The Secure Node of one gateway, built from settings: TLS material, access rules, audit trail.

``[tls]``, ``[access]`` and ``[audit]`` become the objects :mod:`gateway.app` and the command line
hand to the listeners and clients (the soap and hl7 rooms never import :mod:`gateway.security`
or :mod:`gateway.audit`: they take contexts, adapters and hooks). Errors become one-line
:class:`ConfigError`\\ s (exit code 2).

Standard: ITI TF-1 §9 (Audit Trail and Node Authentication), ITI TF-2 §3.19 (Authenticate Node),
§3.20 (Record Audit Event).
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from gateway.config import Settings
from gateway.errors import ConfigError

if TYPE_CHECKING:
    import requests

    from gateway.audit.trail import AuditTrail, NullAuditTrail
    from gateway.security.access import AccessRules
    from gateway.security.tls import TlsFiles


def tls_files(settings: Settings) -> TlsFiles | None:
    """The node's TLS files when ``tls.enabled`` (paths resolved below ``gateway.data_dir``).

    Every context is built once here so a bad certificate, key or CA stops start-up.
    Raises:
        ConfigError: a file is missing or unusable.
    """
    if not settings.tls.enabled:
        return None
    from gateway.security.tls import TlsConfigError, TlsFiles

    t = settings.tls
    files = TlsFiles(
        certificate=str(settings.path(t.certificate)),
        private_key=str(settings.path(t.private_key)),
        ca_file=str(settings.path(t.ca_file)),
        require_client_cert=t.require_client_cert,
        ciphers=t.ciphers,
    )
    try:
        files.server()
        files.client()
    except (TlsConfigError, ssl.SSLError) as exc:
        raise ConfigError(f"tls: {exc}") from exc
    return files


def client_context(settings: Settings) -> ssl.SSLContext | None:
    """The outbound TLS context (MLLP feed, DICOM SCU, audit sender), or None without TLS."""
    files = tls_files(settings)
    if files is None:
        return None
    return files.client(check_hostname=settings.tls.verify_hostname)


def client_session(settings: Settings) -> requests.Session | None:
    """A ``requests`` session on the node's client context for outbound SOAP, or None.

    Standard: ITI TF-2 §3.19 (every outbound SOAP call authenticates both nodes).
    """
    context = client_context(settings)
    if context is None:
        return None
    from gateway.security.tls import requests_session

    return requests_session(context)


def access_rules(settings: Settings) -> AccessRules:
    """``access.rules_file`` loaded, or allow-all when unset (TLS decides who gets in)."""
    from gateway.security.access import AccessRules

    if not settings.access.rules_file:
        return AccessRules.allow_all()
    return AccessRules.load(settings.path(settings.access.rules_file))


def audit_trail(
    settings: Settings, files: TlsFiles | None, *, owner: str | None = None
) -> AuditTrail | NullAuditTrail:
    """The audit trail of ``[audit]`` (a do-nothing trail when ``audit.enabled`` is false).

    ``owner``: this process's owner id; processes sharing ``audit.queue_dir`` (the workers of
    ``serve --workers N``) each deliver only their own records (:mod:`gateway.audit.queue`).

    Raises:
        ConfigError: an unusable destination.
    """
    from gateway.audit.trail import AuditTrail, NullAuditTrail, default_source_id

    a = settings.audit
    if not a.enabled:
        return NullAuditTrail()
    from gateway.audit.messages import AuditSource

    tls_context: ssl.SSLContext | None = None
    if files is not None:
        tls_context = files.client(check_hostname=settings.tls.verify_hostname)
    options: dict[str, Any] = {
        "app_name": a.app_name,
        "retry_max_seconds": float(a.retry_max_seconds),
        "owner": owner,
    }
    try:
        return AuditTrail.from_urls(
            a.destinations,
            queue_dir=settings.path(a.queue_dir),
            base_dir=settings.data_dir,
            tls_context=tls_context,
            source=AuditSource(
                source_id=a.source_id or default_source_id(a.app_name),
                enterprise_site_id=a.enterprise_site_id or None,
            ),
            **options,
        )
    except ValueError as exc:
        raise ConfigError(f"audit.destinations: {exc}") from exc
