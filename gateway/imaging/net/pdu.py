"""Upper-layer PDUs (DICOM PS3.8 §9.3): read from a stream, the A-ASSOCIATE-RQ decoded, the
acceptor's PDUs encoded.

Every length read from the wire is checked against what contains it before it is used, and a
PDU longer than the limit the caller gives is refused before its body is read, so a peer cannot
make the acceptor allocate more than the Maximum Length it announced (PS3.8 Annex D.1). Fields
the standard marks "shall not be tested" (reserved bytes, the AE titles echoed in the
A-ASSOCIATE-AC) are not; user-information sub-items this acceptor does not use (extended
negotiation, user identity) are skipped, which PS3.7 Annex D.3.3 allows an acceptor that does
not support them.

Standard: DICOM PS3.8 §9.3.1-§9.3.8 (PDU structure), Tables 9-11 to 9-26; PS3.7 Annex D.3.3
(user information sub-items).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

# PDU types (PS3.8 §9.3.1)
A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
A_ABORT = 0x07
PDU_NAMES = {
    A_ASSOCIATE_RQ: "A-ASSOCIATE-RQ",
    A_ASSOCIATE_AC: "A-ASSOCIATE-AC",
    A_ASSOCIATE_RJ: "A-ASSOCIATE-RJ",
    P_DATA_TF: "P-DATA-TF",
    A_RELEASE_RQ: "A-RELEASE-RQ",
    A_RELEASE_RP: "A-RELEASE-RP",
    A_ABORT: "A-ABORT",
}

# Item types (PS3.8 §9.3.2.1-§9.3.3.3, PS3.7 Annex D.3.3)
APPLICATION_CONTEXT_ITEM = 0x10
PRESENTATION_CONTEXT_RQ = 0x20
PRESENTATION_CONTEXT_AC = 0x21
ABSTRACT_SYNTAX = 0x30
TRANSFER_SYNTAX = 0x40
USER_INFORMATION = 0x50
MAXIMUM_LENGTH = 0x51
IMPLEMENTATION_CLASS_UID = 0x52
ASYNCHRONOUS_OPERATIONS_WINDOW = 0x53
ROLE_SELECTION = 0x54
IMPLEMENTATION_VERSION_NAME = 0x55

DICOM_APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"  # PS3.7 Annex A.2.1

# A-ABORT source and reason (PS3.8 Table 9-26)
SOURCE_SERVICE_USER = 0x00
SOURCE_SERVICE_PROVIDER = 0x02
REASON_NOT_SPECIFIED = 0x00
UNRECOGNIZED_PDU = 0x01
UNEXPECTED_PDU = 0x02
UNRECOGNIZED_PDU_PARAMETER = 0x04
UNEXPECTED_PDU_PARAMETER = 0x05
INVALID_PDU_PARAMETER_VALUE = 0x06

# A-ASSOCIATE-RJ result, source and reason (PS3.8 Table 9-21)
REJECTED_PERMANENT = 1
REJECTED_TRANSIENT = 2
RJ_SERVICE_USER = 1  # reasons: 1 no-reason-given, 2 application-context-name-not-supported,
NO_REASON_GIVEN = 1  #   3 calling-AE-title-not-recognized, 7 called-AE-title-not-recognized
APPLICATION_CONTEXT_NOT_SUPPORTED = 2
CALLED_AE_TITLE_NOT_RECOGNIZED = 7
RJ_SERVICE_PROVIDER_ACSE = 2  # reasons: 1 no-reason-given, 2 protocol-version-not-supported
PROTOCOL_VERSION_NOT_SUPPORTED = 2
RJ_SERVICE_PROVIDER_PRESENTATION = 3  # reasons: 1 temporary-congestion, 2 local-limit-exceeded
LOCAL_LIMIT_EXCEEDED = 2

# Presentation context results (PS3.8 Table 9-18)
ACCEPTANCE = 0
USER_REJECTION = 1
NO_REASON = 2
ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
TRANSFER_SYNTAXES_NOT_SUPPORTED = 4

PDU_HEADER = struct.Struct(">BBI")  # type, reserved, length
ITEM_HEADER = struct.Struct(">BBH")  # type, reserved, length
PDV_HEADER = struct.Struct(">IBB")  # length, presentation context ID, message control header
RQ_FIXED_LENGTH = 68  # protocol version .. third reserved field (PS3.8 Table 9-11)
MAX_ASSOCIATE_RQ = 1024 * 1024  # a generous bound for an A-ASSOCIATE-RQ (hundreds of contexts)


class PduError(Exception):
    """A PDU that breaks PS3.8 §9.3; ``reason`` is the A-ABORT reason to answer with."""

    def __init__(self, message: str, reason: int = INVALID_PDU_PARAMETER_VALUE) -> None:
        super().__init__(message)
        self.reason = reason


class PeerClosed(Exception):
    """The peer closed the connection (between PDUs, or mid-PDU when ``partial``)."""

    def __init__(self, partial: bool) -> None:
        super().__init__("connection closed by the peer" + (" mid-PDU" if partial else ""))
        self.partial = partial


class Reader(Protocol):
    """A binary stream such as ``socket.makefile("rb")``."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


@dataclass(frozen=True, slots=True)
class ProposedContext:
    """A presentation context of an A-ASSOCIATE-RQ (PS3.8 §9.3.2.2)."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RoleSelection:
    """An SCP/SCU Role Selection sub-item (PS3.7 Annex D.3.3.4)."""

    sop_class_uid: str
    scu: bool
    scp: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AssociateRequest:
    """A decoded A-ASSOCIATE-RQ (PS3.8 §9.3.2). AE titles without their padding spaces."""

    protocol_version: int
    called_ae: str
    calling_ae: str
    called_ae_field: bytes  # the 16 bytes, echoed unchanged in the A-ASSOCIATE-AC
    calling_ae_field: bytes
    application_context: str
    contexts: tuple[ProposedContext, ...]
    max_length: int = 0  # the peer's Maximum Length (PS3.8 Annex D.1); 0 = no limit
    implementation_class_uid: str = ""
    implementation_version_name: str = ""
    async_window: tuple[int, int] | None = None  # (invoked, performed), PS3.7 D.3.3.3
    roles: tuple[RoleSelection, ...] = ()


@dataclass(slots=True)
class UserInformation:
    """What the User Information item of an A-ASSOCIATE-RQ says (PS3.8 §9.3.2.3)."""

    max_length: int = 0
    implementation_class_uid: str = ""
    implementation_version_name: str = ""
    async_window: tuple[int, int] | None = None
    roles: tuple[RoleSelection, ...] = ()


# -- reading --------------------------------------------------------------------------------------


def read_exactly(stream: Reader, view: memoryview) -> None:
    """Fill ``view`` from ``stream``. Raises PeerClosed (``partial``: some bytes had come)."""
    got = 0
    total = len(view)
    while got < total:
        count = stream.readinto(view[got:])
        if not count:
            raise PeerClosed(partial=got > 0)
        got += count


class PduReader:
    """Reads PDUs from a stream into a buffer of its own, grown when a PDU needs it."""

    def __init__(self, stream: Reader, *, max_pdata: int) -> None:
        self.stream = stream
        self.max_pdata = max_pdata
        self._header = bytearray(PDU_HEADER.size)
        self._buffer = bytearray(0)

    def read(self) -> tuple[int, memoryview]:
        """One PDU: (type, body). The body is a view into the buffer, valid until the next call.

        A P-DATA-TF longer than ``max_pdata`` (the Maximum Length this acceptor announced; 0 =
        none) and any other PDU longer than :data:`MAX_ASSOCIATE_RQ` are refused before their
        body is read. Raises: PduError, PeerClosed, OSError.
        """
        read_exactly(self.stream, memoryview(self._header))
        pdu_type, _reserved, length = PDU_HEADER.unpack(self._header)
        limit = self.max_pdata if pdu_type == P_DATA_TF and self.max_pdata else MAX_ASSOCIATE_RQ
        if length > limit:
            name = PDU_NAMES.get(pdu_type, f"PDU type 0x{pdu_type:02X}")
            raise PduError(f"{name} of {length} bytes exceeds the limit of {limit}")
        if len(self._buffer) < length:  # a new buffer: views of the old one may still be held
            self._buffer = bytearray(max(length, 2 * len(self._buffer)))
        view = memoryview(self._buffer)[:length]
        try:
            read_exactly(self.stream, view)
        except PeerClosed:
            raise PeerClosed(partial=True) from None
        return pdu_type, view


def pdvs(body: memoryview) -> Iterator[tuple[int, int, memoryview]]:
    """The PDVs of a P-DATA-TF body: (context ID, message control header, fragment).

    Standard: PS3.8 §9.3.5 and Annex E.2. Raises: PduError (a PDV that overruns the PDU).
    """
    offset, end = 0, len(body)
    if end == 0:
        raise PduError("P-DATA-TF without a PDV")
    while offset < end:
        if end - offset < PDV_HEADER.size:
            raise PduError("P-DATA-TF ends inside a PDV header")
        length, context_id, control = PDV_HEADER.unpack_from(body, offset)
        if length < 2 or offset + 4 + length > end:
            raise PduError(f"PDV length {length} does not fit the P-DATA-TF")
        yield context_id, control, body[offset + 6 : offset + 4 + length]
        offset += 4 + length


def items(data: bytes, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """The (type, value) items of a variable field. Raises: PduError (an item overruns it)."""
    end = len(data)
    while offset < end:
        if end - offset < ITEM_HEADER.size:
            raise PduError("item header truncated")
        item_type, _reserved, length = ITEM_HEADER.unpack_from(data, offset)
        start = offset + ITEM_HEADER.size
        if start + length > end:
            raise PduError(f"item 0x{item_type:02X} of {length} bytes overruns its field")
        yield item_type, data[start : start + length]
        offset = start + length


def _uid(value: bytes) -> str:
    # UIDs in items are not padded (PS3.8 §9.3.2.2.1), but some senders pad with NUL or space.
    return value.rstrip(b"\0 ").decode("ascii", "replace")


def _ae(field: bytes) -> str:
    return field.decode("ascii", "replace").strip(" \0")


def parse_associate_rq(body: bytes) -> AssociateRequest:
    """Decode an A-ASSOCIATE-RQ body (PS3.8 §9.3.2, Table 9-11). Raises: PduError."""
    if len(body) < RQ_FIXED_LENGTH:
        raise PduError("A-ASSOCIATE-RQ shorter than its fixed fields")
    (version,) = struct.unpack_from(">H", body, 0)
    called, calling = body[4:20], body[20:36]
    application_context: str | None = None
    contexts: list[ProposedContext] = []
    user = UserInformation()
    for item_type, value in items(body, RQ_FIXED_LENGTH):
        if item_type == APPLICATION_CONTEXT_ITEM:
            application_context = _uid(value)
        elif item_type == PRESENTATION_CONTEXT_RQ:
            contexts.append(_proposed_context(value))
        elif item_type == USER_INFORMATION:
            user = _user_information(value)
        # other item types are not defined for an A-ASSOCIATE-RQ: skipped
    if application_context is None:
        raise PduError("A-ASSOCIATE-RQ without an Application Context item")
    ids = [context.context_id for context in contexts]
    if len(set(ids)) != len(ids):
        raise PduError("A-ASSOCIATE-RQ proposes a presentation context ID twice")
    return AssociateRequest(
        protocol_version=version,
        called_ae=_ae(called),
        calling_ae=_ae(calling),
        called_ae_field=bytes(called),
        calling_ae_field=bytes(calling),
        application_context=application_context,
        contexts=tuple(contexts),
        max_length=user.max_length,
        implementation_class_uid=user.implementation_class_uid,
        implementation_version_name=user.implementation_version_name,
        async_window=user.async_window,
        roles=user.roles,
    )


def _proposed_context(value: bytes) -> ProposedContext:
    """A Presentation Context item (RQ), PS3.8 §9.3.2.2 Table 9-13."""
    if len(value) < 4:
        raise PduError("presentation context item shorter than its fixed fields")
    abstract: str | None = None
    syntaxes: list[str] = []
    for sub_type, sub in items(value, 4):
        if sub_type == ABSTRACT_SYNTAX:
            if abstract is not None:
                raise PduError("presentation context with two abstract syntaxes")
            abstract = _uid(sub)
        elif sub_type == TRANSFER_SYNTAX:
            syntaxes.append(_uid(sub))
    if abstract is None:
        raise PduError(f"presentation context {value[0]} without an abstract syntax")
    return ProposedContext(value[0], abstract, tuple(syntaxes))


def _user_information(value: bytes) -> UserInformation:
    """The User Information sub-items this acceptor uses (PS3.8 Annex D.1, PS3.7 D.3.3)."""
    user = UserInformation()
    roles: list[RoleSelection] = []
    for sub_type, sub in items(value):
        if sub_type == MAXIMUM_LENGTH:
            if len(sub) != 4:
                raise PduError("Maximum Length sub-item is not 4 bytes long")
            user.max_length = struct.unpack(">I", sub)[0]
        elif sub_type == IMPLEMENTATION_CLASS_UID:
            user.implementation_class_uid = _uid(sub)
        elif sub_type == IMPLEMENTATION_VERSION_NAME:
            user.implementation_version_name = _ae(sub)
        elif sub_type == ASYNCHRONOUS_OPERATIONS_WINDOW:
            if len(sub) != 4:
                raise PduError("Asynchronous Operations Window sub-item is not 4 bytes long")
            invoked, performed = struct.unpack(">HH", sub)
            user.async_window = (invoked, performed)
        elif sub_type == ROLE_SELECTION:
            roles.append(_role(sub))
    user.roles = tuple(roles)
    return user


def _role(sub: bytes) -> RoleSelection:
    """An SCP/SCU Role Selection sub-item (PS3.7 Table D.3-9)."""
    if len(sub) < 2:
        raise PduError("role selection sub-item truncated")
    (uid_length,) = struct.unpack_from(">H", sub, 0)
    if len(sub) != 2 + uid_length + 2:
        raise PduError("role selection sub-item length does not match its UID length")
    return RoleSelection(_uid(sub[2 : 2 + uid_length]), bool(sub[-2]), bool(sub[-1]))


# -- encoding -------------------------------------------------------------------------------------


def _item(item_type: int, value: bytes) -> bytes:
    return ITEM_HEADER.pack(item_type, 0, len(value)) + value


def _pdu(pdu_type: int, body: bytes) -> bytes:
    return PDU_HEADER.pack(pdu_type, 0, len(body)) + body


@dataclass(frozen=True, slots=True)
class ContextResult:
    """One Presentation Context item of an A-ASSOCIATE-AC (PS3.8 §9.3.3.2)."""

    context_id: int
    result: int
    transfer_syntax: str  # not significant unless accepted, but always present (Table 9-18)


def encode_associate_ac(
    request: AssociateRequest,
    contexts: Sequence[ContextResult],
    *,
    max_length: int,
    implementation_class_uid: str,
    implementation_version_name: str,
    async_window: tuple[int, int] | None,
    roles: Sequence[RoleSelection],
) -> bytes:
    """An A-ASSOCIATE-AC answering ``request`` (PS3.8 §9.3.3, Table 9-17)."""
    user = [
        _item(MAXIMUM_LENGTH, struct.pack(">I", max_length)),
        _item(IMPLEMENTATION_CLASS_UID, implementation_class_uid.encode("ascii")),
    ]
    if async_window is not None:
        user.append(_item(ASYNCHRONOUS_OPERATIONS_WINDOW, struct.pack(">HH", *async_window)))
    for role in roles:
        uid = role.sop_class_uid.encode("ascii")
        value = struct.pack(">H", len(uid)) + uid + bytes((role.scu, role.scp))
        user.append(_item(ROLE_SELECTION, value))
    user.append(_item(IMPLEMENTATION_VERSION_NAME, implementation_version_name.encode("ascii")))
    body = [
        struct.pack(">HH", 0x0001, 0),
        request.called_ae_field,
        request.calling_ae_field,
        bytes(32),
        _item(APPLICATION_CONTEXT_ITEM, DICOM_APPLICATION_CONTEXT.encode("ascii")),
    ]
    for context in contexts:
        syntax = _item(TRANSFER_SYNTAX, context.transfer_syntax.encode("ascii"))
        body.append(
            _item(
                PRESENTATION_CONTEXT_AC, bytes((context.context_id, 0, context.result, 0)) + syntax
            )
        )
    body.append(_item(USER_INFORMATION, b"".join(user)))
    return _pdu(A_ASSOCIATE_AC, b"".join(body))


def encode_associate_rj(result: int, source: int, reason: int) -> bytes:
    """An A-ASSOCIATE-RJ (PS3.8 §9.3.4, Table 9-21)."""
    return _pdu(A_ASSOCIATE_RJ, bytes((0, result, source, reason)))


def encode_release_rp() -> bytes:
    """An A-RELEASE-RP (PS3.8 §9.3.7)."""
    return _pdu(A_RELEASE_RP, bytes(4))


def encode_abort(source: int, reason: int) -> bytes:
    """An A-ABORT (PS3.8 §9.3.8, Table 9-26)."""
    return _pdu(A_ABORT, bytes((0, 0, source, reason)))


def encode_command(context_id: int, command: bytes, max_length: int) -> bytes:
    """P-DATA-TF PDUs carrying a whole command set, split into fragments no PDU of which
    exceeds the peer's Maximum Length (0 = no limit). Standard: PS3.8 §9.3.5, Annex E.2."""
    room = max_length - PDV_HEADER.size if max_length else len(command)
    room = max(room, 1)
    out = []
    for start in range(0, len(command), room):
        fragment = command[start : start + room]
        last = 0x02 if start + room >= len(command) else 0x00
        pdv = PDV_HEADER.pack(len(fragment) + 2, context_id, 0x01 | last) + fragment
        out.append(_pdu(P_DATA_TF, pdv))
    return b"".join(out)
