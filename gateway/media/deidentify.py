"""De-identification: the Basic Application Level Confidentiality Profile of DICOM PS3.15 Annex E
with the Retain Longitudinal Temporal Information with Modified Dates Option and the Clean
Descriptors Option.

Every attribute of Table E.1-1 (``deid_table``, generated from the standard) gets the action the
table gives it, the option's action taking the place of the Basic Profile's where the option has
one (PS3.15 E.3), wherever the attribute is: top level or inside any Item of any Sequence
(E.1.1). How each action is carried out here:

- ``X`` remove; ``Z`` empty (an empty Sequence; Study ID, which a DICOMDIR STUDY record needs,
  gets a keyed dummy as Z allows); ``D`` a dummy value of the VR; ``U`` the keyed
  UID of the value (below); ``K`` keep, Sequences cleaned item by item.
- The compound actions keep the attribute when an IOD may need it, since the IOD of every SOP Class
  is not known here: ``X/Z`` -> ``Z``, ``X/D``, ``Z/D`` and ``X/Z/D`` -> ``D``, ``X/Z/U*`` -> keep
  the Sequence and clean its Items (its UIDs are then replaced by their own ``U`` rows).
- ``C`` of the Modified Dates Option: dates (DA, and the date of a DT) move back by a whole number
  of days fixed per key and patient, so intervals between dates of one patient are kept across
  studies and exports (E.3.6); times stay (whole days do not change them). Longitudinal Temporal
  Information Modified (0028,0303) is ``MODIFIED``.
- ``C`` of the Clean Descriptors Option: text is kept after every word of an identifying value of
  the same data set (names, identifiers, addresses, dates ... that the profile removes or replaces)
  is replaced by ``***`` (E.3.5 "replace with values of similar meaning known not to contain
  identifying information"); Sequences are cleaned item by item (codes are kept).
- Private attributes (odd groups) are removed (the Retain Safe Private Option is not offered);
  Curves (50xx) and Overlays (60xx) are removed whole, not only their data, so no half Overlay Plane
  module is left.
- UIDs: ``2.25.`` and the integer of a UUID made from HMAC-SHA-256(key, UID) (RFC 9562 version 8,
  PS3.5 B.2): the same UID gives the same UID within one key, so studies, series and references
  stay linked between instances and between exports; another key gives other UIDs.
- The patient: Patient ID and Patient's Name become a pseudonym made the same way from the patient's
  identifier and its issuer, stable for one key; the Issuer of Patient ID Qualifiers Sequence, which
  the table does not list but which qualifies the original identifier, goes with it.
- Patient Identity Removed (0012,0062) ``YES``; De-identification Method (0012,0063) and its Code
  Sequence (0012,0064) list the profile and both options (CID 7050: 113100, 113107, 113105).
- Burned In Annotation (0028,0301) ``YES``: the instance is refused (:class:`BurnedInAnnotation`)
  unless ``allow_burned_in``: the pixel data are never changed (the Clean Pixel Data Option is not
  offered).

Standard: DICOM PS3.15 Annex E (E.1.1, Table E.1-1, E.3.5, E.3.6), PS3.16 CID 7050, PS3.3 C.12.1.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from gateway.media.deid_table import EDITION, TABLE_E1_1

# PS3.16 CID 7050 De-identification Method (coding scheme DCM).
METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113105", "Clean Descriptors Option"),
)
# De-identification Method (0012,0063), LO: one value per line of at most 64 characters.
METHOD = (f"DICOM PS3.15 {EDITION} Annex E", *(meaning for _code, meaning in METHOD_CODES))
_SIMPLER = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "K"}
_TEXT_VRS = {"LO", "SH", "ST", "LT", "UT", "UC", "PN"}
_SOURCE_VRS = _TEXT_VRS | {"AE", "DA", "DT"}  # values whose words are identifying
_DUMMY = {
    "PN": "ANONYMOUS",
    "AE": "ANONYMOUS",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "AS": "000D",
    "IS": "0",
    "DS": "0",
    "UR": "urn:anonymized",
}
_NUMERIC_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"}
_BINARY_VRS = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}
_WORD = re.compile(r"[0-9A-Za-z\u00C0-\uFFFF]+")
MAX_SHIFT_DAYS = 3650


class BurnedInAnnotation(ValueError):
    """The instance says its pixel data show identifying text (0028,0301) = YES."""


def table_action(group: int, element: int) -> str | None:
    """The action Table E.1-1 gives an attribute with both options applied, or None when the
    table does not list it."""
    row = TABLE_E1_1.get(f"{group:04x}{element:04x}")
    if row is None and group >> 8 in (0x50, 0x60):
        masked = f"{group >> 8:02x}xx"
        row = TABLE_E1_1.get(f"{masked}xxxx") or TABLE_E1_1.get(f"{masked}{element:04x}")
    if row is None:
        return None
    _name, basic, clean, dates = row
    return dates or clean or basic


class Deidentifier:
    """Applies the profile with one key (thread-safe: no state besides the key)."""

    def __init__(self, key: bytes, *, allow_burned_in: bool = False) -> None:
        if len(key) < 16:
            raise ValueError("a de-identification key needs at least 16 bytes")
        self._key = key
        self.allow_burned_in = allow_burned_in

    # -- keyed replacements ---------------------------------------------------------------------
    def _mac(self, purpose: str, value: str) -> bytes:
        return hmac.new(self._key, f"{purpose}\0{value}".encode(), hashlib.sha256).digest()

    def uid(self, value: str) -> str:
        """The replacement of a UID: ``2.25.<UUIDv8 from HMAC(key, UID)>`` (PS3.5 B.2)."""
        number = int.from_bytes(self._mac("uid", value.strip())[:16], "big")
        number &= ~(0xF000 << 64) & ~(0xC000 << 48)  # version and variant bits (RFC 9562)
        number |= (0x8000 << 64) | (0x8000 << 48)
        return f"2.25.{uuid.UUID(int=number).int}"

    def pseudonym(self, identity: str) -> str:
        """A patient's pseudonym: ``ANON`` and 16 letters and digits from HMAC(key, identity)."""
        code = base64.b32encode(self._mac("patient", identity)[:10]).decode()
        return f"ANON{code}"

    def shift_days(self, identity: str) -> int:
        """Days every date of this patient moves back (1 to MAX_SHIFT_DAYS), fixed per key."""
        return 1 + int.from_bytes(self._mac("dates", identity)[:4], "big") % MAX_SHIFT_DAYS

    # -- files ----------------------------------------------------------------------------------
    def deidentify_file(
        self, source: str | Path | BinaryIO, target: str | Path
    ) -> tuple[str, str, str]:
        """Read a Part 10 file, de-identify it, write it to ``target`` in the same transfer
        syntax; return its new (Study, Series, SOP Instance) UIDs.

        Raises: BurnedInAnnotation; ValueError (not a DICOM file).
        """
        try:
            ds = dcmread(source)
        except Exception as exc:  # pydicom raises many kinds on garbled input
            raise ValueError(f"not a readable DICOM file: {exc}") from exc
        self.deidentify(ds)
        meta = ds.file_meta
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID  # the writer of this file
        for keyword in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                        "ReceivingApplicationEntityTitle", "PrivateInformationCreatorUID",
                        "PrivateInformation"):  # fmt: skip
            if keyword in meta:
                delattr(meta, keyword)
        ds.save_as(target, enforce_file_format=True)
        return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)

    # -- data sets ------------------------------------------------------------------------------
    def deidentify(self, ds: Dataset) -> None:
        """De-identify a data set in place. Raises: BurnedInAnnotation."""
        burned_in = str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES"
        if burned_in and not self.allow_burned_in:
            raise BurnedInAnnotation(
                "Burned In Annotation (0028,0301) is YES: its pixel data may show the "
                "patient's identity and are not cleaned (--allow-burned-in exports it anyway)"
            )
        identity = patient_identity(ds)
        context = _Context(
            deidentifier=self,
            shift=dt.timedelta(days=self.shift_days(identity)),
            words=identifying_words(ds),
            pseudonym=self.pseudonym(identity),
        )
        study_uid = str(ds.get("StudyInstanceUID", "") or "")
        context.clean(ds)
        if "StudyID" in ds:
            # Z allows "a non-zero length dummy value": the DICOMDIR's STUDY record needs one
            # (PS3.3 F.5, Study ID Type 1); keyed, so the studies of a patient stay apart.
            ds.StudyID = self.pseudonym(f"study\0{study_uid}")[4:12]
        ds.PatientID = context.pseudonym
        ds.PatientName = context.pseudonym
        # The qualifiers name the issuer of the original Patient ID (PS3.3 C.7.1.1), not of the
        # pseudonym; Table E.1-1 lists Issuer of Patient ID (X) but not this Sequence.
        if "IssuerOfPatientIDQualifiersSequence" in ds:
            del ds.IssuerOfPatientIDQualifiersSequence
        _mark(ds)


class _Context:
    """The per-instance state of one de-identification: date shift, words to clean, pseudonym."""

    def __init__(
        self, *, deidentifier: Deidentifier, shift: dt.timedelta, words: set[str], pseudonym: str
    ) -> None:
        self.deidentifier = deidentifier
        self.shift = shift
        self.pattern = _word_pattern(words)
        self.pseudonym = pseudonym

    def clean(self, ds: Dataset) -> None:
        """Apply the table to every attribute of ``ds`` and, recursively, of its Items."""
        for tag in list(ds.keys()):
            if tag.is_private or tag.group >> 8 in (0x50, 0x60):
                del ds[tag]
                continue
            action = table_action(tag.group, tag.element)
            element = ds[tag]
            if action is None:
                if element.VR == "SQ":
                    self._items(element)
                continue
            self._apply(ds, element, _SIMPLER.get(action, action))

    def _apply(self, ds: Dataset, element: DataElement, action: str) -> None:
        if action == "X":
            del ds[element.tag]
        elif element.VR == "SQ":
            if action == "Z":
                element.value = Sequence()
            else:  # K, C, D and U* keep the Sequence and clean its Items
                self._items(element)
        elif action == "Z":
            element.value = None
        elif action == "D":
            element.value = self._dummy(element)
        elif action == "U":
            element.value = self._uids(element.value)
        elif action == "C":
            element.value = self._cleaned(element)

    def _items(self, element: DataElement) -> None:
        for item in element.value:
            self.clean(item)

    def _dummy(self, element: DataElement) -> Any:
        vr = element.VR
        if vr == "UI":
            return self._uids(element.value) or self.deidentifier.uid(str(element.tag))
        if vr in _NUMERIC_VRS:
            return 0
        if vr in _BINARY_VRS:
            return b"\x00\x00"
        return _DUMMY.get(vr, "ANONYMIZED")

    def _uids(self, value: Any) -> Any:
        if isinstance(value, str | bytes):
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
            return self.deidentifier.uid(text) if text.strip() else value
        if value is None:
            return None
        return [self.deidentifier.uid(str(v)) for v in value]

    def _cleaned(self, element: DataElement) -> Any:
        value = element.value
        if element.VR in ("DA", "DT"):
            return _each(value, lambda v: _shift_date(v, self.shift))
        if element.VR in _TEXT_VRS and value is not None:
            return _each(value, lambda v: self._scrub(str(v)))
        return value  # TM (whole days do not move a time), codes, numbers: nothing identifying

    def _scrub(self, text: str) -> str:
        return self.pattern.sub("***", text) if self.pattern is not None else text


def _each(value: Any, change: Any) -> Any:
    """``change`` applied to a value or to each of a multi-valued one."""
    if value is None or value == "":
        return value
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return change(value)
    return [change(v) for v in value]


def _shift_date(value: Any, shift: dt.timedelta) -> str:
    """A DA, or the date part of a DT, ``shift`` earlier; empty when it is not a full date."""
    text = str(value).strip()
    try:
        day = dt.datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        return ""  # a partial or malformed date cannot be shifted: better empty than kept
    return (day - shift).strftime("%Y%m%d") + text[8:]


def _word_pattern(words: set[str]) -> re.Pattern[str] | None:
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![0-9A-Za-z])(?:{alternatives})(?![0-9A-Za-z])", re.IGNORECASE)


def patient_identity(ds: Dataset) -> str:
    """The patient's identifier with its issuer, as HL7 CX (``ID^^^&OID&ISO`` for an ISO OID), so
    that an instance of an affinity-domain patient gives the same pseudonym as the patient's
    domain identifier itself."""
    patient_id = str(ds.get("PatientID", "") or "").strip()
    qualifiers = ds.get("IssuerOfPatientIDQualifiersSequence") or []
    first = qualifiers[0] if len(qualifiers) else Dataset()
    universal = str(first.get("UniversalEntityID", "") or "").strip()
    kind = str(first.get("UniversalEntityIDType", "") or "").strip()
    if universal and kind.upper() == "ISO":
        return f"{patient_id}^^^&{universal}&ISO"
    issuer = str(ds.get("IssuerOfPatientID", "") or "").strip()
    return f"{patient_id}^^^{issuer}" if issuer else patient_id


def identifying_words(ds: Dataset) -> set[str]:
    """The words of every value the profile removes or replaces (names, identifiers, addresses,
    dates ...), anywhere in ``ds``: what Clean Descriptors must not leave in a text."""
    words: set[str] = set()
    for element in _walk(ds):
        action = table_action(element.tag.group, element.tag.element)
        if action is None or action in ("K", "U") or element.VR not in _SOURCE_VRS:
            continue
        if action == "C" and element.VR not in ("DA", "DT"):  # real dates identify; texts kept
            continue
        values = element.value if element.VM > 1 else [element.value]
        for value in values:
            words.update(_words(str(value or ""), element.VR))
    return words


def _words(text: str, vr: str) -> Iterator[str]:
    whole = text.strip()
    if len(whole) >= 2 and not (whole.isdigit() and len(whole) < 4):
        yield whole  # "EXT-123" whole, as well as its words
    if vr in ("DA", "DT") and len(text) >= 8:
        year, month, day = text[:4], text[4:6], text[6:8]  # the usual ways of writing a date
        yield from (text[:8], f"{year}-{month}-{day}", f"{day}/{month}/{year}")
        yield from (f"{month}/{day}/{year}", f"{day}.{month}.{year}")
        return
    for word in _WORD.findall(text):
        if len(word) >= 4 or (len(word) >= 2 and not word.isdigit()):
            yield word


def _walk(ds: Dataset) -> Iterator[DataElement]:
    for element in ds:
        yield element
        if element.VR == "SQ":
            for item in element.value:
                yield from _walk(item)


def _mark(ds: Dataset) -> None:
    """PS3.15 E.1.1 and PS3.3 C.12.1: say what was done."""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = list(METHOD)
    codes = []
    for value, meaning in METHOD_CODES:
        code = Dataset()
        code.CodeValue = value
        code.CodingSchemeDesignator = "DCM"
        code.CodeMeaning = meaning
        codes.append(code)
    ds.DeidentificationMethodCodeSequence = Sequence(codes)
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
