"""Registry operations (XDS Metadata Update): a Folder's uniqueId is shared by its versions.

ITI-57 Update Document Set registers a new version of a Folder with the logicalID and the
uniqueId of the previous one (ITI TF-2b §3.57.4.1.3; ITI TF-3 §4.2.3.4 uniqueId, logicalID,
version). ``uq_folder_unique_id`` becomes unique per (uniqueId, version), which still makes two
ITI-42 registrations of one Folder uniqueId collide (both are version 1). Versions are looked up
by logicalID: ``ix_folder_logical_id``. (DocumentEntry has had its logicalID index since 0001.)

A revision is frozen: it spells out what it changes instead of importing the rooms' schema.

Revision ID: 0006_registry_operations
Revises: 0005_notify
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision: str = "0006_registry_operations"
down_revision: str | None = "0005_notify"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("folder") as batch:
        batch.drop_constraint("uq_folder_unique_id", type_="unique")
        batch.create_unique_constraint("uq_folder_unique_id_version", ["unique_id", "version"])
    op.create_index("ix_folder_logical_id", "folder", ["logical_id"])


def downgrade() -> None:
    op.drop_index("ix_folder_logical_id", table_name="folder")
    with op.batch_alter_table("folder") as batch:
        batch.drop_constraint("uq_folder_unique_id_version", type_="unique")
        batch.create_unique_constraint("uq_folder_unique_id", ["unique_id"])
