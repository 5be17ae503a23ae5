"""Every process's shared state in the gateway database: leases, repository index, imaging.

- ``gateway_process``: one lease row per running gateway process (``gateway.database.leases``).
- ``repository_document``: the repository's index, until now a SQLite file of its own
  (``<data_dir>/repository/index.sqlite``, imported at the next start).
- ``imaging_instance``, ``imaging_study``, ``imaging_pending_manifest``: the imaging source's
  tables, until now made by ``create_all``. A database that has them already is adopted: missing
  tables, columns (``imaging_study.claimed_by``, ``imaging_pending_manifest.owner``) and indexes
  are added, rows are kept.

A revision is frozen: it spells out its tables instead of importing the rooms' schema modules.

Revision ID: 0002_gateway_state
Revises: 0001_initial
Create Date: 2025-01-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_gateway_state"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None

UID = 64
CX = 256
PATH = 512
OWNER = 128


def _imaging_tables() -> dict[str, tuple[list[sa.Column], list[tuple[str, list[str]]]]]:
    """Columns and indexes of the imaging tables (fresh objects for every use)."""
    return {
        "imaging_instance": (
            [
                sa.Column("sop_instance_uid", sa.String(UID), primary_key=True),
                sa.Column("sop_class_uid", sa.String(UID), nullable=False),
                sa.Column("study_instance_uid", sa.String(UID), nullable=False),
                sa.Column("series_instance_uid", sa.String(UID), nullable=False),
                sa.Column("transfer_syntax_uid", sa.String(UID), nullable=False),
                sa.Column("patient_id", sa.String(CX)),
                sa.Column("modality", sa.String(16)),
                sa.Column("series_number", sa.Integer),
                sa.Column("instance_number", sa.Integer),
                sa.Column("path", sa.String(PATH), nullable=False),
                sa.Column("size", sa.BigInteger, nullable=False),
                sa.Column("received_at", sa.Float, nullable=False),
            ],
            [("ix_imaging_instance_study", ["study_instance_uid", "series_instance_uid"])],
        ),
        "imaging_study": (
            [
                sa.Column("study_instance_uid", sa.String(UID), primary_key=True),
                sa.Column("state", sa.String(16), nullable=False),
                sa.Column("first_received", sa.Float, nullable=False),
                sa.Column("last_received", sa.Float, nullable=False),
                sa.Column("claimed_at", sa.Float),
                sa.Column("claimed_by", sa.String(OWNER)),
                sa.Column("retry_after", sa.Float),
                sa.Column("published_at", sa.Float),
                sa.Column("publish_count", sa.Integer, nullable=False),
                sa.Column("manifest_sop_instance_uid", sa.String(UID)),
                sa.Column("manifest_series_instance_uid", sa.String(UID)),
                sa.Column("manifest_entry_uuid", sa.String(64)),
                sa.Column("patient_id", sa.String(CX)),
                sa.Column("held_reason", sa.Text),
                sa.Column("last_error", sa.Text),
            ],
            [("ix_imaging_study_state", ["state", "last_received"])],
        ),
        "imaging_pending_manifest": (
            [
                sa.Column("study_instance_uid", sa.String(UID), primary_key=True),
                sa.Column("sop_instance_uid", sa.String(UID), nullable=False),
                sa.Column("series_instance_uid", sa.String(UID), nullable=False),
                sa.Column("entry_uuid", sa.String(64), nullable=False),
                sa.Column("patient_id", sa.String(CX), nullable=False),
                sa.Column("replaces", sa.String(64)),
                sa.Column("instance_count", sa.Integer, nullable=False),
                sa.Column("instances_digest", sa.String(64), nullable=False),
                sa.Column("content_id", sa.String(256), nullable=False),
                sa.Column("request", sa.LargeBinary, nullable=False),
                sa.Column("kos", sa.LargeBinary, nullable=False),
                sa.Column("created_at", sa.Float, nullable=False),
                sa.Column("owner", sa.String(OWNER)),
            ],
            [],
        ),
    }


def upgrade() -> None:
    op.create_table(
        "gateway_process",
        sa.Column("owner", sa.String(OWNER), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_table(
        "repository_document",
        sa.Column("unique_id", sa.String(256), primary_key=True),
        sa.Column("storage_key", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(40), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mime_type", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(OWNER), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'unresolved', 'confirmed')", name="ck_repository_document_state"
        ),
        sa.UniqueConstraint("storage_key", name="uq_repository_document_storage_key"),
    )
    op.create_index("ix_repository_document_state", "repository_document", ["state", "created"])
    _adopt_imaging_tables()


def _adopt_imaging_tables() -> None:
    """Create the imaging tables, or complete those an earlier version made by create_all."""
    inspector = sa.inspect(op.get_bind())
    for name, (columns, indexes) in _imaging_tables().items():
        if not inspector.has_table(name):
            op.create_table(name, *columns)
            for index, on in indexes:
                op.create_index(index, name, on)
            continue
        present = {column["name"] for column in inspector.get_columns(name)}
        for column in columns:
            if column.name not in present:
                op.add_column(name, column)  # the new ones are nullable: rows are kept
        known = {index["name"] for index in inspector.get_indexes(name)}
        for index, on in indexes:
            if index not in known:
                op.create_index(index, name, on)


def downgrade() -> None:
    # The imaging tables stay (earlier versions made them with create_all): only what this
    # revision added to them goes.
    with op.batch_alter_table("imaging_pending_manifest") as batch:
        batch.drop_column("owner")
    with op.batch_alter_table("imaging_study") as batch:
        batch.drop_column("claimed_by")
    op.drop_index("ix_repository_document_state", table_name="repository_document")
    op.drop_table("repository_document")
    op.drop_table("gateway_process")
