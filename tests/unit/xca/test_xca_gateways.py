"""Both gateways' handlers over stand-in actors and communities (no network): the error
semantics of ITI TF-2 §3.38.4.1.3 / §3.39.4.1.3 and RAD TF-3 §4.75.4.1.3, the merge of answers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from lxml import etree

from gateway.errors import XDSTooManyResults, XDSUnavailableCommunity
from gateway.metadata.query import (
    AdhocQuery,
    QueryAnswer,
    build_query_request,
    build_query_response,
    read_query_answer,
)
from gateway.metadata.retrieve import (
    DocumentRequest,
    DocumentResponse,
    ImagingDocumentRequest,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
    Status,
    build_imaging_request,
    build_retrieve_request,
    failure_body,
    parse_retrieve_response,
)
from gateway.soap import ns
from gateway.soap.dispatch import Context
from gateway.soap.message import Addressing, Attachment, SoapRequest
from gateway.soap.transactions import IG_ITI_18, ITI_18, ITI_38
from gateway.xca.fanout import FanOut
from gateway.xca.initiating import InitiatingGateway
from gateway.xca.local import LocalCommunity
from gateway.xca.remote import RemoteCommunity
from gateway.xca.responding import RespondingGateway
from tests.factories import PATIENT_ID, make_document_entry

HOME, B, C = "urn:oid:1.2.3.1", "urn:oid:1.2.3.2", "urn:oid:1.2.3.3"
REPO, SOURCE = "1.2.3.40", "1.2.3.80"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"


# -- stand-ins ---------------------------------------------------------------------------------- -


def registry(*uids: str) -> object:
    def run(query: AdhocQuery) -> etree._Element:
        entries = [
            make_document_entry(
                unique_id=uid, entry_uuid=f"urn:uuid:{i:08d}-0000-4000-8000-000000000000"
            )
            for i, uid in enumerate(uids)
        ]
        return build_query_response(entries)

    return run


def repository(repository_uid: str = REPO):
    def retrieve(requests: Sequence[DocumentRequest]) -> RetrieveDocumentSetResponse:
        documents = [
            DocumentResponse(
                repository_unique_id=repository_uid,
                document_unique_id=r.document_unique_id,
                mime_type="text/plain",
                attachment=Attachment.from_bytes(
                    r.document_unique_id.encode(), content_id="same@x"
                ),
                home_community_id=r.home_community_id,
            )
            for r in requests
        ]
        return RetrieveDocumentSetResponse.answer(documents, [])

    return retrieve


class Peer:
    """A Responding Gateway that answers from memory (or fails as ``failure`` says)."""

    def __init__(self, home: str, *, answer: QueryAnswer | None = None, failure=None) -> None:
        self.url = f"https://{home}/xca/rg"
        self.home, self.answer, self.failure = home, answer, failure
        self.asked: list[object] = []

    def query(self, transaction, query: AdhocQuery) -> QueryAnswer:
        self.asked.append(query)
        if self.failure is not None:
            raise self.failure
        assert self.answer is not None
        return self.answer

    def retrieve(self, transaction, requests):
        self.asked.append(list(requests))
        if self.failure is not None:
            raise self.failure
        return repository()(requests)

    def retrieve_images(self, transaction, request):
        self.asked.append(request)
        if self.failure is not None:
            raise self.failure
        return repository(SOURCE)([i.document for i in request.documents()])


def remote_answer(home: str | None, *uids: str) -> QueryAnswer:
    answer = read_query_answer(registry(*uids)(AdhocQuery(query_id=FIND_DOCUMENTS)))
    for element in answer.objects:
        if home:
            element.set("home", home)
    return answer


def soap(body: etree._Element) -> SoapRequest:
    return SoapRequest(path="/x", addressing=Addressing(), body=body)


def ctx(transaction=ITI_38) -> Context:
    return Context(transaction=transaction, request_id="t")


def local(*uids: str) -> LocalCommunity:
    return LocalCommunity(home=HOME, registry=registry(*uids), repositories={REPO: repository()})


def find(home: str | None = None) -> etree._Element:
    query = AdhocQuery(query_id=FIND_DOCUMENTS, home=home)
    query.add("$XDSDocumentEntryPatientId", f"'{PATIENT_ID}'")
    return build_query_request(query)


def get_documents(home: str | None) -> etree._Element:
    query = AdhocQuery(query_id=GET_DOCUMENTS, home=home)
    query.add("$XDSDocumentEntryUniqueId", "('1.2.3')")
    return build_query_request(query)


def codes(body: etree._Element) -> list[tuple[str, str | None, str]]:
    return [
        (e.get("errorCode", ""), e.get("location"), e.get("severity", "").rsplit(":", 1)[-1])
        for e in body.iter(ns.REGISTRY_ERROR)
    ]


def homes(body: etree._Element) -> list[str | None]:
    return [element.get("home") for element in read_query_answer(body).objects]


def status(body: etree._Element) -> str:
    holder = body if body.get("status") else body.find(ns.REGISTRY_RESPONSE)
    return Status.parse(holder.get("status")).short


@pytest.fixture
def fanout() -> Iterator[FanOut]:
    pool = FanOut(workers=4)
    yield pool
    pool.close()


def initiating(fanout: FanOut, *peers: Peer, lookup=None, **domains: str) -> InitiatingGateway:
    communities = [RemoteCommunity(home=p.home, peer=p, patient_id_domain="") for p in peers]  # type: ignore[arg-type]
    return InitiatingGateway(
        local=local("1.1"),
        communities=communities,
        timeout=30,
        domain="1.3.6.1.4.1.21367.13.20.1000",
        lookup=lookup,
        fanout=fanout,
    )


# -- Responding Gateway ---------------------------------------------------------------------------


def test_rg_query_puts_home_on_every_object_and_locates_errors() -> None:
    rg = RespondingGateway(local("1.1", "1.2"))
    answer = rg.query(soap(find()), ctx())
    assert homes(answer.body) == [HOME, HOME]
    failing = LocalCommunity(
        home=HOME, registry=lambda q: failure_body(ITI_18, XDSTooManyResults("too many"))
    )
    refused = RespondingGateway(failing).query(soap(find()), ctx())
    assert codes(refused.body) == [("XDSTooManyResults", HOME, "Error")]


@pytest.mark.parametrize(
    ("home", "code"),
    [(None, "XDSMissingHomeCommunityId"), (B, "XDSUnknownCommunity")],
)
def test_rg_query_without_patient_must_name_this_community(home: str | None, code: str) -> None:
    [(_, handler)] = [h for h in RespondingGateway(local("1.1")).handlers() if h[0] is ITI_38]
    answer = handler(soap(get_documents(home)), ctx())
    assert status(answer.body) == "Failure"
    assert codes(answer.body) == [(code, HOME, "Error")]
    assert handler(soap(get_documents(HOME)), ctx()).body.get("status").endswith("Success")


def test_rg_retrieve_checks_each_request_and_names_the_community() -> None:
    rg = RespondingGateway(local())
    requests = [
        DocumentRequest(repository_unique_id=REPO, document_unique_id="1", home_community_id=HOME),
        DocumentRequest(repository_unique_id=REPO, document_unique_id="2"),
        DocumentRequest(repository_unique_id=REPO, document_unique_id="3", home_community_id=B),
        DocumentRequest(repository_unique_id="9.9", document_unique_id="4", home_community_id=HOME),
        DocumentRequest(repository_unique_id=REPO, document_unique_id="5", home_community_id=HOME),
    ]
    answer = rg.retrieve(soap(build_retrieve_request(requests)), ctx())
    result = parse_retrieve_response(answer.body, {a.content_id: a for a in answer.attachments})
    assert result.status is Status.PARTIAL_SUCCESS
    assert [(d.document_unique_id, d.home_community_id) for d in result.documents] == [
        ("1", HOME),
        ("5", HOME),
    ]
    assert len({a.content_id for a in answer.attachments}) == 2  # parts renamed apart
    assert [(e.code, e.location) for e in result.errors] == [
        ("XDSMissingHomeCommunityId", HOME),
        ("XDSUnknownCommunity", HOME),
        ("XDSUnknownRepositoryId", HOME),
    ]
    # the codeContext still names the document (the location names the community)
    assert [
        f"{uid}:" in e.context or f"{uid} " in e.context
        for e, uid in zip(result.errors, "234", strict=True)
    ] == [True] * 3


# -- Initiating Gateway ---------------------------------------------------------------------------


def test_ig_merges_every_community_each_object_keeping_its_home(fanout: FanOut) -> None:
    b, c = Peer(B, answer=remote_answer(B, "2.1")), Peer(C, answer=remote_answer(C, "3.1", "3.2"))
    answer = initiating(fanout, b, c).query(soap(find()), ctx(IG_ITI_18))
    assert status(answer.body) == "Success"
    assert homes(answer.body) == [HOME, B, C, C]
    assert [q.home for q in b.asked + c.asked] == [B, C]  # the ITI-38 names the community


def test_ig_passes_remote_errors_on_and_reports_a_missing_community(fanout: FanOut) -> None:
    too_many = QueryAnswer(
        status=Status.FAILURE,
        errors=read_query_answer(failure_body(ITI_38, XDSTooManyResults("x"))).errors,
    )
    b = Peer(B, answer=too_many)
    c = Peer(C, failure=XDSUnavailableCommunity("down", location=C))
    answer = initiating(fanout, b, c).query(soap(find()), ctx(IG_ITI_18))
    assert status(answer.body) == "PartialSuccess"
    assert codes(answer.body) == [
        ("XDSTooManyResults", B, "Error"),
        ("XDSUnavailableCommunity", C, "Error"),
    ]
    assert homes(answer.body) == [HOME]


def test_ig_drops_a_remote_object_without_home_and_says_so(fanout: FanOut) -> None:
    b = Peer(B, answer=remote_answer(None, "2.1"))
    answer = initiating(fanout, b).query(soap(find()), ctx(IG_ITI_18))
    assert homes(answer.body) == [HOME]
    [(code, location, _)] = codes(answer.body)
    assert (code, location) == ("XDSMissingHomeCommunityId", B)
    assert b.url in next(answer.body.iter(ns.REGISTRY_ERROR)).get("codeContext")


def test_ig_sends_a_query_naming_a_community_to_that_community_only(fanout: FanOut) -> None:
    b, c = Peer(B, answer=remote_answer(B, "2.1")), Peer(C, answer=remote_answer(C, "3.1"))
    gateway = initiating(fanout, b, c)
    answer = gateway.query(soap(get_documents(C)), ctx(IG_ITI_18))
    assert homes(answer.body) == [C] and not b.asked
    ours = gateway.query(soap(get_documents(HOME)), ctx(IG_ITI_18))
    assert homes(ours.body) == [HOME] and len(c.asked) == 1
    from gateway.errors import XDSUnknownCommunity

    with pytest.raises(XDSUnknownCommunity):
        gateway.query(soap(get_documents("urn:oid:9.9")), ctx(IG_ITI_18))


def test_ig_retrieve_splits_by_community(fanout: FanOut) -> None:
    b, c = Peer(B), Peer(C, failure=XDSUnavailableCommunity("down", location=C))
    requests = [
        DocumentRequest(repository_unique_id=REPO, document_unique_id="1"),
        DocumentRequest(repository_unique_id=REPO, document_unique_id="2", home_community_id=B),
        DocumentRequest(repository_unique_id=REPO, document_unique_id="3", home_community_id=C),
        DocumentRequest(
            repository_unique_id=REPO, document_unique_id="4", home_community_id="urn:oid:9"
        ),
    ]
    answer = initiating(fanout, b, c).retrieve(soap(build_retrieve_request(requests)), ctx())
    result = parse_retrieve_response(answer.body, {a.content_id: a for a in answer.attachments})
    assert result.status is Status.PARTIAL_SUCCESS
    assert [d.document_unique_id for d in result.documents] == ["1", "2"]
    assert [r.document_unique_id for r in b.asked[0]] == ["2"]
    assert {(e.code, e.location) for e in result.errors} == {
        ("XDSUnavailableCommunity", "3"),
        ("XDSUnknownCommunity", "4"),
    }


def test_iig_sends_rad75_with_the_community_of_each_instance(fanout: FanOut) -> None:
    b = Peer(B)
    items = [
        ImagingDocumentRequest(
            study_instance_uid="1",
            series_instance_uid="1.1",
            document=DocumentRequest(
                repository_unique_id=SOURCE, document_unique_id=uid, home_community_id=B
            ),
        )
        for uid in ("1.1.1", "1.1.2")
    ]
    body = build_imaging_request(
        RetrieveImagingDocumentSetRequest.of(items, ["1.2.840.10008.1.2.1"])
    )
    answer = initiating(fanout, b).images(soap(body), ctx())
    result = parse_retrieve_response(answer.body, {a.content_id: a for a in answer.attachments})
    assert [d.document_unique_id for d in result.documents] == ["1.1.1", "1.1.2"]
    [sent] = b.asked
    assert [i.document.document_unique_id for i in sent.documents()] == ["1.1.1", "1.1.2"]


def test_ig_without_a_registry_of_its_own_asks_only_the_others(fanout: FanOut) -> None:
    b = Peer(B, answer=remote_answer(B, "2.1"))
    gateway = initiating(fanout, b)
    gateway.local = LocalCommunity(home=HOME, repositories={REPO: repository()})
    answer = gateway.query(soap(find()), ctx(IG_ITI_18))
    assert status(answer.body) == "Success" and homes(answer.body) == [B]
    ours = gateway.query(soap(get_documents(HOME)), ctx(IG_ITI_18))
    assert codes(ours.body) == [("XDSRegistryError", HOME, "Error")]
