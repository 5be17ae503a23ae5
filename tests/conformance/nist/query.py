"""StoredQueryTransaction (ITI-18) and NullTransaction steps.

Standards: ITI TF-2 §3.18 (Registry Stored Query: ``query:AdhocQueryRequest`` to the registry,
``query:AdhocQueryResponse`` back, synchronous, SOAP 1.2 without MTOM). ``NullTransaction`` sends
nothing: it only evaluates ``Assertions`` over the section log, with ``UseReport`` values
substituted into the assertion text.
"""

from __future__ import annotations

from lxml import etree

from tests.conformance.nist import checks, metadata, ns, soap
from tests.conformance.nist.contents import ContentsChecker
from tests.conformance.nist.execution import StepExecution
from tests.conformance.nist.plan import PlanError
from tests.conformance.nist.xmlutil import parse_xml, substitute


def run_stored_query(ex: StepExecution) -> None:
    """ITI-18: send the query file (placeholders resolved) and check the returned metadata."""
    ex.wait_before()
    if ex.opts.metadata_file is None:
        raise PlanError(f"step {ex.step.id} has no MetadataFile")
    query = parse_xml(ex.opts.metadata_file)
    substitute(query, ex.linkage(uses_now=b"$now$" in etree.tostring(query)))
    substitute(query, ex.use_ids())
    request = soap.SoapRequest(url=ex.config.endpoints.registry, action=ns.ACTION_ITI18, body=query)
    reply = ex.call(request)
    response = ex.evaluate(
        reply,
        request_id=request.message_id,
        response_action=ns.ACTION_ITI18 + "Response",
        top="AdhocQueryResponse",
    )
    if response is not None and ex.opts.expected_contents is not None:
        status = checks.response_status(response)
        ok = not ex.problems and status is not None and status.status != ns.STATUS_URNS["Failure"]
        checker = ContentsChecker(
            metadata.view(response), response_ok=ok, resolve_use_id=ex.resolve_use_id
        )
        ex.problems.extend(checker.run(ex.opts.expected_contents))
    ex.make_reports()
    ex.run_assertions()


def run_null(ex: StepExecution) -> None:
    """NullTransaction: assertions only."""
    if not ex.opts.asserts:
        ex.fail("NullTransaction without Assertions")
        return
    ex.run_assertions()
