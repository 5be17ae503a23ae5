"""Unit tests of the NIST runner's response checks on hand-written responses.

ExpectedContents keywords (one passing and one failing response each), ExpectedStatus /
ExpectedErrorCode / ExpectedErrorMessage, and XPath assertions. No sockets, no testkit needed
except the XSDs for the RegistryResponseIsValid case.
"""

from __future__ import annotations

import pytest
from lxml import etree

from tests.conformance.nist import checks, metadata, ns
from tests.conformance.nist.contents import ContentsChecker
from tests.conformance.nist.plan import PlanError, Step
from tests.conformance.nist.xmlutil import parse_xml

DE_TYPE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"


def ss(oid: str = "ss", status: str = "Approved") -> str:
    return (
        f'<rim:RegistryPackage id="{oid}" status="{ns.STATUS_TYPE}{status}">'
        f'<rim:Classification id="c-{oid}" classifiedObject="{oid}" '
        f'classificationNode="{ns.SUBMISSION_SET_NODE}"/></rim:RegistryPackage>'
    )


def fol(oid: str = "fol", status: str = "Approved") -> str:
    return (
        f'<rim:RegistryPackage id="{oid}" status="{ns.STATUS_TYPE}{status}">'
        f'<rim:Classification id="c-{oid}" classifiedObject="{oid}" '
        f'classificationNode="{ns.FOLDER_NODE}"/></rim:RegistryPackage>'
    )


def de(oid: str, status: str = "Approved", object_type: str = DE_TYPE) -> str:
    return (
        f'<rim:ExtrinsicObject id="{oid}" mimeType="text/plain" objectType="{object_type}" '
        f'status="{ns.STATUS_TYPE}{status}"/>'
    )


def assoc(oid: str, source: str, target: str, kind: str = "HasMember") -> str:
    prefix = ns.IHE_ASSOC if kind in ns.IHE_ASSOC_TYPES else ns.EB_ASSOC
    return (
        f'<rim:Association id="{oid}" sourceObject="{source}" targetObject="{target}" '
        f'associationType="{prefix}{kind}"/>'
    )


def ref(oid: str) -> str:
    return f'<rim:ObjectRef id="{oid}"/>'


def response(*objects: str, status: str = "Success") -> etree._Element:
    return parse_xml(
        f'<query:AdhocQueryResponse xmlns:query="{ns.QUERY}" xmlns:rim="{ns.RIM}" '
        f'status="{ns.STATUS_URNS[status]}"><rim:RegistryObjectList>{"".join(objects)}'
        "</rim:RegistryObjectList></query:AdhocQueryResponse>"
    )


def problems(expected: str, body: etree._Element, **kwargs: object) -> list[str]:
    checker = ContentsChecker(metadata.view(body), **kwargs)  # type: ignore[arg-type]
    return checker.run(parse_xml(f"<ExpectedContents>{expected}</ExpectedContents>"))


ONE_DOC = [ss(), de("d1"), assoc("a1", "ss", "d1")]
TWO_DOC = [ss(), de("d1"), de("d2"), assoc("a1", "ss", "d1"), assoc("a2", "ss", "d2")]
DOC_IN_FOL = [
    ss(),
    de("d1"),
    fol(),
    assoc("a1", "ss", "d1"),
    assoc("a2", "ss", "fol"),
    assoc("a3", "fol", "d1"),
    assoc("a4", "ss", "a3"),
]
TWO_DOC_IN_FOL = [
    ss(),
    de("d1"),
    de("d2"),
    fol(),
    assoc("a1", "ss", "d1"),
    assoc("a2", "ss", "d2"),
    assoc("a3", "ss", "fol"),
    assoc("a4", "fol", "d1"),
    assoc("a5", "fol", "d2"),
    assoc("a6", "ss", "a4"),
    assoc("a7", "ss", "a5"),
]
ONE_OF_TWO_IN_FOL = [
    ss(),
    de("d1"),
    de("d2"),
    fol(),
    assoc("a1", "ss", "d1"),
    assoc("a2", "ss", "d2"),
    assoc("a3", "ss", "fol"),
    assoc("a4", "fol", "d1"),
    assoc("a5", "ss", "a4"),
]
RPLC = [de("new"), de("old", "Deprecated"), assoc("r", "new", "old", "RPLC")]

# (ExpectedContents children, objects that satisfy them, objects that do not)
CASES = [
    ("<SSwithOneDoc/>", ONE_DOC, [ss(), de("d1")]),
    ("<SSwithOneDoc/>", ONE_DOC, [ss(status="Submitted"), de("d1"), assoc("a1", "ss", "d1")]),
    ("<SSwithOneDocOnly/>", [ss(status="x"), de("d1"), assoc("a1", "ss", "d1")], TWO_DOC),
    ("<SSwithTwoDoc/>", TWO_DOC, ONE_DOC),
    (
        "<SSwithTwoDoc/>",
        TWO_DOC,
        [ss(), de("d1"), de("d2"), assoc("a1", "ss", "d1"), assoc("a2", "ss", "d1")],
    ),
    ("<SSwithOneFol/>", [ss(), fol(), assoc("a", "ss", "fol")], [ss(), fol()]),
    ("<SSwithOneDocOneFol/>", DOC_IN_FOL, DOC_IN_FOL[:-1]),
    ("<SSwithOneDocOneFol/>", DOC_IN_FOL, [*DOC_IN_FOL[:-1], assoc("a4", "ss", "a1")]),
    ("<SSwithTwoDocOneFol/>", TWO_DOC_IN_FOL, TWO_DOC_IN_FOL[:-1]),
    (
        "<SSwithTwoDocOneFolOneDocInFol/>",
        ONE_OF_TWO_IN_FOL,
        [*ONE_OF_TWO_IN_FOL[:7], assoc("a4", "d1", "fol"), ONE_OF_TWO_IN_FOL[8]],
    ),
    ("<SSApproved/>", [ss()], [ss(status="Deprecated")]),
    ("<DocApp/>", [de("d1"), de("d2")], [de("d1"), de("d2", "Deprecated")]),
    ("<DocDep/>", [de("d1", "Deprecated")], [de("d1", "Deprecated"), de("d2")]),
    ("<OneDocApp/>", [de("d1"), de("d2", "Deprecated")], [de("d1"), de("d2")]),
    ("<OneDocDep/>", [de("d1"), de("d2", "Deprecated")], [de("d1")]),
    ("<FolApp/>", [fol()], [fol(status="Deprecated")]),
    ("<FolDep/>", [fol(status="Deprecated")], [fol()]),
    ("<HasRPLC/>", RPLC, [de("a"), de("b")]),
    ("<HasXFRM_RPLC/>", [assoc("x", "n", "o", "XFRM_RPLC")], [assoc("x", "n", "o", "RPLC")]),
    (
        "<HasAPND/>",
        [assoc("x", "n", "o", "APND")],
        [assoc("x", "n", "o", "APND"), assoc("y", "m", "o", "APND")],
    ),
    ("<DocRplcDoc/>", RPLC, [de("new"), de("old"), assoc("r", "new", "old", "RPLC")]),
    ("<None/>", [], [de("d1")]),
    ("<None/>", [], [assoc("a", "x", "y")]),
    ("<NoDocument/>", [ss()], [de("d1")]),
    ("<NoSubmissionSet/>", [de("d1")], [ss()]),
    (
        '<ObjectRefs count="2"/>',
        [ref("urn:uuid:1"), ref("urn:uuid:2")],
        [ref("urn:uuid:1"), ref("urn:uuid:2"), de("d1")],
    ),
    ('<Documents count="2"/>', [de("d1"), de("d2")], [de("d1")]),
    ('<Folders count="1"/>', [fol()], [fol(), fol("f2")]),
    ('<SubmissionSets count="0"/>', [de("d1")], [ss()]),
    (
        '<Associations count="1"/><Documents count="1"/><Folders count="1"/>',
        [de("d1"), fol(), assoc("a", "fol", "d1")],
        [de("d1"), fol()],
    ),
]


@pytest.mark.parametrize(("expected", "good", "bad"), CASES)
def test_expected_contents_keyword_passes_and_fails(
    expected: str, good: list[str], bad: list[str]
) -> None:
    assert problems(expected, response(*good)) == []
    assert problems(expected, response(*bad)) != []


def test_unknown_keyword_is_a_problem() -> None:
    assert problems("<HasSomethingNew/>", response()) != []


def test_registry_response_is_valid_uses_the_response_verdict() -> None:
    assert problems("<RegistryResponseIsValid/>", response(), response_ok=True) == []
    assert problems("<RegistryResponseIsValid/>", response(), response_ok=False) != []


def test_document_entries_must_only_include_by_use_id() -> None:
    expected = (
        f"<DocumentEntries><MustOnlyInclude><DocumentEntry><UseId id='Document01'/>"
        f"<DocumentEntryType>{DE_TYPE}</DocumentEntryType></DocumentEntry>"
        "</MustOnlyInclude></DocumentEntries>"
    )
    resolve = {"Document01": "urn:uuid:d1"}
    resolver = lambda element: resolve[element.get("id")]  # noqa: E731
    assert problems(expected, response(de("urn:uuid:d1")), resolve_use_id=resolver) == []
    assert (
        problems(expected, response(de("urn:uuid:d1"), de("urn:uuid:d2")), resolve_use_id=resolver)
        != []
    )
    assert (
        problems(
            expected,
            response(de("urn:uuid:d1", object_type="urn:uuid:other")),
            resolve_use_id=resolver,
        )
        != []
    )
    assert problems(expected, response(de("urn:uuid:d9")), resolve_use_id=resolver) != []


def test_submission_set_recognised_by_top_level_classification_or_unique_id() -> None:
    top_level = response(
        f'<rim:RegistryPackage id="s" status="{ns.STATUS_TYPE}Approved"/>',
        f'<rim:Classification id="c" classifiedObject="s" '
        f'classificationNode="{ns.SUBMISSION_SET_NODE}"/>',
    )
    assert len(metadata.view(top_level).submission_sets) == 1
    by_uid = response(
        f'<rim:RegistryPackage id="f"><rim:ExternalIdentifier id="e" '
        f'registryObject="f" identificationScheme="{ns.FOL_UNIQUE_ID}" value="1"/>'
        "</rim:RegistryPackage>"
    )
    assert len(metadata.view(by_uid).folders) == 1


# -- status, error code, error message ------------------------------------------------------


def registry_response(status: str, *errors: tuple[str, str, str]) -> etree._Element:
    items = "".join(
        f'<rs:RegistryError errorCode="{c}" codeContext="{t}" severity="{s}"/>'
        for c, t, s in errors
    )
    error_list = f"<rs:RegistryErrorList>{items}</rs:RegistryErrorList>" if errors else ""
    return parse_xml(
        f'<rs:RegistryResponse xmlns:rs="{ns.RS}" status="{ns.STATUS_URNS[status]}">'
        f"{error_list}</rs:RegistryResponse>"
    )


def step(status: str = "Success", code: str = "", message: str = "") -> Step:
    return Step(
        id="s",
        expected_status=tuple(status.split(",")),
        expected_error_code=code,
        expected_error_message=message,
    )


ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
WARNING = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"


def status_problems(expected: Step, body: etree._Element) -> list[str]:
    found = checks.response_status(body)
    assert found is not None
    return checks.check_status(expected, found)


def test_expected_status_compares_full_urns() -> None:
    assert status_problems(step(), registry_response("Success")) == []
    assert status_problems(step(), registry_response("Failure")) != []
    assert (
        status_problems(step("Success,PartialSuccess"), registry_response("PartialSuccess")) == []
    )
    assert status_problems(step("Failure"), registry_response("Success")) != []
    wrong_namespace = parse_xml(f'<rs:RegistryResponse xmlns:rs="{ns.RS}" status="Success"/>')
    assert status_problems(step(), wrong_namespace) != []


def test_expected_error_code_must_match_exactly() -> None:
    body = registry_response("Failure", ("XDSUnknownPatientId", "unknown", ERROR))
    assert status_problems(step("Failure", code="XDSUnknownPatientId"), body) == []
    assert status_problems(step("Failure", code="XDSUnknownPatient"), body) != []


def test_expected_error_message_is_a_substring_of_an_error_severity_error() -> None:
    body = registry_response(
        "Failure", ("XDSRegistryError", "patient XDSPatientIdDoesNotMatch", ERROR)
    )
    assert status_problems(step("Failure", message="XDSPatientIdDoesNotMatch"), body) == []
    warned = registry_response("Failure", ("XDSPatientIdDoesNotMatch", "x", WARNING))
    assert status_problems(step("Failure", message="XDSPatientIdDoesNotMatch"), warned) != []
    with pytest.raises(PlanError):
        checks.check_status(step("Success", message="X"), checks.ResponseStatus(status=""))


def test_soap_fault_only_acceptable_when_expected() -> None:
    assert checks.check_fault(step("Fault"), "env:Sender") == []
    assert checks.check_fault(step("Failure"), "env:Sender") != []


def test_status_found_inside_retrieve_response() -> None:
    body = parse_xml(
        f'<x:RetrieveDocumentSetResponse xmlns:x="{ns.XDSB}">'
        f'<rs:RegistryResponse xmlns:rs="{ns.RS}" '
        f'status="{ns.STATUS_URNS["Success"]}"/></x:RetrieveDocumentSetResponse>'
    )
    found = checks.response_status(body)
    assert found is not None and found.status == ns.STATUS_URNS["Success"]


# -- assertions ---------------------------------------------------------------------------


def section_log(status: str = "Approved", time: str = "20240102030405") -> etree._Element:
    log = etree.Element("TestResults")
    step_log = etree.SubElement(log, "TestStep", id="q")
    result = etree.SubElement(etree.SubElement(step_log, "StoredQueryTransaction"), "Result")
    result.append(response(de("d1", status)))
    etree.SubElement(result[0][0][0], ns.q(ns.RIM, "Slot"), name="lastUpdateTime").text = time
    return log


APPROVED = (
    "//*[local-name()='ExtrinsicObject']/@status = "
    "'urn:oasis:names:tc:ebxml-regrep:StatusType:Approved'"
)


def assertion(xpath: str) -> etree._Element:
    element = etree.Element("Assert", id="a")
    element.text = xpath
    return element


def test_xpath_assertion_over_the_section_log() -> None:
    data = checks.assertion_data(section_log())
    assert checks.run_assertions([assertion(APPROVED)], data, {}) == []
    bad = checks.assertion_data(section_log("Deprecated"))
    assert checks.run_assertions([assertion(APPROVED)], bad, {}) != []
    counted = "count(//TestStep[@id='q']//*[local-name()='ExtrinsicObject']) = 1"
    assert checks.run_assertions([assertion(counted)], data, {}) == []


def test_assertion_text_gets_use_report_values_and_date() -> None:
    data = checks.assertion_data(section_log())
    today = checks.today()
    ok = checks.run_assertions(
        [assertion('substring("updateTime",1,8) = "$DATE$"')],
        data,
        {"updateTime": today + "120000", "$DATE$": today},
    )
    assert ok == []
    stale = checks.run_assertions(
        [assertion('substring("updateTime",1,8) = "$DATE$"')],
        data,
        {"updateTime": "19990101120000", "$DATE$": today},
    )
    assert stale != []
    ordered = assertion("'original' &lt; 'after'".replace("&lt;", "<"))
    assert (
        checks.run_assertions(
            [ordered], data, {"original": "20240101000000", "after": "20240101000001"}
        )
        == []
    )
    assert (
        checks.run_assertions(
            [ordered], data, {"original": "20240101000001", "after": "20240101000000"}
        )
        != []
    )


def test_plug_in_assertions_are_reported_unsupported() -> None:
    plug_in = etree.Element("Assert", id="img", process="sameRetImgs")
    assert checks.run_assertions([plug_in], checks.assertion_data(section_log()), {}) != []
