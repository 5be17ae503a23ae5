"""Namespaces and XDS vocabulary UUIDs the NIST runner needs, declared once.

The runner is a black-box test tool: it deliberately does not import the gateway's own
``gateway.soap.ns`` so that a wrong constant there cannot hide itself in both client and server.

Standards: SOAP 1.2 Part 1 §5; WS-Addressing 1.0 Core/SOAP Binding; XOP 1.0; ebXML RegRep 2.1 and
3.0 (rim/rs/lcm/query); ITI TF-3 §4.2.5 (XDS metadata vocabulary: classification nodes and
external identifier schemes); ITI TF-3 §4.2.2 (association types); RAD TF-3 §4.69.
"""

from __future__ import annotations

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSA_ANONYMOUS = WSA + "/anonymous"
XOP = "http://www.w3.org/2004/08/xop/include"
XML = "http://www.w3.org/XML/1998/namespace"

RIM21 = "urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1"
RS21 = "urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"
IHERAD = "urn:ihe:rad:xdsi-b:2009"

# Response status values (ebRS 3.0 §2.1.3; PartialSuccess: ITI TF-3 §4.2.4.2).
STATUS_PREFIX = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:"
STATUS_URNS = {
    "Success": STATUS_PREFIX + "Success",
    "Failure": STATUS_PREFIX + "Failure",
    "PartialSuccess": "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess",
}
ERROR_SEVERITY = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"

# Object status (ebRIM 3.0 §2.5.1 StatusType) and association types (ITI TF-3 §4.2.2).
STATUS_TYPE = "urn:oasis:names:tc:ebxml-regrep:StatusType:"
EB_ASSOC = "urn:oasis:names:tc:ebxml-regrep:AssociationType:"
IHE_ASSOC = "urn:ihe:iti:2007:AssociationType:"
IHE_ASSOC_TYPES = frozenset(
    {
        "APND",
        "XFRM",
        "RPLC",
        "XFRM_RPLC",
        "signs",
        "IsSnapshotOf",
        "UpdateAvailabilityStatus",
        "SubmitAssociation",
    }
)

# ITI TF-3 §4.2.5: SubmissionSet/Folder classification nodes, external identifier schemes.
SUBMISSION_SET_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
FOLDER_NODE = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
FOL_PATIENT_ID = "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a"
FOL_UNIQUE_ID = "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a"

PATIENT_ID_SCHEMES = (DE_PATIENT_ID, SS_PATIENT_ID, FOL_PATIENT_ID)
UNIQUE_ID_SCHEMES = (DE_UNIQUE_ID, SS_UNIQUE_ID, FOL_UNIQUE_ID)

# Object types the NIST 2.1 -> 3.0 translator writes (ebRIM 3.0 canonical ObjectType scheme).
OBJECT_TYPE = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:"

# SOAP actions (ITI TF-2 §3.18.5, §3.41.5, §3.42.5, §3.43.5; RAD TF-3 §4.69.4). A response's
# action is the request's with "Response" appended, except RAD-69 (ITI-43's response action).
ACTION_ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ACTION_ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ACTION_ITI42 = "urn:ihe:iti:2007:RegisterDocumentSet-b"
ACTION_ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
ACTION_RAD69 = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
# XCA / XCA-I (ITI TF-2 §3.38, §3.39; RAD TF-3 §4.75; the NIST toolkit's TransactionType table).
ACTION_ITI38 = "urn:ihe:iti:2007:CrossGatewayQuery"
ACTION_ITI39 = "urn:ihe:iti:2007:CrossGatewayRetrieve"
ACTION_RAD75 = "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSet"
# Metadata Update and RMD (ITI TF-2b §3.57, §3.62, §3.86).
ACTION_ITI57 = "urn:ihe:iti:2010:UpdateDocumentSet"
ACTION_ITI62 = "urn:ihe:iti:2010:DeleteDocumentSet"
ACTION_ITI86 = "urn:ihe:iti:2017:RemoveDocuments"


def q(namespace: str, local: str) -> str:
    """Clark notation ``{namespace}local``."""
    return f"{{{namespace}}}{local}"
