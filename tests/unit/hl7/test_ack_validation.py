"""Every ACK the ITI-8 feed can produce validates with hl7apy's STRICT validation, in the
version of the message answered (ITI-8 is HL7 v2.3.1, ITI TF-2 §3.8.3; v2.5 senders too), and
keeps the field lengths of that version's Chapter 2 (which hl7apy does not check: it knows only
data-type maxima).

Field lengths: HL7 v2.3.1 §2.24.2 MSA (MSA-3 ST 80), §2.24.3 ERR (ERR-1 CM 80); HL7 v2.5 §2.15.8
MSA (MSA-3 ST 80), §2.15.5 ERR (ERR-2 ERL 18, ERR-7 TX 2048, ERR-8 TX 250); MSH-10 and MSA-2
ST 20 in both. The MLLP layer's answers (refused peer, oversize, failing handler) are checked over
a real socket in tests/integration/test_mllp.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from gateway import errors
from gateway.hl7 import adt as adt_module
from gateway.hl7 import feed
from gateway.hl7.ack import build_ack, parse_ack
from gateway.hl7.adt import Demographics
from gateway.hl7.er7 import version_tuple
from gateway.hl7.feed import PatientFeedHandler
from gateway.hl7.mllp import default_oversize_answer

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
OTHER = "1.2.840.99999.1"
LONG = "x" * 300  # longer than any text field of an ACK

# (version form, segment, field number) -> maximum length in characters, as sent (escaped).
FIELD_LENGTHS = {
    ("old", "MSH", 10): 20,
    ("old", "MSA", 2): 20,
    ("old", "MSA", 3): 80,
    ("old", "ERR", 1): 80,
    ("new", "MSH", 10): 20,
    ("new", "MSA", 2): 20,
    ("new", "MSA", 3): 80,
    ("new", "ERR", 2): 18,
    ("new", "ERR", 7): 2048,
    ("new", "ERR", 8): 250,
}


@dataclass
class Sink:
    """An in-memory patient table; ``fail`` is raised by every call when set."""

    registered: list[str] = field(default_factory=list)
    fail: Exception | None = None

    def register(self, pid: str, demographics: Demographics, *, other_ids: Sequence[str]) -> None:
        if self.fail:
            raise self.fail
        self.registered.append(pid)

    def merge(self, surviving: str, subsumed: str) -> None:
        if self.fail:
            raise self.fail


def adt(
    version: str,
    trigger: str = "A04",
    pid3: str | None = f"P1^^^&{DOMAIN}&ISO",
    mrg1: str | None = None,
    *,
    message_type: str = "ADT",
    charset: str = "",
    name: str = "DOE^JOHN",
) -> bytes:
    msh = (
        f"MSH|^~\\&|ADT|HOSP|XDS|REG|20240101120000||{message_type}^{trigger}^ADT_A01|C-{trigger}"
        f"|P|{version}"
    )
    segments = [msh + (f"||||||{charset}" if charset else ""), f"EVN|{trigger}|20240101120000"]
    if pid3 is not None:
        segments.append(f"PID|1||{pid3}||{name}||19800101|M")
    if mrg1 is not None:
        segments.append(f"MRG|{mrg1}")
    text = "\r".join(segments) + "\r"
    return text.encode("latin-1" if charset == "8859/1" else "ascii")


Variant = Callable[[str], bytes]  # HL7 version of the message answered -> the ACK


def through_feed(make: Callable[[str], bytes], fail: Exception | None = None) -> Variant:
    def run(version: str) -> bytes:
        return PatientFeedHandler(Sink(fail=fail), DOMAIN)(make(version))

    return run


def undecodable(version: str) -> bytes:
    """The feed's answer when decoding fails unexpectedly (AE 207 "could not be decoded")."""
    original = feed.parse_adt

    def broken(raw: bytes) -> object:
        raise RuntimeError("hl7apy internals")

    feed.parse_adt = broken  # type: ignore[assignment]
    try:
        return PatientFeedHandler(Sink(), DOMAIN)(adt(version))
    finally:
        feed.parse_adt = original


def unreadable_segment(version: str) -> bytes:
    """The feed's answer when hl7apy cannot read PID (AE 102, the library's message inside)."""
    original = adt_module.parse_segment

    def broken(*args: object, **kwargs: object) -> object:
        raise ValueError("hl7apy could not read the segment: " + LONG)

    adt_module.parse_segment = broken
    try:
        return PatientFeedHandler(Sink(), DOMAIN)(adt(version))
    finally:
        adt_module.parse_segment = original


# Every answer the feed handler and the MLLP layer's callbacks can give, by name:
# (expected MSA-1, expected error code, how to get it).
VARIANTS: dict[str, tuple[str, str | None, Variant]] = {
    "AA register": ("AA", None, through_feed(adt)),
    "AA register latin-1": (
        "AA",
        None,
        through_feed(lambda v: adt(v, charset="8859/1", name="MÜLLER^JÖRG")),
    ),
    "AA merge": (
        "AA",
        None,
        through_feed(lambda v: adt(v, "A40", mrg1=f"P0^^^&{DOMAIN}&ISO")),
    ),
    "AE 204 no domain id in PID-3": (
        "AE",
        "204",
        through_feed(lambda v: adt(v, pid3=f"L1^^^HOSP^MR~O7^^^&{OTHER}&ISO")),
    ),
    "AE 204 no domain id in MRG-1": (
        "AE",
        "204",
        through_feed(lambda v: adt(v, "A40", mrg1=f"O7^^^&{OTHER}&ISO")),
    ),
    "AE 205 two surviving ids": (
        "AE",
        "205",
        through_feed(
            lambda v: adt(
                v, "A40", pid3=f"P1^^^&{DOMAIN}&ISO~P2^^^&{DOMAIN}&ISO", mrg1=f"P0^^^&{DOMAIN}&ISO"
            )
        ),
    ),
    "AE 100 missing PID": ("AE", "100", through_feed(lambda v: adt(v, pid3=None))),
    "AE 100 missing MRG": ("AE", "100", through_feed(lambda v: adt(v, "A40"))),
    "AE 101 empty PID-3": ("AE", "101", through_feed(lambda v: adt(v, pid3=""))),
    "AE 101 empty MRG-1": ("AE", "101", through_feed(lambda v: adt(v, "A40", mrg1=""))),
    "AR 200 message type": ("AR", "200", through_feed(lambda v: adt(v, message_type="ORM"))),
    "AR 201 trigger": ("AR", "201", through_feed(lambda v: adt(v, "A02"))),
    "AE 207 sink failure": ("AE", "207", through_feed(adt, RuntimeError("disk full"))),
    "AE 207 sink XDS error": (
        "AE",
        "207",
        through_feed(adt, errors.XDSUnknownPatientId(f"subsumed id {LONG} is not known")),
    ),
    "AE 207 undecodable": ("AE", "207", undecodable),
    "AE 102 unreadable segment": ("AE", "102", unreadable_segment),
    "AR 207 oversize": (
        "AR",
        "207",
        lambda v: default_oversize_answer(adt(v)[:200], 5_000_000, 1_048_576),
    ),
    "AR 207 refused sender": (
        "AR",
        "207",
        lambda v: build_ack(adt(v), "AR", error_code="207", error_text="sender not authorized"),
    ),
    "AE long text, delimiters": (
        "AE",
        "207",
        lambda v: build_ack(adt(v), "AE", error_code="207", error_text="a|b^c&d~e\\f " * 60),
    ),
}


def strict(ack: bytes, codec: str = "latin-1") -> str:
    """Parse and validate ``ack`` with hl7apy STRICT; return the version it was read as."""
    message = parse_message(
        ack.decode(codec), validation_level=VALIDATION_LEVEL.STRICT, find_groups=False
    )
    message.validate()
    return str(message.version)


def fields_of(ack: bytes) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in ack.decode("latin-1").split("\r"):
        if line:
            found.setdefault(line[:3], line.split("|"))
    return found


def check_lengths(ack: bytes, form: str) -> None:
    segments = fields_of(ack)
    for (which, segment, number), limit in FIELD_LENGTHS.items():
        values = segments.get(segment, [])
        if which == form and len(values) > number:
            for repetition in values[number].split("~"):
                assert len(repetition) <= limit, f"{segment}-{number} longer than {limit}"


# ITI-8's v2.3.1 and v2.5 first; then the other versions from v2.3.1 on that hl7apy knows (before
# v2.3.1 MSH-9 has no message structure, and hl7apy cannot tell which structure to check).
VERSIONS = ["2.3.1", "2.5", "2.4", "2.5.1", "2.6", "2.7", "2.8"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_ack_validates_strictly_in_the_version_answered(variant: str, version: str) -> None:
    code, error_code, make = VARIANTS[variant]
    ack = make(version)
    assert strict(ack) == version
    summary = parse_ack(ack)
    assert (summary.code, summary.error_code) == (code, error_code)
    assert summary.control_id.startswith("C-")
    if error_code:
        assert summary.error_text  # the reason reaches the sender
    check_lengths(ack, "new" if version_tuple(version) >= (2, 5) else "old")


@pytest.mark.parametrize("version", ["", "9.9", "2.x", "3.0", "2.5.1.9"])
def test_unknown_version_is_answered_as_v25(version: str) -> None:
    for variant in ("AA register", "AE 204 no domain id in PID-3", "AR 201 trigger"):
        ack = VARIANTS[variant][2](version)
        assert strict(ack) == "2.5", variant
        assert fields_of(ack)["MSH"][11] == "2.5"
        check_lengths(ack, "new")


@pytest.mark.parametrize("raw", [b"", b"\x00\x01 not HL7", b"PID|1||X\r", b"MSH"])
def test_no_msh_gets_a_valid_v25_reject(raw: bytes) -> None:
    ack = PatientFeedHandler(Sink(), DOMAIN)(raw)
    assert strict(ack) == "2.5"
    assert fields_of(ack)["MSA"][2] == '""'  # MSA-2 is required: HL7's null, nothing to echo
    summary = parse_ack(ack)
    assert (summary.code, summary.error_code, summary.control_id) == ("AR", "100", "")


@pytest.mark.parametrize("version", ["2.3.1", "2.5"])
def test_message_without_control_id_or_trigger(version: str) -> None:
    raw = f"MSH|^~\\&|ADT|HOSP|XDS|REG|20240101||ADT|||{version}\rPID|1||X\r".encode()
    ack = PatientFeedHandler(Sink(), DOMAIN)(raw)
    assert strict(ack) == version
    assert fields_of(ack)["MSH"][8] == "ACK^^ACK"


def test_last_resort_answer_validates() -> None:
    ack = build_ack(object(), "AA")  # type: ignore[arg-type]  # the builder itself fails
    assert strict(ack) == "2.5"
    assert parse_ack(ack).code == "AR"


def test_v231_detail_fits_msa3_and_err1() -> None:
    """The long AE 204 text: MSA-3 holds its start within 80 characters, ERR-1 the code."""
    ack = VARIANTS["AE 204 no domain id in PID-3"][2]("2.3.1")
    segments = fields_of(ack)
    msa3 = segments["MSA"][3]
    assert msa3.startswith("PID-3 holds no identifier of the affinity domain")
    assert len(msa3) <= 80 and msa3.endswith("...")
    assert segments["ERR"][1] == "PID^1^3^204&Unknown key identifier&HL70357"


def test_v25_detail_in_err8_and_whole_in_err7() -> None:
    text = "a|b^c&d~e\\f " * 60
    ack = build_ack(adt("2.5"), "AE", error_code="207", error_text=text)
    err = fields_of(ack)["ERR"]
    assert err[3] == "207^Application internal error^HL70357" and err[4] == "E"
    assert len(err[8]) <= 250 and err[8].endswith("...")
    assert parse_ack(ack).error_text is not None
    assert len(err[7]) <= 2048 and err[7].startswith(err[8][:-3])
