"""Coded values of audit messages: event ids, event types, roles and object id types.

Every code is written ``EV(code, codeSystemName, originalText)`` as the IHE and DICOM tables
write them. Sources: DICOM PS3.16 CID 400 (Audit Event ID), CID 401 (Audit Event Type Code),
CID 402 (Audit Active Participant Role ID Code), CID 403 (Security Alert Type Code), CID 404
(Audit Participant Object ID Type Code); RFC 3881 §5.5.4 (Participant Object ID Type Code);
ITI TF-2 §3.18.5.1, §3.41.5.1, §3.42.5.1, §3.43.5.1, §3.8.5.1 (IHE Transactions event types and
the XDS submission set object); RAD TF-3 §4.68, §4.69 (imaging transactions).
"""

from __future__ import annotations

from typing import NamedTuple


class Code(NamedTuple):
    """A coded value: csd-code, codeSystemName, originalText (DICOM PS3.15 A.5.1)."""

    code: str
    system: str
    text: str


# -- EventID (DICOM PS3.16 CID 400; PS3.15 A.5.3) ---------------------------------------------
APPLICATION_ACTIVITY = Code("110100", "DCM", "Application Activity")  # A.5.3.1
BEGIN_TRANSFERRING = Code("110102", "DCM", "Begin Transferring DICOM Instances")  # A.5.3.3
INSTANCES_TRANSFERRED = Code("110104", "DCM", "DICOM Instances Transferred")  # A.5.3.7
EXPORT = Code("110106", "DCM", "Export")  # A.5.3.4 Data Export
IMPORT = Code("110107", "DCM", "Import")  # A.5.3.5 Data Import
PATIENT_RECORD = Code("110110", "DCM", "Patient Record")  # A.5.3.14
QUERY = Code("110112", "DCM", "Query")  # A.5.3.10
SECURITY_ALERT = Code("110113", "DCM", "Security Alert")  # A.5.3.11
USER_AUTHENTICATION = Code("110114", "DCM", "User Authentication")  # A.5.3.12

# -- EventTypeCode -------------------------------------------------------------------------------
APPLICATION_START = Code("110120", "DCM", "Application Start")  # CID 401
APPLICATION_STOP = Code("110121", "DCM", "Application Stop")
LOGIN = Code("110122", "DCM", "Login")
LOGOUT = Code("110123", "DCM", "Logout")
NODE_AUTHENTICATION = Code("110126", "DCM", "Node Authentication")  # CID 403
USE_OF_RESTRICTED_FUNCTION = Code("110132", "DCM", "Use of Restricted Function")

_IHE = "IHE Transactions"
ITI_8 = Code("ITI-8", _IHE, "Patient Identity Feed")  # ITI TF-2 §3.8.5.1
ITI_18 = Code("ITI-18", _IHE, "Registry Stored Query")  # ITI TF-2 §3.18.5.1
ITI_41 = Code("ITI-41", _IHE, "Provide and Register Document Set-b")  # §3.41.5.1
ITI_42 = Code("ITI-42", _IHE, "Register Document Set-b")  # §3.42.5.1
ITI_43 = Code("ITI-43", _IHE, "Retrieve Document Set")  # §3.43.5.1
# MHD rev. 4.2.2 (AuditEvent profiles IHE.MHD.*.Audit.*: subtype urn:ihe:event-type-code) and
# PDQm (ITI-78), written as their DICOM audit message equivalents.
ITI_65 = Code("ITI-65", _IHE, "Provide Document Bundle")
ITI_66 = Code("ITI-66", _IHE, "Find Document Lists")
ITI_67 = Code("ITI-67", _IHE, "Find Document References")
ITI_68 = Code("ITI-68", _IHE, "Retrieve Document")
ITI_78 = Code("ITI-78", _IHE, "Mobile Patient Demographics Query")
RAD_68 = Code("RAD-68", _IHE, "Provide and Register Imaging Document Set - MTOM/XOP")
RAD_69 = Code("RAD-69", _IHE, "Retrieve Imaging Document Set")  # RAD TF-3 §4.69
ITI_38 = Code("ITI-38", _IHE, "Cross Gateway Query")  # ITI TF-2 §3.38.5.1
ITI_39 = Code("ITI-39", _IHE, "Cross Gateway Retrieve")  # ITI TF-2 §3.39.5.1
RAD_75 = Code("RAD-75", _IHE, "Cross Gateway Retrieve Imaging Document Set")  # RAD TF-3 §4.75
# Registry operations: XDS Metadata Update (ITI TF-2b §3.57.5.1), RMD (§3.62.5.1, §3.86.5.1).
ITI_57 = Code("ITI-57", _IHE, "Update Document Set")
ITI_62 = Code("ITI-62", _IHE, "Delete Document Set")
ITI_86 = Code("ITI-86", _IHE, "Remove Documents")
RAD_107 = Code("RAD-107", _IHE, "WADO-RS Retrieve")  # RAD TF-2 §4.107 (XDS-I.b WADO-RS)

# -- RoleIDCode (CID 402) -----------------------------------------------------------------------
ROLE_APPLICATION = Code("110150", "DCM", "Application")
ROLE_APPLICATION_LAUNCHER = Code("110151", "DCM", "Application Launcher")
ROLE_DESTINATION = Code("110152", "DCM", "Destination Role ID")
ROLE_SOURCE = Code("110153", "DCM", "Source Role ID")

# -- ParticipantObjectIDTypeCode ------------------------------------------------------------------
PATIENT_NUMBER = Code("2", "RFC-3881", "Patient Number")  # RFC 3881 §5.5.4
REPORT_NUMBER = Code("9", "RFC-3881", "Report Number")
STUDY_INSTANCE_UID = Code("110180", "DCM", "Study Instance UID")  # CID 404
NODE_ID = Code("110182", "DCM", "Node ID")
SOP_CLASS_UID = Code("110181", "DCM", "SOP Class UID")  # PS3.15 A.5.3.10 "SOP Queried"
SUBMISSION_SET = Code(
    "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd",
    "IHE XDS Metadata",
    "submission set classificationNode",
)  # ITI TF-2 §3.41.5.1.1 / §3.42.5.1.1

# AuditSourceTypeCode (PS3.15 A.5.2; RFC 3881 §5.4.3): 4 = application server process.
SOURCE_APPLICATION_SERVER = Code("4", "DCM", "Application Server")

# -- ParticipantObjectTypeCode / ...Role (RFC 3881 §5.5.1, §5.5.2) ------------------------------
TYPE_PERSON, TYPE_SYSTEM = "1", "2"
ROLE_PATIENT, ROLE_REPORT, ROLE_SECURITY_RESOURCE, ROLE_JOB, ROLE_QUERY = "1", "3", "13", "20", "24"

# -- EventOutcomeIndicator (PS3.15 A.5.1) ---------------------------------------------------------
SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE, MAJOR_FAILURE = "0", "4", "8", "12"

# -- EventActionCode ------------------------------------------------------------------------------
CREATE, READ, UPDATE, DELETE, EXECUTE = "C", "R", "U", "D", "E"

# ParticipantObjectDetail types of the XDS audit tables (ITI TF-2 §3.43.5.1, §3.18.5.1).
DETAIL_REPOSITORY = "Repository Unique Id"
DETAIL_HOME_COMMUNITY = "ihe:homeCommunityID"
DETAIL_QUERY_ENCODING = "QueryEncoding"
DETAIL_MSH10 = "MSH-10"
DETAIL_ALERT = "Alert Description"
