"""Reading one Provide Document Bundle (ITI-65): its patients, documents and their content.

The part of the Document Recipient that turns entries of the Bundle into XDS objects, one at a
time: the patient a ``subject`` names (MHD ITI-65 §2:3.65.4.1.2.2), a DocumentReference with the
Binary its ``attachment.url`` points at (§2:3.65.4.1.2.1: the Binary shall be in the Bundle),
the entryUUID each object gets, and what the response says for each entry.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from gateway.fhir import bundle as bundles
from gateway.fhir import docref
from gateway.fhir.datatypes import (
    URN_OID,
    DataTypeError,
    patient_cx_of_resource_id,
    resource_id_of_uuid,
    uuid_of_resource_id,
)
from gateway.fhir.wire import FhirError
from gateway.metadata.datatypes import format_cx, new_uuid_urn
from gateway.metadata.model import DocumentEntry
from gateway.soap.message import Attachment

METADATA_ERROR = "XDSRepositoryMetadataError"  # the recipient acts as the ITI-41 source


@dataclass(slots=True, kw_only=True)
class Document:
    """A provided DocumentReference: its entry, its DocumentEntry, the Binary of its content and
    its relatesTo."""

    entry: bundles.Entry
    document_entry: DocumentEntry
    binary: bundles.Entry
    relations: list[docref.Relation]


def metadata_error(exc: DataTypeError, where: str | None = None) -> FhirError:
    """A value that does not map to XDS metadata: 422 with the ITI-41 metadata error code."""
    return FhirError.of(422, str(exc), xds_code=METADATA_ERROR, expression=where)


def unresolved(message: str, where: str) -> FhirError:
    """A reference the Bundle cannot resolve: 400, UnresolvedReferenceException (ebRS 3.0)."""
    return FhirError.of(
        400, message, code="not-found", xds_code="UnresolvedReferenceException", expression=where
    )


class Mapper:
    """Maps one Bundle; ``domain_oid`` is the affinity domain of Patient ids."""

    def __init__(self, entries: list[bundles.Entry], base: str, domain_oid: str) -> None:
        self.entries = entries
        self.resolver = bundles.Resolver(entries, base)
        self.domain_oid = domain_oid
        self.uuids: dict[int, str] = {}
        self.responses: dict[int, tuple[str, str]] = {}

    def uuid(self, entry: bundles.Entry) -> str:
        if entry.index not in self.uuids:
            given = docref.entry_uuid_of(entry.resource, entry.full_url)
            self.uuids[entry.index] = given or new_uuid_urn()
        return self.uuids[entry.index]

    # -- patient --------------------------------------------------------------------------------
    def patient(self, subject: Any, where: str) -> str | None:
        """The affinity-domain CX a subject names (None when there is no subject)."""
        if subject is None:
            return None
        if not isinstance(subject, dict):
            raise metadata_error(DataTypeError(f"{where}: expected a Reference"), where)
        if subject.get("reference") is None and subject.get("identifier") is not None:
            return self._cx(subject["identifier"], where)
        found = self.resolver.entry(subject)
        if found is not None:
            return self._bundle_patient(found, where)
        relative = self.resolver.relative(str(subject.get("reference") or ""))
        if relative and relative.startswith("Patient/"):
            cx = patient_cx_of_resource_id(relative[len("Patient/") :], self.domain_oid)
            if cx is not None:
                return cx
        raise FhirError.of(
            422,
            f"{where}: {subject.get('reference')!r} is not a Patient of this server nor of the "
            "Bundle (references to other servers are not fetched)",
            code="not-found",
            xds_code="XDSUnknownPatientId",
            expression=where,
        )

    def _cx(self, identifier: Any, where: str) -> str:
        try:
            return docref.patient_of_subject_identifier(identifier, f"{where}.identifier")
        except DataTypeError as exc:
            raise metadata_error(exc, where) from exc

    def _bundle_patient(self, entry: bundles.Entry, where: str) -> str:
        if entry.kind != "Patient":
            raise metadata_error(DataTypeError(f"{where}: does not name a Patient"), where)
        system = URN_OID + self.domain_oid
        for identifier in entry.resource.get("identifier") or []:
            if isinstance(identifier, dict) and identifier.get("system") == system:
                value = identifier.get("value")
                if isinstance(value, str) and value:
                    self.responses[entry.index] = ("200 OK", "")
                    return format_cx(value, self.domain_oid)
        raise FhirError.of(
            422,
            f"{where}: the Patient of the Bundle has no identifier of the affinity domain "
            f"({system})",
            code="not-found",
            xds_code="XDSUnknownPatientId",
            expression=f"{entry.where}.identifier",
        )

    # -- documents ------------------------------------------------------------------------------
    def document(self, entry: bundles.Entry) -> Document:
        where = entry.where
        patient = self.patient(entry.resource.get("subject"), f"{where}.subject")
        try:
            document_entry, url, relations = docref.document_entry_of(
                entry.resource,
                entry_uuid=self.uuid(entry),
                patient_id=patient,
                resolve=self.resolver.for_resource(entry.resource),
                where=where,
            )
        except DataTypeError as exc:
            raise metadata_error(exc, where) from exc
        binary = self.resolver.entry(url) if url else None
        if binary is None or binary.kind != "Binary":
            raise unresolved(
                f"{where}.content[0].attachment.url {url!r} names no Binary of the Bundle",
                f"{where}.content[0].attachment.url",
            )
        return Document(
            entry=entry, document_entry=document_entry, binary=binary, relations=relations
        )

    def content(self, document: Document) -> Attachment:
        binary = document.binary
        data, kind = binary.resource.get("data"), binary.resource.get("contentType")
        if not isinstance(data, str) or not isinstance(kind, str) or not kind:
            raise FhirError.of(
                400, f"{binary.where}: a Binary needs contentType and data", expression=binary.where
            )
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FhirError.of(
                400, f"{binary.where}.data is not base64: {exc}", expression=f"{binary.where}.data"
            ) from exc
        self.responses[binary.index] = (
            "201 Created",
            f"Binary/{resource_id_of_uuid(document.document_entry.entry_uuid)}",
        )
        return Attachment.from_bytes(raw, content_type=kind)

    def server_document(self, reference: Any, where: str) -> str:
        """The entryUUID of a DocumentReference of this server a reference names."""
        relative = self.resolver.relative(str((reference or {}).get("reference") or ""))
        uuid = None
        if relative and relative.startswith("DocumentReference/"):
            uuid = uuid_of_resource_id(relative[len("DocumentReference/") :])
        if uuid is None:
            raise unresolved(f"{where}: names no DocumentReference of this server", where)
        return uuid
