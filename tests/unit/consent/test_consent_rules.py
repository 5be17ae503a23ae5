"""Patient consent decisions (IHE BPPC) and where they come from: the newest consent document
naming a declared policy, the organizations of the access rules, the ``[consent]`` settings."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gateway.config import load_settings
from gateway.consent.caller import CALLER, LOCAL, Caller
from gateway.consent.guard import ConsentGuard, Refusal
from gateway.errors import ConfigError
from gateway.metadata.model import Association, ObjectRef
from gateway.metadata.retrieve import DocumentRequest, RetrieveDocumentSetResponse, Status
from gateway.security.access import AccessRules
from gateway.security.peer import PeerIdentity, parse_dn

OUT, IN, OTHER = "1.2.3.1", "1.2.3.2", "9.9.9"


@dataclass(frozen=True)
class Owner:
    patient_id: str
    source_id: str | None
    consent: bool = False


@dataclass(frozen=True)
class Doc:
    unique_id: str
    policies: frozenset[str]


def guard(consents: dict[str, list[Doc]], owners: dict[str, Owner], refusals: list[Refusal]):
    return ConsentGuard(
        {OUT: "opt-out", IN: "opt-in"},
        owners=lambda ids: {i: owners[i] for i in ids if i in owners},
        documents=lambda uids: {u: owners[u] for u in uids if u in owners},
        consents=lambda patients: {p: consents.get(p, []) for p in patients},
        source_organizations={"src-a": "A", "src-b": "B"},
        on_refusal=refusals.append,
    )


def test_the_newest_document_naming_a_declared_policy_decides() -> None:
    g = guard(
        {
            "p1": [Doc("c2", frozenset({OTHER})), Doc("c1", frozenset({OUT}))],  # newest first
            "p2": [Doc("c4", frozenset({IN})), Doc("c3", frozenset({OUT}))],
            "p3": [],
        },
        {},
        [],
    )
    assert g.opted_out(["p1", "p2", "p3"]) == {"p1"}


def test_queries_lose_what_an_opt_out_keeps_from_other_organizations() -> None:
    owners = {
        "de-a": Owner("p1", "src-a"),
        "de-b": Owner("p1", "src-b"),
        "consent": Owner("p1", "src-a", consent=True),
        "de-other": Owner("p2", "src-a"),
    }
    refusals: list[Refusal] = []
    g = guard({"p1": [Doc("c", frozenset({OUT}))]}, owners, refusals)
    assoc = Association(
        entry_uuid="as", association_type="x", source_object="ss", target_object="de-a"
    )
    objects = [ObjectRef(entry_uuid=i) for i in owners] + [assoc]
    token = CALLER.set(Caller(organization="B", transaction="ITI-38"))
    try:
        kept = g.filter_objects(list(objects))
    finally:
        CALLER.reset(token)
    assert [o.entry_uuid for o in kept] == ["de-b", "consent", "de-other"]
    [refusal] = refusals
    assert refusal.transaction == "ITI-38" and refusal.patient_ids == ("p1",)
    # this node's own work and the publishing organization see everything
    assert g.filter_objects(list(objects)) == objects
    token = CALLER.set(Caller(organization="A"))
    try:
        assert [o.entry_uuid for o in g.filter_objects(list(objects))] == [
            "de-a",
            "consent",
            "de-other",
            "as",
        ]
    finally:
        CALLER.reset(token)
    assert CALLER.get() is LOCAL


def test_refused_documents_are_never_read_and_answer_the_tf_error() -> None:
    owners = {"1.1": Owner("p1", "src-a"), "1.2": Owner("p1", "src-a", consent=True)}
    asked: list[list[str]] = []

    def retrieve(requests):
        asked.append([r.document_unique_id for r in requests])
        return RetrieveDocumentSetResponse(status=Status.SUCCESS)

    refusals: list[Refusal] = []
    wrapped = guard({"p1": [Doc("c", frozenset({OUT}))]}, owners, refusals).guard_documents(
        retrieve
    )
    requests = [DocumentRequest(repository_unique_id="r", document_unique_id=u) for u in owners]
    token = CALLER.set(Caller(organization=None))  # no organization: an outsider
    try:
        answer = wrapped(requests)
    finally:
        CALLER.reset(token)
    assert asked == [["1.2"]]
    assert [(e.code, e.location) for e in answer.errors] == [("XDSDocumentUniqueIdError", "1.1")]
    assert answer.status is Status.FAILURE  # no document came back from the stub
    assert refusals and refusals[0].transaction == "ITI-43"


def peer(dn: str) -> PeerIdentity:
    return PeerIdentity(subject=dn, rdns=tuple(reversed(parse_dn(dn))))


def test_access_rules_name_organizations_and_their_sources() -> None:
    rules = AccessRules.load(
        {
            "access": {
                "rule": [
                    {
                        "subject": "CN=a,O=D",
                        "transactions": ["*"],
                        "organization": "A",
                        "source_ids": ["1.2.1"],
                    },
                    {"subject": "*", "transactions": ["ITI-18"]},
                ]
            }
        }
    )
    assert rules.organization(peer("CN=a,O=D")) == "A"
    assert rules.organization(peer("CN=b,O=D")) is None
    assert rules.organization(None) is None
    assert rules.source_organizations() == {"1.2.1": "A"}
    with pytest.raises(ConfigError, match="source_ids"):
        AccessRules.load({"rule": [{"subject": "*", "transactions": ["*"], "source_ids": ["1"]}]})


def test_consent_policies_setting() -> None:
    settings = load_settings(environ={"XDSI_CONSENT_POLICIES": f"{OUT}=opt-out,{IN}=opt-in"})
    assert settings.consent.policies == {OUT: "opt-out", IN: "opt-in"}
    with pytest.raises(ConfigError, match="opt-in"):
        load_settings(environ={"XDSI_CONSENT_POLICIES": f"{OUT}=maybe"})
    with pytest.raises(ConfigError, match="policy OID"):
        load_settings(environ={"XDSI_CONSENT_POLICIES": "not-an-oid=opt-out"})
