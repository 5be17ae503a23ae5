"""Unit tests of the NIST test-plan runner itself (no sockets): plans, 2.1 -> 3.0, linkage, checks.

Needs ``../shared/conformance`` (the NIST testkit and the official XSDs); skipped without it.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from lxml import etree

from tests.conformance.nist import catalog, ebrim, metadata, ns, retrieve, schema
from tests.conformance.nist.context import Context, LinkageError, Location, SubmittedDocument
from tests.conformance.nist.execution import Endpoints, RunConfig, StepExecution, parse_options
from tests.conformance.nist.plan import PlanError, load_test
from tests.conformance.nist.runner import HANDLERS, Runner
from tests.conformance.nist.submit import prepare_submission
from tests.conformance.nist.xmlutil import parse_xml, substitute, walk

pytestmark = pytest.mark.skipif(
    not catalog.TESTKIT.is_dir() or not catalog.SPEC.is_dir(),
    reason=f"NIST testkit/spec not found under {catalog.SHARED_CONFORMANCE}",
)
TESTS_ROOT = catalog.TESTKIT / "tests"
ALL_LISTED = catalog.expand(list(catalog.LISTS)) + list(catalog.STORED_QUERY_PRELOAD)
SUBMITTING = catalog.expand(["register", "repository", "12346", "12374"])


def make_runner(tmp_path: Path | None = None) -> Runner:
    config = RunConfig(
        endpoints=Endpoints(registry="http://127.0.0.1:9/r", repository="http://127.0.0.1:9/p"),
        testkit=catalog.TESTKIT,
        spec=catalog.SPEC,
        wait_scale=0,
    )
    return Runner(config, out=io.StringIO())


# -- plan loading -----------------------------------------------------------------------------


@pytest.mark.parametrize("test_id", ALL_LISTED)
def test_every_listed_plan_loads_with_understood_instructions(test_id: str) -> None:
    runner = make_runner()
    plan = runner.plan(test_id)
    assert plan.sections and all(section.steps for section in plan.sections)
    for section in plan.sections:
        for step in section.steps:
            assert step.transaction in HANDLERS or step.new_patient_id, step.id
            if step.instruction is not None:
                parse_options(step.instruction, section.directory)
    for dependency in runner.dependencies(plan):
        assert (TESTS_ROOT / dependency).is_dir()


def test_sections_follow_index_order_and_dependencies_come_from_the_plans() -> None:
    runner = make_runner()
    plan = runner.plan("12346")
    assert [s.name for s in plan.sections] == [
        "single_doc",
        "doc_w_fol",
        "two_doc_w_fol",
        "doc_for_rplc",
        "rplc",
    ]
    assert runner.dependencies(runner.plan("12368")) == ["15817", "12346", "12374"]
    assert runner.dependencies(plan) == ["15818"]
    assert runner.dependencies(runner.plan("15817")) == []


def test_missing_test_or_unknown_element_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError):
        load_test(TESTS_ROOT, "no-such-test")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "testplan.xml").write_text(
        "<TestPlan><TestStep id='s'><Bogus/></TestStep></TestPlan>"
    )
    with pytest.raises(PlanError, match="Bogus"):
        load_test(tmp_path, "t")


# -- ebRIM 2.1 -> 3.0 -----------------------------------------------------------------------


def metadata_files(test_id: str) -> list[Path]:
    files = []
    for section in load_test(TESTS_ROOT, test_id).sections:
        for step in section.steps:
            if step.transaction in ("RegisterTransaction", "ProvideAndRegisterTransaction"):
                opts = parse_options(step.instruction, section.directory)
                assert opts.metadata_file is not None
                files.append(opts.metadata_file)
    return files


@pytest.mark.parametrize("test_id", SUBMITTING)
def test_translated_metadata_is_schema_valid_lcm(test_id: str) -> None:
    for path in metadata_files(test_id):
        original = parse_xml(path)
        assert ebrim.is_v21(original)
        assert not schema.is_valid(original, catalog.SPEC)  # 2.1 is not what XDS.b accepts
        translated = ebrim.to_v3(original)
        schema.validate(translated, catalog.SPEC)
        assert translated.tag == ns.q(ns.LCM, "SubmitObjectsRequest")


def test_translation_maps_types_statuses_ids_and_order() -> None:
    v21 = parse_xml(f"""
      <rs:SubmitObjectsRequest xmlns:rs="{ns.RS21}">
      <rim:LeafRegistryObjectList xmlns:rim="{ns.RIM21}">
        <rim:ObjectRef id="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"/>
        <rim:ExtrinsicObject id="Doc" status="Approved" majorVersion="1" mimeType="text/plain"
            objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
          <rim:ExternalIdentifier identificationScheme="{ns.DE_UNIQUE_ID}" value="1.2"/>
          <rim:Classification classificationScheme="urn:uuid:x" classifiedObject="Doc"
              nodeRepresentation="c"/>
          <rim:Name><rim:LocalizedString lang="en-us" value="n"/></rim:Name>
          <rim:Slot name="s"><rim:ValueList><rim:Value>v</rim:Value></rim:ValueList></rim:Slot>
        </rim:ExtrinsicObject>
        <rim:Association sourceObject="SS" targetObject="Doc" associationType="HasMember"/>
        <rim:Association sourceObject="Doc" targetObject="urn:uuid:1" associationType="RPLC"/>
      </rim:LeafRegistryObjectList></rs:SubmitObjectsRequest>""")
    v3 = ebrim.to_v3(v21)
    objects = metadata.top_level_objects(v3)
    assert [etree.QName(o).localname for o in objects] == [
        "ExtrinsicObject",
        "Association",
        "Association",
    ]
    entry = objects[0]
    assert [etree.QName(c).localname for c in entry] == [
        "Slot",
        "Name",
        "Classification",
        "ExternalIdentifier",
    ]
    assert entry.get("status") == ns.STATUS_TYPE + "Approved"
    assert entry.get("majorVersion") is None
    identifier = entry[3]
    assert identifier.get("registryObject") == "Doc" and identifier.get("id").startswith("id_")
    assert identifier.get("objectType") == ns.OBJECT_TYPE + "ExternalIdentifier"
    assert next(walk(entry, "LocalizedString")).get(ns.q(ns.XML, "lang")) == "en-us"
    assert objects[1].get("associationType") == ns.EB_ASSOC + "HasMember"
    assert objects[2].get("associationType") == ns.IHE_ASSOC + "RPLC"
    assert objects[1].get("id") and objects[1].get("id") != objects[2].get("id")


# -- linkage and preparation --------------------------------------------------------------


def test_substitute_replaces_placeholders_in_text_and_attributes() -> None:
    root = parse_xml("<a x=\"'$ssuid$'\"><b>('$uuid1$','$uuid2$')</b><c>$none$</c></a>")
    substitute(root, {"$ssuid$": "1.2.3", "$uuid1$": "u1", "$uuid2$": "u2"})
    assert root.get("x") == "'1.2.3'"
    assert root[0].text == "('u1','u2')" and root[1].text == "$none$"


def location(ctx: Context, test: str, section: str, step: str = "s") -> Location:
    return Location(test=test, section=section, section_dir=TESTS_ROOT / test / section, step=step)


def test_use_id_and_use_report_resolve_relative_references() -> None:
    ctx = Context(tests_root=TESTS_ROOT)
    submit = ctx.new_record(location(ctx, "11990", "submit", "submit"))
    submit.assigned["AssignedUids"]["SubmissionSet01"] = "1.2.3"
    preload = ctx.new_record(location(ctx, "12346", "single_doc", "submit_doc"))
    preload.assigned["AssignedPatientId"]["SubmissionSet01"] = "P^^^&1.2&ISO"
    feed = ctx.new_record(location(ctx, "15817", "pif", "step"))
    feed.reports["$patientid$"] = "Q^^^&1.2&ISO"
    here = location(ctx, "11990", "eval")
    use_id = parse_xml(
        '<UseId testdir="../submit" id="SubmissionSet01" symbol="$ssuid$" '
        'step="submit" section="AssignedUids"/>'
    )
    assert ctx.use_id(here, use_id) == ("$ssuid$", "1.2.3")
    far = parse_xml(
        '<UseId testdir="../../12346/single_doc" id="SubmissionSet01" '
        'symbol="$patient_id$" step="submit_doc" section="AssignedPatientId"/>'
    )
    assert ctx.use_id(location(ctx, "11897", "approved"), far)[1] == "P^^^&1.2&ISO"
    report = parse_xml(
        '<UseReport reportName="$patientid$" test="15817" section="pif" '
        'step="step" useAs="$patientid$"/>'
    )
    assert ctx.use_report(here, report) == ("$patientid$", "Q^^^&1.2&ISO")
    this = parse_xml('<UseReport reportName="x" section="THIS" step="s" useAs="y"/>')
    ctx.new_record(here).reports["x"] = "v"
    assert ctx.use_report(here, this) == ("y", "v")
    with pytest.raises(LinkageError):
        ctx.use_id(
            here,
            parse_xml(
                '<UseId testdir="../submit" id="Nope" symbol="$x$" '
                'step="submit" section="AssignedUids"/>'
            ),
        )


def execution_for(
    runner: Runner,
    test_id: str,
    section: str,
    step_index: int = 0,
    patient: str = "SESSION^^^&1.3.6.1.4.1.21367.13.20.1000&ISO",
) -> StepExecution:
    plan = runner.plan(test_id)
    sect = plan.section(section)
    return StepExecution(
        config=runner.config,
        ctx=runner.ctx,
        test=test_id,
        section=sect,
        step=sect.steps[step_index],
        session_patient=patient,
    )


def test_prepare_submission_assigns_patient_uids_source_and_uuids() -> None:
    runner = make_runner()
    fed = runner.ctx.new_record(location(runner.ctx, "15817", "pif", "step"))
    fed.reports["$patientid$"] = "FED^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
    ex = execution_for(runner, "12002", "create_folder")  # NoPatientId + UseReport + AssignUuids
    root, uuids = prepare_submission(ex)
    schema.validate(root, catalog.SPEC)
    folder = next(
        o
        for o in metadata.top_level_objects(root)
        if metadata.external_identifier(o, ns.FOL_UNIQUE_ID)
    )
    assert metadata.external_identifier(folder, ns.FOL_PATIENT_ID) == fed.reports["$patientid$"]
    assert folder.get("id") == uuids["Folder"] and uuids["Folder"].startswith("urn:uuid:")
    uids = ex.record.assigned["AssignedUids"]
    assert uids["Folder"] == metadata.external_identifier(folder, ns.FOL_UNIQUE_ID)
    assert ex.record.reports["Folder_uuid"] == uuids["Folder"]
    assert set(ex.record.assigned["AssignedSourceId"].values()) == {runner.ctx.source_id}
    assert not ex.record.assigned["AssignedPatientId"]  # NoPatientId: not assigned
    references = {a.get("sourceObject") for a in walk(root, "Association")}
    assert references <= set(uuids.values())  # symbolic references rewritten too


def test_prepare_submission_uses_session_or_alternate_patient() -> None:
    runner = make_runner()
    ex = execution_for(runner, "11996", "submit")  # <AltPatientId/>, no NoPatientId
    root, _ = prepare_submission(ex)
    values = {
        metadata.external_identifier(o, s)
        for o in metadata.top_level_objects(root)
        for s in ns.PATIENT_ID_SCHEMES
    } - {""}
    assert values == {runner.ctx.alt_patient_id}
    ex2 = execution_for(runner, "11966", "submit")
    root2, _ = prepare_submission(ex2)
    assert set(ex2.record.assigned["AssignedPatientId"].values()) == {ex2.session_patient}
    first_uid = ex2.record.assigned["AssignedUids"]["Document01"]
    ex3 = execution_for(runner, "11966", "submit")
    prepare_submission(ex3)
    assert ex3.record.assigned["AssignedUids"]["Document01"] != first_uid  # fresh every time
    assert len(first_uid) <= 64 and root2 is not None


def test_no_assign_uids_with_id_keeps_the_linked_uid() -> None:
    runner = make_runner()
    runner.ctx.new_record(location(runner.ctx, "15817", "pif", "step")).reports["$patientid$"] = (
        "FED^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
    )
    first = execution_for(runner, "12004", "submit", 0)
    prepare_submission(first)
    original = first.record.assigned["AssignedUids"]["Document01"]
    second = execution_for(runner, "12004", "submit", 1)  # NoAssignUids id="Document01" + UseId
    root, _ = prepare_submission(second)
    entry = next(walk(root, "ExtrinsicObject"))
    assert metadata.external_identifier(entry, ns.DE_UNIQUE_ID) == original
    assert "Document01" not in second.record.assigned["AssignedUids"]


# -- retrieve checks ----------------------------------------------------------------------


def seed_query_result(runner: Runner, entry_xml: str) -> None:
    log = runner.ctx.new_section_log("12360", "query")
    result = etree.SubElement(
        etree.SubElement(etree.SubElement(log, "TestStep", id="by_uid"), "StoredQueryTransaction"),
        "Result",
    )
    result.append(
        parse_xml(
            f'<q:AdhocQueryResponse xmlns:q="{ns.QUERY}" xmlns:rim="{ns.RIM}" '
            f'status="{ns.STATUS_URNS["Success"]}"><rim:RegistryObjectList>'
            f"{entry_xml}</rim:RegistryObjectList></q:AdhocQueryResponse>"
        )
    )


def registered_entry(size: int, digest: str, mime: str = "text/plain") -> str:
    return (
        f'<rim:ExtrinsicObject id="urn:uuid:e" mimeType="{mime}">'
        f'<rim:Slot name="size"><rim:ValueList><rim:Value>{size}</rim:Value></rim:ValueList>'
        f'</rim:Slot><rim:Slot name="hash"><rim:ValueList><rim:Value>{digest}</rim:Value>'
        f'</rim:ValueList></rim:Slot><rim:ExternalIdentifier id="x" registryObject="urn:uuid:e"'
        f' identificationScheme="{ns.DE_UNIQUE_ID}" value="1.2.3"/></rim:ExtrinsicObject>'
    )


RETRIEVE_REQUEST = (
    f'<x:RetrieveDocumentSetRequest xmlns:x="{ns.XDSB}"><x:DocumentRequest>'
    "<x:RepositoryUniqueId>9.9</x:RepositoryUniqueId>"
    "<x:DocumentUniqueId>1.2.3</x:DocumentUniqueId></x:DocumentRequest>"
    "</x:RetrieveDocumentSetRequest>"
)
CONTENT = b"This is my document.\n"
SHA1 = hashlib.sha1(CONTENT).hexdigest()


@pytest.mark.parametrize(
    ("answer", "entry", "wanted"),
    [
        (dict(content=CONTENT), registered_entry(len(CONTENT), SHA1.upper()), []),
        (
            dict(content=CONTENT + b"x"),
            registered_entry(len(CONTENT), SHA1),
            ["differ", "size", "SHA-1"],
        ),
        (
            dict(content=CONTENT, mime_type="text/goofy"),
            registered_entry(len(CONTENT), SHA1),
            ["submitted text/plain", "registered text/plain"],
        ),
        (
            dict(content=CONTENT, repository_unique_id="1.1"),
            registered_entry(len(CONTENT), SHA1),
            ["RepositoryUniqueId"],
        ),
        (dict(content=None), registered_entry(len(CONTENT), SHA1), ["no document data"]),
    ],
)
def test_retrieve_checks_bytes_mime_size_hash_and_repository(
    answer: dict[str, object], entry: str, wanted: list[str]
) -> None:
    runner = make_runner()
    seed_query_result(runner, entry)
    runner.ctx.documents["1.2.3"] = SubmittedDocument(content=CONTENT, mime_type="text/plain")
    ex = execution_for(runner, "12360", "retrieve")
    fields = {
        "repository_unique_id": "9.9",
        "document_unique_id": "1.2.3",
        "mime_type": "text/plain",
        **answer,
    }
    got = {"1.2.3": retrieve.Retrieved(**fields)}  # type: ignore[arg-type]
    retrieve._check_retrieved(ex, parse_xml(RETRIEVE_REQUEST), got, runner.ctx.documents)
    joined = " | ".join(ex.problems)
    assert all(word in joined for word in wanted), joined
    assert bool(ex.problems) == bool(wanted)


def test_retrieve_counts_documents_and_uses_reference_document_when_not_submitted() -> None:
    runner = make_runner()
    seed_query_result(runner, "")
    ex = execution_for(runner, "12360", "retrieve")
    expected = retrieve._expected_documents(ex, {"$docuid1$": "1.2.3"})
    reference = TESTS_ROOT / "12360" / "submit" / "my_document.txt"
    assert expected["1.2.3"].content == reference.read_bytes()
    retrieve._check_retrieved(ex, parse_xml(RETRIEVE_REQUEST), {}, expected)
    assert any("requested 1 documents, got 0" in p for p in ex.problems)
