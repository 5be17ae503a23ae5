"""A small registry world for the ITI-18 tests, loaded straight into the tables.

Rows are made by ``gateway.registry.rows`` (the writer's own model -> row functions), so they are
what ITI-42 stores; loading them directly lets the tests set what ITI-42 would refuse or take
several transactions to build (deprecated entries, On-Demand entries, merged patients).

Patients: P (``PATIENT_ID``), Q (``OTHER_PATIENT_ID``), M merged into P, X subsumed by nothing
but never used. Objects (all of P unless noted)::

    SS1 (1.1.1, 20041225)   D1 D2 D3, F1, F1->D1 (+ SS1->that link); APND D2->D1
    SS2 (1.1.2, 20050101)   D4 (RPLC D4->D3), D5 (On-Demand; XFRM D5->D1), F2 (Deprecated),
                            F2->D5 (+ SS2->that link), F1->D4 (+ SS2->that link: D4 joins
                            the folder of SS1)
    SS3 (patient M)         D6
    SSQ (patient Q)         DQ, FQ, FQ->DQ (+ SSQ->that link)

Codes, times and authors per document are listed in ``DOCUMENTS`` below; every test states
the expected ids so that a wrong rule (OR for AND, inclusive To, ignored scheme, ignored
status) gives another answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, insert

from gateway.hl7.adt import Demographics
from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import Code
from gateway.metadata.model import (
    Association,
    Author,
    DocumentEntry,
    Folder,
    RegistryObject,
    SubmissionSet,
)
from gateway.registry import patients, rows, schema
from gateway.registry.database import Database
from gateway.registry.iti18 import StoredQueries
from gateway.registry.queries import OBJECT_REF, AdhocQuery
from tests.factories import PATIENT_ID, make_document_entry, make_folder, make_submission_set
from tests.integration.registry.builders import OTHER_PATIENT_ID

MERGED_PATIENT_ID = "PAT-41^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
UNKNOWN_PATIENT_ID = "PAT-99^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
APPROVED = str(v.STATUS_APPROVED)
DEPRECATED = str(v.STATUS_DEPRECATED)
STABLE = str(v.DOCUMENT_ENTRY_STABLE)
ON_DEMAND = str(v.DOCUMENT_ENTRY_ON_DEMAND)

S1, S2 = "1.2.3.1", "1.2.3.2"  # two coding schemes
CLASS_A, CLASS_A2, CLASS_B = Code("A", S1), Code("A", S2), Code("B", S1)
TYPE_1, TYPE_2 = Code("T1", S1), Code("T2", S1)
PRACTICE_1, PRACTICE_2 = Code("P1", S1), Code("P2", S1)
FACILITY_1, FACILITY_2 = Code("H1", S1), Code("H2", S1)
FORMAT_1, FORMAT_2 = Code("F1", S1), Code("F2", S1)
EVENT_1, EVENT_2, EVENT_3 = Code("E1", S1), Code("E2", S1), Code("E3", S1)
CONF_N, CONF_R = Code("N", S1), Code("R", S1)
CONTENT_1, CONTENT_2 = Code("CT1", S1), Code("CT2", S1)
FOLDER_CODE_1, FOLDER_CODE_2 = Code("FC1", S1), Code("FC2", S1)
REF_1 = "R1^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession"
REF_2 = "R2^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession"


def uuid_of(name: str) -> str:
    """The fixed ``urn:uuid:`` of a named object of the world."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'xdsi-iti18-world/' + name)}"


def uid_of(name: str) -> str:
    """The fixed uniqueId of a named object of the world."""
    return "1.3.6.1.4.1.21367.2024.18." + str(sum(ord(c) * (i + 1) for i, c in enumerate(name)))


# name: (submission set, patient, status, object type, document attributes)
DOCUMENTS: dict[str, tuple[str, str, str, str, dict[str, Any]]] = {
    "D1": ("SS1", PATIENT_ID, APPROVED, STABLE, {
        "class_code": CLASS_A, "type_code": TYPE_1, "practice_setting_code": PRACTICE_1,
        "healthcare_facility_type_code": FACILITY_1, "format_code": FORMAT_1,
        "event_code_list": [EVENT_1, EVENT_2], "confidentiality_code": [CONF_N],
        "creation_time": "20040101", "service_start_time": "200401011000",
        "service_stop_time": "200401011100", "author": ["^Smith^John^^^"],
        "reference_id_list": [REF_1],
    }),
    "D2": ("SS1", PATIENT_ID, APPROVED, STABLE, {
        "class_code": CLASS_B, "type_code": TYPE_2, "practice_setting_code": PRACTICE_2,
        "healthcare_facility_type_code": FACILITY_2, "format_code": FORMAT_2,
        "event_code_list": [EVENT_1], "confidentiality_code": [CONF_R],
        "creation_time": "20041224", "service_start_time": "2005",
        "service_stop_time": "2006", "author": ["^Ford^Harrison^^^"],
        "reference_id_list": [REF_2],
    }),
    "D3": ("SS1", PATIENT_ID, DEPRECATED, STABLE, {
        "class_code": CLASS_A2, "type_code": TYPE_1, "practice_setting_code": PRACTICE_1,
        "healthcare_facility_type_code": FACILITY_1, "format_code": FORMAT_1,
        "event_code_list": [EVENT_2, EVENT_3], "confidentiality_code": [CONF_N, CONF_R],
        "creation_time": "20041224093000", "service_start_time": "20041224",
        "service_stop_time": "20041225", "author": ["^smith^anna^^^"],
        "reference_id_list": [REF_1, REF_2],
    }),
    "D4": ("SS2", PATIENT_ID, APPROVED, STABLE, {
        "class_code": CLASS_A, "type_code": TYPE_1, "practice_setting_code": PRACTICE_1,
        "healthcare_facility_type_code": FACILITY_1, "format_code": FORMAT_1,
        "event_code_list": [EVENT_3], "confidentiality_code": [CONF_N],
        "creation_time": "2005", "service_start_time": None,
        "service_stop_time": None, "author": ["^O'Brien^Pat^^^", "^Ford^Anna^^^"],
        "reference_id_list": [],
    }),
    "D5": ("SS2", PATIENT_ID, APPROVED, ON_DEMAND, {
        "class_code": CLASS_A, "type_code": TYPE_1, "practice_setting_code": PRACTICE_1,
        "healthcare_facility_type_code": FACILITY_1, "format_code": FORMAT_1,
        "event_code_list": [EVENT_1], "confidentiality_code": [CONF_N],
        "creation_time": "20040615", "service_start_time": None,
        "service_stop_time": None, "author": ["^Smith^John^^^"],
        "reference_id_list": [REF_1], "hash": None, "size": None,
    }),
    "D6": ("SS3", MERGED_PATIENT_ID, APPROVED, STABLE, {
        "class_code": CLASS_A, "type_code": TYPE_1, "practice_setting_code": PRACTICE_1,
        "healthcare_facility_type_code": FACILITY_1, "format_code": FORMAT_1,
        "event_code_list": [EVENT_1], "confidentiality_code": [CONF_N],
        "creation_time": "20040301", "service_start_time": None,
        "service_stop_time": None, "author": ["^Jones^Ann^^^"], "reference_id_list": [],
    }),
    "DQ": ("SSQ", OTHER_PATIENT_ID, APPROVED, STABLE, {
        "class_code": CLASS_A, "type_code": TYPE_1, "practice_setting_code": PRACTICE_1,
        "healthcare_facility_type_code": FACILITY_1, "format_code": FORMAT_1,
        "event_code_list": [EVENT_1], "confidentiality_code": [CONF_N],
        "creation_time": "20040101", "service_start_time": None,
        "service_stop_time": None, "author": ["^Smith^John^^^"], "reference_id_list": [REF_1],
    }),
}  # fmt: skip

# name: (patient, source id, submission time, content type, author)
SUBMISSION_SETS: dict[str, tuple[str, str, str, Code, str]] = {
    "SS1": (PATIENT_ID, "1.1.1", "20041225", CONTENT_1, "^Dopplemeyer^Sherry^^^"),
    "SS2": (PATIENT_ID, "1.1.2", "20050101", CONTENT_2, "^Smith^John^^^"),
    "SS3": (MERGED_PATIENT_ID, "1.1.3", "20040301", CONTENT_1, "^Jones^Ann^^^"),
    "SSQ": (OTHER_PATIENT_ID, "1.1.1", "20041225", CONTENT_1, "^Dopplemeyer^Sherry^^^"),
}

# name: (patient, status, lastUpdateTime, codes)
FOLDERS: dict[str, tuple[str, str, str, list[Code]]] = {
    "F1": (PATIENT_ID, APPROVED, "20050101120000", [FOLDER_CODE_1, FOLDER_CODE_2]),
    "F2": (PATIENT_ID, DEPRECATED, "20041231", [FOLDER_CODE_2]),
    "FQ": (OTHER_PATIENT_ID, APPROVED, "20041225", [FOLDER_CODE_1]),
}

HM = str(v.HAS_MEMBER)
# name: (type, source, target, submission set status)
ASSOCIATIONS: dict[str, tuple[str, str, str, str | None]] = {
    "SS1-D1": (HM, "SS1", "D1", "Original"),
    "SS1-D2": (HM, "SS1", "D2", "Original"),
    "SS1-D3": (HM, "SS1", "D3", "Original"),
    "SS1-F1": (HM, "SS1", "F1", None),
    "F1-D1": (HM, "F1", "D1", None),
    "SS1-F1-D1": (HM, "SS1", "F1-D1", None),
    "APND-D2-D1": (str(v.APND), "D2", "D1", None),
    "SS2-D4": (HM, "SS2", "D4", "Original"),
    "SS2-D5": (HM, "SS2", "D5", "Original"),
    "SS2-F2": (HM, "SS2", "F2", None),
    "RPLC-D4-D3": (str(v.RPLC), "D4", "D3", None),
    "F1-D4": (HM, "F1", "D4", None),
    "SS2-F1-D4": (HM, "SS2", "F1-D4", None),
    "XFRM-D5-D1": (str(v.XFRM), "D5", "D1", None),
    "F2-D5": (HM, "F2", "D5", None),
    "SS2-F2-D5": (HM, "SS2", "F2-D5", None),
    "SS3-D6": (HM, "SS3", "D6", "Original"),
    "SSQ-DQ": (HM, "SSQ", "DQ", "Original"),
    "SSQ-FQ": (HM, "SSQ", "FQ", None),
    "FQ-DQ": (HM, "FQ", "DQ", None),
    "SSQ-FQ-DQ": (HM, "SSQ", "FQ-DQ", None),
}


@dataclass(slots=True)
class World:
    """Names of the loaded objects -> their ids (``uuid_of``) and uniqueIds (``uid_of``)."""

    loaded: list[str] = field(default_factory=list)

    @staticmethod
    def ids(*names: str) -> set[str]:
        return {uuid_of(name) for name in names}

    @staticmethod
    def uid(name: str) -> str:
        return uid_of(name)


def entry_of(name: str) -> tuple[str, DocumentEntry]:
    """The submission set name and the DocumentEntry model of a world document."""
    ss, pid, status, object_type, attrs = DOCUMENTS[name]
    values = dict(attrs)
    values["author"] = [Author(person=p) for p in values["author"]]
    entry = make_document_entry(
        entry_uuid=uuid_of(name), unique_id=uid_of(name), patient_id=pid, title=name,
        availability_status=status, object_type=object_type, **values,
    )  # fmt: skip
    return ss, entry


def _submission_set(name: str) -> SubmissionSet:
    pid, source, time, content, author = SUBMISSION_SETS[name]
    return make_submission_set(
        entry_uuid=uuid_of(name), unique_id=uid_of(name), patient_id=pid, source_id=source,
        submission_time=time, content_type_code=content, author=[Author(person=author)],
        title=name, availability_status=APPROVED,
    )  # fmt: skip


def folder_of(name: str) -> Folder:
    """The Folder model of a world folder (lastUpdateTime as loaded)."""
    pid, status, updated, codes = FOLDERS[name]
    return make_folder(
        entry_uuid=uuid_of(name), unique_id=uid_of(name), patient_id=pid, title=name,
        availability_status=status, last_update_time=updated, code_list=codes,
    )  # fmt: skip


def _association(name: str) -> Association:
    kind, source, target, ss_status = ASSOCIATIONS[name]
    return Association(
        entry_uuid=uuid_of(name), association_type=kind, source_object=uuid_of(source),
        target_object=uuid_of(target), submission_set_status=ss_status,
        availability_status=APPROVED,
    )  # fmt: skip


def _insert(conn: Connection, table: Any, values: list[dict[str, Any]] | dict[str, Any]) -> None:
    if values:
        conn.execute(insert(table), values if isinstance(values, list) else [values])


def load(db: Database) -> World:
    """Insert the whole world (patients, objects, side tables) in one transaction."""
    world = World()
    seq = 1_000
    with db.write() as conn:
        now = datetime(2024, 6, 1, tzinfo=UTC)
        for pid in (PATIENT_ID, OTHER_PATIENT_ID, MERGED_PATIENT_ID):
            patients.register_in(conn, pid, Demographics(family_name="Test"), [], now=now)
        patients.merge_in(conn, PATIENT_ID, MERGED_PATIENT_ID, now=now)
        for name in SUBMISSION_SETS:
            ss = _submission_set(name)
            seq += 1
            _insert(conn, schema.submission_set, rows.submission_set_row(ss, seq=seq))
            _insert(conn, schema.object_code, rows.code_rows(ss))
            _insert(conn, schema.object_author, rows.author_rows(ss))
        for name in FOLDERS:
            fol = folder_of(name)
            seq += 1
            _insert(conn, schema.folder, rows.folder_row(fol, seq=seq))
            _insert(conn, schema.object_code, rows.code_rows(fol))
        for name in DOCUMENTS:
            ss_name, entry = entry_of(name)
            seq += 1
            row = rows.document_entry_row(entry, submission_set_id=uuid_of(ss_name), seq=seq)
            _insert(conn, schema.document_entry, row)
            _insert(conn, schema.object_code, rows.code_rows(entry))
            _insert(conn, schema.object_author, rows.author_rows(entry))
            _insert(conn, schema.reference_id, rows.reference_id_rows(entry))
        for name in ASSOCIATIONS:
            seq += 1
            _insert(conn, schema.association, rows.association_row(_association(name), seq=seq))
        world.loaded = [*SUBMISSION_SETS, *FOLDERS, *DOCUMENTS, *ASSOCIATIONS]
    return world


def open_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A migrated database holding the world, for a module-scoped fixture parametrised with
    ``"sqlite"`` / ``"postgresql"`` (the tests only read, so one load serves a module)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('iti18') / 'registry.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_database_url")
    db = Database(url)
    try:
        db.upgrade()
        load(db)
        yield db
    finally:
        db.dispose()


WORLD_PARAMS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def ask(
    queries: StoredQueries,
    query_id: str,
    *slots: tuple[str, ...],
    return_type: str = OBJECT_REF,
    home: str | None = None,
) -> list[RegistryObject]:
    """Run a stored query; each slot is ``(name, Value text, ...)``, repeated names allowed."""
    query = AdhocQuery(query_id=query_id, return_type=return_type, home=home)
    for name, *values in slots:
        query.add(name, *values)
    return queries.query(query)


_NAMES = {uuid_of(n): n for n in (*DOCUMENTS, *SUBMISSION_SETS, *FOLDERS, *ASSOCIATIONS)}


def names(objects: list[RegistryObject]) -> set[str]:
    """The world names of returned objects (the id itself for anything unknown)."""
    return {_NAMES.get(obj.entry_uuid, obj.entry_uuid) for obj in objects}
