"""PatientIdentityFeedTransaction (ITI-8) steps and the runner's own tiny MLLP client.

Standards: ITI TF-2 §3.8 (Patient Identity Feed, HL7 v2.3.1 ADT^A01 with the affinity-domain id in
PID-3 as CX ``id^^^&OID&ISO``; the registry answers an ACK whose MSA-1 is ``AA`` on acceptance) and
the HL7 v2 Minimal Lower Layer Protocol (HL7 v2.5 Appendix C.4: ``<VT>`` message ``<FS><CR>``).
The message shape follows what the NIST toolkit sends (``A01Sender`` template: MSH, EVN, PID, PV1;
see ``conformance/samples/hl7v2-iti8``). Kept separate from ``gateway.hl7`` on purpose: this is the
test tool's client, not the gateway's.
"""

from __future__ import annotations

import contextlib
import datetime
import secrets
import socket
import ssl

from tests.conformance.nist.execution import StepExecution

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
MAX_ACK_BYTES = 1024 * 1024


class MllpError(OSError):
    """The MLLP exchange did not produce a framed reply."""


def build_a01(
    patient_id: str,
    *,
    control_id: str = "",
    now: datetime.datetime | None = None,
    sender: tuple[str, str] = ("NIST_RUNNER", "XDSI_TESTS"),
    receiver: tuple[str, str] = ("XDSI_GATEWAY", "XDSI"),
) -> str:
    """ADT^A01 (HL7 v2.3.1) registering ``patient_id``; segments end with ``\\r``."""
    stamp = (now or datetime.datetime.now()).strftime("%Y%m%d%H%M%S")
    control_id = control_id or f"NIST{secrets.token_hex(6).upper()}"
    segments = [
        f"MSH|^~\\&|{sender[0]}|{sender[1]}|{receiver[0]}|{receiver[1]}|{stamp}||ADT^A01|"
        f"{control_id}|P|2.3.1",
        f"EVN|A01|{stamp}",
        f"PID|||{patient_id}||APPLESEED^JOHN^A^^^^L||19710101|M|||"
        "1^CATALYZE STREET^^MADISON^WI^53005-1020",
        "PV1||I",
    ]
    return "\r".join(segments) + "\r"


def exchange(
    host: str,
    port: int,
    message: str,
    *,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> str:
    """Send one MLLP-framed message and return the framed reply's content (over TLS with
    ``ssl_context``)."""
    frame = START_BLOCK + message.encode("utf-8") + END_BLOCK
    with contextlib.ExitStack() as stack:
        connection = stack.enter_context(socket.create_connection((host, port), timeout=timeout))
        if ssl_context is not None:
            connection = stack.enter_context(
                ssl_context.wrap_socket(connection, server_hostname=host)
            )
        connection.sendall(frame)
        received = b""
        while END_BLOCK not in received:
            chunk = connection.recv(65536)
            if not chunk:
                raise MllpError(f"connection closed before the end block ({len(received)} bytes)")
            received += chunk
            if len(received) > MAX_ACK_BYTES:
                raise MllpError("reply too large")
    start = received.find(START_BLOCK)
    if start < 0:
        raise MllpError("reply has no start block")
    return received[start + 1 : received.index(END_BLOCK)].decode("utf-8", errors="replace")


def ack_code(ack: str) -> str:
    """MSA-1 (acknowledgment code) of an ACK, '' when there is no MSA segment."""
    for segment in ack.replace("\n", "\r").split("\r"):
        if segment.startswith("MSA|"):
            return segment.split("|")[1]
    return ""


def run_feed(ex: StepExecution) -> None:
    """Send ADT^A01 for the step's patient; expect MSA-1 = AA; report ``$patientid$``."""
    if ex.opts.create_new_patient_id:
        patient = ex.ctx.new_patient_id()
    elif ex.opts.forced_patient_id:
        patient = ex.opts.forced_patient_id
    else:
        patient = ex.session_patient
    endpoint = ex.config.endpoints.mllp
    if endpoint is None:
        ex.fail("no MLLP endpoint (--mllp HOST:PORT) configured for the patient feed")
        return
    try:
        ack = exchange(
            endpoint[0],
            endpoint[1],
            build_a01(patient),
            timeout=ex.config.timeout,
            ssl_context=ex.config.mllp_ssl,
        )
    except OSError as exc:
        ex.fail(f"patient feed to {endpoint[0]}:{endpoint[1]} failed: {exc}")
        return
    code = ack_code(ack)
    accepted = code == "AA"
    wanted_success = "Success" in ex.step.expected_status
    if accepted != wanted_success:
        ex.fail(
            f"feed ACK MSA-1 is {code or '(none)'}; expected "
            f"{'AA' if wanted_success else 'a rejection'}"
        )
    if accepted:
        ex.record.reports["$patientid$"] = patient
