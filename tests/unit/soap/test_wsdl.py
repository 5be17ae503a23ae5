"""The gateway's own WSDLs: they load in zeep, name exactly the IHE wire constants, type every
message with the standard's elements, and state MTOM where IHE requires it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import zeep
from lxml import etree

from gateway.soap import transactions
from gateway.soap.wsdl import local_schema_base, render_wsdl, wsdl_directory, wsdl_for_path

WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP12_WSDL = "http://schemas.xmlsoap.org/wsdl/soap12/"
WSAW = "http://www.w3.org/2006/05/addressing/wsdl"
WSAM = "http://www.w3.org/2007/05/addressing/metadata"
XSD = "http://www.w3.org/2001/XMLSchema"
WSP = "http://www.w3.org/ns/ws-policy"
WSOMA = "http://schemas.xmlsoap.org/ws/2004/09/policy/optimizedmimeserialization"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS = {"wsdl": WSDL, "soap12": SOAP12_WSDL, "wsaw": WSAW, "wsam": WSAM, "xsd": XSD, "wsp": WSP}

# (path, file, service, port, binding local name) as in the IHE WSDLs.
ENDPOINTS = [
    (
        "/xds/registry",
        "DocumentRegistry.wsdl",
        "DocumentRegistry_Service",
        "DocumentRegistry_Port_Soap12",
        "DocumentRegistry_Binding_Soap12",
    ),
    (
        "/xds/repository",
        "DocumentRepository.wsdl",
        "DocumentRepository_Service",
        "DocumentRepository_Port_Soap12",
        "DocumentRepository_Binding",
    ),
    (
        "/xdsi/source",
        "ImagingDocumentSource.wsdl",
        "ImagingDocumentSource_Service",
        "ImagingDocumentSource_Port_Soap12",
        "ImagingDocumentSource_Binding",
    ),
    (
        "/xca/rg",
        "RespondingGateway.wsdl",
        "RespondingGateway_Service",
        "RespondingGateway_Port_Soap12",
        "RespondingGateway_Binding_Soap12",
    ),
    (
        "/xca/ig",
        "InitiatingGateway.wsdl",
        "InitiatingGateway_Service",
        "InitiatingGateway_Port_Soap12",
        "InitiatingGateway_Binding_Soap12",
    ),
]
ADDRESS = "https://gw.example.org:8443/base?a=1&b=<2>"


def _zeep_client(path: str, address: str = ADDRESS) -> zeep.Client:
    settings = zeep.Settings(strict=True, forbid_external=True)
    wsdl = render_wsdl(path, address, schema_base=local_schema_base())
    return zeep.Client(io.BytesIO(wsdl), settings=settings)


def test_directory_holds_a_file_per_endpoint() -> None:
    directory = wsdl_directory()
    assert isinstance(directory, Path)
    assert sorted(p.name for p in directory.glob("*.wsdl")) == sorted(e[1] for e in ENDPOINTS)


@pytest.mark.parametrize(("path", "name"), [(e[0], e[1]) for e in ENDPOINTS])
def test_wsdl_for_path(path: str, name: str) -> None:
    assert wsdl_for_path(path) == name
    assert wsdl_for_path(path + "/") == name


def test_wsdl_for_unknown_path() -> None:
    assert wsdl_for_path("/health") is None
    assert wsdl_for_path("/xds") is None
    with pytest.raises(ValueError, match="No WSDL"):
        render_wsdl("/nope", "http://x")


@pytest.mark.parametrize(("path", "name", "service", "port", "binding"), ENDPOINTS)
def test_zeep_loads_with_address(
    path: str, name: str, service: str, port: str, binding: str
) -> None:
    client = _zeep_client(path)
    assert list(client.wsdl.services) == [service]
    ports = client.wsdl.services[service].ports
    assert list(ports) == [port]
    assert ports[port].binding_options["address"] == ADDRESS
    assert ports[port].binding.name.localname == binding
    assert type(ports[port].binding).__name__ == "Soap12Binding"


@pytest.mark.parametrize("path", [e[0] for e in ENDPOINTS])
def test_operations_match_transactions(path: str) -> None:
    client = _zeep_client(path)
    operations = client.service._binding._operations
    expected = {t.operation: t for t in transactions.ENDPOINTS[path]}
    assert set(operations) == set(expected)
    for name, transaction in expected.items():
        operation = operations[name]
        assert operation.soapaction == transaction.action
        assert operation.abstract.wsa_action == transaction.action
        assert operation.style == "document"
        assert operation.input.body.qname == transaction.request_qname
        assert operation.output.body.qname == transaction.response_qname


@pytest.mark.parametrize("path", [e[0] for e in ENDPOINTS])
def test_output_actions_and_addressing(path: str) -> None:
    # zeep ignores output actions, so read them from the document itself.
    root = etree.fromstring(render_wsdl(path, ADDRESS))
    for transaction in transactions.ENDPOINTS[path]:
        op = root.find(f"wsdl:portType/wsdl:operation[@name='{transaction.operation}']", NS)
        assert op is not None
        for child, action in (
            ("input", transaction.action),
            ("output", transaction.response_action),
        ):
            element = op.find(f"wsdl:{child}", NS)
            assert element.get(f"{{{WSAW}}}Action") == action
            assert element.get(f"{{{WSAM}}}Action") == action
        body_uses = root.findall(
            f"wsdl:binding/wsdl:operation[@name='{transaction.operation}']//soap12:body", NS
        )
        assert [b.get("use") for b in body_uses] == ["literal", "literal"]
    using = root.find("wsdl:binding/wsaw:UsingAddressing", NS)
    assert using is not None and using.get(f"{{{WSDL}}}required") == "true"
    assert root.find("wsdl:binding/soap12:binding", NS).get("style") == "document"


@pytest.mark.parametrize("path", [e[0] for e in ENDPOINTS])
def test_every_address_is_replaced_and_escaped(path: str) -> None:
    data = render_wsdl(path, ADDRESS)
    assert b"servicelocation" not in data
    assert b"a=1&amp;b=&lt;2&gt;" in data
    root = etree.fromstring(data)
    locations = [e.get("location") for e in root.iter(f"{{{SOAP12_WSDL}}}address")]
    assert locations == [ADDRESS]


def test_render_does_not_leak_between_calls() -> None:
    first = render_wsdl("/xds/registry", "http://one/xds/registry")
    second = render_wsdl("/xds/registry", "http://two/xds/registry")
    assert b"http://one/" in first and b"http://one/" not in second
    assert b"own rendition" in second  # the header comment travels with the document


# Children (and attributes) each body element has in the standard's schemas.
CONTENT = {
    "AdhocQueryRequest": {"RequestSlotList", "ResponseOption", "AdhocQuery", "maxResults"},
    "AdhocQueryResponse": {"RegistryErrorList", "RegistryObjectList", "status"},
    "SubmitObjectsRequest": {"RequestSlotList", "RegistryObjectList"},
    "RegistryResponse": {"ResponseSlotList", "RegistryErrorList", "status", "requestId"},
    "ProvideAndRegisterDocumentSetRequest": {"SubmitObjectsRequest", "Document"},
    "RetrieveDocumentSetRequest": {"DocumentRequest"},
    "RetrieveDocumentSetResponse": {"RegistryResponse", "DocumentResponse"},
    "RetrieveImagingDocumentSetRequest": {"StudyRequest", "TransferSyntaxUIDList"},
    "RemoveObjectsRequest": {"ObjectRefList"},
    "RemoveDocumentsRequest": {"DocumentRequest"},
}


@pytest.mark.parametrize("path", [e[0] for e in ENDPOINTS])
def test_types_are_the_standard_elements(path: str) -> None:
    client = _zeep_client(path)
    for transaction in transactions.ENDPOINTS[path]:
        for qname in (transaction.request_qname, transaction.response_qname):
            signature = client.get_element(qname).type.signature()
            names = {part.split(":")[0].strip() for part in signature.split("(", 1)[1].split(",")}
            assert CONTENT[etree.QName(qname).localname] <= names, signature
            assert "ANY" not in signature


def test_typed_request_serializes_with_keyword_arguments() -> None:
    # The zeep error of issue 14 was "AdhocQueryRequest() got an unexpected keyword argument
    # 'ResponseOption'": the keywords now build the standard's elements.
    client = _zeep_client("/xds/registry")
    envelope = client.create_message(
        client.service,
        "DocumentRegistry_RegistryStoredQuery",
        ResponseOption={"returnType": "LeafClass"},
        AdhocQuery={"id": "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d", "Slot": []},
    )
    query = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
    body = envelope.find(f"{{{SOAP12}}}Body/{{{query}}}AdhocQueryRequest")
    assert body.find(f"{{{query}}}ResponseOption").get("returnType") == "LeafClass"
    with pytest.raises(TypeError, match="unexpected keyword"):
        client.create_message(client.service, "DocumentRegistry_RegistryStoredQuery", Nope=1)


@pytest.mark.parametrize("path", [e[0] for e in ENDPOINTS])
def test_served_wsdl_imports_schemas_relative_to_itself(path: str) -> None:
    root = etree.fromstring(render_wsdl(path, ADDRESS))
    (schema,) = root.findall("wsdl:types/xsd:schema", NS)
    imports = schema.findall("xsd:import", NS)
    assert imports and len(schema) == len(imports)
    namespaces = {etree.QName(t.request_qname).namespace for t in transactions.ENDPOINTS[path]}
    assert namespaces <= {i.get("namespace") for i in imports}
    for element in imports:
        assert element.get("schemaLocation").startswith("?xsd=")
    local = etree.fromstring(render_wsdl(path, ADDRESS, schema_base="/opt/s/"))
    assert all(
        i.get("schemaLocation").startswith("/opt/s/") for i in local.iterfind(".//xsd:import", NS)
    )


@pytest.mark.parametrize(
    ("path", "mtom"),
    [(e[0], e[0] not in ("/xds/registry", "/xca/rg", "/xca/ig")) for e in ENDPOINTS],
)
def test_mtom_policy_on_the_bindings_that_use_mtom(path: str, mtom: bool) -> None:
    root = etree.fromstring(render_wsdl(path, ADDRESS))
    references = root.findall("wsdl:binding/wsp:PolicyReference", NS)
    assert bool(references) == mtom
    # The repository's ITI-86 Remove Documents is plain SOAP beside ITI-41 and ITI-43; the
    # binding's policy is theirs (the gateway accepts ITI-86 either way).
    assert mtom == all(t.mtom for t in transactions.ENDPOINTS[path] if t.name != "ITI-86")
    for reference in references:
        policy_id = reference.get("URI").removeprefix("#")
        [policy] = [p for p in root.findall("wsp:Policy", NS) if p.get(f"{{{WSU}}}Id") == policy_id]
        assert policy.find(f"{{{WSOMA}}}OptimizedMimeSerialization") is not None


@pytest.mark.parametrize("path", ["/xca/rg", "/xca/ig"])
def test_mtom_policy_on_exactly_the_mtom_operations(path: str) -> None:
    # The gateways mix a query (no MTOM) with retrieves (MTOM): the policy is attached to the
    # operations that use it (WS-Policy 1.5 Attachment §3.1.3), not to the whole binding.
    root = etree.fromstring(render_wsdl(path, ADDRESS))
    for transaction in transactions.ENDPOINTS[path]:
        operation = root.find(f"wsdl:binding/wsdl:operation[@name='{transaction.operation}']", NS)
        references = operation.findall("wsp:PolicyReference", NS)
        assert [r.get("URI") for r in references] == (["#MTOM"] if transaction.mtom else [])
