"""DIMSE command sets (DICOM PS3.7 §6.3, Annex E): decoding requests, encoding responses.

A command set is a group 0000 data set, always Implicit VR Little Endian whatever the
presentation context's transfer syntax (PS3.7 §6.3.1). Only the elements the C-STORE and C-ECHO
SCP reads are interpreted; each is checked for the length its VR implies.

Standard: PS3.7 §9.3.1 (C-STORE-RQ/RSP, Tables 9.3-1 and 9.3-2), §9.3.5 (C-ECHO-RQ/RSP,
Tables 9.3-12 and 9.3-13), Annex E (command dictionary), Annex C (status classes).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Command Field values (PS3.7 Annex E.1)
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
C_CANCEL_RQ = 0x0FFF
RESPONSE_BIT = 0x8000
NO_DATA_SET = 0x0101  # Command Data Set Type: no data set follows

# Command elements (group 0000, PS3.7 Table E.1-1) as 32-bit tags
COMMAND_GROUP_LENGTH = 0x00000000
AFFECTED_SOP_CLASS_UID = 0x00000002
COMMAND_FIELD = 0x00000100
MESSAGE_ID = 0x00000110
MESSAGE_ID_BEING_RESPONDED_TO = 0x00000120
PRIORITY = 0x00000700
COMMAND_DATA_SET_TYPE = 0x00000800
STATUS = 0x00000900
ERROR_COMMENT = 0x00000902
AFFECTED_SOP_INSTANCE_UID = 0x00001000

SUCCESS = 0x0000
UNRECOGNIZED_OPERATION = 0x0211  # Failure "Unrecognized Operation" (PS3.7 Annex C.5)
MAX_COMMAND_BYTES = 64 * 1024  # a command set is a few hundred bytes; this bounds a bad peer

_ELEMENT = struct.Struct("<HHI")
_US = struct.Struct("<H")
_UL = struct.Struct("<I")


class DimseError(ValueError):
    """A command set that cannot be decoded, or lacks an element its command requires."""


@dataclass(frozen=True, slots=True)
class Command:
    """A decoded command set: raw values by tag (PS3.7 §6.3)."""

    elements: dict[int, bytes]

    def us(self, tag: int) -> int | None:
        """An US element's value, or None when absent. Raises: DimseError (not 2 bytes)."""
        value = self.elements.get(tag)
        if value is None:
            return None
        if len(value) != 2:
            raise DimseError(f"command element ({tag >> 16:04X},{tag & 0xFFFF:04X}) is not US")
        return int(_US.unpack(value)[0])

    def uid(self, tag: int) -> str:
        """A UI element's value ("" when absent), without its padding."""
        return self.elements.get(tag, b"").rstrip(b"\0 ").decode("ascii", "replace")

    @property
    def command_field(self) -> int:
        """(0000,0100) Command Field. Raises: DimseError when absent."""
        field = self.us(COMMAND_FIELD)
        if field is None:
            raise DimseError("command set without a Command Field (0000,0100)")
        return field

    @property
    def message_id(self) -> int:
        """(0000,0110) Message ID (0 when absent: the response then names message 0)."""
        return self.us(MESSAGE_ID) or 0

    @property
    def has_data_set(self) -> bool:
        """Whether a data set follows (PS3.7 §E.1: any value but 0101H)."""
        kind = self.us(COMMAND_DATA_SET_TYPE)
        if kind is None:
            raise DimseError("command set without a Command Data Set Type (0000,0800)")
        return kind != NO_DATA_SET


def decode_command(data: bytes) -> Command:
    """Decode an Implicit VR Little Endian command set. Raises: DimseError."""
    elements: dict[int, bytes] = {}
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < _ELEMENT.size:
            raise DimseError("command set ends inside an element header")
        group, element, length = _ELEMENT.unpack_from(data, offset)
        offset += _ELEMENT.size
        if group != 0x0000:
            raise DimseError(f"command set holds an element of group {group:04X}")
        if length > end - offset:
            raise DimseError(f"command element (0000,{element:04X}) overruns the command set")
        elements[element] = data[offset : offset + length]
        offset += length
    return Command(elements)


def _element(tag: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0" if tag != ERROR_COMMENT else b" "  # UI pads with NUL, LO with space
    return _ELEMENT.pack(tag >> 16, tag & 0xFFFF, len(value)) + value


def encode_response(
    command_field: int,
    *,
    message_id: int,
    sop_class_uid: str,
    status: int,
    sop_instance_uid: str | None = None,
    error_comment: str | None = None,
) -> bytes:
    """A response command set with no data set (C-STORE-RSP, C-ECHO-RSP and failures of
    unrecognized operations), elements in tag order, Command Group Length first."""
    parts = []
    if sop_class_uid:
        parts.append(_element(AFFECTED_SOP_CLASS_UID, sop_class_uid.encode("ascii")))
    parts.append(_element(COMMAND_FIELD, _US.pack(command_field)))
    parts.append(_element(MESSAGE_ID_BEING_RESPONDED_TO, _US.pack(message_id & 0xFFFF)))
    parts.append(_element(COMMAND_DATA_SET_TYPE, _US.pack(NO_DATA_SET)))
    parts.append(_element(STATUS, _US.pack(status)))
    if error_comment:  # LO: at most 64 characters of the default repertoire
        text = error_comment.encode("ascii", "replace")[:64].replace(b"\\", b"/")
        parts.append(_element(ERROR_COMMENT, text))
    if sop_instance_uid:
        parts.append(_element(AFFECTED_SOP_INSTANCE_UID, sop_instance_uid.encode("ascii")))
    body = b"".join(parts)
    return _element(COMMAND_GROUP_LENGTH, _UL.pack(len(body))) + body
