"""Scripted raw DICOM peers (parrot style) against the imaging source's acceptor.

Each test drives a plain socket against a started listener with exactly the bytes it names:
PDUs split byte by byte or coalesced, fragmented commands and data sets, and every kind of wrong
PDU. The acceptor must answer as PS3.8 says (A-ASSOCIATE-RJ, A-ABORT with the right source and
reason, A-RELEASE-RP), store exactly the data sets that arrived whole, and leave nothing behind.
Requests are encoded with pynetdicom's PDU classes and pydicom's writer, not with the code under
test.

Standard: DICOM PS3.8 §9.2 (state machine: AA-1, AA-8, AR-4, ARTIM), §9.3 (PDUs), Table 9-21
(rejections), Table 9-26 (abort reasons), Annex E (fragments); PS3.7 §9.3.1, §9.3.5.
"""

from __future__ import annotations

import io
import itertools
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pynetdicom.dsutils import encode
from pynetdicom.pdu import A_ASSOCIATE_AC

from gateway.imaging import synthetic
from gateway.imaging.net.association import Timeouts
from gateway.imaging.source import ImagingSource
from tests.unit.imaging.support import AE_TITLE, RecordingRepository, make_source, study_spec
from tests.unit.imaging.test_imaging_net import request_bytes

CT = synthetic.SOP_CLASSES["CT"]
VERIFICATION = "1.2.840.10008.1.1"
EXPLICIT = "1.2.840.10008.1.2.1"
TIMEOUT = 10.0


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[ImagingSource]:
    source = make_source(tmp_path, RecordingRepository(), fsync=True)
    source.scp.timeouts = Timeouts(artim=1.0, idle=5.0)
    source.start()
    try:
        yield source
    finally:
        source.stop()


def pdu(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBI", kind, 0, len(body)) + body


def pdv(context: int, control: int, data: bytes) -> bytes:
    return struct.pack(">IBB", len(data) + 2, context, control) + data


def command(**values: Any) -> bytes:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return bytes(encode(ds, True, True))


def c_store_rq(ds: Dataset, message_id: int = 1) -> bytes:
    return command(
        AffectedSOPClassUID=ds.SOPClassUID,
        CommandField=0x0001,
        MessageID=message_id,
        Priority=0,
        CommandDataSetType=0x0000,
        AffectedSOPInstanceUID=ds.SOPInstanceUID,
    )


def c_echo_rq(message_id: int = 1) -> bytes:
    return command(
        AffectedSOPClassUID=VERIFICATION,
        CommandField=0x0030,
        MessageID=message_id,
        CommandDataSetType=0x0101,
    )


RELEASE_RQ = pdu(0x05, bytes(4))


class Peer:
    """A scripted requestor on a plain socket."""

    def __init__(self, source: ImagingSource) -> None:
        self.sock = socket.create_connection(source.address, timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def send(self, *chunks: bytes, pause: float = 0.0) -> None:
        for chunk in chunks:
            self.sock.sendall(chunk)
            if pause:
                time.sleep(pause)  # pacing only: separate TCP segments

    def trickle(self, data: bytes) -> None:
        """One byte per TCP segment."""
        for byte in data:
            self.send(bytes((byte,)), pause=0.0005)

    def pdu(self) -> tuple[int, bytes]:
        while (
            len(self.buffer) < 6 or len(self.buffer) < 6 + struct.unpack(">I", self.buffer[2:6])[0]
        ):
            data = self.sock.recv(65536)
            assert data, f"closed by the listener (had {self.buffer!r})"
            self.buffer += data
        length = struct.unpack(">I", self.buffer[2:6])[0]
        kind, body = self.buffer[0], self.buffer[6 : 6 + length]
        self.buffer = self.buffer[6 + length :]
        return kind, body

    def associate(self, contexts: list[tuple[int, str, list[str]]] | None = None) -> A_ASSOCIATE_AC:
        self.send(request_bytes(contexts or [(1, CT, [EXPLICIT]), (3, VERIFICATION, [EXPLICIT])]))
        kind, body = self.pdu()
        assert kind == 0x02, (kind, body)
        ac = A_ASSOCIATE_AC()
        ac.decode(pdu(kind, body))
        return ac

    def response(self) -> Dataset:
        """The next DIMSE response (a command set, maybe fragmented)."""
        fragments = b""
        while True:
            kind, body = self.pdu()
            assert kind == 0x04, (kind, body)
            offset = 0
            while offset < len(body):
                length = struct.unpack(">I", body[offset : offset + 4])[0]
                control = body[offset + 5]
                assert control & 0x01
                fragments += body[offset + 6 : offset + 4 + length]
                offset += 4 + length
                if control & 0x02:
                    return read_dataset(io.BytesIO(fragments), True, True)

    def closed(self) -> bool:
        """The listener closed the connection (waits up to TIMEOUT)."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buffer += data
        except (TimeoutError, ConnectionResetError):
            return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def peer(listener: ImagingSource) -> Iterator[Peer]:
    client = Peer(listener)
    yield client
    client.close()


def an_instance() -> tuple[Dataset, bytes]:
    ds = synthetic.make_study(study_spec(series=(synthetic.SeriesSpec(modality="CT", count=1),)))[0]
    return ds, synthetic.dataset_bytes(synthetic.encode(ds))


def stored_files(source: ImagingSource) -> list[Path]:
    return sorted(source.store.root.glob("*/*/*.dcm"))


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)  # polling a condition with a deadline
    return condition()


def expect_abort(peer: Peer, reason: int) -> None:
    """An A-ABORT from the service provider with ``reason``, then the connection closes (the
    listener closes it itself once ARTIM expires, if the peer does not)."""
    kind, body = peer.pdu()
    assert (kind, body) == (0x07, bytes((0, 0, 2, reason))), (kind, body)
    assert peer.closed()


# -- associations that work ---------------------------------------------------------------------


def test_fragmented_commands_and_data_sets_in_pdus_split_byte_by_byte(
    listener: ImagingSource, peer: Peer
) -> None:
    ac = peer.associate()
    assert [(c.context_id, c.result_reason) for c in ac.presentation_context] == [(1, 0), (3, 0)]
    ds, body = an_instance()
    request = c_store_rq(ds, message_id=41)
    # the command in 1-byte fragments over 3 PDUs, the data set in odd fragments over 4 PDUs
    fragments = [pdv(1, 0x01, request[i : i + 1]) for i in range(len(request) - 1)]
    fragments.append(pdv(1, 0x03, request[-1:]))
    third = len(fragments) // 3
    wire = b"".join(
        pdu(0x04, b"".join(fragments[i : i + third])) for i in range(0, len(fragments), third)
    )
    cuts = [0, 1, 7, len(body) // 2, len(body)]
    data = [
        pdv(1, 0x00 if end < len(body) else 0x02, body[start:end])
        for start, end in itertools.pairwise(cuts)
    ]
    wire += pdu(0x04, data[0]) + pdu(0x04, data[1] + data[2]) + pdu(0x04, data[3])
    peer.trickle(wire[:300])
    peer.send(wire[300:])
    response = peer.response()
    assert (response.CommandField, response.MessageIDBeingRespondedTo, response.Status) == (
        0x8001,
        41,
        0x0000,
    )
    assert response.AffectedSOPInstanceUID == ds.SOPInstanceUID
    peer.send(RELEASE_RQ)
    assert peer.pdu() == (0x06, bytes(4))
    [stored] = stored_files(listener)
    assert synthetic.dataset_bytes(stored.read_bytes()) == body


def test_coalesced_messages_and_release_in_one_segment(listener: ImagingSource, peer: Peer) -> None:
    peer.associate()
    instances = [an_instance() for _ in range(3)]
    wire = pdu(0x04, pdv(3, 0x03, c_echo_rq(1)))
    for number, (ds, body) in enumerate(instances, start=2):
        wire += pdu(0x04, pdv(1, 0x03, c_store_rq(ds, number)) + pdv(1, 0x02, body))
    peer.send(wire + RELEASE_RQ)
    echo = peer.response()
    assert (echo.CommandField, echo.Status, echo.MessageIDBeingRespondedTo) == (0x8030, 0, 1)
    assert [peer.response().Status for _ in instances] == [0, 0, 0]
    assert peer.pdu() == (0x06, bytes(4))
    assert peer.closed()
    assert len(stored_files(listener)) == 3


def test_refused_data_set_gets_its_status_and_a_comment(peer: Peer) -> None:
    peer.associate()
    ds, body = an_instance()
    other, _ = an_instance()
    peer.send(pdu(0x04, pdv(1, 0x03, c_store_rq(other)) + pdv(1, 0x02, body)))
    response = peer.response()
    assert response.Status == 0xC002  # the data set is not the request's SOP Instance
    assert "differs" in response.ErrorComment
    peer.send(pdu(0x04, pdv(1, 0x03, c_store_rq(ds)) + pdv(1, 0x02, b"\x08\x00\x16\x00UI")))
    assert peer.response().Status & 0xF000 == 0xC000  # Error: Cannot understand (PS3.4 B.2.3)


def test_unsupported_operation_is_answered_and_its_data_set_dropped(peer: Peer) -> None:
    peer.associate()
    find = command(
        AffectedSOPClassUID=CT, CommandField=0x0020, MessageID=5, Priority=0, CommandDataSetType=1
    )
    peer.send(pdu(0x04, pdv(1, 0x03, find) + pdv(1, 0x02, b"\x08\x00\x52\x00\x06\x00STUDY ")))
    response = peer.response()
    assert (response.CommandField, response.Status, response.MessageIDBeingRespondedTo) == (
        0x8020,
        0x0211,
        5,
    )
    peer.send(pdu(0x04, pdv(3, 0x03, c_echo_rq(6))))
    assert peer.response().Status == 0  # the association goes on


# -- rejections ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b.replace(b"XDSI_SOURCE     ", b"SOMEONE_ELSE    ", 1), (1, 1, 7)),
        (lambda b: b[:6] + b"\x00\x02" + b[8:], (1, 2, 2)),
        (lambda b: b.replace(b"1.2.840.10008.3.1.1.1", b"1.2.840.10008.3.1.1.2", 1), (1, 1, 2)),
    ],
)
def test_rejections(peer: Peer, mutate: Any, expected: tuple[int, int, int]) -> None:
    peer.send(mutate(request_bytes([(1, CT, [EXPLICIT])])))
    assert peer.pdu() == (0x03, bytes((0, *expected)))
    assert peer.closed()  # after ARTIM (PS3.8 §9.2: Sta13)


def test_over_the_association_limit_the_rejection_is_transient(listener: ImagingSource) -> None:
    listener.scp.max_associations = 1
    listener.scp.server.max_associations = 1  # type: ignore[union-attr]
    first, second = Peer(listener), Peer(listener)
    try:
        first.associate()
        second.send(request_bytes([(1, CT, [EXPLICIT])]))
        assert second.pdu() == (0x03, bytes((0, 2, 3, 2)))  # transient, local-limit-exceeded
        first.send(pdu(0x04, pdv(3, 0x03, c_echo_rq())))
        assert first.response().Status == 0
    finally:
        first.close()
        second.close()


# -- aborts (PS3.8 Table 9-26: source 2 = service provider) --------------------------------------


def test_p_data_before_associating_is_unexpected(peer: Peer) -> None:
    peer.send(pdu(0x04, pdv(1, 0x03, c_echo_rq())))
    expect_abort(peer, 0x02)


def test_unknown_pdu_type_is_unrecognized(peer: Peer) -> None:
    peer.associate()
    peer.send(pdu(0x09, b"\x00\x00\x00\x00"))
    expect_abort(peer, 0x01)


def test_an_associate_ac_from_the_requestor_is_unexpected(peer: Peer) -> None:
    peer.associate()
    peer.send(pdu(0x02, bytes(68)))
    expect_abort(peer, 0x02)


@pytest.mark.parametrize(
    "bad",
    [
        pdu(0x04, struct.pack(">IBB", 100, 1, 3) + b"short"),  # PDV longer than its PDU
        pdu(0x04, pdv(9, 0x03, c_echo_rq())),  # context 9 was never accepted
        pdu(0x04, b""),  # P-DATA-TF without a PDV
        pdu(0x04, pdv(1, 0x02, b"data without its command")),
    ],
)
def test_malformed_p_data_aborts(listener: ImagingSource, peer: Peer, bad: bytes) -> None:
    peer.associate()
    peer.send(bad)
    kind, body = peer.pdu()
    assert kind == 0x07 and body[2] == 2 and body[3] in (0x05, 0x06)
    assert stored_files(listener) == []


def test_a_p_data_beyond_the_announced_maximum_is_refused_unread(peer: Peer) -> None:
    ac = peer.associate()
    [length] = [i for i in ac.user_information.user_data if i.item_type == 0x51]
    peer.send(struct.pack(">BBI", 0x04, 0, length.maximum_length_received + 1))
    expect_abort(peer, 0x06)


def test_a_broken_command_set_aborts(peer: Peer) -> None:
    peer.associate()
    peer.send(pdu(0x04, pdv(1, 0x03, c_echo_rq()[:-3])))
    expect_abort(peer, 0x00)


def test_a_truncated_associate_request_aborts(peer: Peer) -> None:
    peer.send(pdu(0x01, bytes(40)))
    expect_abort(peer, 0x06)


# -- transfers that end early leave nothing ------------------------------------------------------


@pytest.mark.parametrize("ending", ["abort", "release", "drop", "truncated"])
def test_a_data_set_cut_off_leaves_nothing(
    listener: ImagingSource, peer: Peer, ending: str
) -> None:
    listener.scp.memory_limit = 1000  # the data set goes to a file: check it goes away too
    peer.associate()
    ds, body = an_instance()
    peer.send(pdu(0x04, pdv(1, 0x03, c_store_rq(ds)) + pdv(1, 0x00, body[:5000])))
    incoming = listener.scp.incoming_dir  # this process's own folder
    assert incoming.parent == listener.store.incoming_dir
    assert wait_until(lambda: len(list(incoming.iterdir())) == 1)
    if ending == "abort":
        peer.send(pdu(0x07, bytes((0, 0, 0, 0))))
    elif ending == "release":
        peer.send(RELEASE_RQ)
        assert peer.pdu() == (0x06, bytes(4))
    elif ending == "truncated":
        peer.send(pdu(0x04, pdv(1, 0x02, body[5000:]))[:-100])
        peer.sock.shutdown(socket.SHUT_WR)
    peer.close()
    assert wait_until(lambda: list(incoming.iterdir()) == [])
    assert wait_until(
        lambda: listener.scp.server is not None and listener.scp.server.associations == []
    )
    assert stored_files(listener) == []
    assert listener.index.instance(str(ds.SOPInstanceUID)) is None


# -- timers ---------------------------------------------------------------------------------------


def test_artim_closes_a_connection_that_never_associates(peer: Peer) -> None:
    started = time.monotonic()
    assert peer.closed()  # within ARTIM (1 s here), without an A-ABORT: nothing was associated
    assert peer.buffer == b""
    assert time.monotonic() - started < TIMEOUT


def test_an_idle_association_is_aborted(listener: ImagingSource) -> None:
    listener.scp.timeouts = Timeouts(artim=1.0, idle=0.5)
    client = Peer(listener)
    try:
        client.associate()
        expect_abort(client, 0x00)
    finally:
        client.close()


def test_a_stopping_listener_aborts_the_associations_still_open(tmp_path: Path) -> None:
    source = make_source(tmp_path, RecordingRepository(), fsync=True)
    source.start()
    client = Peer(source)
    try:
        client.associate()
        source.scp.stop(timeout=0.2)
        expect_abort(client, 0x00)
    finally:
        client.close()
        source.stop()


def test_stored_file_is_the_data_set_behind_the_listeners_meta(
    listener: ImagingSource, peer: Peer
) -> None:
    peer.associate()
    ds, body = an_instance()
    peer.send(pdu(0x04, pdv(1, 0x03, c_store_rq(ds)) + pdv(1, 0x02, body)))
    assert peer.response().Status == 0
    [stored] = stored_files(listener)
    read = pydicom.dcmread(stored, stop_before_pixels=True)
    assert read.file_meta.TransferSyntaxUID == EXPLICIT
    assert read.file_meta.SourceApplicationEntityTitle == "PARROT"
    assert read.SOPInstanceUID == ds.SOPInstanceUID
    assert AE_TITLE == "XDSI_SOURCE"
