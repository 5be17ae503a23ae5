"""What a fetch is asked for and what it reports, and the matching rules between the registry's
entries, the manifests and a RAD-69 answer.

Matching on referenceIdList: ITI TF-3 §4.2.3.2.28 (CXi with type
``urn:ihe:iti:xds:2016:studyInstanceUID`` / ``urn:ihe:iti:xds:2013:accession``); a RAD-69 answer
names each missing instance in a RegistryError (RAD TF-3 §4.69.4.2.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.consumer.manifest import InstanceRef, Manifest
from gateway.consumer.queries import ACCESSION_TYPE, KOS_FORMAT_CODE, STUDY_INSTANCE_UID_TYPE
from gateway.consumer.syntaxes import ALL
from gateway.metadata.model import DocumentEntry
from gateway.metadata.retrieve import RetrieveDocumentSetResponse
from gateway.soap.message import Attachment


@dataclass(slots=True, kw_only=True)
class FetchRequest:
    """Which studies of which patient, and in which transfer syntaxes."""

    patient_id: str
    study_uid: str | None = None
    accession: str | None = None
    modality: str | None = None
    since: str | None = None  # a date; studies performed since (serviceStartTime)
    transfer_syntaxes: tuple[str, ...] = ALL


@dataclass(slots=True, kw_only=True)
class StudyOutcome:
    """What happened to one study."""

    study_instance_uid: str
    manifests: list[str] = field(default_factory=list)
    total: int = 0
    present: int = 0  # already at the destination, skipped
    fetched: int = 0
    bytes: int = 0
    requests: int = 0  # RAD-69 requests sent
    seconds: float = 0.0
    missing: dict[str, str] = field(default_factory=dict)  # SOP Instance UID -> reason
    unfixable: set[str] = field(default_factory=set)  # missing for a reason a rerun keeps


@dataclass(slots=True, kw_only=True)
class FetchReport:
    """The outcome of a fetch: per study, plus problems that stopped part of it."""

    studies: list[StudyOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    # a failure that may pass came up (a timeout, a reset, a damaged transfer)
    transient_failure: bool = False

    @property
    def complete(self) -> bool:
        """True when every listed instance is at the destination and nothing failed."""
        return (
            bool(self.studies)
            and not self.problems
            and not self.interrupted
            and not any(study.missing for study in self.studies)
        )

    @property
    def retry_may_help(self) -> bool:
        """True when running the same fetch again may complete it: a failure that may pass, or
        instances still missing for a reason a new run can change (a new run asks only for
        those). False for what a retry cannot fix: a refused query, a patient without manifests,
        a peer that is not there, a destination that takes a SOP Class in no syntax the source
        can provide."""
        return self.transient_failure or any(set(s.missing) - s.unfixable for s in self.studies)

    @property
    def instances(self) -> int:
        return sum(study.present + study.fetched for study in self.studies)


def _entry_reference(entry: DocumentEntry, id_type: str) -> list[str]:
    """The CX.1 values of an entry's referenceIdList of one identifier type (CXi.5)."""
    found = []
    for value in entry.reference_id_list:
        parts = value.split("^")
        if len(parts) >= 5 and parts[4] == id_type:
            found.append(parts[0])
    return found


def entry_matches(entry: DocumentEntry, request: FetchRequest) -> bool:
    """Keep an entry unless its referenceIdList names another study or accession number."""
    if entry.format_code is not None and not entry.format_code.matches(KOS_FORMAT_CODE):
        return False
    studies = _entry_reference(entry, STUDY_INSTANCE_UID_TYPE)
    if request.study_uid and studies and request.study_uid not in studies:
        return False
    accessions = _entry_reference(entry, ACCESSION_TYPE)
    return not (request.accession and accessions and request.accession not in accessions)


def manifest_matches(manifest: Manifest, request: FetchRequest) -> bool:
    """Keep a manifest of the requested study / accession number (when they were given)."""
    if request.study_uid and request.study_uid not in (
        manifest.study_instance_uid,
        *manifest.study_uids,
    ):
        return False
    return not (request.accession and request.accession not in manifest.accession_numbers)


def match_documents(
    batch: Sequence[InstanceRef], result: RetrieveDocumentSetResponse
) -> tuple[list[tuple[InstanceRef, Attachment]], dict[str, str]]:
    """Pair a RAD-69 answer's documents with the requested instances.

    Returns the (instance, content) pairs and a reason for every requested instance that did not
    come back: the RegistryError naming it (by location or in its context) or the status.
    Documents nobody asked for, and second copies, are discarded.
    Standard: RAD TF-3 §4.69.4.2.3 (PartialSuccess with one RegistryError per missing instance).
    """
    wanted = {ref.sop_instance_uid: ref for ref in batch}
    items: list[tuple[InstanceRef, Attachment]] = []
    for document in result.documents:
        ref = wanted.pop(document.document_unique_id, None)
        if ref is None:
            document.attachment.discard()
            continue
        items.append((ref, document.attachment))
    reasons: dict[str, str] = {}
    for uid in wanted:
        named = [
            str(error) for error in result.errors if error.location == uid or uid in error.context
        ]
        general = [str(error) for error in result.errors if not error.location]
        shown = named or general[:1]
        detail = ": " + "; ".join(shown) if shown else ""
        reasons[uid] = f"not returned ({result.status.short}{detail})"
    return items, reasons


def by_study(manifests: Sequence[Manifest]) -> dict[str, list[Manifest]]:
    """Manifests by the Study Instance UID they describe, in order."""
    studies: dict[str, list[Manifest]] = {}
    for manifest in manifests:
        studies.setdefault(manifest.study_instance_uid, []).append(manifest)
    return studies


def nothing_found(request: FetchRequest) -> str:
    """The problem line of a fetch that found no manifest."""
    filters = [
        f"{name} {value}"
        for name, value in (
            ("study", request.study_uid),
            ("accession", request.accession),
            ("modality", request.modality),
            ("since", request.since),
        )
        if value
    ]
    shown = f" ({', '.join(filters)})" if filters else ""
    return f"no approved imaging manifest found for patient {request.patient_id}{shown}"
