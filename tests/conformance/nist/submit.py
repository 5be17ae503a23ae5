"""RegisterTransaction (ITI-42) and ProvideAndRegisterTransaction (ITI-41) steps.

Standards: ITI TF-2 §3.42 (Register Document Set-b: ``lcm:SubmitObjectsRequest`` to the registry,
``rs:RegistryResponse`` back) and §3.41 (Provide and Register Document Set-b:
``xdsb:ProvideAndRegisterDocumentSetRequest`` with one ``xdsb:Document`` per DocumentEntry, MTOM/XOP
by default — ITI TF-2 Appendix V §V.3.3.2.2 —, inline base64 with ``<NoMTOM/>``).
"""

from __future__ import annotations

import base64
import time

from lxml import etree

from tests.conformance.nist import checks, ebrim, metadata, ns, soap
from tests.conformance.nist.context import SubmittedDocument
from tests.conformance.nist.execution import StepExecution
from tests.conformance.nist.plan import PlanError
from tests.conformance.nist.xmlutil import Element, local, parse_xml, substitute


def prepare_submission(ex: StepExecution) -> tuple[Element, dict[str, str]]:
    """Load the step's metadata file and do what the NIST engine does before sending.

    Order (NIST ``prepareMetadata``): UseReport/standard linkage, patient id (session patient, or
    the un-fed alternate with ``<AltPatientId/>``; skipped with ``<NoPatientId/>``), UseId
    linkage, fresh uniqueIds (``<NoAssignUids [id=]/>``), sourceId, ``<AssignUuids/>``, then the
    2.1 -> 3.0 translation (unless ``<NoConvert/>``). Returns the request and the uuid map.
    """
    opts, record = ex.opts, ex.record
    if opts.metadata_file is None:
        raise PlanError(f"step {ex.step.id} has no MetadataFile")
    root = parse_xml(opts.metadata_file)
    linkage = ex.linkage()
    substitute(root, linkage)
    if not opts.no_patient_id:
        patient = ex.ctx.alt_patient_id if ex.step.alt_patient_id else ex.session_patient
        # A step that names its patient (UseReport ... useAs="$patientid$", e.g. the feed of
        # 15818 in 20000d/20000e) gets that one, as in the NIST engine's linkage.
        if not ex.step.alt_patient_id and any(
            u.get("useAs") == "$patientid$" for u in opts.use_reports
        ):
            patient = linkage["$patientid$"]
        record.assigned["AssignedPatientId"] = metadata.assign_patient_ids(root, patient)
    substitute(root, ex.use_ids())
    if opts.assign_uids:
        uids = metadata.assign_unique_ids(root, ex.ctx.new_unique_id, opts.no_assign_uid_to)
        record.assigned["AssignedUids"] = uids
        record.reports.update({f"{name}_uid": value for name, value in uids.items()})
    record.assigned["AssignedSourceId"] = metadata.assign_source_ids(root, ex.ctx.source_id)
    uuids: dict[str, str] = {}
    if opts.assign_uuids:
        uuids = metadata.assign_uuids(root, ex.ctx.new_uuid)
        record.assigned["AssignedUuids"] = uuids
        record.reports.update({f"{name}_uuid": value for name, value in uuids.items()})
    if ebrim.is_v21(root) and not opts.no_convert:
        root = ebrim.to_v3(root)
    return root, uuids


def run_register(ex: StepExecution, action: str = ns.ACTION_ITI42) -> None:
    """ITI-42: send the prepared SubmitObjectsRequest to the registry."""
    ex.wait_before()
    root, _ = prepare_submission(ex)
    request = soap.SoapRequest(url=ex.config.endpoints.registry, action=action, body=root)
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


def run_update(ex: StepExecution) -> None:
    """ITI-57 (MuTransaction): prepared as a RegisterTransaction (the toolkit's MuTransaction
    extends it), sent with the Update Document Set action. ITI TF-2b §3.57.4.1.2."""
    run_register(ex, ns.ACTION_ITI57)


def run_provide_and_register(ex: StepExecution) -> None:
    """ITI-41: send metadata plus the step's documents to the repository."""
    ex.wait_before()
    root, uuids = prepare_submission(ex)
    body = etree.Element(
        ns.q(ns.XDSB, "ProvideAndRegisterDocumentSetRequest"), nsmap={"xdsb": ns.XDSB}
    )
    body.append(root)
    entries = {
        eo.get("id"): eo
        for eo in metadata.top_level_objects(root)
        if local(eo) == "ExtrinsicObject"
    }
    parts: list[soap.Part] = []
    sent: dict[str, SubmittedDocument] = {}
    for symbolic, path in ex.opts.documents:
        document_id = uuids.get(symbolic, symbolic)
        content = path.read_bytes()
        entry = entries.get(document_id)
        mime_type = entry.get("mimeType", "") if entry is not None else ""
        document = etree.SubElement(body, ns.q(ns.XDSB, "Document"), id=document_id)
        if ex.opts.no_mtom:
            document.text = base64.b64encode(content).decode("ascii")
        else:
            content_id = soap.new_content_id("doc")
            document.append(soap.xop_include(content_id))
            parts.append(
                soap.Part(
                    content_id=content_id,
                    content_type=mime_type or "application/octet-stream",
                    data=content,
                )
            )
        if entry is not None:
            unique_id = metadata.external_identifier(entry, ns.DE_UNIQUE_ID)
            sent[unique_id] = SubmittedDocument(content=content, mime_type=mime_type)
    target = ex.config.target(ex.where.test, ex.where.section)
    # The engine reports the community a preload went to (XCA tests read $testdata_home$).
    ex.record.reports["$testdata_home$"] = target.home if target else ex.config.home
    if target is not None and target.repository_uid:
        ex.record.reports["$testdata_repid$"] = target.repository_uid
    request = soap.SoapRequest(
        url=target.repository if target else ex.config.endpoints.repository,
        action=ns.ACTION_ITI41,
        body=body,
        parts=parts,
        mtom=not ex.opts.no_mtom,
    )
    reply = ex.call(request)
    response = ex.evaluate(
        reply,
        request_id=request.message_id,
        response_action=ns.ACTION_ITI41 + "Response",
        top="RegistryResponse",
        expect_mtom=request.mtom,
    )
    status = checks.response_status(response) if response is not None else None
    if status is not None and status.status == ns.STATUS_URNS["Success"]:
        ex.ctx.documents.update(sent)  # what a later RetrieveTransaction must get back
    ex.make_reports()
    ex.run_assertions()
