"""Run context: identifiers allocated in this run and what every step recorded.

The NIST engine links steps through their logs: ``UseId`` reads the ``AssignedUids`` /
``AssignedUuids`` / ``AssignedPatientId`` maps a submission step logged (object symbolic id ->
value), ``UseReport`` reads named reports (``$patientid$`` of a feed step, ``Document01_uid``,
XPath ``Report``s). :class:`Context` keeps the same records in memory, keyed by
(test, section, step), for one run against one system under test.
"""

from __future__ import annotations

import itertools
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from tests.conformance.nist.xmlutil import Element

DEFAULT_AFFINITY_DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
# Root of the uniqueIds the runner allocates; the NIST toolkit uses 1.2.42.<timestamp>.<n>
# (testengine UniqueIdAllocator); the extra random arc keeps parallel runs apart.
UID_ROOT = "1.2.42"

ASSIGNED_SECTIONS = ("AssignedUids", "AssignedUuids", "AssignedPatientId", "AssignedSourceId")


class LinkageError(LookupError):
    """A UseId/UseReport names a value that no earlier step recorded."""


@dataclass(slots=True, kw_only=True)
class StepRecord:
    """What one executed step left behind for later steps."""

    test: str
    section: str
    step: str
    assigned: dict[str, dict[str, str]] = field(
        default_factory=lambda: {name: {} for name in ASSIGNED_SECTIONS}
    )
    reports: dict[str, str] = field(default_factory=dict)
    passed: bool = False


@dataclass(slots=True, kw_only=True)
class SubmittedDocument:
    """A document this run sent in a Provide and Register, by its DocumentEntry uniqueId."""

    content: bytes
    mime_type: str


@dataclass(slots=True, kw_only=True)
class Location:
    """Where a step lives: used to resolve relative UseId/UseReport references."""

    test: str
    section: str
    section_dir: Path
    step: str


class Context:
    """Identifiers and step records of one run (one system under test)."""

    def __init__(
        self,
        *,
        tests_root: Path,
        affinity_domain: str = DEFAULT_AFFINITY_DOMAIN,
        source_id: str = "1.3.6.1.4.1.21367.4",
    ) -> None:
        self.tests_root = tests_root
        self.affinity_domain = affinity_domain
        self.source_id = source_id  # the toolkit's default sourceid.txt value
        self._uid_base = f"{UID_ROOT}.{int(time.time())}.{secrets.randbelow(10**6) + 1}"
        self._uid_counter = itertools.count(1)
        self.records: dict[tuple[str, str, str], StepRecord] = {}
        self.section_logs: dict[tuple[str, str], Element] = {}
        self.documents: dict[str, SubmittedDocument] = {}
        self.session_patients: dict[str, str] = {}
        self.outcomes: dict[str, bool] = {}
        self._alt_patient_id = ""
        self.last_write = 0.0  # time.time() of the last submission of this run

    # -- identifiers --------------------------------------------------------------------------

    def new_patient_id(self) -> str:
        """A fresh patient id ``<random>^^^&<affinity OID>&ISO`` (HL7 CX, ITI TF-3 §4.2.3)."""
        return f"NIST{secrets.token_hex(6).upper()}^^^&{self.affinity_domain}&ISO"

    @property
    def alt_patient_id(self) -> str:
        """The run's alternate patient id: allocated once, never fed (``<AltPatientId/>``)."""
        if not self._alt_patient_id:
            self._alt_patient_id = self.new_patient_id()
        return self._alt_patient_id

    def new_unique_id(self) -> str:
        """A fresh OID uniqueId (ITI TF-3 §4.2.3: an OID of at most 64 characters)."""
        return f"{self._uid_base}.{next(self._uid_counter)}"

    @staticmethod
    def new_uuid() -> str:
        """A fresh ``urn:uuid:`` id in lower case (ITI TF-3 §4.2.3.1.5)."""
        return f"urn:uuid:{uuid.uuid4()}"

    # -- records ------------------------------------------------------------------------------

    def new_record(self, where: Location) -> StepRecord:
        """A fresh record for the step at ``where`` (replacing one of an earlier run)."""
        record = StepRecord(test=where.test, section=where.section, step=where.step)
        self.records[(where.test, where.section, where.step)] = record
        return record

    def new_section_log(self, test: str, section: str) -> Element:
        """A fresh NIST-style section log: ``<TestResults>``, one ``<TestStep>`` per step."""
        log = etree.Element("TestResults", test=test, section=section)
        self.section_logs[(test, section)] = log
        return log

    def section_log(self, test: str, section: str) -> Element:
        """The current log of a section (created on first use)."""
        log = self.section_logs.get((test, section))
        return log if log is not None else self.new_section_log(test, section)

    def _find(self, test: str, section: str, step: str) -> StepRecord:
        found = self.records.get((test, section, step))
        if found is None:
            raise LinkageError(f"no record of step {test}/{section}/{step} (not run yet?)")
        return found

    # -- linkage ------------------------------------------------------------------------------

    def use_id(self, where: Location, element: Element) -> tuple[str, str]:
        """Resolve ``<UseId testdir= step= section= id= symbol=/>`` to (symbol, value)."""
        symbol, object_id = element.get("symbol", ""), element.get("id", "")
        kind, step = element.get("section", ""), element.get("step", "")
        if kind not in ASSIGNED_SECTIONS:
            raise LinkageError(f"UseId section {kind!r} is not one of {ASSIGNED_SECTIONS}")
        test, section = self.resolve_testdir(where, element.get("testdir", ""))
        values = self._find(test, section, step).assigned[kind]
        if object_id not in values:
            raise LinkageError(
                f"{test}/{section}/{step} {kind} has no {object_id!r} (has {sorted(values)})"
            )
        return symbol, values[object_id]

    def use_report(self, where: Location, element: Element) -> tuple[str, str]:
        """Resolve ``<UseReport test= section= step= reportName= useAs=/>`` to (useAs, value)."""
        test = element.get("test") or where.test
        section = element.get("section") or "THIS"
        if section == "THIS":
            section = where.section
        name, step = element.get("reportName", ""), element.get("step", "")
        reports = self._find(test, section, step).reports
        if name not in reports:
            raise LinkageError(
                f"{test}/{section}/{step} has no report {name!r} (has {sorted(reports)})"
            )
        return element.get("useAs", ""), reports[name]

    def resolve_testdir(self, where: Location, testdir: str) -> tuple[str, str]:
        """Map a ``testdir`` path (relative to the current section) to (test, section)."""
        if not testdir:
            return where.test, where.section
        target = (where.section_dir / testdir).resolve()
        if not target.is_dir():  # some plans write "submit" meaning the sibling section
            target = (where.section_dir.parent / testdir).resolve()
        try:
            parts = target.relative_to(self.tests_root.resolve()).parts
        except ValueError as exc:
            raise LinkageError(f"testdir {testdir!r} leaves the testkit") from exc
        if len(parts) == 1:
            return parts[0], ""
        if len(parts) == 2:
            return parts[0], parts[1]
        raise LinkageError(f"testdir {testdir!r} does not name a test section")
