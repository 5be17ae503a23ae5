"""``xdsi-gateway demo``: the whole XDS-I.b exchange, step by step, on a temporary data folder.

1. start a gateway with every actor (registry, repository, imaging document source, ITI-8
   listener) in this process, on ephemeral ports, its data in a temporary folder;
2. feed the patient (ITI-8 ADT^A01 over MLLP);
3. generate a multi-series study (``gateway.imaging.synthetic``; no real patient data);
4. send it to the imaging document source over DICOM (C-STORE);
5. wait for its KOS manifest: the source publishes it (RAD-68) after ``--idle`` seconds of quiet;
   the demo polls ITI-18 FindDocuments until it is registered;
6. query the registry and print the table;
7. fetch the study back (ITI-18, ITI-43, RAD-69) into the temporary folder;
8. verify every instance byte for byte: the data set of each fetched file equals what was sent
   (the File Meta Information in front is the receiver's, PS3.7 §9.3.1 / PS3.10 §7.1).

Exit 0 when every instance is verified; the folder is removed unless ``--keep``.
"""

from __future__ import annotations

import argparse
import io
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from pydicom import dcmread
from pynetdicom import AE, evt

from gateway import dicomscu
from gateway.app import Gateway
from gateway.config import Settings, load_settings
from gateway.consumer.clients import RegistryQueryClient
from gateway.consumer.fetch import FetchReport, FetchRequest, StudyFetcher
from gateway.consumer.manifest import InstanceRef
from gateway.consumer.queries import KOS_FORMAT_CODE, QueryOptions, build_slots
from gateway.consumer.settings import ConsumerSettings, consumer_settings
from gateway.consumer.store import FolderDestination
from gateway.consumer.table import render_table, study_uids
from gateway.hl7.mllp import send_messages
from gateway.imaging import synthetic
from gateway.metadata.model import DocumentEntry

EXIT_OK, EXIT_FAILURE = 0, 1
STEPS = 8


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``xdsi-gateway demo``."""
    parser.add_argument(
        "--instances", type=int, default=60, help="instances in the study (default 60)"
    )
    parser.add_argument(
        "--idle", type=int, default=1, help="imaging_source.study_idle_seconds (default 1)"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the manifest"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")


class Steps:
    """Prints each step with its duration."""

    def __init__(self, out: TextIO, total: int = STEPS) -> None:
        self.out = out
        self.total = total
        self.number = 0
        self.started = time.monotonic()

    @contextmanager
    def step(self, title: str) -> Iterator[list[str]]:
        """Time a step; what the block appends to the yielded list is printed after it."""
        self.number += 1
        details: list[str] = []
        began = time.monotonic()
        print(f"[{self.number}/{self.total}] {title} ...", file=self.out, flush=True)
        yield details
        elapsed = time.monotonic() - began
        print(f"      done in {elapsed:.2f} s", file=self.out, flush=True)
        for line in details:
            print(f"      {line}", file=self.out, flush=True)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the demo; return the exit status."""
    out = out or sys.stdout
    folder = Path(tempfile.mkdtemp(prefix="xdsi-demo-"))
    print(f"xdsi-gateway demo: the XDS-I.b exchange in {folder}", file=out)
    steps = Steps(out)
    try:
        verified = _exchange(args, folder, steps)
    except DemoError as exc:
        print(f"xdsi-gateway demo: FAILED: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if args.keep:
            print(f"data kept in {folder}", file=out)
        else:
            _remove(folder)
    total = time.monotonic() - steps.started
    print(f"verified {verified} instances byte for byte in {total:.1f} s", file=out)
    return EXIT_OK


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _exchange(args: argparse.Namespace, folder: Path, steps: Steps) -> int:
    domain = "1.3.6.1.4.1.21367.13.20.1000"
    with steps.step("start a gateway with every actor") as details:
        gateway = _start_gateway(folder / "data", args.idle, domain)
    try:
        dicom = _dicom_address(gateway)
        details.append(f"SOAP {gateway.base_url}, MLLP {_address(gateway.mllp_address)}")
        details.append(f"DICOM {dicom[0]}@{dicom[1]}:{dicom[2]}")
        consumer = consumer_settings(gateway.settings, base_url=gateway.base_url)
        patient_local = f"DEMO-{uuid.uuid4().hex[:8].upper()}"
        patient = f"{patient_local}^^^&{domain}&ISO"
        return _with_gateway(args, folder, steps, gateway, consumer, dicom, patient_local, patient)
    finally:
        gateway.stop()


def _with_gateway(
    args: argparse.Namespace,
    folder: Path,
    steps: Steps,
    gateway: Gateway,
    consumer: ConsumerSettings,
    dicom: tuple[str, str, int],
    patient_local: str,
    patient: str,
) -> int:
    with steps.step(f"feed patient {patient} (ITI-8 ADT^A01 over MLLP)") as details:
        details.append(_feed(gateway, patient_local, gateway.settings.registry.patient_id_domain))
    with steps.step("generate a multi-series study") as details:
        spec, paths = _generate(folder / "sent", patient_local, gateway.settings, args.instances)
        details.append(f"study {spec.study_uid}: {_describe(spec)}")
    with steps.step(f"send it over DICOM to {dicom[0]} (C-STORE)") as details:
        details.append(f"{send_files(dicom, paths)} instances stored")
    with steps.step(f"wait for its manifest (study idle {args.idle} s, RAD-68)") as details:
        entry = wait_for_manifest(consumer, patient, spec.study_uid, args.timeout)
        details.append(f"manifest {entry.unique_id} in repository {entry.repository_unique_id}")
    with steps.step("query the registry (ITI-18 FindDocuments)") as details:
        details.extend(_query(consumer, patient).splitlines())
    with steps.step("fetch the study back (ITI-18, ITI-43, RAD-69)") as details:
        destination = FolderDestination(folder / "fetched")
        report = StudyFetcher(consumer, destination, progress=io.StringIO()).run(
            FetchRequest(patient_id=patient, study_uid=spec.study_uid)
        )
        if not report.complete:
            raise DemoError(f"fetch incomplete: {report.problems or _missing(report)}")
        study = report.studies[0]
        details.append(
            f"{study.fetched} instances, {study.bytes / 1e6:.2f} MB, "
            f"{study.requests} RAD-69 request(s)"
        )
    with steps.step("verify every instance byte for byte") as details:
        verified = _verify(paths, destination, patient)
        details.append(f"{verified}/{len(paths)} data sets identical to what was sent")
    return verified


def _address(address: tuple[str, int] | None) -> str:
    return f"{address[0]}:{address[1]}" if address else "-"


def _start_gateway(data_dir: Path, idle: int, domain: str) -> Gateway:
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(data_dir),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": str(max(idle, 1)),
            "XDSI_REGISTRY_PATIENT_ID_DOMAIN": domain,
            "XDSI_LOG_LEVEL": "WARNING",
        }
    )
    gateway = Gateway(settings)
    try:
        gateway.start()
    except OSError as exc:
        raise DemoError(f"the gateway did not start: {exc}") from exc
    return gateway


def _dicom_address(gateway: Gateway) -> tuple[str, str, int]:
    """(AE title, host, port) of the running imaging document source."""
    source = gateway.imaging
    if source is None:
        raise DemoError("this gateway runs no imaging document source (app.py does not start it)")
    host, port = source.address
    return gateway.settings.imaging_source.ae_title, host, int(port)


def _feed(gateway: Gateway, patient_local: str, domain: str) -> str:
    address = gateway.mllp_address
    if address is None:
        raise DemoError("the ITI-8 listener is not running")
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    message = "\r".join(
        [
            f"MSH|^~\\&|DEMO|DEMO|XDSI|XDSI|{stamp}||ADT^A01^ADT_A01|{uuid.uuid4().hex[:20]}|P|2.5",
            f"EVN|A01|{stamp}",
            f"PID|||{patient_local}^^^&{domain}&ISO||Demo^Patient||19700101|O",
            "PV1||O",
        ]
    ).encode()
    [ack] = send_messages(address[0], address[1], [message], timeout=30)
    if b"MSA|AA" not in ack:
        raise DemoError(f"ITI-8 not accepted: {ack!r}")
    return "ACK AA"


def _generate(
    folder: Path, patient_local: str, settings: Settings, instances: int
) -> tuple[synthetic.StudySpec, list[Path]]:
    third = max(instances // 3, 1)
    series = (
        synthetic.SeriesSpec(modality="CT", count=instances - 2 * third, body_part="CHEST"),
        synthetic.SeriesSpec(
            modality="MR",
            count=third,
            body_part="HEAD",
            transfer_syntax=synthetic.ImplicitVRLittleEndian,
        ),
        synthetic.SeriesSpec(  # JPEG Baseline is 8-bit: an ultrasound, not a CT (12-16 bit)
            modality="US",
            count=third,
            body_part="ABDOMEN",
            transfer_syntax=synthetic.JPEGBaseline8Bit,
        ),
    )
    spec = synthetic.StudySpec(
        patient_id=patient_local,
        patient_name="Demo^Patient",
        issuer_oid=settings.registry.patient_id_domain,
        accession_number=f"ACC{uuid.uuid4().hex[:8].upper()}",
        series=tuple(s for s in series if s.count > 0),
    )
    return spec, synthetic.write_study(synthetic.make_study(spec), folder)


def _describe(spec: synthetic.StudySpec) -> str:
    parts = [f"{s.count} {s.modality} ({_syntax_name(s.transfer_syntax)})" for s in spec.series]
    return f"{len(spec.series)} series: " + ", ".join(parts)


def _syntax_name(uid: str) -> str:
    from pydicom.uid import UID

    return UID(uid).name


def _nodelay(event: evt.Event) -> None:
    # Nagle's algorithm plus delayed ACKs stall a request/response protocol on loopback.
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if isinstance(sock, socket.socket):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def send_files(
    target: tuple[str, str, int], paths: list[Path], calling_ae_title: str = "XDSI_DEMO"
) -> int:
    """C-STORE Part 10 files over one association, each in its own transfer syntax; return how
    many were stored. Standard: PS3.4 Annex B, PS3.7 §9.1.1. Raises: DemoError."""
    ae_title, host, port = target
    ae = AE(ae_title=calling_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    pairs: dict[tuple[str, str], None] = {}  # ordered set of (SOP Class, syntax)
    for path in paths:
        meta = dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"]).file_meta
        pairs[(str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID))] = None
    for sop_class, syntax in pairs:
        ae.add_requested_context(sop_class, [syntax])
    assoc = ae.associate(
        host, port, ae_title=ae_title, evt_handlers=[(evt.EVT_CONN_OPEN, _nodelay)]
    )
    if not assoc.is_established:
        raise DemoError(f"no DICOM association with {ae_title}@{host}:{port}")
    stored = 0
    try:
        for path in paths:
            status = dicomscu.send_c_store(assoc, str(path))
            if status is None or status.get("Status") != 0x0000:
                raise DemoError(f"C-STORE of {path.name} failed: {status}")
            stored += 1
    finally:
        assoc.release()
    return stored


def wait_for_manifest(
    consumer: ConsumerSettings, patient: str, study_uid: str, timeout: float
) -> DocumentEntry:
    """Poll ITI-18 FindDocuments (KOS, Approved) until a manifest of the study is registered.

    Raises: DemoError after ``timeout`` seconds.
    """
    query_id, slots = build_slots(QueryOptions(patient_id=patient, format_codes=[KOS_FORMAT_CODE]))
    client = RegistryQueryClient(consumer.require_registry(), timeout=consumer.timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for obj in client.query(query_id, slots).objects:
            if isinstance(obj, DocumentEntry) and study_uid in study_uids(obj):
                return obj
        time.sleep(0.25)  # polling the registry with a deadline
    raise DemoError(f"no manifest of study {study_uid} registered within {timeout:.0f} s")


def _query(consumer: ConsumerSettings, patient: str) -> str:
    query_id, slots = build_slots(QueryOptions(patient_id=patient))
    client = RegistryQueryClient(consumer.require_registry(), timeout=consumer.timeout)
    return render_table(client.query(query_id, slots).objects)


def _missing(report: FetchReport) -> str:
    return "; ".join(f"{uid}: {why}" for s in report.studies for uid, why in s.missing.items())


def _verify(paths: list[Path], destination: FolderDestination, patient: str) -> int:
    verified = 0
    for path in paths:
        sent = path.read_bytes()
        ds = dcmread(path, stop_before_pixels=True)
        ref = InstanceRef(
            study_instance_uid=str(ds.StudyInstanceUID),
            series_instance_uid=str(ds.SeriesInstanceUID),
            sop_instance_uid=str(ds.SOPInstanceUID),
            sop_class_uid=str(ds.SOPClassUID),
            retrieve_location_uid=None,
        )
        fetched = destination.path_of(patient, ref)
        if not fetched.is_file():
            raise DemoError(f"instance {ref.sop_instance_uid} was not fetched")
        if synthetic.dataset_bytes(fetched.read_bytes()) != synthetic.dataset_bytes(sent):
            raise DemoError(f"instance {ref.sop_instance_uid} differs from what was sent")
        verified += 1
    return verified
