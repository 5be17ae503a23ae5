"""The imaging document source's own tables (SQLAlchemy Core): received instances and studies.

The tables live in their own ``MetaData`` so they can share the registry's database (the default)
or use another one; every name starts with ``imaging_`` so nothing collides.

- ``imaging_instance``: one row per SOP Instance held on disk (the C-STORE or folder import that
  brought it, as received): the UIDs a manifest and a RAD-69 lookup need, the transfer syntax it
  is stored in, and the file path relative to the storage root.
- ``imaging_study``: the publication state of each study. ``state`` is one of :data:`STATES`:
  ``receiving`` (changes not yet published), ``publishing`` (claimed by one worker),
  ``published`` and ``held`` (the patient has no affinity-domain identifier yet). The manifest
  columns remember the last published KOS so that a later one replaces it (RPLC, ITI TF-3
  §4.2.2.2; RAD TF-3 §4.68.4.1.1 "previously submitted manifest changes").

- ``imaging_pending_manifest``: a manifest that was sent but whose registration is not settled
  (the repository's answer was lost, or it could not reach its registry). It holds the exact
  ITI-41 body and KOS bytes so the next attempt sends the same submission again (same uniqueIds:
  registered at most once) instead of a new manifest that would double the study.

A claim (``imaging_study.claimed_by``) and a pending manifest (``imaging_pending_manifest.owner``)
name the process that holds them; another process takes them over only once that process's
lease is gone (``gateway.database.leases``). The tables are made by the gateway's migrations
(``gateway/database/migrations``, revisions ``0002_gateway_state`` and, for the ``received_at``
index, ``0003_dicomweb``).

Times are POSIX seconds (``time.time()``) in double precision: only compared with each other.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

UID = 64  # DICOM PS3.5 §9.1: a UID is at most 64 characters
CX = 256
PATH = 512

RECEIVING = "receiving"
PUBLISHING = "publishing"
PUBLISHED = "published"
HELD = "held"
STATES = (RECEIVING, PUBLISHING, PUBLISHED, HELD)

imaging_instance = Table(
    "imaging_instance",
    metadata,
    Column("sop_instance_uid", String(UID), primary_key=True),
    Column("sop_class_uid", String(UID), nullable=False),
    Column("study_instance_uid", String(UID), nullable=False),
    Column("series_instance_uid", String(UID), nullable=False),
    Column("transfer_syntax_uid", String(UID), nullable=False),
    Column("patient_id", String(CX)),  # (0010,0020) as received
    Column("modality", String(16)),  # (0008,0060)
    Column("series_number", Integer),
    Column("instance_number", Integer),
    Column("path", String(PATH), nullable=False),  # relative to the storage root
    Column("size", BigInteger, nullable=False),
    Column("received_at", Float, nullable=False),
    Index("ix_imaging_instance_study", "study_instance_uid", "series_instance_uid"),
    # "what changed since t" for services that follow the index (gateway.imaging.catalog)
    Index("ix_imaging_instance_received", "received_at"),
)

imaging_study = Table(
    "imaging_study",
    metadata,
    Column("study_instance_uid", String(UID), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("first_received", Float, nullable=False),
    Column("last_received", Float, nullable=False),
    Column("claimed_at", Float),  # when a worker took it (state publishing)
    Column("claimed_by", String(128)),  # the lease owner of that worker (gateway_process.owner)
    Column("retry_after", Float),  # after a failed publication
    Column("published_at", Float),
    Column("publish_count", Integer, nullable=False, default=0),
    Column("manifest_sop_instance_uid", String(UID)),  # = DocumentEntry.uniqueId
    Column("manifest_series_instance_uid", String(UID)),
    Column("manifest_entry_uuid", String(64)),  # DocumentEntry.entryUUID (RPLC target)
    Column("patient_id", String(CX)),  # affinity-domain id used for the last manifest
    Column("held_reason", Text),
    Column("last_error", Text),
    Index("ix_imaging_study_state", "state", "last_received"),
)

imaging_pending_manifest = Table(
    "imaging_pending_manifest",
    metadata,
    Column("study_instance_uid", String(UID), primary_key=True),
    Column("sop_instance_uid", String(UID), nullable=False),  # = DocumentEntry.uniqueId
    Column("series_instance_uid", String(UID), nullable=False),
    Column("entry_uuid", String(64), nullable=False),
    Column("patient_id", String(CX), nullable=False),
    Column("replaces", String(64)),  # entryUUID the manifest replaces (RPLC), if any
    Column("instance_count", Integer, nullable=False),
    Column("instances_digest", String(64), nullable=False),  # what the manifest lists
    Column("content_id", String(256), nullable=False),  # of the KOS's MTOM part
    Column("request", LargeBinary, nullable=False),  # the ITI-41 body as sent (XML)
    Column("kos", LargeBinary, nullable=False),  # the KOS, DICOM Part 10
    Column("created_at", Float, nullable=False),
    Column("owner", String(128)),  # the lease owner sending it (gateway_process.owner)
)
