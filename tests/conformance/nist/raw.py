"""HttpTransaction steps: a raw HTTP body from the test folder (PnrXop, PnrNoXop).

The NIST engine posts ``BodyFile`` byte for byte with the ``Headers`` of the plan (toolkit
``HTTPTransaction``), which exercises a receiver's MIME/XOP parsing: MTOM, inline base64, a
URL-encoded ``cid:`` href, a DICOM payload. Those bodies hard-code a patient id from another
affinity domain and fixed uniqueIds, which a registry enforcing ITI-8 and uniqueness must refuse,
and which collide on a second run. Deviation from the toolkit, so the tests can pass against any
correct system: before sending, the runner rewrites in the SOAP root part only the ``value`` of the
DocumentEntry/SubmissionSet/Folder patientId ExternalIdentifiers (to the test's fed patient) and
uniqueId ExternalIdentifiers (to fresh uniqueIds, recorded as ``AssignedUids`` by registryObject
so a later ``UseId`` finds them). Everything else — MIME framing, line ends, encodings — is sent
exactly as in the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from xml.sax.saxutils import escape

from tests.conformance.nist import ns, soap
from tests.conformance.nist.execution import StepExecution
from tests.conformance.nist.plan import PlanError
from tests.conformance.nist.xmlutil import parse_xml

_EXTERNAL_IDENTIFIER = re.compile(rb"<(?:[\w.-]+:)?ExternalIdentifier\b[^>]*>")
_MESSAGE_ID = re.compile(rb"<(?:[\w.-]+:)?MessageID\b[^>]*>\s*([^<\s]+)\s*<")
_ENVELOPE = re.compile(rb"<(?:[\w.-]+:)?Envelope\b.*?</(?:[\w.-]+:)?Envelope>", re.S)
_TYPE_URLS = {"pr.b": "repository", "ret.b": "repository", "r.b": "registry", "sq.b": "registry"}
_ACTION_URLS = {
    ns.ACTION_ITI41: "repository",
    ns.ACTION_ITI43: "repository",
    ns.ACTION_ITI42: "registry",
    ns.ACTION_ITI18: "registry",
}


def _attribute(tag: bytes, name: str) -> str:
    found = re.search(rb"\b" + name.encode() + rb"""\s*=\s*(["'])(.*?)\1""", tag, re.S)
    return found.group(2).decode() if found else ""


def _set_value(tag: bytes, value: str) -> bytes:
    escaped = escape(value, {'"': "&quot;"}).encode()
    return re.sub(
        rb"""\bvalue\s*=\s*(["']).*?\1""", b'value="' + escaped + b'"', tag, count=1, flags=re.S
    )


def rewrite_identifiers(
    payload: bytes, patient: str, allocate: Callable[[], str]
) -> tuple[bytes, dict[str, str]]:
    """Set patientId and uniqueId ExternalIdentifier values; return (payload, owner -> uid)."""
    envelope = _ENVELOPE.search(payload)
    if envelope is None:
        raise PlanError("raw body has no SOAP Envelope")
    assigned: dict[str, str] = {}

    def replace(match: re.Match[bytes]) -> bytes:
        tag = match.group(0)
        scheme = _attribute(tag, "identificationScheme")
        if scheme in ns.PATIENT_ID_SCHEMES:
            return _set_value(tag, patient)
        if scheme in ns.UNIQUE_ID_SCHEMES:
            uid = allocate()
            assigned[_attribute(tag, "registryObject")] = uid
            return _set_value(tag, uid)
        return tag

    root = _EXTERNAL_IDENTIFIER.sub(replace, envelope.group(0))
    return payload[: envelope.start()] + root + payload[envelope.end() :], assigned


def run_http(ex: StepExecution) -> None:
    """Post the (rewritten) raw body; judge the RegistryResponse like an ITI-41 reply."""
    if ex.opts.body_file is None:
        raise PlanError(f"step {ex.step.id} has no BodyFile")
    action = _action(ex.opts.headers.get("Content-Type", ""))
    kind = _ACTION_URLS.get(action) or _TYPE_URLS.get(
        ex.step.instruction.get("type", "") if ex.step.instruction is not None else ""
    )
    if kind is None:
        raise PlanError(f"step {ex.step.id}: cannot tell the endpoint (type / action)")
    url = getattr(ex.config.endpoints, kind)
    payload, uids = rewrite_identifiers(
        ex.opts.body_file.read_bytes(), ex.session_patient, ex.ctx.new_unique_id
    )
    ex.record.assigned["AssignedUids"] = uids
    envelope = _ENVELOPE.search(payload)
    if envelope is not None:
        ex.log_element("InputMetadata", parse_xml(envelope.group(0)))
    found_id = _MESSAGE_ID.search(payload)
    try:
        reply = soap.post_raw(
            url,
            dict(ex.opts.headers),
            payload,
            timeout=ex.config.timeout,
            verify=ex.config.verify,
            cert=ex.config.cert,
        )
    except OSError as exc:
        ex.fail(f"cannot reach {url}: {exc}")
        return
    mtom = "multipart/related" in ex.opts.headers.get("Content-Type", "").lower()
    ex.evaluate(
        reply,
        request_id=found_id.group(1).decode() if found_id else "",
        response_action=action + "Response",
        top="RegistryResponse",
        expect_mtom=mtom,
    )
    ex.make_reports()
    ex.run_assertions()


def _action(content_type: str) -> str:
    found = re.search(r'action\s*=\s*"([^"]*)"', content_type)
    return found.group(1) if found else ""
