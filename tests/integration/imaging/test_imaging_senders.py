"""The listener against real senders: dcmtk ``storescu`` and ``dcmsend`` with compressed syntaxes
(made by dcmtk's own encoders), many instances on one association, parallel associations, and
pynetdicom with other maximum PDU lengths, role selection and an asynchronous operations window.

Standard: DICOM PS3.8 §9.3 (negotiation), Annex D.1 (maximum length); PS3.7 Annex D.3.3.3-4;
PS3.4 §B.4.1 (no coercion: stored in the syntax it was sent in).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE, evt
from pynetdicom.pdu_primitives import (
    AsynchronousOperationsWindowNegotiation,
    SCP_SCU_RoleSelectionNegotiation,
)

from gateway import dicomscu
from gateway.imaging import synthetic
from gateway.imaging.source import ImagingSource
from gateway.imaging.storescp import set_nodelay
from tests.integration.imaging.conftest import Running, run_storescu, storescu
from tests.unit.imaging.support import AE_TITLE, RecordingRepository, make_source, study_spec

CT = synthetic.SOP_CLASSES["CT"]
ENCODERS = {  # dcmtk encoder -> the transfer syntax it writes
    ("dcmcjpeg", "+e1"): "1.2.840.10008.1.2.4.70",  # JPEG Lossless, SV1
    ("dcmcjpeg", "+el"): "1.2.840.10008.1.2.4.57",  # JPEG Lossless (Process 14)
    ("dcmcjpls", "+el"): "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    ("dcmcrle",): "1.2.840.10008.1.2.5",  # RLE Lossless
}
STORESCU_OPTIONS = {  # the option with which storescu proposes each syntax (with uncompressed)
    "1.2.840.10008.1.2.4.70": "-xs",
    "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.5": "-xr",
}
DECODERS = {"1.2.840.10008.1.2.4.70": "dcmdjpeg", "1.2.840.10008.1.2.4.57": "dcmdjpeg"}
DECODERS |= {"1.2.840.10008.1.2.4.80": "dcmdjpls", "1.2.840.10008.1.2.5": "dcmdrle"}


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"dcmtk {name} is not installed (apt-get install dcmtk)")
    return found


def ct_files(folder: Path, count: int) -> list[Path]:
    instances = synthetic.make_study(
        study_spec(series=(synthetic.SeriesSpec(modality="CT", count=count),))
    )
    return synthetic.write_study(instances, folder)


def compress(files: list[Path], folder: Path) -> dict[Path, tuple[str, Path]]:
    """Each encoder's copy of each file: {compressed: (syntax, original)}."""
    folder.mkdir()
    made: dict[Path, tuple[str, Path]] = {}
    for number, (encoder, syntax) in enumerate(ENCODERS.items()):
        for original in files:
            target = folder / f"{number}-{original.name}"
            subprocess.run([tool(encoder[0]), *encoder[1:], str(original), str(target)], check=True)
            assert str(pydicom.dcmread(target).file_meta.TransferSyntaxUID) == syntax
            made[target] = (syntax, original)
    return made


def pixels(path: Path, scratch: Path) -> bytes:
    """The native Pixel Data of a file (decompressed by dcmtk when needed)."""
    syntax = str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    if syntax in DECODERS:
        plain = scratch / f"plain-{path.name}"
        subprocess.run([tool(DECODERS[syntax]), str(path), str(plain)], check=True)
        path = plain
    return bytes(pydicom.dcmread(path).PixelData)


def stored_path(running: Running, uid: str) -> Path:
    record = running.source.index.instance(uid)
    assert record is not None, uid
    return running.source.store.path(record.path)


def test_storescu_compressed_files_are_stored_as_sent(running: Running, tmp_path: Path) -> None:
    """storescu proposes each file's compressed syntax first, then the uncompressed ones, in
    one context: the sender's first supported syntax is accepted and the data stored as sent."""
    storescu()
    made = compress(ct_files(tmp_path / "plain", 2), tmp_path / "compressed")
    # every file is a new instance: give each copy its own SOP Instance UID
    for path in made:
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(path, enforce_file_format=True)
    for syntax, option in STORESCU_OPTIONS.items():  # storescu proposes one compression a time
        group = [path for path, (made_as, _) in made.items() if made_as == syntax]
        run_storescu(running.host, running.port, group, option)
    made = {path: found for path, found in made.items() if found[0] in STORESCU_OPTIONS}
    for path, (syntax, original) in made.items():
        sent = pydicom.dcmread(path, stop_before_pixels=True)
        stored = stored_path(running, str(sent.SOPInstanceUID))
        kept = stored.read_bytes()
        assert synthetic.dataset_bytes(kept) == synthetic.dataset_bytes(path.read_bytes())
        assert str(
            pydicom.dcmread(stored, stop_before_pixels=True).file_meta.TransferSyntaxUID
        ) == (syntax)
        assert pixels(stored, tmp_path) == pixels(original, tmp_path)


@pytest.mark.parametrize("decompress", ["-dn", "+dls"])
def test_dcmsend_delivers_every_instance_with_its_pixels(
    running: Running, tmp_path: Path, decompress: str
) -> None:
    program = tool("dcmsend")
    originals = ct_files(tmp_path / "plain", 2)
    made = compress(originals, tmp_path / "compressed")
    for path in made:
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(path, enforce_file_format=True)
    command = [program, "-aec", AE_TITLE, "-aet", "DCMSEND", decompress, "-ma"]
    result = subprocess.run(
        [*command, running.host, str(running.port), *map(str, made)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for path, (syntax, original) in made.items():
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        stored = stored_path(running, uid)
        kept = str(pydicom.dcmread(stored, stop_before_pixels=True).file_meta.TransferSyntaxUID)
        if decompress == "-dn":  # only the file's own syntax proposed: stored as sent
            assert kept == syntax
            assert synthetic.dataset_bytes(stored.read_bytes()) == synthetic.dataset_bytes(
                path.read_bytes()
            )
        assert pixels(stored, tmp_path) == pixels(original, tmp_path)  # lossless either way


def test_many_instances_on_one_association_and_one_log_line(
    running: Running, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = ct_files(tmp_path / "study", 150)
    with caplog.at_level(logging.INFO, logger="gateway.imaging"):
        run_storescu(running.host, running.port, files)
    study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    assert len(running.source.index.instances_of_study(study)) == 150
    lines = [r.getMessage() for r in caplog.records if "DICOM association from" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "DCMTK_SCU" in lines[0] and "150 instance(s)" in lines[0] and "released" in lines[0]


def test_parallel_associations_all_land(running: Running, tmp_path: Path) -> None:
    storescu()
    batches = [ct_files(tmp_path / f"study{n}", 25) for n in range(4)]
    failures: list[BaseException] = []

    def send(files: list[Path]) -> None:
        try:
            run_storescu(running.host, running.port, files)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=send, args=(files,)) for files in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    for files in batches:
        study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        assert len(running.source.index.instances_of_study(study)) == 25
    committer = running.source.ingest.rows
    assert committer.rows >= 100


# -- pynetdicom as the sender ----------------------------------------------------------------------


@pytest.fixture
def small_pdu_listener(tmp_path: Path) -> Iterator[ImagingSource]:
    source = make_source(tmp_path, RecordingRepository(), fsync=True, maximum_pdu_size=4096)
    source.start()
    try:
        yield source
    finally:
        source.stop()


@pytest.mark.parametrize("sender_max_pdu", [0, 4096, 16382, 1 << 20])
def test_pynetdicom_with_other_maximum_pdu_lengths(
    small_pdu_listener: ImagingSource, tmp_path: Path, sender_max_pdu: int
) -> None:
    """Our 4096-byte maximum makes pynetdicom split each 34 kB data set into ten PDUs; its
    own maximum (0 = no limit) bounds the responses it gets."""
    files = ct_files(tmp_path / "study", 3)
    ae = AE(ae_title="PYNETDICOM")
    ae.maximum_pdu_size = sender_max_pdu
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.add_requested_context(CT, [synthetic.ExplicitVRLittleEndian])
    host, port = small_pdu_listener.address
    assoc = ae.associate(
        host, port, ae_title=AE_TITLE, evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)]
    )
    assert assoc.is_established
    assert assoc.acceptor.maximum_length == 4096
    try:
        for path in files:
            assert dicomscu.send_c_store(assoc, path).Status == 0x0000
    finally:
        assoc.release()
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        record = small_pdu_listener.index.instance(str(ds.SOPInstanceUID))
        assert record is not None
        kept = small_pdu_listener.store.path(record.path).read_bytes()
        assert synthetic.dataset_bytes(kept) == synthetic.dataset_bytes(path.read_bytes())


def test_pynetdicom_roles_and_asynchronous_window(running: Running, tmp_path: Path) -> None:
    files = ct_files(tmp_path / "study", 2)
    ae = AE(ae_title="PYNETDICOM")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.add_requested_context(CT, [synthetic.ExplicitVRLittleEndian])
    ae.add_requested_context(synthetic.SOP_CLASSES["MR"], [synthetic.ExplicitVRLittleEndian])
    window = AsynchronousOperationsWindowNegotiation()
    window.maximum_number_operations_invoked = 4
    window.maximum_number_operations_performed = 4
    scu = SCP_SCU_RoleSelectionNegotiation()
    scu.sop_class_uid, scu.scu_role, scu.scp_role = CT, True, True
    scp_only = SCP_SCU_RoleSelectionNegotiation()
    scp_only.sop_class_uid = synthetic.SOP_CLASSES["MR"]
    scp_only.scu_role, scp_only.scp_role = False, True
    assoc = ae.associate(
        running.host, running.port, ae_title=AE_TITLE, ext_neg=[window, scu, scp_only]
    )
    assert assoc.is_established
    try:
        assert assoc.acceptor.asynchronous_operations == (1, 1)
        [accepted] = assoc.accepted_contexts
        assert accepted.abstract_syntax == CT
        assert (accepted.as_scu, accepted.as_scp) == (True, False)
        [rejected] = assoc.rejected_contexts
        assert rejected.abstract_syntax == synthetic.SOP_CLASSES["MR"]
        for path in files:
            assert dicomscu.send_c_store(assoc, path).Status == 0x0000
    finally:
        assoc.release()


def test_storescu_into_a_listener_on_each_database(tmp_path: Path, db_url: str) -> None:
    """SQLite (rows journaled, committed after the answer) and PostgreSQL (rows committed
    before it, durable by themselves, no journal): every instance indexed, none pending."""
    storescu()
    source = make_source(tmp_path, RecordingRepository(), db_url=db_url, fsync=True)
    host, port = source.start()
    try:
        journaled = source.ingest.journal is not None
        files = ct_files(tmp_path / "study", 20)
        run_storescu(host, port, files)
        study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        assert len(source.index.instances_of_study(study)) == 20
    finally:
        source.stop()
    assert journaled == db_url.startswith("sqlite")
    assert list(source.store.root.glob("*/*/.*.pending")) == []  # flushed and dropped at stop
