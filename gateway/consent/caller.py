"""Who is calling: the organization of the TLS peer of the request being served.

The SOAP and mounted (FHIR, DICOMweb) boundaries run the access check of every request in the
thread that then serves it; the assembly (``gateway/app.py``) sets :data:`CALLER` there, from the
peer's certificate and the access rules (``AccessRules.organization``). Work that no request
started (the imaging source publishing, command-line tools) runs as :data:`LOCAL`: this node
itself, which consent does not restrict.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """The caller of one request, as consent sees it."""

    organization: str | None  # None: no certificate, or no rule names its organization
    subject: str | None = None  # certificate subject DN
    remote_addr: str | None = None
    transaction: str | None = None  # what the request calls (ITI-18, ITI-38, ITI-67...)
    local: bool = False  # this node's own work, not a request


LOCAL = Caller(organization=None, local=True)
CALLER: ContextVar[Caller] = ContextVar("xdsi_consent_caller", default=LOCAL)


def current() -> Caller:
    """The caller of the request this thread serves (:data:`LOCAL` outside a request)."""
    return CALLER.get()
