"""Acceptance 3: every bad request gets its PS3.18 status code and one plain line, no traceback.

400 malformed query or UID, 404 unknown study/series/instance/frame, 405 wrong method, 406 a media
type that cannot be produced, 413 a STOW-RS body over ``dicomweb.max_upload_bytes``, 415 a STOW-RS
body that is not ``multipart/related; type="application/dicom"``; a STOW-RS request whose parts are
refused answers 409 with the Failure Reason of each (PS3.18 Table I.2-2).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
import requests

from gateway.app import Gateway
from gateway.imaging import synthetic
from tests.integration.dicomweb.conftest import load, root, start_gateway

SPEC = synthetic.StudySpec(patient_id="PAT-E")
LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, list[Path]]]:
    tmp = tmp_path_factory.mktemp("errors")
    gw = start_gateway(tmp, XDSI_DICOMWEB_MAX_UPLOAD_BYTES=str(LIMIT))
    try:
        yield gw, load(gw, tmp / "study", SPEC)
    finally:
        gw.stop()


def _get(gw: Gateway, path: str, accept: str | None = None) -> requests.Response:
    headers = {"Accept": accept} if accept else {}
    return requests.get(root(gw) + path, headers=headers, timeout=30)


def _plain(answer: requests.Response, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert words in answer.text
    assert "Traceback" not in answer.text and answer.text.count("\n") == 1


def _instance_path(paths: list[Path]) -> str:
    ds = pydicom.dcmread(paths[0], stop_before_pixels=True)
    series = f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    return f"{series}/instances/{ds.SOPInstanceUID}"


def test_malformed_query_is_400(served: tuple[Gateway, list[Path]]) -> None:
    gw, _ = served
    _plain(_get(gw, "/studies?StudyDate=2024-01-01"), 400, "StudyDate")
    _plain(_get(gw, "/studies?NoSuchKeyword=1"), 400, "NoSuchKeyword")
    _plain(_get(gw, "/studies?limit=-3"), 400, "limit")
    _plain(_get(gw, "/studies?StudyInstanceUID=1.2.abc"), 400, "not a valid UID")
    _plain(_get(gw, "/studies?SeriesNumber=1"), 400, "series-level")


def test_malformed_uid_is_400(served: tuple[Gateway, list[Path]]) -> None:
    gw, _ = served
    _plain(_get(gw, "/studies/1.2.x3/metadata"), 400, "not a valid UID")
    _plain(_get(gw, "/studies/1.2.3/series/abc"), 400, "not a valid UID")


def test_unknown_resources_are_404(served: tuple[Gateway, list[Path]]) -> None:
    gw, paths = served
    _plain(_get(gw, "/studies/1.2.3.4"), 404, "study 1.2.3.4")
    _plain(_get(gw, f"/studies/{SPEC.study_uid}/series/1.2.3.5"), 404, "series 1.2.3.5")
    instance = _instance_path(paths)
    _plain(_get(gw, instance.rsplit("/", 1)[0] + "/1.2.3.6"), 404, "no instance 1.2.3.6")
    _plain(_get(gw, instance + "/frames/7"), 404, "frame 7")
    _plain(_get(gw, "/nothing-here"), 404, "no DICOMweb resource")


def test_wrong_method_is_405(served: tuple[Gateway, list[Path]]) -> None:
    gw, _ = served
    answer = requests.delete(root(gw) + "/studies", timeout=30)
    _plain(answer, 405, "DELETE")


def test_unproducible_media_type_is_406(served: tuple[Gateway, list[Path]]) -> None:
    gw, paths = served
    instance = _instance_path(paths)
    _plain(_get(gw, instance, "image/gif"), 406, "application/dicom")
    _plain(
        _get(gw, instance + "/metadata", 'multipart/related; type="application/dicom+xml"'),
        406,
        "dicom+json",
    )
    _plain(_get(gw, instance + "/rendered", "image/gif"), 406, "image/jpeg")
    _plain(_get(gw, "/studies", "application/xml"), 406, "dicom+json")
    implicit = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2'
    _plain(_get(gw, instance, implicit), 406, "Implicit VR")


def test_stow_over_the_limit_is_413(served: tuple[Gateway, list[Path]]) -> None:
    gw, _ = served
    body = (
        b"--b\r\nContent-Type: application/dicom\r\n\r\n" + b"\0" * (2 * LIMIT) + b"\r\n--b--\r\n"
    )
    answer = requests.post(
        root(gw) + "/studies",
        data=body,
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
        timeout=30,
    )
    _plain(answer, 413, "max_upload_bytes")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b"--b\r\nContent-Type: application/dicom\r\n\r\n"
        for _ in range(4):
            yield b"\0" * LIMIT

    answer = requests.post(
        root(gw) + "/studies",
        data=chunks(),
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
        timeout=30,
    )
    _plain(answer, 413, "max_upload_bytes")
    # Parts are received in the process's own folder below .tmp/incoming (whose .owners holds
    # the lock files of live processes): nothing half-written is left there.
    incoming = gw.imaging.store.incoming_dir
    left = [p for p in incoming.rglob("*") if p.is_file() and p.parent.name != ".owners"]
    assert left == []


def test_stow_wrong_content_type_is_415(served: tuple[Gateway, list[Path]]) -> None:
    gw, _ = served
    answer = requests.post(
        root(gw) + "/studies", data=b"{}", headers={"Content-Type": "application/json"}, timeout=30
    )
    _plain(answer, 415, "multipart/related")
    answer = requests.post(
        root(gw) + "/studies",
        data=b"--b--\r\n",
        headers={"Content-Type": 'multipart/related; type="application/dicom+xml"; boundary=b'},
        timeout=30,
    )
    _plain(answer, 415, "application/dicom parts only")


def test_stow_refused_parts_are_409_with_reasons(served: tuple[Gateway, list[Path]]) -> None:
    gw, paths = served
    good = paths[0].read_bytes()
    body = (
        b"--b\r\nContent-Type: application/dicom\r\n\r\nnot dicom at all\r\n"
        b"--b\r\nContent-Type: application/dicom\r\n\r\n" + good + b"\r\n--b--\r\n"
    )
    answer = requests.post(
        root(gw) + "/studies/1.2.3.99",  # the second part belongs to another study
        data=body,
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
        timeout=30,
    )
    assert answer.status_code == 409, answer.text
    failed = answer.json()["00081198"]["Value"]
    reasons = sorted(item["00081197"]["Value"][0] for item in failed)
    assert reasons == [0xC000, 0xC409]
    _plain(
        requests.post(
            root(gw) + "/studies",
            data=b"garbage",
            headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
            timeout=30,
        ),
        400,
        "malformed multipart",
    )
