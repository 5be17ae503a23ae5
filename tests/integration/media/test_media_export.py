"""``media export`` against a whole gateway: the PDI medium read by dcmdump, pydicom's FileSet and
dciodvfy, its ISO image listed by isoinfo; de-identified exports (consistent UIDs per key, other
UIDs with another key, pixel data unchanged, burned-in annotation refused unless allowed) and
``fetch-study --deidentify``."""

from __future__ import annotations

import io
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from gateway import cli as gateway_cli
from gateway.consumer import cli as consumer_cli
from gateway.imaging import synthetic
from gateway.media import cli as media_cli
from gateway.media.deidentify import Deidentifier
from tests.integration.media.media_env import (
    World,
    foreign_study,
    make_media,
    media_export,
    media_import,
)

KEY_1, KEY_2 = "first key of this test 0123456789", "second key of this test 987654321"


@dataclass
class Imported:
    patient: str
    originals: dict[str, Dataset]  # by SOP Instance UID, as on the medium (before coercion)


def _imported(world: World, tmp_path: Path, *, burned_in: bool = False) -> Imported:
    patient = world.feed("DOM-9", "Doe", "Jane", "19800101", "F")
    spec = foreign_study(
        study_description="CT for Jane Doe EXT-123",
        series=(
            synthetic.SeriesSpec(modality="CT", count=3),
            synthetic.SeriesSpec(modality="MR", count=2, transfer_syntax=ImplicitVRLittleEndian),
        ),
    )
    paths = make_media(tmp_path / "cd", spec)
    if burned_in:
        ds = dcmread(paths[0])
        ds.BurnedInAnnotation = "YES"
        ds.save_as(paths[0], enforce_file_format=True)
    code, out, err = media_import(world, str(tmp_path / "cd"), "--patient", patient)
    assert code == 0, out + err
    originals = {}
    for path in paths:
        ds = dcmread(path)
        originals[str(ds.SOPInstanceUID)] = ds
    return Imported(patient=patient, originals=originals)


def _load(dicomdir: Path) -> dict[str, Dataset]:
    """Every instance of a File-set, by SOP Instance UID, through pydicom's FileSet."""
    fileset = FileSet(dicomdir)
    try:
        return {str(i.SOPInstanceUID): i.load() for i in fileset}
    finally:
        stage = getattr(fileset, "_stage", {}).get("t")
        if stage is not None:  # pydicom's staging folder, else removed with a ResourceWarning
            stage.cleanup()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def _iso_tree(iso: Path) -> set[str]:
    """Paths of an ISO 9660 image as ``isoinfo -l`` lists them, without ``.`` and ``;1``."""
    listing = subprocess.run(
        [_tool("isoinfo"), "-l", "-i", str(iso)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    found, folder = set(), ""
    for line in listing.splitlines():
        if line.startswith("Directory listing of "):
            folder = line.removeprefix("Directory listing of ").strip()
        elif line.startswith("-"):
            name = line.split("]")[-1].strip().split(";")[0].rstrip(".")
            found.add(f"{folder}{name}".lstrip("/"))
    return found


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_export_writes_pdi_media_and_an_iso(world: World, tmp_path: Path) -> None:
    imported = _imported(world, tmp_path)
    medium, iso = tmp_path / "medium", tmp_path / "medium.iso"

    code, out, err = media_export(
        world, "--patient", imported.patient, "--out", str(medium), "--iso", str(iso)
    )

    assert code == 0, out + err
    assert "PDI medium written" in out and "ISO 9660 image written" in out
    # dcmdump reads the DICOMDIR, and with +sd +r every file of the File-set's folders
    dcmdump = _tool("dcmdump")
    result = subprocess.run(
        [dcmdump, "DICOMDIR"], cwd=medium, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "E:" not in result.stderr, result.stderr
    assert result.stdout.count("CS [IMAGE]") == 5, result.stdout
    folders = sorted(p.name for p in medium.iterdir() if p.is_dir())
    result = subprocess.run(
        [dcmdump, "+sd", "+r", *folders], cwd=medium, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "E:" not in result.stderr, result.stderr
    assert result.stdout.count("(0008,0018) UI") == 5
    # pydicom's FileSet reads it and every instance loads
    loaded = _load(medium / "DICOMDIR")
    assert set(loaded) == set(imported.originals)
    for uid, ds in loaded.items():
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian  # STD-GEN-CD
        assert ds.PatientID == "DOM-9"
        assert bytes(ds.PixelData) == bytes(imported.originals[uid].PixelData)
    records = dcmread(medium / "DICOMDIR").DirectoryRecordSequence
    kinds = {record.DirectoryRecordType for record in records}
    assert kinds == {"PATIENT", "STUDY", "SERIES", "IMAGE"}
    # dciodvfy: no error in the DICOMDIR
    result = subprocess.run(
        [_tool("dciodvfy"), str(medium / "DICOMDIR")], capture_output=True, text=True, timeout=60
    )
    assert "Error" not in result.stdout + result.stderr, result.stdout + result.stderr
    # PDI files; INDEX.HTM is well-formed XHTML listing the study
    readme = (medium / "README.TXT").read_text(encoding="ascii")
    assert "IHE Portable Data for Imaging" in readme and "xdsi-gateway" in readme
    page = ET.fromstring((medium / "INDEX.HTM").read_bytes())
    assert "CT for Jane Doe EXT-123" in ET.tostring(page, encoding="unicode")
    # the ISO holds the same tree, with the File-set ID as volume identifier
    assert _iso_tree(iso) == _tree(medium)
    volume = subprocess.run(
        [_tool("isoinfo"), "-d", "-i", str(iso)], capture_output=True, text=True, check=True
    ).stdout
    fileset_id = dcmread(medium / "DICOMDIR").FileSetID
    assert f"Volume id: {fileset_id}" in volume and fileset_id.startswith("XDSI")

    code, out, _ = media_export(world, "--patient", imported.patient, "--out", str(tmp_path))
    assert code == 2 and "holds other files" in _
    code, _, err = media_export(
        world, "--patient", imported.patient, "--out", str(medium), "--iso", str(medium / "X.ISO")
    )
    assert code == 2 and "cannot be inside --out" in err


def _walk(ds: Dataset) -> Iterator[str]:
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                yield from _walk(item)
        elif element.VR not in ("OB", "OW", "UN"):
            yield str(element.value)


def _export(world: World, patient: str, out: Path, *extra: str) -> tuple[int, str]:
    code, text, err = media_export(
        world, "--patient", patient, "--out", str(out), "--deidentify", *extra
    )
    return code, text + err


def test_deidentified_exports(world: World, tmp_path: Path) -> None:
    imported = _imported(world, tmp_path, burned_in=True)
    burned = next(u for u, ds in imported.originals.items() if "BurnedInAnnotation" in ds)

    code, text = _export(world, imported.patient, tmp_path / "refused", "--deid-key", KEY_1)
    assert code == 1
    assert f"missing {burned}: Burned In Annotation (0028,0301) is YES" in text
    assert "run the same command again" not in text  # asking again cannot change it
    assert not (tmp_path / "refused" / "README.TXT").exists()

    runs = {}
    for name, key in (("one", KEY_1), ("two", KEY_1), ("other", KEY_2)):
        out = tmp_path / name
        code, text = _export(world, imported.patient, out, "--deid-key", key, "--allow-burned-in")
        assert code == 0, text
        runs[name] = _load(out / "DICOMDIR")

    deidentifier = Deidentifier(KEY_1.encode())
    one = runs["one"]
    assert set(one) == {deidentifier.uid(uid) for uid in imported.originals}
    assert set(runs["two"]) == set(one)
    assert not set(runs["other"]) & set(one)
    assert len({str(ds.StudyInstanceUID) for ds in one.values()}) == 1
    assert len({str(ds.PatientID) for ds in one.values()}) == 1
    identifying = ("Doe", "Jane", "EXT-123", "DOM-9", "OTHER_HOSP", "19800101", "ACC-0001")
    for uid, original in imported.originals.items():
        ds = one[deidentifier.uid(uid)]
        assert ds.PatientIdentityRemoved == "YES"
        codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
        assert codes == ["113100", "113107", "113105"]
        assert bytes(ds.PixelData) == bytes(original.PixelData)
        assert ds.SeriesInstanceUID == deidentifier.uid(str(original.SeriesInstanceUID))
        values = " ".join(_walk(ds))
        assert not [word for word in identifying if word.lower() in values.lower()], values
        assert ds.StudyDescription == "CT for *** *** ***"


def test_fetch_study_deidentify(world: World, tmp_path: Path) -> None:
    imported = _imported(world, tmp_path)
    base = world.gateway.base_url
    argv = [
        "fetch-study",
        "--patient",
        imported.patient,
        "--out",
        str(tmp_path / "fetched"),
        "--registry",
        f"{base}/xds/registry",
        "--repository",
        f"{world.settings.repository.unique_id}={base}/xds/repository",
        "--imaging-source",
        f"{world.settings.imaging_source.unique_id}={base}/xdsi/source",
        "--no-progress",
        "--deidentify",
        "--deid-key",
        KEY_1,
    ]
    for expected in ("5 fetched", "5 already present"):
        args = gateway_cli._parser().parse_args(argv)
        out = io.StringIO()
        wrap = media_cli.deidentifying(args, world.settings)
        code = consumer_cli.run_fetch(args, world.settings, out=out, err=io.StringIO(), wrap=wrap)
        assert code == 0, out.getvalue()
        assert expected in out.getvalue()
    files = sorted((tmp_path / "fetched").rglob("*.dcm"))
    assert len(files) == 5
    deidentifier = Deidentifier(KEY_1.encode())
    assert {dcmread(f).SOPInstanceUID for f in files} == {
        deidentifier.uid(u) for u in imported.originals
    }
    assert all("DOM-9" not in str(path) for path in files)  # the folder is the pseudonym's
    args = gateway_cli._parser().parse_args([*argv[:-2], "--deid-key", "short"])
    code = consumer_cli.run_fetch(
        args, world.settings, out=io.StringIO(), err=(err := io.StringIO()),
        wrap=media_cli.deidentifying(args, world.settings),
    )  # fmt: skip
    assert code == 2 and "at least 16 characters" in err.getvalue()
