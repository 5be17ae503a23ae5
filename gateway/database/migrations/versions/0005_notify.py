"""The notify room: one durable outbox, DSUB subscriptions, the XDR inbox.

- ``notify_outbox``: webhooks, ITI-53 Notify, DICOM forwarding and XDR pushes, claimed under
  process leases (``gateway.notify.outbox``);
- ``dsub_subscription``: ITI-52 subscriptions (ITI TF-2b §3.52);
- ``xdr_inbox``: submissions received at ``/xdr/recipient`` (ITI TF-2b §3.41).

A revision is frozen: it spells out its tables instead of importing the rooms' schema modules.

Revision ID: 0005_notify
Revises: 0004_ui
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_notify"
down_revision: str | None = "0004_ui"
branch_labels: str | None = None
depends_on: str | None = None

OWNER = 128


def upgrade() -> None:
    op.create_table(
        "notify_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("sequence_key", sa.String(255)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("due_at", sa.Float, nullable=False),
        sa.Column("claimed_by", sa.String(OWNER)),
        sa.Column("sent_at", sa.Float),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_notify_outbox_due", "notify_outbox", ["state", "due_at"])
    op.create_index("ix_notify_outbox_sequence", "notify_outbox", ["sequence_key", "id"])
    op.create_table(
        "dsub_subscription",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("consumer_url", sa.Text, nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("filter", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("terminates_at", sa.Float),
        sa.Column("state", sa.String(16), nullable=False),
    )
    op.create_table(
        "xdr_inbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("patient_id", sa.Text),
        sa.Column("submission_set_unique_id", sa.String(128)),
        sa.Column("source_id", sa.String(128)),
        sa.Column("folder", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("accepted_at", sa.Float),
        sa.Column("error", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("xdr_inbox")
    op.drop_table("dsub_subscription")
    op.drop_index("ix_notify_outbox_sequence", table_name="notify_outbox")
    op.drop_index("ix_notify_outbox_due", table_name="notify_outbox")
    op.drop_table("notify_outbox")
