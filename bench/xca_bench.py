"""Benchmark of the Initiating Gateway: FindDocuments across three communities through A's
``/xca/ig`` against the slowest single community asked directly, in one run.

    python bench/xca_bench.py                        # 30 documents per community, 40 rounds
    python bench/xca_bench.py --documents 100 --rounds 60

Three ``xdsi-gateway serve`` processes on loopback are communities A, B and C (each its own
registry on SQLite, its own process); A's Initiating Gateway lists B and C. The same patient is
fed to each (ITI-8) and ``--documents`` DocumentEntries are registered for it in each (ITI-42,
realistic XDS-I metadata from ``registry_data.Generator``).

Then, round after round, one LeafClass FindDocuments for the patient goes to A's Initiating
Gateway (it asks A's registry and, by ITI-38 in parallel, B and C, and merges the 3 x N entries)
and one to each community's registry directly (N entries). Each round asks the four in a
rotating order, so the four see the same machine. The figure is the median time through the
gateway divided by the median time of the slowest community asked directly: the price of
asking every community at once instead of one. Aim: at most 1.3x. The three communities' queries
and the gateway's merge (3 x N entries) run at once on the machine's cores, so the figure also
depends on how many there are (printed, with the load average).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import registry_data as data  # noqa: E402

from gateway.consumer.queries import QueryOptions, build_slots  # noqa: E402
from gateway.hl7.mllp import send_messages  # noqa: E402
from gateway.metadata.ebrim import build_submit_objects_request  # noqa: E402
from gateway.metadata.query import AdhocQuery, build_query_request  # noqa: E402
from gateway.metadata.retrieve import read_registry_response  # noqa: E402
from gateway.soap import ns  # noqa: E402
from gateway.soap.client import SoapClient  # noqa: E402
from gateway.soap.transactions import IG_ITI_18, ITI_18, ITI_42  # noqa: E402

HOMES = {"A": "urn:oid:1.3.6.1.4.1.21367.13.70.31", "B": "urn:oid:1.3.6.1.4.1.21367.13.70.32",
         "C": "urn:oid:1.3.6.1.4.1.21367.13.70.33"}  # fmt: skip
_HTTP = re.compile(r"HTTP listening on (\w+)://([^:\s]+):(\d+)")
_MLLP = re.compile(r"MLLP listening on ([^:\s]+):(\d+)")


@dataclass
class Community:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    base: str
    mllp: tuple[str, int]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start(folder: Path, name: str, communities: dict[str, str]) -> Community:
    """``xdsi-gateway serve`` for one community, its ports read back from its log."""
    log = folder / f"{name}.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XDSI_GATEWAY_DATA_DIR": str(folder / name),
        "XDSI_HTTP_PORT": "0",
        "XDSI_HL7_MLLP_PORT": "0",
        "XDSI_IMAGING_SOURCE_ENABLED": "false",
        "XDSI_LOG_LEVEL": "INFO",
        "XDSI_XCA_ENABLED": "true",
        "XDSI_XCA_HOME_COMMUNITY_ID": HOMES[name],
        "XDSI_XCA_COMMUNITIES": ",".join(f"{h}={u}" for h, u in communities.items()),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"], env=env, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        http, mllp = _HTTP.search(text), _MLLP.search(text)
        if http and mllp and "ready" in text:
            base = f"{http[1]}://{http[2]}:{http[3]}"
            return Community(name, process, log, base, (mllp[1], int(mllp[2])))
        if process.poll() is not None:
            raise SystemExit(f"community {name} exited:\n{text}")
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"community {name} did not start:\n{log.read_text(errors='replace')}")


def feed(community: Community, patient: str) -> None:
    message = (
        f"MSH|^~\\&|BENCH|BENCH|X|X|20240101000000||ADT^A01^ADT_A01|{uuid.uuid4().hex[:12]}|P|2.5\r"
        f"EVN|A01|20240101000000\rPID|||{patient}||Bench^Patient\rPV1||O"
    ).encode()
    [ack] = send_messages(*community.mllp, [message])
    assert b"MSA|AA" in ack, ack


def register(community: Community, patient: str, documents: int, seed: int) -> None:
    """Register ``documents`` entries of the patient at the community's registry (ITI-42)."""
    generator = data.Generator(seed=seed)
    created = sorted(generator.rng.randint(data.FIRST_CREATION, data.LAST_CREATION)
                     for _ in range(documents))  # fmt: skip
    with SoapClient(community.base + "/xds/registry", timeout=60) as client:
        for start_at in range(0, documents, 3):
            chunk = created[start_at : start_at + 3]
            registration = generator.submission(patient, 1, chunk)
            body = build_submit_objects_request(registration.submission)
            answer = read_registry_response(client.call(ITI_42, body).body)
            assert answer.status.short == "Success", answer.errors


def find_documents(patient: str) -> bytes:
    query_id, slots = build_slots(QueryOptions(patient_id=patient, statuses=["all"]))
    from lxml import etree

    return etree.tostring(build_query_request(AdhocQuery(query_id=query_id, slots=slots)))


def timed(client: SoapClient, transaction: object, body: object, expected: int) -> float:
    began = time.perf_counter()
    answer = client.call(transaction, body)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - began
    entries = sum(1 for _ in answer.body.iter(ns.qname(ns.RIM, "ExtrinsicObject")))
    if entries != expected:
        raise SystemExit(f"{client.address}: {entries} entries, expected {expected}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=30, help="entries per community")
    parser.add_argument("--rounds", type=int, default=40, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=5, help="rounds not measured")
    args = parser.parse_args(argv)
    from lxml import etree

    folder = Path(tempfile.mkdtemp(prefix="xdsi-xca-bench-"))
    started: list[Community] = []
    try:
        b = start(folder, "B", {})
        started.append(b)
        c = start(folder, "C", {})
        started.append(c)
        a = start(folder, "A", {HOMES["B"]: b.base + "/xca/rg", HOMES["C"]: c.base + "/xca/rg"})
        started.append(a)
        patient = f"XCABENCH{uuid.uuid4().hex[:6].upper()}^^^&{data.DOMAIN}&ISO"
        for seed, community in enumerate(started, start=1):
            feed(community, patient)
            register(community, patient, args.documents, seed)
        body = etree.fromstring(find_documents(patient))
        targets = [("A's Initiating Gateway", a.base + "/xca/ig", IG_ITI_18, 3 * args.documents)]
        targets += [
            (f"{c.name}'s registry directly", c.base + "/xds/registry", ITI_18, args.documents)
            for c in (a, b, c)
        ]
        clients = [SoapClient(url, timeout=60) for _, url, _, _ in targets]
        times: list[list[float]] = [[] for _ in targets]
        for round_number in range(args.warmup + args.rounds):
            for offset in range(len(targets)):
                index = (round_number + offset) % len(targets)
                _, _, transaction, expected = targets[index]
                elapsed = timed(clients[index], transaction, body, expected)
                if round_number >= args.warmup:
                    times[index].append(elapsed)
        report(targets, times, args)
        for client in clients:
            client.close()
    finally:
        for community in reversed(started):
            community.stop()
    return 0


def report(
    targets: list[tuple[str, str, object, int]], times: list[list[float]], args: argparse.Namespace
) -> None:
    print(
        f"FindDocuments (LeafClass), {args.documents} entries per community, "
        f"{args.rounds} rounds after {args.warmup} of warm-up, one process per community"
    )
    medians = []
    for (name, _, _, expected), samples in zip(targets, times, strict=True):
        median = statistics.median(samples)
        p90 = sorted(samples)[int(0.9 * (len(samples) - 1))]
        medians.append(median)
        print(f"  {name:<26} {expected:>5} entries  median {median * 1000:7.1f} ms  "
              f"p90 {p90 * 1000:7.1f} ms")  # fmt: skip
    slowest = max(medians[1:])
    ratio = medians[0] / slowest
    print(
        f"through A's Initiating Gateway / slowest community directly: {ratio:.2f}x "
        f"(aim: at most 1.3x)"
    )
    # What the ratio depends on: the gateway's answer holds every community's entries (3 x N to
    # build, send and parse) and the three communities' queries run at once, on the cores there
    # are. The three asked one after another is the other bound.
    print(
        f"through A's Initiating Gateway / the three asked one after another: "
        f"{medians[0] / sum(medians[1:]):.2f}x   ({os.cpu_count()} CPU cores, load average "
        f"{os.getloadavg()[0]:.1f} at the end)"
    )


if __name__ == "__main__":
    sys.exit(main())
