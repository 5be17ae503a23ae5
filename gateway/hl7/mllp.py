"""MLLP (Minimal Lower Layer Protocol) transport: frame reader, asyncio server, blocking client.

A frame is ``<SB> message <EB><CR>`` with SB = 0x0B, EB = 0x1C, CR = 0x0D. The server keeps
connections open, answers every frame with exactly one frame (the handler's ACK) in the order the
frames arrived, copes with frames split over TCP reads and several frames in one read, ignores
bytes outside frames (logged), refuses frames above a size limit without dropping the connection,
and closes connections that stay idle too long. The handler is ordinary blocking code (it may
wait on a database); it runs in a thread pool so that the event loop never blocks.

:class:`MLLPServer` runs its own event loop in a background thread so that the threaded WSGI
gateway can start and stop it from synchronous code.

Standard: HL7 v2.5 Appendix C "Lower Layer Protocols" §C.4 (MLLP release 1: block format, one
acknowledgement per message); HL7 "MLLP Transport Specification, Release 2" §2 (block format,
content must not contain SB or EB).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from gateway.hl7.ack import build_ack
from gateway.security.tls import wrap_socket

log = logging.getLogger(__name__)

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\x0d"
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
DEFAULT_IDLE_TIMEOUT = 300.0
READ_CHUNK = 64 * 1024
# How much of an oversize frame is kept so that its MSH can still be answered.
OVERSIZE_HEAD_BYTES = 8 * 1024

Handler = Callable[[bytes], bytes]
OversizeHandler = Callable[[bytes, int, int], bytes]
# (ssl object of the connection or None, remote address) -> may this peer send ITI-8?
Authorize = Callable[[ssl.SSLObject | None, str | None], bool]
# (remote address, the handshake's exception): a client failed TLS (audited by the caller)
HandshakeFailed = Callable[[str | None, BaseException], None]
TLS_HANDSHAKE_TIMEOUT = 30.0  # seconds a client may take over its part of the TLS handshake


class MLLPError(Exception):
    """The peer broke the MLLP exchange (closed early, answered garbage, timed out)."""


def frame(message: bytes) -> bytes:
    """Wrap one message in an MLLP block: SB + message + EB + CR (HL7 v2.5 App. C §C.4)."""
    return START_BLOCK + message + END_BLOCK + CARRIAGE_RETURN


@dataclass(slots=True, frozen=True)
class Frame:
    """One received block; when ``oversize``, ``payload`` holds only its head (``size``: all)."""

    payload: bytes
    size: int
    oversize: bool = False


class FrameReader:
    """Incremental MLLP deframer: feed it bytes as they arrive, get complete frames back.

    Leniency (for peers that do not frame exactly): a frame ends at EB whether or not CR follows
    (the CR, when it comes, is swallowed), so a peer that sends EB alone is still answered; a new
    SB inside an unfinished frame abandons the unfinished one (logged) and starts over; bytes
    outside frames are counted, logged and dropped.
    """

    def __init__(
        self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, *, peer: str = ""
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self.peer = peer
        self.ignored_bytes = 0  # total bytes dropped outside frames
        self._buffer = bytearray()
        self._in_frame = False
        self._size = 0  # bytes of the current frame seen so far (including dropped ones)
        self._after_end = False  # an EB was just seen; a following CR belongs to it

    @property
    def in_frame(self) -> bool:
        """True while a frame has started and not yet ended."""
        return self._in_frame

    def feed(self, data: bytes) -> list[Frame]:
        """Consume ``data``; return the frames it completed, in order."""
        frames: list[Frame] = []
        junk = 0
        pos = 0
        if self._after_end and data:
            self._after_end = False
            if data[:1] == CARRIAGE_RETURN:
                pos = 1
        while pos < len(data):
            if not self._in_frame:
                start = data.find(START_BLOCK, pos)
                if start < 0:
                    junk += self._junk(data[pos:])
                    break
                junk += self._junk(data[pos:start])
                self._begin()
                pos = start + 1
                continue
            pos = self._consume(data, pos, frames)
        if junk:
            self.ignored_bytes += junk
        return frames

    def _begin(self) -> None:
        self._in_frame = True
        self._buffer.clear()
        self._size = 0

    def _junk(self, chunk: bytes) -> int:
        if chunk.strip(b"\r\n\t "):
            log.warning("MLLP %s: ignored %d bytes outside a frame", self.peer, len(chunk))
        elif chunk:
            log.debug("MLLP %s: ignored %d blank bytes between frames", self.peer, len(chunk))
        return len(chunk)

    def _consume(self, data: bytes, pos: int, frames: list[Frame]) -> int:
        """Inside a frame: take bytes up to EB (or a new SB); return the next position."""
        end = data.find(END_BLOCK, pos)
        restart = data.find(START_BLOCK, pos, end if end >= 0 else len(data))
        if restart >= 0:
            self._append(data[pos:restart])
            log.warning(
                "MLLP %s: new start block inside an unfinished frame; %d bytes abandoned",
                self.peer,
                self._size,
            )
            self._begin()
            return restart + 1
        if end < 0:
            self._append(data[pos:])
            return len(data)
        self._append(data[pos:end])
        frames.append(self._finish())
        pos = end + 1
        if pos < len(data):
            if data[pos : pos + 1] == CARRIAGE_RETURN:
                pos += 1
            else:
                log.warning("MLLP %s: end block not followed by CR", self.peer)
        else:
            self._after_end = True
        return pos

    def _append(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= self.max_message_bytes:
            self._buffer += chunk
            return
        # Oversize: keep only the head (it holds MSH, for the answer); drop the rest on arrival.
        room = OVERSIZE_HEAD_BYTES - len(self._buffer)
        if room > 0:
            self._buffer += chunk[:room]
        elif room < 0:
            del self._buffer[OVERSIZE_HEAD_BYTES:]

    def _finish(self) -> Frame:
        oversize = self._size > self.max_message_bytes
        result = Frame(payload=bytes(self._buffer), size=self._size, oversize=oversize)
        self._in_frame = False
        self._buffer.clear()
        self._size = 0
        return result


def default_oversize_answer(head: bytes, size: int, limit: int) -> bytes:
    """AR with ERR 207 for a message above the size limit (HL7 v2.5 §2.9.2: rejected unread).

    Table 0357 has no "message too large" code; 207 (application internal error) with a user
    message naming the limit is the closest honest answer.
    """
    text = f"message of {size} bytes exceeds the limit of {limit} bytes; not processed"
    return build_ack(head, "AR", error_code="207", error_text=text)


class MLLPServer:
    """An MLLP listener on its own asyncio loop in a background thread.

    ``handler`` turns one received message (without framing) into the bytes of its answer. It
    runs in a pool of ``workers`` threads; messages of one connection are handled one at a time
    and answered in order. A handler that raises still produces an answer (AE, ERR 207).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 2575,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        workers: int = 4,
        ssl_context: ssl.SSLContext | None = None,
        on_oversize: OversizeHandler = default_oversize_answer,
        authorize: Authorize | None = None,
        on_handshake_failure: HandshakeFailed | None = None,
    ) -> None:
        """``authorize`` is asked once per connection, after the TLS handshake; a refused
        peer's messages are all answered AR (ERR 207) and never reach ``handler``.
        ``on_handshake_failure`` hears of clients that fail TLS (ITI TF-2 §3.20.4.1.1.1).
        """
        self.handler = handler
        self.authorize = authorize
        self.on_handshake_failure = on_handshake_failure
        self.host = host
        self.port = port
        self.max_message_bytes = max_message_bytes
        self.idle_timeout = idle_timeout
        self.workers = workers
        self.ssl_context = ssl_context
        self.on_oversize = on_oversize
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._closing = False
        self._listener: socket.socket | None = None
        self.address: tuple[str, int] | None = None

    # -- life cycle (called from synchronous code) -------------------------------------------

    def start(self, sock: socket.socket | None = None) -> tuple[str, int]:
        """Start serving in a background thread; return the bound (host, port).

        ``sock``: a socket already bound and listening (possibly shared with other processes
        accepting on it); without it the server binds host and port itself.
        """
        if self._thread is not None:
            raise RuntimeError("MLLPServer already started")
        self._closing = False
        self._listener = sock
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="mllp-handler")
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._listen())
            except BaseException as exc:  # reported to start() below
                failure.append(exc)
                started.set()
                return
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="mllp-server", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self._cleanup()
            raise failure[0]
        assert self.address is not None
        if sock is None:
            log.info("MLLP listening on %s:%d", *self.address)
        return self.address

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, finish the messages in flight (answering them), close every connection.

        Connections idle or in the middle of receiving a frame are closed at once; a connection
        whose message is with the handler gets its answer first. After ``timeout`` seconds the
        remaining work is cancelled.
        """
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            future = asyncio.run_coroutine_threadsafe(self._shutdown(timeout), loop)
            future.result(timeout + 5)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout + 5)
            self._cleanup()
        log.info("MLLP listener stopped")

    def _cleanup(self) -> None:
        if self._pool is not None:
            # Every answer is written by now, unless stop() timed out: a handler still running
            # then cannot be interrupted, and is not waited for.
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._loop is not None and not self._loop.is_running():
            self._loop.close()
        self._loop = self._thread = self._server = self._pool = None
        self._listener = None

    def __enter__(self) -> MLLPServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inside the loop ----------------------------------------------------------------------

    async def _listen(self) -> None:
        # TLS is started per connection in _accept, so handshake failures can be reported.
        if self._listener is not None:  # asyncio makes it non-blocking, as sharing needs
            self._server = await asyncio.start_server(
                self._accept, sock=self._listener, limit=READ_CHUNK
            )
        else:
            self._server = await asyncio.start_server(
                self._accept, self.host, self.port, limit=READ_CHUNK
            )
        sockname = self._server.sockets[0].getsockname()
        self.address = (sockname[0], sockname[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closing:
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = writer.get_extra_info("peername")
        if self.ssl_context is not None and not await self._start_tls(writer, peer):
            return
        conn = _Connection(self, reader, writer, f"{peer[0]}:{peer[1]}" if peer else "?")
        conn.refused = not self._authorized(writer, peer)
        self._connections[task] = conn
        try:
            await conn.run()
        except asyncio.CancelledError:
            if not self._closing:
                raise
            # stop() gave up waiting for this connection; asyncio's stream callback must not see
            # the cancellation as an error.
        finally:
            self._connections.pop(task, None)

    async def _start_tls(self, writer: asyncio.StreamWriter, peer: Any) -> bool:
        """Upgrade the new connection to TLS; on failure report it, close, return False.

        Standard: ITI TF-2 §3.19 (Authenticate Node: MLLP over TLS), HL7 v2.5 App. C.
        """
        assert self.ssl_context is not None
        try:
            async with asyncio.timeout(TLS_HANDSHAKE_TIMEOUT):
                await writer.start_tls(self.ssl_context)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            log.info("MLLP TLS handshake with %s failed: %s", peer, exc)
            if self.on_handshake_failure is not None:
                try:
                    self.on_handshake_failure(peer[0] if peer else None, exc)
                except Exception:
                    log.exception("MLLP handshake failure report failed")
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return False
        return True

    def _authorized(self, writer: asyncio.StreamWriter, peer: Any) -> bool:
        if self.authorize is None:
            return True
        try:
            return self.authorize(writer.get_extra_info("ssl_object"), peer[0] if peer else None)
        except Exception:
            log.exception("MLLP access check failed; refusing the connection's messages")
            return False

    async def _shutdown(self, timeout: float) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections.values()):
            if not conn.busy:
                conn.writer.close()  # its pending read returns EOF and the connection ends
        pending = list(self._connections)
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    def _answer(self, received: Frame, refused: bool = False) -> bytes:
        """Runs in the pool: the handler's answer, or an ACK saying why there is none."""
        try:
            if refused:  # HL7 v2.5 §2.9.2: AR, the message was not processed
                return build_ack(
                    received.payload,
                    "AR",
                    error_code="207",
                    error_text="sender not authorized for ITI-8",
                )
            if received.oversize:
                limit = self.max_message_bytes
                log.warning("MLLP message of %d bytes refused (limit %d)", received.size, limit)
                return self.on_oversize(received.payload, received.size, limit)
            return self.handler(received.payload)
        except Exception:
            log.exception("MLLP handler failed; answering AE 207")
            return build_ack(
                received.payload, "AE", error_code="207", error_text="application internal error"
            )


class _Connection:
    """One client connection: read frames, answer each in order, until EOF, idle or shutdown."""

    def __init__(
        self,
        server: MLLPServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.frames = FrameReader(server.max_message_bytes, peer=peer)
        self.busy = False  # a received message is being handled or answered
        self.refused = False  # the access rules refuse this peer: answer AR to everything

    async def run(self) -> None:
        log.debug("MLLP connection from %s", self.peer)
        try:
            await self._serve()
        except TimeoutError:  # (an OSError too, so first)
            log.warning("MLLP peer %s does not read its answers; closing", self.peer)
        except OSError as exc:  # reset, broken pipe, TLS errors
            log.info("MLLP connection %s lost: %s", self.peer, exc)
        finally:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
            log.debug("MLLP connection from %s closed", self.peer)

    async def _serve(self) -> None:
        server = self.server
        loop = asyncio.get_running_loop()
        while not server._closing:
            try:
                async with asyncio.timeout(server.idle_timeout):
                    data = await self.reader.read(READ_CHUNK)
            except TimeoutError:
                dropped = " (a partial frame is dropped)" if self.frames.in_frame else ""
                log.info("MLLP %s idle for %ss; closing%s", self.peer, server.idle_timeout, dropped)
                return
            if not data:
                if self.frames.in_frame:
                    log.warning("MLLP connection %s closed in the middle of a frame", self.peer)
                return
            if server._closing:  # stopping: what is not yet with the handler is not taken on
                return
            received = self.frames.feed(data)
            if not received:
                continue
            self.busy = True
            try:
                for item in received:  # frames fully received are answered, even when stopping
                    answer = await loop.run_in_executor(
                        server._pool, server._answer, item, self.refused
                    )
                    self.writer.write(frame(answer))
                    async with asyncio.timeout(server.idle_timeout):
                        await self.writer.drain()
            finally:
                self.busy = False


class MLLPClient:
    """A blocking MLLP client on one connection: send a message, wait for its answer."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.timeout = timeout
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ssl_context is not None:
                sock = wrap_socket(ssl_context, sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._reader = FrameReader(max_message_bytes, peer=f"{host}:{port}")
        self._pending: list[Frame] = []

    def send(self, message: bytes) -> bytes:
        """Send one message and return the payload of the answer frame (HL7 v2.5 App. C §C.4)."""
        self._sock.sendall(frame(message))
        return self.receive()

    def receive(self) -> bytes:
        """Wait for the next answer frame."""
        while not self._pending:
            try:
                data = self._sock.recv(READ_CHUNK)
            except TimeoutError as exc:
                raise MLLPError(f"no answer within {self.timeout}s") from exc
            if not data:
                raise MLLPError("connection closed by the peer before the answer")
            self._pending.extend(self._reader.feed(data))
        received = self._pending.pop(0)
        if received.oversize:
            raise MLLPError(f"answer of {received.size} bytes exceeds the size limit")
        return received.payload

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> MLLPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def send_messages(
    host: str,
    port: int,
    messages: Iterable[bytes],
    timeout: float = 30.0,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> list[bytes]:
    """Send messages one after the other on one connection, waiting for each answer.

    Raises MLLPError when the peer closes or stays silent for ``timeout`` seconds, OSError when
    the connection cannot be made.
    """
    with MLLPClient(host, port, timeout=timeout, ssl_context=ssl_context) as client:
        return [client.send(message) for message in messages]


def iter_frames(data: bytes, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Iterator[bytes]:
    """The payloads of all complete frames in ``data`` (captures, files of framed messages)."""
    for item in FrameReader(max_message_bytes).feed(data):
        yield item.payload
