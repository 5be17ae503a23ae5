"""ITI-42 over real sockets: the gateway's registry endpoint with the ITI-42 handler bound (and the
ITI-18 handler, to read back what was registered), a raw SOAP 1.2 client, RegistryResponse checked
against rs.xsd. Standard: ITI TF-2 §3.42.4.2 (response), ITI TF-2 Appendix V (SOAP, WS-A)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.metadata import ebrim
from gateway.metadata import vocabulary as v
from gateway.registry import iti42
from gateway.registry.database import Database
from gateway.registry.iti18 import StoredQueries
from gateway.registry.iti42 import Registry
from gateway.soap import ns
from gateway.soap.dispatch import SoapApplication
from gateway.soap.transactions import ENDPOINTS, ITI_18, REGISTRY_PATH
from tests.factories import PATIENT_ID
from tests.integration.registry import builders
from tests.support import rawsoap

SPEC = Path(__file__).resolve().parents[3].parent / "shared" / "conformance" / "spec"
RS_XSD = SPEC / "iti" / "schema" / "ebRS" / "rs.xsd"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"


@pytest.fixture
def gateway(registry: Registry, db: Database, tmp_path: Path) -> Iterator[Gateway]:
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(tmp_path / "gateway"),
            "XDSI_HTTP_PORT": "0",
            "XDSI_REGISTRY_ENABLED": "false",
            "XDSI_REPOSITORY_ENABLED": "false",
            "XDSI_IMAGING_SOURCE_ENABLED": "false",
            "XDSI_HL7_ENABLED": "false",
        }
    )

    def configure(app: SoapApplication) -> None:
        # What app.py does for an enabled registry (see the report).
        endpoint = app.endpoint(REGISTRY_PATH, ENDPOINTS[REGISTRY_PATH])
        iti42.bind(endpoint, registry)
        endpoint.bind(ITI_18, StoredQueries(db).handle)

    gw = Gateway(settings, configure=configure)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def _post(gateway: Gateway, body: etree._Element, action: str) -> rawsoap.RawResponse:
    message_id = f"urn:uuid:{uuid.uuid4()}"
    text = etree.tostring(body, encoding="unicode")
    envelope = rawsoap.envelope(text, action=action, message_id=message_id)
    response = rawsoap.post(*gateway.http.address, REGISTRY_PATH, envelope)
    assert response.status == 200
    assert response.header("RelatesTo") == message_id
    return response


def _register(gateway: Gateway, submission: object) -> etree._Element:
    body = ebrim.build_submit_objects_request(submission)  # type: ignore[arg-type]
    response = _post(gateway, body, iti42.ACTION)
    assert response.header("Action") == iti42.RESPONSE_ACTION
    body_path = f"{{{rawsoap.SOAP12}}}Body/{ns.qname(ns.RS, 'RegistryResponse')}"
    result = response.envelope().find(body_path)
    assert result is not None
    if RS_XSD.exists():
        etree.XMLSchema(etree.parse(str(RS_XSD))).assertValid(result)
    return result


def _errors(response: etree._Element) -> list[tuple[str, str]]:
    return [
        (e.get("errorCode", ""), e.get("severity", ""))
        for e in response.iter(ns.qname(ns.RS, "RegistryError"))
    ]


def test_register_success(gateway: Gateway) -> None:
    response = _register(gateway, builders.documents(2, folder=True))
    assert response.get("status") == SUCCESS
    assert response.find(ns.qname(ns.RS, "RegistryErrorList")) is None


def test_unknown_patient_failure(gateway: Gateway) -> None:
    submission = builders.fresh(
        builders.documents(1), patient_id="X^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
    )
    response = _register(gateway, submission)
    assert response.get("status") == FAILURE
    error_list = response.find(ns.qname(ns.RS, "RegistryErrorList"))
    assert error_list is not None
    assert error_list.get("highestSeverity").endswith(":Error")
    assert _errors(response) == [
        ("XDSUnknownPatientId", "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error")
    ]


def test_every_error_is_reported(gateway: Gateway) -> None:
    first = builders.documents(1)
    assert _register(gateway, first).get("status") == SUCCESS
    again = builders.documents(1, hash="f" * 40)
    again.submission_set.unique_id = first.submission_set.unique_id
    again.document_entries[0].unique_id = first.document_entries[0].unique_id
    codes = sorted(code for code, _ in _errors(_register(gateway, again)))
    assert codes == ["XDSDuplicateUniqueIdInRegistry", "XDSNonIdenticalHash"]


def test_request_without_object_list(gateway: Gateway) -> None:
    body = etree.Element(ns.qname(ns.LCM, "SubmitObjectsRequest"), nsmap={"lcm": ns.LCM})
    response = _post(gateway, body, iti42.ACTION)
    result = response.envelope().find(f".//{ns.qname(ns.RS, 'RegistryResponse')}")
    assert result is not None and result.get("status") == FAILURE
    assert [code for code, _ in _errors(result)] == ["XDSRegistryMetadataError"]


def _get_documents(gateway: Gateway, slot: str, value: str) -> list[object]:
    """ITI-18 GetDocuments (LeafClass) with one parameter, over SOAP."""
    query = etree.fromstring(
        f'<query:AdhocQueryRequest xmlns:query="{ns.QUERY}" xmlns:rim="{ns.RIM}">'
        '<query:ResponseOption returnType="LeafClass" returnComposedObjects="true"/>'
        f'<rim:AdhocQuery id="{GET_DOCUMENTS}"><rim:Slot name="{slot}"><rim:ValueList>'
        f"<rim:Value>('{value}')</rim:Value></rim:ValueList></rim:Slot></rim:AdhocQuery>"
        "</query:AdhocQueryRequest>"
    )
    response = _post(gateway, query, ITI_18.action)
    body = response.envelope().find(f".//{ns.qname(ns.QUERY, 'AdhocQueryResponse')}")
    assert body is not None and body.get("status") == SUCCESS
    return ebrim.parse_registry_object_list(body)  # type: ignore[return-value]


def test_replacement_read_back_with_stored_query(gateway: Gateway, registry: Registry) -> None:
    """RPLC over SOAP, then ITI-18 GetDocuments: the original Deprecated, the replacement
    Approved, the extra slot kept (NIST 11992, 12379)."""
    original = registry.register_with_result(builders.documents(1)).document_entry_ids[0]
    replacement = builders.replace(original, extra_slots={"urn:nist:extraDESlot": ["kept"]})
    assert _register(gateway, replacement).get("status") == SUCCESS
    [old] = _get_documents(gateway, "$XDSDocumentEntryEntryUUID", original)
    assert old.availability_status == v.STATUS_DEPRECATED  # type: ignore[attr-defined]
    uid = replacement.document_entries[0].unique_id or ""
    [new] = _get_documents(gateway, "$XDSDocumentEntryUniqueId", uid)
    assert new.availability_status == v.STATUS_APPROVED  # type: ignore[attr-defined]
    assert new.extra_slots == {"urn:nist:extraDESlot": ["kept"]}  # type: ignore[attr-defined]
    assert new.patient_id == PATIENT_ID  # type: ignore[attr-defined]
