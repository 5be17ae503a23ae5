"""Patient Identity Feed (ITI-8), Document Registry side and sending side.

:class:`PatientFeedHandler` is the handler an :class:`~gateway.hl7.mllp.MLLPServer` calls: raw ADT
in, raw ACK out, the patient identity kept by a :class:`PatientIdentitySink` (the registry).
:func:`run_feed` is the logic of ``xdsi-gateway feed FILE...``: send ADT files over MLLP and
report each acknowledgement.

Rules (ITI TF-2 §3.8.4.1.3 and §3.8.4.2.3, Document Registry expected actions):

* A01/A04/A05/A08: the identifier of PID-3 whose assigning authority is the affinity domain
  (``&<domain OID>&ISO``) is registered, or its demographics updated; identifiers of other
  domains are not registered (they travel along as ``other_ids``). No identifier of the domain
  -> AE with ERR 204.
* A40: PID-3 holds the surviving id, MRG-1 the subsumed one, both of the domain -> merge.
* Any other message type or trigger -> AR with ERR 200 / 201; missing PID or MRG -> AE 100, empty
  PID-3 or MRG-1 -> AE 101; the sink failing -> AE 207.

Every message gets exactly one ACK, and nothing here closes the connection.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TextIO

from gateway import netcause
from gateway.errors import XDSError
from gateway.hl7.ack import build_ack, parse_ack
from gateway.hl7.adt import (
    MERGE_TRIGGER,
    AdtError,
    Demographics,
    PatientFeedEvent,
    PatientIdentifier,
    parse_adt,
    to_cx,
)
from gateway.hl7.mllp import MLLPClient, MLLPError

log = logging.getLogger(__name__)


class PatientIdentitySink(Protocol):
    """Where fed patient identities go (the registry's patient table).

    ``pid`` values are XDS patient ids in CX form ``ID^^^&OID&ISO`` (ITI TF-3 §4.2.3.2.14);
    ``other_ids`` are the other identifiers of PID-3 in CX form (local ids, other domains), for
    cross-referencing. Methods are called from several handler threads at once and must be
    thread-safe (a database transaction per call does it). Whatever they raise becomes AE 207;
    an :class:`~gateway.errors.XDSError`'s code and codeContext are shown to the sender.
    """

    def register(self, pid: str, demographics: Demographics, *, other_ids: Sequence[str]) -> None:
        """Create the patient id, or update its demographics when it exists."""
        ...

    def merge(self, surviving: str, subsumed: str) -> None:
        """Merge ``subsumed`` into ``surviving`` (ITI TF-2 §3.8.4.2.3)."""
        ...


class PatientFeedHandler:
    """The ITI-8 receiving side: ``handler(raw_adt) -> raw_ack`` for :class:`MLLPServer`."""

    def __init__(self, sink: PatientIdentitySink, domain_oid: str) -> None:
        self.sink = sink
        self.domain_oid = domain_oid

    def __call__(self, raw: bytes) -> bytes:
        """Apply one ADT message to the sink and return its ACK (never raises).

        Standard: ITI TF-2 §3.8.4.1.3, §3.8.4.2.3; HL7 v2.5 §2.9.2 (original mode ACK).
        """
        try:
            event = parse_adt(raw)
        except AdtError as exc:
            log.info("ITI-8 message refused (%s %s): %s", exc.ack_code, exc.code, exc.text)
            return _refusal(raw, exc)
        except Exception:
            log.exception("ITI-8 message could not be decoded")
            return build_ack(raw, "AE", error_code="207", error_text="message could not be decoded")
        try:
            self._apply(event)
        except AdtError as exc:
            log.info("ITI-8 %s %s refused: %s", event.trigger, event.message_control_id, exc.text)
            return _refusal(event, exc)
        except Exception as exc:
            log.exception("ITI-8 %s %s: sink failed", event.trigger, event.message_control_id)
            text = "could not store the patient identity"
            if isinstance(exc, XDSError):  # its codeContext is meant for the peer
                text = f"{exc.code}: {exc.context}"
            return build_ack(event, "AE", error_code="207", error_text=text)
        return build_ack(event, "AA")

    def _domain_ids(self, ids: list[PatientIdentifier]) -> list[PatientIdentifier]:
        return [i for i in ids if i.in_domain(self.domain_oid)]

    def _apply(self, event: PatientFeedEvent) -> None:
        if event.trigger == MERGE_TRIGGER:
            self._merge(event)
        else:
            self._register(event)

    def _register(self, event: PatientFeedEvent) -> None:
        """A01/A04/A05/A08 (ITI TF-2 §3.8.4.1.3): register the domain id(s) of PID-3."""
        domain_ids = self._domain_ids(event.identifiers)
        if not domain_ids:
            raise self._no_domain_id("PID-3", event.identifiers, "PID^1^3")
        for identifier in domain_ids:
            others = [to_cx(i) for i in event.identifiers if i is not identifier]
            pid = to_cx(identifier)
            self.sink.register(pid, event.demographics, other_ids=others)
            log.info("ITI-8 %s %s: registered %s", event.trigger, event.message_control_id, pid)

    def _merge(self, event: PatientFeedEvent) -> None:
        """A40 (ITI TF-2 §3.8.4.2.3): merge the MRG-1 domain id into the PID-3 domain id."""
        surviving = self._domain_ids(event.identifiers)
        if not surviving:
            raise self._no_domain_id("PID-3", event.identifiers, "PID^1^3")
        if len({to_cx(i) for i in surviving}) > 1:
            text = "PID-3 holds more than one identifier of the affinity domain; which survives?"
            raise AdtError("205", text, location="PID^1^3")
        subsumed = self._domain_ids(event.merge_prior)
        if not subsumed:
            raise self._no_domain_id("MRG-1", event.merge_prior, "MRG^1^1")
        target = to_cx(surviving[0])
        for identifier in subsumed:
            source = to_cx(identifier)
            if source == target:
                log.warning("ITI-8 A40 %s merges %s into itself", event.message_control_id, source)
                continue
            self.sink.merge(target, source)
            log.info("ITI-8 A40 %s: merged %s into %s", event.message_control_id, source, target)

    def _no_domain_id(self, where: str, ids: list[PatientIdentifier], location: str) -> AdtError:
        """AE 204 (unknown key identifier): no id of the affinity domain where one is needed."""
        seen = ", ".join(to_cx(i) for i in ids) or "none"
        # The domain first: a v2.3.1 ACK shows only the first 80 characters (MSA-3).
        text = (
            f"{where} holds no identifier of the affinity domain {self.domain_oid} (assigning "
            f"authority &{self.domain_oid}&ISO); received: {seen}; identifiers of other "
            f"domains are ignored (ITI TF-2 3.8.4.1.3)"
        )
        return AdtError("204", text, location=location)


def _refusal(source: bytes | PatientFeedEvent, exc: AdtError) -> bytes:
    return build_ack(
        source, exc.ack_code, error_code=exc.code, error_text=exc.text, error_location=exc.location
    )


# -- sending side ------------------------------------------------------------------------------

_SEGMENT_START = re.compile(rb"^[A-Z][A-Z0-9]{2}[^A-Za-z0-9\r\n]")


def read_messages(data: bytes) -> list[bytes]:
    """Split the content of an ADT file into messages with CR segment terminators.

    Accepts LF and CRLF line ends, MLLP framing bytes, blank lines between messages, and lines
    wrapped by an editor (a line that does not start a segment continues the previous one). A
    new message starts at each MSH segment.

    Standard: HL7 v2.5 §2.5 (segments end with CR).
    """
    messages: list[list[bytes]] = []
    for line in re.split(rb"\r\n|\r|\n", data.replace(b"\x0b", b"\n").replace(b"\x1c", b"\n")):
        if not line.strip():
            continue
        if line.startswith(b"MSH"):
            messages.append([line])
        elif messages and _SEGMENT_START.match(line):
            messages[-1].append(line)
        elif messages:
            messages[-1][-1] += line  # a wrapped line
    return [b"\r".join(segments) + b"\r" for segments in messages]


def run_feed(
    files: Sequence[Path],
    host: str,
    port: int,
    timeout: float,
    out: TextIO,
    *,
    ssl_context: ssl.SSLContext | None = None,
    err: TextIO | None = None,
) -> int:
    """Send the ADT messages of ``files`` over one MLLP connection and print each ACK.

    With ``ssl_context`` the connection is MLLP over TLS (ITI TF-2 §3.19).

    Prints one line per message on ``out``: ``<file>#<n> <MSA-1> <MSA-2>`` plus the error text
    of a refused message; unreadable files and a connection that fails go to ``err`` (one plain
    line naming the listener and the likely cause). Returns 0 when every message was accepted
    (AA), 1 when one was not or the listener could not be reached, 2 when no file held a
    message (nothing was sent).

    Standard: ITI TF-2 §3.8 (Patient Identity Source side), HL7 v2.5 App. C (MLLP).
    """
    err = err or out
    batches: list[tuple[str, bytes]] = []
    ok = True
    for path in files:
        try:
            messages = read_messages(Path(path).read_bytes())
        except OSError as exc:
            print(f"{path}: cannot read ({exc.strerror})", file=err)
            ok = False
            continue
        if not messages:
            print(f"{path}: no HL7 message (no MSH segment) found", file=err)
            ok = False
        batches.extend((f"{path}#{n}", message) for n, message in enumerate(messages, 1))
    if not batches:
        return 2
    try:
        with MLLPClient(host, port, timeout=timeout, ssl_context=ssl_context) as client:
            for label, message in batches:
                ok = _report(label, client.send(message), out) and ok
    except MLLPError as exc:
        print(f"MLLP {host}:{port}: {exc}", file=err)
        return 1
    except OSError as exc:
        where = f"{host}:{port}"
        print(f"MLLP {where}: {netcause.explain(exc, where, peer='an ITI-8 listener')}", file=err)
        return 1
    return 0 if ok else 1


def _report(label: str, raw_ack: bytes, out: TextIO) -> bool:
    summary = parse_ack(raw_ack)
    line = f"{label} {summary.code} {summary.control_id}"
    if summary.error_code or summary.error_text:
        line += f" ERR {summary.error_code or ''}: {summary.error_text or ''}".rstrip()
    print(line, file=out)
    return summary.code == "AA"
