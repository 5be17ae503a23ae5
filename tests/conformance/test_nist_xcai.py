"""NIST XCA-I test plans (2018) against ``xdsi-gateway serve`` processes, run by the NIST runner.

Responding Imaging Gateway (``rig(xca-i)``): the system under test is a gateway with home
``urn:oid:1.3.6.1.4.1.21367.13.70.201`` whose community's imaging document sources E and F
(``...13.71.201.1`` / ``.2``) are two more gateways, each behind a recording proxy (in the place of
the toolkit's IDS simulators ``ids_e`` / ``ids_f``), named in its ``[consumer.imaging_sources]``.

Initiating Imaging Gateway (``iig(xca-i)``): the system under test lists two communities A and B
(``...13.70.101`` / ``.102``), gateways with their own imaging document sources (``...13.71.101``
/ ``.102``), each behind a recording proxy (the toolkit's ``rig_a`` / ``rig_b``).

The sources hold stand-in instances with the UIDs the plans request (see ``xca_plugins``). The
plug-in assertions are checked by :class:`~tests.conformance.xca_plugins.PluginChecker`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from gateway.demo import send_files
from gateway.imaging import synthetic
from tests.conformance.nist import catalog, ns
from tests.conformance.nist.context import Context
from tests.conformance.nist.execution import Endpoints, RunConfig
from tests.conformance.nist.runner import Runner
from tests.conformance.xca_plugins import (
    PluginChecker,
    RecordingProxy,
    standin,
    wanted_instances,
)
from tests.integration.consumer.consumer_env import dicom_address
from tests.integration.repository.serve_process import ServeProcess

pytestmark = pytest.mark.skipif(
    not catalog.SHARED_CONFORMANCE.is_dir(),
    reason=f"{catalog.SHARED_CONFORMANCE} (NIST testkit and schemas) is absent",
)

RIG_HOME = "urn:oid:1.3.6.1.4.1.21367.13.70.201"  # rig_2018-5420
IIG_HOME = "urn:oid:1.3.6.1.4.1.21367.13.70.1"  # iig_2018-5400
SOURCES = {  # imaging document source -> (simulator name, the community it belongs to)
    "1.3.6.1.4.1.21367.13.71.201.1": ("ids_e", None),
    "1.3.6.1.4.1.21367.13.71.201.2": ("ids_f", None),
    "1.3.6.1.4.1.21367.13.71.101": ("rig_a", "urn:oid:1.3.6.1.4.1.21367.13.70.101"),
    "1.3.6.1.4.1.21367.13.71.102": ("rig_b", "urn:oid:1.3.6.1.4.1.21367.13.70.102"),
}


def serve(folder: Path, name: str, source_uid: str, **env: str) -> ServeProcess:
    """A whole gateway whose imaging document source has ``source_uid`` (never publishing: the
    stand-ins are only retrieved)."""
    return ServeProcess(
        folder / name,
        env={
            "XDSI_IMAGING_SOURCE_ENABLED": "true",
            "XDSI_IMAGING_SOURCE_UNIQUE_ID": source_uid,
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "86400",
            **env,
        },
    )


@dataclass
class World:
    rig: ServeProcess
    iig: ServeProcess
    proxies: dict[str, RecordingProxy]
    originals: dict[str, pydicom.Dataset]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("nist-xcai")
    processes: list[ServeProcess] = []
    proxies: dict[str, RecordingProxy] = {}
    try:
        holders: dict[str, ServeProcess] = {}
        fronts: dict[str, str] = {}
        for uid, (simulator, home) in SOURCES.items():
            xca = {"XDSI_XCA_ENABLED": "true", "XDSI_XCA_HOME_COMMUNITY_ID": home} if home else {}
            process = serve(folder, simulator, uid, **xca)
            processes.append(process)
            holders[uid] = process
            proxies[simulator] = RecordingProxy(process.base)
            fronts[uid] = proxies[simulator].start()
        rig = serve(
            folder,
            "rig",
            "1.3.6.1.4.1.21367.13.80.200",
            XDSI_XCA_ENABLED="true",
            XDSI_XCA_HOME_COMMUNITY_ID=RIG_HOME,
            XDSI_CONSUMER_IMAGING_SOURCES=",".join(
                f"{uid}={fronts[uid]}/xdsi/source" for uid in list(SOURCES)[:2]
            ),
        )
        processes.append(rig)
        iig = serve(
            folder,
            "iig",
            "1.3.6.1.4.1.21367.13.80.201",
            XDSI_XCA_ENABLED="true",
            XDSI_XCA_HOME_COMMUNITY_ID=IIG_HOME,
            XDSI_XCA_COMMUNITIES=",".join(
                f"{home}={fronts[uid]}/xca/rg" for uid, (_, home) in SOURCES.items() if home
            ),
        )
        processes.append(iig)
        originals = _load_standins(folder, holders)
        yield World(rig=rig, iig=iig, proxies=proxies, originals=originals)
    finally:
        for proxy in proxies.values():
            proxy.stop()
        for process in processes:
            process.stop()


def _load_standins(folder: Path, holders: dict[str, ServeProcess]) -> dict[str, pydicom.Dataset]:
    """C-STORE each stand-in to the source the plans say holds it."""
    originals: dict[str, pydicom.Dataset] = {}
    by_source: dict[str, list[Path]] = {}
    tests = catalog.XCAI_RIG + catalog.XCAI_IIG
    for number, item in enumerate(wanted_instances(catalog.TESTKIT / "tests", tests)):
        ds = standin(item, number)
        path = folder / "standins" / f"{item.sop}.dcm"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(synthetic.encode(ds))
        by_source.setdefault(item.repository, []).append(path)
        originals[item.sop] = ds
    for uid, paths in by_source.items():
        assert send_files(dicom_address(holders[uid]), paths) == len(paths)
    return originals


def _runner(world: World, endpoints: Endpoints, url: str, action: str) -> Runner:
    config = RunConfig(
        endpoints=endpoints,
        testkit=catalog.TESTKIT,
        spec=catalog.SPEC,
        timeout=60,
        plugins=PluginChecker(
            proxies=world.proxies, originals=world.originals, url=url, action=action
        ),
    )
    return Runner(config, Context(tests_root=config.tests_root), out=io.StringIO())


def _run(runner: Runner, world: World, test_id: str) -> None:
    for proxy in world.proxies.values():
        proxy.clear()  # sameReqImgs looks at what this test made the gateway send
    run = runner.run(test_id)
    assert run.passed, run.report()


@pytest.mark.parametrize("test_id", catalog.XCAI_RIG)
def test_nist_responding_imaging_gateway(world: World, test_id: str) -> None:
    rg = world.rig.base + "/xca/rg"
    # (the runner feeds its session patient first; the plans themselves use none)
    endpoints = Endpoints(registry="", repository="", mllp=world.rig.mllp(), responding_gateway=rg)
    _run(_runner(world, endpoints, rg, ns.ACTION_RAD75), world, test_id)


@pytest.mark.parametrize("test_id", catalog.XCAI_IIG)
def test_nist_initiating_imaging_gateway(world: World, test_id: str) -> None:
    ig = world.iig.base + "/xca/ig"
    endpoints = Endpoints(registry="", repository="", mllp=world.iig.mllp(), initiating_gateway=ig)
    _run(_runner(world, endpoints, ig, ns.ACTION_RAD69), world, test_id)
