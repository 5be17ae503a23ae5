"""The NIST tests this project runs, by issue, and how their patients are chosen. Data only.

Run order the toolkit uses for a Registry/Repository system under test (INDEX.md): feed tests ->
preload (12346, 12374) -> the tests. The runner derives preloads and feeds from each plan's own
references (UseReport test=, UseId testdir=) plus :data:`SESSION_FEED`, so every list below can
run alone.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_CONFORMANCE = REPO_ROOT.parent / "shared" / "conformance"
TESTKIT = SHARED_CONFORMANCE / "nist-testkit"
SPEC = SHARED_CONFORMANCE / "spec"

FEED = ("15817", "15817b", "15818")
REGISTER = (
    "11990",
    "11991",
    "11992",
    "11993",
    "11994",
    "11995",
    "11996",
    "11997",
    "11998a",
    "11999",
    "12000",
    "12000.1a",
    "12001",
    "12002",
    "12004",
    "12022",
    "12084",
    "12323",
    "12326",
    "12327",
    "12379",
    "15806",
)
STORED_QUERY_PRELOAD = ("12346", "12374")
STORED_QUERY = (
    "11897",
    "11898",
    "11899",
    "11901",
    "11902",
    "11903",
    "11904",
    "11905",
    "11906",
    "11907",
    "11908",
    "11909",
    "12368",
    "15803",
)
REPOSITORY = (
    "11966",
    "11979",
    "11981",
    "11983",
    "11986",
    "12369",
    "12021",
    "12029",
    "12360",
    "PnrXop",
    "PnrNoXop",
)

# RMD (INDEX.md "ITI-62 Remove Metadata", "ITI-86 Remove Documents"): the registry's and the
# repository's side (RMDInit1/2 are data sets of the toolkit's initialisation tool, in no
# collection).
REMOVE_METADATA = (
    "30000",
    "30001",
    "30002",
    "30003",
    "30004",
    "30005",
    "30006",
    "30007",
    "30008",
)
REMOVE_DOCUMENTS = ("50000", "50001", "50002", "50003")
# Metadata Update (INDEX.md "ITI-57 Metadata Update"): the Document Registry's side (collection
# reg_mu and the Multi-Op tests without a collection); XdsDocAdminTest-1111 tests a Document
# Administrator, not a registry.
METADATA_UPDATE = (
    "15800",
    "15800b",
    "15800c",
    "15800d",
    "15800e",
    "15801",
    "15802",
    "15802b",
    "20000",
    "20000b",
    "20000c",
    "20000d",
    "20000e",
    "20000f",
    "20001",
    "20002",
    "20002b",
    "20003",
    # 20004 (Multi-Op, no collection upstream) is left out: its success_update sends the
    # SubmissionSet uniqueId "SubmissionSet01_uniqueid" with <NoAssignUids/>, which is not an
    # OID (ITI TF-3 Table 4.2.3.3-1), so this registry rightly refuses it (README).
    "20005",
    "20006",
    "20007",
    "20008",
    "20100a",
    "20100b",
    "21001",
    "21002",
    "21003",
    "21004",
)

# XCA and XCA-I (INDEX.md, sections "XCA — Responding Gateway" to "XCA-I — Initiating Imaging
# Gateway"): the tests that apply to a responding or initiating gateway driven from outside.
# Which do not apply, and why, is listed in the README ("XCA and XCA-I").
XCA_RG = ("12309", "12310", "12311", "12312", "15815", "12093", "15811", "15813")
XCA_IG = ("15808", "15809", "15810")
XCA_IG_FAILING = ("15814",)  # run against an Initiating Gateway with one community down
XCAI_RIG = (
    "rig_2018-5421a",
    "rig_2018-5421b",
    "rig_2018-5421c",
    "rig_2018-5423a",
    "rig_2018-5424b",
    "rig_2018-5424c",
    "rig_2018-5425a",
    "rig_2018-5425b",
)
XCAI_IIG = (
    "iig_2018-5401a",
    "iig_2018-5401b",
    "iig_2018-5401c",
    "iig_2018-5403a",
    "iig_2018-5404b",
    "iig_2018-5404c",
    "iig_2018-5405a",
    "iig_2018-5405b",
)

# Lists that need several systems (gateways as communities, simulators' stand-ins): they run in
# tests/conformance/test_nist_xca.py and test_nist_xcai.py, not against the one gateway of
# test_nist.py.
MULTI_SYSTEM_LISTS = frozenset({"xca_rg", "xca_ig", "xca_ig_failing", "xcai_rig", "xcai_iig"})

LISTS: dict[str, tuple[str, ...]] = {
    "feed": FEED,
    "register": REGISTER,
    "stored_query": STORED_QUERY,
    "repository": REPOSITORY,
    "remove_metadata": REMOVE_METADATA,
    "remove_documents": REMOVE_DOCUMENTS,
    "metadata_update": METADATA_UPDATE,
    "xca_rg": XCA_RG,
    "xca_ig": XCA_IG,
    "xca_ig_failing": XCA_IG_FAILING,
    "xcai_rig": XCAI_RIG,
    "xcai_iig": XCAI_IIG,
}

# The session patient of a test (what the NIST engine writes into metadata unless <NoPatientId/>,
# and sends in a feed step) is the patient of a feed test: 15817 ("used for Register tests") by
# default; the SQ preload 12346 uses 15818 ("used for Stored Query tests", as the toolkit's
# RegOrchestrationBuilder does). Every feed test gets its own fresh patient.
DEFAULT_SESSION_FEED = "15817"
SESSION_FEED: dict[str, str] = {"12346": "15818", "12318": "15823"}  # 12318: RG test data
# 12374 "must be run with a different patient id than 12346" (its readme): the runner allocates
# and feeds a fresh patient for it.
FRESH_FED_PATIENT = frozenset({"12374"})


def expand(names: list[str] | tuple[str, ...]) -> list[str]:
    """Test ids for a mix of test ids and list names, in order, without duplicates."""
    seen: dict[str, None] = {}
    for name in names:
        for test_id in LISTS.get(name, (name,)):
            seen.setdefault(test_id, None)
    return list(seen)
