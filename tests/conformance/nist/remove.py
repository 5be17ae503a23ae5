"""RemoveMetadataTransaction (ITI-62) and RdTransaction (ITI-86) steps of the RMD tests.

ITI TF-2b §3.62: ``lcm:RemoveObjectsRequest`` to the registry, action
``urn:ihe:iti:2010:DeleteDocumentSet``; §3.86: ``rmd:RemoveDocumentsRequest`` to the repository,
action ``urn:ihe:iti:2017:RemoveDocuments``; both answer ``rs:RegistryResponse``. The NIST engine
sends these files as written (``<ParseMetadata>False</ParseMetadata>``: no patient id, uniqueId or
uuid assignment) after placeholder linkage (``UseId``, ``UseReport``), which is what this does.
"""

from __future__ import annotations

import time

from tests.conformance.nist import ns, soap
from tests.conformance.nist.execution import StepExecution
from tests.conformance.nist.plan import PlanError
from tests.conformance.nist.xmlutil import parse_xml, substitute


def _send(ex: StepExecution, url: str, action: str) -> None:
    ex.wait_before()
    if ex.opts.metadata_file is None:
        raise PlanError(f"step {ex.step.id} has no MetadataFile")
    root = parse_xml(ex.opts.metadata_file)
    substitute(root, ex.linkage())
    substitute(root, ex.use_ids())
    request = soap.SoapRequest(url=url, action=action, body=root)
    reply = ex.call(request)
    ex.ctx.last_write = time.time()
    ex.evaluate(
        reply,
        request_id=request.message_id,
        response_action=action + "Response",
        top="RegistryResponse",
    )
    ex.make_reports()
    ex.run_assertions()


def run_remove_metadata(ex: StepExecution) -> None:
    """ITI-62: send the RemoveObjectsRequest to the registry."""
    _send(ex, ex.config.endpoints.registry, ns.ACTION_ITI62)


def run_remove_documents(ex: StepExecution) -> None:
    """ITI-86: send the RemoveDocumentsRequest to the repository."""
    _send(ex, ex.config.endpoints.repository, ns.ACTION_ITI86)
