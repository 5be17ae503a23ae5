"""``provide`` and ``retrieve`` (gateway.repository.cli) against the in-process repository."""

from __future__ import annotations

import argparse
import hashlib
import io
from pathlib import Path

from gateway.config import load_settings
from gateway.errors import XDSUnknownPatientId
from gateway.metadata.ebrim import parse_submit_objects_request
from gateway.repository import cli
from gateway.repository.template import FillOptions
from tests.integration.repository.repo_support import (
    REPOSITORY_UID,
    FakeRegistry,
    RepositorySystem,
    failure,
)

PATIENT = "PAT-9^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"


def lines(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def run_provide(system: RepositorySystem, file: Path, **options: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.provide(
        file,
        FillOptions(patient_id=PATIENT, **options),  # type: ignore[arg-type]
        cli.Connection(url=system.url, timeout=30, progress=True),
        io=cli.Output(out=out, err=err),
    )
    return code, out.getvalue(), err.getvalue()


def test_provide_then_retrieve(tmp_path: Path, system: RepositorySystem) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    file = tmp_path / "report.pdf"
    file.write_bytes(data)
    code, out, err = run_provide(system, file)
    assert code == 0, err
    printed = lines(out)
    assert printed["status"] == "Success"
    [entry] = parse_submit_objects_request(system.registry.requests[0]).document_entries
    assert entry.unique_id == printed["documentUniqueId"]
    assert (entry.mime_type, entry.title, entry.patient_id) == (
        "application/pdf",
        "report.pdf",
        PATIENT,
    )
    assert "sending [" in err and "100.0%" in err  # the progress summary line

    target = tmp_path / "copy.pdf"
    out2, err2 = io.StringIO(), io.StringIO()
    code = cli.retrieve(
        repository_id=REPOSITORY_UID,
        document_id=printed["documentUniqueId"],
        out=target,
        connection=cli.Connection(url=system.url, timeout=30, progress=True),
        io=cli.Output(out=out2, err=err2),
    )
    assert code == 0, err2.getvalue()
    assert target.read_bytes() == data
    fetched = lines(out2.getvalue())
    assert fetched["sha1"] == hashlib.sha1(data).hexdigest()
    assert fetched["mimeType"] == "application/pdf"
    assert "receiving [" in err2.getvalue()
    assert {p.name for p in tmp_path.iterdir()} == {"report.pdf", "copy.pdf", "data"}


def test_provide_refused_by_the_registry(
    tmp_path: Path, system: RepositorySystem, registry: FakeRegistry
) -> None:
    registry.answer = failure(XDSUnknownPatientId("not fed"))
    file = tmp_path / "a.txt"
    file.write_text("hello")
    code, out, err = run_provide(system, file)
    assert code == 1
    assert lines(out)["status"] == "Failure"
    assert "XDSUnknownPatientId: not fed" in err


def test_retrieve_unknown_document(tmp_path: Path, system: RepositorySystem) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = cli.retrieve(
        repository_id=REPOSITORY_UID,
        document_id="1.2.3.404",
        out=tmp_path / "x",
        connection=cli.Connection(url=system.url, progress=False),
        io=cli.Output(out=out, err=err),
    )
    assert code == 1
    assert "XDSDocumentUniqueIdError" in err.getvalue()
    assert not (tmp_path / "x").exists()


def test_argparse_glue(tmp_path: Path, system: RepositorySystem) -> None:
    file = tmp_path / "scan.dcm"
    file.write_bytes(b"DICM")
    parser = argparse.ArgumentParser()
    cli.add_provide_arguments(parser)
    args = parser.parse_args(
        [
            str(file),
            "--patient",
            PATIENT,
            "--url",
            system.url,
            "--class-code",
            "IMAGES^Images^1.3.6.1.4.1.19376.1.2.6.1",
            "--title",
            "A scan",
            "--no-progress",
        ]
    )
    assert cli.run_provide(args, load_settings(environ={})) == 0
    [entry] = parse_submit_objects_request(system.registry.requests[0]).document_entries
    assert entry.class_code is not None and entry.class_code.code == "IMAGES"
    assert (entry.title, entry.mime_type) == ("A scan", "application/dicom")


def test_default_url_follows_the_settings() -> None:
    settings = load_settings(environ={"XDSI_HTTP_HOST": "0.0.0.0", "XDSI_HTTP_PORT": "8123"})
    assert cli.default_url(settings) == "http://127.0.0.1:8123/xds/repository"
    public = load_settings(environ={"XDSI_HTTP_PUBLIC_URL": "https://xds.example/"})
    assert cli.default_url(public) == "https://xds.example/xds/repository"
