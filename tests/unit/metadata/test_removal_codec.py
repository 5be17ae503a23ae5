"""The RMD request codecs: lcm:RemoveObjectsRequest (ITI-62) and rmd:RemoveDocumentsRequest
(ITI-86), written and read back, and what the readers refuse.

Standard: ITI TF-2b §3.62.4.1.2, §3.86.4.1.2; ebRS 3.0 §5.3.
"""

from __future__ import annotations

import pytest
from lxml import etree

from gateway.errors import XDSRegistryError, XDSRepositoryError
from gateway.metadata.removal import (
    build_remove_documents_request,
    build_remove_objects_request,
    parse_remove_documents_request,
    parse_remove_objects_request,
)
from gateway.metadata.retrieve import DocumentRequest, build_retrieve_request

ID1 = "urn:uuid:0b1d6b4e-6f0a-4c4e-9d7e-000000000001"
ID2 = "urn:uuid:0b1d6b4e-6f0a-4c4e-9d7e-000000000002"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"


def test_remove_objects_round_trip_keeps_order_without_repeats() -> None:
    body = build_remove_objects_request([ID2, ID1, ID2])
    assert parse_remove_objects_request(etree.fromstring(etree.tostring(body))) == [ID2, ID1]


@pytest.mark.parametrize(
    "xml",
    [
        f'<lcm:RemoveObjectsRequest xmlns:lcm="{LCM}" xmlns:rim="{RIM}"><rim:ObjectRefList/>'
        "</lcm:RemoveObjectsRequest>",
        f'<lcm:RemoveObjectsRequest xmlns:lcm="{LCM}" xmlns:rim="{RIM}"><rim:ObjectRefList>'
        "<rim:ObjectRef/></rim:ObjectRefList></lcm:RemoveObjectsRequest>",
        f'<lcm:RemoveObjectsRequest xmlns:lcm="{LCM}" xmlns:rim="{RIM}" deletionScope="urn:oasis:'
        f'names:tc:ebxml-regrep:DeletionScopeType:DeleteRepositoryItemOnly"><rim:ObjectRefList>'
        f'<rim:ObjectRef id="{ID1}"/></rim:ObjectRefList></lcm:RemoveObjectsRequest>',
        f'<lcm:SubmitObjectsRequest xmlns:lcm="{LCM}"/>',
    ],
)
def test_remove_objects_refused(xml: str) -> None:
    with pytest.raises(XDSRegistryError):
        parse_remove_objects_request(etree.fromstring(xml))


def test_remove_documents_round_trip_and_refusals() -> None:
    wanted = [DocumentRequest(repository_unique_id="1.2.3", document_unique_id="1.2.3.4")]
    body = build_remove_documents_request(wanted)
    assert body.tag == "{urn:ihe:iti:rmd:2017}RemoveDocumentsRequest"
    assert parse_remove_documents_request(body) == wanted
    with pytest.raises(XDSRepositoryError):  # an ITI-43 body is not an ITI-86 body
        parse_remove_documents_request(build_retrieve_request(wanted))
    with pytest.raises(XDSRepositoryError):
        parse_remove_documents_request(
            etree.Element("{urn:ihe:iti:rmd:2017}RemoveDocumentsRequest")
        )
    with pytest.raises(ValueError):
        build_remove_documents_request([])
