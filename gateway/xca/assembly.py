"""Both gateways built from ``[xca]`` and the actors of this process (called by ``app.py``).

This community's own actors are reached in this process when they run here (the callables
``app.py`` passes), else at the endpoints ``[consumer]`` names: ``consumer.registry_url`` for the
registry, ``[consumer.repositories]`` and ``[consumer.imaging_sources]`` by unique id. A gateway
grouped with a registry of another process thus needs no configuration of its own. The other
communities are those of ``[xca.communities]``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from gateway.config import Settings
from gateway.errors import (
    XDSError,
    XDSRegistryError,
    XDSRepositoryError,
    XDSUnavailableCommunity,
)
from gateway.metadata.query import AdhocQuery, build_query_answer
from gateway.soap.client import SessionFactory
from gateway.soap.message import Element
from gateway.soap.transactions import ITI_18, ITI_43, RAD_69
from gateway.xca.clients import Peer, Trail
from gateway.xca.fanout import FanOut
from gateway.xca.initiating import InitiatingGateway
from gateway.xca.local import LocalCommunity, QueryRegistry, RetrieveDocuments, RetrieveImages
from gateway.xca.patients import PatientLookup
from gateway.xca.remote import RemoteCommunity
from gateway.xca.responding import RespondingGateway

LOCAL_TIMEOUT = 120.0  # seconds a call to this community's own actors may take (as a consumer)


@dataclass(slots=True, kw_only=True)
class Actors:
    """This process's own actors, as callables (None / empty where the actor is not here)."""

    registry: QueryRegistry | None = None
    repositories: Mapping[str, RetrieveDocuments] = field(default_factory=dict)
    imaging_sources: Mapping[str, RetrieveImages] = field(default_factory=dict)
    patient_lookup: PatientLookup | None = None


@dataclass(slots=True, kw_only=True)
class Gateways:
    """The built gateways and what must be closed at shutdown."""

    responding: RespondingGateway
    initiating: InitiatingGateway
    fanout: FanOut
    peers: list[Peer]

    def close(self) -> None:
        """Stop the fan-out pool and close idle connections."""
        self.fanout.close()
        for peer in self.peers:
            peer.close()


def build(
    settings: Settings,
    actors: Actors,
    *,
    spool_dir: str | os.PathLike[str],
    session_factory: SessionFactory | None = None,
    trail: Trail | None = None,
) -> Gateways:
    """The Responding and Initiating Gateways of this community (``xca.enabled``)."""
    xca = settings.xca
    peers: list[Peer] = []

    def peer(url: str, failure: Callable[[str], XDSError], timeout: float) -> Peer:
        made = Peer(
            url,
            failure=failure,
            timeout=timeout,
            spool_dir=spool_dir,
            memory_threshold=settings.soap.memory_threshold,
            session_factory=session_factory,
            trail=trail,
        )
        peers.append(made)
        return made

    local = _local(settings, actors, peer)
    communities = [
        RemoteCommunity(
            home=home,
            peer=peer(entry.url, _unavailable(home), float(xca.timeout)),
            patient_id_domain=entry.patient_id_domain,
        )
        for home, entry in xca.communities.items()
    ]
    fanout = FanOut(workers=max(8, 4 * (len(communities) + 1)))
    initiating = InitiatingGateway(
        local=local,
        communities=communities,
        timeout=float(xca.timeout),
        domain=settings.registry.patient_id_domain,
        lookup=actors.patient_lookup,
        fanout=fanout,
    )
    return Gateways(
        responding=RespondingGateway(local),
        initiating=initiating,
        fanout=fanout,
        peers=peers,
    )


def _local(
    settings: Settings,
    actors: Actors,
    peer: Callable[[str, Callable[[str], XDSError], float], Peer],
) -> LocalCommunity:
    consumer = settings.consumer
    registry = actors.registry
    if registry is None and consumer.registry_url:
        registry = _soap_registry(peer(consumer.registry_url, XDSRegistryError, LOCAL_TIMEOUT))
    repositories = dict(actors.repositories)
    for uid, url in consumer.repositories.items():
        if uid not in repositories:
            repositories[uid] = partial(
                peer(url, XDSRepositoryError, LOCAL_TIMEOUT).retrieve, ITI_43
            )
    sources = dict(actors.imaging_sources)
    for uid, url in consumer.imaging_sources.items():
        if uid not in sources:
            made = peer(url, XDSRepositoryError, LOCAL_TIMEOUT)
            sources[uid] = partial(made.retrieve_images, RAD_69)
    return LocalCommunity(
        home=settings.xca.home(settings),
        registry=registry,
        repositories=repositories,
        imaging_sources=sources,
    )


def _soap_registry(registry: Peer) -> QueryRegistry:
    def query(adhoc: AdhocQuery) -> Element:
        return build_query_answer(registry.query(ITI_18, adhoc))

    return query


def _unavailable(home: str) -> Callable[[str], XDSError]:
    def failure(reason: str) -> XDSError:
        return XDSUnavailableCommunity(f"community {home}: {reason}", location=home)

    return failure
