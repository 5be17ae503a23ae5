"""A DSUB Document Metadata Subscriber for the tests: Subscribe and Unsubscribe over real HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import requests
from lxml import etree

WSNT = "http://docs.oasis-open.org/wsn/b-2"
WSA = "http://www.w3.org/2005/08/addressing"
SOAP = "http://www.w3.org/2003/05/soap-envelope"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
SUBSCRIBE = "http://docs.oasis-open.org/wsn/bw-2/NotificationProducer/SubscribeRequest"
UNSUBSCRIBE = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest"
PATIENT_DEPENDENT = "urn:uuid:aa2332d0-f8fe-11e0-be50-0800200c9a66"


@dataclass
class Answer:
    status: int
    root: etree._Element

    @property
    def body(self) -> etree._Element:
        return self.root.find(f"{{{SOAP}}}Body")[0]

    @property
    def fault_subcode(self) -> str | None:
        value = self.body.find(f"{{{SOAP}}}Code/{{{SOAP}}}Subcode/{{{SOAP}}}Value")
        return None if value is None else value.text


def envelope(action: str, to: str, body: etree._Element, *extra: etree._Element) -> bytes:
    root = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"env": SOAP, "wsa": WSA})
    header = etree.SubElement(root, f"{{{SOAP}}}Header")
    act = etree.SubElement(header, f"{{{WSA}}}Action")
    act.text = action
    act.set(f"{{{SOAP}}}mustUnderstand", "true")
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    reply = etree.SubElement(header, f"{{{WSA}}}ReplyTo")
    etree.SubElement(reply, f"{{{WSA}}}Address").text = f"{WSA}/anonymous"
    etree.SubElement(header, f"{{{WSA}}}To").text = to
    header.extend(extra)
    etree.SubElement(root, f"{{{SOAP}}}Body").append(body)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def post(url: str, action: str, data: bytes) -> Answer:
    answer = requests.post(
        url,
        data=data,
        headers={"Content-Type": f'application/soap+xml; charset=UTF-8; action="{action}"'},
        timeout=30,
    )
    return Answer(answer.status_code, etree.fromstring(answer.content))


def subscribe_body(
    consumer: str,
    topic: str,
    slots: dict[str, list[str]],
    *,
    query_id: str = PATIENT_DEPENDENT,
    termination: str | None = None,
) -> etree._Element:
    body = etree.Element(f"{{{WSNT}}}Subscribe", nsmap={"wsnt": WSNT, "wsa": WSA, "rim": RIM})
    ref = etree.SubElement(body, f"{{{WSNT}}}ConsumerReference")
    etree.SubElement(ref, f"{{{WSA}}}Address").text = consumer
    flt = etree.SubElement(body, f"{{{WSNT}}}Filter")
    expression = etree.SubElement(
        flt,
        f"{{{WSNT}}}TopicExpression",
        Dialect="http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple",
    )
    expression.text = topic
    query = etree.SubElement(flt, f"{{{RIM}}}AdhocQuery", id=query_id)
    for name, values in slots.items():
        value_list = etree.SubElement(
            etree.SubElement(query, f"{{{RIM}}}Slot", name=name), f"{{{RIM}}}ValueList"
        )
        for value in values:
            etree.SubElement(value_list, f"{{{RIM}}}Value").text = value
    if termination is not None:
        etree.SubElement(body, f"{{{WSNT}}}InitialTerminationTime").text = termination
    return body


def subscribe(broker: str, body: etree._Element) -> Answer:
    return post(broker, SUBSCRIBE, envelope(SUBSCRIBE, broker, body))


def unsubscribe(reference: etree._Element) -> Answer:
    """Unsubscribe as WS-Addressing says: to the reference's Address, its reference parameters
    as header blocks marked wsa:IsReferenceParameter."""
    address = reference.findtext(f"{{{WSA}}}Address")
    assert address is not None
    extra = []
    parameters = reference.find(f"{{{WSA}}}ReferenceParameters")
    for parameter in parameters if parameters is not None else []:
        copied = etree.fromstring(etree.tostring(parameter))
        copied.set(f"{{{WSA}}}IsReferenceParameter", "true")
        extra.append(copied)
    body = etree.Element(f"{{{WSNT}}}Unsubscribe", nsmap={"wsnt": WSNT})
    return post(address, UNSUBSCRIBE, envelope(UNSUBSCRIBE, address, body, *extra))
