"""What the exchange browser needs of the actors, as plain data and callables.

``gateway.ui`` imports no actor (``tests/unit/test_house.py``): the assembly (``gateway/app.py``)
builds one :class:`Backends` from the actors' public interfaces (the registry's patients and
stored queries, the repository's retrieve, the imaging source's index, the DICOMweb service for
``/rendered`` and ``/thumbnail``, the audit trail). A backend the process does not run is None
and the pages say so instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.metadata.model import DocumentEntry

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _nothing(*_args: Any) -> None:
    """The audit hook of a UI without audit trail."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientRow:
    """A patient the registry knows (ITI-8 fed), for the search table."""

    patient_id: str
    name: str = ""
    birth_date: str = ""
    sex: str = ""
    active: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesView:
    """One series the imaging source holds: its instances in instance-number order."""

    series_instance_uid: str
    modality: str | None
    series_number: int | None
    instances: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Downloaded:
    """A retrieved document (ITI-43), streamed: its chunks, size in bytes and MIME type.

    ``close`` releases what the retrieval held (temporary files); the web layer hands it to the
    server with the body (PEP 3333: the server calls ``close`` once the body is sent or the
    client is gone), so the document never sits in memory whole.
    """

    chunks: Iterable[bytes]
    size: int
    mime_type: str
    close: Callable[[], None] = lambda: None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxRow:
    """One submission received by the XDR Document Recipient (``gateway.notify.xdr``)."""

    id: int
    received_at: float
    state: str  # received, accepting, accepted, failed
    sender: str  # the SubmissionSet's sourceId
    patient_id: str
    documents: int
    studies: tuple[str, ...]
    error: str = ""


@dataclass(slots=True, kw_only=True)
class Backends:
    """The actors as the pages see them (each None when this process does not run it).

    - ``actors``: actor name -> state (``ready``/``starting``), as ``/health`` reports them;
    - ``counts``: patients, documents, studies, instances (database counts);
    - ``audit_depth``: audit records not yet delivered;
    - ``search_patients(text, limit)``: patients whose id or name matches;
    - ``documents_of(patient_id)``: the patient's DocumentEntries (ITI-18 FindDocuments, through
      the initiating gateway when one is configured);
    - ``document(entry_uuid)``: one DocumentEntry (ITI-18 GetDocuments);
    - ``download(entry)``: the document itself (ITI-43);
    - ``series_of(study_uid)``: the series of a study the imaging source holds;
    - ``patient_of_study(study_uid)``: its patient id, for the audit record;
    - ``rendered``: the DICOMweb service root (WSGI) answering ``/studies/.../rendered`` and
      ``/thumbnail`` (DICOM PS3.18 §10.4.1.1.3);
    - ``audit_query(operator, host, query_id, text, patient_ids)`` and
      ``audit_patient(operator, host, patient_ids, study_uids)``: the audit records
      (DICOM PS3.15 A.5.3.10 Query, A.5.3.14 Patient Record);
    - ``inbox()``: the XDR inbox (RAD TF-1 §18 XDR-I), None when this process has no Document
      Recipient; ``inbox_accept(id)``: queue an entry's import as ``xdsi-gateway inbox accept``
      does (the outbox row's id, None when the entry is not in a state to accept).
    """

    actors: Callable[[], Mapping[str, str]] = dict
    counts: Callable[[], Mapping[str, int]] = dict
    audit_depth: Callable[[], int] = lambda: 0
    search_patients: Callable[[str, int], Sequence[PatientRow]] | None = None
    documents_of: Callable[[str], Sequence[DocumentEntry]] | None = None
    document: Callable[[str], DocumentEntry | None] | None = None
    download: Callable[[DocumentEntry], Downloaded] | None = None
    series_of: Callable[[str], Sequence[SeriesView]] | None = None
    patient_of_study: Callable[[str], str | None] = lambda _uid: None
    rendered: WsgiApp | None = None
    audit_query: Callable[[str, str | None, str, str, Sequence[str]], None] = lambda *_args: None
    audit_patient: Callable[[str, str | None, Sequence[str], Sequence[str]], None] = _nothing
    inbox: Callable[[], Sequence[InboxRow]] | None = None
    inbox_accept: Callable[[int], int | None] | None = None
