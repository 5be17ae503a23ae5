"""The HTTP server's request-body reading (gateway.soap.server): chunks read in bounded pieces,
small unread rests discarded, large ones left unread. In-memory streams, no socket."""

from __future__ import annotations

import io

import pytest
from cheroot.server import KnownLengthRFile

from gateway.soap.server import CHUNK_PIECE, _ChunkedBody, _discard


class Tracked(io.BufferedReader):
    """A buffered stream over bytes that records the largest single read asked of it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))  # type: ignore[arg-type]
        self.largest = 0

    def read(self, size: int | None = -1) -> bytes:
        self.largest = max(self.largest, size if size is not None and size >= 0 else 1 << 62)
        return super().read(size)


def coded(*chunks: bytes, extension: bytes = b"") -> bytes:
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(c), extension, c) for c in chunks)
    return out + b"0\r\n\r\n"


def test_chunks_are_decoded_with_extensions() -> None:
    body = _ChunkedBody(Tracked(coded(b"hello ", b"chunked", b" world", extension=b";x=1")), 0)
    assert body.read(1000) == b"hello chunked world"
    assert body.read(10) == b""
    assert body.closed


def test_a_huge_announced_chunk_is_read_in_pieces() -> None:
    # The client announces a 2 GiB chunk and sends 1 MiB of it: never one large read.
    stream = Tracked(b"80000000\r\n" + bytes(1 << 20))
    body = _ChunkedBody(stream, 0)
    assert len(body.read(64 * 1024)) == 64 * 1024
    assert stream.largest <= CHUNK_PIECE
    with pytest.raises(ValueError, match="closed inside a chunk"):
        while body.read(1 << 20):
            pass
    assert stream.largest <= CHUNK_PIECE


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"zz\r\nabc\r\n0\r\n\r\n", "transfer size"),
        (b"-1\r\n", "transfer size"),
        (b"f" * 5000 + b"\r\n", "chunk-size line"),
        (b"3\r\nabcXX0\r\n\r\n", "no CRLF after a chunk"),
    ],
)
def test_bad_chunked_coding_is_an_error(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _ChunkedBody(Tracked(raw), 0).read(100)


def test_discard_reads_a_small_rest_to_its_end_only() -> None:
    small = KnownLengthRFile(io.BytesIO(bytes(1000)), 1000)
    assert _discard(small, 4096) is True
    assert small.remaining == 0
    large = KnownLengthRFile(io.BytesIO(bytes(10_000)), 10_000)
    assert _discard(large, 4096) is False
    assert large.remaining == 10_000 - 4097  # one byte past the limit shows it goes on
    chunked = _ChunkedBody(Tracked(coded(bytes(3000), bytes(3000))), 0)
    assert _discard(chunked, 4096) is False
