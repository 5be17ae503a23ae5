"""QIDO-RS: search for studies, series and instances (PS3.18 §10.6; matching per PS3.4 C.2.2.2).

Query parameters (PS3.18 §8.3.4): ``{attributeID}={value}`` where the attribute is a keyword
(``PatientID``), a tag (``00100020``) or a path into a sequence (``RequestAttributesSequence.
RequestedProcedureID``); ``includefield`` (attributes or ``all``), ``fuzzymatching``, ``limit``,
``offset``. Matching:

- single value (case-insensitive for PN, PS3.4 C.2.2.2.1), list of UIDs (comma or backslash,
  C.2.2.2.2), a backslash list for CS values (ModalitiesInStudy=CT\\MR);
- wildcards ``*`` and ``?`` on string values other than dates, times and UIDs (C.2.2.2.4);
- ranges ``a-b``, ``-b``, ``a-`` on DA and TM values (C.2.2.2.5);
- an empty value matches everything and asks for the attribute (universal matching, C.2.2.2.3).

``fuzzymatching=true`` is not supported: literal matching is done and a Warning says so
(PS3.18 §8.3.4.1). Attributes this server does not match on are returned but not matched, with a
Warning naming them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from sqlalchemy import ColumnElement, Select, and_, distinct, func, select

from gateway.dicomweb.catalog import normal_time
from gateway.dicomweb.http import DicomWebError
from gateway.dicomweb.schema import COLUMNS, dicomweb_instance

c = dicomweb_instance.c
LEVELS = ("study", "series", "instance")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_DATE = re.compile(r"^[0-9]{8}$")
_TIME = re.compile(r"^[0-9]{2}([0-9]{2}([0-9]{2}(\.[0-9]{1,6})?)?)?$")
_KEYWORD_COLUMN = {keyword: name for name, (keyword, _l, _k) in COLUMNS.items()}
_UID_COLUMNS = {
    "StudyInstanceUID": ("study_instance_uid", "study"),
    "SeriesInstanceUID": ("series_instance_uid", "series"),
    "SOPInstanceUID": ("sop_instance_uid", "instance"),
    "SOPClassUID": ("sop_class_uid", "instance"),
}
_SEQUENCE_KEYS = {
    "RequestAttributesSequence.ScheduledProcedureStepID": "sps_ids",
    "RequestAttributesSequence.RequestedProcedureID": "rp_ids",
}
_SPECIAL = {"includefield", "fuzzymatching", "limit", "offset", "accept", "charset"}

STUDY_FIELDS = (
    "SpecificCharacterSet",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "InstanceAvailability",
    "ModalitiesInStudy",
    "ReferringPhysicianName",
    "TimezoneOffsetFromUTC",
    "RetrieveURL",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyID",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)  # PS3.18 Table 10.6.3-3
SERIES_FIELDS = (
    "SpecificCharacterSet",
    "Modality",
    "TimezoneOffsetFromUTC",
    "SeriesDescription",
    "RetrieveURL",
    "SeriesInstanceUID",
    "SeriesNumber",
    "NumberOfSeriesRelatedInstances",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "RequestAttributesSequence",
)  # PS3.18 Table 10.6.3-4
INSTANCE_FIELDS = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceAvailability",
    "TimezoneOffsetFromUTC",
    "RetrieveURL",
    "InstanceNumber",
    "Rows",
    "Columns",
    "BitsAllocated",
    "NumberOfFrames",
)  # PS3.18 Table 10.6.3-5


@dataclass(slots=True, kw_only=True)
class Search:
    """A parsed search request."""

    level: str
    study_uid: str | None = None
    series_uid: str | None = None
    conditions: list[ColumnElement[bool]] = field(default_factory=list)
    modalities: list[str] = field(default_factory=list)  # ModalitiesInStudy
    include: list[str] = field(default_factory=list)  # keywords asked for beyond the required
    include_all: bool = False
    limit: int = 0
    offset: int = 0
    warnings: list[str] = field(default_factory=list)


def _keyword(key: str) -> str:
    """The keyword of an attribute id (keyword or 8-hex tag). Raises DicomWebError(400)."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", key):
        found = keyword_for_tag(int(key, 16))
        if not found:
            raise DicomWebError(400, f"attribute {key} is not in the DICOM dictionary")
        return found
    if tag_for_keyword(key) is None:
        raise DicomWebError(400, f"{key!r} is not a DICOM attribute keyword or tag")
    return key


def _level_of(keyword: str) -> str:
    if keyword in _UID_COLUMNS:
        return _UID_COLUMNS[keyword][1]
    if keyword in _KEYWORD_COLUMN:
        return COLUMNS[_KEYWORD_COLUMN[keyword]][1]
    if keyword in ("ModalitiesInStudy",):
        return "study"
    return "any"


def parse(level: str, params: Mapping[str, Sequence[str]], *, max_results: int) -> Search:
    """Read the query parameters of a search at ``level``. Raises DicomWebError(400)."""
    search = Search(level=level)
    for key, values in params.items():
        lowered = key.lower()
        if lowered in _SPECIAL:
            _special(search, lowered, values, max_results)
            continue
        path = ".".join(_keyword(part) for part in key.split("."))
        for value in values:
            _match(search, path, value)
    if search.limit == 0 or search.limit > max_results:
        search.limit = max_results
    return search


def _special(search: Search, key: str, values: Sequence[str], max_results: int) -> None:
    if key == "includefield":
        for value in values:
            for item in (v.strip() for v in value.split(",")):
                if item == "all":
                    search.include_all = True
                elif item:
                    search.include.append(".".join(_keyword(p) for p in item.split(".")))
    elif key == "fuzzymatching":
        if values and values[-1].lower() == "true":
            search.warnings.append(
                "The fuzzymatching parameter is not supported. Only literal matching has been "
                "performed."
            )
        elif values and values[-1].lower() != "false":
            raise DicomWebError(400, "fuzzymatching must be true or false")
    elif key in ("limit", "offset"):
        try:
            number = int(values[-1])
        except ValueError:
            raise DicomWebError(400, f"{key} must be a whole number, got {values[-1]!r}") from None
        if number < 0:
            raise DicomWebError(400, f"{key} must not be negative")
        setattr(search, key, number)


def _match(search: Search, path: str, value: str) -> None:
    """Add the condition of ``path=value`` (an empty value only asks for the attribute)."""
    keyword = path.split(".")[0]
    lower = _level_of(keyword)
    if lower != "any" and LEVELS.index(lower) > LEVELS.index(search.level):
        if not (search.level == "study" and keyword == "Modality"):
            raise DicomWebError(
                400, f"{keyword} is a {lower}-level attribute: it cannot match {search.level}s"
            )
        keyword = path = "ModalitiesInStudy"
    if path not in search.include:
        search.include.append(path)
    if value == "":
        return
    if keyword == "ModalitiesInStudy":
        search.modalities.extend(v for v in re.split(r"[\\,]", value) if v)
        return
    if path in _SEQUENCE_KEYS:
        column = getattr(c, _SEQUENCE_KEYS[path])
        search.conditions.append(column.like(f"%\\{_like(value)}\\%", escape="!"))
        return
    if keyword in _UID_COLUMNS:
        uids = [u.strip() for u in re.split(r"[\\,]", value) if u.strip()]
        bad = [u for u in uids if not _UID.match(u) or len(u) > 64]
        if bad:
            raise DicomWebError(400, f"{keyword}: {bad[0]!r} is not a valid UID")
        search.conditions.append(getattr(c, _UID_COLUMNS[keyword][0]).in_(uids))
        return
    if keyword not in _KEYWORD_COLUMN:
        search.warnings.append(f"{path} is returned but not used for matching")
        return
    name = _KEYWORD_COLUMN[keyword]
    search.conditions.append(_condition(name, COLUMNS[name][2], keyword, value))


def _condition(name: str, kind: str, keyword: str, value: str) -> ColumnElement[bool]:
    column = getattr(c, name)
    if kind in ("DA", "TM"):
        return _range(column, kind, keyword, value)
    if kind in ("IS", "US"):
        try:
            return column == int(value)
        except ValueError:
            raise DicomWebError(400, f"{keyword}: {value!r} is not a number") from None
    if kind == "CS" and "\\" in value:
        return column.in_(value.split("\\"))
    if kind == "PN":  # case-insensitive (PS3.4 C.2.2.2.1), folded in Python on both sides
        column, value = getattr(c, f"{name}_folded"), value.casefold()
    if "*" in value or "?" in value:
        return column.like(_like(value, wildcards=True), escape="!")
    return column == value


def _like(value: str, *, wildcards: bool = False) -> str:
    escaped = value.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return escaped.replace("*", "%").replace("?", "_") if wildcards else escaped


def _range(column: Any, kind: str, keyword: str, value: str) -> ColumnElement[bool]:
    pattern = _DATE if kind == "DA" else _TIME
    low, dash, high = value.partition("-")
    for part in (low, high) if dash else (low,):
        if part and not pattern.match(part):
            what = "a date YYYYMMDD" if kind == "DA" else "a time HHMMSS"
            raise DicomWebError(400, f"{keyword}: {part!r} is not {what} (or a range a-b)")
    if kind == "TM":
        low, high = normal_time(low) or "", normal_time(high) or ""
        high = high + "~" if high else high  # the whole second (and fraction) of the bound
    if not dash:
        if kind == "DA":
            return column == low
        return column.like(_like(value) + "%", escape="!")
    if dash and not low and not high:
        raise DicomWebError(400, f"{keyword}: a range needs at least one bound")
    parts = []
    if low:
        parts.append(column >= low)
    if high:
        parts.append(column <= high)
    return and_(*parts)


# -- running ------------------------------------------------------------------------------------
_STUDY_COLUMNS = [n for n, (_k, level, _t) in COLUMNS.items() if level == "study"]
_SERIES_COLUMNS = [n for n, (_k, level, _t) in COLUMNS.items() if level == "series"]


def statement(search: Search) -> Select[Any]:
    """The SELECT of a search: one row per study, series or instance, in arrival order."""
    where: list[ColumnElement[bool]] = list(search.conditions)
    if search.study_uid:
        where.append(c.study_instance_uid == search.study_uid)
    if search.series_uid:
        where.append(c.series_instance_uid == search.series_uid)
    if search.modalities:
        having = select(c.study_instance_uid).where(c.modality.in_(search.modalities))
        where.append(c.study_instance_uid.in_(having))
    if search.level == "instance":
        query = select(dicomweb_instance).where(*where)
        order = [c.received_at, c.sop_instance_uid]
        return query.order_by(*order).offset(search.offset).limit(search.limit + 1)
    keys = [c.study_instance_uid] + ([c.series_instance_uid] if search.level == "series" else [])
    names = _STUDY_COLUMNS + (
        [*_SERIES_COLUMNS, "sps_ids", "rp_ids"] if search.level == "series" else []
    )
    aggregates = [func.min(getattr(c, n)).label(n) for n in names]
    counts = [func.count().label("instances"), func.min(c.sop_instance_uid).label("sample")]
    if search.level == "study":
        counts.append(func.count(distinct(c.series_instance_uid)).label("series"))
    first = func.min(c.received_at)
    query = select(*keys, *aggregates, *counts).where(*where).group_by(*keys)
    return query.order_by(first, *keys).offset(search.offset).limit(search.limit + 1)


def modalities_of(conn: Any, study_uids: Sequence[str]) -> dict[str, list[str]]:
    """ModalitiesInStudy (0008,0061) of each study: its series' distinct modalities."""
    found: dict[str, list[str]] = {}
    query = (
        select(c.study_instance_uid, c.modality)
        .where(c.study_instance_uid.in_(study_uids), c.modality.is_not(None))
        .distinct()
        .order_by(c.study_instance_uid, c.modality)
    )
    for study, modality in conn.execute(query):
        found.setdefault(study, []).append(modality)
    return found


def vr_of(keyword: str) -> str:
    """The VR of a keyword, one of them when the dictionary gives a choice."""
    vr = str(dictionary_VR(keyword))
    return "OW" if vr in ("OB or OW", "US or OW") else vr.split(" ")[0]
