"""The notify room's narrow interface to the other actors: two hooks and a life cycle.

The assembly (``gateway.app``) hands :meth:`Notifier.registered` to the registry (called for
every successful ITI-42 registration, inside its transaction when both share the gateway
database, so a registration and its notifications commit together) and
:meth:`Notifier.instance_stored` to the imaging source (called for every instance stored by
C-STORE or STOW-RS). Both only write outbox rows; the :class:`~gateway.notify.outbox.Dispatcher`
sends them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from gateway.database.engine import write_transaction
from gateway.metadata.model import DocumentEntry, Submission
from gateway.notify import forward as fwd
from gateway.notify import webhook
from gateway.notify.filters import DocumentFilter
from gateway.notify.outbox import Dispatcher, Message, Outbox, Sender, enqueue

log = logging.getLogger("gateway.notify")

STUDY_UID_ID_TYPE = "urn:ihe:iti:xds:2016:studyInstanceUID"  # referenceIdList (ITI TF-3 4.2.3.2.28)


@dataclass(frozen=True, slots=True)
class Webhook:
    """One ``[[notify.webhook]]``."""

    url: str
    secret: str = ""
    filter: DocumentFilter = field(default_factory=DocumentFilter)


# Extra notification sources (DSUB): (connection, document entries, submission) -> messages
Source = Callable[[Connection, Sequence[DocumentEntry], Submission], list[Message]]


def study_uids(entry: DocumentEntry) -> list[str]:
    """The Study Instance UIDs an entry's referenceIdList names (CXi with the study id type)."""
    found = []
    for ref in entry.reference_id_list:
        parts = ref.split("^")
        if len(parts) >= 5 and parts[4] == STUDY_UID_ID_TYPE and parts[0]:
            found.append(parts[0])
    return found


class Notifier:
    """Outbox, dispatcher and the rules of one process."""

    def __init__(
        self,
        engine: Engine,
        owner: str,
        *,
        webhooks: Sequence[Webhook] = (),
        forward_rules: Sequence[fwd.ForwardRule] = (),
        source: str = "urn:xdsi-gateway",
        links: Callable[[str], Mapping[str, Any]] = lambda _uid: {},
        poll_seconds: float = 1.0,
        parallel: int = 4,
        retry_initial_seconds: float = 2.0,
        retry_max_seconds: float = 300.0,
        session_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.engine = engine
        self.outbox = Outbox(
            engine,
            owner,
            retry_initial_seconds=retry_initial_seconds,
            retry_max_seconds=retry_max_seconds,
        )
        self.webhooks = list(webhooks)
        self.forward_rules = list(forward_rules)
        self.source = source
        self.links = links
        self.sources: list[Source] = []
        self.senders: dict[str, Sender] = {}
        self.dispatcher = Dispatcher(
            self.outbox, self.senders, poll_seconds=poll_seconds, parallel=parallel
        )
        secrets = {hook.url: hook.secret for hook in self.webhooks}
        self.senders["webhook"] = webhook.make_sender(
            lambda url: secrets.get(url, ""), session_factory
        )

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start sending (rows left by earlier runs included)."""
        self.dispatcher.senders.update(self.senders)
        self.dispatcher.start()

    def stop(self) -> None:
        """Stop sending; what is not sent stays pending for the next run or another process."""
        self.dispatcher.stop()

    def health(self) -> dict[str, Any]:
        """Outbox rows per kind and state, for ``/health`` (``/metrics`` reads them as well)."""
        try:
            return {"outbox": self.outbox.counts()}
        except Exception as exc:  # the database being away must not break /health
            log.debug("outbox not counted: %s", exc)
            return {}

    # -- hooks ----------------------------------------------------------------------------------
    def registered(self, conn: Connection | None, submission: Submission) -> None:
        """Hook: ITI-42 registered ``submission`` (every manifest published included).

        ``conn``: the registration's transaction when it is in the gateway database (the rows
        then commit with it), else None (the rows get a transaction of their own, after it).
        Standard: ITI TF-2b §3.53 (DSUB notifications are triggered by registrations).
        """
        entries = list(submission.document_entries)
        if not entries:
            return
        if conn is None:
            with write_transaction(self.engine) as own:
                self._enqueue_publication(own, entries, submission)
        else:
            self._enqueue_publication(conn, entries, submission)
        self.dispatcher.wake()

    def _enqueue_publication(
        self, conn: Connection, entries: Sequence[DocumentEntry], submission: Submission
    ) -> None:
        messages: list[Message] = []
        for entry in entries:
            for hook in self.webhooks:
                if hook.filter.matches(entry):
                    messages.append(self._webhook_message(hook, entry))
        for source in self.sources:
            messages.extend(source(conn, entries, submission))
        if messages:
            enqueue(conn, messages)
            log.info("%d notification(s) queued for a registration", len(messages))

    def _webhook_message(self, hook: Webhook, entry: DocumentEntry) -> Message:
        studies = study_uids(entry)
        data: dict[str, Any] = {
            "patientId": entry.patient_id,
            "documentUniqueId": entry.unique_id,
            "documentEntryUUID": entry.entry_uuid,
            "repositoryUniqueId": entry.repository_unique_id,
            "formatCode": entry.format_code.code if entry.format_code else None,
            "studyInstanceUIDs": studies,
            "retrieve": {uid: dict(self.links(uid)) for uid in studies},
        }
        body = webhook.cloud_event(
            event_id=str(uuid.uuid4()),
            source=self.source,
            subject=entry.unique_id or entry.entry_uuid,
            data=data,
        )
        return Message(kind="webhook", target=hook.url, payload={"body": body.decode()})

    def instance_stored(self, instance: fwd.StoredInstance) -> None:
        """Hook: the imaging source stored ``instance`` (C-STORE or STOW-RS): queue it for
        every forward rule it matches, in a transaction of its own."""
        if not self.forward_rules:
            return
        description: list[str] = []

        def read_description() -> str:
            if not description:
                try:
                    description.append(fwd.study_description(instance.path))
                except Exception:  # unreadable now: a pattern cannot match
                    description.append("")
            return description[0]

        messages = [
            rule.message(instance)
            for rule in self.forward_rules
            if rule.matches(instance, read_description)
        ]
        if messages:
            self.outbox.add(messages)
            self.dispatcher.wake()


def forward_rules(settings: Sequence[Any]) -> list[fwd.ForwardRule]:
    """``[[imaging_source.forward]]`` settings as rules."""
    return [
        fwd.ForwardRule(
            destination=s.destination,
            calling_ae_title=s.calling_ae_title,
            modality=s.modality,
            study_description=s.study_description,
            tls=s.tls,
        )
        for s in settings
    ]


def webhooks(settings: Sequence[Any]) -> list[Webhook]:
    """``[[notify.webhook]]`` settings as webhooks (filter values split at commas).

    Raises: ValueError naming an unknown filter key.
    """
    hooks = []
    for s in settings:
        values = {
            k: [v.strip() for v in str(raw).split(",") if v.strip()] for k, raw in s.filter.items()
        }
        hooks.append(
            Webhook(url=s.url, secret=s.secret, filter=DocumentFilter.from_mapping(values))
        )
    return hooks
