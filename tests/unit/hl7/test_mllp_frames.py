"""MLLP framing without sockets (HL7 v2.5 Appendix C §C.4.3: SB 0x0B, EB 0x1C, CR 0x0D)."""

from __future__ import annotations

import logging

import pytest

from gateway.hl7.mllp import OVERSIZE_HEAD_BYTES, Frame, FrameReader, frame, iter_frames

MSG1 = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||X\r"
MSG2 = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A04|2|P|2.5\rPID|1||Y\r"


def payloads(frames: list[Frame]) -> list[bytes]:
    return [f.payload for f in frames]


def test_frame_wraps_message() -> None:
    assert frame(b"abc") == b"\x0babc\x1c\r"


def test_one_frame() -> None:
    reader = FrameReader()
    assert reader.feed(frame(MSG1)) == [Frame(payload=MSG1, size=len(MSG1))]
    assert not reader.in_frame and reader.ignored_bytes == 0


def test_byte_by_byte() -> None:
    reader = FrameReader()
    got: list[Frame] = []
    for byte in frame(MSG1) + frame(MSG2):
        got += reader.feed(bytes([byte]))
    assert payloads(got) == [MSG1, MSG2]
    assert reader.ignored_bytes == 0  # the CR after EB, arriving alone, is not junk


@pytest.mark.parametrize("cut", [1, 5, len(MSG1), len(MSG1) + 1, len(MSG1) + 2])
def test_split_anywhere(cut: int) -> None:
    data = frame(MSG1) + frame(MSG2)
    reader = FrameReader()
    assert payloads(reader.feed(data[:cut]) + reader.feed(data[cut:])) == [MSG1, MSG2]
    assert reader.ignored_bytes == 0


def test_coalesced_frames() -> None:
    reader = FrameReader()
    assert payloads(reader.feed(frame(MSG1) + frame(MSG2) + frame(MSG1))) == [MSG1, MSG2, MSG1]


def test_bytes_outside_frames_ignored(caplog: pytest.LogCaptureFixture) -> None:
    reader = FrameReader(peer="test-peer")
    with caplog.at_level(logging.WARNING, logger="gateway.hl7.mllp"):
        got = reader.feed(b"noise" + frame(MSG1) + b"\r\n" + b"more noise" + frame(MSG2) + b"tail")
    assert payloads(got) == [MSG1, MSG2]
    assert reader.ignored_bytes == len(b"noise") + len(b"\r\nmore noise") + len(b"tail")
    assert "test-peer" in caplog.text and "outside a frame" in caplog.text


def test_end_block_without_cr_still_ends_frame() -> None:
    reader = FrameReader()
    assert payloads(reader.feed(b"\x0b" + MSG1 + b"\x1c")) == [MSG1]  # answered without the CR
    assert payloads(reader.feed(b"\x0b" + MSG2 + b"\x1c\x0b" + MSG1 + b"\x1c\r")) == [MSG2, MSG1]


def test_new_start_block_abandons_unfinished_frame() -> None:
    reader = FrameReader()
    got = reader.feed(b"\x0bMSH|truncated" + frame(MSG1))
    assert payloads(got) == [MSG1]
    got = reader.feed(b"\x0bMSH|trunc")
    assert got == [] and reader.in_frame
    assert payloads(reader.feed(frame(MSG2))) == [MSG2]


def test_oversize_frame_keeps_head_and_reader_recovers() -> None:
    big = MSG1 + b"OBX|" + b"x" * 50_000 + b"\r"
    reader = FrameReader(max_message_bytes=10_000)
    data = frame(big) + frame(MSG2)
    got: list[Frame] = []
    for start in range(0, len(data), 4096):
        got += reader.feed(data[start : start + 4096])
    assert len(got) == 2
    assert got[0].oversize and got[0].size == len(big)
    assert got[0].payload == big[:OVERSIZE_HEAD_BYTES]
    assert got[1] == Frame(payload=MSG2, size=len(MSG2))


def test_oversize_with_limit_smaller_than_head() -> None:
    reader = FrameReader(max_message_bytes=10)
    (got,) = reader.feed(frame(MSG1))
    assert got.oversize and got.size == len(MSG1)
    assert got.payload == MSG1  # still the head, for the MSH of the answer


def test_frame_at_the_limit_is_not_oversize() -> None:
    (got,) = FrameReader(max_message_bytes=len(MSG1)).feed(frame(MSG1))
    assert not got.oversize and got.payload == MSG1


def test_iter_frames() -> None:
    assert list(iter_frames(frame(MSG1) + b"\r\n" + frame(MSG2))) == [MSG1, MSG2]
