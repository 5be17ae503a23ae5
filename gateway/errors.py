"""One exception hierarchy carrying the standard XDS error codes.

Every error the gateway reports to a peer is an :class:`XDSError` subclass whose class attribute
``code`` is the errorCode of ITI TF-3 Table 4.2.4.1-2 (rev. 19.0) or, for errors defined by ebRS 3.0
§2.4 / RAD TF-3 §4.69, the code those documents name. The SOAP boundary (``gateway.soap.dispatch``)
turns these into ``rs:RegistryError`` elements; nothing else maps exceptions to codes, and there is
no default code: every raise names its class (see IPF #306 for what defaults cost).

Tree::

    XDSError
     ├── XDSRegistryError, XDSRepositoryError ... (one class per code, table below)
     └── XDSErrorList           many errors found at once (validators collect them all)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import ClassVar

SEVERITY_ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
SEVERITY_WARNING = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"


class XDSError(Exception):
    """An error with an XDS errorCode, a human-readable codeContext and an optional location."""

    code: ClassVar[str] = ""  # set by every concrete subclass; XDSError itself is never raised
    severity: ClassVar[str] = SEVERITY_ERROR

    def __init__(self, context: str, *, location: str | None = None) -> None:
        super().__init__(context)
        self.context = context
        self.location = location

    def __iter__(self) -> Iterator[XDSError]:
        yield self

    @property
    def is_warning(self) -> bool:
        return self.severity == SEVERITY_WARNING


class XDSErrorList(XDSError):
    """Several XDS errors found in one request; a RegistryResponse carries them all."""

    def __init__(self, errors: Iterable[XDSError]) -> None:
        self.errors: list[XDSError] = []
        for error in errors:
            self.errors.extend(error)
        if not self.errors:
            raise ValueError("XDSErrorList needs at least one error")
        first = self.errors[0]
        super().__init__("; ".join(e.context for e in self.errors), location=first.location)

    def __iter__(self) -> Iterator[XDSError]:
        return iter(self.errors)

    @property
    def code(self) -> str:  # type: ignore[override]
        return self.errors[0].code


def _define(name: str, severity: str, doc: str) -> type[XDSError]:
    cls = type(name, (XDSError,), {"code": name, "severity": severity, "__doc__": doc})
    cls.__module__ = __name__
    return cls


# (code, severity, meaning) as ITI TF-3 Table 4.2.4.1-2 lists them, plus the ebRS 3.0 and RAD codes
# the transactions use. Kept as a table so the module reads like the standard's own list.
_E, _W = SEVERITY_ERROR, SEVERITY_WARNING
ERROR_CODES: tuple[tuple[str, str, str], ...] = (
    ("DocumentQueued", _W, "An XDR Recipient queued the document for later matching."),
    ("InvalidDocumentContent", _E, "A document does not match its metadata."),
    ("PartialAppendContentNotProcessed", _W, "Append semantics were not processed."),
    ("PartialFolderContentNotProcessed", _W, "Folder semantics were not processed."),
    ("PartialReplaceContentNotProcessed", _W, "Replacement semantics were not processed."),
    ("PartialTransformNotProcessed", _W, "Transform semantics were not processed."),
    ("PartialTransformReplaceNotProcessed", _W, "Transform-and-replace was not processed."),
    ("XDSDocumentUniqueIdError", _E, "The document with this uniqueId is not available."),
    ("XDSDuplicateUniqueIdInRegistry", _E, "A SubmissionSet or Folder uniqueId is not unique."),
    ("XDSExtraMetadataNotSaved", _W, "Extra metadata was present but not saved."),
    ("XDSMissingDocument", _E, "A DocumentEntry has no attached document."),
    ("XDSMissingDocumentMetadata", _E, "A MIME part has no DocumentEntry."),
    ("XDSMissingHomeCommunityId", _E, "A homeCommunityId is required and missing."),
    ("XDSNonIdenticalHash", _E, "A DocumentEntry uniqueId is re-used with another hash."),
    ("XDSNonIdenticalSize", _E, "A DocumentEntry uniqueId is re-used with another size."),
    ("XDSPatientIdDoesNotMatch", _E, "Patient ids that must match do not."),
    ("XDSRegistryBusy", _E, "Too much activity at the registry."),
    ("XDSRepositoryBusy", _E, "Too much activity at the repository."),
    ("XDSRegistryDeprecatedDocumentError", _E, "An association references a deprecated document."),
    ("XDSRegistryDuplicateUniqueIdInMessage", _E, "A uniqueId is used twice in one submission."),
    ("XDSRepositoryDuplicateUniqueIdInMessage", _E, "A uniqueId is used twice in one submission."),
    ("XDSRegistryError", _E, "Internal registry error."),
    ("XDSRepositoryError", _E, "Internal repository error."),
    ("XDSRegistryMetadataError", _E, "Error detected in metadata by the registry."),
    ("XDSRepositoryMetadataError", _E, "Error detected in metadata by the repository."),
    ("XDSRegistryNotAvailable", _E, "The repository could not reach the registry."),
    ("XDSRegistryOutOfResources", _E, "The registry is low on resources."),
    ("XDSRepositoryOutOfResources", _E, "The repository is low on resources."),
    ("XDSResultNotSinglePatient", _E, "The query would return more than one patient's metadata."),
    ("XDSStoredQueryMissingParam", _E, "A required stored-query parameter is missing."),
    ("XDSStoredQueryParamNumber", _E, "A single-valued parameter has several values."),
    ("XDSTooManyResults", _E, "The query matched too many objects; none are returned."),
    ("XDSUnavailableCommunity", _E, "A community to be contacted was not available."),
    ("XDSUnknownCommunity", _E, "The homeCommunityId is not recognised."),
    ("XDSUnknownPatientId", _E, "The patient id is not known to the receiving actor."),
    ("XDSUnknownRepositoryId", _E, "The repositoryUniqueId does not name this repository."),
    ("XDSUnknownStoredQuery", _E, "The stored query id is not recognised."),
    # XDS Metadata Update option (ITI TF-2b §3.57.4.1.3; ITI TF-3 Table 4.2.4.1-2)
    ("XDSMetadataUpdateError", _E, "The metadata update is not allowed as submitted."),
    ("XDSMetadataUpdateOperationError", _E, "An update operation (its slots) is malformed."),
    ("XDSMetadataVersionError", _E, "The version of the update is not the latest version."),
    ("XDSMetadataIdentifierError", _E, "An identifier of the update is not consistent."),
    ("XDSPatientIDReconciliationError", _E, "The update would mix patient ids wrongly."),
    # Remove Metadata and Documents (ITI TF-2b §3.62.4.1.3; ebRS 3.0 §2.4)
    ("ReferencesExistException", _E, "An object to remove is still referenced."),
    ("XDSUnreferencedObjectException", _E, "The removal would leave an object unreferenced."),
    # ebRS 3.0 §2.4 (RegistryError codes of the registry itself)
    ("UnresolvedReferenceException", _E, "A reference names an object that does not exist."),
    ("InvalidRequestException", _E, "The request is not valid."),
    ("ObjectNotFoundException", _E, "The object does not exist."),
    # RAD TF-3 §4.69.4.2.3 (XDS-I.b Retrieve Imaging Document Set)
    ("XDSIRequestError", _E, "A study or series request is malformed."),
)

_CLASSES: dict[str, type[XDSError]] = {
    code: _define(code, sev, doc) for code, sev, doc in ERROR_CODES
}


def error_class(code: str) -> type[XDSError]:
    """Return the exception class for an XDS errorCode (KeyError if the code is not standard)."""
    return _CLASSES[code]


DocumentQueued = _CLASSES["DocumentQueued"]
InvalidDocumentContent = _CLASSES["InvalidDocumentContent"]
PartialAppendContentNotProcessed = _CLASSES["PartialAppendContentNotProcessed"]
PartialFolderContentNotProcessed = _CLASSES["PartialFolderContentNotProcessed"]
PartialReplaceContentNotProcessed = _CLASSES["PartialReplaceContentNotProcessed"]
PartialTransformNotProcessed = _CLASSES["PartialTransformNotProcessed"]
PartialTransformReplaceNotProcessed = _CLASSES["PartialTransformReplaceNotProcessed"]
XDSDocumentUniqueIdError = _CLASSES["XDSDocumentUniqueIdError"]
XDSDuplicateUniqueIdInRegistry = _CLASSES["XDSDuplicateUniqueIdInRegistry"]
XDSExtraMetadataNotSaved = _CLASSES["XDSExtraMetadataNotSaved"]
XDSMissingDocument = _CLASSES["XDSMissingDocument"]
XDSMissingDocumentMetadata = _CLASSES["XDSMissingDocumentMetadata"]
XDSMissingHomeCommunityId = _CLASSES["XDSMissingHomeCommunityId"]
XDSNonIdenticalHash = _CLASSES["XDSNonIdenticalHash"]
XDSNonIdenticalSize = _CLASSES["XDSNonIdenticalSize"]
XDSPatientIdDoesNotMatch = _CLASSES["XDSPatientIdDoesNotMatch"]
XDSRegistryBusy = _CLASSES["XDSRegistryBusy"]
XDSRepositoryBusy = _CLASSES["XDSRepositoryBusy"]
XDSRegistryDeprecatedDocumentError = _CLASSES["XDSRegistryDeprecatedDocumentError"]
XDSRegistryDuplicateUniqueIdInMessage = _CLASSES["XDSRegistryDuplicateUniqueIdInMessage"]
XDSRepositoryDuplicateUniqueIdInMessage = _CLASSES["XDSRepositoryDuplicateUniqueIdInMessage"]
XDSRegistryError = _CLASSES["XDSRegistryError"]
XDSRepositoryError = _CLASSES["XDSRepositoryError"]
XDSRegistryMetadataError = _CLASSES["XDSRegistryMetadataError"]
XDSRepositoryMetadataError = _CLASSES["XDSRepositoryMetadataError"]
XDSRegistryNotAvailable = _CLASSES["XDSRegistryNotAvailable"]
XDSRegistryOutOfResources = _CLASSES["XDSRegistryOutOfResources"]
XDSRepositoryOutOfResources = _CLASSES["XDSRepositoryOutOfResources"]
XDSResultNotSinglePatient = _CLASSES["XDSResultNotSinglePatient"]
XDSStoredQueryMissingParam = _CLASSES["XDSStoredQueryMissingParam"]
XDSStoredQueryParamNumber = _CLASSES["XDSStoredQueryParamNumber"]
XDSTooManyResults = _CLASSES["XDSTooManyResults"]
XDSUnavailableCommunity = _CLASSES["XDSUnavailableCommunity"]
XDSUnknownCommunity = _CLASSES["XDSUnknownCommunity"]
XDSUnknownPatientId = _CLASSES["XDSUnknownPatientId"]
XDSUnknownRepositoryId = _CLASSES["XDSUnknownRepositoryId"]
XDSUnknownStoredQuery = _CLASSES["XDSUnknownStoredQuery"]
UnresolvedReferenceException = _CLASSES["UnresolvedReferenceException"]
XDSMetadataUpdateError = _CLASSES["XDSMetadataUpdateError"]
XDSMetadataUpdateOperationError = _CLASSES["XDSMetadataUpdateOperationError"]
XDSMetadataVersionError = _CLASSES["XDSMetadataVersionError"]
XDSMetadataIdentifierError = _CLASSES["XDSMetadataIdentifierError"]
XDSPatientIDReconciliationError = _CLASSES["XDSPatientIDReconciliationError"]
ReferencesExistException = _CLASSES["ReferencesExistException"]
XDSUnreferencedObjectException = _CLASSES["XDSUnreferencedObjectException"]
InvalidRequestException = _CLASSES["InvalidRequestException"]
ObjectNotFoundException = _CLASSES["ObjectNotFoundException"]
XDSIRequestError = _CLASSES["XDSIRequestError"]


class ConfigError(Exception):
    """A configuration key is unknown or its value is invalid (start-up stops, exit code 2)."""


class StartupError(Exception):
    """The gateway cannot start for a reason the operator must fix, such as a port another
    program holds (start-up stops, exit code 2; the message is one line saying what to do)."""
