"""The Document Metadata Notification Broker (DSUB), grouped with the registry.

ITI-52 Document Metadata Subscribe (ITI TF-2b §3.52) at ``/dsub/broker``: a Subscribe stores a
row of ``dsub_subscription`` (consumer address, topic full or minimal, the filter, the
termination time) and answers its reference; an Unsubscribe sent to that reference ends it.
Subscriptions live in the database, so every gateway process serves and notifies them, and they
survive restarts; one whose ``wsnt:TerminationTime`` has passed is no longer notified.

ITI-53 Document Metadata Notify (ITI TF-2b §3.53): on every ITI-42 registration the notifier asks
:meth:`Broker.notifications` (inside the registration's transaction) which active subscriptions
match the registered DocumentEntries; each gets one Notify holding its matching entries, queued
in the outbox (kind ``dsub``) and POSTed to the consumer reference until it answers 2xx.

The wire form is ``gateway.metadata.dsub``; here are the actor's decisions only.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import requests
from sqlalchemy import Connection, Engine, insert, or_, select, update

from gateway.database.engine import write_transaction
from gateway.database.leases import db_now
from gateway.metadata import dsub as wire
from gateway.metadata.model import DocumentEntry, Submission
from gateway.notify.filters import PARAMETERS, DocumentFilter
from gateway.notify.outbox import Claimed, Message
from gateway.notify.schema import dsub_subscription
from gateway.soap import fault
from gateway.soap.dispatch import Context
from gateway.soap.message import SoapRequest, SoapResponse

log = logging.getLogger("gateway.notify")

ACTIVE, UNSUBSCRIBED = "active", "unsubscribed"
TIMEOUT = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


def subscription_filter(request: wire.SubscribeRequest) -> DocumentFilter:
    """The filter of a Subscribe's parameters. Raises DsubFault for a parameter not supported."""
    values: dict[str, list[str]] = {}
    for name, given in request.parameters.items():
        known = PARAMETERS.get(name)
        if known is None:
            raise wire.DsubFault("InvalidFilterFault", f"filter parameter {name} is not supported")
        values.setdefault(known, []).extend(given)
    return DocumentFilter.from_mapping(values)


class Broker:
    """Subscriptions in ``dsub_subscription``; ``address()``: this broker's public URL."""

    def __init__(
        self, engine: Engine, address: Callable[[], str], *, clock: Callable[[], datetime] = _now
    ) -> None:
        self.engine = engine
        self.address = address
        self.clock = clock

    # -- ITI-52 ---------------------------------------------------------------------------------
    def subscribe(self, request: SoapRequest, _ctx: Context) -> SoapResponse:
        """ITI-52 Subscribe: store the subscription, answer its reference (§3.52.4.1-2)."""
        now = self.clock()
        try:
            asked = wire.parse_subscribe(request.body, now=now)
            chosen = subscription_filter(asked)
        except wire.DsubFault as exc:
            raise _soap_fault(exc) from exc
        subscription_id = f"urn:uuid:{uuid.uuid4()}"
        with write_transaction(self.engine) as conn:
            conn.execute(
                insert(dsub_subscription).values(
                    id=subscription_id,
                    consumer_url=asked.consumer,
                    topic=asked.topic,
                    filter=json.dumps(chosen.as_dict(), sort_keys=True),
                    created_at=now.timestamp(),
                    terminates_at=asked.terminates_at.timestamp() if asked.terminates_at else None,
                    state=ACTIVE,
                )
            )
        log.info("DSUB subscription %s for %s (%s)", subscription_id, asked.consumer, asked.topic)
        body = wire.build_subscribe_response(
            address=self.address(),
            subscription_id=subscription_id,
            now=now,
            terminates_at=asked.terminates_at,
        )
        return SoapResponse(body=body)

    def unsubscribe(self, request: SoapRequest, _ctx: Context) -> SoapResponse:
        """ITI-52 Unsubscribe: end the subscription the reference names (§3.52.4.3-4)."""
        try:
            found = wire.subscription_id(request.headers, request.body)
            if found is None:
                raise wire.DsubFault(
                    "ResourceUnknownFault",
                    "no subscription reference parameter in the request headers",
                    namespace=wire.WSRF_R,
                )
            with write_transaction(self.engine) as conn:
                ended = conn.execute(
                    update(dsub_subscription)
                    .where(dsub_subscription.c.id == found, dsub_subscription.c.state == ACTIVE)
                    .values(state=UNSUBSCRIBED)
                ).rowcount
            if not ended:
                raise wire.DsubFault(
                    "ResourceUnknownFault", f"no active subscription {found}", namespace=wire.WSRF_R
                )
        except wire.DsubFault as exc:
            raise _soap_fault(exc) from exc
        log.info("DSUB subscription %s ended by Unsubscribe", found)
        return SoapResponse(body=wire.build_unsubscribe_response())

    # -- ITI-53 ---------------------------------------------------------------------------------
    def notifications(
        self, conn: Connection, entries: Sequence[DocumentEntry], _submission: Submission
    ) -> list[Message]:
        """One Notify per active, unexpired subscription that some registered entry matches."""
        table = dsub_subscription
        rows = conn.execute(
            select(table.c.id, table.c.consumer_url, table.c.topic, table.c.filter).where(
                table.c.state == ACTIVE,
                or_(table.c.terminates_at.is_(None), table.c.terminates_at > db_now()),
            )
        ).all()
        messages = []
        for row in rows:
            chosen = DocumentFilter.from_mapping(json.loads(row.filter))
            matching = [entry for entry in entries if chosen.matches(entry)]
            if not matching:
                continue
            envelope = wire.build_notify(
                consumer=row.consumer_url,
                broker=self.address(),
                subscription_id=row.id,
                topic=row.topic,
                entries=matching,
            )
            messages.append(
                Message(
                    kind="dsub",
                    target=row.consumer_url,
                    payload={"subscription": row.id, "envelope": envelope.decode()},
                )
            )
        return messages


def make_sender(session_factory: Callable[[], Any] | None = None) -> Callable[[Claimed], None]:
    """The outbox sender of kind ``dsub``: POST the stored ITI-53 envelope (SOAP 1.2 HTTP
    binding, one-way: 200 or 202 is delivered). Standard: ITI TF-2b §3.53.4.1."""

    def send(item: Claimed) -> None:
        headers = {
            "Content-Type": f'application/soap+xml; charset=UTF-8; action="{wire.NOTIFY_ACTION}"'
        }
        session = session_factory() if session_factory is not None else requests.Session()
        with session:
            answer = session.post(
                item.target,
                data=item.payload["envelope"].encode(),
                headers=headers,
                timeout=TIMEOUT,
            )
        if not 200 <= answer.status_code < 300:
            raise RuntimeError(f"HTTP {answer.status_code}")

    return send


def _soap_fault(exc: wire.DsubFault) -> fault.SoapFault:
    return fault.SoapFault(
        code=fault.SENDER,
        reason=exc.reason,
        subcodes=(f"{{{exc.namespace}}}{exc.name}",),
        detail=[wire.fault_detail(exc)],
    )
