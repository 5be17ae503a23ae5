"""The notify room's pure parts: the DSUB/webhook filter, the DSUB codec, webhook signatures,
forward rules."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from gateway.metadata import dsub as wire
from gateway.metadata.datatypes import Code
from gateway.metadata.model import Author, DocumentEntry
from gateway.notify.filters import DocumentFilter
from gateway.notify.forward import ForwardRule, StoredInstance, parse_destination
from gateway.notify.webhook import cloud_event, signature, verify

KOS = Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1")
P1 = "P-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _entry(**changes: object) -> DocumentEntry:
    entry = DocumentEntry(
        entry_uuid="urn:uuid:0b3c7d9e-0000-4000-8000-000000000001",
        patient_id=P1,
        format_code=KOS,
        class_code=Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1"),
        event_code_list=[Code("CT", "1.2.840.10008.2.16.4")],
        author=[Author(person="^Welby^Marcus")],
    )
    for name, value in changes.items():
        setattr(entry, name, value)
    return entry


def test_filter_and_of_parameters_or_of_values() -> None:
    both = DocumentFilter.from_mapping({"patient_id": P1, "format_code": [KOS.code, "other"]})
    assert both.matches(_entry())
    assert not both.matches(_entry(patient_id="P-2^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"))
    assert not both.matches(_entry(format_code=Code("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6")))
    scheme = DocumentFilter.from_mapping({"format_code": f"{KOS.code}^^{KOS.scheme}"})
    assert scheme.matches(_entry())
    assert not DocumentFilter.from_mapping({"format_code": f"{KOS.code}^^9.9"}).matches(_entry())
    assert DocumentFilter.from_mapping({"event_code": "CT"}).matches(_entry())
    assert not DocumentFilter.from_mapping({"event_code": "MR"}).matches(_entry())
    assert DocumentFilter.from_mapping({"author_person": "%Welby%"}).matches(_entry())
    assert DocumentFilter().matches(_entry())
    with pytest.raises(ValueError, match="colour"):
        DocumentFilter.from_mapping({"colour": "red"})


def _subscribe(termination: str | None, topic: str = "ihe:FullDocumentEntry") -> etree._Element:
    text = (
        f'<wsnt:Subscribe xmlns:wsnt="{wire.WSNT}" xmlns:a="http://www.w3.org/2005/08/addressing"'
        ' xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">'
        "<wsnt:ConsumerReference><a:Address>https://r.example/n</a:Address></wsnt:ConsumerReference>"
        "<wsnt:Filter><wsnt:TopicExpression "
        f'Dialect="{wire.SIMPLE_DIALECT}">{topic}</wsnt:TopicExpression>'
        f'<rim:AdhocQuery id="{wire.PATIENT_DEPENDENT}">'
        '<rim:Slot name="$XDSDocumentEntryPatientId"><rim:ValueList>'
        f"<rim:Value>'{P1.replace('&', '&amp;')}'</rim:Value></rim:ValueList></rim:Slot>"
        '<rim:Slot name="$XDSDocumentEntryFormatCode"><rim:ValueList>'
        "<rim:Value>('a^^b','c^^d')</rim:Value></rim:ValueList></rim:Slot>"
        "</rim:AdhocQuery></wsnt:Filter>"
        + (
            f"<wsnt:InitialTerminationTime>{termination}</wsnt:InitialTerminationTime>"
            if termination
            else ""
        )
        + "</wsnt:Subscribe>"
    )
    return etree.fromstring(text)


def test_subscribe_is_read_with_its_values_and_termination() -> None:
    asked = wire.parse_subscribe(_subscribe("P1DT2H"), now=NOW)
    assert asked.consumer == "https://r.example/n"
    assert asked.topic == "full"
    assert asked.parameters == {
        "$XDSDocumentEntryPatientId": [P1],
        "$XDSDocumentEntryFormatCode": ["a^^b", "c^^d"],
    }
    assert asked.terminates_at == NOW + timedelta(days=1, hours=2)
    at = wire.parse_subscribe(_subscribe("2027-01-01T00:00:00Z"), now=NOW)
    assert at.terminates_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert wire.parse_subscribe(_subscribe(None, "ihe:MinimalDocumentEntry"), now=NOW).topic == (
        "minimal"
    )


@pytest.mark.parametrize(
    ("termination", "topic", "fault"),
    [
        (
            "2010-05-31T00:00:00.00000Z",
            "ihe:FullDocumentEntry",
            "UnacceptableInitialTerminationTimeFault",
        ),
        ("not a time", "ihe:FullDocumentEntry", "UnacceptableInitialTerminationTimeFault"),
        (None, "ihe:SubmissionSetMetadata", "TopicNotSupportedFault"),
    ],
)
def test_subscribe_faults_are_ws_base_notification_ones(
    termination: str | None, topic: str, fault: str
) -> None:
    with pytest.raises(wire.DsubFault) as caught:
        wire.parse_subscribe(_subscribe(termination, topic), now=NOW)
    assert caught.value.name == fault


def test_notify_envelope_full_and_minimal() -> None:
    for topic, expect in (("full", "ExtrinsicObject"), ("minimal", "ObjectRef")):
        root = etree.fromstring(
            wire.build_notify(
                consumer="https://r.example/n",
                broker="https://gw.example/dsub/broker",
                subscription_id="urn:uuid:1",
                topic=topic,
                entries=[_entry(unique_id="1.2.3")],
            )
        )
        action = root.findtext(
            "{http://www.w3.org/2003/05/soap-envelope}Header/"
            "{http://www.w3.org/2005/08/addressing}Action"
        )
        assert action == wire.NOTIFY_ACTION
        listed = root.find(".//{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}RegistryObjectList")
        assert listed is not None
        assert [etree.QName(c).localname for c in listed] == [expect]


def test_webhook_signature_is_hmac_sha256_of_the_body() -> None:
    body = cloud_event(event_id="e1", source="urn:oid:1.2", subject="1.2.3", data={"x": 1})
    event = json.loads(body)
    assert event["specversion"] == "1.0" and event["id"] == "e1" and event["data"] == {"x": 1}
    header = signature("k", body)
    assert header == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert verify("k", body, header)
    assert not verify("k", body + b" ", header)
    assert not verify("other", body, header)
    assert not verify("k", body, None)


def test_forward_rule_filters() -> None:
    instance = StoredInstance("1.2.3.4", "1.2.3", Path("x.dcm"), "CT", "CT01", "C-STORE")
    read = lambda: "CT CHEST W/O"  # noqa: E731
    assert ForwardRule("A@h:1").matches(instance, read)
    assert ForwardRule("A@h:1", calling_ae_title="CT01", modality="ct").matches(instance, read)
    assert not ForwardRule("A@h:1", calling_ae_title="MR01").matches(instance, read)
    assert ForwardRule("A@h:1", study_description="*chest*").matches(instance, read)
    assert not ForwardRule("A@h:1", study_description="*knee*").matches(instance, read)
    stow = StoredInstance("1.2.3.5", "1.2.3", Path("y.dcm"), "CT", None, "STOW-RS")
    assert not ForwardRule("A@h:1", calling_ae_title="CT01").matches(stow, read)
    message = ForwardRule("PACS@pacs:104").message(instance)
    assert message.sequence_key == "forward:PACS@pacs:104:1.2.3"
    assert parse_destination("PACS@pacs.example:104") == ("PACS", "pacs.example", 104)
    with pytest.raises(ValueError):
        parse_destination("pacs.example:104")


def test_xdr_recipient_pairs_entries_and_documents() -> None:
    from gateway.errors import XDSErrorList
    from gateway.notify.xdr import check_documents
    from gateway.soap.message import Attachment

    entry = _entry(size=3)
    ok = Attachment.from_bytes(b"abc", content_id="c1")
    check_documents([entry], [(entry.entry_uuid, ok)])
    with pytest.raises(XDSErrorList) as caught:
        check_documents([entry], [("other", ok)])
    assert sorted(e.code for e in caught.value) == [
        "XDSMissingDocument",
        "XDSMissingDocumentMetadata",
    ]
    with pytest.raises(XDSErrorList) as caught:
        check_documents([entry], [(entry.entry_uuid, Attachment.from_bytes(b"abcd"))])
    assert [e.code for e in caught.value] == ["XDSRepositoryMetadataError"]
