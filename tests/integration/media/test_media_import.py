"""``media import`` (IRWF.b) against a whole gateway: media made by dcmtk's dcmmkdir, a foreign
Patient ID coerced to the domain's, the manifest registered, RAD-69 instances carrying both ids,
pixel data byte for byte, re-import changing nothing; automatic reconciliation with one and with
two fed candidates; refused files; dry run; the real command in its own process."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from pydicom import dcmread

from gateway.consumer.fetch import FetchRequest, StudyFetcher
from gateway.consumer.store import FolderDestination
from gateway.demo import wait_for_manifest
from tests.integration.media.media_env import (
    DOMAIN,
    World,
    foreign_study,
    make_media,
    media_import,
    pixel_data,
)
from tests.integration.repository.serve_process import ROOT


def _fetch(world: World, patient: str, folder: Path) -> list[Path]:
    destination = FolderDestination(folder)
    report = StudyFetcher(world.consumer, destination, live=False, progress=io.StringIO()).run(
        FetchRequest(patient_id=patient)
    )
    assert report.complete, (report.problems, [s.missing for s in report.studies])
    return sorted(folder.rglob("*.dcm"))


def test_import_with_patient_publishes_coerced_instances_and_reimport_changes_nothing(
    world: World, tmp_path: Path
) -> None:
    patient = world.feed("DOM-1", "Doe", "Jane", "19800101", "F")
    spec = foreign_study()
    originals = make_media(tmp_path / "cd", spec)

    code, out, err = media_import(world, str(tmp_path / "cd"), "--patient", patient)

    assert code == 0, out + err
    assert "read through its DICOMDIR" in out and "EXT-123" in out
    assert ": 3 instance(s)" in out and ": 2 instance(s)" in out
    assert f"study {spec.study_uid}: published manifest" in out
    entry = wait_for_manifest(world.consumer, patient, spec.study_uid, 30)
    assert entry.patient_id == patient
    assert entry.source_patient_id == patient  # the instances now carry the domain identifier

    fetched = _fetch(world, patient, tmp_path / "fetched")
    assert len(fetched) == 5
    for path in fetched:
        ds = dcmread(path)
        assert ds.PatientID == "DOM-1"
        assert ds.IssuerOfPatientIDQualifiersSequence[0].UniversalEntityID == DOMAIN
        assert "IssuerOfPatientID" not in ds
        others = [(o.PatientID, o.get("IssuerOfPatientID")) for o in ds.OtherPatientIDsSequence]
        assert others == [("EXT-123", "OTHER_HOSP")]
        history = ds.OriginalAttributesSequence[-1]
        assert history.ReasonForTheAttributeModification == "COERCE"
        assert history.ModifyingSystem == "xdsi-gateway"
        assert history.SourceOfPreviousValues == "OTHER_HOSP"
        prior = history.ModifiedAttributesSequence[0]
        assert prior.PatientID == "EXT-123" and prior.IssuerOfPatientID == "OTHER_HOSP"
        assert ds.PatientName == "Doe^Jane" and ds.StudyDescription == spec.study_description
    assert pixel_data(fetched) == pixel_data(originals)

    before = world.state()
    assert before[0] == 1 and before[1] == 5
    code, out, err = media_import(world, str(tmp_path / "cd"), "--patient", patient)
    assert code == 0, out + err
    assert "imported 0 instance(s)" in out and "5 already there" in out
    assert f"study {spec.study_uid}: unchanged" in out
    assert world.state() == before


def test_automatic_reconciliation_single_match_needs_yes(world: World, tmp_path: Path) -> None:
    patient = world.feed("DOM-2", "DOE", "JANE", "19800101", "F")
    world.feed("DOM-3", "Doe", "John", "19800101", "M")  # same birth date, another patient
    spec = foreign_study()
    make_media(tmp_path / "cd", spec)
    before = world.state()

    code, out, _ = media_import(world, str(tmp_path / "cd"))
    assert code == 1
    assert f"EXT-123 -> {patient} (matched on name, birth date and sex" in out
    assert "run again with --yes" in out
    assert world.state() == before

    code, out, err = media_import(world, str(tmp_path / "cd"), "--dry-run")
    assert code == 0, out + err
    assert "dry run: would import 5 instance(s) of 1 study(ies)" in out
    assert world.state() == before

    code, out, err = media_import(world, str(tmp_path / "cd"), "--yes")
    assert code == 0, out + err
    assert wait_for_manifest(world.consumer, patient, spec.study_uid, 30).patient_id == patient


def test_two_candidates_stop_the_import_and_change_nothing(world: World, tmp_path: Path) -> None:
    first = world.feed("DOM-4", "Doe", "Jane", "19800101", "F")
    second = world.feed("DOM-5", "Doe", "Jane", "19800101", "F")
    make_media(tmp_path / "cd", foreign_study())
    before = world.state()

    code, out, err = media_import(world, str(tmp_path / "cd"), "--yes")

    assert code == 1
    assert "2 patients fed by ITI-8 match" in err
    assert f"candidate {first}" in err and f"candidate {second}" in err
    assert "nothing imported" in out
    assert world.state() == before


def test_no_candidate_and_refused_files(world: World, tmp_path: Path) -> None:
    code, _, err = media_import(world, str(tmp_path / "nowhere"))
    assert code == 2 and "does not exist" in err

    folder = tmp_path / "copied"  # a folder tree without DICOMDIR, with rubbish in it
    make_media(folder, foreign_study(patient_name="Unknown^Person"))
    (folder / "DICOMDIR").unlink()
    (folder / "DICOM" / "NOTES.TXT").write_text("not DICOM")
    broken = dcmread(folder / "DICOM" / "ST000001" / "IM000001")
    del broken.SeriesInstanceUID
    broken.save_as(folder / "DICOM" / "BROKEN", enforce_file_format=True)

    code, out, err = media_import(world, str(folder), "--yes")
    assert code == 1
    assert "read through its files (no DICOMDIR)" in out and "2 file(s) refused" in out
    assert "no patient fed by ITI-8" in err

    patient = world.feed("DOM-6", "Unknown", "Person", "19800101", "F")
    code, out, err = media_import(world, str(folder), "--patient", patient, "--no-progress")
    assert code == 1, out + err
    assert "imported 5 instance(s)" in out
    assert f"refused {folder / 'DICOM' / 'NOTES.TXT'}: not a DICOM file" in out
    assert f"refused {folder / 'DICOM' / 'BROKEN'}: missing or invalid SeriesInstanceUID" in out
    assert "INCOMPLETE: 2 file(s) refused" in out

    code, _, err = media_import(world, str(folder), "--patient", "X^^^&1.2.3&ISO")
    assert code == 2 and "is not the affinity domain" in err


def test_the_command_in_its_own_process(world: World, tmp_path: Path) -> None:
    """The assembly's wiring: xdsi-gateway media import on the running gateway's data folder."""
    patient = world.feed("DOM-7", "Doe", "Jane", "19800101", "F")
    spec = foreign_study()
    make_media(tmp_path / "cd", spec)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDSI_")}
    env.update(
        PYTHONPATH=str(ROOT),
        XDSI_GATEWAY_DATA_DIR=str(world.settings.data_dir),
        XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS="3600",
    )
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "media", "import", str(tmp_path / "cd"), "--yes"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"-> {patient}" in result.stdout and "published manifest" in result.stdout
    assert "importing [" in result.stderr  # the progress bar's final line
    assert wait_for_manifest(world.consumer, patient, spec.study_uid, 30).patient_id == patient
