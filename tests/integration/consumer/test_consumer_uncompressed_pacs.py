"""Acceptance: ``fetch-study --store-to`` into a PACS that takes only uncompressed data (dcmtk
``storescp`` with its defaults, which refuses JPEG) delivers every instance of a JPEG study,
decompressed by the imaging source; and when a syntax cannot be delivered the command says why in
one plain line, without advice to retry.

The gateway runs in its own process; the study (JPEG Lossless SV1, JPEG-LS, JPEG 2000, RLE and
JPEG Baseline series, real code streams) is C-STOREd to it as compressed files; the consumer runs
as the command does.
"""

from __future__ import annotations

import gc
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from gateway.imaging import synthetic
from tests.integration.consumer.consumer_env import (
    REPOSITORY_UID,
    SOURCE_UID,
    SentStudy,
    ServeProcess,
    count_rad69,
    run_consumer,
    send_and_wait,
    source_url,
)
from tests.integration.repository.serve_process import DOMAIN, feed_patient
from tests.support import compressed
from tests.support.storescp import STORESCP_AET, running_storescp

CT = synthetic.SOP_CLASSES["CT"]
SERIES = [
    ("CT", JPEGLosslessSV1),
    ("CT", JPEGLSLossless),
    ("CT", JPEG2000Lossless),
    ("CT", RLELossless),
    ("US", JPEGBaseline8Bit),
]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[ServeProcess]:
    process = ServeProcess(
        tmp_path / "gateway",
        env={"XDSI_IMAGING_SOURCE_ENABLED": "true", "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "1"},
    )
    try:
        yield process
    finally:
        process.stop()


def jpeg_study(
    folder: Path, gateway: ServeProcess, series: list[tuple[str, str]]
) -> tuple[SentStudy, dict[str, Path]]:
    """A compressed study sent to the gateway and published; the uncompressed originals by SOP
    Instance UID."""
    local = f"JPEG-{uuid.uuid4().hex[:6]}"
    spec = synthetic.StudySpec(patient_id=local, issuer_oid=DOMAIN)
    pairs = compressed.study_files(folder, series, spec=spec)
    study = SentStudy(spec=spec, paths=[p for _, p in pairs], patient=f"{local}^^^&{DOMAIN}&ISO")
    feed_patient(gateway, study.patient)
    send_and_wait(gateway, gateway.registry_url, study)
    # dcmcjpeg gives a lossy (JPEG Baseline) copy a new SOP Instance UID: key by the sent one
    originals = {
        str(pydicom.dcmread(packed, stop_before_pixels=True).SOPInstanceUID): plain
        for plain, packed in pairs
    }
    return study, originals


def fetch_into(
    tmp_path: Path, gateway: ServeProcess, study: SentStudy, target: str
) -> subprocess.CompletedProcess[str]:
    argv = [
        "fetch-study",
        "--patient", study.patient,
        "--store-to", target,
        "--registry", gateway.registry_url,
        "--repository", f"{REPOSITORY_UID}={gateway.repository_url}",
        "--imaging-source", f"{SOURCE_UID}={source_url(gateway)}",
        "--no-progress",
    ]  # fmt: skip
    return run_consumer(tmp_path, *argv)


def test_storescp_refuses_jpeg(tmp_path: Path) -> None:
    """The premise: storescp with its defaults accepts CT only uncompressed."""
    with running_storescp(tmp_path / "pacs") as pacs:
        ae = AE(ae_title="PROBE")
        ae.add_requested_context(CT, [JPEGLosslessSV1])
        ae.add_requested_context(CT, [ExplicitVRLittleEndian])
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", pacs.port, ae_title=STORESCP_AET)
        assert assoc.is_established
        accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
        assoc.release()
    assert (CT, ExplicitVRLittleEndian) in accepted
    assert (CT, JPEGLosslessSV1) not in accepted


def test_jpeg_study_is_delivered_decompressed_into_an_uncompressed_only_pacs(
    tmp_path: Path, gateway: ServeProcess
) -> None:
    study, originals = jpeg_study(tmp_path / "sent", gateway, SERIES)
    with running_storescp(tmp_path / "pacs") as pacs:
        result = fetch_into(tmp_path, gateway, study, pacs.target)
        received = pacs.files()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"0 already present, {len(originals)} fetched" in result.stdout
    assert len(received) == len(originals)
    for path in received:
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
        original = pydicom.dcmread(originals.pop(str(ds.SOPInstanceUID)))
        if ds.Modality == "US":  # JPEG Baseline: lossy, the decoder's values
            assert ds.LossyImageCompression == "01"
            assert ds.PhotometricInterpretation == "MONOCHROME2"
        else:
            assert ds.PixelData == original.PixelData  # lossless: the very pixels
    assert originals == {}


@pytest.fixture
def j2k_only_pacs() -> Iterator[tuple[int, list[str]]]:
    """A pynetdicom storage SCP that takes CT only in JPEG 2000 (Lossless Only), which the
    gateway cannot produce from JPEG Lossless; MR it does not take at all."""
    received: list[str] = []

    def store(event: evt.Event) -> int:
        received.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000

    ae = AE(ae_title="J2KPACS")
    ae.require_called_aet = True
    ae.add_supported_context(CT, [JPEG2000Lossless])
    ae.add_supported_context(Verification)
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, store)])
    try:
        yield int(server.server_address[1]), received
    finally:
        server.shutdown()


def test_a_syntax_that_cannot_be_delivered_is_said_plainly(
    tmp_path: Path, gateway: ServeProcess, j2k_only_pacs: tuple[int, list[str]]
) -> None:
    port, received = j2k_only_pacs
    study, _ = jpeg_study(
        tmp_path / "sent", gateway, [("CT", JPEGLosslessSV1), ("MR", ExplicitVRLittleEndian)]
    )
    result = fetch_into(tmp_path, gateway, study, f"J2KPACS@127.0.0.1:{port}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert received == []
    lines = result.stderr.splitlines()  # problems and the INCOMPLETE line go to stderr
    ct = [line for line in lines if "missing" in line and "CT Image Storage" in line]
    assert len(ct) == 2, result.stderr
    assert all(
        "takes CT Image Storage only in JPEG 2000 Image Compression (Lossless Only); the "
        "imaging source answered: instance"
        in line
        and "converts only into Explicit VR Little Endian" in line
        for line in ct
    )
    mr = [
        line for line in lines if "does not accept MR Image Storage in any transfer syntax" in line
    ]
    assert len(mr) == 2, result.stderr
    assert "INCOMPLETE: 4 instance(s) missing" in result.stderr
    assert "retry" not in result.stdout + result.stderr
    assert "not established" not in result.stdout + result.stderr
    assert count_rad69(gateway) == 1  # one request for the CT series, none repeated


# pynetdicom 3.0 leaks the socket of a refused connection (AssociationSocket.connect calls
# shutdown() on the unconnected socket, which raises before close()): its ResourceWarning is
# pynetdicom's, not ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_what_the_pacs_takes_is_negotiated_and_refusals_are_said_plainly(
    tmp_path: Path, j2k_only_pacs: tuple[int, list[str]]
) -> None:
    from gateway.consumer.errors import PeerError
    from gateway.consumer.pacs import PacsDestination, StoreTarget
    from gateway.consumer.syntaxes import ALL

    port, _ = j2k_only_pacs
    mr = synthetic.SOP_CLASSES["MR"]
    pacs = PacsDestination(StoreTarget("J2KPACS", "127.0.0.1", port), spool_dir=tmp_path / "s")
    assert pacs.transfer_syntaxes([CT, mr], ALL) == {CT: (JPEG2000Lossless,), mr: ()}
    with running_storescp(tmp_path / "pacs") as scp:
        plain = PacsDestination(StoreTarget(STORESCP_AET, "127.0.0.1", scp.port))
        taken = plain.transfer_syntaxes([CT], ALL)[CT]
    assert set(taken) == {ExplicitVRLittleEndian, ImplicitVRLittleEndian, "1.2.840.10008.1.2.2"}
    wrong = PacsDestination(StoreTarget("NOT_IT", "127.0.0.1", port), spool_dir=tmp_path / "w")
    with pytest.raises(PeerError, match="rejected the association") as rejected:
        wrong.transfer_syntaxes([CT], ALL)
    assert not rejected.value.transient and "Called AE title not recognised" in str(rejected.value)
    from tests.support.orthanc import free_port

    down = PacsDestination(StoreTarget("X", "127.0.0.1", free_port()), spool_dir=tmp_path / "d")
    with pytest.raises(PeerError, match="cannot be reached") as unreachable:
        down.transfer_syntaxes([CT], ALL)
    assert unreachable.value.transient
    gc.collect()  # the leaked socket's warning is raised here, under this test's filter
    for destination in (pacs, plain, wrong, down):
        destination.finish()
