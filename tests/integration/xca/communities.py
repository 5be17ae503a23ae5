"""Communities for the XCA tests: ``xdsi-gateway serve`` processes on loopback, each a whole
gateway (registry, repository, imaging document source, ITI-8 listener, both XCA gateways), a
patient fed to it and a study published in it (C-STORE, then its KOS manifest registered)."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread

from gateway.consumer.settings import ConsumerSettings
from gateway.demo import send_files, wait_for_manifest
from gateway.hl7.mllp import send_messages
from gateway.imaging import synthetic
from gateway.metadata.model import DocumentEntry
from gateway.soap.transactions import (
    IMAGING_SOURCE_PATH,
    INITIATING_GATEWAY_PATH,
    RESPONDING_GATEWAY_PATH,
)
from tests.integration.consumer.consumer_env import dicom_address
from tests.integration.repository.serve_process import DOMAIN, ServeProcess

OTHER_DOMAIN = "1.3.6.1.4.1.21367.13.20.2000"  # community B's own patient identifier domain


def cx(local: str, domain: str = DOMAIN) -> str:
    """``local^^^&domain&ISO``."""
    return f"{local}^^^&{domain}&ISO"


@dataclass(slots=True)
class Community:
    """One community: its gateway process, homeCommunityId and patient identifier domain."""

    name: str
    home: str
    domain: str
    process: ServeProcess
    source_uid: str
    repository_uid: str

    @property
    def base(self) -> str:
        return self.process.base

    @property
    def rg(self) -> str:
        return self.base + RESPONDING_GATEWAY_PATH

    @property
    def ig(self) -> str:
        return self.base + INITIATING_GATEWAY_PATH

    @property
    def source(self) -> str:
        return self.base + IMAGING_SOURCE_PATH

    def stop(self) -> None:
        self.process.stop()


def start_community(
    folder: Path,
    name: str,
    *,
    home: str,
    number: int,
    domain: str = DOMAIN,
    communities: Sequence[Community] = (),
    other_domains: dict[str, str] | None = None,
    urls: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Community:
    """A whole gateway as community ``name``: unique ids of its own (``number``), XCA on, the
    Responding Gateways of ``communities`` configured (``other_domains``: home -> its patient
    identifier domain; ``urls``: home -> the URL A is given instead of the community's own),
    audit records written to ``<folder>/<name>-audit.log``."""
    source_uid = f"1.3.6.1.4.1.21367.13.80.{number}"
    repository_uid = f"1.3.6.1.4.1.21367.13.40.{number}"
    domains, given = other_domains or {}, urls or {}
    entries = ",".join(
        f"{c.home}={given.get(c.home, c.rg)}" + (f"|{domains[c.home]}" if c.home in domains else "")
        for c in communities
    )
    process = ServeProcess(
        folder / name,
        env={
            "XDSI_REGISTRY_PATIENT_ID_DOMAIN": domain,
            "XDSI_REPOSITORY_UNIQUE_ID": repository_uid,
            "XDSI_IMAGING_SOURCE_ENABLED": "true",
            "XDSI_IMAGING_SOURCE_UNIQUE_ID": source_uid,
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "1",
            "XDSI_XCA_ENABLED": "true",
            "XDSI_XCA_HOME_COMMUNITY_ID": home,
            "XDSI_XCA_COMMUNITIES": entries,
            "XDSI_AUDIT_ENABLED": "true",
            "XDSI_AUDIT_DESTINATIONS": f"file:{folder / (name + '-audit.log')}",
            **(env or {}),
        },
    )
    return Community(
        name=name,
        home=home,
        domain=domain,
        process=process,
        source_uid=source_uid,
        repository_uid=repository_uid,
    )


def feed(community: Community, *identifiers: str) -> None:
    """ITI-8 ADT^A01 whose PID-3 lists ``identifiers`` (CX, repetitions in order)."""
    address = community.process.mllp()
    assert address is not None, "no ITI-8 listener"
    stamp = "20240101000000"
    message = "\r".join(
        [
            f"MSH|^~\\&|TEST|TEST|XDSI|XDSI|{stamp}||ADT^A01^ADT_A01|{uuid.uuid4().hex[:20]}|P|2.5",
            f"EVN|A01|{stamp}",
            f"PID|||{'~'.join(identifiers)}||Doe^Jane||19700101|F",
            "PV1||O",
        ]
    ).encode()
    [ack] = send_messages(address[0], address[1], [message], timeout=30)
    assert b"MSA|AA" in ack, ack


@dataclass(slots=True)
class Published:
    """A study sent to a community and its registered manifest."""

    community: Community
    patient: str  # the patient id in the community's own domain
    spec: synthetic.StudySpec
    paths: list[Path]
    entry: DocumentEntry
    by_uid: dict[str, bytes] = field(default_factory=dict)


def publish(
    folder: Path, community: Community, patient_local: str, counts: Sequence[int] = (4, 3)
) -> Published:
    """Generate a study of the patient, C-STORE it to the community, wait for its manifest."""
    kinds = (
        ("CT", synthetic.ExplicitVRLittleEndian),
        ("MR", synthetic.ImplicitVRLittleEndian),
        ("US", synthetic.JPEGBaseline8Bit),
    )
    series = tuple(
        synthetic.SeriesSpec(modality=kinds[i % 3][0], count=n, transfer_syntax=kinds[i % 3][1])
        for i, n in enumerate(counts)
    )
    spec = synthetic.StudySpec(patient_id=patient_local, issuer_oid=community.domain, series=series)
    paths = synthetic.write_study(synthetic.make_study(spec), folder / f"sent-{community.name}")
    patient = cx(patient_local, community.domain)
    assert send_files(dicom_address(community.process), paths) == len(paths)
    entry = wait_for_manifest(
        ConsumerSettings(registry_url=community.process.registry_url),
        patient,
        spec.study_uid,
        120,
    )
    by_uid = {
        str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p.read_bytes() for p in paths
    }
    return Published(
        community=community, patient=patient, spec=spec, paths=paths, entry=entry, by_uid=by_uid
    )


class Relay:
    """A TCP relay on loopback in front of a community (A is configured with its address):
    ``hang()`` makes it accept connections and never answer, as a community that hangs would;
    until then every connection is passed through to ``target`` (host, port)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.hanging = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._held: list[socket.socket] = []
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._server.getsockname()[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hang(self) -> None:
        self.hanging.set()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self._held.append(client)
            if self.hanging.is_set():
                continue  # held open, never answered
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()  # the community is down: the connection is refused
                continue
            self._held.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self._stopped.set()
        self._server.close()
        for connection in self._held:
            connection.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while block := source.recv(65536):
            sink.sendall(block)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
