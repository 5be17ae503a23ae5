"""ITI-67 Find Document References on /fhir beside the equivalent ITI-18 FindDocuments on
/xds/registry, same gateway, same data, same run: the FHIR facade's own cost as a ratio.

Starts one gateway (registry, repository, MHD) in a temporary folder on 127.0.0.1 (SQLite by
default, or ``--db-url`` for an empty PostgreSQL database), feeds a patient (ITI-8), provides
``--documents`` documents through ITI-65 (``--per-bundle`` per Bundle), then alternates, for
``--seconds`` and at most ``--max-requests`` pairs, two searches (keep-alive clients):

- ITI-18 FindDocuments (LeafClass) for the patient's Approved documents, SOAP on /xds/registry;
- ITI-67 ``DocumentReference?patient=...&status=current&_count=N`` on /fhir (FindDocuments in
  process, GetAssociations for relatesTo, the DocumentReferences as JSON);

and the same pair with a typeCode filter. Prints median and p95 latency and the ratio of the
medians. Everything stays on loopback; every loop is bounded.

    .venv/bin/python bench/mhd_bench.py --documents 100 --seconds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.app import Gateway  # noqa: E402
from gateway.config import load_settings  # noqa: E402
from gateway.hl7.mllp import send_messages  # noqa: E402
from gateway.metadata import vocabulary as v  # noqa: E402
from gateway.metadata.query import AdhocQuery, build_query_request  # noqa: E402
from gateway.soap import transactions as tx  # noqa: E402
from gateway.soap.client import request_envelope  # noqa: E402
from gateway.soap.ns import SOAP12_MEDIA_TYPE as SOAP12  # noqa: E402
from tests.support import mhd  # noqa: E402

PATIENT = f"PAT-1^^^&{mhd.DOMAIN}&ISO"


def start(folder: Path, db_url: str) -> Gateway:
    environ = {
        "XDSI_GATEWAY_DATA_DIR": str(folder),
        "XDSI_HTTP_PORT": "0",
        "XDSI_HL7_MLLP_PORT": "0",
        "XDSI_IMAGING_SOURCE_ENABLED": "false",
        "XDSI_MHD_ENABLED": "true",
        "XDSI_LOG_LEVEL": "WARNING",
    }
    if db_url:
        environ["XDSI_REGISTRY_DATABASE_URL"] = db_url
    gw = Gateway(load_settings(environ=environ))
    gw.start()
    address = gw.mllp_address
    assert address is not None
    [ack] = send_messages(*address, [mhd.adt_a01("PAT-1")])
    assert b"MSA|AA" in ack
    return gw


def load(gw: Gateway, documents: int, per_bundle: int) -> None:
    session = requests.Session()
    done = 0
    while done < documents:
        count = min(per_bundle, documents - done)
        docs = [mhd.Document(f"document {done + n}\n".encode() * 20) for n in range(count)]
        answer = session.post(
            gw.base_url + "/fhir",
            json=mhd.provide_bundle(docs),
            headers={"Content-Type": "application/fhir+json"},
            timeout=120,
        )
        answer.raise_for_status()
        done += count


def find_documents(type_code: bool) -> AdhocQuery:
    """The ITI-18 FindDocuments an ITI-67 search for the patient's current documents runs."""
    query = AdhocQuery(query_id=v.FIND_DOCUMENTS)
    query.add("$XDSDocumentEntryPatientId", f"'{PATIENT}'")
    query.add("$XDSDocumentEntryStatus", f"('{v.STATUS_APPROVED}')")
    if type_code:
        query.add("$XDSDocumentEntryTypeCode", "('18842-5^^2.16.840.1.113883.6.1')")
    return query


def measure(
    first: Callable[[], int], second: Callable[[], int], seconds: float, limit: int
) -> tuple[list[float], list[float]]:
    """Latencies of ``first`` and ``second`` called in turn (so both see the same machine load
    on a shared host), for ``seconds`` or ``limit`` pairs, whichever comes first."""
    latencies: tuple[list[float], list[float]] = ([], [])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(latencies[0]) < limit:
        for call, found in zip((first, second), latencies, strict=True):
            began = time.perf_counter()
            count = call()
            found.append(time.perf_counter() - began)
            if count <= 0:
                raise RuntimeError("a search found nothing: the comparison would be meaningless")
    return latencies


def p95(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[94]
        if len(values) > 1
        else values[0]
    )


def compare(gw: Gateway, label: str, typed: bool, args: argparse.Namespace) -> None:
    """Measure one ITI-18 / ITI-67 pair and print a line. Both clients send prepared requests
    and only count the documents in the raw answer (no client-side parsing on either side), so
    the figures are the server's work plus the transfer."""
    session = requests.Session()
    soap_url = gw.base_url + tx.REGISTRY_PATH
    envelope = etree.tostring(
        request_envelope(
            tx.ITI_18,
            build_query_request(find_documents(typed)),
            to=soap_url,
            message_id="urn:uuid:bench",
        )
    )
    soap_headers = {"Content-Type": f'{SOAP12}; charset=UTF-8; action="{tx.ITI_18.action}"'}
    params = {"patient": "PAT-1", "status": "current", "_count": str(args.documents)}
    if typed:
        params["type"] = f"{mhd.LOINC}|18842-5"

    def soap() -> int:
        answer = session.post(soap_url, data=envelope, headers=soap_headers, timeout=60)
        return answer.content.count(b"ExtrinsicObject ") if answer.ok else -1

    def fhir() -> int:
        answer = session.get(gw.base_url + "/fhir/DocumentReference", params=params, timeout=60)
        return answer.content.count(b'"resourceType":"DocumentReference"') if answer.ok else -1

    if soap() != fhir():
        raise RuntimeError("ITI-18 and ITI-67 found different documents")
    xds, facade = measure(soap, fhir, args.seconds, args.max_requests)
    x50, f50 = statistics.median(xds) * 1000, statistics.median(facade) * 1000
    print(
        f"{label:<30}{x50:>9.1f}ms{p95(xds) * 1000:>6.1f}ms"
        f"{f50:>10.1f}ms{p95(facade) * 1000:>6.1f}ms{f50 / x50:>7.2f}x"
        f"  ({len(xds)} pairs)"
    )
    session.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--per-bundle", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=20_000)
    parser.add_argument("--db-url", default="", help="an empty database (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mhd-bench-") as folder:
        gw = start(Path(folder), args.db_url)
        try:
            began = time.perf_counter()
            load(gw, args.documents, args.per_bundle)
            took = time.perf_counter() - began
            print(f"loaded {args.documents} documents by ITI-65 in {took:.1f} s")
            header = f"{'search':<30}{'ITI-18 p50':>11}{'p95':>8}{'ITI-67 p50':>12}{'p95':>8}"
            print(f"{header}{'ratio':>8}")
            compare(gw, "patient, status", False, args)
            compare(gw, "patient, status, typeCode", True, args)
        finally:
            gw.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
