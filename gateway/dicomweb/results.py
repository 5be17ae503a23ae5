"""QIDO-RS answers: one DICOM JSON object (PS3.18 Annex F) per matching study, series or instance.

The required attributes of PS3.18 Tables 10.6.3-3..5 come from the catalog row; attributes asked
for with ``includefield`` (or matched on) that the catalog does not hold are read from the header
of one stored instance of the study, series or instance (the same for all of them: study and
series attributes are the same in every instance of a well-formed study).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from gateway.dicomweb import qido
from gateway.dicomweb.schema import COLUMNS

_COLUMN = {keyword: name for name, (keyword, _level, _kind) in COLUMNS.items()}
_STRING_NUMBERS = {"IS"}  # IS values are JSON numbers (PS3.18 F.2.3)


def element(vr: str, values: Sequence[Any]) -> dict[str, Any]:
    """``{"vr": vr, "Value": [...]}``, without Value when there is none (PS3.18 F.2.2)."""
    present = [v for v in values if v is not None and v != ""]
    return {"vr": vr, "Value": present} if present else {"vr": vr}


def person_name(text: str | None) -> dict[str, Any]:
    """A PN element: alphabetic, ideographic, phonetic groups split at ``=`` (PS3.18 F.2.2)."""
    if not text:
        return {"vr": "PN"}
    names = []
    for value in text.split("\\"):
        groups = value.split("=")
        item = {
            key: group
            for key, group in zip(("Alphabetic", "Ideographic", "Phonetic"), groups, strict=False)
            if group
        }
        names.append(item)
    return {"vr": "PN", "Value": names}


def _value(keyword: str, raw: Any) -> dict[str, Any]:
    vr = qido.vr_of(keyword)
    if vr == "PN":
        return person_name(raw)
    if raw is None:
        return {"vr": vr}
    if vr in ("IS", "US", "UL", "SS", "SL"):
        return element(vr, [int(raw)])
    if vr == "CS" and isinstance(raw, str):
        return element(vr, raw.split("\\"))
    return element(vr, [raw])


def _requests(row: Mapping[str, Any]) -> dict[str, Any]:
    """RequestAttributesSequence (0040,0275) with its two matching keys per item."""
    sps = (row.get("sps_ids") or "").strip("\\").split("\\") if row.get("sps_ids") else []
    rps = (row.get("rp_ids") or "").strip("\\").split("\\") if row.get("rp_ids") else []
    items = []
    for index in range(max(len(sps), len(rps))):
        item: dict[str, Any] = {}
        rp = rps[index] if index < len(rps) else ""
        sp = sps[index] if index < len(sps) else ""
        item["00401001"] = element("SH", [rp])
        item["00400009"] = element("SH", [sp])
        items.append(item)
    return {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}


def _tag(keyword: str) -> str:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    assert tag is not None
    return f"{tag:08X}"


class Results:
    """Formats the rows of a search; ``header(sop_uid)`` reads an instance's header."""

    def __init__(self, root: str, header: Callable[[str], Dataset | None]) -> None:
        self.root = root.rstrip("/")
        self.header = header

    def study(
        self, row: Mapping[str, Any], modalities: Sequence[str], search: qido.Search
    ) -> dict[str, Any]:
        uid = row["study_instance_uid"]
        out: dict[str, Any] = {}
        for keyword in qido.STUDY_FIELDS:
            out[_tag(keyword)] = self._field(keyword, row, modalities)
        out[_tag("RetrieveURL")] = element("UR", [f"{self.root}/studies/{uid}"])
        return self._extra(out, row, search, "study")

    def series(self, row: Mapping[str, Any], search: qido.Search) -> dict[str, Any]:
        study, uid = row["study_instance_uid"], row["series_instance_uid"]
        out: dict[str, Any] = {}
        if search.study_uid is None:  # all series: with the study's attributes (§10.6.3.3.2)
            for keyword in qido.STUDY_FIELDS[:-3]:
                if keyword not in ("ModalitiesInStudy", "RetrieveURL"):
                    out[_tag(keyword)] = self._field(keyword, row, ())
            out[_tag("StudyInstanceUID")] = element("UI", [study])
        for keyword in qido.SERIES_FIELDS:
            out[_tag(keyword)] = self._field(keyword, row, ())
        out[_tag("RetrieveURL")] = element("UR", [f"{self.root}/studies/{study}/series/{uid}"])
        return self._extra(out, row, search, "series")

    def instance(self, row: Mapping[str, Any], search: qido.Search) -> dict[str, Any]:
        study, series = row["study_instance_uid"], row["series_instance_uid"]
        uid = row["sop_instance_uid"]
        out: dict[str, Any] = {}
        if search.series_uid is None:  # study's or all instances: with series attributes
            for keyword in qido.SERIES_FIELDS:
                if keyword not in ("RetrieveURL", "NumberOfSeriesRelatedInstances"):
                    out[_tag(keyword)] = self._field(keyword, row, ())
        if search.study_uid is None:
            for keyword in qido.STUDY_FIELDS:
                if keyword not in ("RetrieveURL", "ModalitiesInStudy") and not keyword.startswith(
                    "Number"
                ):
                    out[_tag(keyword)] = self._field(keyword, row, ())
        for keyword in qido.INSTANCE_FIELDS:
            out[_tag(keyword)] = self._field(keyword, row, ())
        out[_tag("StudyInstanceUID")] = element("UI", [study])
        out[_tag("SeriesInstanceUID")] = element("UI", [series])
        out[_tag("RetrieveURL")] = element(
            "UR", [f"{self.root}/studies/{study}/series/{series}/instances/{uid}"]
        )
        return self._extra(out, row, search, "instance")

    def _field(
        self, keyword: str, row: Mapping[str, Any], modalities: Sequence[str]
    ) -> dict[str, Any]:
        if keyword == "ModalitiesInStudy":
            return element("CS", list(modalities))
        if keyword == "InstanceAvailability":
            return element("CS", ["ONLINE"])  # every instance is on this server's disk
        if keyword == "NumberOfStudyRelatedSeries":
            return element("IS", [row["series"]])
        if keyword in ("NumberOfStudyRelatedInstances", "NumberOfSeriesRelatedInstances"):
            return element("IS", [row["instances"]])
        if keyword == "RequestAttributesSequence":
            return _requests(row)
        if keyword == "StudyInstanceUID":
            return element("UI", [row["study_instance_uid"]])
        if keyword == "SeriesInstanceUID":
            return element("UI", [row["series_instance_uid"]])
        if keyword in ("SOPInstanceUID", "SOPClassUID"):
            return element(
                "UI", [row["sop_instance_uid" if "Instance" in keyword else "sop_class_uid"]]
            )
        return _value(keyword, row.get(_COLUMN.get(keyword, ""), None))

    def _extra(
        self, out: dict[str, Any], row: Mapping[str, Any], search: qido.Search, level: str
    ) -> dict[str, Any]:
        """Attributes asked for beyond the required ones, from the catalog or a header."""
        wanted = [k for k in search.include if _tag(k.split(".")[0]) not in out]
        if search.include_all:
            wanted += [
                kw
                for name, (kw, lvl, _k) in COLUMNS.items()
                if qido.LEVELS.index(lvl) <= qido.LEVELS.index(level) and _tag(kw) not in out
            ]
        missing = []
        for path in wanted:
            keyword = path.split(".")[0]
            if keyword in _COLUMN and qido.LEVELS.index(
                COLUMNS[_COLUMN[keyword]][1]
            ) <= qido.LEVELS.index(level):
                out[_tag(keyword)] = self._field(keyword, row, ())
            else:
                missing.append(keyword)
        if missing:
            header = self.header(row.get("sample") or row.get("sop_instance_uid") or "")
            if header is not None:
                for keyword in missing:
                    if keyword in header:
                        single = Dataset()
                        single[keyword] = header[keyword]
                        out.update(single.to_json_dict(bulk_data_threshold=1 << 62))
        return dict(sorted(out.items()))


def header_reader(path_of: Callable[[str], Path | None]) -> Callable[[str], Dataset | None]:
    """Read an instance's header (up to the pixel data) by SOP Instance UID, None if gone."""

    def read(uid: str) -> Dataset | None:
        path = path_of(uid)
        if path is None:
            return None
        try:
            return dcmread(path, stop_before_pixels=True)
        except Exception:  # an unreadable file simply adds nothing
            return None

    return read
