"""rs:RegistryResponse and rs:RegistryErrorList: written strictly, read leniently, round trip.

Standard: ebRS 3.0 §2.1.3; ITI TF-3 §4.2.4 (RegistryError attributes); ITI TF-2 §3.43.4.2.3
(PartialSuccess).
"""

from __future__ import annotations

import pytest
from lxml import etree

from gateway.errors import (
    XDSDocumentUniqueIdError,
    XDSExtraMetadataNotSaved,
    XDSRepositoryError,
)
from gateway.soap import ns
from gateway.soap.registry_response import (
    FAILURE,
    PARTIAL_SUCCESS,
    SUCCESS,
    ResponseFormatError,
    read_errors,
    read_registry_response,
    registry_response,
    response_status,
    short_status,
)


def test_errors_round_trip_with_severity_and_location() -> None:
    warning = XDSExtraMetadataNotSaved("slow")
    missing = XDSDocumentUniqueIdError("no such document", location="1.2.3")
    written = registry_response(PARTIAL_SUCCESS, [warning, missing])
    read = read_registry_response(etree.fromstring(etree.tostring(written)))
    assert read.status == PARTIAL_SUCCESS and read.short == "PartialSuccess" and not read.ok
    assert [(e.code, e.context, e.location, e.is_warning) for e in read.errors] == [
        ("XDSExtraMetadataNotSaved", "slow", None, True),
        ("XDSDocumentUniqueIdError", "no such document", "1.2.3", False),
    ]
    assert str(read.errors[1]) == "XDSDocumentUniqueIdError: no such document [1.2.3]"


def test_short_forms_and_text_context_are_read() -> None:
    element = etree.Element(ns.qname(ns.RS, "RegistryResponse"), status="Success")
    error = etree.SubElement(
        etree.SubElement(element, ns.qname(ns.RS, "RegistryErrorList")),
        ns.qname(ns.RS, "RegistryError"),
        errorCode="XDSRepositoryError",
        severity="Warning",
    )
    error.text = "  in the text  "
    read = read_registry_response(element)
    assert read.ok and read.short == "Success"
    [only] = read.errors
    assert only.context == "in the text" and only.is_warning and str(only).startswith("XDSRep")


def test_status_helpers() -> None:
    assert short_status(SUCCESS) == "Success" and short_status(FAILURE) == "Failure"
    assert short_status(None) == "" and short_status("") == ""
    assert response_status(registry_response(FAILURE, [XDSRepositoryError("x")])) == "Failure"
    assert response_status(etree.Element("other")) == ""
    assert read_errors(None) == []


def test_another_body_is_refused() -> None:
    with pytest.raises(ResponseFormatError):
        read_registry_response(etree.Element(ns.qname(ns.XDSB, "RetrieveDocumentSetResponse")))
