"""A NIST XDS Toolkit test-plan runner (black-box, for the gateway or any XDS.b system).

Loads the test folders of ``conformance/nist-testkit/tests``, does what the NIST test engine does
before sending (ebRIM 2.1 -> 3.0, patient ids, uniqueIds, UUIDs, UseId/UseReport linkage), sends
raw SOAP 1.2 / MTOM over HTTP and HL7 v2 over MLLP, and checks ExpectedStatus, error codes,
ExpectedContents, XPath assertions, retrieved documents and the schema validity of every response.

Command line: ``python -m tests.conformance.nist --registry URL --repository URL --mllp HOST:PORT
[--imaging-source URL] TEST...``; from Python: ``Runner(RunConfig(...)).run("11990")``.
"""

from __future__ import annotations

from tests.conformance.nist.context import Context
from tests.conformance.nist.execution import Endpoints, RunConfig, StepResult
from tests.conformance.nist.plan import NistTest, PlanError, load_test
from tests.conformance.nist.runner import Runner, RunResult

__all__ = [
    "Context",
    "Endpoints",
    "NistTest",
    "PlanError",
    "RunConfig",
    "RunResult",
    "Runner",
    "StepResult",
    "load_test",
]
