"""The notify room's tables: one durable outbox, DSUB subscriptions and the XDR inbox.

- ``notify_outbox``: every message the gateway owes a peer (webhook POST, ITI-53 Notify, a
  forwarded instance, an XDR push), at least once, in ``id`` order per ``sequence_key``;
- ``dsub_subscription``: ITI-52 subscriptions (ITI TF-2b §3.52), until ``terminates_at``;
- ``xdr_inbox``: ITI-41 submissions received by the XDR Document Recipient (ITI TF-2b §3.41).

Created by migration ``0005_notify``.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text

from gateway.database.leases import OWNER

metadata = MetaData()

notify_outbox = Table(
    "notify_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # webhook | dsub | forward | xdr
    Column("target", Text, nullable=False),  # URL or AET@host:port
    Column("sequence_key", String(255)),  # items of one key go out one at a time, in id order
    Column("payload", Text, nullable=False),  # JSON
    Column("state", String(8), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("due_at", Float, nullable=False),  # not tried before (database clock)
    Column("claimed_by", String(OWNER)),  # the owner sending it now (lease-protected)
    Column("sent_at", Float),
    Column("last_error", Text),
    Index("ix_notify_outbox_due", "state", "due_at"),
    Index("ix_notify_outbox_sequence", "sequence_key", "id"),
)

dsub_subscription = Table(
    "dsub_subscription",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("consumer_url", Text, nullable=False),  # wsnt:ConsumerReference/wsa:Address
    Column("topic", String(64), nullable=False),  # full | minimal
    Column("filter", Text, nullable=False),  # JSON of DocumentFilter
    Column("created_at", Float, nullable=False),
    Column("terminates_at", Float),  # wsnt:TerminationTime (POSIX seconds); None: never
    Column("state", String(16), nullable=False),  # active | unsubscribed
)

xdr_inbox = Table(
    "xdr_inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", Float, nullable=False),
    Column("state", String(16), nullable=False),  # received | accepted | failed
    Column("patient_id", Text),
    Column("submission_set_unique_id", String(128)),
    Column("source_id", String(128)),
    Column("folder", Text, nullable=False),  # below data_dir/xdr: request.xml + documents
    Column("summary", Text, nullable=False),  # JSON: documents, studies, retrieve locations
    Column("accepted_at", Float),
    Column("error", Text),
)
