"""The MLLP layer's own answers, read off a real socket, validate with hl7apy STRICT in the
version of the message answered: a sender refused by the access rules, an oversize message, a
handler that fails. (The feed handler's answers: tests/unit/hl7/test_ack_validation.py.)

Standard: HL7 v2.5 Appendix C §C.4 (MLLP), §2.9.2 (original mode), §2.15.5 (ERR), §2.15.8 (MSA);
HL7 v2.3.1 §2.24.2-§2.24.3; ITI TF-2 §3.8.3 (ITI-8 is v2.3.1).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from gateway.hl7.ack import build_ack, parse_ack
from gateway.hl7.mllp import MLLPServer, send_messages

TIMEOUT = 10.0
LIMIT = 4096


def adt(version: str, control_id: str, padding: int = 0) -> bytes:
    text = (
        f"MSH|^~\\&|ADT|HOSP|XDS|REG|20240101120000||ADT^A04^ADT_A01|{control_id}|P|{version}\r"
        "EVN|A04|20240101120000\rPID|1||P1^^^&1.2.3&ISO||DOE^JOHN\r"
    )
    if padding:
        text += "NTE|1||" + "x" * padding + "\r"
    return text.encode()


def accept(raw: bytes) -> bytes:
    return build_ack(raw, "AA")


def broken(raw: bytes) -> bytes:
    raise RuntimeError("handler bug")


def refuse(ssl_object: object, peer: str | None) -> bool:
    return False


Handler = Callable[[bytes], bytes]
Authorize = Callable[[object, str | None], bool]
# name -> (handler, access rule, message padding, expected MSA-1 and error code)
CASES: dict[str, tuple[Handler, Authorize | None, int, tuple[str, str | None]]] = {
    "refused sender": (accept, refuse, 0, ("AR", "207")),
    "oversize": (accept, None, 2 * LIMIT, ("AR", "207")),
    "handler failure": (broken, None, 0, ("AE", "207")),
    "accepted": (accept, None, 0, ("AA", None)),
}


def strict(ack: bytes) -> str:
    message = parse_message(
        ack.decode("latin-1"), validation_level=VALIDATION_LEVEL.STRICT, find_groups=False
    )
    message.validate()
    return str(message.version)


@pytest.mark.parametrize("version", ["2.3.1", "2.5"])
@pytest.mark.parametrize("case", list(CASES))
def test_mllp_layer_answers_validate(case: str, version: str) -> None:
    handler, authorize, padding, expected = CASES[case]
    with MLLPServer(handler, port=0, max_message_bytes=LIMIT, authorize=authorize) as mllp:
        assert mllp.address is not None
        [ack] = send_messages(*mllp.address, [adt(version, "M-1", padding)], timeout=TIMEOUT)
    assert strict(ack) == version
    summary = parse_ack(ack)
    assert (summary.code, summary.error_code) == expected
    assert summary.control_id == "M-1"
