"""RetrieveTransaction (ITI-43) and ImagingDocSetRetrieveTransaction (RAD-69) steps, and their
cross-community forms: XCRTransaction (ITI-39) and ImagingDocSetRigRetrieveTransaction (RAD-75) to
a Responding Gateway, IGRTransaction (ITI-43) and ImagingDocSetIigRetrieveTransaction (RAD-69) to
an Initiating Gateway (ITI TF-2 §3.39; RAD TF-3 §4.75: the same bodies).

Standards: ITI TF-2 §3.43 (Retrieve Document Set: request and response are MTOM/XOP packages;
each ``xdsb:DocumentResponse`` carries RepositoryUniqueId, DocumentUniqueId, mimeType and the
Document) and RAD TF-3 §4.69 (Retrieve Imaging Document Set: same response body).

Content checks follow the NIST ``RetrieveB.validate_retrieve`` (read, not copied): as many
documents as requested, the request's repositoryUniqueId echoed, document data present, and —
when ``<ReferenceMetadata>`` names the query step that found the entries — mimeType, hash and size
equal to the registered ones. ``<ExpectedContents/>`` + ``<ReferenceDocument>`` ("retrieved bytes
and mimeType must match the submitted document", INDEX.md) is checked against the bytes this run
submitted under that uniqueId; only when the run did not submit it is the ReferenceDocument file
used. (Test 12029 names ``my_document.pdf`` as reference but submits ``readme.txt``; comparing with
what was really submitted keeps that upstream quirk from failing a correct repository.)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tests.conformance.nist import checks, metadata, ns, soap
from tests.conformance.nist.context import SubmittedDocument
from tests.conformance.nist.execution import StepExecution
from tests.conformance.nist.plan import PlanError, reference_document_path
from tests.conformance.nist.xmlutil import Element, first, parse_xml, substitute, text, walk


@dataclass(slots=True, kw_only=True)
class Retrieved:
    """One DocumentResponse."""

    repository_unique_id: str
    document_unique_id: str
    mime_type: str
    content: bytes | None


def retrieved_documents(response: Element, parts: dict[str, soap.Part]) -> dict[str, Retrieved]:
    """DocumentResponses of a RetrieveDocumentSetResponse, by DocumentUniqueId."""
    found = {}
    for item in walk(response, "DocumentResponse"):
        document = first(item, "Document")
        found[text(first(item, "DocumentUniqueId"))] = Retrieved(
            repository_unique_id=text(first(item, "RepositoryUniqueId")),
            document_unique_id=text(first(item, "DocumentUniqueId")),
            mime_type=text(first(item, "mimeType")),
            content=None if document is None else soap.document_content(document, parts),
        )
    return found


def _prepare(ex: StepExecution) -> tuple[Element, dict[str, str]]:
    if ex.opts.metadata_file is None:
        raise PlanError(f"step {ex.step.id} has no MetadataFile")
    request = parse_xml(ex.opts.metadata_file)
    mapping = ex.linkage()
    mapping.update(ex.use_ids())
    substitute(request, mapping)
    return request, mapping


def run_retrieve(ex: StepExecution) -> None:
    """ITI-43 to the repository, then the content checks."""
    _retrieve(ex, ex.config.endpoints.repository, ns.ACTION_ITI43)


def run_cross_gateway_retrieve(ex: StepExecution) -> None:
    """XCRTransaction: ITI-39 to the Responding Gateway (ITI TF-2 §3.39)."""
    _retrieve(ex, _endpoint(ex, ex.config.endpoints.responding_gateway), ns.ACTION_ITI39)


def run_gateway_retrieve(ex: StepExecution) -> None:
    """IGRTransaction: ITI-43 to the Initiating Gateway (ITI TF-1 §18.2.1)."""
    _retrieve(ex, _endpoint(ex, ex.config.endpoints.initiating_gateway), ns.ACTION_ITI43)


def _endpoint(ex: StepExecution, url: str) -> str:
    if not url:
        raise PlanError(f"{ex.step.transaction}: no gateway endpoint configured")
    return url


def _retrieve(ex: StepExecution, url: str, action: str) -> None:
    ex.wait_before()
    body, mapping = _prepare(ex)
    request = soap.SoapRequest(url=url, action=action, body=body, mtom=True)
    reply = ex.call(request)
    response = ex.evaluate(
        reply,
        request_id=request.message_id,
        response_action=action + "Response",
        top="RetrieveDocumentSetResponse",
        expect_mtom=True,
    )
    if response is not None and reply is not None and _expects_success(ex, response):
        got = retrieved_documents(response, reply.parts)
        _check_retrieved(ex, body, got, _expected_documents(ex, mapping))
    ex.make_reports()
    ex.run_assertions()


def run_imaging_retrieve(ex: StepExecution) -> None:
    """RAD-69 to the imaging document source: status, schema and document data present."""
    url = ex.config.endpoints.imaging_source
    if not url:
        ex.fail("no imaging document source endpoint (--imaging-source) configured")
        return
    _imaging(ex, url, ns.ACTION_RAD69, ns.ACTION_ITI43 + "Response")


def run_rig_retrieve(ex: StepExecution) -> None:
    """ImagingDocSetRigRetrieveTransaction: RAD-75 to the Responding Imaging Gateway."""
    url = _endpoint(ex, ex.config.endpoints.responding_gateway)
    _imaging(ex, url, ns.ACTION_RAD75, ns.ACTION_RAD75 + "Response")


def run_iig_retrieve(ex: StepExecution) -> None:
    """ImagingDocSetIigRetrieveTransaction: RAD-69 to the Initiating Imaging Gateway."""
    url = _endpoint(ex, ex.config.endpoints.initiating_gateway)
    _imaging(ex, url, ns.ACTION_RAD69, ns.ACTION_ITI43 + "Response")


def _imaging(ex: StepExecution, url: str, action: str, response_action: str) -> None:
    ex.wait_before()
    body, _ = _prepare(ex)
    request = soap.SoapRequest(url=url, action=action, body=body, mtom=True)
    reply = ex.call(request)
    response = ex.evaluate(
        reply,
        request_id=request.message_id,
        response_action=response_action,
        top="RetrieveDocumentSetResponse",
        expect_mtom=True,
    )
    if response is not None and reply is not None and _expects_success(ex, response):
        for uid, item in retrieved_documents(response, reply.parts).items():
            if not item.content:
                ex.fail(f"document {uid}: no document data")
            if not item.mime_type:
                ex.fail(f"document {uid}: no mimeType")
    ex.make_reports()
    ex.run_assertions()


def _expects_success(ex: StepExecution, response: Element) -> bool:
    status = checks.response_status(response)
    return (
        status is not None
        and status.status != ns.STATUS_URNS["Failure"]
        and not ex.step.expected_error_message
        and "Failure" not in ex.step.expected_status
    )


def _expected_documents(ex: StepExecution, mapping: dict[str, str]) -> dict[str, SubmittedDocument]:
    """What each requested uniqueId must return: submitted in this run, else ReferenceDocument."""
    expected = dict(ex.ctx.documents)
    for uid, relative in ex.opts.reference_documents:
        resolved = uid
        for symbol, value in mapping.items():
            resolved = resolved.replace(symbol, value)
        if resolved not in expected:
            path = reference_document_path(ex.section, relative)
            expected[resolved] = SubmittedDocument(content=path.read_bytes(), mime_type="")
    return expected


def _check_retrieved(
    ex: StepExecution,
    request: Element,
    got: dict[str, Retrieved],
    expected: dict[str, SubmittedDocument],
) -> None:
    registered = _reference_entries(ex)
    requests = list(walk(request, "DocumentRequest"))
    if len(requests) != len(got):
        ex.fail(f"requested {len(requests)} documents, got {len(got)}")
    for item in requests:
        uid = text(first(item, "DocumentUniqueId"))
        answer = got.get(uid)
        if answer is None:
            ex.fail(f"no DocumentResponse for {uid}")
            continue
        wanted_repository = text(first(item, "RepositoryUniqueId"))
        if answer.repository_unique_id != wanted_repository:
            ex.fail(
                f"{uid}: RepositoryUniqueId {answer.repository_unique_id} "
                f"is not the requested {wanted_repository}"
            )
        if answer.content is None:
            ex.fail(f"{uid}: no document data")
            continue
        _compare(ex, uid, answer, expected.get(uid), registered.get(uid))


def _compare(
    ex: StepExecution,
    uid: str,
    answer: Retrieved,
    sent: SubmittedDocument | None,
    entry: Element | None,
) -> None:
    content = answer.content or b""
    if ex.opts.expected_mime_type and answer.mime_type != ex.opts.expected_mime_type:
        ex.fail(f"{uid}: mimeType {answer.mime_type}, expected {ex.opts.expected_mime_type}")
    if sent is not None:
        if content != sent.content:
            ex.fail(
                f"{uid}: retrieved {len(content)} bytes differ from the "
                f"{len(sent.content)} bytes submitted"
            )
        if sent.mime_type and answer.mime_type != sent.mime_type:
            ex.fail(f"{uid}: mimeType {answer.mime_type}, submitted {sent.mime_type}")
    if entry is None:
        return
    registered_mime = entry.get("mimeType", "")
    if registered_mime and answer.mime_type != registered_mime:
        ex.fail(f"{uid}: mimeType {answer.mime_type}, registered {registered_mime}")
    size, digest = metadata.slot_value(entry, "size"), metadata.slot_value(entry, "hash")
    if size and int(size) != len(content):
        ex.fail(f"{uid}: size {len(content)}, registered {size}")
    if digest and digest.lower() != hashlib.sha1(content).hexdigest():
        ex.fail(f"{uid}: SHA-1 {hashlib.sha1(content).hexdigest()}, registered {digest}")


def _reference_entries(ex: StepExecution) -> dict[str, Element]:
    """DocumentEntries (by uniqueId) of the query step named by ``<ReferenceMetadata>``."""
    reference = ex.opts.reference_metadata
    if reference is None:
        return {}
    test, section = ex.ctx.resolve_testdir(ex.where, reference.get("testdir", ""))
    log = ex.ctx.section_logs.get((test, section))
    step = reference.get("step", "")
    results = [] if log is None else log.xpath("TestStep[@id=$s]/*/Result/*", s=step)
    if not results:
        ex.fail(f"ReferenceMetadata: no query result of {test}/{section}/{step}")
        return {}
    entries = metadata.view(results[-1]).extrinsic_objects
    return {metadata.external_identifier(e, ns.DE_UNIQUE_ID): e for e in entries}
