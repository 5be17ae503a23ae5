"""What can go wrong for a consumer, as exceptions a command turns into one line for a person.

These are client-side failures (the consumer never answers a peer), so they carry no XDS
errorCode of their own; the RegistryErrors a peer returned are kept in ``errors``::

    ConsumerError
     ├── PeerError          no usable answer: unreachable, SOAP fault, malformed body
     ├── RequestFailed      the peer answered Failure (its RegistryErrors attached)
     ├── UnknownEndpoint    no URL configured for a repositoryUniqueId / Retrieve Location UID
     └── ManifestError      a retrieved KOS manifest cannot be read
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.metadata.retrieve import RegistryError


class ConsumerError(Exception):
    """A consumer operation failed; the message says why."""


class PeerError(ConsumerError):
    """A peer could not be reached or gave no usable answer; ``transient`` when no complete
    answer came (``gateway.soap.client.SoapTransportError``) for a reason that may pass (a
    timeout, a reset, an error page): the same request may succeed. Nothing listening, an
    unknown host name or a TLS failure are not transient (``gateway.netcause.LASTING``)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class RequestFailed(ConsumerError):
    """A peer answered with status Failure; ``errors`` are its RegistryErrors."""

    def __init__(self, message: str, errors: Sequence[RegistryError] = ()) -> None:
        details = "; ".join(str(error) for error in errors)
        super().__init__(f"{message}: {details}" if details else message)
        self.errors = list(errors)


class UnknownEndpoint(ConsumerError):
    """No endpoint URL is known for a unique id."""


class ManifestError(ConsumerError):
    """A KOS manifest is not readable or names no instance."""
