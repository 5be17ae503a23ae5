"""WADO-RS: instances, metadata, bulk data and frames of stored instances (PS3.18 §10.4).

Everything is streamed: a response is a generator that reads each stored file in 1 MiB pieces
(or converts one instance into a temporary file, streams it and removes it), so a 2 GB study goes
out with one chunk in memory. Transfer syntax (PS3.18 §8.7.3.5, Table 8.7.3-2): without a
``transfer-syntax`` parameter the default, Explicit VR Little Endian, is sent (converted by
``transcode`` when stored otherwise); ``transfer-syntax=*`` sends what is stored (Implicit VR
Little Endian, which Web Services shall not use, §8.7.3, is converted to Explicit); a named syntax
is sent as stored when it is the stored one, else converted into it when it is uncompressed.
Instances that cannot be given in any acceptable syntax are left out of a study or series with a
Warning; when none can be given the answer is 406.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gateway.dicomweb import jsonmodel
from gateway.dicomweb.http import DicomWebError
from gateway.dicomweb.media import (
    DICOM,
    EXPLICIT_VR_LE,
    FRAME_MEDIA_TYPES,
    OCTET_STREAM,
    MediaRange,
    closing,
    multipart_content_type,
    new_boundary,
    part_head,
)
from gateway.dicomweb.ports import Backend, ConversionError, StoredInstance

log = logging.getLogger("gateway.dicomweb")

CHUNK = 1024 * 1024
ANY = "*"
_NOT_ON_THE_WEB = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.2"}  # PS3.18 §8.7.3


def instance_syntaxes(ranges: Sequence[MediaRange]) -> list[str]:
    """The transfer syntaxes acceptable for ``application/dicom`` parts, best first (``*`` =
    as stored). Raises: DicomWebError(406) when the client accepts no DICOM instances."""
    out: list[str] = []
    for item in ranges:
        if item.media == "*/*" or (
            item.matches("multipart/related") and item.inner in (None, DICOM, "*/*")
        ):
            syntax = item.transfer_syntax or EXPLICIT_VR_LE
            if syntax not in _NOT_ON_THE_WEB and syntax not in out:
                out.append(syntax)
    if not out:
        raise DicomWebError(
            406,
            'instances are sent as multipart/related; type="application/dicom" '
            "(transfer syntaxes other than Implicit VR and Big Endian)",
        )
    return out


@dataclass(frozen=True, slots=True)
class Planned:
    instance: StoredInstance
    syntax: str

    @property
    def convert(self) -> bool:
        return self.syntax != self.instance.transfer_syntax_uid


def plan(
    backend: Backend, instances: Sequence[StoredInstance], accepted: Sequence[str]
) -> tuple[list[Planned], list[str]]:
    """The syntax of each instance, and why the others cannot be sent."""
    planned, problems = [], []
    for instance in instances:
        stored = instance.transfer_syntax_uid
        choices = [stored if s == ANY else s for s in accepted]
        if stored in _NOT_ON_THE_WEB:
            choices = [EXPLICIT_VR_LE if s == stored else s for s in choices]
        try:
            planned.append(Planned(instance, backend.plan(stored, choices)))
        except ConversionError as exc:
            problems.append(f"{instance.sop_instance_uid}: {exc}")
    return planned, problems


def stream_instances(
    backend: Backend, planned: Sequence[Planned], boundary: str
) -> Iterator[bytes]:
    """The multipart body: one ``application/dicom`` part per instance (PS3.18 §8.6.1.2)."""
    first = True
    for item in planned:
        head = part_head(boundary, f"{DICOM}; transfer-syntax={item.syntax}", first=first)
        if item.convert:
            yield from _converted(backend, item, head)
        else:
            yield head
            yield from jsonmodel.chunks(item.instance.path, 0, item.instance.size + CHUNK)
        first = False
    yield closing(boundary, empty=first)


def _converted(backend: Backend, item: Planned, head: bytes) -> Iterator[bytes]:
    target = backend.spool_dir / f".wado-{secrets.token_hex(8)}.dcm"
    try:
        try:
            backend.convert(item.instance.path, target, item.syntax)
        except ConversionError as exc:  # the plan said it could: log, end the body short
            log.error("WADO-RS: converting %s failed: %s", item.instance.sop_instance_uid, exc)
            raise
        yield head
        yield from jsonmodel.chunks(target, 0, target.stat().st_size + CHUNK)
    finally:
        target.unlink(missing_ok=True)


def instances_response(
    backend: Backend, instances: Sequence[StoredInstance], ranges: Sequence[MediaRange]
) -> tuple[str, Iterator[bytes], list[str]]:
    """Content-Type, body and problems (instances left out) of an instances retrieval."""
    accepted = instance_syntaxes(ranges)
    planned, problems = plan(backend, instances, accepted)
    if not planned:
        raise DicomWebError(
            406,
            "no instance can be sent in an acceptable transfer syntax: " + "; ".join(problems[:3]),
        )
    boundary = new_boundary()
    return (
        multipart_content_type(DICOM, boundary),
        stream_instances(backend, planned, boundary),
        problems,
    )


def metadata_media(ranges: Sequence[MediaRange]) -> str:
    """``application/dicom+json`` (or ``application/json`` when only that is accepted).
    Raises: DicomWebError(406) (XML metadata is not offered)."""
    for item in ranges:
        if item.matches("application/dicom+json"):
            return "application/dicom+json"
        if item.matches("application/json"):
            return "application/json"
    raise DicomWebError(406, "metadata is offered as application/dicom+json only")


def metadata_body(instances: Sequence[StoredInstance], base: str) -> Iterator[bytes]:
    """A JSON array with one object per instance, written one instance at a time."""
    yield b"["
    for index, instance in enumerate(instances):
        try:
            ds = jsonmodel.read(instance.path)
        except Exception as exc:  # a stored file gone bad: skip it, the log says which
            log.error("WADO-RS metadata: cannot read %s: %s", instance.sop_instance_uid, exc)
            continue
        url = (
            f"{base}/studies/{instance.study_instance_uid}/series/"
            f"{instance.series_instance_uid}/instances/{instance.sop_instance_uid}/bulkdata"
        )
        text = json.dumps(jsonmodel.to_json(ds, url), separators=(",", ":"), ensure_ascii=False)
        yield (b"," if index else b"") + text.encode("utf-8")
    yield b"]"


# -- frames -------------------------------------------------------------------------------------


def frame_numbers(text: str) -> list[int]:
    """``1,3,5`` (PS3.18 §8.3.3.1 frame list). Raises: DicomWebError(400)."""
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        raise DicomWebError(
            400, f"frame list {text!r} must be numbers separated by commas"
        ) from None
    if not numbers or any(n < 1 for n in numbers):
        raise DicomWebError(400, "frame numbers count from 1")
    return numbers


def frames_plan(
    ranges: Sequence[MediaRange], stored: str, encapsulated: bool
) -> tuple[str, str | None, bool]:
    """(part media type, its transfer syntax or None, decode?) for frames of an instance stored in
    ``stored``. Raises: DicomWebError(406)."""
    compressed_type = FRAME_MEDIA_TYPES.get(stored) if encapsulated else None
    for item in ranges:
        inner = item.inner if item.matches("multipart/related") else None
        if item.media == "*/*" or (item.matches("multipart/related") and inner in (None, "*/*")):
            if compressed_type:
                return compressed_type, stored, False
            return OCTET_STREAM, EXPLICIT_VR_LE, False
        if inner == OCTET_STREAM:
            syntax = item.transfer_syntax or EXPLICIT_VR_LE
            if syntax == ANY and encapsulated:
                return OCTET_STREAM, stored, False
            if syntax in (ANY, EXPLICIT_VR_LE):
                return OCTET_STREAM, EXPLICIT_VR_LE, encapsulated
        if inner and inner == compressed_type and item.transfer_syntax in (None, ANY, stored):
            return compressed_type, stored, False
    offered = f"{compressed_type} or " if compressed_type else ""
    raise DicomWebError(
        406,
        f'frames of this instance are offered as multipart/related; type="{offered}{OCTET_STREAM}"',
    )


def frames_body(
    backend: Backend,
    instance: StoredInstance,
    info: object,
    numbers: Sequence[int],
    media: str,
    syntax: str | None,
    decode: bool,
    boundary: str,
) -> Iterator[bytes]:
    """One part per frame, in the order asked for."""
    ts = f"; transfer-syntax={syntax}" if syntax else ""
    frames = backend.frames
    pieces: Iterator[bytes]
    if decode:
        pieces = (frames.native_bytes(frames.decoded(instance.path, info, n)) for n in numbers)  # type: ignore[arg-type]
    else:
        pieces = frames.stored(instance.path, info, numbers)  # type: ignore[arg-type]
    first = True
    for data in pieces:
        yield part_head(boundary, f"{media}{ts}", first=first)
        yield data
        first = False
    yield closing(boundary, empty=first)


def frames_type(media: str, boundary: str, syntax: str | None) -> str:
    """Content-Type of a frames answer."""
    return multipart_content_type(media, boundary, syntax if media != OCTET_STREAM else None)


def new_frames_boundary() -> str:
    return secrets.token_hex(16)
