"""Acceptance 4: ``fetch-study --via wado-rs`` fetches a published study, verified and resumable.

The study is published with the WADO-RS option on (the KOS names a Retrieve URL per series); the
consumer finds the manifest (ITI-18), retrieves it (ITI-43) and asks for every instance by
WADO-RS, not RAD-69. A second run skips what is there; a file removed and another damaged are
fetched again, and only they. Without the option the manifest names no Retrieve URL and the
command says so for each instance.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pydicom

from gateway.app import Gateway
from gateway.consumer.cli import add_fetch_arguments, run_fetch
from gateway.imaging import synthetic
from tests.integration.dicomweb.conftest import (
    DOMAIN,
    feed,
    load,
    published,
    start_gateway,
    wait_for,
)

SPEC = synthetic.StudySpec(
    patient_id="PAT-F",
    series=(
        synthetic.SeriesSpec(modality="CT", count=4),
        synthetic.SeriesSpec(modality="MR", count=3),
    ),
)


def _fetch(gw: Gateway, out: Path, *extra: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    add_fetch_arguments(parser)
    args = parser.parse_args(
        [
            "--patient",
            f"PAT-F^^^&{DOMAIN}&ISO",
            "--out",
            str(out),
            "--via",
            "wado-rs",
            "--no-progress",
            "--registry",
            gw.base_url + "/xds/registry",
            "--repository",
            f"{gw.settings.repository.unique_id}={gw.base_url}/xds/repository",
            *extra,
        ]
    )
    printed, errors = io.StringIO(), io.StringIO()
    status = run_fetch(args, gw.settings, out=printed, err=errors)
    return status, printed.getvalue() + errors.getvalue()


def _publish(gw: Gateway, folder: Path) -> dict[str, bytes]:
    paths = load(gw, folder, SPEC)
    feed(gw, "PAT-F")
    wait_for(lambda: published(gw, SPEC.study_uid))
    return {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p.read_bytes()
        for p in paths
    }


def _fetched(out: Path) -> dict[str, Path]:
    return {p.stem: p for p in out.rglob("*.dcm")}


def test_fetch_by_wado_rs_is_verified_and_resumable(gateway: Gateway, tmp_path: Path) -> None:
    sent = _publish(gateway, tmp_path / "study")
    out = tmp_path / "out"
    status, text = _fetch(gateway, out)
    assert status == 0, text
    files = _fetched(out)
    assert set(files) == set(sent)
    assert all(files[uid].read_bytes() == data for uid, data in sent.items())
    status, text = _fetch(gateway, out)
    assert status == 0 and "7 already present, 0 fetched" in text, text
    removed, damaged = sorted(files)[:2]
    files[removed].unlink()
    files[damaged].write_bytes(files[damaged].read_bytes()[:300])  # cut short
    status, text = _fetch(gateway, out)
    assert status == 0 and "5 already present, 2 fetched" in text, text
    again = _fetched(out)
    assert again[removed].read_bytes() == sent[removed]
    assert again[damaged].read_bytes() == sent[damaged]


def test_manifest_without_the_option_names_no_retrieve_url(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path)
    try:
        config = gw.imaging.publisher.config
        gw.imaging.publisher.config = type(config)(
            **{**{f: getattr(config, f) for f in config.__dataclass_fields__}, "wado_rs_root": ""}
        )
        _publish(gw, tmp_path / "study")
        status, text = _fetch(gw, tmp_path / "out")
    finally:
        gw.stop()
    assert status != 0
    assert "names no Retrieve URL (0008,1190)" in text, text
