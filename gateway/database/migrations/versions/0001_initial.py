"""Initial registry schema: the tables and indexes of ``gateway/registry/schema.py``.

A revision is frozen: it spells out its tables instead of importing ``schema.py``, so later changes
to ``schema.py`` need a new revision (``tests/integration/test_gateway_database.py`` compares the
head with ``schema.metadata``).

Revision ID: 0001_initial
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

ID = 128
UID = 128
CX = 256
STATUS = 64
CODE = 256
TIME = 14


def _code_columns(*names: str) -> list[sa.Column]:
    columns = []
    for name in names:
        columns.append(sa.Column(f"{name}_code", sa.String(CODE)))
        columns.append(sa.Column(f"{name}_scheme", sa.String(CODE)))
    return columns


def upgrade() -> None:
    op.create_table(
        "document_entry",
        sa.Column("id", sa.String(ID), primary_key=True),
        sa.Column("logical_id", sa.String(ID), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("unique_id", sa.String(UID), nullable=False),
        sa.Column("patient_id", sa.String(CX), nullable=False),
        sa.Column("status", sa.String(STATUS), nullable=False),
        sa.Column("object_type", sa.String(ID), nullable=False),
        *_code_columns("class", "type", "format", "practice_setting", "healthcare_facility_type"),
        sa.Column("creation_time", sa.String(TIME)),
        sa.Column("service_start_time", sa.String(TIME)),
        sa.Column("service_stop_time", sa.String(TIME)),
        sa.Column("repository_unique_id", sa.String(UID)),
        sa.Column("hash", sa.String(64)),
        sa.Column("size", sa.BigInteger),
        sa.Column("mime_type", sa.String(CODE)),
        sa.Column("home_community_id", sa.String(UID)),
        sa.Column("submission_set_id", sa.String(ID), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_de_patient_status", "document_entry", ["patient_id", "status"])
    op.create_index("ix_de_unique_id", "document_entry", ["unique_id"])
    op.create_index("ix_de_logical_id", "document_entry", ["logical_id"])
    op.create_index("ix_de_patient_creation", "document_entry", ["patient_id", "creation_time"])

    op.create_table(
        "document_unique_id",
        sa.Column("unique_id", sa.String(UID), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger),
    )

    op.create_table(
        "submission_set",
        sa.Column("id", sa.String(ID), primary_key=True),
        sa.Column("unique_id", sa.String(UID), nullable=False),
        sa.Column("patient_id", sa.String(CX), nullable=False),
        sa.Column("status", sa.String(STATUS), nullable=False),
        sa.Column("source_id", sa.String(UID)),
        sa.Column("submission_time", sa.String(TIME)),
        sa.Column("content_type_code", sa.String(CODE)),
        sa.Column("content_type_scheme", sa.String(CODE)),
        sa.Column("home_community_id", sa.String(UID)),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("unique_id", name="uq_ss_unique_id"),
    )
    op.create_index("ix_ss_patient_status", "submission_set", ["patient_id", "status"])

    op.create_table(
        "folder",
        sa.Column("id", sa.String(ID), primary_key=True),
        sa.Column("logical_id", sa.String(ID), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("unique_id", sa.String(UID), nullable=False),
        sa.Column("patient_id", sa.String(CX), nullable=False),
        sa.Column("status", sa.String(STATUS), nullable=False),
        sa.Column("last_update_time", sa.String(TIME)),
        sa.Column("home_community_id", sa.String(UID)),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("unique_id", name="uq_folder_unique_id"),
    )
    op.create_index("ix_folder_patient_status", "folder", ["patient_id", "status"])

    op.create_table(
        "association",
        sa.Column("id", sa.String(ID), primary_key=True),
        sa.Column("association_type", sa.String(ID), nullable=False),
        sa.Column("source_id", sa.String(ID), nullable=False),
        sa.Column("target_id", sa.String(ID), nullable=False),
        sa.Column("status", sa.String(STATUS), nullable=False),
        sa.Column("submission_set_status", sa.String(16)),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_assoc_source", "association", ["source_id", "association_type"])
    op.create_index("ix_assoc_target", "association", ["target_id", "association_type"])

    op.create_table(
        "object_code",
        sa.Column("object_id", sa.String(ID), nullable=False),
        sa.Column("attribute", sa.String(64), nullable=False),
        sa.Column("code", sa.String(CODE), nullable=False),
        sa.Column("scheme", sa.String(CODE), nullable=False),
    )
    op.create_index("ix_code_lookup", "object_code", ["attribute", "code", "scheme", "object_id"])
    op.create_index("ix_code_object", "object_code", ["object_id", "attribute"])

    op.create_table(
        "object_author",
        sa.Column("object_id", sa.String(ID), nullable=False),
        sa.Column("person", sa.String(1024), nullable=False),
    )
    op.create_index("ix_author_object", "object_author", ["object_id"])

    op.create_table(
        "reference_id",
        sa.Column("object_id", sa.String(ID), nullable=False),
        sa.Column("value", sa.String(1024), nullable=False),
    )
    op.create_index("ix_refid_value", "reference_id", ["value"])
    op.create_index("ix_refid_object", "reference_id", ["object_id"])

    op.create_table(
        "patient",
        sa.Column("patient_id", sa.String(CX), primary_key=True),
        sa.Column("merged_into", sa.String(CX)),
        sa.Column("demographics", sa.Text),
        sa.Column("updated", sa.String(TIME), nullable=False),
    )
    op.create_index("ix_patient_merged_into", "patient", ["merged_into"])

    op.create_table(
        "patient_local_id",
        sa.Column("local_id", sa.String(CX), primary_key=True),
        sa.Column("patient_id", sa.String(CX), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "patient_local_id",
        "patient",
        "reference_id",
        "object_author",
        "object_code",
        "association",
        "folder",
        "submission_set",
        "document_unique_id",
        "document_entry",
    ):
        op.drop_table(table)
