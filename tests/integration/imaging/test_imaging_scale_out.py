"""Several ``xdsi-gateway serve`` processes on one PostgreSQL database (issue 15).

1. One study sent over two DICOM associations to two different processes (separate data
   folders, one database, one shared imaging storage folder, one shared repository storage
   folder, each its own ports) yields exactly one Approved manifest, published once, listing
   every instance; RAD-69 of every instance works through either process, byte for byte.
2. A process killed (SIGKILL) while its manifest is on its way to a slow repository: while it
   lived, nobody else published the study (its lease is short, its claim old); once it is gone,
   the other process takes the claim and the pending manifest over and sends it again byte for
   byte; the study is published once.

Each test gets a fresh PostgreSQL database (skipped without XDSI_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import io
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import create_engine, text

from gateway.consumer.clients import (
    ImagingSourceClient,
    RegistryQueryClient,
    RepositoryRetrieveClient,
)
from gateway.consumer.queries import QueryOptions, build_slots
from gateway.consumer.settings import ConsumerSettings
from gateway.demo import send_files, wait_for_manifest
from gateway.imaging import synthetic
from gateway.imaging.codes import KOS_FORMAT_CODE
from gateway.metadata.model import DocumentEntry
from gateway.metadata.retrieve import (
    DocumentRequest,
    ImagingDocumentRequest,
    Status,
    build_registry_response,
)
from gateway.soap import ns
from gateway.soap import transactions as tx
from gateway.soap.dispatch import Context, Limits, SoapApplication
from gateway.soap.message import SoapRequest, SoapResponse
from gateway.soap.server import HttpServer
from tests.conftest import POSTGRES_ENV, _admin_execute, _psycopg2
from tests.integration.consumer.consumer_env import dicom_address
from tests.integration.repository.serve_process import DOMAIN, ServeProcess, feed_patient
from tests.unit.imaging.support import evidence_instances

REPOSITORY_UID = "1.3.6.1.4.1.21367.13.40.100"
SOURCE_UID = "1.3.6.1.4.1.21367.13.80.100"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test alone."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: the scale-out tests need PostgreSQL")
    admin = _psycopg2(base)
    name = f"xdsi_scale_{secrets.token_hex(6)}"
    _admin_execute(admin, f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        _admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def shared_env(tmp_path: Path, url: str, **more: str) -> dict[str, str]:
    """Settings every process of the site shares: database and storage folders."""
    return {
        "XDSI_GATEWAY_DATABASE_URL": url,
        "XDSI_REPOSITORY_STORAGE_DIR": str(tmp_path / "shared" / "repository"),
        "XDSI_IMAGING_SOURCE_STORAGE_DIR": str(tmp_path / "shared" / "imaging"),
        "XDSI_IMAGING_SOURCE_ENABLED": "true",
        **more,
    }


def study(folder: Path, patient: str) -> list[Path]:
    """A three-series study (explicit and implicit VR) of the affinity-domain patient."""
    series = (
        synthetic.SeriesSpec(modality="CT", count=8),
        synthetic.SeriesSpec(
            modality="MR", count=8, transfer_syntax=synthetic.ImplicitVRLittleEndian
        ),
        synthetic.SeriesSpec(modality="CT", count=6, body_part="ABDOMEN"),
    )
    spec = synthetic.StudySpec(patient_id=patient, issuer_oid=DOMAIN, series=series)
    return synthetic.write_study(synthetic.make_study(spec), folder)


def headers(paths: list[Path]) -> dict[str, pydicom.Dataset]:
    return {
        str(ds.SOPInstanceUID): ds
        for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in paths)
    }


def kos_entries(registry_url: str, patient: str, statuses: list[str]) -> list[DocumentEntry]:
    query_id, slots = build_slots(
        QueryOptions(patient_id=patient, format_codes=[KOS_FORMAT_CODE], statuses=statuses)
    )
    result = RegistryQueryClient(registry_url, timeout=30).query(query_id, slots)
    return [obj for obj in result.objects if isinstance(obj, DocumentEntry)]


def rad69_all(process: ServeProcess, sent: dict[str, pydicom.Dataset], spool: Path) -> set[str]:
    """RAD-69 of every instance through ``process``, in its stored transfer syntax; the SOP
    Instance UIDs that came back byte for byte as stored in the shared folder."""
    client = ImagingSourceClient(process.base + tx.IMAGING_SOURCE_PATH, spool_dir=spool)
    same: set[str] = set()
    for uid, ds in sent.items():
        request = ImagingDocumentRequest(
            study_instance_uid=str(ds.StudyInstanceUID),
            series_instance_uid=str(ds.SeriesInstanceUID),
            document=DocumentRequest(repository_unique_id=SOURCE_UID, document_unique_id=uid),
        )
        syntax = str(ds.file_meta.TransferSyntaxUID)
        result = client.retrieve([request], [syntax])
        assert result.errors == [], result.errors
        [document] = result.documents
        stored = next((process.data_dir.parent / "shared" / "imaging").rglob(f"{uid}.dcm"))
        if document.attachment.read_bytes() == stored.read_bytes():
            same.add(uid)
    client.close()
    return same


def test_one_study_over_two_processes_gives_one_manifest(tmp_path: Path, postgres_url: str) -> None:
    env = shared_env(tmp_path, postgres_url, XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS="5")
    first = ServeProcess(tmp_path / "p1", env)
    second = ServeProcess(tmp_path / "p2", env)
    try:
        patient = f"SPLIT-1^^^&{DOMAIN}&ISO"
        feed_patient(first, patient)
        paths = study(tmp_path / "study", "SPLIT-1")
        sent = headers(paths)
        halves = (paths[0::2], paths[1::2])  # every series split over both associations
        counts: list[int] = []
        senders = [
            threading.Thread(
                target=lambda p=process, h=half: counts.append(send_files(dicom_address(p), h))
            )
            for process, half in zip((first, second), halves, strict=True)
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(120)
        assert sorted(counts) == sorted(len(h) for h in halves)

        study_uid = str(next(iter(sent.values())).StudyInstanceUID)
        consumer = ConsumerSettings(registry_url=second.registry_url)
        entry = wait_for_manifest(consumer, patient, study_uid, timeout=120)
        approved = kos_entries(first.registry_url, patient, ["approved"])
        everything = kos_entries(first.registry_url, patient, ["approved", "deprecated"])
        assert [e.unique_id for e in approved] == [entry.unique_id]
        assert len(everything) == 1  # published once: no manifest was ever replaced
        logs = first.log() + second.log()
        assert logs.count(f"study {study_uid} published") == 1

        for process in (first, second):
            repository = RepositoryRetrieveClient(process.repository_url, spool_dir=tmp_path)
            result = repository.retrieve(
                [
                    DocumentRequest(
                        repository_unique_id=REPOSITORY_UID,
                        document_unique_id=entry.unique_id or "",
                    )
                ]
            )
            [document] = result.documents
            kos = pydicom.dcmread(io.BytesIO(document.attachment.read_bytes()))
            assert set(evidence_instances(kos)) == set(sent)  # every instance, both halves
            repository.close()
            assert rad69_all(process, sent, tmp_path / "spool") == set(sent)
    finally:
        first.stop()
        second.stop()


# -- 2. SIGKILL mid-publication -------------------------------------------------------------------


@dataclass
class HeldRepository:
    """An ITI-41 endpoint that records every request and holds the first one unanswered until
    released (a slow repository); later requests are answered Success at once."""

    requests: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # (kos uid, body, kos)
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: SoapRequest, ctx: Context) -> SoapResponse:
        document = request.body.find(ns.qname(ns.XDSB, "Document"))
        assert document is not None
        kos = request.attachment_for(document).read_bytes()
        uid = str(pydicom.dcmread(io.BytesIO(kos)).SOPInstanceUID)
        from lxml import etree

        with self.lock:
            self.requests.append((uid, etree.tostring(request.body, method="c14n"), kos))
            first = len(self.requests) == 1
        self.arrived.set()
        if first:
            self.release.wait(120)
        return SoapResponse(body=build_registry_response(Status.SUCCESS))


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[str, HeldRepository]]:
    repository = HeldRepository()
    app = SoapApplication(Limits(spool_dir=tmp_path / "stub-spool"))
    endpoint = app.endpoint(tx.REPOSITORY_PATH, tx.ENDPOINTS[tx.REPOSITORY_PATH])
    endpoint.bind(tx.ITI_41, repository)
    server = HttpServer(app, host="127.0.0.1", port=0, threads=4, shutdown_timeout=1)
    host, port = server.start()
    try:
        yield f"http://{host}:{port}{tx.REPOSITORY_PATH}", repository
    finally:
        repository.release.set()
        server.stop()


def claimer_pid(url: str, study_uid: str) -> int | None:
    """The pid of the process whose lease holds the study's claim."""
    engine = create_engine(_psycopg2(url))
    try:
        with engine.connect() as conn:
            return conn.execute(
                text(
                    "SELECT p.pid FROM imaging_study s JOIN gateway_process p "
                    "ON p.owner = s.claimed_by WHERE s.study_instance_uid = :uid"
                ),
                {"uid": study_uid},
            ).scalar()
    finally:
        engine.dispose()


def study_state(url: str, study_uid: str) -> tuple[str, str | None]:
    engine = create_engine(_psycopg2(url))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT state, manifest_sop_instance_uid FROM imaging_study "
                    "WHERE study_instance_uid = :uid"
                ),
                {"uid": study_uid},
            ).one()
            return str(row[0]), row[1]
    finally:
        engine.dispose()


def test_killed_publisher_is_replaced_and_the_manifest_sent_once_more(
    tmp_path: Path, postgres_url: str, held: tuple[str, HeldRepository]
) -> None:
    url, repository = held
    env = shared_env(
        tmp_path,
        postgres_url,
        XDSI_GATEWAY_LEASE_SECONDS="2",
        XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS="1",
        XDSI_IMAGING_SOURCE_REPOSITORY_URL=url,
        XDSI_REGISTRY_ENABLED="false",
        XDSI_REPOSITORY_ENABLED="false",
        XDSI_HL7_ENABLED="false",
    )
    processes = {p.pid: p for p in (ServeProcess(tmp_path / n, env) for n in ("p1", "p2"))}
    try:
        paths = study(tmp_path / "study", "KILL-1")  # the patient's domain is in the instances
        study_uid = str(pydicom.dcmread(paths[0], stop_before_pixels=True).StudyInstanceUID)
        first = next(iter(processes.values()))
        assert send_files(dicom_address(first), paths) == len(paths)
        assert repository.arrived.wait(60), "no manifest was sent"
        owner_pid = claimer_pid(postgres_url, study_uid)
        assert owner_pid in processes
        # The claim is older than the lease many times over while its owner lives: nobody else
        # takes it (a claim used to be released after 600 s, live or not).
        deadline = time.monotonic() + 8  # four leases
        while time.monotonic() < deadline:
            assert len(repository.requests) == 1
            assert claimer_pid(postgres_url, study_uid) == owner_pid
            time.sleep(0.5)  # polling the stub and the database over four lease periods
        processes.pop(owner_pid).kill()  # SIGKILL mid-publication: its answer never comes
        deadline = time.monotonic() + 60
        while study_state(postgres_url, study_uid)[0] != "published":
            assert time.monotonic() < deadline, "the survivor never published the study"
            time.sleep(0.2)  # polling the database with a deadline
        survivor = next(iter(processes.values()))
        assert f"study {study_uid}: sending manifest" in survivor.log()
        killed, again = repository.requests
        assert again == killed  # the same manifest, byte for byte (KOS and ITI-41 body)
        assert study_state(postgres_url, study_uid) == ("published", killed[0])
    finally:
        repository.release.set()
        for process in processes.values():
            process.stop()
