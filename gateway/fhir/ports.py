"""The narrow interfaces the FHIR room is given (wired in ``gateway/app.py``), no actor imported.

Each is what a remote peer of the same kind would offer: stored queries (ITI-18), a Provide and
Register (ITI-41), a document retrieve (ITI-43) per repository, the patients ITI-8 fed, and, for
ImagingStudy, what the imaging source knows of the instances a manifest lists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.metadata.model import RegistryObject
from gateway.metadata.query import AdhocQuery
from gateway.metadata.retrieve import DocumentRequest, RetrieveDocumentSetResponse
from gateway.soap.message import Attachment, Element

# ITI-18 in process: LeafClass model objects; raises XDSError (ITI TF-2 §3.18.4.1.3).
Query = Callable[[AdhocQuery], list[RegistryObject]]
# ITI-41: ProvideAndRegisterDocumentSetRequest and its parts in, rs:RegistryResponse out, XDS
# errors included as a Failure response (ITI TF-2 §3.41.4.2).
Provide = Callable[[Element, Sequence[Attachment]], Element]
# ITI-43 at one repository (ITI TF-2 §3.43.4.2).
Retrieve = Callable[[Sequence[DocumentRequest]], RetrieveDocumentSetResponse]


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientRecord:
    """What the registry knows of a patient: its affinity-domain id (CX), whether it is active
    or merged (and into whom), the demographics of its last feed (``gateway.hl7.adt.
    Demographics`` field names) and its other identifiers (CX, other PID-3 repetitions)."""

    patient_id: str
    active: bool
    merged_into: str | None = None
    demographics: Mapping[str, Any] = field(default_factory=dict)
    other_ids: tuple[str, ...] = ()


PatientLookup = Callable[[str], PatientRecord | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceFacts:
    """What the imaging source recorded of one instance (the KOS does not carry these)."""

    modality: str | None = None
    series_number: int | None = None
    instance_number: int | None = None


InstanceLookup = Callable[[Sequence[str]], Mapping[str, InstanceFacts]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backends:
    """Everything the FHIR room talks to.

    ``provide`` is None when this process has no repository (ITI-65 then answers 501);
    ``repositories`` maps repositoryUniqueId to its retrieve; ``rad69_urls`` maps a Retrieve
    Location UID to the RAD-69 endpoint that serves it; ``wado_rs`` is the DICOMweb service root
    of this gateway when DICOMweb is enabled (None otherwise) and ``wado_rs_locations`` the
    Retrieve Location UIDs whose instances it serves.
    """

    query: Query
    provide: Provide | None = None
    repositories: Mapping[str, Retrieve] = field(default_factory=dict)
    patients: PatientLookup | None = None
    instances: InstanceLookup | None = None
    domain_oid: str = ""
    rad69_urls: Mapping[str, str] = field(default_factory=dict)
    wado_rs: str | None = None
    wado_rs_locations: frozenset[str] = frozenset()
