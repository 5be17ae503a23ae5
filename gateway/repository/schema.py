"""The repository's table in the gateway database (SQLAlchemy Core): its document index.

``repository_document``: one row per DocumentEntry uniqueId the repository holds or is storing,
with the storage key of its bytes, their SHA-1 and size, the mimeType recorded from the metadata,
the row's ``state`` (see ``gateway.repository.index``), the ``owner`` (process lease) that
reserved or last took over the row, and when it was reserved (``created``, POSIX seconds).

Both the uniqueId (primary key) and the storage key are unique: reserving either is exclusive,
which makes a reservation the lock under which a file may be placed or deleted.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()

PENDING = "pending"
UNRESOLVED = "unresolved"
CONFIRMED = "confirmed"
STATES = (PENDING, UNRESOLVED, CONFIRMED)

repository_document = Table(
    "repository_document",
    metadata,
    Column("unique_id", String(256), primary_key=True),
    Column("storage_key", String(64), nullable=False),
    Column("hash", String(40), nullable=False),  # SHA-1, lower-case hex (ITI TF-3 §4.2.3.2.11)
    Column("size", BigInteger, nullable=False),
    Column("mime_type", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("owner", String(128), nullable=False),  # gateway_process.owner (no foreign key:
    # rows outlive their process's lease row by design)
    Column("created", Float, nullable=False),
    CheckConstraint(
        "state IN ('pending', 'unresolved', 'confirmed')", name="ck_repository_document_state"
    ),
    UniqueConstraint("storage_key", name="uq_repository_document_storage_key"),
    Index("ix_repository_document_state", "state", "created"),
)
