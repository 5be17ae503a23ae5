"""``xdsi-gateway demo --communities N``: the exchange across N communities (XCA, XCA-I).

With ``--communities 1`` (the default) this is the one-gateway demo of :mod:`gateway.demo`. With
N > 1:

1. start N communities on loopback in this process, each a whole gateway (registry, repository,
   imaging document source, ITI-8 listener, Responding and Initiating Gateways) with its own
   homeCommunityId and data folder; the first lists the others as its remote communities;
2. feed the patient to each (ITI-8; one affinity domain, so the same identifier everywhere);
3. generate a study per community and send it over DICOM (C-STORE);
4. wait until each community has registered its manifest (RAD-68);
5. query the first community's Initiating Gateway (ITI-18, answered by ITI-38 from the others):
   one manifest per community, each with its homeCommunityId;
6. fetch every study from the first community (ITI-18, ITI-43 and RAD-69 to its Initiating
   Gateway, which uses ITI-39 and RAD-75 for the others' documents);
7. verify every instance of every study byte for byte.

Exit 0 when every instance is verified; the folder is removed unless ``--keep``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TextIO

from gateway import demo
from gateway.app import Gateway
from gateway.config import load_settings
from gateway.consumer.clients import RegistryQueryClient
from gateway.consumer.fetch import StudyFetcher
from gateway.consumer.queries import KOS_FORMAT_CODE, QueryOptions, build_slots
from gateway.consumer.report import FetchRequest
from gateway.consumer.settings import consumer_settings
from gateway.consumer.store import FolderDestination
from gateway.consumer.table import render_table
from gateway.soap.transactions import RESPONDING_GATEWAY_PATH

STEPS = 7
DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
HOME_ROOT = "urn:oid:1.3.6.1.4.1.21367.13.70"  # community n: HOME_ROOT.n
NAMES = "ABCDEFGHI"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``xdsi-gateway demo`` (one community, or ``--communities N``)."""
    demo.add_arguments(parser)
    parser.add_argument(
        "--communities",
        type=int,
        default=1,
        choices=range(1, len(NAMES) + 1),
        metavar="N",
        help="N communities (XCA, XCA-I): a study published in each, all fetched from the "
        "first through its Initiating Gateway (default 1: one gateway, no XCA)",
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the demo; return the exit status."""
    if getattr(args, "communities", 1) <= 1:
        return demo.run(args, out)
    out = out or sys.stdout
    folder = Path(tempfile.mkdtemp(prefix="xdsi-demo-xca-"))
    print(f"xdsi-gateway demo: {args.communities} communities in {folder}", file=out)
    steps = demo.Steps(out, total=STEPS)
    gateways: list[Gateway] = []
    try:
        verified = _exchange(args, folder, steps, gateways)
    except demo.DemoError as exc:
        print(f"demo FAILED: {exc}", file=out)
        return demo.EXIT_FAILURE
    finally:
        for gateway in reversed(gateways):
            gateway.stop()
        if args.keep:
            print(f"data kept in {folder}", file=out)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    total = time.monotonic() - steps.started
    print(
        f"verified {verified} instances of {args.communities} communities byte for byte "
        f"in {total:.1f} s",
        file=out,
    )
    return demo.EXIT_OK


def _start(folder: Path, number: int, idle: int, remote: list[Gateway]) -> Gateway:
    communities = ",".join(
        f"{g.settings.xca.home_community_id}={g.base_url}{RESPONDING_GATEWAY_PATH}" for g in remote
    )
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(folder / NAMES[number - 1]),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": str(max(idle, 1)),
            "XDSI_IMAGING_SOURCE_UNIQUE_ID": f"1.3.6.1.4.1.21367.13.80.{100 + number}",
            "XDSI_REPOSITORY_UNIQUE_ID": f"1.3.6.1.4.1.21367.13.40.{100 + number}",
            "XDSI_REGISTRY_PATIENT_ID_DOMAIN": DOMAIN,
            "XDSI_XCA_ENABLED": "true",
            "XDSI_XCA_HOME_COMMUNITY_ID": f"{HOME_ROOT}.{number}",
            "XDSI_XCA_COMMUNITIES": communities,
            "XDSI_LOG_LEVEL": "WARNING",
        }
    )
    gateway = Gateway(settings)
    try:
        gateway.start()
    except OSError as exc:
        raise demo.DemoError(f"community {NAMES[number - 1]} did not start: {exc}") from exc
    return gateway


def _exchange(
    args: argparse.Namespace, folder: Path, steps: demo.Steps, gateways: list[Gateway]
) -> int:
    count = args.communities
    with steps.step(f"start {count} communities, each a whole gateway") as details:
        for number in range(count, 0, -1):  # the others first: the first one lists them
            gateways.insert(0, _start(folder, number, args.idle, list(gateways)))
        for name, gateway in zip(NAMES, gateways, strict=False):
            details.append(
                f"{name}: {gateway.settings.xca.home_community_id} at {gateway.base_url}"
            )
    patient_local = f"DEMO-{uuid.uuid4().hex[:8].upper()}"
    patient = f"{patient_local}^^^&{DOMAIN}&ISO"
    with steps.step(f"feed patient {patient} to each (ITI-8)") as details:
        for name, gateway in zip(NAMES, gateways, strict=False):
            details.append(f"{name}: {demo._feed(gateway, patient_local, DOMAIN)}")
    sent: list[Path] = []
    studies: list[str] = []
    each = max(args.instances // count, 3)
    with steps.step(f"send a study of {each} instances to each (C-STORE)") as details:
        for name, gateway in zip(NAMES, gateways, strict=False):
            spec, paths = demo._generate(
                folder / f"sent-{name}", patient_local, gateway.settings, each
            )
            demo.send_files(demo._dicom_address(gateway), paths)
            sent.extend(paths)
            studies.append(spec.study_uid)
            details.append(f"{name}: study {spec.study_uid}")
    with steps.step(f"wait for the manifests (study idle {args.idle} s, RAD-68)") as details:
        for name, gateway, study in zip(NAMES, gateways, studies, strict=False):
            own = consumer_settings(gateway.settings, base_url=gateway.base_url)
            entry = demo.wait_for_manifest(own, patient, study, args.timeout)
            details.append(f"{name}: manifest {entry.unique_id}")
    first = consumer_settings(gateways[0].settings, base_url=gateways[0].base_url)
    with steps.step("query A's Initiating Gateway (ITI-18; ITI-38 to the others)") as details:
        details.extend(_query(first.require_registry(), patient).splitlines())
    with steps.step("fetch every study from A (ITI-43, RAD-69; ITI-39, RAD-75)") as details:
        destination = FolderDestination(folder / "fetched")
        report = StudyFetcher(first, destination, progress=io.StringIO()).run(
            FetchRequest(patient_id=patient)
        )
        if not report.complete or len(report.studies) != count:
            raise demo.DemoError(f"fetch incomplete: {report.problems or demo._missing(report)}")
        details.append(f"{report.instances} instances of {len(report.studies)} studies")
    with steps.step("verify every instance byte for byte") as details:
        verified = demo._verify(sent, destination, patient)
        details.append(f"{verified}/{len(sent)} data sets identical to what was sent")
    return verified


def _query(url: str, patient: str) -> str:
    query_id, slots = build_slots(QueryOptions(patient_id=patient, format_codes=[KOS_FORMAT_CODE]))
    return render_table(RegistryQueryClient(url, timeout=60).query(query_id, slots).objects)
