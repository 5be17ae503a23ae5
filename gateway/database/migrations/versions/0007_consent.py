"""Image rejection at the source (IHE RAD IOCM) and patient consent (IHE BPPC).

- ``imaging_rejection_note``: the Rejection Notes (KOS titled with a CID 7011 code) the imaging
  document source received; no manifest lists them (``gateway.imaging.rejection``).
- ``imaging_rejected_instance``: every instance a note rejected, with when (the DICOMweb catalog
  forgets them by ``rejected_at``).

Patient consent needs no table: its state is the patient's registered BPPC documents
(``gateway.consent``).

A revision is frozen: it spells out its tables instead of importing the rooms' schema modules.

Revision ID: 0007_consent
Revises: 0006_registry_operations
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007_consent"
down_revision: str | None = "0006_registry_operations"
branch_labels: str | None = None
depends_on: str | None = None

UID = 64


def upgrade() -> None:
    op.create_table(
        "imaging_rejection_note",
        sa.Column("sop_instance_uid", sa.String(UID), primary_key=True),
        sa.Column("study_instance_uid", sa.String(UID), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_imaging_rejection_note_study", "imaging_rejection_note", ["study_instance_uid"]
    )
    op.create_table(
        "imaging_rejected_instance",
        sa.Column("sop_instance_uid", sa.String(UID), primary_key=True),
        sa.Column("study_instance_uid", sa.String(UID), nullable=False),
        sa.Column("series_instance_uid", sa.String(UID), nullable=False),
        sa.Column("note_sop_instance_uid", sa.String(UID), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("rejected_at", sa.Float, nullable=False),
    )
    op.create_index("ix_imaging_rejected_instance_at", "imaging_rejected_instance", ["rejected_at"])


def downgrade() -> None:
    op.drop_table("imaging_rejected_instance")
    op.drop_table("imaging_rejection_note")
