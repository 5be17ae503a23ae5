"""Another community, as the Initiating Gateway sees it: its homeCommunityId, its Responding
Gateway, its patient identifier domain.

The Initiating Gateway "shall specify the homeCommunityId attribute in all Cross-Community
Queries which do not contain a patient identifier" (ITI TF-2 §3.38.1); it is put on every query
sent here, since the community is known, and on every DocumentRequest (ITI TF-2 §3.39.1: required
on ITI-39; RAD TF-3 §4.75.4.1.2 likewise). A community that cannot be reached, or answers with
anything but a usable SOAP message, is XDSUnavailableCommunity with the location naming it
(ITI TF-2 §3.38.4.1.3, ITI TF-3 Table 4.2.4.1-2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from gateway.metadata.query import AdhocQuery, QueryAnswer
from gateway.metadata.retrieve import (
    DocumentRequest,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
)
from gateway.soap.transactions import ITI_38, ITI_39, RAD_75
from gateway.xca.clients import Peer


@dataclass(slots=True)
class RemoteCommunity:
    """One configured community (``[xca.communities."urn:oid:..."]``)."""

    home: str
    peer: Peer
    patient_id_domain: str = ""  # "" = the same domain as ours

    @property
    def url(self) -> str:
        return self.peer.url

    def query(self, query: AdhocQuery) -> QueryAnswer:
        """ITI-38 Cross Gateway Query. Standard: ITI TF-2 §3.38.4.1.2.

        Raises: XDSUnavailableCommunity.
        """
        targeted = replace(query, slots=list(query.slots), home=self.home)
        return self.peer.query(ITI_38, targeted)

    def retrieve(self, requests: Sequence[DocumentRequest]) -> RetrieveDocumentSetResponse:
        """ITI-39 Cross Gateway Retrieve. Standard: ITI TF-2 §3.39.4.1.2.

        Raises: XDSUnavailableCommunity.
        """
        named = [replace(r, home_community_id=self.home) for r in requests]
        return self.peer.retrieve(ITI_39, named)

    def retrieve_images(
        self, request: RetrieveImagingDocumentSetRequest
    ) -> RetrieveDocumentSetResponse:
        """RAD-75 Cross Gateway Retrieve Imaging Document Set. Standard: RAD TF-3 §4.75.4.1.2.

        Raises: XDSUnavailableCommunity.
        """
        items = [
            replace(item, document=replace(item.document, home_community_id=self.home))
            for item in request.documents()
        ]
        named = RetrieveImagingDocumentSetRequest.of(items, request.transfer_syntaxes)
        return self.peer.retrieve_images(RAD_75, named)
