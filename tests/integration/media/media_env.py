"""What the media tests share: a whole gateway on ephemeral ports, ITI-8 feeds, media made by
dcmtk's ``dcmmkdir``, and the media commands run against that gateway."""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from sqlalchemy import func, select

from gateway import cli as gateway_cli
from gateway.app import Gateway
from gateway.config import Settings, load_settings
from gateway.consumer.settings import ConsumerSettings, consumer_settings
from gateway.hl7.mllp import send_messages
from gateway.imaging import synthetic
from gateway.imaging.schema import imaging_instance
from gateway.media import cli as media_cli
from gateway.registry.schema import document_entry

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"


@dataclass
class World:
    gateway: Gateway
    settings: Settings
    tmp: Path

    @property
    def consumer(self) -> ConsumerSettings:
        return consumer_settings(self.settings, base_url=self.gateway.base_url)

    def feed(self, pid: str, family: str, given: str, birth: str, sex: str) -> str:
        """An ITI-8 A01 for ``pid`` of the domain; return its CX."""
        host, port = self.gateway.mllp_address  # type: ignore[misc]
        cx = f"{pid}^^^&{DOMAIN}&ISO"
        message = (
            "MSH|^~\\&|ADT|HOSP|XDS|REG|20240101000000||ADT^A01^ADT_A01|m-"
            f"{pid}|P|2.5\rEVN|A01|20240101000000\rPID|||{cx}||{family}^{given}||{birth}|{sex}"
            "\rPV1||O"
        ).encode()
        assert b"MSA|AA" in send_messages(host, port, [message])[0]
        return cx

    def state(self) -> tuple[int, int, list[str]]:
        """(DocumentEntries registered, instances indexed, files stored): nothing changed?"""
        assert self.gateway.registry is not None and self.gateway.imaging is not None
        with self.gateway.registry.db.engine.connect() as conn:
            entries = conn.execute(select(func.count()).select_from(document_entry)).scalar()
            instances = conn.execute(select(func.count()).select_from(imaging_instance)).scalar()
        root = self.gateway.imaging.store.root
        files = sorted(
            str(p.relative_to(root)) for p in root.rglob("*.dcm") if ".tmp" not in p.parts
        )
        return int(entries or 0), int(instances or 0), files


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "3600",  # media import publishes itself
        }
    )
    gateway = Gateway(settings)
    gateway.start()
    try:
        yield World(gateway=gateway, settings=settings, tmp=tmp_path)
    finally:
        gateway.stop()


def dcmmkdir() -> str:
    found = shutil.which("dcmmkdir")
    if found is None:
        pytest.skip("dcmmkdir is not installed (apt-get install dcmtk)")
    return found


def make_media(folder: Path, spec: synthetic.StudySpec) -> list[Path]:
    """A medium as a CD writer makes it: Part 10 files under DICOM/ with PS3.10 File IDs and a
    DICOMDIR written by dcmtk's ``dcmmkdir`` (General Purpose CD-R profile)."""
    tool = dcmmkdir()
    target = folder / "DICOM" / "ST000001"
    target.mkdir(parents=True)
    paths = []
    for number, dataset in enumerate(synthetic.make_study(spec), start=1):
        path = target / f"IM{number:06d}"
        dataset.save_as(path, enforce_file_format=True)
        paths.append(path)
    result = subprocess.run(
        # -Nxc: also list instances in another transfer syntax than STD-GEN-CD's (as CD writers
        # of modalities do), warning only
        [tool, "+r", "-Nxc", "DICOM"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    records = dcmread(folder / "DICOMDIR").DirectoryRecordSequence
    assert sum(1 for r in records if r.DirectoryRecordType == "IMAGE") == len(paths)
    return paths


def foreign_study(**overrides: object) -> synthetic.StudySpec:
    """A CT/MR study of another hospital: Patient ID EXT-123 issued by OTHER_HOSP."""
    values: dict[str, object] = {
        "patient_id": "EXT-123",
        "issuer_of_patient_id": "OTHER_HOSP",
        "patient_name": "Doe^Jane",
        "birth_date": "19800101",
        "sex": "F",
        "series": (
            synthetic.SeriesSpec(modality="CT", count=3),
            synthetic.SeriesSpec(modality="MR", count=2),
        ),
    }
    values.update(overrides)
    return synthetic.StudySpec(**values)  # type: ignore[arg-type]


def media_import(world: World, *argv: str) -> tuple[int, str, str]:
    """``xdsi-gateway media import ...`` against the world's gateway (its own actors)."""
    args = _parse("media", "import", *argv)
    out, err = io.StringIO(), io.StringIO()
    gateway = world.gateway
    assert gateway.imaging is not None and gateway.registry is not None
    code = media_cli.run_import(
        args,
        world.settings,
        imaging=gateway.imaging,
        patients=gateway.registry.patients,
        out=out,
        err=err,
    )
    return code, out.getvalue(), err.getvalue()


def media_export(world: World, *argv: str) -> tuple[int, str, str]:
    """``xdsi-gateway media export ...`` against the world's gateway."""
    args = _parse("media", "export", "--no-progress", *argv)
    out, err = io.StringIO(), io.StringIO()
    code = media_cli.run_export(args, world.settings, world.consumer, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _parse(*argv: str) -> argparse.Namespace:
    return gateway_cli._parser().parse_args(list(argv))


def pixel_data(paths: Sequence[Path]) -> dict[str, bytes]:
    """Pixel Data by SOP Instance UID."""
    found = {}
    for path in paths:
        ds = dcmread(path)
        found[str(ds.SOPInstanceUID)] = bytes(ds.PixelData)
    return found
