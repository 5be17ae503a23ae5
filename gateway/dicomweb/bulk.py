"""WADO-RS bulk data (PS3.18 §10.4.1.1.3 "Bulkdata Resources"): the values metadata names by
``BulkDataURI`` (``jsonmodel``), one part of ``application/octet-stream`` each.

Pixel data are sent from the file without loading them: native pixel data as their little-endian
bytes, encapsulated pixel data as one part per frame in the frame's media type (as ``/frames``).
Other bulk values (overlays, icon images, waveforms...) are read with the data set.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.dicomweb import jsonmodel
from gateway.dicomweb.http import DicomWebError, StartResponse, status_line
from gateway.dicomweb.media import (
    EXPLICIT_VR_LE,
    FRAME_MEDIA_TYPES,
    OCTET_STREAM,
    closing,
    multipart_content_type,
    new_boundary,
    part_head,
)
from gateway.dicomweb.ports import Backend, ConversionError, StoredInstance

PIXEL_DATA = (0x7FE00010,)


def bulkdata_response(
    backend: Backend, start: StartResponse, instance: StoredInstance, text: str
) -> Iterator[bytes]:
    """The bulk data value at ``text`` (``7FE00010``, ``00880200/1/7FE00010``...).
    Raises: DicomWebError (400 malformed path, 404 no such value)."""
    try:
        path = jsonmodel.parse_path(text)
    except ValueError as exc:
        raise DicomWebError(400, f"bulk data path: {exc}") from exc
    boundary = new_boundary()
    if path == PIXEL_DATA:
        return _pixel_data(backend, start, instance, boundary)
    try:
        _vr, value = jsonmodel.bulk_element(jsonmodel.read(instance.path), path)
    except KeyError as exc:
        raise DicomWebError(404, f"no bulk data at {text}") from exc
    start(status_line(200), [("Content-Type", multipart_content_type(OCTET_STREAM, boundary))])
    return iter([part_head(boundary, OCTET_STREAM, first=True), value, closing(boundary)])


def _pixel_data(
    backend: Backend, start: StartResponse, instance: StoredInstance, boundary: str
) -> Iterator[bytes]:
    try:
        info = backend.frames.info(instance.path)
    except ConversionError as exc:
        raise DicomWebError(406, str(exc)) from exc
    if info is None:
        raise DicomWebError(404, "the instance has no pixel data")
    if info.encapsulated:
        media = FRAME_MEDIA_TYPES.get(info.transfer_syntax_uid, OCTET_STREAM)
        content = f"{media}; transfer-syntax={info.transfer_syntax_uid}"
        start(status_line(200), [("Content-Type", multipart_content_type(media, boundary))])
        frames = backend.frames.stored(instance.path, info, list(range(1, info.frames + 1)))
        return _parts(boundary, content, frames)
    start(status_line(200), [("Content-Type", multipart_content_type(OCTET_STREAM, boundary))])
    start_at, length = getattr(info, "start"), getattr(info, "length")  # noqa: B009
    content = f"{OCTET_STREAM}; transfer-syntax={EXPLICIT_VR_LE}"
    return _parts(boundary, content, None, (instance, start_at, length))


def _parts(
    boundary: str,
    content: str,
    frames: Iterator[bytes] | None,
    span: tuple[StoredInstance, int, int] | None = None,
) -> Iterator[bytes]:
    if frames is not None:
        first = True
        for data in frames:
            yield part_head(boundary, content, first=first)
            yield data
            first = False
        yield closing(boundary, empty=first)
        return
    assert span is not None
    instance, start_at, length = span
    yield part_head(boundary, content, first=True)
    yield from jsonmodel.chunks(instance.path, start_at, length)
    yield closing(boundary)
