"""The consumer against one in-process gateway with every actor: the query command, fetch with a
DICOMDIR, filters, and an instance the source lost reported missing with a non-zero exit."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.consumer import cli
from gateway.consumer.settings import consumer_settings
from gateway.demo import send_files, wait_for_manifest
from gateway.hl7.mllp import send_messages
from gateway.imaging import synthetic
from tests.integration.consumer.consumer_env import DOMAIN, SentStudy, make_study


@dataclass
class World:
    gateway: Gateway
    study: SentStudy


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "1",
        }
    )
    gateway = Gateway(settings)
    gateway.start()
    try:
        study = make_study(tmp_path / "sent", f"GW-{uuid.uuid4().hex[:6]}", (6, 4))
        local = study.patient.split("^")[0]
        host, port = gateway.mllp_address  # type: ignore[misc]
        message = (
            "MSH|^~\\&|T|T|X|X|20240101000000||ADT^A01^ADT_A01|m1|P|2.5\r"
            f"EVN|A01|20240101000000\rPID|||{local}^^^&{DOMAIN}&ISO||Doe^Jane\rPV1||O"
        ).encode()
        assert b"MSA|AA" in send_messages(host, port, [message])[0]
        ae_title = settings.imaging_source.ae_title
        assert gateway.imaging is not None
        send_files((ae_title, *gateway.imaging.address), study.paths)
        consumer = consumer_settings(settings, base_url=gateway.base_url)
        wait_for_manifest(consumer, study.patient, study.spec.study_uid, 60)
        yield World(gateway, study)
    finally:
        gateway.stop()


def parse(*argv: str):  # type: ignore[no-untyped-def]
    return cli.build_parser().parse_args(list(argv))


def own(world: World) -> list[str]:
    return ["--registry", world.gateway.base_url + "/xds/registry"]


def run_fetch(world: World, *argv: str) -> tuple[int, str]:
    """Exit status and everything printed (results on stdout, what failed on stderr)."""
    out, err = io.StringIO(), io.StringIO()
    base = world.gateway.base_url
    args = parse(
        "fetch-study",
        "--patient",
        world.study.patient,
        "--repository",
        f"{world.gateway.settings.repository.unique_id}={base}/xds/repository",
        "--imaging-source",
        f"{world.gateway.settings.imaging_source.unique_id}={base}/xdsi/source",
        "--retries",
        "1",
        "--no-progress",
        *own(world),
        *argv,
    )
    code = cli.run_fetch(args, world.gateway.settings, out=out, err=err)
    return code, out.getvalue() + err.getvalue()


def test_query_prints_a_table_and_json(world: World) -> None:
    out = io.StringIO()
    args = parse(
        "query", "--patient", world.study.patient, "--kos", "--modality", "MR", *own(world)
    )
    assert cli.run_query(args, world.gateway.settings, out=out, err=io.StringIO()) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("TITLE") and "STUDY INSTANCE UID" in lines[0]
    assert world.study.spec.study_uid in lines[1] and "CT/MR" in lines[1] and "Approved" in lines[1]
    assert lines[-1] == "1 document(s)"

    out = io.StringIO()
    args = parse(
        "query", "--patient", world.study.patient, "--modality", "US", "--json", *own(world)
    )
    assert cli.run_query(args, world.gateway.settings, out=out, err=io.StringIO()) == 0
    assert json.loads(out.getvalue()) == {"status": "Success", "errors": [], "objects": []}

    out = io.StringIO()
    args = parse("query", "--query", "GetAll", "--patient", world.study.patient, *own(world))
    assert cli.run_query(args, world.gateway.settings, out=out, err=io.StringIO()) == 0
    assert "SubmissionSet" in out.getvalue() and "HasMember" in out.getvalue()


def test_fetch_with_a_dicomdir_and_filters(world: World, tmp_path: Path) -> None:
    code, text = run_fetch(
        world, "--out", str(tmp_path / "media"), "--dicomdir", "--modality", "CT"
    )
    assert code == 0, text
    assert "DICOMDIR written" in text and "(10 instances)" in text
    dicomdir = dcmread(tmp_path / "media" / "DICOMDIR")
    records = [r.DirectoryRecordType for r in dicomdir.DirectoryRecordSequence]
    assert records.count("IMAGE") == 10 and records.count("SERIES") == 2
    code, text = run_fetch(world, "--out", str(tmp_path / "none"), "--accession", "NOPE")
    assert code == 1 and "no approved imaging manifest found" in text and "accession NOPE" in text
    assert "run the same command again" not in text  # no retry finds what does not exist
    assert not (tmp_path / "none").exists()  # nothing fetched: no --out folder left behind


def test_a_lost_instance_is_reported_and_the_exit_is_1(world: World, tmp_path: Path) -> None:
    lost = world.study.paths[3]
    uid = str(dcmread(lost, stop_before_pixels=True).SOPInstanceUID)
    stored = [
        p
        for p in (world.gateway.settings.data_dir / "imaging").rglob("*")
        if p.is_file() and uid in p.name
    ]
    if not stored:  # the store names files otherwise: find it by content
        stored = [
            p
            for p in (world.gateway.settings.data_dir / "imaging").rglob("*")
            if p.is_file()
            and synthetic.dataset_bytes(p.read_bytes())
            == synthetic.dataset_bytes(lost.read_bytes())
        ]
    assert stored
    for path in stored:
        path.unlink()
    code, text = run_fetch(world, "--out", str(tmp_path / "out"))
    assert code == 1
    assert f"missing {uid}: " in text
    assert "9 fetched" in text and "1 missing" in text and "INCOMPLETE" in text
