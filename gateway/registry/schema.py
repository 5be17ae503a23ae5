"""The registry's tables (SQLAlchemy Core), designed for ITI-42 writes and ITI-18 stored queries.

Design:
- One table per XDS object kind, with the attributes stored queries filter on as indexed columns
  (patient id, status, times, single-valued codes), and the whole object as JSON of the model
  (``gateway.metadata.model``), so a LeafClass response rebuilds it exactly, extra slots included.
  Columns that change after registration (``status``, a Folder's ``last_update_time``) are the
  truth; the JSON holds what was submitted.
- Multi-valued attributes that queries match (every code attribute, author person, referenceIdList)
  live in narrow side tables keyed by the object id, so "AND across slots, OR within a slot"
  becomes ``EXISTS`` sub-queries that use an index.
- Uniqueness that the standard requires is enforced by the database (several gateway processes
  share one PostgreSQL): SubmissionSet and Folder uniqueIds are UNIQUE; a DocumentEntry uniqueId
  may be registered again only with the identical hash and size (ITI TF-3 Table 4.2.4.1-2,
  XDSNonIdenticalHash), which ``document_unique_id`` (one row per uniqueId) makes atomic.
- Times are stored twice: as sent (DTM) inside the JSON and as a sortable 14-digit string
  (``YYYYMMDDhhmmss``, missing parts padded with the lowest value) for range queries
  (ITI TF-2 §3.18.4.1.2.3.7: From inclusive, To exclusive).

Standards: ITI TF-3 §4.2.3 (attributes), ITI TF-2 §3.18.4.1.2.3.7 (stored-query parameters).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

ID = 128  # "urn:uuid:" + 36, with room for long symbolic ids
UID = 128  # OIDs and uniqueIds (ITI TF-3 §4.2.3.2.26: at most 128 characters)
CX = 256
STATUS = 64
CODE = 256
TIME = 14  # normalised DTM, see module docstring

document_entry = Table(
    "document_entry",
    metadata,
    Column("id", String(ID), primary_key=True),  # entryUUID (urn:uuid:...)
    Column("logical_id", String(ID), nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("unique_id", String(UID), nullable=False),
    Column("patient_id", String(CX), nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("object_type", String(ID), nullable=False),  # stable / on-demand
    Column("class_code", String(CODE)),
    Column("class_scheme", String(CODE)),
    Column("type_code", String(CODE)),
    Column("type_scheme", String(CODE)),
    Column("format_code", String(CODE)),
    Column("format_scheme", String(CODE)),
    Column("practice_setting_code", String(CODE)),
    Column("practice_setting_scheme", String(CODE)),
    Column("healthcare_facility_type_code", String(CODE)),
    Column("healthcare_facility_type_scheme", String(CODE)),
    Column("creation_time", String(TIME)),
    Column("service_start_time", String(TIME)),
    Column("service_stop_time", String(TIME)),
    Column("repository_unique_id", String(UID)),
    Column("hash", String(64)),
    Column("size", BigInteger),
    Column("mime_type", String(CODE)),
    Column("home_community_id", String(UID)),
    Column("submission_set_id", String(ID), nullable=False),  # the SubmissionSet that registered it
    Column("seq", BigInteger, nullable=False),  # time.time_ns() at registration: result order
    Column("body", Text, nullable=False),  # JSON of gateway.metadata.model.DocumentEntry
)
Index("ix_de_patient_status", document_entry.c.patient_id, document_entry.c.status)
Index("ix_de_unique_id", document_entry.c.unique_id)
Index("ix_de_logical_id", document_entry.c.logical_id)
Index("ix_de_patient_creation", document_entry.c.patient_id, document_entry.c.creation_time)

# One row per DocumentEntry uniqueId ever registered: the first registration fixes hash and size.
document_unique_id = Table(
    "document_unique_id",
    metadata,
    Column("unique_id", String(UID), primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("size", BigInteger),
)

submission_set = Table(
    "submission_set",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("unique_id", String(UID), nullable=False),
    Column("patient_id", String(CX), nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("source_id", String(UID)),
    Column("submission_time", String(TIME)),
    Column("content_type_code", String(CODE)),
    Column("content_type_scheme", String(CODE)),
    Column("home_community_id", String(UID)),
    Column("seq", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    UniqueConstraint("unique_id", name="uq_ss_unique_id"),
)
Index("ix_ss_patient_status", submission_set.c.patient_id, submission_set.c.status)

folder = Table(
    "folder",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("logical_id", String(ID), nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("unique_id", String(UID), nullable=False),
    Column("patient_id", String(CX), nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("last_update_time", String(TIME)),
    Column("home_community_id", String(UID)),
    Column("seq", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    # Versions of one Folder share its uniqueId (ITI-57, migration 0006_registry_operations).
    UniqueConstraint("unique_id", "version", name="uq_folder_unique_id_version"),
)
Index("ix_folder_patient_status", folder.c.patient_id, folder.c.status)
Index("ix_folder_logical_id", folder.c.logical_id)

association = Table(
    "association",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("association_type", String(ID), nullable=False),
    Column("source_id", String(ID), nullable=False),
    Column("target_id", String(ID), nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("submission_set_status", String(16)),  # Original / Reference (HasMember from an SS)
    Column("seq", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
)
Index("ix_assoc_source", association.c.source_id, association.c.association_type)
Index("ix_assoc_target", association.c.target_id, association.c.association_type)

# Every code of every object, single- and multi-valued alike, for code parameters of queries.
# attribute: the XDS attribute name, e.g. "classCode", "eventCodeList", "confidentialityCode",
# "codeList" (Folder), "contentTypeCode" (SubmissionSet), "formatCode", "typeCode",
# "practiceSettingCode", "healthcareFacilityTypeCode".
object_code = Table(
    "object_code",
    metadata,
    Column("object_id", String(ID), nullable=False),
    Column("attribute", String(64), nullable=False),
    Column("code", String(CODE), nullable=False),
    Column("scheme", String(CODE), nullable=False),
)
Index(
    "ix_code_lookup",
    object_code.c.attribute,
    object_code.c.code,
    object_code.c.scheme,
    object_code.c.object_id,
)
Index("ix_code_object", object_code.c.object_id, object_code.c.attribute)

# authorPerson values of DocumentEntries and SubmissionSets (LIKE matching in queries).
object_author = Table(
    "object_author",
    metadata,
    Column("object_id", String(ID), nullable=False),
    Column("person", String(1024), nullable=False),
)
Index("ix_author_object", object_author.c.object_id)

# DocumentEntry.referenceIdList values (FindDocumentsByReferenceId).
reference_id = Table(
    "reference_id",
    metadata,
    Column("object_id", String(ID), nullable=False),
    Column("value", String(1024), nullable=False),
)
Index("ix_refid_value", reference_id.c.value)
Index("ix_refid_object", reference_id.c.object_id)

# Patient identity (ITI-8): every affinity-domain id ever fed. A merged (subsumed) id points at
# the id that survived it (ITI TF-2 §3.8.4.2.3); queries for a surviving id include its merged ids.
patient = Table(
    "patient",
    metadata,
    Column("patient_id", String(CX), primary_key=True),
    Column("merged_into", String(CX)),
    Column("demographics", Text),  # JSON, for display only
    Column("updated", String(TIME), nullable=False),
)
Index("ix_patient_merged_into", patient.c.merged_into)

# Local (non-domain) identifiers seen with a domain id in the same PID-3 (ITI-8 cross-reference),
# used by the imaging source to map a DICOM Patient ID with a local issuer to the domain id.
patient_local_id = Table(
    "patient_local_id",
    metadata,
    Column("local_id", String(CX), primary_key=True),
    Column("patient_id", String(CX), nullable=False),
)
