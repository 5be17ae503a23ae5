"""DICOMweb's QIDO-RS attribute table and the index it follows the imaging source by.

- ``dicomweb_instance``: per stored instance, the attributes QIDO-RS matches and answers
  (PS3.18 Table 10.6.1-5, Tables 10.6.3-3..5), kept by ``gateway.dicomweb.catalog``.
- ``ix_imaging_instance_received`` on ``imaging_instance.received_at``: "what changed since t"
  (``gateway.imaging.catalog.changed_since``).

Both are created only where missing: development builds of the DICOMweb service made them with
``create_all`` before this revision existed.

A revision is frozen: it spells out its tables instead of importing the rooms' schema modules.

Revision ID: 0003_dicomweb
Revises: 0002_gateway_state
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_dicomweb"
down_revision: str | None = "0002_gateway_state"
branch_labels: str | None = None
depends_on: str | None = None

UID = 64
# The attribute columns: name -> integer (else text), in the order of the table.
_ATTRIBUTES = {
    "specific_character_set": False,
    "patient_id": False,
    "patient_name": False,
    "patient_birth_date": False,
    "patient_sex": False,
    "study_date": False,
    "study_time": False,
    "accession_number": False,
    "referring_physician_name": False,
    "study_id": False,
    "study_description": False,
    "timezone_offset": False,
    "modality": False,
    "series_number": True,
    "series_description": False,
    "pps_start_date": False,
    "pps_start_time": False,
    "instance_number": True,
    "rows": True,
    "columns": True,
    "bits_allocated": True,
    "number_of_frames": True,
}
_FOLDED = ("patient_name", "referring_physician_name")  # PN values case-folded in Python
_INDEXES = (
    ("ix_dicomweb_instance_series", ["study_instance_uid", "series_instance_uid"]),
    ("ix_dicomweb_instance_received", ["received_at"]),
    ("ix_dicomweb_instance_patient", ["patient_id"]),
    ("ix_dicomweb_instance_date", ["study_date"]),
)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    known = {index["name"] for index in inspector.get_indexes("imaging_instance")}
    if "ix_imaging_instance_received" not in known:
        op.create_index("ix_imaging_instance_received", "imaging_instance", ["received_at"])
    if inspector.has_table("dicomweb_instance"):
        return  # made by create_all in a development build: the same table
    op.create_table(
        "dicomweb_instance",
        sa.Column("sop_instance_uid", sa.String(UID), primary_key=True),
        sa.Column("study_instance_uid", sa.String(UID), nullable=False),
        sa.Column("series_instance_uid", sa.String(UID), nullable=False),
        sa.Column("sop_class_uid", sa.String(UID), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("sps_ids", sa.Text),
        sa.Column("rp_ids", sa.Text),
        *[sa.Column(name, sa.Integer if whole else sa.Text) for name, whole in _ATTRIBUTES.items()],
        *[sa.Column(f"{name}_folded", sa.Text) for name in _FOLDED],
    )
    for index, on in _INDEXES:
        op.create_index(index, "dicomweb_instance", on)


def downgrade() -> None:
    op.drop_table("dicomweb_instance")
    op.drop_index("ix_imaging_instance_received", table_name="imaging_instance")
