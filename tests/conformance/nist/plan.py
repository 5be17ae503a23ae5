"""NIST test plan model and loader.

A NIST test is a folder ``tests/<id>/`` whose ``index.idx`` lists its sections in run order; each
section folder holds a ``testplan.xml`` made of ``TestStep`` elements run in order (see
``nist-testkit/INDEX.md``). A test without ``index.idx`` has a single, unnamed section: the test
folder itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.conformance.nist.xmlutil import Element, first, kids, local, parse_xml, text

# Transaction elements a step may hold (INDEX.md "How a NIST test is structured").
TRANSACTIONS = frozenset(
    {
        "RegisterTransaction",
        "ProvideAndRegisterTransaction",
        "StoredQueryTransaction",
        "RetrieveTransaction",
        "PatientIdentityFeedTransaction",
        "ImagingDocSetRetrieveTransaction",
        "NullTransaction",
        "HttpTransaction",
        "WADOTransaction",
        "MPQTransaction",
        "PatientMoveTransaction",
        "XmlDetailTransaction",
        "ImgDetailTransaction",
        "XCQTransaction",
        "XCRTransaction",
        "IGQTransaction",
        "IGRTransaction",
        "ImagingDocSetRigRetrieveTransaction",
        "ImagingDocSetIigRetrieveTransaction",
        "MuTransaction",
        "RemoveMetadataTransaction",
        "RdTransaction",
    }
)
# Step children that only describe the step (never acted on).
_DESCRIPTIVE = frozenset(
    {
        "Goal",
        "Rule",
        "Standard",
        "ExpectedStatus",
        "ExpectedErrorCode",
        "ExpectedErrorMessage",
        "AltPatientId",
        "NewPatientId",
    }
)


class PlanError(ValueError):
    """A test plan is missing, malformed or references a file that does not exist."""


@dataclass(slots=True, kw_only=True)
class Step:
    """One ``TestStep``: its expectations and its (single) transaction element."""

    id: str
    expected_status: tuple[str, ...]
    expected_error_code: str = ""
    expected_error_message: str = ""
    alt_patient_id: bool = False
    new_patient_id: bool = False
    transaction: str = ""  # local name of the transaction element, '' for none
    instruction: Element | None = None


@dataclass(slots=True, kw_only=True)
class Section:
    """One section (sub-folder) of a test."""

    name: str
    directory: Path
    steps: list[Step] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class NistTest:
    """A NIST test folder with its sections in ``index.idx`` order."""

    id: str
    directory: Path
    title: str
    collections: tuple[str, ...]
    sections: list[Section] = field(default_factory=list)

    def section(self, name: str) -> Section:
        """The section called ``name``."""
        for section in self.sections:
            if section.name == name:
                return section
        raise PlanError(f"test {self.id} has no section {name!r}")


def load_test(tests_root: Path, test_id: str) -> NistTest:
    """Load ``tests_root/<test_id>``: sections in index.idx order, referenced files checked."""
    directory = tests_root / test_id
    if not directory.is_dir():
        raise PlanError(f"no NIST test folder {directory}")
    readme = directory / "readme.txt"
    title = readme.read_text(errors="replace").strip().splitlines()[0] if readme.exists() else ""
    colls = directory / "collections.txt"
    collections = tuple(colls.read_text().split()) if colls.exists() else ()
    test = NistTest(id=test_id, directory=directory, title=title, collections=collections)
    for name in section_names(directory):
        section_dir = directory / name if name else directory
        test.sections.append(load_section(section_dir, name))
    return test


def section_names(directory: Path) -> list[str]:
    """Section names from ``index.idx`` (blank lines and '#' comments ignored)."""
    index = directory / "index.idx"
    if not index.exists():
        if (directory / "testplan.xml").exists():
            return [""]
        raise PlanError(f"{directory} has neither index.idx nor testplan.xml")
    names = []
    for line in index.read_text().splitlines():
        name = line.strip()
        if name and not name.startswith("#"):
            names.append(name)
    return names


def load_section(directory: Path, name: str) -> Section:
    """Parse ``directory/testplan.xml`` into a section and check its referenced files exist."""
    plan_file = directory / "testplan.xml"
    if not plan_file.exists():
        raise PlanError(f"missing {plan_file}")
    root = parse_xml(plan_file)
    section = Section(name=name, directory=directory)
    for element in kids(root, "TestStep"):
        section.steps.append(parse_step(element))
    for path in referenced_files(section, references=False):
        if not path.exists():
            raise PlanError(f"{plan_file}: referenced file {path} does not exist")
    return section


def parse_step(element: Element) -> Step:
    """Build a :class:`Step` from a ``TestStep`` element."""
    statuses = text(first(element, "ExpectedStatus"))
    step = Step(
        id=element.get("id", ""),
        expected_status=tuple(s.strip() for s in statuses.split(",") if s.strip()) or ("Success",),
        expected_error_code=text(first(element, "ExpectedErrorCode")),
        expected_error_message=text(first(element, "ExpectedErrorMessage")),
        alt_patient_id=first(element, "AltPatientId") is not None,
        new_patient_id=first(element, "NewPatientId") is not None,
    )
    for child in kids(element):
        name = local(child)
        if name in TRANSACTIONS:
            if step.instruction is not None:
                raise PlanError(f"step {step.id} has two transactions")
            step.transaction, step.instruction = name, child
        elif name not in _DESCRIPTIVE:
            raise PlanError(f"step {step.id}: unknown element {name}")
    return step


def referenced_files(section: Section, *, references: bool = True) -> list[Path]:
    """Files a section's steps name: MetadataFile, Document, BodyFile, ReferenceDocument.

    ``references=False`` leaves ReferenceDocuments out: a retrieve compares with what the run
    submitted and reads the file only when the run did not submit that document (50000, 50002
    and 50003 name ``my_document.pdf``, which the testkit copy leaves out, but submit
    ``readme.txt``), so a missing one fails the step that needs it, not the plan's loading.
    """
    paths: list[Path] = []
    for step in section.steps:
        if step.instruction is None:
            continue
        for child in kids(step.instruction):
            name = local(child)
            if name in {"MetadataFile", "Document", "BodyFile"}:
                paths.append(section.directory / text(child))
            elif name == "ReferenceDocument" and references:
                paths.append(reference_document_path(section, text(child)))
    return paths


def reference_document_path(section: Section, relative: str) -> Path:
    """Resolve a ReferenceDocument path: relative to the section, else to the test folder.

    The toolkit's plans use both forms (``../submit/x.txt`` and ``submit/x.txt``).
    """
    candidate = section.directory / relative
    if candidate.exists():
        return candidate
    return section.directory.parent / relative
