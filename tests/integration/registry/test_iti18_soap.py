"""ITI-18 over real sockets: the gateway's SOAP endpoint with the stored-query handler bound,
a raw SOAP 1.2 client, every error code of the transaction, responses checked against query.xsd.

Standard: ITI TF-2 §3.18.4.1.3 (response, error codes), §3.18.4.1.2.3.8 (homeCommunityId),
ITI TF-2 Appendix V (SOAP 1.2, WS-Addressing); ebRS 3.0 query.xsd. World: ``iti18_world``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.registry.database import Database
from gateway.registry.iti18 import StoredQueries
from gateway.registry.queries import quote, quote_list
from gateway.registry.queries import table as t
from gateway.soap import ns
from gateway.soap.dispatch import SoapApplication
from gateway.soap.transactions import ENDPOINTS, ITI_18, REGISTRY_PATH
from tests.integration.registry.iti18_world import (
    APPROVED,
    PATIENT_ID,
    WORLD_PARAMS,
    open_world,
    uuid_of,
)
from tests.support import rawsoap

SPEC = Path(__file__).resolve().parents[3].parent / "shared" / "conformance" / "spec"
QUERY_XSD = SPEC / "iti" / "schema" / "ebRS" / "query.xsd"
LIMITED_PATH = "/xds/registry-limited"
COMMUNITY_PATH = "/xds/registry-community"
COMMUNITY = "urn:oid:1.3.6.1.4.1.21367.13.70.1"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"


@pytest.fixture(scope="module", params=WORLD_PARAMS)
def world_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    yield from open_world(request, tmp_path_factory)


@pytest.fixture(scope="module")
def gateway(world_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(tmp_path_factory.mktemp("gateway")),
            "XDSI_HTTP_PORT": "0",
            "XDSI_REGISTRY_ENABLED": "false",
            "XDSI_REPOSITORY_ENABLED": "false",
            "XDSI_IMAGING_SOURCE_ENABLED": "false",
            "XDSI_HL7_ENABLED": "false",
        }
    )

    def configure(app: SoapApplication) -> None:
        # What app.py does for the registry (see the report), plus two variants for the limits.
        app.endpoint(REGISTRY_PATH, ENDPOINTS[REGISTRY_PATH]).bind(
            ITI_18, StoredQueries(world_db).handle
        )
        app.endpoint(LIMITED_PATH, (ITI_18,)).bind(
            ITI_18, StoredQueries(world_db, max_leafclass_results=3).handle
        )
        app.endpoint(COMMUNITY_PATH, (ITI_18,)).bind(
            ITI_18, StoredQueries(world_db, home_community_id=COMMUNITY).handle
        )

    gw = Gateway(settings, configure=configure)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def query_schema() -> etree.XMLSchema | None:
    if not QUERY_XSD.is_file():
        return None
    return etree.XMLSchema(etree.parse(str(QUERY_XSD)))


def adhoc(
    query_id: str, *slots: tuple[str, ...], return_type: str = "LeafClass", home: str = ""
) -> str:
    home_attr = f' home="{home}"' if home else ""
    body = "".join(
        f'<rim:Slot name="{name}"><rim:ValueList>'
        + "".join(f"<rim:Value>{escape(value)}</rim:Value>" for value in values)
        + "</rim:ValueList></rim:Slot>"
        for name, *values in slots
    )
    return (
        f'<query:AdhocQueryRequest xmlns:query="{ns.QUERY}" xmlns:rim="{ns.RIM}">'
        f'<query:ResponseOption returnComposedObjects="true" returnType="{return_type}"/>'
        f'<rim:AdhocQuery id="{query_id}"{home_attr}>{body}</rim:AdhocQuery>'
        "</query:AdhocQueryRequest>"
    )


def send(
    gateway: Gateway, body: str, query_schema: etree.XMLSchema | None, path: str = REGISTRY_PATH
) -> etree._Element:
    """POST the request; return the AdhocQueryResponse after the checks every answer must pass."""
    host, port = gateway.http.address
    response = rawsoap.post(host, port, path, rawsoap.envelope(body, action=ITI_18.action))
    assert response.status == 200
    assert response.content_type.startswith("application/soap+xml")
    assert response.header("Action") == ITI_18.response_action
    envelope = response.envelope()
    answer = envelope.find(f"{{{ns.SOAP12}}}Body/{{{ns.QUERY}}}AdhocQueryResponse")
    assert answer is not None
    if query_schema is not None:
        query_schema.assertValid(etree.ElementTree(answer))
    return answer


def find_documents(*extra: tuple[str, ...], return_type: str = "LeafClass", home: str = "") -> str:
    return adhoc(
        t.FIND_DOCUMENTS,
        (t.DE_PATIENT_ID, quote(PATIENT_ID)),
        (t.DE_STATUS, quote_list([APPROVED])),
        *extra,
        return_type=return_type,
        home=home,
    )


def error_codes(answer: etree._Element) -> list[str]:
    return [e.get("errorCode", "") for e in answer.iter(f"{{{ns.RS}}}RegistryError")]


def objects(answer: etree._Element) -> list[etree._Element]:
    object_list = answer.find(f"{{{ns.RIM}}}RegistryObjectList")
    assert object_list is not None
    return list(object_list)


def test_leaf_class_success(gateway: Gateway, query_schema: etree.XMLSchema | None) -> None:
    answer = send(gateway, find_documents(), query_schema)
    assert answer.get("status") == SUCCESS
    found = objects(answer)
    assert {e.tag for e in found} == {f"{{{ns.RIM}}}ExtrinsicObject"}
    assert {e.get("id") for e in found} == {uuid_of(n) for n in ("D1", "D2", "D4", "D6")}
    assert {e.get("status") for e in found} == {APPROVED}
    assert error_codes(answer) == []


def test_object_ref_success(gateway: Gateway, query_schema: etree.XMLSchema | None) -> None:
    answer = send(gateway, find_documents(return_type="ObjectRef"), query_schema)
    found = objects(answer)
    assert {e.tag for e in found} == {f"{{{ns.RIM}}}ObjectRef"}
    assert len(found) == 4 and all(e.get("home") is None for e in found)


def test_empty_success(gateway: Gateway, query_schema: etree.XMLSchema | None) -> None:
    body = find_documents((t.DE_CLASS_CODE, "('nothing^^1.2.3.1')"))
    answer = send(gateway, body, query_schema)
    assert answer.get("status") == SUCCESS and objects(answer) == []


UUID_D1, UUID_DQ = uuid_of("D1"), uuid_of("DQ")
ERRORS = [
    ("XDSUnknownStoredQuery", adhoc("urn:uuid:00000000-0000-4000-8000-000000000000")),
    ("XDSStoredQueryMissingParam", adhoc(t.FIND_DOCUMENTS, (t.DE_PATIENT_ID, quote(PATIENT_ID)))),
    ("XDSStoredQueryParamNumber", find_documents((t.DE_CREATION_TIME_FROM, "(2004, 2005)"))),
    ("XDSRegistryError", find_documents((t.DE_CLASS_CODE, "('Dialysis')"))),
    ("XDSRegistryError", find_documents(return_type="RegistryObject")),
    (
        "XDSResultNotSinglePatient",
        adhoc(t.GET_DOCUMENTS, (t.DE_ENTRY_UUID, quote_list([UUID_D1, UUID_DQ]))),
    ),
]


@pytest.mark.parametrize(
    ("code", "body"), ERRORS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(ERRORS)]
)
def test_error_codes(
    gateway: Gateway, query_schema: etree.XMLSchema | None, code: str, body: str
) -> None:
    answer = send(gateway, body, query_schema)
    assert answer.get("status") == FAILURE
    assert error_codes(answer) == [code]
    assert objects(answer) == []  # present (query.xsd requires it) and empty


def test_too_many_results(gateway: Gateway, query_schema: etree.XMLSchema | None) -> None:
    answer = send(gateway, find_documents(), query_schema, LIMITED_PATH)  # 4 entries > 3
    assert answer.get("status") == FAILURE and error_codes(answer) == ["XDSTooManyResults"]
    assert objects(answer) == []
    narrow = find_documents((t.DE_CLASS_CODE, "('B^^1.2.3.1')"))
    assert len(objects(send(gateway, narrow, query_schema, LIMITED_PATH))) == 1
    refs = send(gateway, find_documents(return_type="ObjectRef"), query_schema, LIMITED_PATH)
    assert len(objects(refs)) == 4  # the limit is on LeafClass answers


def test_too_many_results_counts_associations(
    gateway: Gateway, query_schema: etree.XMLSchema | None
) -> None:
    body = adhoc(t.GET_DOCUMENTS_AND_ASSOCIATIONS, (t.DE_ENTRY_UUID, quote_list([UUID_D1])))
    answer = send(gateway, body, query_schema, LIMITED_PATH)  # D1 and four associations
    assert error_codes(answer) == ["XDSTooManyResults"]


def test_home_community(gateway: Gateway, query_schema: etree.XMLSchema | None) -> None:
    unknown = send(gateway, find_documents(home="urn:oid:9.9.9"), query_schema, COMMUNITY_PATH)
    assert unknown.get("status") == FAILURE
    assert error_codes(unknown) == ["XDSUnknownCommunity"]
    mine = send(gateway, find_documents(home=COMMUNITY), query_schema, COMMUNITY_PATH)
    assert {e.get("home") for e in objects(mine)} == {COMMUNITY}
    refs = send(gateway, find_documents(return_type="ObjectRef"), query_schema, COMMUNITY_PATH)
    assert {e.get("home") for e in objects(refs)} == {COMMUNITY}


def test_home_is_accepted_by_a_registry_without_community(
    gateway: Gateway, query_schema: etree.XMLSchema | None
) -> None:
    # NIST 11901/homeCommunityId: home="urn:oid:1.1.1" on a plain XDS registry -> the document.
    body = adhoc(t.GET_DOCUMENTS, (t.DE_ENTRY_UUID, quote_list([UUID_D1])), home="urn:oid:1.1.1")
    answer = send(gateway, body, query_schema)
    assert answer.get("status") == SUCCESS and len(objects(answer)) == 1


def test_several_errors_in_one_response(
    gateway: Gateway, query_schema: etree.XMLSchema | None
) -> None:
    body = adhoc(
        t.FIND_DOCUMENTS,
        (t.DE_CLASS_CODE, "('x')"),
        (t.DE_CREATION_TIME_FROM, "1", "2"),
    )
    answer = send(gateway, body, query_schema)
    assert sorted(error_codes(answer)) == [
        "XDSRegistryError",
        "XDSStoredQueryMissingParam",
        "XDSStoredQueryMissingParam",
        "XDSStoredQueryParamNumber",
    ]


def test_database_failure_is_a_registry_error(tmp_path: Path) -> None:
    # A database without the registry's tables: the SQL error becomes XDSRegistryError.
    database = Database(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    try:
        answer = StoredQueries(database).run(etree.fromstring(find_documents().encode()))
    finally:
        database.dispose()
    assert answer.get("status") == FAILURE
    assert error_codes(answer) == ["XDSRegistryError"]
    assert objects(answer) == []
