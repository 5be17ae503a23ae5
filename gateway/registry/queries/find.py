"""The Find queries: FindDocuments, FindDocumentsByReferenceId, FindSubmissionSets, FindFolders.

Each selects the objects of one patient (and of the ids merged into it) that meet every given
parameter; parameters not given do not filter. Only the objects themselves are returned, no
associations.

Standard: ITI TF-2 §3.18.4.1.2.3.7.1 (FindDocuments), §3.18.4.1.2.3.7.14
(FindDocumentsByReferenceId), §3.18.4.1.2.3.7.2 (FindSubmissionSets), §3.18.4.1.2.3.7.3
(FindFolders), rev. 19.0.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement

from gateway.registry.queries import sql
from gateway.registry.queries import table as t
from gateway.registry.queries.request import Params
from gateway.registry.queries.sql import Found, Scope
from gateway.registry.schema import document_entry, folder, submission_set

# DocumentEntry code parameters -> the ``object_code.attribute`` they match.
DOCUMENT_CODES: tuple[tuple[str, str], ...] = (
    (t.DE_CLASS_CODE, "classCode"),
    (t.DE_TYPE_CODE, "typeCode"),
    (t.DE_PRACTICE_SETTING_CODE, "practiceSettingCode"),
    (t.DE_HEALTHCARE_FACILITY_TYPE_CODE, "healthcareFacilityTypeCode"),
    (t.DE_EVENT_CODE_LIST, "eventCodeList"),
    (t.DE_CONFIDENTIALITY_CODE, "confidentialityCode"),
    (t.DE_FORMAT_CODE, "formatCode"),
)
_DOCUMENT_TIMES = (
    ("creation_time", t.DE_CREATION_TIME_FROM, t.DE_CREATION_TIME_TO),
    ("service_start_time", t.DE_SERVICE_START_TIME_FROM, t.DE_SERVICE_START_TIME_TO),
    ("service_stop_time", t.DE_SERVICE_STOP_TIME_FROM, t.DE_SERVICE_STOP_TIME_TO),
)


def document_filters(params: Params, dialect: str) -> list[ColumnElement[bool]]:
    """The DocumentEntry conditions of every parameter given (codes, times, author, type, refs).

    Parameters the query does not define are never bound, so the same function serves the Find
    queries and the DocumentEntry filters of GetAll and the "contents" queries.
    """
    de = document_entry
    clauses: list[ColumnElement[bool]] = []
    for name, attribute in DOCUMENT_CODES:
        clauses += sql.code_filters(de.c.id, attribute, params.groups(name))
    for column, low, high in _DOCUMENT_TIMES:
        clauses += sql.time_range(de.c[column], params.one(low), params.one(high))
    clauses += sql.author_filter(de.c.id, params.many(t.DE_AUTHOR_PERSON), dialect)
    clauses += sql.reference_filters(de.c.id, params.groups(t.DE_REFERENCE_ID_LIST))
    clauses += sql.document_type_filter(params.many(t.DE_TYPE))
    return clauses


def find_documents(scope: Scope, params: Params) -> Found:
    """FindDocuments / FindDocumentsByReferenceId: the patient's DocumentEntries that match.

    Standard: ITI TF-2 §3.18.4.1.2.3.7.1, §3.18.4.1.2.3.7.14. Raises: XDSTooManyResults.
    """
    pids = sql.patient_ids(scope.conn, params.one(t.DE_PATIENT_ID))
    if not pids:
        return Found()
    de = document_entry
    rows = sql.fetch(
        scope,
        de,
        sql.one_of(de.c.patient_id, pids),
        *sql.in_list(de.c.status, params.many(t.DE_STATUS)),
        *document_filters(params, scope.dialect),
    )
    return Found(documents=rows)


def find_submission_sets(scope: Scope, params: Params) -> Found:
    """FindSubmissionSets: the patient's SubmissionSets that match.

    Standard: ITI TF-2 §3.18.4.1.2.3.7.2. Raises: XDSTooManyResults.
    """
    pids = sql.patient_ids(scope.conn, params.one(t.SS_PATIENT_ID))
    if not pids:
        return Found()
    ss = submission_set
    author = params.one(t.SS_AUTHOR_PERSON)
    rows = sql.fetch(
        scope,
        ss,
        sql.one_of(ss.c.patient_id, pids),
        *sql.in_list(ss.c.status, params.many(t.SS_STATUS)),
        *sql.in_list(ss.c.source_id, params.many(t.SS_SOURCE_ID)),
        *sql.time_range(
            ss.c.submission_time,
            params.one(t.SS_SUBMISSION_TIME_FROM),
            params.one(t.SS_SUBMISSION_TIME_TO),
        ),
        *sql.author_filter(ss.c.id, None if author is None else [author], scope.dialect),
        *sql.code_filters(ss.c.id, "contentTypeCode", params.groups(t.SS_CONTENT_TYPE)),
    )
    return Found(submission_sets=rows)


def find_folders(scope: Scope, params: Params) -> Found:
    """FindFolders: the patient's Folders that match (lastUpdateTime range, codeList).

    Standard: ITI TF-2 §3.18.4.1.2.3.7.3. Raises: XDSTooManyResults.
    """
    pids = sql.patient_ids(scope.conn, params.one(t.FOL_PATIENT_ID))
    if not pids:
        return Found()
    rows = sql.fetch(
        scope,
        folder,
        sql.one_of(folder.c.patient_id, pids),
        *sql.in_list(folder.c.status, params.many(t.FOL_STATUS)),
        *sql.time_range(
            folder.c.last_update_time,
            params.one(t.FOL_LAST_UPDATE_TIME_FROM),
            params.one(t.FOL_LAST_UPDATE_TIME_TO),
        ),
        *sql.code_filters(folder.c.id, "codeList", params.groups(t.FOL_CODE_LIST)),
    )
    return Found(folders=rows)
