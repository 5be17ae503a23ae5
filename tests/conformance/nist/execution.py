"""Executing one step: configuration, instruction options, linkage, response evaluation, logs.

Transaction handlers (``submit``, ``query``, ``retrieve``, ``feed``, ``raw``) build on
:class:`StepExecution`, which holds what every transaction shares: the parsed instruction
options, placeholder linkage (``UseReport``, ``UseId``, ``$now$``...), sending a SOAP request and
judging the reply (SOAP fault, top element, schema, WS-Addressing, ExpectedStatus), XPath
``Report``s and ``Assertions``, and the NIST-style section log those read.
"""

from __future__ import annotations

import datetime
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from tests.conformance.nist import checks, schema, soap
from tests.conformance.nist.context import Context, Location, StepRecord
from tests.conformance.nist.plan import PlanError, Section, Step
from tests.conformance.nist.xmlutil import Element, copy, kids, local, text, xpath_value

# Instruction children the runner understands (NIST parseBasicInstruction + transaction extras).
_FLAGS = {
    "XDSb": "xdsb",
    "NoPatientId": "no_patient_id",
    "AssignUuids": "assign_uuids",
    "NoConvert": "no_convert",
    "NoMTOM": "no_mtom",
    "NoMetadata": "no_metadata",
    "CreateNewPatientId": "create_new_patient_id",
}
# ParseMetadata False (RMD): the file is sent as written, which every remove step does anyway.
_IGNORED = frozenset({"WSSECHeader", "InteractionSequence", "ParseMetadata"})


@dataclass(slots=True, kw_only=True)
class Endpoints:
    """Where the system under test listens."""

    registry: str
    repository: str
    mllp: tuple[str, int] | None = None
    imaging_source: str = ""
    responding_gateway: str = ""  # XCQ/XCR/RAD-75 (XCA, XCA-I Responding Gateway)
    initiating_gateway: str = ""  # IGQ/IGR/RAD-69->IIG (XCA, XCA-I Initiating Gateway)


@dataclass(frozen=True, slots=True, kw_only=True)
class SectionTarget:
    """Where the toolkit's orchestration puts one preload section (e.g. 15807/onedoc3 into the
    second Responding Gateway's community): the repository it is provided to, the community's
    homeCommunityId and repositoryUniqueId (the engine's ``$testdata_home$`` and
    ``$testdata_repid$`` reports) and the patient it uses, by name, fed by ITI-8 to each MLLP
    listener of ``feeds`` before the section runs."""

    repository: str
    home: str
    repository_uid: str = ""  # the engine's ``$testdata_repid$`` report
    patient: str = ""
    feeds: tuple[tuple[str, int], ...] = ()


@dataclass(slots=True, kw_only=True)
class RunConfig:
    """Everything a run needs besides the context."""

    endpoints: Endpoints
    testkit: Path  # the nist-testkit folder (holds tests/)
    spec: Path  # the conformance/spec folder (official XSDs)
    timeout: float = 60.0
    wait_scale: float = 1.0  # multiplies <WaitBefore> delays (tests of the runner use 0)
    # TLS (ITI-19): requests' verify (CA bundle) and cert (certificate, key); MLLP's context
    verify: bool | str = True
    cert: tuple[str, str] | None = None
    mllp_ssl: ssl.SSLContext | None = None
    # XCA: the system's homeCommunityId (``$testdata_home$`` of an unrouted preload) and the
    # orchestration of preload sections, by "test/section".
    home: str = ""
    sections: dict[str, SectionTarget] = field(default_factory=dict)
    # Checks of XmlDetailTransaction plug-in assertions (sameReqImgs, sameRetImgs, ...): the
    # runner has none of its own; a test that runs such plans passes its checker here.
    plugins: Callable[[StepExecution], None] | None = None

    def target(self, test: str, section: str) -> SectionTarget | None:
        """The orchestration of a preload section, if any."""
        return self.sections.get(f"{test}/{section}")

    @property
    def tests_root(self) -> Path:
        """The folder holding one sub-folder per NIST test."""
        return self.testkit / "tests"


@dataclass(slots=True, kw_only=True)
class StepResult:
    """Outcome of one step."""

    test: str
    section: str
    step: str
    transaction: str
    passed: bool
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One human line: ``PASS 11990/submit/submit RegisterTransaction``."""
        where = "/".join(p for p in (self.test, self.section, self.step) if p)
        status = "PASS" if self.passed else "FAIL"
        detail = f" -- {' | '.join(self.problems)}" if self.problems else ""
        return f"{status} {where} [{self.transaction or '-'}]{detail}"


@dataclass(slots=True, kw_only=True)
class Options:
    """The children of a transaction element, parsed."""

    xdsb: bool = False
    no_patient_id: bool = False
    assign_uuids: bool = False
    assign_uids: bool = True
    no_assign_uid_to: str = ""
    no_convert: bool = False
    no_mtom: bool = False
    no_metadata: bool = False
    create_new_patient_id: bool = False
    forced_patient_id: str = ""
    wait_ms: int = 0
    metadata_file: Path | None = None
    body_file: Path | None = None
    documents: list[tuple[str, Path]] = field(default_factory=list)
    reference_documents: list[tuple[str, str]] = field(default_factory=list)
    reference_metadata: Element | None = None
    expected_contents: Element | None = None
    expected_mime_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    use_ids: list[Element] = field(default_factory=list)
    use_reports: list[Element] = field(default_factory=list)
    reports: list[Element] = field(default_factory=list)
    asserts: list[Element] = field(default_factory=list)


def parse_options(instruction: Element, section_dir: Path) -> Options:
    """Parse a transaction element's children; unknown ones are a plan error (as in NIST)."""
    opts = Options()
    lists = {"UseId": opts.use_ids, "UseReport": opts.use_reports, "Report": opts.reports}
    for child in kids(instruction):
        name = local(child)
        if name in _FLAGS:
            setattr(opts, _FLAGS[name], True)
        elif name in lists:
            lists[name].append(child)
        elif name == "Assertions":
            opts.asserts.extend(checks.assertions_of(instruction))
        elif name not in _IGNORED:
            _parse_valued(opts, name, child, section_dir)
    return opts


_PATHS = {"MetadataFile": "metadata_file", "BodyFile": "body_file"}
_ELEMENTS = {"ReferenceMetadata": "reference_metadata", "ExpectedContents": "expected_contents"}
_TEXTS = {"ExpectedMimeType": "expected_mime_type", "PatientID": "forced_patient_id"}


def _parse_valued(opts: Options, name: str, child: Element, section_dir: Path) -> None:
    value = text(child)
    if name in _PATHS:
        setattr(opts, _PATHS[name], section_dir / value)
    elif name in _ELEMENTS:
        setattr(opts, _ELEMENTS[name], child)
    elif name in _TEXTS:
        setattr(opts, _TEXTS[name], value)
    elif name == "Document":
        opts.documents.append((child.get("id", ""), section_dir / value))
    elif name == "ReferenceDocument":
        opts.reference_documents.append((child.get("uid", ""), value))
    elif name == "NoAssignUids":
        opts.no_assign_uid_to = child.get("id", "")
        opts.assign_uids = bool(opts.no_assign_uid_to)
    elif name == "WaitBefore":
        opts.wait_ms = int(value)
    elif name == "Headers":
        for line in value.splitlines():
            key, sep, header = line.strip().partition(":")
            if sep:
                opts.headers[key.strip()] = header.strip()
    else:
        raise PlanError(f"instruction {name} is not supported by this runner")


class StepExecution:
    """State and shared behaviour of one step being run."""

    def __init__(
        self,
        *,
        config: RunConfig,
        ctx: Context,
        test: str,
        section: Section,
        step: Step,
        session_patient: str,
    ) -> None:
        self.config, self.ctx, self.step = config, ctx, step
        self.section = section
        self.session_patient = session_patient
        self.where = Location(
            test=test, section=section.name, section_dir=section.directory, step=step.id
        )
        self.record: StepRecord = ctx.new_record(self.where)
        self.log = etree.SubElement(ctx.section_log(test, section.name), "TestStep", id=step.id)
        # As the NIST engine logs it: <XCQTransaction step="finddocs"> (plans select on @step).
        self.out = etree.SubElement(self.log, step.transaction or "NoTransaction", step=step.id)
        instruction = step.instruction
        self.opts = (
            parse_options(instruction, section.directory) if instruction is not None else Options()
        )
        self.problems: list[str] = []

    def fail(self, message: str) -> None:
        """Record a problem (the step fails)."""
        self.problems.append(message)

    def result(self) -> StepResult:
        """The step's outcome; marks the record passed when there was no problem."""
        passed = not self.problems
        self.record.passed = passed
        self.log.set("status", "Pass" if passed else "Fail")
        return StepResult(
            test=self.where.test,
            section=self.where.section,
            step=self.step.id,
            transaction=self.step.transaction,
            passed=passed,
            problems=list(self.problems),
        )

    # -- linkage ------------------------------------------------------------------------------

    def linkage(self, *, uses_now: bool = False) -> dict[str, str]:
        """Standard linkage, the session ``$patientid$`` and every UseReport of the step.

        ``$now$`` is UTC (XDS times are UTC, ITI TF-3 Table 4.2.3.1.7-2 DTM) at second precision.
        A tester's query follows a submission by more than a second; a script may follow it within
        the same second, where "To = now" (exclusive) would rightly exclude what was just
        registered, so the runner waits for the next second in that case (``uses_now``).
        """
        if uses_now and int(time.time()) == int(self.ctx.last_write):
            time.sleep(1.0 - time.time() % 1.0)
        now = datetime.datetime.now(datetime.UTC)
        mapping = {
            "$now$": now.strftime("%Y%m%d%H%M%S"),
            "$lastyear$": now.replace(year=now.year - 1).strftime("%Y%m%d%H%M%S"),
            "$patientid$": self.session_patient,
        }
        for element in self.opts.use_reports:
            symbol, value = self.ctx.use_report(self.where, element)
            mapping[symbol] = value
        return mapping

    def use_ids(self) -> dict[str, str]:
        """``symbol -> value`` for every UseId of the step."""
        return dict(self.ctx.use_id(self.where, e) for e in self.opts.use_ids)

    def resolve_use_id(self, element: Element) -> str:
        """The value a single UseId element names."""
        return self.ctx.use_id(self.where, element)[1]

    def wait_before(self) -> None:
        """Honour ``<WaitBefore>ms</WaitBefore>`` (a test-plan delay, e.g. for lastUpdateTime)."""
        if self.opts.wait_ms:
            time.sleep(self.opts.wait_ms / 1000 * self.config.wait_scale)

    # -- logging ------------------------------------------------------------------------------

    def log_element(self, name: str, content: Element | None) -> Element:
        """Add ``<name>`` + a copy of ``content`` to this step's output in the section log."""
        holder = etree.SubElement(self.out, name)
        if content is not None:
            holder.append(copy(content))
        return holder

    # -- SOAP ---------------------------------------------------------------------------------

    def call(self, request: soap.SoapRequest) -> soap.SoapReply | None:
        """Send ``request`` (its body is logged as InputMetadata); None on a transport error."""
        self.log_element("InputMetadata", request.body)
        try:
            return soap.send(
                request,
                timeout=self.config.timeout,
                verify=self.config.verify,
                cert=self.config.cert,
            )
        except OSError as exc:  # requests' exceptions are OSErrors
            self.fail(f"cannot reach {request.url}: {exc}")
            return None

    def evaluate(
        self,
        reply: soap.SoapReply | None,
        *,
        request_id: str,
        response_action: str,
        top: str,
        expect_mtom: bool = False,
    ) -> Element | None:
        """Judge a reply; return its body element when there is one to look at further.

        ``expect_mtom``: the request was MTOM/XOP, so the response must be too (ITI TF-2
        Appendix V; the IHE rule that a response has the request's format, which makes the
        ITI-41 and ITI-43 responses MTOM).
        """
        if reply is None:
            return None
        if reply.fault is not None:
            self.problems.extend(checks.check_fault(self.step, reply.fault_text()))
            return None
        if reply.problem or reply.body is None:
            self.fail(reply.problem or f"HTTP {reply.http_status}: empty SOAP Body")
            return None
        self.log_element("Result", reply.body)
        if reply.http_status != 200:  # SOAP 1.2 Part 2 §7.5.1.2: a non-fault reply is 200
            self.fail(f"HTTP status {reply.http_status} for a non-fault response")
        if expect_mtom and not reply.multipart:
            self.fail("response is not MTOM/XOP (multipart/related) although the request was")
        if local(reply.body) != top:
            self.fail(f"response body is {local(reply.body)}, expected {top}")
            return None
        try:
            schema.validate(soap.xop_infoset(reply.body, reply.parts), self.config.spec)
        except schema.SchemaError as exc:
            self.fail(f"response not schema-valid: {exc}")
        self._check_addressing(reply, request_id, response_action)
        status = checks.response_status(reply.body)
        if status is None:
            self.fail("no RegistryResponse status in the response")
        else:
            self.problems.extend(checks.check_status(self.step, status))
        return reply.body

    def _check_addressing(self, reply: soap.SoapReply, request_id: str, action: str) -> None:
        """Response wsa:Action and wsa:RelatesTo (WS-Addressing 1.0 SOAP Binding §5)."""
        if reply.header("Action") != action:
            self.fail(f"response wsa:Action is {reply.header('Action')!r}, expected {action!r}")
        if request_id and reply.header("RelatesTo") != request_id:
            self.fail(
                f"response wsa:RelatesTo is {reply.header('RelatesTo')!r}, "
                f"expected the request MessageID {request_id}"
            )

    # -- reports and assertions ---------------------------------------------------------------

    def make_reports(self) -> None:
        """Evaluate ``<Report name section>XPATH</Report>`` over the step's InputMetadata/Result."""
        if self.problems or "Fault" in self.step.expected_status:
            return
        for report in self.opts.reports:
            holder = self.out.find(report.get("section", "Result"))
            if holder is None or len(holder) == 0:
                self.fail(f"report {report.get('name')}: no {report.get('section')} to read")
                continue
            document = copy(holder[0])
            self.record.reports[report.get("name", "")] = xpath_value(text(report), document)

    def run_assertions(self) -> None:
        """Evaluate the step's ``Assertions`` over the section log (with UseReport values)."""
        if not self.opts.asserts:
            return
        replacements = {"$DATE$": checks.today()}
        replacements.update(self.linkage())
        data = checks.assertion_data(self.ctx.section_log(self.where.test, self.where.section))
        self.problems.extend(checks.run_assertions(self.opts.asserts, data, replacements))
