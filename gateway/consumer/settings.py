"""Where a consumer finds its peers, and how hard it works them.

A stored query goes to one registry (``registry_url``). A DocumentEntry names the repository that
holds it by repositoryUniqueId (ITI TF-3 §4.2.3.2.18) and a KOS manifest names the imaging
document source that holds each series by Retrieve Location UID (RAD TF-3 §4.68.4.1.2.2); XDS
leaves the mapping from those ids to endpoint addresses to configuration (ITI TF-1 §10.2.3 "the
Document Consumer is configured with the repository's address"), so two tables map a unique id to
a URL. The gateway's own actors are in them without configuration.

Proposed ``[consumer]`` section of ``gateway.config`` (until it exists these are arguments)::

    [consumer]
    registry_url = ""            # "" = this gateway's /xds/registry
    parallel_requests = 4        # RAD-69 requests in flight at once
    batch_size = 50              # instances per RAD-69 request
    timeout = 120                # seconds per request
    retries = 3                  # further attempts for a missing or corrupt instance

    [consumer.repositories]      # repositoryUniqueId -> ITI-43 endpoint
    "1.3.6.1.4.1.21367.13.40.200" = "https://region.example/xds/repository"

    [consumer.imaging_sources]   # Retrieve Location UID -> RAD-69 endpoint
    "1.3.6.1.4.1.21367.13.80.200" = "https://hospital-a.example/xdsi/source"

Across communities (XCA, XCA-I; ITI TF-1 §18.2.1): with ``initiating_gateway_url`` (by default
this gateway's own ``/xca/ig`` when ``xca.enabled``) stored queries go to the Initiating
Gateway, which answers from every community; a document whose homeCommunityId names another
community than ours is retrieved through it too (ITI-43 / RAD-69 with that HomeCommunityId), since
its repository and imaging document source are not reachable from here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gateway.config import Settings
from gateway.consumer.errors import UnknownEndpoint
from gateway.soap.transactions import (
    IMAGING_SOURCE_PATH,
    INITIATING_GATEWAY_PATH,
    REGISTRY_PATH,
    REPOSITORY_PATH,
)

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerSettings:
    """Endpoints and limits of the Imaging Document Consumer."""

    registry_url: str = ""
    repositories: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    imaging_sources: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    parallel_requests: int = 4
    batch_size: int = 50
    timeout: float = 120.0
    retries: int = 3
    verify: bool | str = True  # requests semantics: CA bundle path or bool (ITI-19)
    cert: tuple[str, str] | None = None  # client certificate and key (mutual TLS)
    initiating_gateway_url: str = ""  # ITI-18 and other communities' documents (XCA)
    home_community_id: str = ""  # this community's homeCommunityId ("" = not in XCA)

    def __post_init__(self) -> None:
        if self.parallel_requests < 1 or self.batch_size < 1:
            raise ValueError("parallel_requests and batch_size must be at least 1")
        if self.retries < 0 or self.timeout <= 0:
            raise ValueError("retries must be >= 0 and timeout > 0")

    def require_registry(self) -> str:
        """The ITI-18 endpoint: the Initiating Gateway when there is one, else the registry.

        Raises: UnknownEndpoint when none is configured.
        """
        if self.initiating_gateway_url:
            return self.initiating_gateway_url
        if not self.registry_url:
            raise UnknownEndpoint("no registry endpoint: set consumer.registry_url or --registry")
        return self.registry_url

    def via_gateway(self, home_community_id: str | None) -> bool:
        """True when a document of ``home_community_id`` is retrieved through the Initiating
        Gateway: another community than ours, and a gateway to ask (ITI TF-1 §18.2.1)."""
        return bool(
            home_community_id
            and self.initiating_gateway_url
            and home_community_id != self.home_community_id
        )

    def document_url(self, repository_unique_id: str, home_community_id: str | None) -> str:
        """Where to send ITI-43 for a document: the Initiating Gateway for another community's,
        else the repository's endpoint. Raises: UnknownEndpoint."""
        if self.via_gateway(home_community_id):
            return self.initiating_gateway_url
        return self.repository_url(repository_unique_id)

    def instance_url(self, retrieve_location_uid: str, home_community_id: str | None) -> str:
        """Where to send RAD-69 for an instance: the Initiating Imaging Gateway for another
        community's, else the imaging document source's endpoint. Raises: UnknownEndpoint."""
        if self.via_gateway(home_community_id):
            return self.initiating_gateway_url
        return self.imaging_source_url(retrieve_location_uid)

    def repository_url(self, repository_unique_id: str) -> str:
        """The ITI-43 endpoint of a repositoryUniqueId. Raises: UnknownEndpoint."""
        try:
            return self.repositories[repository_unique_id]
        except KeyError:
            raise UnknownEndpoint(
                f"no ITI-43 endpoint for repositoryUniqueId {repository_unique_id} "
                "(add it to [consumer.repositories])"
            ) from None

    def imaging_source_url(self, retrieve_location_uid: str) -> str:
        """The RAD-69 endpoint of a Retrieve Location UID. Raises: UnknownEndpoint."""
        try:
            return self.imaging_sources[retrieve_location_uid]
        except KeyError:
            raise UnknownEndpoint(
                f"no RAD-69 endpoint for Retrieve Location UID {retrieve_location_uid} "
                "(add it to [consumer.imaging_sources])"
            ) from None


def own_base_url(settings: Settings) -> str:
    """This gateway's base URL: ``http.public_url`` or ``http(s)://host:port`` (https when
    ``tls.enabled``; a wildcard host is reached on the loopback address)."""
    base = settings.http.public_url.rstrip("/")
    if base:
        return base
    host = settings.http.host
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if settings.tls.enabled else "http"
    return f"{scheme}://{host}:{settings.http.port}"


def own_endpoints(settings: Settings, base_url: str | None = None) -> dict[str, Any]:
    """The endpoints of this gateway's enabled actors, as ConsumerSettings fields."""
    base = (base_url or own_base_url(settings)).rstrip("/")
    repositories: dict[str, str] = {}
    sources: dict[str, str] = {}
    if settings.repository.enabled:
        repositories[settings.repository.unique_id] = base + REPOSITORY_PATH
    if settings.imaging_source.enabled:
        sources[settings.imaging_source.unique_id] = base + IMAGING_SOURCE_PATH
    xca = getattr(settings, "xca", None)
    gateway = base + INITIATING_GATEWAY_PATH if xca is not None and xca.enabled else ""
    return {
        "registry_url": base + REGISTRY_PATH if settings.registry.enabled else "",
        "repositories": repositories,
        "imaging_sources": sources,
        "initiating_gateway_url": gateway,
        "home_community_id": xca.home(settings) if xca is not None else "",
    }


def consumer_settings(
    settings: Settings, *, base_url: str | None = None, **overrides: Any
) -> ConsumerSettings:
    """Build the consumer's settings: this gateway's own actors, then a ``[consumer]`` section
    of ``settings`` when the configuration has one, then ``overrides`` (None values ignored).

    Tables merge: a configured or overriding id replaces the built-in URL of the same id.
    """
    values = own_endpoints(settings, base_url)
    if settings.tls.enabled:  # the node's own TLS identity, unless the command line overrides it
        values["verify"] = str(settings.path(settings.tls.ca_file))
        values["cert"] = (
            str(settings.path(settings.tls.certificate)),
            str(settings.path(settings.tls.private_key)),
        )
    section = getattr(settings, "consumer", None)
    layers = [dataclasses.asdict(section) if section is not None else {}, overrides]
    for layer in layers:
        for key, value in layer.items():
            if value is None or key not in ConsumerSettings.__dataclass_fields__:
                continue
            if key in ("repositories", "imaging_sources"):
                values[key] = {**values.get(key, {}), **dict(value)}
            elif key in ("registry_url", "initiating_gateway_url") and not value:
                continue  # "" means "this gateway's own registry / Initiating Gateway"
            else:
                values[key] = value
    for key in ("repositories", "imaging_sources"):
        values[key] = MappingProxyType(dict(values[key]))
    return ConsumerSettings(**values)
