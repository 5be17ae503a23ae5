"""ADT decoding for the Patient Identity Feed (ITI TF-2 §3.8.4.1.2, §3.8.4.2.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.hl7.adt import AdtError, PatientIdentifier, parse_adt, to_cx

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "samples" / "hl7v2-iti8"


def adt(
    trigger: str = "A01",
    *,
    pid: str | None = f"PID|1||P1^^^&{DOMAIN}&ISO||DOE^JOHN^Q^^^^L||19800101|M",
    mrg: str | None = None,
    version: str = "2.3.1",
    charset: str = "",
    structure: str = "ADT_A01",
    msh9: str | None = None,
) -> str:
    msh9 = msh9 if msh9 is not None else f"ADT^{trigger}^{structure}"
    segments = [
        f"MSH|^~\\&|SEND|SFAC|RECV|RFAC|20240101120000||{msh9}|CTRL-{trigger}|P|{version}"
        f"||||||{charset}",
        f"EVN|{trigger}|20240101120000",
    ]
    segments += [s for s in (pid, mrg) if s is not None]
    segments.append("PV1||O")
    return "\r".join(segments) + "\r"


@pytest.mark.parametrize("trigger", ["A01", "A04", "A05", "A08"])
def test_admit_register_update(trigger: str) -> None:
    pid = (
        f"PID|1||P1^^^NS&{DOMAIN}&ISO^PI~LOC-7^^^HOSP^MR||DOE^JOHN^Q^^^^L|SMITH|19800101120000|M|||"
        "1 MAIN ST^^SPRINGFIELD^IL^62701^US^H"
    )
    event = parse_adt(adt(trigger, pid=pid).encode())
    assert event.trigger == trigger
    assert event.message_control_id == f"CTRL-{trigger}"
    assert event.sending_application == "SEND"
    assert event.sending_facility == "SFAC"
    assert event.identifiers == [
        PatientIdentifier(
            id="P1",
            assigning_authority_oid=DOMAIN,
            namespace_id="NS",
            type_code="PI",
            universal_id_type="ISO",
        ),
        PatientIdentifier(id="LOC-7", namespace_id="HOSP", type_code="MR"),
    ]
    demo = event.demographics
    assert demo.name == "DOE^JOHN^Q^^^^L"
    assert (demo.family_name, demo.given_name, demo.display_name) == ("DOE", "JOHN", "JOHN DOE")
    assert demo.mothers_maiden_name == "SMITH"
    assert demo.birth_date == "19800101120000"
    assert demo.sex == "M"
    assert demo.address == "1 MAIN ST^^SPRINGFIELD^IL^62701^US^H"
    assert event.merge_prior == []


def test_merge_a40() -> None:
    raw = adt(
        "A40",
        structure="ADT_A39",
        pid=f"PID|1||SURV^^^&{DOMAIN}&ISO||DOE^JANE",
        mrg=f"MRG|OLD1^^^&{DOMAIN}&ISO~OLD2^^^HOSP|||OLD-ACCT",
    )
    event = parse_adt(raw.encode())
    assert event.trigger == "A40"
    assert [to_cx(i) for i in event.identifiers] == [f"SURV^^^&{DOMAIN}&ISO"]
    assert [to_cx(i) for i in event.merge_prior] == [f"OLD1^^^&{DOMAIN}&ISO", "OLD2^^^HOSP"]


def test_trigger_from_evn_when_msh9_has_none() -> None:
    event = parse_adt(adt("A04", msh9="ADT").encode())
    assert event.trigger == "A04"


@pytest.mark.parametrize(
    ("charset", "encoding"),
    [("UNICODE UTF-8", "utf-8"), ("8859/1", "latin-1"), ("", "latin-1"), ("", "utf-8")],
)
def test_names_in_declared_or_guessed_charset(charset: str, encoding: str) -> None:
    pid = f"PID|1||P1^^^&{DOMAIN}&ISO||MÜLLER^JÖRG^^^^^L||19700101|M|||Straße 5^^Köln"
    event = parse_adt(adt(pid=pid, charset=charset, version="2.5").encode(encoding))
    assert event.demographics.family_name == "MÜLLER"
    assert event.demographics.given_name == "JÖRG"
    assert event.demographics.address == "Straße 5^^Köln"
    assert event.header.codec == encoding
    assert event.header.charset == charset


def test_declared_charset_wins_over_guessing() -> None:
    # C3 BC is "ü" in UTF-8 but "Ã¼" in ISO 8859-1: MSH-18 decides, not the bytes.
    pid = f"PID|1||P1^^^&{DOMAIN}&ISO||M\u00c3\u00bcLLER"
    raw = adt(pid=pid, charset="8859/1").encode("latin-1")
    assert b"M\xc3\xbcLLER" in raw
    assert parse_adt(raw).demographics.family_name == "M\u00c3\u00bcLLER"
    assert parse_adt(raw.replace(b"8859/1", b"UNICODE UTF-8")).demographics.family_name == "MüLLER"


def test_escape_sequences_resolved() -> None:
    pid = f"PID|1||A\\S\\B^^^&{DOMAIN}&ISO||O\\F\\NEIL^ANN"
    event = parse_adt(adt(pid=pid).encode())
    assert event.identifiers[0].id == "A^B"
    assert to_cx(event.identifiers[0]) == f"A\\S\\B^^^&{DOMAIN}&ISO"
    assert event.demographics.family_name == "O|NEIL"
    assert event.demographics.name == "O\\F\\NEIL^ANN"  # ER7 form keeps the escape


def test_hl7_null_and_empty_identifiers_skipped() -> None:
    pid = f'PID|1||""^^^&2.71&ISO~~^^^&1.2&ISO~P9^^^&{DOMAIN}&ISO||X'
    event = parse_adt(adt(pid=pid).encode())
    assert [i.id for i in event.identifiers] == ["P9"]


@pytest.mark.parametrize("version", ["2.5", "2.5.1", "2.9", "", "junk"])
def test_any_version_is_read(version: str) -> None:
    event = parse_adt(adt(version=version).encode())
    assert event.identifiers[0].assigning_authority_oid == DOMAIN


def test_missing_pid() -> None:
    with pytest.raises(AdtError) as info:
        parse_adt(adt(pid=None).encode())
    assert (info.value.code, info.value.ack_code, info.value.location) == ("100", "AE", "PID")


def test_empty_pid3() -> None:
    with pytest.raises(AdtError) as info:
        parse_adt(adt(pid="PID|1||||DOE").encode())
    assert (info.value.code, info.value.ack_code, info.value.location) == ("101", "AE", "PID^1^3")


def test_a40_without_mrg() -> None:
    with pytest.raises(AdtError) as info:
        parse_adt(adt("A40").encode())
    assert (info.value.code, info.value.ack_code) == ("100", "AE")
    assert "MRG" in info.value.text


def test_a40_with_empty_mrg1() -> None:
    with pytest.raises(AdtError) as info:
        parse_adt(adt("A40", mrg="MRG|||ACCT").encode())
    assert (info.value.code, info.value.location) == ("101", "MRG^1^1")


def test_not_an_adt() -> None:
    with pytest.raises(AdtError) as info:
        parse_adt(adt(msh9="ORU^R01^ORU_R01").encode())
    assert (info.value.code, info.value.ack_code) == ("200", "AR")


@pytest.mark.parametrize("trigger", ["A02", "A03", "A31", ""])
def test_unsupported_trigger(trigger: str) -> None:
    raw = adt(trigger, msh9=f"ADT^{trigger}").encode()
    with pytest.raises(AdtError) as info:
        parse_adt(raw)
    assert (info.value.code, info.value.ack_code) == ("201", "AR")


@pytest.mark.parametrize("raw", [b"", b"garbage", b"\x00\xff" * 10, b"PID|1||X\r"])
def test_garbage(raw: bytes) -> None:
    with pytest.raises(AdtError) as info:
        parse_adt(raw)
    assert (info.value.code, info.value.ack_code) == ("100", "AR")


def test_to_cx() -> None:
    assert (
        to_cx(
            PatientIdentifier(
                id="P1",
                assigning_authority_oid=DOMAIN,
                namespace_id="IGNORED",
                type_code="PI",
                universal_id_type="iso",
            )
        )
        == f"P1^^^&{DOMAIN}&ISO"
    )
    assert to_cx(PatientIdentifier(id="L1", namespace_id="HOSP", type_code="MR")) == "L1^^^HOSP^MR"
    assert to_cx(PatientIdentifier(id="L2")) == "L2"
    assert (
        to_cx(PatientIdentifier(id="L3", assigning_authority_oid="x.org", universal_id_type="DNS"))
        == "L3^^^&x.org&DNS"
    )


def test_in_domain() -> None:
    ident = PatientIdentifier(id="P", assigning_authority_oid=DOMAIN, universal_id_type="ISO")
    assert ident.in_domain(DOMAIN)
    assert not ident.in_domain("1.2.3")
    assert not PatientIdentifier(id="P", assigning_authority_oid=DOMAIN).in_domain(DOMAIN)


# -- the real-world samples of ../shared/conformance (MANIFEST.md) -------------------------------


def _sample(name: str) -> bytes:
    data = (SAMPLES / name).read_bytes()
    return data.replace(b"\r\n", b"\r").replace(b"\n", b"\r").strip(b"\x0b\x1c\r") + b"\r"


needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/conformance is absent")


@needs_samples
@pytest.mark.parametrize(
    ("name", "trigger", "first_id", "prior"),
    [
        ("ipf-PIX_FEED_REG_Maximal_A01.hl7", "A01", "PIX10515W3", None),
        ("ipf-PIX_FEED_REV_Maximal_A08.hl7", "A08", "PIX10515W3", None),
        ("ipf-PIX_FEED_MERGE_Maximal_A40.hl7", "A40", "120-01", "120-02"),
        ("ipf-pixsource-A01.hl7", "A01", "306563", None),
        ("ipf-pixsource-A04.hl7", "A04", "305090", None),
        ("ipf-pixsource-A08.hl7", "A08", "306567", None),
        ("ipf-pixsource-A40.hl7", "A40", "142025", "704686"),
        ("ipf-camel-iti-8-A40.hl7", "A40", "PDQ113XX35", "PDQ113XX03"),
        ("ipf-gazelle-iti-8-A40.hl7", "A40", "PDQ113XX35", "PDQ113XX03"),
        ("ipf-gazelle-iti-8-feed-A01.hl7", "A01", "PDQ113XX35", None),
        ("ipf-mllp-iti8-A01.hl7", "A01", "72001173A", None),
        ("ipf-mllp-iti8-A40.hl7", "A40", "305014", "305010"),
        ("nist-A01Sender-template-as-sent.hl7", "A01", "$pid$", None),
        ("nist-V2FeedMessageWithWrapper-mllp-framed.hl7", "A01", "bill128", None),
        ("nist-xdstools2-adt-A01-template.hl7", "A01", "$pid$", None),
    ],
)
def test_samples(name: str, trigger: str, first_id: str, prior: str | None) -> None:
    event = parse_adt(_sample(name))
    assert event.trigger == trigger
    assert event.identifiers[0].id == first_id
    assert (event.merge_prior[0].id if event.merge_prior else None) == prior


@needs_samples
def test_sample_without_pid_refused() -> None:
    with pytest.raises(AdtError) as info:
        parse_adt(_sample("ipf-mllp-iti8-A01-incomplete-noPID.hl7"))
    assert info.value.code == "100"


@needs_samples
def test_nist_feed_sample_identifier() -> None:
    event = parse_adt(_sample("nist-V2FeedMessageWithWrapper-mllp-framed.hl7"))
    assert to_cx(event.identifiers[0]) == "bill128^^^&2.16.840.1.113883.3.72.5.9.1&ISO"
    assert event.demographics.display_name == "WILLIEr MUSTO"
