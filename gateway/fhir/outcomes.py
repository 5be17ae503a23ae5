"""XDS errors as FHIR answers: the HTTP status and OperationOutcome issue of each XDS code.

MHD leaves the status to FHIR's RESTful rules (ITI-65 §2:3.65.4.2.2 refers to FHIR R4
http.html#transaction; ITI-67 §2:3.67.4.2.2 to http.html): a request the server cannot process
for its content is ``422 Unprocessable Entity`` ("the proposed resource violated applicable
FHIR profiles or server business rules"); the XDS actors being busy or unreachable is ``503``;
an internal error of the registry or repository is ``500``. The XDS error code itself (ITI TF-3
Table 4.2.4.1-2) goes to ``issue.details`` and its codeContext to ``diagnostics``; the error's
location (the XDS object in error) to ``expression``.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.errors import XDSError
from gateway.fhir.ports import Query
from gateway.fhir.wire import FhirError, Issue
from gateway.metadata.model import RegistryObject
from gateway.metadata.query import AdhocQuery
from gateway.metadata.retrieve import RegistryError, registry_errors

UNAVAILABLE = frozenset(
    {
        "XDSRegistryNotAvailable",
        "XDSRegistryBusy",
        "XDSRepositoryBusy",
        "XDSRegistryOutOfResources",
        "XDSRepositoryOutOfResources",
        "XDSUnavailableCommunity",
    }
)
INTERNAL = frozenset({"XDSRegistryError", "XDSRepositoryError"})
# FHIR issue-type of each XDS code that has a closer one than "business-rule".
ISSUE_TYPES = {
    "XDSUnknownPatientId": "not-found",
    "XDSDocumentUniqueIdError": "not-found",
    "UnresolvedReferenceException": "not-found",
    "ObjectNotFoundException": "not-found",
    "XDSDuplicateUniqueIdInRegistry": "duplicate",
    "XDSRegistryDuplicateUniqueIdInMessage": "duplicate",
    "XDSRepositoryDuplicateUniqueIdInMessage": "duplicate",
    "XDSTooManyResults": "too-costly",
    "XDSRegistryMetadataError": "invalid",
    "XDSRepositoryMetadataError": "invalid",
    "XDSNonIdenticalHash": "invalid",
    "XDSNonIdenticalSize": "invalid",
    "InvalidDocumentContent": "invalid",
    "XDSMissingDocument": "required",
    "XDSMissingDocumentMetadata": "required",
    "XDSStoredQueryMissingParam": "required",
    "XDSStoredQueryParamNumber": "invalid",
}


def issue_of(error: RegistryError) -> Issue:
    """The OperationOutcome issue of one RegistryError (warnings stay warnings)."""
    if error.code in UNAVAILABLE:
        kind = "transient"
    elif error.code in INTERNAL:
        kind = "exception"
    else:
        kind = ISSUE_TYPES.get(error.code, "business-rule")
    return Issue(
        severity="warning" if error.is_warning else "error",
        code=kind,
        diagnostics=error.context or error.code,
        xds_code=error.code,
        expression=error.location,
    )


def status_of(codes: Iterable[str], *, default: int = 422) -> int:
    """503 when an actor was unavailable, 500 for an internal error, else ``default``."""
    found = set(codes)
    if found & UNAVAILABLE:
        return 503
    if found & INTERNAL:
        return 500
    return default


def xds_failure(errors: Iterable[XDSError | RegistryError], *, default: int = 422) -> FhirError:
    """The FhirError answering a Failure of the XDS side (every error as one issue)."""
    items = registry_errors(errors)
    failing = [e for e in items if not e.is_warning]
    return FhirError(
        status_of((e.code for e in failing), default=default), [issue_of(e) for e in items]
    )


def run_query(query: Query, adhoc: AdhocQuery) -> list[RegistryObject]:
    """Run a stored query; an XDS error becomes the FhirError that answers it.

    Standard: ITI TF-2 §3.18.4.1.3 (the registry's errors), FHIR R4 http.html (status).
    """
    try:
        return query(adhoc)
    except XDSError as error:
        raise xds_failure(error) from error
