"""Issue 14, acceptance 5: zeep, given only a running gateway's ``?wsdl`` URL, calls FindDocuments
(ITI-18) and Retrieve Document Set (ITI-43) with typed arguments; and the ``?xsd=`` guards.

zeep is used as any third party would: ``zeep.Client(url)`` with its default transport, nothing of
the gateway's client code. The registry and repository run in one gateway on 127.0.0.1 with
ephemeral ports; the patient is fed over MLLP (ITI-8) and the document provided by ITI-41 as a raw
MTOM package, so only the two calls under test go through zeep.

MTOM: the repository answers ITI-43 as an MTOM/XOP package even to a plain SOAP request (ITI TF-2
Appendix V). zeep 4.3 reads it by itself: ``SoapBinding.process_reply`` decodes the
multipart/related answer into a MessagePack and puts each part's bytes in place of its
xop:Include before the typed parse, so ``Document`` comes back as bytes. One known flaw of zeep:
it strips leading and trailing CR/LF from a binary part. This test runs zeep as released, as a
user would (the gateway's own client does not use zeep), with document bytes that neither start
nor end with CR or LF; the exact bytes then come back.
"""

from __future__ import annotations

import pytest
import zeep
from lxml import etree

from gateway.app import Gateway
from gateway.hl7.mllp import send_messages
from gateway.metadata import vocabulary as v
from gateway.soap import transactions as tx
from tests.factories import PATIENT_ID, REPOSITORY_UNIQUE_ID
from tests.integration.repository.repo_support import provide_body, status_of, submission_with
from tests.support import rawsoap
from tests.support.serving import serving

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"  # ITI TF-2 §3.18.4.1.2.3.7.1
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
CONTENT = b"%PDF-1.4 issue 14\r\n\x00\x01\xfe\xff binary middle %%EOF"


def _feed_patient(gateway: Gateway) -> None:
    pid, _, rest = PATIENT_ID.partition("^^^")
    adt = (
        "MSH|^~\\&|ADT|HOSP|XDS|REGION|20240102101500||ADT^A01^ADT_A01|WSDL-1|P|2.3.1\r"
        "EVN|A01|20240102101500\r"
        f"PID|||{pid}^^^{rest}||Typed^Client||19700101|O\r"
        "PV1||O\r"
    ).encode()
    address = gateway.mllp_address
    assert address is not None
    [ack] = send_messages(*address, [adt])
    assert b"MSA|AA|WSDL-1" in ack


@pytest.fixture
def published(gateway: Gateway) -> str:
    """One registered document (its uniqueId), provided through ITI-41 as a raw MTOM package."""
    _feed_patient(gateway)
    submission = submission_with([CONTENT], prefix="14", mime_type="application/pdf")
    body, [attachment] = provide_body(submission, [CONTENT])
    root = rawsoap.envelope(etree.tostring(body).decode(), action=tx.ITI_41.action)
    content_type, data = rawsoap.mtom_body(root, [(attachment.content_id, CONTENT)])
    host, port = gateway.http.address
    answer = rawsoap.post(host, port, tx.REPOSITORY_PATH, data, content_type=content_type)
    assert answer.status == 200
    assert status_of(answer.envelope().find(f"{{{rawsoap.SOAP12}}}Body")[0]) == "Success"
    [entry] = submission.document_entries
    assert entry.unique_id
    return entry.unique_id


def _client(gateway: Gateway, path: str) -> zeep.Client:
    return zeep.Client(f"{gateway.base_url}{path}?wsdl")


def _unique_id(extrinsic: object) -> str:
    identifiers = getattr(extrinsic, "ExternalIdentifier")  # noqa: B009 (zeep object)
    [unique] = [i for i in identifiers if i.identificationScheme == v.DOCUMENT_ENTRY_UNIQUE_ID]
    return str(unique.value)


def test_find_documents_and_retrieve_with_typed_zeep_calls(
    gateway: Gateway, published: str
) -> None:
    registry = _client(gateway, tx.REGISTRY_PATH)
    answer = registry.service.DocumentRegistry_RegistryStoredQuery(
        ResponseOption={"returnType": "LeafClass", "returnComposedObjects": True},
        AdhocQuery={
            "id": FIND_DOCUMENTS,
            "Slot": [
                {"name": "$XDSDocumentEntryPatientId", "ValueList": {"Value": [f"'{PATIENT_ID}'"]}},
                {"name": "$XDSDocumentEntryStatus", "ValueList": {"Value": [f"('{APPROVED}')"]}},
            ],
        },
    )
    assert answer.status == SUCCESS
    objects = answer.RegistryObjectList._value_1
    entries = [o["ExtrinsicObject"] for o in objects if o["ExtrinsicObject"] is not None]
    assert [_unique_id(e) for e in entries] == [published]
    [entry] = entries
    assert entry.mimeType == "application/pdf"
    repository_uid = next(s for s in entry.Slot if s.name == "repositoryUniqueId")
    assert repository_uid.ValueList.Value == [REPOSITORY_UNIQUE_ID]

    repository = _client(gateway, tx.REPOSITORY_PATH)
    request = {"RepositoryUniqueId": REPOSITORY_UNIQUE_ID, "DocumentUniqueId": published}
    retrieved = repository.service.DocumentRepository_RetrieveDocumentSet(DocumentRequest=[request])
    assert retrieved.RegistryResponse.status == SUCCESS
    [document] = retrieved.DocumentResponse
    assert document.DocumentUniqueId == published
    assert document.mimeType == "application/pdf"
    assert document.Document == CONTENT


@pytest.mark.parametrize("path", sorted(tx.ENDPOINTS))
def test_every_endpoint_wsdl_is_typed(request: pytest.FixtureRequest, path: str) -> None:
    client = _client(serving(request, path), path)
    for transaction in tx.ENDPOINTS[path]:
        signature = client.get_element(transaction.request_qname).type.signature()
        assert "ANY" not in signature, signature


def _get(gateway: Gateway, target: str) -> tuple[int, bytes]:
    response = rawsoap.get(*gateway.http.address, target)
    return response.status, response.body


@pytest.mark.parametrize(
    "name",
    ["nope.xsd", "../pyproject.toml", "..%2F..%2Fpyproject.toml", "%2Fetc%2Fpasswd", "", "rim"],
)
def test_unknown_or_traversing_schema_name_is_404(gateway: Gateway, name: str) -> None:
    status, body = _get(gateway, f"{tx.REGISTRY_PATH}?xsd={name}")
    assert status == 404
    assert b"<" not in body


def test_known_schema_is_served_with_relative_imports(gateway: Gateway) -> None:
    status, body = _get(gateway, f"{tx.REPOSITORY_PATH}?xsd=xds-b.xsd")
    assert status == 200
    assert b'targetNamespace="urn:ihe:iti:xds-b:2007"' in body
    assert b'schemaLocation="?xsd=rim.xsd"' in body
