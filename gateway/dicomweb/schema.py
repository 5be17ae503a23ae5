"""The QIDO-RS attribute table ``dicomweb_instance`` (SQLAlchemy Core), kept by ``catalog.py``.

Per stored instance, the attributes that PS3.18 Table 10.6.1-5 requires for matching and Tables
10.6.3-3..5 require in answers (patient, study, series and instance level). It lives in the
gateway database beside the imaging source's tables and is made by the gateway's migrations
(``gateway/database/migrations``, revision ``0003_dicomweb``): never by ``create_all``, so that
several processes starting at once on one database do not race to create it.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# column name -> (keyword, level, kind); kind says how values match (qido.py).
COLUMNS: dict[str, tuple[str, str, str]] = {
    "specific_character_set": ("SpecificCharacterSet", "study", "CS"),
    "patient_id": ("PatientID", "study", "LO"),
    "patient_name": ("PatientName", "study", "PN"),
    "patient_birth_date": ("PatientBirthDate", "study", "DA"),
    "patient_sex": ("PatientSex", "study", "CS"),
    "study_date": ("StudyDate", "study", "DA"),
    "study_time": ("StudyTime", "study", "TM"),
    "accession_number": ("AccessionNumber", "study", "SH"),
    "referring_physician_name": ("ReferringPhysicianName", "study", "PN"),
    "study_id": ("StudyID", "study", "SH"),
    "study_description": ("StudyDescription", "study", "LO"),
    "timezone_offset": ("TimezoneOffsetFromUTC", "study", "SH"),
    "modality": ("Modality", "series", "CS"),
    "series_number": ("SeriesNumber", "series", "IS"),
    "series_description": ("SeriesDescription", "series", "LO"),
    "pps_start_date": ("PerformedProcedureStepStartDate", "series", "DA"),
    "pps_start_time": ("PerformedProcedureStepStartTime", "series", "TM"),
    "instance_number": ("InstanceNumber", "instance", "IS"),
    "rows": ("Rows", "instance", "US"),
    "columns": ("Columns", "instance", "US"),
    "bits_allocated": ("BitsAllocated", "instance", "US"),
    "number_of_frames": ("NumberOfFrames", "instance", "IS"),
}
INTEGER_COLUMNS = frozenset(
    {"series_number", "instance_number", "rows", "columns", "bits_allocated", "number_of_frames"}
)
PN_COLUMNS = [name for name, (_kw, _lvl, kind) in COLUMNS.items() if kind == "PN"]

dicomweb_instance = Table(
    "dicomweb_instance",
    metadata,
    Column("sop_instance_uid", String(64), primary_key=True),
    Column("study_instance_uid", String(64), nullable=False),
    Column("series_instance_uid", String(64), nullable=False),
    Column("sop_class_uid", String(64), nullable=False),
    Column("received_at", Float, nullable=False),
    # RequestAttributesSequence (0040,0275) > ScheduledProcedureStepID / RequestedProcedureID,
    # backslash-joined with a leading and a trailing backslash (matched with LIKE).
    Column("sps_ids", Text),
    Column("rp_ids", Text),
    *[Column(name, Integer if name in INTEGER_COLUMNS else Text) for name in COLUMNS],
    # PN values case-folded in Python (SQLite's lower() folds ASCII only): PS3.4 C.2.2.2.1
    *[Column(f"{name}_folded", Text) for name in PN_COLUMNS],
    Index("ix_dicomweb_instance_series", "study_instance_uid", "series_instance_uid"),
    Index("ix_dicomweb_instance_received", "received_at"),
    Index("ix_dicomweb_instance_patient", "patient_id"),
    Index("ix_dicomweb_instance_date", "study_date"),
)
