"""The FHIR service at ``/fhir``: a WSGI application mounted on the gateway's HTTP server.

Routes (FHIR R4 http.html: ``[base]/[type]`` search, ``[base]/[type]/[id]`` read,
``[base]/[type]/_search`` POST search, ``POST [base]`` transaction, ``[base]/metadata``):

========================================  ================================  ===========
request                                   what                              access rule
========================================  ================================  ===========
GET  /metadata                            CapabilityStatement               (none)
POST /                                    ITI-65 Provide Document Bundle    ITI-65
GET  /List, /List/{id}                    ITI-66 Find Document Lists        ITI-66
GET  /DocumentReference, /{id}            ITI-67 Find Document References   ITI-67
GET  /Binary/{id}                         ITI-68 Retrieve Document          ITI-68
GET  /ImagingStudy, /{id}                 studies of the KOS manifests      ITI-67
GET  /Patient, /{id}                      patients of the ITI-8 feed        ITI-78
========================================  ================================  ===========

Every refusal is an OperationOutcome with its HTTP status (``wire.FhirError``); unexpected
exceptions are logged with the request id and answered 500 without a stack trace. The access
check is the secure node's (``gateway.mount.Exchange.authorize``): refused calls get 403
(FHIR R4 http.html; ITI TF-2x Appendix Z.7 guidance on 403). Request bodies are refused with
413 above ``max_body_bytes`` before being read, and with 415 when not JSON (this server speaks
JSON only; ``_format``/``Accept`` asking for XML get 406).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from gateway import __version__
from gateway.fhir import capability, imaging, iti65, iti66, iti67, iti68
from gateway.fhir import patient as patients
from gateway.fhir.docref import Links
from gateway.fhir.ports import Backends
from gateway.fhir.search import Params
from gateway.fhir.wire import (
    Answer,
    FhirError,
    Issue,
    json_answer,
    media_type,
    operation_outcome,
    parse_json,
    wants_json,
)
from gateway.mount import Exchange, exchange_of

log = logging.getLogger("gateway.fhir")

FORM = "application/x-www-form-urlencoded"
JSON_BODIES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
SEARCHABLE = ("DocumentReference", "List", "ImagingStudy", "Patient")


class _Request:
    """What a route needs of one request."""

    def __init__(self, environ: dict[str, Any], public_url: str) -> None:
        self.environ = environ
        self.method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        self.parts = [unquote(p) for p in str(environ.get("PATH_INFO", "")).split("/") if p]
        self.query = str(environ.get("QUERY_STRING", ""))
        script = str(environ.get("SCRIPT_NAME", "")).rstrip("/")
        if public_url:
            root = public_url.rstrip("/")
        else:
            scheme = environ.get("wsgi.url_scheme", "http")
            host = environ.get("HTTP_HOST") or (
                f"{environ.get('SERVER_NAME', '127.0.0.1')}:{environ.get('SERVER_PORT', '80')}"
            )
            root = f"{scheme}://{host}"
        self.links = Links(base=root + script, root=root)

    @property
    def accept(self) -> str | None:
        value = self.environ.get("HTTP_ACCEPT")
        return str(value) if value else None

    @property
    def content_type(self) -> str:
        return media_type(self.environ.get("CONTENT_TYPE"))


class FhirService:
    """The WSGI application of ``/fhir`` over ``backends``.

    ``public_url``: the gateway's public base URL (``http.public_url``; empty = the request's
    Host); ``max_body_bytes``: the largest request body read (``mhd.max_bundle_bytes``);
    ``page_size``: matches per page when the client gives no ``_count``.
    """

    def __init__(
        self,
        backends: Backends,
        *,
        public_url: str = "",
        max_body_bytes: int = 64 * 1024 * 1024,
        page_size: int = 100,
    ) -> None:
        self.backends = backends
        self.public_url = public_url
        self.max_body_bytes = max_body_bytes
        self.page_size = page_size
        self.studies = imaging.StudyBuilder(backends)
        self.started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # What the CapabilityStatement lists is what is routed, and nothing else.
        listed = capability.capability_statement(backends, base="", version="", date="")
        self.served = frozenset(str(r["type"]) for r in listed["rest"][0]["resource"])

    # -- WSGI ---------------------------------------------------------------------------------
    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        exchange = exchange_of(environ)
        # The audit record's requesting participant (UserID): FHIR has no wsa:ReplyTo, so the
        # client is named by its certificate subject, else its address (DICOM PS3.15 A.5.2.1).
        exchange.audit.setdefault("reply_to", exchange.peer_subject or exchange.remote_addr)
        request = _Request(environ, self.public_url)
        try:
            answer = self._route(request, exchange)
        except FhirError as error:
            answer = self._refusal(error, exchange)
        except Exception:  # the boundary: never a stack trace to the peer
            log.exception("request %s %s failed", exchange.request_id, request.parts)
            internal = FhirError.of(
                500, f"internal error (request {exchange.request_id})", code="exception"
            )
            answer = self._refusal(internal, exchange)
        start_response(f"{answer.status} {HTTPStatus(answer.status).phrase}", answer.headers)
        return _Body(answer)

    def _refusal(self, error: FhirError, exchange: Exchange) -> Answer:
        exchange.outcome = "Failure"
        exchange.error_codes = error.xds_codes or tuple(sorted({i.code for i in error.issues}))
        if error.status < 500:
            log.info("request %s refused (%d): %s", exchange.request_id, error.status, error)
        return json_answer(operation_outcome(error.issues), error.status, error.headers)

    # -- routing ------------------------------------------------------------------------------
    def _route(self, request: _Request, exchange: Exchange) -> Answer:
        parts, method = request.parts, request.method
        if not parts:
            if method == "POST":
                return self._provide(request, exchange)
            raise FhirError.of(
                405,
                "POST a transaction Bundle here (ITI-65)",
                code="not-supported",
            )
        if parts == ["metadata"] and method == "GET":
            self._check_format(request)
            return json_answer(self._capability(request))
        kind = parts[0]
        if kind not in self.served:
            raise FhirError.of(
                404, f"no resource type {kind!r} is served here", code="not-supported"
            )
        if kind == "Binary" and len(parts) == 2 and method == "GET":
            return self._retrieve(request, exchange, parts[1])
        if kind not in SEARCHABLE:
            raise FhirError.of(
                404, f"no resource type {kind!r} is served here", code="not-supported"
            )
        self._check_format(request)
        if len(parts) == 1 and method == "GET":
            return self._search(request, exchange, kind, Params.parse(request.query))
        if len(parts) == 2 and parts[1] == "_search" and method == "POST":
            body = self._form(request)
            return self._search(request, exchange, kind, Params.parse(request.query, body))
        if len(parts) == 2 and method == "GET":
            return self._read(request, exchange, kind, parts[1])
        raise FhirError.of(
            405, f"{method} {'/'.join(parts)} is not supported", code="not-supported"
        )

    def _check_format(self, request: _Request) -> None:
        params = Params.parse(request.query)
        if not wants_json(params.one("_format"), request.accept):
            raise FhirError.of(
                406, "this server answers application/fhir+json only", code="not-supported"
            )

    def _authorize(self, exchange: Exchange, transaction: str) -> None:
        exchange.transaction = transaction
        if not exchange.authorize(transaction):
            raise FhirError.of(
                403, f"{transaction} is not permitted for this client", code="forbidden"
            )

    def _capability(self, request: _Request) -> dict[str, Any]:
        return capability.capability_statement(
            self.backends, base=request.links.base, version=__version__, date=self.started
        )

    # -- bodies -------------------------------------------------------------------------------
    def _body(self, request: _Request) -> bytes:
        """The request body, at most ``max_body_bytes`` (413 beyond, before reading if declared)."""
        declared = request.environ.get("CONTENT_LENGTH") or ""
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)
        stream = request.environ["wsgi.input"]
        chunks, total = [], 0
        while True:
            chunk = stream.read(min(65536, self.max_body_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
        return b"".join(chunks)

    def _form(self, request: _Request) -> str:
        if request.content_type not in ("", FORM):
            raise FhirError.of(415, f"a POST search body must be {FORM}", code="not-supported")
        try:
            return self._body(request).decode("ascii")
        except UnicodeDecodeError as exc:
            raise FhirError.of(
                400, "the search body is not percent-encoded ASCII", code="structure"
            ) from exc

    # -- transactions -------------------------------------------------------------------------
    def _provide(self, request: _Request, exchange: Exchange) -> Answer:
        self._authorize(exchange, iti65.TRANSACTION)
        if self.backends.provide is None:
            raise FhirError.of(
                501, "this gateway has no repository to store documents", code="not-supported"
            )
        if request.content_type not in JSON_BODIES:
            raise FhirError.of(
                415,
                "the Bundle must be application/fhir+json, not "
                f"{request.content_type or 'untyped'}",
                code="not-supported",
            )
        self._check_format(request)
        bundle = parse_json(self._body(request))
        mapped = iti65.map_bundle(
            bundle, base=request.links.base, domain_oid=self.backends.domain_oid
        )
        exchange.audit.update(mapped.submission.audit_facts())
        warnings = iti65.provide(mapped, self.backends.provide)
        exchange.outcome = "PartialSuccess" if warnings else "Success"
        exchange.error_codes = tuple(w.xds_code for w in warnings if w.xds_code)
        return json_answer(iti65.response_bundle(mapped, len(bundle.get("entry") or []), warnings))

    def _search(self, request: _Request, exchange: Exchange, kind: str, params: Params) -> Answer:
        links, count = request.links, self.page_size
        exchange.audit["query_request"] = f"{kind}?{params_text(params)}"
        if kind == "DocumentReference":
            self._authorize(exchange, iti67.TRANSACTION)
            found, facts = iti67.search(params, self.backends, links, default_count=count)
        elif kind == "List":
            self._authorize(exchange, iti66.TRANSACTION)
            found, facts = iti66.search(params, self.backends, links, default_count=count)
        elif kind == "ImagingStudy":
            self._authorize(exchange, imaging.TRANSACTION)
            found, facts = imaging.search(params, self.studies, links, default_count=count)
        else:
            self._authorize(exchange, patients.TRANSACTION)
            found = patients.search(params, self.backends, links.base, default_count=count)
            facts = {}
        exchange.audit.update(facts)
        return json_answer(found)

    def _read(self, request: _Request, exchange: Exchange, kind: str, resource_id: str) -> Answer:
        links = request.links
        exchange.audit["query_request"] = f"{kind}/{resource_id}"
        if kind == "DocumentReference":
            self._authorize(exchange, iti67.TRANSACTION)
            resource, entry = iti67.read(resource_id, self.backends, links)
            exchange.audit["patient_ids"] = [entry.patient_id] if entry.patient_id else []
        elif kind == "List":
            self._authorize(exchange, iti66.TRANSACTION)
            resource, patient = iti66.read(resource_id, self.backends, links)
            exchange.audit["patient_ids"] = [patient] if patient else []
        elif kind == "ImagingStudy":
            self._authorize(exchange, imaging.TRANSACTION)
            resource, entry = imaging.read(resource_id, self.studies, links)
            exchange.audit["patient_ids"] = [entry.patient_id] if entry.patient_id else []
        else:
            self._authorize(exchange, patients.TRANSACTION)
            resource = patients.read(resource_id, self.backends)
        return json_answer(resource)

    def _retrieve(self, request: _Request, exchange: Exchange, resource_id: str) -> Answer:
        self._authorize(exchange, iti68.TRANSACTION)
        return iti68.retrieve(
            resource_id,
            self.backends,
            accept=request.accept,
            inline_limit=self.max_body_bytes,
            facts=exchange.audit,
        )


def params_text(params: Params) -> str:
    """The parameters of a search as text (the audit record's query)."""
    return "&".join(f"{name}={value}" for name, value in params.items)


def _too_large(limit: int) -> FhirError:
    # The HTTP server closes the connection rather than read a large unread rest (soap/server).
    message = f"the request body exceeds {limit} bytes (mhd.max_bundle_bytes)"
    return FhirError(413, [Issue(code="too-costly", diagnostics=message)])


class _Body:
    """The response iterable: the answer's chunks, then its ``close`` (temporary files)."""

    def __init__(self, answer: Answer) -> None:
        self._answer = answer

    def __iter__(self) -> Iterator[bytes]:
        yield from self._answer.body

    def close(self) -> None:
        close = getattr(self._answer.body, "close", None)
        if close is not None:
            close()
        if self._answer.close is not None:
            self._answer.close()
