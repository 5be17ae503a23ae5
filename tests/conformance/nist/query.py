"""StoredQueryTransaction (ITI-18), XCQTransaction (ITI-38), IGQTransaction (ITI-18 to an
Initiating Gateway) and NullTransaction steps.

Standards: ITI TF-2 §3.18 (Registry Stored Query: ``query:AdhocQueryRequest`` to the registry,
``query:AdhocQueryResponse`` back, synchronous, SOAP 1.2 without MTOM), §3.38 (the same bodies
under the Cross Gateway Query action). ``NullTransaction`` sends
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
    """ITI-18 to the registry: send the query file and check the returned metadata."""
    _query(ex, ex.config.endpoints.registry, ns.ACTION_ITI18)


def run_cross_gateway_query(ex: StepExecution) -> None:
    """XCQTransaction: ITI-38 to the Responding Gateway (ITI TF-2 §3.38). The engine reports
    the gateway's configured homeCommunityId as ``$testdata_home$`` (15811 compares with it)."""
    ex.record.reports["$testdata_home$"] = ex.config.home
    _query(ex, _endpoint(ex, ex.config.endpoints.responding_gateway), ns.ACTION_ITI38)


def run_gateway_query(ex: StepExecution) -> None:
    """IGQTransaction: ITI-18 to the Initiating Gateway (ITI TF-1 §18.2.1, XDS Affinity Domain
    option)."""
    _query(ex, _endpoint(ex, ex.config.endpoints.initiating_gateway), ns.ACTION_ITI18)


def _endpoint(ex: StepExecution, url: str) -> str:
    if not url:
        raise PlanError(f"{ex.step.transaction}: no gateway endpoint configured")
    return url


def _query(ex: StepExecution, url: str, action: str) -> None:
    """Send the query file (placeholders resolved) and check the returned metadata."""
    ex.wait_before()
    if ex.opts.metadata_file is None:
        raise PlanError(f"step {ex.step.id} has no MetadataFile")
    query = parse_xml(ex.opts.metadata_file)
    substitute(query, ex.linkage(uses_now=b"$now$" in etree.tostring(query)))
    substitute(query, ex.use_ids())
    request = soap.SoapRequest(url=url, action=action, body=query)
    reply = ex.call(request)
    response = ex.evaluate(
        reply,
        request_id=request.message_id,
        response_action=action + "Response",
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


def run_plugins(ex: StepExecution) -> None:
    """XmlDetailTransaction: NIST plug-in assertions (``<Assert process=...>``), checked by the
    ``RunConfig.plugins`` a test provides (they compare with simulator logs and reference images
    the runner does not have)."""
    if ex.config.plugins is None:
        ex.fail("XmlDetailTransaction: no plug-in checker configured for this run")
        return
    ex.config.plugins(ex)
