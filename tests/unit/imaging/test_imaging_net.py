"""The acceptor's codecs and negotiation (gateway.imaging.net), checked against an independent
implementation: pynetdicom encodes the requests these tests decode and decodes the answers they
encode. No sockets (the raw peers are in tests/peers/test_dicom_peer.py).

Standard: DICOM PS3.8 §9.3 (PDUs), Table 9-18 (context results), Table 9-21 (rejections);
PS3.7 Annex D.3.3 (user information), §9.3.1 and §9.3.5 (C-STORE, C-ECHO command sets).
"""

from __future__ import annotations

import dataclasses
import io
import socket
import struct
from collections.abc import Sequence
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pynetdicom.dsutils import encode
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import PresentationContext

from gateway.imaging.cstore import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from gateway.imaging.negotiation import SyntaxChooser
from gateway.imaging.net import dimse, negotiation, pdu
from gateway.imaging.net.association import Association, Timeouts
from gateway.imaging.storescp import SUPPORTED, VERIFICATION

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"
POLICY = negotiation.Policy(
    ae_title="XDSI_SOURCE",
    abstract_syntaxes=frozenset(SUPPORTED),
    choose=SyntaxChooser(SUPPORTED).choose,  # the sender's first supported syntax
    max_pdu=65536,
    implementation_class_uid=IMPLEMENTATION_CLASS_UID,
    implementation_version_name=IMPLEMENTATION_VERSION_NAME,
)


def request_bytes(
    contexts: list[tuple[int, str, list[str]]],
    *,
    called: str = "XDSI_SOURCE",
    roles: Sequence[tuple[str, bool, bool]] = (),
    async_window: tuple[int, int] | None = None,
    identity: bool = False,
) -> bytes:
    """An A-ASSOCIATE-RQ encoded by pynetdicom."""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = pdu.DICOM_APPLICATION_CONTEXT
    primitive.calling_ae_title = "PARROT"
    primitive.called_ae_title = called
    proposed = []
    for context_id, abstract, syntaxes in contexts:
        context = PresentationContext()
        context.context_id = context_id
        context.abstract_syntax = abstract
        context.transfer_syntax = syntaxes
        proposed.append(context)
    primitive.presentation_context_definition_list = proposed
    length = MaximumLengthNotification()
    length.maximum_length_received = 16384
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = "1.2.826.0.1.3680043.9.3811.3.0.0"
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = "PARROT_1"
    user: list[Any] = [length, implementation, version]
    for uid, scu, scp in roles:
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid, role.scu_role, role.scp_role = uid, scu, scp
        user.append(role)
    if async_window is not None:
        window = AsynchronousOperationsWindowNegotiation()
        window.maximum_number_operations_invoked = async_window[0]
        window.maximum_number_operations_performed = async_window[1]
        user.append(window)
    if identity:
        who = UserIdentityNegotiation()
        who.user_identity_type = 2
        who.primary_field = b"user"
        who.secondary_field = b"secret"
        user.append(who)
    primitive.user_information = user
    rq = A_ASSOCIATE_RQ()
    rq.from_primitive(primitive)
    return bytes(rq.encode())


def decode_ac(data: bytes) -> A_ASSOCIATE_AC:
    ac = A_ASSOCIATE_AC()
    ac.decode(data)
    return ac


def sub_items(ac: A_ASSOCIATE_AC, item_type: int) -> list[Any]:
    return [item for item in ac.user_information.user_data if item.item_type == item_type]


# -- A-ASSOCIATE-RQ / AC ----------------------------------------------------------------------


def test_request_is_decoded_as_pynetdicom_encoded_it() -> None:
    data = request_bytes(
        [(1, CT, [JPEG_LOSSLESS, EXPLICIT]), (3, VERIFICATION, [IMPLICIT])],
        roles=[(CT, True, False)],
        async_window=(5, 3),
        identity=True,
    )
    request = pdu.parse_associate_rq(data[6:])
    assert (request.called_ae, request.calling_ae) == ("XDSI_SOURCE", "PARROT")
    assert request.protocol_version == 1
    assert request.application_context == pdu.DICOM_APPLICATION_CONTEXT
    assert request.contexts == (
        pdu.ProposedContext(1, CT, (JPEG_LOSSLESS, EXPLICIT)),
        pdu.ProposedContext(3, VERIFICATION, (IMPLICIT,)),
    )
    assert request.max_length == 16384
    assert request.implementation_class_uid == "1.2.826.0.1.3680043.9.3811.3.0.0"
    assert request.implementation_version_name == "PARROT_1"
    assert request.async_window == (5, 3)
    assert request.roles == (pdu.RoleSelection(CT, True, False),)


def test_acceptance_is_decoded_by_pynetdicom_with_a_result_per_context() -> None:
    data = request_bytes(
        [
            (1, CT, [JPEG_LOSSLESS, EXPLICIT]),  # the sender's first supported one
            (3, CT, ["1.2.3.4.5.6"]),  # no supported transfer syntax
            (5, "1.2.3.4", [EXPLICIT]),  # not a storage SOP Class
            (7, VERIFICATION, [IMPLICIT]),
        ]
    )
    request = pdu.parse_associate_rq(data[6:])
    assert negotiation.check(request, POLICY) is None
    acceptance = negotiation.accept(request, POLICY)
    ac = decode_ac(acceptance.accept)
    results = [(c.context_id, c.result_reason, c.transfer_syntax) for c in ac.presentation_context]
    assert results == [
        (1, pdu.ACCEPTANCE, JPEG_LOSSLESS),
        (3, pdu.TRANSFER_SYNTAXES_NOT_SUPPORTED, "1.2.3.4.5.6"),
        (5, pdu.ABSTRACT_SYNTAX_NOT_SUPPORTED, EXPLICIT),
        (7, pdu.ACCEPTANCE, IMPLICIT),
    ]
    assert sorted(acceptance.contexts) == [1, 7]
    assert acceptance.contexts[1].transfer_syntax == JPEG_LOSSLESS
    [length] = sub_items(ac, pdu.MAXIMUM_LENGTH)
    assert length.maximum_length_received == 65536
    [implementation] = sub_items(ac, pdu.IMPLEMENTATION_CLASS_UID)
    assert implementation.implementation_class_uid == IMPLEMENTATION_CLASS_UID
    [version] = sub_items(ac, pdu.IMPLEMENTATION_VERSION_NAME)
    assert version.implementation_version_name == IMPLEMENTATION_VERSION_NAME
    assert sub_items(ac, pdu.ASYNCHRONOUS_OPERATIONS_WINDOW) == []  # not proposed, not answered
    assert ac.called_ae_title == "XDSI_SOURCE" and ac.calling_ae_title == "PARROT"


def test_roles_and_asynchronous_window_are_answered() -> None:
    data = request_bytes(
        [(1, CT, [EXPLICIT]), (3, "1.2.840.10008.5.1.4.1.1.4", [EXPLICIT])],
        roles=[(CT, True, True), ("1.2.840.10008.5.1.4.1.1.4", False, True)],
        async_window=(8, 8),
    )
    ac = decode_ac(negotiation.accept(pdu.parse_associate_rq(data[6:]), POLICY).accept)
    results = {c.context_id: c.result_reason for c in ac.presentation_context}
    # MR proposed with the requestor as SCP only: nothing for a storage SCP to do there
    assert results == {1: pdu.ACCEPTANCE, 3: pdu.USER_REJECTION}
    [role] = sub_items(ac, pdu.ROLE_SELECTION)
    assert (role.sop_class_uid, role.scu_role, role.scp_role) == (CT, True, False)
    [window] = sub_items(ac, pdu.ASYNCHRONOUS_OPERATIONS_WINDOW)
    assert (
        window.maximum_number_operations_invoked,
        window.maximum_number_operations_performed,
    ) == (
        1,
        1,
    )


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b[:6] + b"\x00\x02" + b[8:], (1, 2, 2)),  # protocol version without bit 0
        (lambda b: b.replace(b"XDSI_SOURCE     ", b"SOMEONE_ELSE    ", 1), (1, 1, 7)),
        (lambda b: b.replace(b"1.2.840.10008.3.1.1.1", b"1.2.840.10008.3.1.1.9", 1), (1, 1, 2)),
    ],
)
def test_requests_are_rejected_with_the_table_9_21_values(
    mutate: Any, expected: tuple[int, int, int]
) -> None:
    data = mutate(request_bytes([(1, CT, [EXPLICIT])]))
    rejection = negotiation.check(pdu.parse_associate_rq(data[6:]), POLICY)
    assert rejection is not None
    assert (rejection.result, rejection.source, rejection.reason) == expected
    assert rejection.encode() == bytes((3, 0, 0, 0, 0, 4, 0, *expected))


def test_called_ae_title_is_not_checked_when_not_required() -> None:
    lenient = dataclasses.replace(POLICY, require_called_aet=False)
    data = request_bytes([(1, CT, [EXPLICIT])], called="ANYONE")
    assert negotiation.check(pdu.parse_associate_rq(data[6:]), lenient) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:40],  # shorter than the fixed fields
        lambda b: b[:-3],  # the last item overruns
        lambda b: b.replace(b"\x10\x00\x00\x15", b"\x10\x00\x00\xff", 1),  # app context overruns
    ],
)
def test_malformed_requests_raise_pdu_errors(damage: Any) -> None:
    data = damage(request_bytes([(1, CT, [EXPLICIT])]))
    with pytest.raises(pdu.PduError):
        pdu.parse_associate_rq(data[6:])


def test_duplicate_context_ids_and_missing_abstract_syntax_are_errors() -> None:
    with pytest.raises(pdu.PduError, match="twice"):
        pdu.parse_associate_rq(request_bytes([(1, CT, [EXPLICIT]), (1, CT, [IMPLICIT])])[6:])
    body = bytes(68) + pdu._item(0x10, b"1.2.840.10008.3.1.1.1")
    body += pdu._item(0x20, bytes((1, 0, 0, 0)) + pdu._item(0x40, EXPLICIT.encode()))
    with pytest.raises(pdu.PduError, match="abstract syntax"):
        pdu.parse_associate_rq(body)


def test_even_context_id_is_refused_without_reason() -> None:
    body = b"\x00\x01\x00\x00" + b"XDSI_SOURCE     " + b"PARROT          " + bytes(32)
    body += pdu._item(0x10, pdu.DICOM_APPLICATION_CONTEXT.encode())
    value = bytes((2, 0, 0, 0)) + pdu._item(0x30, CT.encode()) + pdu._item(0x40, EXPLICIT.encode())
    body += pdu._item(0x20, value)
    acceptance = negotiation.accept(pdu.parse_associate_rq(body), POLICY)
    [context] = decode_ac(acceptance.accept).presentation_context
    assert (context.context_id, context.result_reason) == (2, pdu.NO_REASON)
    assert acceptance.contexts == {}


# -- P-DATA-TF and the PDU reader --------------------------------------------------------------


class Chunks(io.RawIOBase):
    """A stream that returns at most ``size`` bytes per read (TCP segments)."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size, self.pos = data, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(self.size, len(buffer), len(self.data) - self.pos)
        buffer[:count] = self.data[self.pos : self.pos + count]
        self.pos += count
        return count


def test_reader_reassembles_pdus_from_one_byte_reads_and_grows_its_buffer() -> None:
    small = pdu.encode_release_rp()
    big = pdu.encode_command(1, b"x" * 70000, 0)
    reader = pdu.PduReader(Chunks(small + big, 1), max_pdata=0)
    kind, body = reader.read()
    assert (kind, bytes(body)) == (pdu.A_RELEASE_RP, bytes(4))
    kept = body
    kind, body = reader.read()
    assert kind == pdu.P_DATA_TF and len(body) == 70006
    assert bytes(kept) == bytes(4)  # an earlier view stays valid after the buffer grew
    with pytest.raises(pdu.PeerClosed) as closed:
        reader.read()
    assert not closed.value.partial


def test_reader_refuses_an_oversized_pdu_before_reading_it() -> None:
    header = pdu.PDU_HEADER.pack(pdu.P_DATA_TF, 0, 100_000)
    reader = pdu.PduReader(Chunks(header, 6), max_pdata=65536)
    with pytest.raises(pdu.PduError, match="exceeds"):
        reader.read()
    reader = pdu.PduReader(Chunks(header + b"x" * 10, 6), max_pdata=0)
    with pytest.raises(pdu.PeerClosed) as closed:
        reader.read()
    assert closed.value.partial


def test_commands_are_split_to_the_peers_maximum_length_and_read_back_by_pynetdicom() -> None:
    command = dimse.encode_response(
        dimse.C_STORE_RSP,
        message_id=7,
        sop_class_uid=CT,
        status=0xC002,
        sop_instance_uid="1.2.3.4",
        error_comment="SOP Instance UID differs\\from the request's",
    )
    data = pdu.encode_command(3, command, 40)
    fragments = []
    offset = 0
    while offset < len(data):
        length = struct.unpack(">I", data[offset + 2 : offset + 6])[0]
        assert length <= 40
        p_data = P_DATA_TF()
        p_data.decode(data[offset : offset + 6 + length])
        [(context_id, payload)] = [
            (item.presentation_context_id, item.presentation_data_value)
            for item in p_data.presentation_data_value_items
        ]
        assert context_id == 3
        fragments.append(payload)
        offset += 6 + length
    assert all(f[0] & 0x01 for f in fragments)  # command fragments
    assert [f[0] & 0x02 for f in fragments] == [0] * (len(fragments) - 1) + [2]  # last one last
    decoded = read_dataset(io.BytesIO(b"".join(f[1:] for f in fragments)), True, True)
    assert decoded.CommandField == 0x8001 and decoded.MessageIDBeingRespondedTo == 7
    assert decoded.Status == 0xC002 and decoded.AffectedSOPInstanceUID == "1.2.3.4"
    assert decoded.ErrorComment == "SOP Instance UID differs/from the request's"
    assert decoded.CommandGroupLength == len(command) - 12
    assert decoded.CommandDataSetType == 0x0101


def test_pdvs_are_checked_against_their_pdu() -> None:
    good = pdu.PDV_HEADER.pack(4, 1, 3) + b"ab"
    assert [(c, h, bytes(f)) for c, h, f in pdu.pdvs(memoryview(good * 2))] == [(1, 3, b"ab")] * 2
    for bad in (b"", good[:5], pdu.PDV_HEADER.pack(1, 1, 3), pdu.PDV_HEADER.pack(9, 1, 3) + b"ab"):
        with pytest.raises(pdu.PduError):
            list(pdu.pdvs(memoryview(bad)))


# -- DIMSE command sets ------------------------------------------------------------------------


def c_store_rq(**overrides: Any) -> bytes:
    ds = Dataset()
    ds.AffectedSOPClassUID = CT
    ds.CommandField = 0x0001
    ds.MessageID = 12
    ds.Priority = 0
    ds.CommandDataSetType = 0x0000
    ds.AffectedSOPInstanceUID = "1.2.3.4.5"
    ds.MoveOriginatorApplicationEntityTitle = "MOVER"
    for key, value in overrides.items():
        setattr(ds, key, value)
    return bytes(encode(ds, True, True))


def test_c_store_request_encoded_by_pydicom_is_decoded() -> None:
    command = dimse.decode_command(c_store_rq())
    assert command.command_field == dimse.C_STORE_RQ
    assert command.message_id == 12
    assert command.has_data_set
    assert command.uid(dimse.AFFECTED_SOP_CLASS_UID) == CT
    assert command.uid(dimse.AFFECTED_SOP_INSTANCE_UID) == "1.2.3.4.5"  # padding removed


@pytest.mark.parametrize(
    "data",
    [
        c_store_rq()[:-3],  # truncated value
        c_store_rq()[:5],  # truncated header
        struct.pack("<HHI", 0x0008, 0x0016, 0),  # not group 0000
    ],
)
def test_malformed_command_sets_raise(data: bytes) -> None:
    with pytest.raises(dimse.DimseError):
        dimse.decode_command(data)


def test_command_without_field_or_with_a_bad_us_raises() -> None:
    ds = Dataset()
    ds.MessageID = 1
    with pytest.raises(dimse.DimseError, match="Command Field"):
        _ = dimse.decode_command(bytes(encode(ds, True, True))).command_field
    broken = dimse.Command({0x0100: b"\x01"})
    with pytest.raises(dimse.DimseError, match="not US"):
        _ = broken.command_field


class RecordingSocket(socket.socket):
    """A real TCP socket that remembers the options set on it."""

    options: list[tuple[int, int, int]]

    def setsockopt(self, level: int, option: int, value: Any, *args: Any) -> None:
        self.options.append((level, option, value))
        super().setsockopt(level, option, value, *args)


class Silent:
    """A service that admits everyone and is never asked to store."""

    def admit(self, association: Any) -> None:
        return None

    def receiver(self, association: Any, context: Any, command: Any) -> Any:
        raise AssertionError("no C-STORE was sent")

    def ended(self, association: Any) -> None:
        return None


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux-only")
def test_every_pdu_read_asks_for_an_immediate_ack() -> None:
    """A requestor with Nagle's algorithm on waits for the ACK of its command PDU before sending
    the data PDU; each read therefore renews TCP_QUICKACK (Linux resets it on its own)."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname()[:2])
    accepted, remote = listener.accept()
    sock = RecordingSocket(fileno=accepted.detach())
    sock.options = []
    association = Association(
        sock, remote, policy=POLICY, service=Silent(), timeouts=Timeouts(artim=2.0, idle=2.0)
    )
    try:
        client.sendall(request_bytes([(1, VERIFICATION, ["1.2.840.10008.1.2"])]))
        client.sendall(bytes.fromhex("05000000000400000000"))  # A-RELEASE-RQ
        association.run()
        quick = [o for o in sock.options if o[:2] == (socket.IPPROTO_TCP, socket.TCP_QUICKACK)]
        assert len(quick) >= 2  # the A-ASSOCIATE-RQ and the A-RELEASE-RQ
        assert association.outcome == "released"
    finally:
        client.close()
        listener.close()
