"""STOW-RS: store instances sent as ``multipart/related; type="application/dicom"`` (PS3.18 §10.5).

Each part is received into its own file on the store's file system as it arrives (the MIME reader
of ``gateway.soap.mtom_reader``, never more than one read buffer in memory) and handed at once to
the imaging source's ingest, the same as a C-STORE's data set (``Backend.store``): checked,
moved into place, indexed, and its study's idle timer restarted, so the study is published as a
KOS manifest like any other. The body is bounded by ``dicomweb.max_upload_bytes``.

The answer is the Store Instances Response Module (PS3.18 Annex I, Table I.1-1) in DICOM JSON:
Referenced SOP Sequence for the stored instances, Failed SOP Sequence with a Failure Reason
(Table I.2-2, the statuses of PS3.4 Table B.2-1) for the others; 200 when all were stored, 202
when some were, 409 when none was (PS3.18 §10.5.3, Table 10.5.3-1).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread

from gateway.dicomweb.http import DicomWebError
from gateway.dicomweb.media import DICOM, MULTIPART
from gateway.dicomweb.ports import Backend, Rejected, StoredInstance
from gateway.dicomweb.results import element
from gateway.soap.message import Attachment
from gateway.soap.mime import BodyTooLarge, MultipartError, parse_content_type
from gateway.soap.mtom_reader import ByteSource, iter_parts

log = logging.getLogger("gateway.dicomweb")

CANNOT_UNDERSTAND = 0xC000  # PS3.18 Table I.2-2 "Error: Cannot understand"
PROCESSING_FAILURE = 0x0110
# Implementation specific (Table I.2-2 allows them; README, "DICOMweb"): the instance belongs to
# another study than the one the request is addressed to (PS3.18 §10.5.1: POST .../studies/{uid}).
STUDY_MISMATCH = 0xC409


@dataclass(slots=True)
class StoreReport:
    """What one STOW-RS request stored and refused."""

    stored: list[StoredInstance] = field(default_factory=list)
    failed: list[tuple[str, str, int, str]] = field(default_factory=list)  # class, uid, status, why

    @property
    def status(self) -> int:
        if not self.failed:
            return 200
        return 202 if self.stored else 409


def check_request(content_type: str, content_length: int | None, max_bytes: int) -> None:
    """Refuse before reading: wrong media type (415), too large (413). Raises DicomWebError."""
    try:
        media, params = parse_content_type(content_type or "")
    except MultipartError:
        media, params = "", {}
    if media != MULTIPART:
        raise DicomWebError(
            415, f'STOW-RS takes multipart/related; type="{DICOM}", not {media or "nothing"}'
        )
    inner = (params.get("type") or DICOM).strip().lower()
    if inner != DICOM:
        raise DicomWebError(415, f"STOW-RS takes {DICOM} parts only (not {inner})")
    if content_length is not None and content_length > max_bytes:
        raise DicomWebError(
            413,
            f"request body of {content_length} bytes exceeds "
            f"dicomweb.max_upload_bytes ({max_bytes})",
        )


def store_all(
    backend: Backend,
    body: ByteSource,
    content_type: str,
    content_length: int | None,
    *,
    max_bytes: int,
    study_uid: str | None,
) -> StoreReport:
    """Receive and ingest every part. Raises: DicomWebError (400 malformed body, 413)."""
    report = StoreReport()
    parts = iter_parts(
        body,
        content_type,
        content_length=content_length,
        spool_dir=backend.spool_dir,
        max_total_bytes=max_bytes,
    )
    try:
        for part in parts:
            _one(backend, part, study_uid, report)
    except BodyTooLarge as exc:
        raise DicomWebError(413, f"{exc} (dicomweb.max_upload_bytes)") from exc
    except MultipartError as exc:
        raise DicomWebError(400, f"malformed multipart body: {exc}") from exc
    return report


def _one(backend: Backend, part: Attachment, study_uid: str | None, report: StoreReport) -> None:
    try:
        media = parse_content_type(part.content_type)[0] if part.content_type else DICOM
        if media != DICOM:
            report.failed.append(("", "", CANNOT_UNDERSTAND, f"a part of type {media}"))
            return
        if part.path is None:
            report.failed.append(("", "", CANNOT_UNDERSTAND, "an empty part"))
            return
        _add_preamble(part.path)
        ids = _identity(part)
        if study_uid and ids[2] and ids[2] != study_uid:
            report.failed.append(
                (ids[0], ids[1], STUDY_MISMATCH, f"in study {ids[2]}, not {study_uid}")
            )
            return
        try:
            report.stored.append(backend.store(part.path))
        except Rejected as exc:
            log.warning("STOW-RS: %s refused (0x%04X): %s", ids[1] or "?", exc.status, exc)
            report.failed.append((ids[0], ids[1], exc.status, str(exc)))
    finally:
        part.discard()  # the file was moved into place, or is removed now


def _add_preamble(path: Path) -> None:
    """Put the 128-byte preamble and ``DICM`` in front of a part that starts straight with the
    File Meta Information (pydicom writes that by default): PS3.10 §7.1 asks for them, the
    ingest reads only complete Part 10 files, and refusing such a part would help nobody."""
    with open(path, "rb") as handle:
        head = handle.read(132)
    if head[128:132] == b"DICM" or not head.startswith(b"\x02\x00"):
        return
    fixed = path.with_name(path.name + ".p10")
    with open(path, "rb") as source, open(fixed, "wb") as out:
        out.write(b"\x00" * 128 + b"DICM")
        shutil.copyfileobj(source, out, 1024 * 1024)
    os.replace(fixed, path)


def _identity(part: Attachment) -> tuple[str, str, str]:
    """SOP Class, SOP Instance and Study Instance UIDs as far as they can be read."""
    try:
        ds = dcmread(part.path, stop_before_pixels=True)  # type: ignore[arg-type]
        values = ds.get("SOPClassUID"), ds.get("SOPInstanceUID"), ds.get("StudyInstanceUID")
        return tuple(str(v or "") for v in values)  # type: ignore[return-value]
    except Exception:  # unreadable: the ingest says why
        return "", "", ""


def response(report: StoreReport, root: str, study_uid: str | None) -> dict[str, Any]:
    """The Store Instances Response Module (PS3.18 Table I.1-1) as DICOM JSON."""
    out: dict[str, Any] = {}
    studies = {i.study_instance_uid for i in report.stored}
    target = study_uid or (next(iter(studies)) if len(studies) == 1 else None)
    out["00081190"] = element("UR", [f"{root}/studies/{target}"] if target else [])
    if report.failed:
        out["00081198"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": element("UI", [sop_class]),
                    "00081155": element("UI", [sop_uid]),
                    "00081197": element("US", [status]),
                }
                for sop_class, sop_uid, status, _why in report.failed
            ],
        }
    if report.stored:
        out["00081199"] = {"vr": "SQ", "Value": [_referenced(i, root) for i in report.stored]}
    return out


def _referenced(instance: StoredInstance, root: str) -> dict[str, Any]:
    url = (
        f"{root}/studies/{instance.study_instance_uid}/series/"
        f"{instance.series_instance_uid}/instances/{instance.sop_instance_uid}"
    )
    return {
        "00081150": element("UI", [instance.sop_class_uid]),
        "00081155": element("UI", [instance.sop_instance_uid]),
        "00081190": element("UR", [url]),
    }


def reasons(report: StoreReport) -> Iterator[str]:
    """One line per refused instance, for the log and the audit outcome description."""
    for _cls, uid, status, why in report.failed:
        yield f"{uid or '?'}: 0x{status:04X} {why}"
