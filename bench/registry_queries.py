"""The four measured ITI-18 queries of ``registry_bench.py``: their pre-built SOAP requests and
their hand-written SQL twins (same filter, same columns, same order).

Standard: ITI TF-2 §3.18.4.1.2 (request), §3.18.4.1.2.3.7.1 FindDocuments, §3.18.4.1.2.3.7.2
FindSubmissionSets, §3.18.4.1.2.3.7.5 GetDocuments; Appendix V (WS-Addressing headers).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import registry_data as data
from lxml import etree

from gateway.metadata import vocabulary as v
from gateway.metadata.query_values import quote, quote_list
from gateway.registry.queries import table as t
from gateway.soap import ns
from gateway.soap.transactions import ITI_18

APPROVED = str(v.STATUS_APPROVED)
STABLE = str(v.DOCUMENT_ENTRY_STABLE)
# The code filter of "FindDocuments + codes": what an imaging document consumer asks for
# (KOS manifests of CT/MR/US studies), three AND-ed code slots.
CODE_FILTER: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
    (t.DE_CLASS_CODE, "classCode", (data.CODES["class_code"][0],)),
    (t.DE_FORMAT_CODE, "formatCode", (data.KOS,)),
    (t.DE_EVENT_CODE_LIST, "eventCodeList", data.CODES["event_code_list"][:3]),
)


def soap_request(url: str, query_id: str, slots: Sequence[tuple[str, str]]) -> bytes:
    """A complete ITI-18 SOAP 1.2 request (LeafClass) with these (slot name, Value) pairs.

    Standard: ITI TF-2 §3.18.4.1.2, Appendix V (WS-Addressing headers).
    """
    must = {ns.qname(ns.SOAP12, "mustUnderstand"): "true"}
    envelope = etree.Element(
        ns.qname(ns.SOAP12, "Envelope"),
        nsmap={"env": ns.SOAP12, "wsa": ns.WSA, "query": ns.QUERY, "rim": ns.RIM},
    )
    header = etree.SubElement(envelope, ns.qname(ns.SOAP12, "Header"))
    etree.SubElement(header, ns.qname(ns.WSA, "Action"), must).text = ITI_18.action
    message_id = etree.SubElement(header, ns.qname(ns.WSA, "MessageID"), must)
    message_id.text = f"urn:uuid:{uuid.uuid4()}"
    reply = etree.SubElement(header, ns.qname(ns.WSA, "ReplyTo"), must)
    etree.SubElement(reply, ns.qname(ns.WSA, "Address")).text = ns.WSA_ANONYMOUS
    etree.SubElement(header, ns.qname(ns.WSA, "To"), must).text = url
    body = etree.SubElement(envelope, ns.qname(ns.SOAP12, "Body"))
    request = etree.SubElement(body, ITI_18.request_qname)
    option = etree.SubElement(request, ns.qname(ns.QUERY, "ResponseOption"))
    option.set("returnComposedObjects", "true")
    option.set("returnType", "LeafClass")
    query = etree.SubElement(request, ns.qname(ns.RIM, "AdhocQuery"), id=query_id)
    for name, value in slots:
        slot = etree.SubElement(query, ns.qname(ns.RIM, "Slot"), name=name)
        values = etree.SubElement(slot, ns.qname(ns.RIM, "ValueList"))
        etree.SubElement(values, ns.qname(ns.RIM, "Value")).text = value
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def _code_values(codes: Sequence[Any]) -> str:
    return quote_list(f"{c.code}^^{c.scheme}" for c in codes)


@dataclass(slots=True, kw_only=True)
class QueryKind:
    """One measured query: its gateway requests and its hand-written SQL, per target."""

    name: str
    targets: list[str]  # patient ids or document uniqueIds
    request: Callable[[str, str], bytes]  # (endpoint url, target) -> SOAP request
    sql: str  # one statement, ``{p}`` = the driver's parameter mark
    sql_params: Callable[[str], tuple[Any, ...]]


def _find_documents(url: str, pid: str) -> bytes:
    return soap_request(
        url,
        t.FIND_DOCUMENTS,
        [(t.DE_PATIENT_ID, quote(pid)), (t.DE_STATUS, quote_list([APPROVED]))],
    )


def _find_documents_codes(url: str, pid: str) -> bytes:
    slots = [(t.DE_PATIENT_ID, quote(pid)), (t.DE_STATUS, quote_list([APPROVED]))]
    slots += [(name, _code_values(codes)) for name, _attribute, codes in CODE_FILTER]
    return soap_request(url, t.FIND_DOCUMENTS, slots)


def _get_documents(url: str, uid: str) -> bytes:
    return soap_request(url, t.GET_DOCUMENTS, [(t.DE_UNIQUE_ID, quote_list([uid]))])


def _find_submission_sets(url: str, pid: str) -> bytes:
    return soap_request(
        url,
        t.FIND_SUBMISSION_SETS,
        [(t.SS_PATIENT_ID, quote(pid)), (t.SS_STATUS, quote_list([APPROVED]))],
    )


def _code_exists() -> tuple[str, list[str]]:
    """The EXISTS clauses of CODE_FILTER and their parameters."""
    clauses, params = [], []
    for _name, attribute, codes in CODE_FILTER:
        pairs = " OR ".join("(c.code = {p} AND c.scheme = {p})" for _ in codes)
        clauses.append(
            "AND EXISTS (SELECT 1 FROM object_code c WHERE c.object_id = d.id "
            f"AND c.attribute = {{p}} AND ({pairs}))"
        )
        params.append(attribute)
        for code in codes:
            params += [code.code, code.scheme]
    return " ".join(clauses), params


def query_kinds(patients: list[str], documents: list[str]) -> list[QueryKind]:
    """The four measured queries (FindDocuments with and without codes, GetDocuments by
    uniqueId, FindSubmissionSets) and their SQL twins (same filter, same columns, same order)."""
    find = (
        "SELECT d.* FROM document_entry d WHERE d.patient_id = {p} AND d.status = {p} "
        "AND d.object_type = {p} "
    )
    codes_sql, codes_params = _code_exists()
    return [
        QueryKind(
            name="FindDocuments (patient)",
            targets=patients,
            request=_find_documents,
            sql=find + "ORDER BY d.seq, d.id",
            sql_params=lambda pid: (pid, APPROVED, STABLE),
        ),
        QueryKind(
            name="FindDocuments (patient + 3 codes)",
            targets=patients,
            request=_find_documents_codes,
            sql=find + codes_sql + " ORDER BY d.seq, d.id",
            sql_params=lambda pid: (pid, APPROVED, STABLE, *codes_params),
        ),
        QueryKind(
            name="GetDocuments (uniqueId)",
            targets=documents,
            request=_get_documents,
            sql="SELECT d.* FROM document_entry d WHERE d.unique_id = {p} ORDER BY d.seq, d.id",
            sql_params=lambda uid: (uid,),
        ),
        QueryKind(
            name="FindSubmissionSets (patient)",
            targets=patients,
            request=_find_submission_sets,
            sql="SELECT s.* FROM submission_set s WHERE s.patient_id = {p} AND s.status = {p} "
            "ORDER BY s.seq, s.id",
            sql_params=lambda pid: (pid, APPROVED),
        ),
    ]
