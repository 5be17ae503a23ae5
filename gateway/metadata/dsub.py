"""DSUB on the wire: ITI-52 Subscribe/Unsubscribe and ITI-53 Notify (WS-BaseNotification 1.3).

The Document Metadata Notification Broker's messages (ITI TF-2b §3.52, §3.53):

- ``wsnt:Subscribe`` (action :data:`SUBSCRIBE_ACTION`): ``wsnt:ConsumerReference/wsa:Address``
  (where ITI-53 goes), ``wsnt:Filter`` with one ``wsnt:TopicExpression`` (Dialect
  :data:`SIMPLE_DIALECT`: ``ihe:FullDocumentEntry`` or ``ihe:MinimalDocumentEntry``) and one
  ``rim:AdhocQuery`` whose id names the subscription filter (:data:`DOCUMENT_ENTRY_QUERIES`) and
  whose slots are the FindDocuments-style parameters, optional ``wsnt:InitialTerminationTime``;
- ``wsnt:SubscribeResponse``: ``wsnt:SubscriptionReference`` (the broker's address, the
  subscription id as a WS-Addressing reference parameter), ``wsnt:CurrentTime``,
  ``wsnt:TerminationTime``;
- ``wsnt:Unsubscribe`` (action :data:`UNSUBSCRIBE_ACTION`) sent to that reference: the id comes
  back as a SOAP header block (WS-Addressing 1.0 SOAP Binding §2.3); ``wsnt:UnsubscribeResponse``;
- ``wsnt:Notify`` (action :data:`NOTIFY_ACTION`, ITI-53): one ``wsnt:NotificationMessage`` with
  the SubscriptionReference, the Topic, ``wsnt:ProducerReference`` and a ``wsnt:Message``
  holding ``lcm:SubmitObjectsRequest/rim:RegistryObjectList``: the DocumentEntries in full
  (``ihe:FullDocumentEntry``) or as ``rim:ObjectRef`` (``ihe:MinimalDocumentEntry``).

Faults are WS-BaseNotification's (``wsnt:InvalidFilterFault``, ``wsnt:TopicNotSupportedFault``,
``wsnt:UnacceptableInitialTerminationTimeFault``, WS-ResourceFramework's
``wsrf-r:ResourceUnknownFault``), raised as :class:`DsubFault` and answered as SOAP faults
whose Subcode is that name.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from lxml import etree

from gateway.metadata.ebrim import build_registry_objects
from gateway.metadata.model import DocumentEntry
from gateway.metadata.query_values import ValueFormatError, parse_value
from gateway.soap import ns

WSNT = "http://docs.oasis-open.org/wsn/b-2"
WSRF_R = "http://docs.oasis-open.org/wsrf/r-2"
IHE_TOPICS_NS = "urn:ihe:iti:xds-b:2007"  # the "ihe" prefix of the topic names
GATEWAY_NS = "urn:xdsi-gateway:dsub"  # our reference parameter (opaque to the subscriber)

SUBSCRIBE_ACTION = "http://docs.oasis-open.org/wsn/bw-2/NotificationProducer/SubscribeRequest"
SUBSCRIBE_RESPONSE_ACTION = (
    "http://docs.oasis-open.org/wsn/bw-2/NotificationProducer/SubscribeResponse"
)
UNSUBSCRIBE_ACTION = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest"
UNSUBSCRIBE_RESPONSE_ACTION = (
    "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeResponse"
)
NOTIFY_ACTION = "http://docs.oasis-open.org/wsn/bw-2/NotificationConsumer/Notify"
SIMPLE_DIALECT = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple"
FULL, MINIMAL = "ihe:FullDocumentEntry", "ihe:MinimalDocumentEntry"
TOPICS = {FULL: "full", MINIMAL: "minimal"}

# Subscription filters on DocumentEntries (ITI TF-2b §3.52.4.1.3): patient-dependent
# (the patient id required), multi-patient, and the FindDocuments id the DSUB trial
# implementation used (the NIST toolkit's self-test sends it), read as patient-dependent.
PATIENT_DEPENDENT = "urn:uuid:aa2332d0-f8fe-11e0-be50-0800200c9a66"
MULTI_PATIENT = "urn:uuid:742790e0-aba6-43d6-9f1f-e43ed9790b79"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
DOCUMENT_ENTRY_QUERIES = (PATIENT_DEPENDENT, MULTI_PATIENT, FIND_DOCUMENTS)
PATIENT_SLOT = "$XDSDocumentEntryPatientId"

_NSMAP = {"wsnt": WSNT, "wsa": ns.WSA, "rim": ns.RIM, "lcm": ns.LCM, "ihe": IHE_TOPICS_NS}
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


class DsubFault(Exception):
    """A WS-BaseNotification fault: ``name`` (local name, e.g. InvalidFilterFault), reason."""

    def __init__(self, name: str, reason: str, *, namespace: str = WSNT) -> None:
        super().__init__(reason)
        self.name, self.reason, self.namespace = name, reason, namespace


@dataclass(slots=True, kw_only=True)
class SubscribeRequest:
    """What an ITI-52 Subscribe asks for."""

    consumer: str  # ConsumerReference/Address: where ITI-53 Notify goes
    topic: str  # "full" or "minimal"
    query_id: str
    parameters: dict[str, list[str]] = field(default_factory=dict)  # slot name -> values (OR)
    terminates_at: datetime | None = None  # InitialTerminationTime, absolute


def _q(namespace: str, local: str) -> str:
    return ns.qname(namespace, local)


def parse_subscribe(body: etree._Element, *, now: datetime) -> SubscribeRequest:
    """Read a ``wsnt:Subscribe`` (ITI TF-2b §3.52.4.1.2). Raises DsubFault."""
    if body.tag != _q(WSNT, "Subscribe"):
        raise DsubFault("SubscribeCreationFailedFault", f"expected wsnt:Subscribe, got {body.tag}")
    address = body.findtext(f"{_q(WSNT, 'ConsumerReference')}/{_q(ns.WSA, 'Address')}")
    consumer = (address or "").strip()
    if not consumer.startswith(("http://", "https://")):
        raise DsubFault(
            "SubscribeCreationFailedFault",
            "wsnt:ConsumerReference/wsa:Address must be the http(s) address of the recipient",
        )
    flt = body.find(_q(WSNT, "Filter"))
    if flt is None:
        raise DsubFault("InvalidFilterFault", "wsnt:Filter is required (ITI TF-2b §3.52.4.1.2)")
    topics = flt.findall(_q(WSNT, "TopicExpression"))
    if len(topics) != 1:
        raise DsubFault("InvalidTopicExpressionFault", "exactly one wsnt:TopicExpression")
    expression = topics[0]
    if (expression.get("Dialect") or "").strip() != SIMPLE_DIALECT:
        raise DsubFault("TopicExpressionDialectUnknownFault", f"use Dialect {SIMPLE_DIALECT}")
    topic = _topic(expression)
    queries = flt.findall(_q(ns.RIM, "AdhocQuery"))
    if len(queries) != 1:
        raise DsubFault("InvalidFilterFault", "the filter holds exactly one rim:AdhocQuery")
    query_id = (queries[0].get("id") or "").strip()
    if query_id not in DOCUMENT_ENTRY_QUERIES:
        raise DsubFault("InvalidFilterFault", f"subscription filter {query_id!r} is not supported")
    parameters = _parameters(queries[0])
    if query_id != MULTI_PATIENT and len(parameters.get(PATIENT_SLOT, [])) != 1:
        raise DsubFault("InvalidFilterFault", f"{PATIENT_SLOT} is required, one value")
    terminates = _termination(body.findtext(_q(WSNT, "InitialTerminationTime")), now)
    return SubscribeRequest(
        consumer=consumer,
        topic=topic,
        query_id=query_id,
        parameters=parameters,
        terminates_at=terminates,
    )


def _topic(expression: etree._Element) -> str:
    text = (expression.text or "").strip()
    prefix, _, local = text.rpartition(":")
    namespace = expression.nsmap.get(prefix) if prefix else None
    # "ihe:" as written by the TF's examples, often without a namespace binding
    if prefix == "ihe" or namespace == IHE_TOPICS_NS:
        text = f"ihe:{local}"
    if text not in TOPICS:
        raise DsubFault("TopicNotSupportedFault", f"topic {text!r}: use {FULL} or {MINIMAL}")
    return TOPICS[text]


def _parameters(query: etree._Element) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for slot in query.iterfind(_q(ns.RIM, "Slot")):
        name = (slot.get("name") or "").strip()
        for value in slot.iterfind(f"{_q(ns.RIM, 'ValueList')}/{_q(ns.RIM, 'Value')}"):
            try:
                items = parse_value(value.text).items
            except ValueFormatError as exc:
                raise DsubFault("InvalidFilterFault", f"{name}: {exc}") from exc
            found.setdefault(name, []).extend(item.text for item in items)
    return found


def _termination(text: str | None, now: datetime) -> datetime | None:
    """InitialTerminationTime: an xsd:dateTime or an xsd:duration from now (WS-BaseNotification
    §4.2); a time not in the future is UnacceptableInitialTerminationTimeFault."""
    value = (text or "").strip()
    if not value:
        return None
    match = _DURATION.match(value)
    if match and value != "P":
        days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
        when = now + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    else:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise DsubFault(
                "UnacceptableInitialTerminationTimeFault", f"not a dateTime: {value!r}"
            ) from exc
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    if when <= now:
        raise DsubFault(
            "UnacceptableInitialTerminationTimeFault",
            f"InitialTerminationTime {value} is not in the future",
        )
    return when


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reference(parent: etree._Element, local: str, address: str, subscription_id: str) -> None:
    reference = etree.SubElement(parent, _q(WSNT, local))
    etree.SubElement(reference, _q(ns.WSA, "Address")).text = address
    parameters = etree.SubElement(reference, _q(ns.WSA, "ReferenceParameters"))
    etree.SubElement(parameters, _q(GATEWAY_NS, "SubscriptionId")).text = subscription_id


def build_subscribe_response(
    *, address: str, subscription_id: str, now: datetime, terminates_at: datetime | None
) -> etree._Element:
    """``wsnt:SubscribeResponse`` (ITI TF-2b §3.52.4.2.2)."""
    root = etree.Element(_q(WSNT, "SubscribeResponse"), nsmap={**_NSMAP, "xg": GATEWAY_NS})
    _reference(root, "SubscriptionReference", address, subscription_id)
    etree.SubElement(root, _q(WSNT, "CurrentTime")).text = _stamp(now)
    if terminates_at is not None:
        etree.SubElement(root, _q(WSNT, "TerminationTime")).text = _stamp(terminates_at)
    return root


def subscription_id(headers: Sequence[etree._Element], body: etree._Element) -> str | None:
    """The subscription an Unsubscribe is for: our reference parameter, echoed as a header
    block (WS-Addressing 1.0 SOAP Binding §2.3). Raises DsubFault for a wrong body."""
    if body.tag != _q(WSNT, "Unsubscribe"):
        raise DsubFault(
            "UnableToDestroySubscriptionFault", f"expected wsnt:Unsubscribe: {body.tag}"
        )
    for header in headers:
        if header.tag == _q(GATEWAY_NS, "SubscriptionId") and (header.text or "").strip():
            return (header.text or "").strip()
    return None


def build_unsubscribe_response() -> etree._Element:
    """``wsnt:UnsubscribeResponse`` (ITI TF-2b §3.52.4.4.2)."""
    return etree.Element(_q(WSNT, "UnsubscribeResponse"), nsmap={"wsnt": WSNT})


def build_notify(
    *,
    consumer: str,
    broker: str,
    subscription_id: str,
    topic: str,
    entries: Sequence[DocumentEntry],
) -> bytes:
    """A whole ITI-53 Notify SOAP 1.2 envelope (WS-Addressing headers included), serialized:
    stored in the outbox and sent as is on every attempt (the same wsa:MessageID each time).

    Standard: ITI TF-2b §3.53.4.1.2; WS-BaseNotification §3.2 (Notify).
    """
    env = ns.SOAP12
    envelope = etree.Element(_q(env, "Envelope"), nsmap={"env": env, **_NSMAP, "xg": GATEWAY_NS})
    header = etree.SubElement(envelope, _q(env, "Header"))
    action = etree.SubElement(header, _q(ns.WSA, "Action"))
    action.text = NOTIFY_ACTION
    action.set(_q(env, "mustUnderstand"), "true")
    etree.SubElement(header, _q(ns.WSA, "MessageID")).text = f"urn:uuid:{uuid.uuid4()}"
    etree.SubElement(header, _q(ns.WSA, "To")).text = consumer
    notify = etree.SubElement(etree.SubElement(envelope, _q(env, "Body")), _q(WSNT, "Notify"))
    message = etree.SubElement(notify, _q(WSNT, "NotificationMessage"))
    _reference(message, "SubscriptionReference", broker, subscription_id)
    name = FULL if topic == "full" else MINIMAL
    etree.SubElement(message, _q(WSNT, "Topic"), Dialect=SIMPLE_DIALECT).text = name
    producer = etree.SubElement(message, _q(WSNT, "ProducerReference"))
    etree.SubElement(producer, _q(ns.WSA, "Address")).text = broker
    request = etree.SubElement(
        etree.SubElement(message, _q(WSNT, "Message")), _q(ns.LCM, "SubmitObjectsRequest")
    )
    objects = etree.SubElement(request, _q(ns.RIM, "RegistryObjectList"))
    if topic == "full":
        objects.extend(build_registry_objects(list(entries)))
    else:
        for entry in entries:
            etree.SubElement(objects, _q(ns.RIM, "ObjectRef"), id=entry.entry_uuid)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def fault_detail(fault: DsubFault) -> etree._Element:
    """The fault's detail element (``wsnt:<Name>`` with a wsrf-bf:Timestamp-free Description)."""
    element = etree.Element(_q(fault.namespace, fault.name), nsmap={"wsnt": WSNT, "wsrf-r": WSRF_R})
    etree.SubElement(
        element, _q("http://docs.oasis-open.org/wsrf/bf-2", "Description")
    ).text = fault.reason
    return element
