"""Running NIST tests: dependencies first, sections in order, one result line per step.

A :class:`Runner` owns one :class:`Context` (one system under test): a test that a later test
depends on (a feed, a preload) runs once per runner. Dependencies come from the plans themselves —
``UseReport test=``, ``UseId``/``ReferenceMetadata testdir=`` pointing into another test — and
from the session patient's feed test (``catalog.SESSION_FEED``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from lxml import etree

from tests.conformance.nist import catalog, feed, query, raw, remove, retrieve, submit
from tests.conformance.nist.context import Context, LinkageError, Location
from tests.conformance.nist.execution import RunConfig, StepExecution, StepResult
from tests.conformance.nist.plan import NistTest, PlanError, Section, Step, load_test
from tests.conformance.nist.schema import SchemaError
from tests.conformance.nist.xmlutil import local

Handler = Callable[[StepExecution], None]
HANDLERS: dict[str, Handler] = {
    "RegisterTransaction": submit.run_register,
    "ProvideAndRegisterTransaction": submit.run_provide_and_register,
    "StoredQueryTransaction": query.run_stored_query,
    "NullTransaction": query.run_null,
    "RetrieveTransaction": retrieve.run_retrieve,
    "ImagingDocSetRetrieveTransaction": retrieve.run_imaging_retrieve,
    "PatientIdentityFeedTransaction": feed.run_feed,
    "HttpTransaction": raw.run_http,
    # XCA / XCA-I (INDEX.md: XCQ = ITI-38, XCR = ITI-39, IGQ = ITI-18->IG, IGR = ITI-43->IG)
    "XCQTransaction": query.run_cross_gateway_query,
    "XCRTransaction": retrieve.run_cross_gateway_retrieve,
    "IGQTransaction": query.run_gateway_query,
    "IGRTransaction": retrieve.run_gateway_retrieve,
    "ImagingDocSetRigRetrieveTransaction": retrieve.run_rig_retrieve,
    "ImagingDocSetIigRetrieveTransaction": retrieve.run_iig_retrieve,
    "XmlDetailTransaction": query.run_plugins,
    # Metadata Update and RMD (INDEX.md: Mu = ITI-57, RemoveMetadata = ITI-62, Rd = ITI-86)
    "MuTransaction": submit.run_update,
    "RemoveMetadataTransaction": remove.run_remove_metadata,
    "RdTransaction": remove.run_remove_documents,
}
# What a broken plan, linkage or reply may raise inside a handler: reported, never propagated.
_STEP_ERRORS = (
    PlanError,
    LinkageError,
    SchemaError,
    etree.LxmlError,
    OSError,
    ValueError,
    KeyError,
)


@dataclass(slots=True, kw_only=True)
class RunResult:
    """Outcome of one test: its step results and failed dependencies."""

    test: str
    steps: list[StepResult] = field(default_factory=list)
    failed_dependencies: list[str] = field(default_factory=list)
    dependency_problems: list[str] = field(default_factory=list)  # their FAIL lines

    @property
    def passed(self) -> bool:
        """All steps passed and every dependency passed."""
        return not self.failed_dependencies and all(s.passed for s in self.steps)

    def report(self) -> str:
        """All result lines, then a summary line."""
        lines = [s.line() for s in self.steps]
        if self.failed_dependencies:
            lines.append(
                f"FAIL {self.test}: dependencies failed: {', '.join(self.failed_dependencies)}"
            )
            lines.extend(f"  {line}" for line in self.dependency_problems)
        passed = sum(1 for s in self.steps if s.passed)
        lines.append(
            f"== {self.test}: {'PASS' if self.passed else 'FAIL'} "
            f"({passed}/{len(self.steps)} steps passed)"
        )
        return "\n".join(lines)


class Runner:
    """Runs NIST tests against one system under test."""

    def __init__(
        self, config: RunConfig, ctx: Context | None = None, *, out: TextIO | None = None
    ) -> None:
        self.config = config
        self.ctx = ctx or Context(tests_root=config.tests_root)
        self.out = out if out is not None else sys.stdout
        self._plans: dict[str, NistTest] = {}
        self._runs: dict[str, RunResult] = {}
        self._running: set[str] = set()

    def plan(self, test_id: str) -> NistTest:
        """The loaded plan of ``test_id`` (cached)."""
        if test_id not in self._plans:
            self._plans[test_id] = load_test(self.config.tests_root, test_id)
        return self._plans[test_id]

    def run(self, test_id: str) -> RunResult:
        """Run ``test_id`` after its dependencies (each test runs at most once per runner)."""
        if test_id in self._runs:
            return self._runs[test_id]
        test = self.plan(test_id)
        self._running.add(test_id)
        outcome = RunResult(test=test_id)
        for dependency in self.dependencies(test):
            if dependency in self._running:
                continue
            done = self.run(dependency)
            if not done.passed:
                outcome.failed_dependencies.append(dependency)
                outcome.dependency_problems.extend(s.line() for s in done.steps if not s.passed)
        patient = self._session_patient(test, outcome)
        for section in test.sections:
            self.ctx.new_section_log(test_id, section.name)
            patient = self._section_patient(test_id, section.name, outcome) or patient
            for step in section.steps:
                result = self._run_step(test, section, step, patient)
                patient = self.ctx.session_patients[test_id]  # <NewPatientId/> may change it
                outcome.steps.append(result)
                self._emit(result.line())
        self._running.discard(test_id)
        self._runs[test_id] = outcome
        self.ctx.outcomes[test_id] = outcome.passed
        self._emit(outcome.report().splitlines()[-1])
        return outcome

    def run_all(self, test_ids: list[str]) -> list[RunResult]:
        """Run several tests (list names allowed, see :func:`catalog.expand`)."""
        return [self.run(t) for t in catalog.expand(test_ids)]

    def dependencies(self, test: NistTest) -> list[str]:
        """Other tests ``test`` reads from, and the feed test of its session patient."""
        found: dict[str, None] = {}
        if not is_feed_test(test) and test.id not in catalog.FRESH_FED_PATIENT:
            found[catalog.SESSION_FEED.get(test.id, catalog.DEFAULT_SESSION_FEED)] = None
        for section in test.sections:
            where = Location(
                test=test.id, section=section.name, section_dir=section.directory, step=""
            )
            for step in section.steps:
                for other in self._references(where, step):
                    if other != test.id:
                        found[other] = None
        return list(found)

    def _references(self, where: Location, step: Step) -> list[str]:
        if step.instruction is None:
            return []
        tests = []
        for element in step.instruction.iter():
            name = local(element)
            if name == "UseReport" and element.get("test"):
                tests.append(element.get("test", ""))
            elif name in ("UseId", "ReferenceMetadata") and element.get("testdir"):
                tests.append(self.ctx.resolve_testdir(where, element.get("testdir", ""))[0])
        return tests

    def _session_patient(self, test: NistTest, outcome: RunResult) -> str:
        existing = self.ctx.session_patients.get(test.id)
        if existing:
            return existing
        if is_feed_test(test):
            patient = self.ctx.new_patient_id()
        elif test.id in catalog.FRESH_FED_PATIENT:
            patient = self.ctx.new_patient_id()
            outcome.steps.append(self._feed_fresh(test.id, patient))
            self._emit(outcome.steps[-1].line())
        else:
            feed_test = catalog.SESSION_FEED.get(test.id, catalog.DEFAULT_SESSION_FEED)
            patient = self.ctx.session_patients.get(feed_test) or self.ctx.new_patient_id()
        self.ctx.session_patients[test.id] = patient
        return patient

    def _section_patient(self, test_id: str, section: str, outcome: RunResult) -> str | None:
        """The named patient of an orchestrated section (``RunConfig.sections``), fed once."""
        target = self.config.target(test_id, section)
        if target is None or not target.patient:
            return None
        key = f"(named){target.patient}"
        patient = self.ctx.session_patients.get(key)
        if patient is None:
            patient = self.ctx.session_patients[key] = self.ctx.new_patient_id()
            for endpoint in target.feeds:
                outcome.steps.append(self._feed_fresh(test_id, patient, endpoint))
                self._emit(outcome.steps[-1].line())
        self.ctx.session_patients[test_id] = patient
        return patient

    def _feed_fresh(
        self, test_id: str, patient: str, endpoint: tuple[str, int] | None = None
    ) -> StepResult:
        """Feed a test's own patient (ITI-8) before it runs; reported as a pseudo step."""
        result = StepResult(
            test=test_id,
            section="(runner)",
            step="feed_session_patient",
            transaction="PatientIdentityFeedTransaction",
            passed=True,
        )
        endpoint = endpoint or self.config.endpoints.mllp
        if endpoint is None:
            result.passed, result.problems = False, ["no MLLP endpoint configured"]
            return result
        try:
            ack = feed.exchange(
                endpoint[0],
                endpoint[1],
                feed.build_a01(patient),
                timeout=self.config.timeout,
                ssl_context=self.config.mllp_ssl,
            )
        except OSError as exc:
            result.passed, result.problems = False, [f"patient feed failed: {exc}"]
            return result
        if feed.ack_code(ack) != "AA":
            result.passed = False
            result.problems = [f"feed ACK MSA-1 is {feed.ack_code(ack) or '(none)'}"]
        return result

    def _run_step(self, test: NistTest, section: Section, step: Step, patient: str) -> StepResult:
        if step.instruction is None and step.new_patient_id:
            # <NewPatientId/> alone: later steps of this test use a fresh (un-fed) patient.
            self.ctx.session_patients[test.id] = self.ctx.new_patient_id()
        try:
            ex = StepExecution(
                config=self.config,
                ctx=self.ctx,
                test=test.id,
                section=section,
                step=step,
                session_patient=patient,
            )
        except _STEP_ERRORS as exc:
            return StepResult(
                test=test.id,
                section=section.name,
                step=step.id,
                transaction=step.transaction,
                passed=False,
                problems=[f"cannot run step: {type(exc).__name__}: {exc}"],
            )
        if step.instruction is None:
            return ex.result()
        handler = HANDLERS.get(step.transaction)
        if handler is None:
            ex.fail(f"{step.transaction} is not supported by this runner")
            return ex.result()
        try:
            handler(ex)
        except _STEP_ERRORS as exc:
            ex.fail(f"internal error: {type(exc).__name__}: {exc}")
        # The engine's linkage of every step holds the session patient, which later steps read
        # as a report (20001/eval_assoc: UseReport reportName="$patientid$" section="eval").
        ex.record.reports.setdefault("$patientid$", patient)
        return ex.result()

    def _emit(self, line: str) -> None:
        print(line, file=self.out, flush=True)


def is_feed_test(test: NistTest) -> bool:
    """True when every step of ``test`` is a PatientIdentityFeedTransaction (15817, 15818...)."""
    steps = [s for section in test.sections for s in section.steps]
    return bool(steps) and all(s.transaction == "PatientIdentityFeedTransaction" for s in steps)
