"""The XCA-I plug-in checks compare what matters and can fail (a wrong community, status or
document is seen)."""

from __future__ import annotations

from lxml import etree

from tests.conformance.xca_plugins import _request_key, _response_key

REQUEST = """<r:RetrieveImagingDocumentSetRequest xmlns:r="urn:ihe:rad:xdsi-b:2009"
    xmlns:x="urn:ihe:iti:xds-b:2007"><r:StudyRequest studyInstanceUID="1"><r:SeriesRequest
    seriesInstanceUID="1.1"><x:DocumentRequest><x:HomeCommunityId>{home}</x:HomeCommunityId>
    <x:RepositoryUniqueId>1.2</x:RepositoryUniqueId><x:DocumentUniqueId>1.1.1</x:DocumentUniqueId>
    </x:DocumentRequest></r:SeriesRequest></r:StudyRequest><r:TransferSyntaxUIDList>
    <r:TransferSyntaxUID>1.2.840.10008.1.2.1</r:TransferSyntaxUID></r:TransferSyntaxUIDList>
    </r:RetrieveImagingDocumentSetRequest>"""
RESPONSE = """<x:RetrieveDocumentSetResponse xmlns:x="urn:ihe:iti:xds-b:2007"
    xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"><rs:RegistryResponse
    status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:{status}"/>
    <x:DocumentResponse><x:HomeCommunityId>urn:oid:1</x:HomeCommunityId>
    <x:RepositoryUniqueId>1.2</x:RepositoryUniqueId><x:DocumentUniqueId>{uid}</x:DocumentUniqueId>
    <x:mimeType>application/dicom</x:mimeType><x:Document>AA==</x:Document></x:DocumentResponse>
    </x:RetrieveDocumentSetResponse>"""


def test_request_key_sees_the_community() -> None:
    one = _request_key(etree.fromstring(REQUEST.format(home="urn:oid:1")))
    assert one == _request_key(etree.fromstring(REQUEST.format(home="urn:oid:1")))
    assert one != _request_key(etree.fromstring(REQUEST.format(home="urn:oid:2")))
    assert one[1] == ("1.2.840.10008.1.2.1",)


def test_response_key_sees_status_and_documents() -> None:
    base = _response_key(etree.fromstring(RESPONSE.format(status="Success", uid="1.1.1")))
    assert base[0] == "Success" and len(base[1]) == 1
    other = etree.fromstring(RESPONSE.format(status="PartialSuccess", uid="1.1.1"))
    assert _response_key(other) != base
    assert _response_key(etree.fromstring(RESPONSE.format(status="Success", uid="9"))) != base
