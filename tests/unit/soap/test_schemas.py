"""The project's own XML schemas (``schemas/``): they compile, resolve among themselves, are served
with relative locations, and every message body the gateway writes is valid against them and
against the official XSDs (the latter skipped where ``../shared/conformance`` is absent)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from lxml import etree

from gateway.errors import XDSRegistryError, XDSRepositoryError, XDSUnknownPatientId
from gateway.imaging.codes import ManifestCodes
from gateway.imaging.entry import build_submission
from gateway.imaging.rad68 import build_request as rad68_request
from gateway.metadata import retrieve
from gateway.metadata.ebrim import build_submit_objects_request
from gateway.metadata.model import ObjectRef, RegistryObject
from gateway.metadata.provide import build_provide_request
from gateway.metadata.query import OBJECT_REF, AdhocQuery, build_query_request, build_query_response
from gateway.metadata.retrieve import DocumentRequest, ImagingDocumentRequest
from gateway.registry import iti18
from gateway.soap import ns
from gateway.soap.message import Attachment
from gateway.soap.transactions import ITI_41, ITI_42, ITI_43, RAD_69
from gateway.soap.wsdl import render_schema, schema_directory, schema_names, wsdl_directory
from tests.factories import REPOSITORY_UNIQUE_ID, UID_ROOT, make_document_entry, make_submission
from tests.support import schemas

XSD = schemas.XSD
NAMES = {
    "xml.xsd",
    "rim.xsd",
    "rs.xsd",
    "lcm.xsd",
    "query.xsd",
    "xds-b.xsd",
    "xdsi-b.xsd",
    "rmd.xsd",
}
HOME = "urn:oid:1.3.6.1.4.1.21367.13.70.1"


def _locations(path_text: bytes) -> list[str]:
    root = etree.fromstring(path_text)
    return [
        element.get("schemaLocation", "")
        for local in ("import", "include", "redefine")
        for element in root.iter(f"{{{XSD}}}{local}")
    ]


def test_the_served_names_are_the_schema_files() -> None:
    assert schema_names() == NAMES
    assert {p.name for p in schema_directory().glob("*.xsd")} == NAMES


@pytest.mark.parametrize("name", sorted(NAMES))
def test_each_schema_compiles_on_its_own(name: str) -> None:
    etree.XMLSchema(etree.parse(str(schema_directory() / name)))


def test_every_reference_on_disk_names_one_of_our_schemas() -> None:
    # Schemas name each other in their own folder, so they also validate straight from disk; the
    # WSDLs' "../schemas/NAME" holds in the source tree, and rendering replaces it anyway.
    for path in schema_directory().glob("*.xsd"):
        for location in _locations(path.read_bytes()):
            assert location in NAMES, (path.name, location)
    for path in wsdl_directory().glob("*.wsdl"):
        for location in _locations(path.read_bytes()):
            assert location.startswith("../schemas/"), (path.name, location)
            assert location.rsplit("/", 1)[-1] in NAMES, (path.name, location)


@pytest.mark.parametrize("name", sorted(NAMES))
def test_served_schema_names_its_imports_relative_to_the_endpoint(name: str) -> None:
    served = render_schema(name)
    assert served is not None and served.startswith(b"<?xml")
    on_disk = etree.parse(str(schema_directory() / name)).getroot()
    assert etree.fromstring(served).get("targetNamespace") == on_disk.get("targetNamespace")
    for location in _locations(served):
        assert location.startswith("?xsd=") and location[len("?xsd=") :] in NAMES


@pytest.mark.parametrize(
    "name", ["", "nope.xsd", "../pyproject.toml", "../schemas/rim.xsd", "/etc/passwd", "RIM.XSD"]
)
def test_unknown_schema_names_are_not_served(name: str) -> None:
    assert render_schema(name) is None


# -- every body the gateway writes ---------------------------------------------------------------

NOW = datetime(2024, 3, 16, 8, 30, 5, tzinfo=UTC)
REQUESTS = [
    DocumentRequest(repository_unique_id=REPOSITORY_UNIQUE_ID, document_unique_id=f"{UID_ROOT}.1"),
    DocumentRequest(
        repository_unique_id=REPOSITORY_UNIQUE_ID,
        document_unique_id=f"{UID_ROOT}.2",
        home_community_id=HOME,
    ),
]
IMAGING_REFS = [
    ImagingDocumentRequest(
        study_instance_uid="1.2.3",
        series_instance_uid=f"1.2.3.{series}",
        document=DocumentRequest(
            repository_unique_id="1.3.6.1.4.1.21367.13.80.100",
            document_unique_id=f"1.2.3.{series}.{n}",
        ),
    )
    for series in (1, 2)
    for n in (1, 2)
]


def _submission_objects() -> list[RegistryObject]:
    return list(make_submission(entries=2, folder=True).objects())


def _kos_submission() -> etree._Element:
    entry = make_document_entry(mime_type="application/dicom", entry_uuid="urn:uuid:" + "1" * 32)
    submission = build_submission(
        entry,
        ManifestCodes(),
        source_id="1.3.6.1.4.1.21367.13.80.100",
        submission_set_unique_id=f"{UID_ROOT}.99",
        now=NOW,
        replaces="urn:uuid:0b0b0b0b-1111-4222-8333-444444444444",
    )
    return rad68_request(submission, entry.entry_uuid, Attachment.from_bytes(b"DICM"))


def _rad69_request(syntaxes: list[str]) -> etree._Element:
    request = retrieve.RetrieveImagingDocumentSetRequest.of(IMAGING_REFS, syntaxes)
    return retrieve.build_imaging_request(request)


def _rad69_response() -> etree._Element:
    documents = [
        retrieve.DocumentResponse(
            repository_unique_id=ref.document.repository_unique_id,
            document_unique_id=ref.document.document_unique_id,
            mime_type="application/dicom",
            attachment=Attachment.from_bytes(b"DICM"),
        )
        for ref in IMAGING_REFS[:2]
    ]
    errors = [XDSRepositoryError("1.2.3.2.1 is not here", location="1.2.3.2.1")]
    response = retrieve.RetrieveDocumentSetResponse.answer(documents, errors)
    assert response.status is retrieve.Status.PARTIAL_SUCCESS
    return retrieve.build_retrieve_response(response)


WRITTEN: dict[str, Callable[[], etree._Element]] = {
    # requests of the gateway's clients
    "ITI-42 SubmitObjectsRequest": lambda: build_submit_objects_request(
        make_submission(entries=2, folder=True)
    ),
    "ITI-41 ProvideAndRegister (repository client)": lambda: build_provide_request(
        make_submission(entries=2), [("Document01", "a@x"), ("Document02", "b@x")]
    ),
    "RAD-68 ProvideAndRegister (imaging source, KOS + RPLC)": _kos_submission,
    "ITI-18 AdhocQueryRequest": lambda: build_query_request(
        AdhocQuery(query_id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d", home=HOME).add(
            "$XDSDocumentEntryPatientId", "'PAT-42^^^&1.2.3&ISO'"
        )
    ),
    "ITI-18 AdhocQueryRequest ObjectRef": lambda: build_query_request(
        AdhocQuery(
            query_id="urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4", return_type=OBJECT_REF
        ).add("$uuid", "('urn:uuid:1','urn:uuid:2')")
    ),
    "ITI-43 request": lambda: retrieve.build_retrieve_request(REQUESTS),
    "RAD-69 request": lambda: _rad69_request(["1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.1"]),
    # responses of the gateway's endpoints
    "RegistryResponse Success": lambda: retrieve.build_registry_response(retrieve.Status.SUCCESS),
    "ITI-42 failure": lambda: retrieve.failure_body(
        ITI_42, [XDSUnknownPatientId("PAT-1 unknown", location="urn:uuid:1"), XDSRegistryError("x")]
    ),
    "ITI-41 failure": lambda: retrieve.failure_body(ITI_41, [XDSRepositoryError("x")]),
    "ITI-18 LeafClass": lambda: build_query_response(_submission_objects()),
    "ITI-18 ObjectRef": lambda: build_query_response(
        [ObjectRef(entry_uuid="urn:uuid:" + "2" * 32, home_community_id=HOME)]
    ),
    "ITI-18 empty": lambda: build_query_response([]),
    "ITI-18 failure": lambda: iti18.failure_element(XDSRegistryError("stored query failed")),
    "ITI-43 Success": lambda: retrieve.build_retrieve_response(
        retrieve.RetrieveDocumentSetResponse.answer(
            [
                retrieve.DocumentResponse(
                    repository_unique_id=r.repository_unique_id,
                    document_unique_id=r.document_unique_id,
                    home_community_id=r.home_community_id,
                    mime_type="application/pdf",
                    attachment=Attachment.from_bytes(b"%PDF"),
                )
                for r in REQUESTS
            ],
            [],
        )
    ),
    "ITI-43 failure": lambda: retrieve.failure_body(ITI_43, [XDSRepositoryError("x")]),
    "RAD-69 PartialSuccess": _rad69_response,
    "RAD-69 failure": lambda: retrieve.failure_body(RAD_69, [XDSRepositoryError("x")]),
}


@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_what_the_gateway_writes_is_valid_against_ours_and_the_official(name: str) -> None:
    body = schemas.xop_infoset(WRITTEN[name]())
    assert etree.QName(body).namespace in schemas.NAMESPACES
    assert schemas.errors(schemas.ours(), body) == []
    official = schemas.official()
    if official is None:
        pytest.skip(f"{schemas.SPEC} is absent: checked against the project's schemas only")
    assert schemas.errors(official, body) == []


def test_a_wrong_body_is_invalid_against_ours() -> None:
    # The check above can fail: the same kind of body with a required element missing.
    body = retrieve.build_retrieve_request(REQUESTS)
    body[0].remove(body[0].find(ns.qname(ns.XDSB, "DocumentUniqueId")))
    assert schemas.errors(schemas.ours(), body)
