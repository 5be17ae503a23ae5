"""NIST XCA test plans against ``xdsi-gateway serve`` processes: the Responding Gateway tests
(``rg(xca)``, ``rgtool``) and the Initiating Gateway tests of the XDS Affinity Domain option
(``ig(xca)_ad``), run by the NIST runner (``tests/conformance/nist``).

The toolkit's orchestration (``IgOrchestrationBuilder``: two Responding Gateway simulators with
homes ``urn:oid:1.2.34.567.8.1`` and ``.2``, test data 15807 loaded into them with one patient per
use, fed to both) is played by real gateways: B and C are the two communities, A the Initiating
Gateway listing both. The Responding Gateway tests run against B. Test 15814 wants the first
community to fail its query; it runs against a second Initiating Gateway, A2, whose first
community is down (the toolkit's simulator answers XDSRegistryError instead; what the test
checks — PartialSuccess with the other community's entry and its home — is the same).
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conformance.nist import catalog
from tests.conformance.nist.context import Context
from tests.conformance.nist.execution import Endpoints, RunConfig, SectionTarget
from tests.conformance.nist.runner import Runner
from tests.integration.repository.serve_process import ServeProcess

pytestmark = pytest.mark.skipif(
    not catalog.SHARED_CONFORMANCE.is_dir(),
    reason=f"{catalog.SHARED_CONFORMANCE} (NIST testkit and schemas) is absent",
)

RG1, RG2 = "urn:oid:1.2.34.567.8.1", "urn:oid:1.2.34.567.8.2"  # IgOrchestrationBuilder's homes
IG_HOME = "urn:oid:1.2.34.567.8.0"
# each community's repositoryUniqueId (15810: "one must be from each community")
REPOSITORIES = {RG1: "1.3.6.1.4.1.21367.13.40.201", RG2: "1.3.6.1.4.1.21367.13.40.202"}
# 15807's sections, as IgOrchestrationBuilder places them: (section, community, patient).
PRELOAD = (
    ("onedoc1", RG1, "oneDocPid"),
    ("twodoc", RG1, "twoDocPid"),
    ("onedoc2", RG1, "twoRgPid"),
    ("onedoc3", RG2, "twoRgPid"),
    ("registryError", RG2, "registryErrorPid"),
)


def gateway(folder, name: str, home: str, communities: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    entries = ",".join(f"{h}={url}" for h, url in (communities or {}).items())
    return ServeProcess(
        folder / name,
        env={
            "XDSI_REPOSITORY_UNIQUE_ID": REPOSITORIES.get(home, "1.3.6.1.4.1.21367.13.40.200"),
            "XDSI_XCA_ENABLED": "true",
            "XDSI_XCA_HOME_COMMUNITY_ID": home,
            "XDSI_XCA_COMMUNITIES": entries,
            "XDSI_XCA_TIMEOUT": "20",
        },
    )


def unused_url() -> str:
    """A loopback address nothing listens on (a community that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/xca/rg"


@dataclass
class Systems:
    a: ServeProcess
    a2: ServeProcess
    b: ServeProcess
    c: ServeProcess


@pytest.fixture(scope="module")
def systems(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Systems]:
    folder = tmp_path_factory.mktemp("nist-xca")
    started: list[ServeProcess] = []
    try:
        b = gateway(folder, "b", RG1)
        started.append(b)
        c = gateway(folder, "c", RG2)
        started.append(c)
        a = gateway(folder, "a", IG_HOME, {RG1: b.base + "/xca/rg", RG2: c.base + "/xca/rg"})
        started.append(a)
        a2 = gateway(folder, "a2", IG_HOME, {RG1: unused_url(), RG2: c.base + "/xca/rg"})
        started.append(a2)
        yield Systems(a=a, a2=a2, b=b, c=c)
    finally:
        for process in started:
            process.stop()


def _mllp(process: ServeProcess) -> tuple[str, int]:
    address = process.mllp()
    assert address is not None
    return address


def _runner(endpoints: Endpoints, home: str, sections: dict[str, SectionTarget]) -> Runner:
    config = RunConfig(
        endpoints=endpoints,
        testkit=catalog.TESTKIT,
        spec=catalog.SPEC,
        timeout=60,
        home=home,
        sections=sections,
    )
    return Runner(config, Context(tests_root=config.tests_root), out=io.StringIO())


def _preload(
    systems: Systems, everything_to: ServeProcess | None = None
) -> dict[str, SectionTarget]:
    feeds = (_mllp(systems.b), _mllp(systems.c))
    where = {RG1: systems.b, RG2: systems.c}
    targets = {}
    for section, home, patient in PRELOAD:
        process = everything_to or where[home]
        targets[f"15807/{section}"] = SectionTarget(
            repository=process.repository_url,
            repository_uid=REPOSITORIES[RG1 if everything_to else home],
            home=RG1 if everything_to else home,
            patient=patient,
            feeds=(_mllp(process),) if everything_to else feeds,
        )
    return targets


@pytest.fixture(scope="module")
def rg_runner(systems: Systems) -> Runner:
    """The Responding Gateway tests against B (with 15807 loaded into B for ``rgtool``)."""
    b = systems.b
    endpoints = Endpoints(
        registry=b.registry_url,
        repository=b.repository_url,
        mllp=_mllp(b),
        responding_gateway=b.base + "/xca/rg",
    )
    return _runner(endpoints, RG1, _preload(systems, everything_to=b))


def _ig_runner(systems: Systems, ig: ServeProcess) -> Runner:
    endpoints = Endpoints(
        registry=ig.registry_url,
        repository=ig.repository_url,
        mllp=_mllp(ig),
        initiating_gateway=ig.base + "/xca/ig",
    )
    return _runner(endpoints, IG_HOME, _preload(systems))


@pytest.fixture(scope="module")
def ig_runner(systems: Systems) -> Runner:
    return _ig_runner(systems, systems.a)


@pytest.fixture(scope="module")
def failing_ig_runner(systems: Systems) -> Runner:
    return _ig_runner(systems, systems.a2)


@pytest.mark.parametrize("test_id", catalog.XCA_RG)
def test_nist_responding_gateway(rg_runner: Runner, test_id: str) -> None:
    run = rg_runner.run(test_id)
    assert run.passed, run.report()


@pytest.mark.parametrize("test_id", catalog.XCA_IG)
def test_nist_initiating_gateway(ig_runner: Runner, test_id: str) -> None:
    run = ig_runner.run(test_id)
    assert run.passed, run.report()


@pytest.mark.parametrize("test_id", catalog.XCA_IG_FAILING)
def test_nist_initiating_gateway_with_a_community_down(
    failing_ig_runner: Runner, test_id: str
) -> None:
    run = failing_ig_runner.run(test_id)
    assert run.passed, run.report()
