"""The tables of IOCM rejection at the source (``gateway.imaging.rejection``), in a MetaData of
their own: made by the migration ``0007_consent``, never by the ``create_all`` of the imaging
tables that earlier versions ran.

- ``imaging_rejection_note``: the Rejection Notes received (a KOS titled with a CID 7011 code),
  which no manifest lists;
- ``imaging_rejected_instance``: every instance a note rejected, with when (DICOMweb's catalog
  forgets them by ``rejected_at``).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, MetaData, String, Table

from gateway.imaging.schema import UID

metadata = MetaData()

imaging_rejection_note = Table(
    "imaging_rejection_note",
    metadata,
    Column("sop_instance_uid", String(UID), primary_key=True),
    Column("study_instance_uid", String(UID), nullable=False),
    Column("reason", String(16), nullable=False),  # the CID 7011 code value
    Column("received_at", Float, nullable=False),
    Index("ix_imaging_rejection_note_study", "study_instance_uid"),
)

imaging_rejected_instance = Table(
    "imaging_rejected_instance",
    metadata,
    Column("sop_instance_uid", String(UID), primary_key=True),
    Column("study_instance_uid", String(UID), nullable=False),
    Column("series_instance_uid", String(UID), nullable=False),
    Column("note_sop_instance_uid", String(UID), nullable=False),
    Column("reason", String(16), nullable=False),
    Column("rejected_at", Float, nullable=False),
    Index("ix_imaging_rejected_instance_at", "rejected_at"),
)
