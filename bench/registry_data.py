"""Synthetic registry content for ``registry_bench.py``: realistic XDS-I submissions as model
objects, and the table rows ITI-42 would store for them.

Content (ITI TF-3 §4.2.3 attributes, every one ITI-42 requires, and the optional ones an imaging
source sends): each patient has 1 to 20 DocumentEntries (uniform), registered over the years in
submissions of 1 to 3 documents (a KOS manifest, sometimes with reports); one submission in ten
also creates a Folder holding its documents. Every code attribute takes one of 10 values
(``CODES``); creation times spread over 2010-2025, service start/stop around them; one author
per object from a pool of 200 radiologists; referenceIdList holds the accession number and the
Study Instance UID (ITI TF-3 §4.2.3.2.23, XDS-I.b RAD TF-3 §4.68.4.1.2.3.1).

Rows: :func:`submission_rows` applies what ITI-42 applies (``store.py``: availabilityStatus
Approved, Folder lastUpdateTime = registration time, ``seq`` in request order, the
``document_unique_id`` row) and builds every row with ``gateway.registry.rows``, so the tables hold
exactly what a registration through the gateway leaves behind. ``check_loader_matches_iti42``
(in ``registry_load.py``) compares the two on a small sample.
"""

from __future__ import annotations

import json
import operator
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import Code, format_dtm
from gateway.metadata.model import (
    Association,
    Author,
    DocumentEntry,
    Folder,
    Submission,
    SubmissionSet,
)
from gateway.registry import rows, schema

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"  # the gateway's default affinity domain
REPOSITORY_UNIQUE_ID = "1.3.6.1.4.1.21367.13.40.100"
UID_ROOT = "1.3.6.1.4.1.21367.2025.77"  # documents .1.n, submission sets .2.n, folders .3.n
ACCESSION_ISSUER = "&1.2.840.113619.6.197&ISO"
STUDY_UID_ROOT = "1.2.826.0.1.3680043.10.543"
FIRST_CREATION = int(datetime(2010, 1, 1, tzinfo=UTC).timestamp())
LAST_CREATION = int(datetime(2025, 6, 30, tzinfo=UTC).timestamp())


def patient_id(number: int) -> str:
    """The affinity-domain CX of synthetic patient ``number``."""
    return f"BENCH{number:07d}^^^&{DOMAIN}&ISO"


def document_unique_id(number: int) -> str:
    """The uniqueId of synthetic DocumentEntry ``number`` (1-based, load order)."""
    return f"{UID_ROOT}.1.{number}"


def _codes(scheme: str, pairs: list[tuple[str, str]]) -> tuple[Code, ...]:
    assert len(pairs) == 10, scheme
    return tuple(Code(code, scheme, name) for code, name in pairs)


SNOMED, LOINC, DCM = "2.16.840.1.113883.6.96", "2.16.840.1.113883.6.1", "1.2.840.10008.2.16.4"
CLASS_SCHEME = "1.3.6.1.4.1.19376.1.2.6.1"
CONFIDENTIALITY_SCHEME, LOCAL_SCHEME = "2.16.840.1.113883.5.25", "1.3.6.1.4.1.21367.2017.3"
KOS = Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "Key Object Selection Document")

# Ten values per code type (ITI TF-3 §4.2.3.2 / §4.2.3.3 / §4.2.3.4 code attributes).
CODES: dict[str, tuple[Code, ...]] = {
    "class_code": _codes(CLASS_SCHEME, [
        ("IMAGES", "Images"), ("REPORTS", "Reports"), ("SUMMARY", "Summary"),
        ("ORDER", "Order"), ("PLAN", "Plan"), ("CONSENT", "Consent"),
        ("EVALUATION", "Evaluation"), ("PROCEDURE", "Procedure"), ("NOTE", "Note"),
        ("ALERT", "Alert"),
    ]),
    "type_code": _codes(LOINC, [
        ("18748-4", "Diagnostic imaging study"), ("18747-6", "CT Study report"),
        ("18755-9", "MRI Study report"), ("18760-9", "Ultrasound study report"),
        ("18782-3", "Radiology Study observation"), ("24627-2", "CT Chest"),
        ("24725-4", "CT Head"), ("30746-2", "Portable XR Chest"),
        ("36643-5", "XR Chest 2 Views"), ("24604-1", "MG Breast Diagnostic"),
    ]),
    "format_code": (
        KOS,
        *(
            Code(code, "1.3.6.1.4.1.19376.1.2.3", name)
            for code, name in [
                ("urn:ihe:rad:TEXT", "Radiology report, text"),
                ("urn:ihe:rad:PDF", "Radiology report, PDF"),
                ("urn:ihe:rad:CDA:ImagingReportStructuredHeadings:2013", "Imaging report"),
                ("urn:ihe:iti:xds-sd:pdf:2008", "Scanned document, PDF"),
                ("urn:ihe:iti:xds-sd:text:2008", "Scanned document, text"),
                ("urn:ihe:pcc:xds-ms:2007", "Medical summary"),
                ("urn:ihe:card:imaging:2011", "Cardiac imaging report"),
                ("urn:ihe:rad:CDA:ImagingReport:2009", "Imaging report (2009)"),
                ("urn:ihe:iti:xdw:2011:workflowDoc", "Workflow document"),
            ]
        ),
    ),
    "practice_setting_code": _codes(SNOMED, [
        ("309964003", "Radiology department"), ("394914008", "Radiology"),
        ("419815003", "Radiation oncology"), ("394592004", "Clinical oncology"),
        ("394579002", "Cardiology"), ("394821009", "Occupational medicine"),
        ("408478003", "Critical care medicine"), ("394537008", "Pediatric specialty"),
        ("394589003", "Nephrology"), ("394611003", "Plastic surgery"),
    ]),
    "healthcare_facility_type_code": _codes(SNOMED, [
        ("22232009", "Hospital"), ("225732001", "Community hospital"),
        ("79993009", "Government hospital"), ("32074000", "Long term care hospital"),
        ("4322002", "Tuberculosis hospital"), ("82242000", "Hospital-children's"),
        ("55253004", "Hospital-long term care"), ("35971002", "Ambulatory care site"),
        ("394761003", "General practice site"), ("36125001", "Trauma center"),
    ]),
    "event_code_list": _codes(DCM, [
        ("CT", "Computed Tomography"), ("MR", "Magnetic Resonance"), ("US", "Ultrasound"),
        ("CR", "Computed Radiography"), ("DX", "Digital Radiography"),
        ("MG", "Mammography"), ("NM", "Nuclear Medicine"), ("PT", "Positron emission tomography"),
        ("XA", "X-Ray Angiography"), ("RF", "Radio Fluoroscopy"),
    ]),
    "content_type_code": _codes(SNOMED, [
        ("371530004", "Clinical consultation report"), ("4241000179101", "Laboratory report"),
        ("371531000", "Report of clinical encounter"), ("371529009", "History and physical"),
        ("371528001", "Pathology report"), ("371532006", "Progress report"),
        ("371534007", "Summary report"), ("371535008", "Transfer summary report"),
        ("371537000", "Surgical report"), ("371543004", "Comprehensive history and physical"),
    ]),
    "code_list": _codes(LOCAL_SCHEME, [
        ("Referrals", "Referrals"), ("Oncology", "Oncology follow-up"),
        ("Trauma", "Trauma"), ("Screening", "Screening"), ("Cardio", "Cardiology"),
        ("Neuro", "Neurology"), ("Ortho", "Orthopaedics"), ("Pediatrics", "Pediatrics"),
        ("SecondOpinion", "Second opinion"), ("Teaching", "Teaching file"),
    ]),
}  # fmt: skip
# confidentialityCode: the six HL7 v3 Confidentiality values and four of a local policy scheme.
CODES["confidentiality_code"] = (
    *(
        Code(code, CONFIDENTIALITY_SCHEME, name)
        for code, name in [
            ("N", "normal"), ("R", "restricted"), ("V", "very restricted"), ("L", "low"),
            ("M", "moderate"), ("U", "unrestricted"),
        ]
    ),
    *(
        Code(code, "1.3.6.1.4.1.21367.2006.7", name)
        for code, name in [
            ("ETH", "Substance abuse"), ("PSY", "Psychiatry"), ("HIV", "HIV"), ("SDV", "Sexual"),
        ]
    ),
)  # fmt: skip

SOURCE_IDS = tuple(f"1.3.6.1.4.1.21367.13.80.{100 + n}" for n in range(10))
FAMILY = ("Smith", "Martin", "Garcia", "Müller", "Rossi", "Dubois", "Nowak", "Jensen", "Silva",
          "Kowalski", "Bernard", "Moreau", "Fischer", "Weber", "Costa", "Ricci", "Novak",
          "Horvat", "Larsen", "Peeters")  # fmt: skip
GIVEN = ("Anna", "Marc", "Sofia", "Jan", "Elena", "Luca", "Marie", "Peter", "Ines", "Tomas")
SITES = tuple(
    f"Hospital {name}^^^^^&1.3.6.1.4.1.21367.13.30.{n}&ISO^^^^{n}"
    for n, name in enumerate(("North", "South", "East", "West", "Central"), start=1)
)
TITLES = {
    "IMAGES": "Imaging study manifest",
    "REPORTS": "Radiology report",
}


def _author_pool() -> tuple[Author, ...]:
    """200 radiologists (XCN with id and assigning authority, XON institution, XTN)."""
    pool = []
    for n in range(200):
        family, given = FAMILY[n % len(FAMILY)], GIVEN[n // len(FAMILY) % len(GIVEN)]
        pool.append(
            Author(
                person=f"RAD{n:04d}^{family}^{given}^^^Dr^^^&1.3.6.1.4.1.21367.13.30.99&ISO",
                institution=[SITES[n % len(SITES)]],
                role=["Attending^^^&1.3.6.1.4.1.21367.100.1&ISO"],
                specialty=["Radiology^^^&1.3.6.1.4.1.21367.100.2&ISO"],
                telecom=[f"^^Internet^rad{n:04d}@hospital.example"],
            )
        )
    return tuple(pool)


AUTHORS = _author_pool()
SOURCE_AUTHORS = tuple(
    Author(institution=[site], role=["Imaging Document Source"]) for site in SITES
)


def _dtm(seconds: int) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(seconds))


@dataclass(slots=True)
class Counters:
    """Running numbers of the generated objects (uniqueIds, ``seq``)."""

    documents: int = 0
    submission_sets: int = 0
    folders: int = 0
    patients: int = 0


@dataclass(slots=True, kw_only=True)
class Registration:
    """One submission as ITI-42 would register it: ids assigned, registration time known."""

    submission: Submission
    registered: int  # epoch seconds of the registration (ITI-42 ``now``)
    patient_number: int


@dataclass(slots=True)
class Generator:
    """Deterministic synthetic content (``seed``); patients are numbered from 1."""

    seed: int = 7
    rng: random.Random = field(init=False)
    counters: Counters = field(default_factory=Counters)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def new_uuid(self) -> str:
        return f"urn:uuid:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"

    def patient(self, remaining: int) -> list[Registration]:
        """The registrations of the next patient: 1-20 documents (never more than ``remaining``)."""
        rng = self.rng
        self.counters.patients += 1
        number = self.counters.patients
        pid = patient_id(number)
        documents = min(rng.randint(1, 20), remaining)
        times = sorted(rng.randint(FIRST_CREATION, LAST_CREATION) for _ in range(documents))
        registrations = []
        index = 0
        while index < documents:
            size = min(rng.choice((1, 1, 1, 2, 3)), documents - index)
            registrations.append(self.submission(pid, number, times[index : index + size]))
            index += size
        return registrations

    def submission(self, pid: str, number: int, created: list[int]) -> Registration:
        """One submission of documents created at ``created`` (epoch seconds)."""
        rng = self.rng
        entries = [self.document_entry(pid, number, t) for t in created]
        submitted = created[-1] + rng.randint(600, 4 * 3600)
        self.counters.submission_sets += 1
        ss = SubmissionSet(
            entry_uuid=self.new_uuid(),
            title="Imaging study",
            author=[rng.choice(SOURCE_AUTHORS)],
            content_type_code=rng.choice(CODES["content_type_code"]),
            patient_id=pid,
            source_id=rng.choice(SOURCE_IDS),
            submission_time=_dtm(submitted),
            unique_id=f"{UID_ROOT}.2.{self.counters.submission_sets}",
        )
        associations = [
            Association(
                entry_uuid=self.new_uuid(),
                association_type=v.HAS_MEMBER,
                source_object=ss.entry_uuid,
                target_object=entry.entry_uuid,
                submission_set_status=v.SUBMISSION_SET_STATUS_ORIGINAL,
            )
            for entry in entries
        ]
        folders = []
        if rng.random() < 0.1:
            folders.append(self.folder(pid, ss, entries, associations))
        submission = Submission(
            submission_set=ss,
            document_entries=entries,
            folders=folders,
            associations=associations,
        )
        registered = submitted + rng.randint(1, 30)
        return Registration(submission=submission, registered=registered, patient_number=number)

    def folder(
        self,
        pid: str,
        ss: SubmissionSet,
        entries: list[DocumentEntry],
        associations: list[Association],
    ) -> Folder:
        """A Folder of the submission's documents, with the HasMember links ITI TF-3 §4.2.2
        asks for (SS -> Folder, Folder -> document, SS -> that link)."""
        self.counters.folders += 1
        new = Folder(
            entry_uuid=self.new_uuid(),
            title="Imaging episode",
            code_list=[self.rng.choice(CODES["code_list"])],
            patient_id=pid,
            unique_id=f"{UID_ROOT}.3.{self.counters.folders}",
        )
        associations.append(self._has_member(ss.entry_uuid, new.entry_uuid))
        for entry in entries:
            link = self._has_member(new.entry_uuid, entry.entry_uuid)
            associations.append(link)
            associations.append(self._has_member(ss.entry_uuid, link.entry_uuid))
        return new

    def _has_member(self, source: str, target: str) -> Association:
        return Association(
            entry_uuid=self.new_uuid(),
            association_type=v.HAS_MEMBER,
            source_object=source,
            target_object=target,
        )

    def document_entry(self, pid: str, number: int, created: int) -> DocumentEntry:
        """One DocumentEntry: a KOS manifest (3 in 4) or a report, created at ``created``."""
        rng = self.rng
        self.counters.documents += 1
        n = self.counters.documents
        manifest = rng.random() < 0.75
        class_code = CODES["class_code"][0 if manifest else rng.randint(1, 9)]
        format_code = KOS if manifest else rng.choice(CODES["format_code"][1:])
        events = rng.sample(CODES["event_code_list"], rng.choice((1, 1, 1, 2)))
        start = created - rng.randint(300, 7200)
        accession = f"ACC{n:09d}^^^{ACCESSION_ISSUER}^urn:ihe:iti:xds:2013:accession"
        study = f"{STUDY_UID_ROOT}.{number}.{n}^^^^urn:ihe:iti:xds:2016:studyInstanceUID"
        return DocumentEntry(
            entry_uuid=self.new_uuid(),
            mime_type="application/dicom" if manifest else "application/pdf",
            title=TITLES.get(class_code.code, class_code.display_name),
            author=[rng.choice(AUTHORS)],
            class_code=class_code,
            confidentiality_code=[rng.choice(CODES["confidentiality_code"])],
            creation_time=_dtm(created),
            event_code_list=events,
            format_code=format_code,
            hash=f"{rng.getrandbits(160):040x}",
            healthcare_facility_type_code=rng.choice(CODES["healthcare_facility_type_code"]),
            language_code="en-US",
            patient_id=pid,
            practice_setting_code=rng.choice(CODES["practice_setting_code"]),
            reference_id_list=[accession, study],
            repository_unique_id=REPOSITORY_UNIQUE_ID,
            service_start_time=_dtm(start),
            service_stop_time=_dtm(start + rng.randint(600, 3600)),
            size=rng.randint(2_000, 400_000),
            source_patient_id=f"MRN{number:07d}^^^&1.3.6.1.4.1.21367.13.20.2000&ISO",
            source_patient_info=[
                f"PID-3|MRN{number:07d}^^^&1.3.6.1.4.1.21367.13.20.2000&ISO",
                f"PID-5|{rng.choice(FAMILY)}^{rng.choice(GIVEN)}^^^",
                f"PID-7|{rng.randint(1930, 2020)}0{rng.randint(1, 9)}1{rng.randint(0, 9)}",
                f"PID-8|{rng.choice('FM')}",
            ],
            type_code=rng.choice(CODES["type_code"]),
            unique_id=document_unique_id(n),
        )

    def batch(self, documents: int) -> tuple[list[Registration], dict[int, int]]:
        """Registrations of whole patients totalling ``documents`` documents, in registration
        order (patients interleaved, as a registry fills over the years), and the patients
        they need: number -> epoch seconds of the ITI-8 feed (before their first submission)."""
        registrations: list[Registration] = []
        fed: dict[int, int] = {}
        remaining = documents
        while remaining > 0:
            mine = self.patient(remaining)
            fed[mine[0].patient_number] = mine[0].registered - self.rng.randint(3600, 86400)
            for registration in mine:
                remaining -= len(registration.submission.document_entries)
                registrations.append(registration)
        registrations.sort(key=lambda r: r.registered)
        return registrations, fed


# --- rows -------------------------------------------------------------------------------------


TABLES = (
    schema.patient,
    schema.submission_set,
    schema.folder,
    schema.document_entry,
    schema.document_unique_id,
    schema.association,
    schema.object_code,
    schema.object_author,
    schema.reference_id,
)
COLUMNS: dict[str, tuple[str, ...]] = {t.name: tuple(c.name for c in t.c) for t in TABLES}
Rows = dict[str, list[tuple[Any, ...]]]


def empty_rows() -> Rows:
    return {name: [] for name in COLUMNS}


_GETTERS = {name: operator.itemgetter(*names) for name, names in COLUMNS.items()}


def _add(out: Rows, table: str, row: dict[str, Any]) -> None:
    """Append ``row`` as a tuple in column order; the first row of a table is checked against
    ``schema.py`` (a column rows.py does not fill, or a key that is not a column, stops the load).
    """
    rows_of_table = out[table]
    if not rows_of_table:
        names = COLUMNS[table]
        if len(row) != len(names) or any(name not in row for name in names):
            missing, extra = sorted(set(names) - set(row)), sorted(set(row) - set(names))
            raise RuntimeError(f"{table}: rows.py and schema.py differ: {missing} / {extra}")
    rows_of_table.append(_GETTERS[table](row))


def mark_registered(submission: Submission, registered: datetime) -> None:
    """What ITI-42 sets on registration (``store._mark_registered``): availabilityStatus
    Approved on every object, Folder lastUpdateTime = the registration time.

    Standard: ITI TF-3 §4.2.3.2 availabilityStatus, §4.2.3.4 lastUpdateTime.
    """
    stamp = format_dtm(registered)
    for obj in submission.objects():
        if hasattr(obj, "availability_status"):
            obj.availability_status = v.STATUS_APPROVED
    for new_folder in submission.folders:
        new_folder.last_update_time = stamp


def submission_rows(submission: Submission, seq: int, out: Rows) -> int:
    """Append the rows ITI-42 writes for a registered submission (``store._write``); return the
    next free ``seq``. Objects must carry ``urn:uuid:`` ids and be marked registered."""
    ss = submission.submission_set
    assert ss is not None
    _add(out, "submission_set", rows.submission_set_row(ss, seq=seq))
    side: list[Any] = [ss]
    for new_folder in submission.folders:
        seq += 1
        _add(out, "folder", rows.folder_row(new_folder, seq=seq))
        side.append(new_folder)
    for entry in submission.document_entries:
        seq += 1
        row = rows.document_entry_row(entry, submission_set_id=ss.entry_uuid, seq=seq)
        _add(out, "document_entry", row)
        side.append(entry)
        unique = {"unique_id": entry.unique_id, "hash": (entry.hash or "").lower()}
        _add(out, "document_unique_id", {**unique, "size": entry.size})
    for association in submission.associations:
        seq += 1
        _add(out, "association", rows.association_row(association, seq=seq))
    for obj in side:
        for row in rows.code_rows(obj):
            _add(out, "object_code", row)
        if not isinstance(obj, Folder):
            for row in rows.author_rows(obj):
                _add(out, "object_author", row)
        if isinstance(obj, DocumentEntry):
            for row in rows.reference_id_rows(obj):
                _add(out, "reference_id", row)
    return seq + 1


def patient_row(number: int, fed: datetime, out: Rows) -> None:
    """The ``patient`` row of a patient fed by ITI-8 (``patients.register_in``): active, with
    the demographics JSON of ``gateway.hl7.adt.Demographics`` (fields that are set)."""
    family, given = FAMILY[number % len(FAMILY)], GIVEN[number % len(GIVEN)]
    demographics = {"name": f"{family}^{given}", "family_name": family, "given_name": given,
                    "sex": "FM"[number % 2]}  # fmt: skip
    _add(out, "patient", {
        "patient_id": patient_id(number),
        "merged_into": None,
        "demographics": json.dumps(demographics, ensure_ascii=False),
        "updated": format_dtm(fed),
    })  # fmt: skip
