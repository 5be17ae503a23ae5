"""The exchange browser's tables: recent transactions and login attempts (``gateway.ui``).

- ``ui_transaction``: one row per transaction a gateway process answered (time, transaction,
  peer, outcome, HTTP status, duration), written by every worker, read by the dashboard of any
  of them; the oldest rows are pruned by the writers (``gateway.ui.journal``).
- ``ui_login_attempt``: failed logins (time, account name, remote address), so the login rate
  limit holds across worker processes (``gateway.ui.sessions``).

A revision is frozen: it spells out its tables instead of importing the room's schema module.

Revision ID: 0004_ui
Revises: 0003_dicomweb
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_ui"
down_revision: str | None = "0003_dicomweb"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "ui_transaction",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("transaction", sa.String(64), nullable=True),
        sa.Column("path", sa.String(256), nullable=False),
        sa.Column("peer", sa.String(256), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("error_codes", sa.String(512), nullable=True),
    )
    op.create_index("ix_ui_transaction_at", "ui_transaction", ["at"])
    op.create_table(
        "ui_login_attempt",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("remote", sa.String(64), nullable=True),
    )
    op.create_index("ix_ui_login_attempt_at", "ui_login_attempt", ["at"])


def downgrade() -> None:
    op.drop_index("ix_ui_login_attempt_at", table_name="ui_login_attempt")
    op.drop_table("ui_login_attempt")
    op.drop_index("ix_ui_transaction_at", table_name="ui_transaction")
    op.drop_table("ui_transaction")
