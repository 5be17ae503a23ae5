"""The DICOMweb service root (``/dicomweb``): routing, access check, audit facts, error boundary.

Resources (PS3.18 §10.4 Retrieve, §10.5 Store, §10.6 Search; Tables 10.4.1-1..4, 10.6.1-2):

- ``GET /studies``, ``/series``, ``/instances``, ``/studies/{s}/series``,
  ``/studies/{s}/instances``, ``/studies/{s}/series/{r}/instances``: QIDO-RS;
- ``GET /studies/{s}``, ``.../series/{r}``, ``.../instances/{i}`` (+ ``/metadata``),
  ``.../instances/{i}/frames/{list}``, ``.../bulkdata/{path}``, ``.../rendered`` and
  ``.../thumbnail`` at instance and frame level: WADO-RS;
- ``POST /studies`` and ``/studies/{s}``: STOW-RS.

Statuses (PS3.18 §8.5): 400 malformed query, UID or parameter; 403 refused by the access rules;
404 unknown resource; 405 wrong method; 406 no acceptable media type; 413 body over
``dicomweb.max_upload_bytes``; 415 wrong content type. Access rule names: ``QIDO-RS``,
``WADO-RS``, ``STOW-RS``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

from gateway.dicomweb import qido, render, stow, wado
from gateway.dicomweb.catalog import Catalog
from gateway.dicomweb.http import (
    DicomWebError,
    StartResponse,
    json_body,
    plain,
    status_line,
    warning,
)
from gateway.dicomweb.media import acceptable
from gateway.dicomweb.ports import Backend, ConversionError, StoredInstance
from gateway.dicomweb.results import Results, header_reader
from gateway.mount import Exchange, exchange_of

log = logging.getLogger("gateway.dicomweb")

QIDO, WADO, STOW = "QIDO-RS", "WADO-RS", "STOW-RS"
FIND_SOP_CLASS = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve - FIND (audit)
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_INSTANCE_TAILS = ("metadata", "rendered", "thumbnail", "frames", "bulkdata")


class DicomWebService:
    """A WSGI application over the imaging source's instances (mounted at ``/dicomweb``)."""

    def __init__(
        self,
        backend: Backend,
        catalog: Catalog,
        *,
        public_url: str = "",
        max_results: int = 1000,
        max_upload_bytes: int = 2 * 1024**3,
    ) -> None:
        self.backend = backend
        self.catalog = catalog
        self.public_url = public_url.rstrip("/")
        self.max_results = max_results
        self.max_upload_bytes = max_upload_bytes

    # -- WSGI -----------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        exchange = exchange_of(environ)
        try:
            return self._route(environ, start_response, exchange)
        except DicomWebError as exc:
            exchange.outcome = "Failure"
            exchange.error_codes = (str(exc.status),)
            if exc.status >= 500:
                log.error("DICOMweb %s: %s", environ.get("PATH_INFO"), exc.reason)
            return plain(start_response, exc.status, exc.reason, exc.headers)

    def root(self, environ: dict[str, Any]) -> str:
        """The service root URL: ``dicomweb.public_url``, else from the request's Host."""
        if self.public_url:
            return self.public_url
        host = (
            environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
        )
        return f"{environ.get('wsgi.url_scheme', 'http')}://{host}{environ.get('SCRIPT_NAME', '')}"

    def _route(
        self, environ: dict[str, Any], start: StartResponse, exchange: Exchange
    ) -> Iterable[bytes]:
        parts = [p for p in environ.get("PATH_INFO", "").split("/") if p]
        method = environ.get("REQUEST_METHOD", "GET").upper()
        params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if not parts or parts[0] not in ("studies", "series", "instances"):
            raise DicomWebError(404, "no DICOMweb resource at this path (see /dicomweb/studies)")
        if method == "POST":
            if parts[0] != "studies" or len(parts) > 2:
                raise DicomWebError(
                    405, "only /studies and /studies/{study} take POST", headers=[("Allow", "GET")]
                )
            study = self._uid(parts[1], "Study") if len(parts) == 2 else None
            return self._stow(environ, start, exchange, study)
        if method not in ("GET", "HEAD"):
            raise DicomWebError(
                405, f"{method} is not supported here", headers=[("Allow", "GET, POST")]
            )
        ranges = self._ranges(environ, params)
        level = _search_level(parts)
        if level is not None:
            return self._search(environ, start, exchange, parts, level, params)
        self._allow(exchange, WADO)
        return self._retrieve(environ, start, exchange, parts, params, ranges)

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _uid(text: str, what: str) -> str:
        if not _UID.match(text) or len(text) > 64:
            raise DicomWebError(400, f"{what} Instance UID {text[:80]!r} is not a valid UID")
        return text

    @staticmethod
    def _ranges(environ: dict[str, Any], params: dict[str, list[str]]) -> list[Any]:
        try:
            return acceptable(environ.get("HTTP_ACCEPT"), params.get("accept", []))
        except ValueError as exc:
            raise DicomWebError(400, str(exc)) from exc

    @staticmethod
    def _allow(exchange: Exchange, transaction: str) -> None:
        if not exchange.authorize(transaction):
            raise DicomWebError(403, f"this client may not use {transaction} (access rules)")
        exchange.transaction = transaction

    # -- QIDO-RS --------------------------------------------------------------------------------
    def _search(
        self,
        environ: dict[str, Any],
        start: StartResponse,
        exchange: Exchange,
        parts: list[str],
        level: str,
        params: dict[str, list[str]],
    ) -> Iterable[bytes]:
        self._allow(exchange, QIDO)
        exchange.audit = {
            "query_id": FIND_SOP_CLASS,
            "query_request": environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", ""),
        }
        search = qido.parse(level, params, max_results=self.max_results)
        if len(parts) >= 2:
            search.study_uid = self._uid(parts[1], "Study")
        if len(parts) >= 4:
            search.series_uid = self._uid(parts[3], "Series")
        if "application/dicom+json" not in _json_kinds(self._ranges(environ, params)):
            raise DicomWebError(406, "search results are offered as application/dicom+json")
        self.catalog.sync()
        results, more = self._run(search, self.root(environ))
        headers = [warning(text) for text in search.warnings]
        if more:
            headers.append(warning("There are additional results that can be requested"))
        if not results:
            start(status_line(204), headers)
            return []
        return json_body(start, 200, results, headers=headers)

    def _run(self, search: qido.Search, root: str) -> tuple[list[dict[str, Any]], bool]:
        formatter = Results(root, header_reader(self._path_of))
        with self.catalog.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(qido.statement(search))]
            more = len(rows) > search.limit
            rows = rows[: search.limit]
            if search.level == "study":
                modalities = qido.modalities_of(conn, [r["study_instance_uid"] for r in rows])
                return [
                    formatter.study(r, modalities.get(r["study_instance_uid"], []), search)
                    for r in rows
                ], more
        if search.level == "series":
            return [formatter.series(r, search) for r in rows], more
        return [formatter.instance(r, search) for r in rows], more

    def _path_of(self, uid: str) -> Any:
        found = self.backend.instance(uid)
        return found.path if found is not None else None

    # -- WADO-RS --------------------------------------------------------------------------------
    def _retrieve(
        self,
        environ: dict[str, Any],
        start: StartResponse,
        exchange: Exchange,
        parts: list[str],
        params: dict[str, list[str]],
        ranges: list[Any],
    ) -> Iterable[bytes]:
        study = self._uid(parts[1], "Study")
        series = self._uid(parts[3], "Series") if len(parts) >= 4 and parts[2] == "series" else None
        sop = self._uid(parts[5], "SOP") if len(parts) >= 6 and parts[4] == "instances" else None
        depth = 2 + (2 if series else 0) + (2 if sop else 0)
        tail = parts[depth:]
        if (len(parts) > 2 and parts[2] not in ("series", "metadata", "thumbnail")) or (
            tail and tail[0] not in _INSTANCE_TAILS
        ):
            raise DicomWebError(404, "no DICOMweb resource at this path")
        instances = self._instances(study, series, sop)
        exchange.audit = _transfer_facts(instances)
        if not tail:
            return self._send_instances(start, instances, ranges)
        kind = tail[0]
        if kind == "metadata" and len(tail) == 1:
            media = wado.metadata_media(ranges)
            start(status_line(200), [("Content-Type", media)])
            return wado.metadata_body(instances, self.root(environ))
        if kind == "thumbnail" and len(tail) == 1:
            return self._rendered(start, instances[0], [1], params, ranges, thumbnail=True)
        if sop is None:
            raise DicomWebError(404, f"{kind} is served for an instance")
        return self._instance_part(environ, start, instances[0], tail, params, ranges)

    def _instances(self, study: str, series: str | None, sop: str | None) -> list[StoredInstance]:
        if sop is not None:
            found = self.backend.instance(sop)
            if (
                found is None
                or found.study_instance_uid != study
                or found.series_instance_uid != series
            ):
                raise DicomWebError(404, f"no instance {sop} in series {series} of study {study}")
            return [found]
        members = [
            i
            for i in self.backend.study(study)
            if series is None or i.series_instance_uid == series
        ]
        if not members:
            what = f"series {series} of study {study}" if series else f"study {study}"
            raise DicomWebError(404, f"no {what} here")
        return members

    def _send_instances(
        self, start: StartResponse, instances: list[StoredInstance], ranges: list[Any]
    ) -> Iterator[bytes]:
        content_type, body, problems = wado.instances_response(self.backend, instances, ranges)
        headers = [("Content-Type", content_type)]
        if problems:
            headers.append(warning(f"{len(problems)} instance(s) left out: {problems[0]}"))
        start(status_line(200), headers)
        return body

    def _instance_part(
        self,
        environ: dict[str, Any],
        start: StartResponse,
        instance: StoredInstance,
        tail: list[str],
        params: dict[str, list[str]],
        ranges: list[Any],
    ) -> Iterable[bytes]:
        kind = tail[0]
        if kind in ("rendered", "thumbnail") and len(tail) == 1:
            return self._rendered(
                start, instance, [1], params, ranges, thumbnail=kind == "thumbnail"
            )
        if kind == "frames" and len(tail) in (2, 3):
            numbers = wado.frame_numbers(tail[1])
            if len(tail) == 3:
                if tail[2] not in ("rendered", "thumbnail"):
                    raise DicomWebError(404, "no DICOMweb resource at this path")
                return self._rendered(
                    start, instance, numbers, params, ranges, thumbnail=tail[2] == "thumbnail"
                )
            return self._frames(start, instance, numbers, ranges)
        if kind == "bulkdata" and len(tail) >= 2:
            from gateway.dicomweb.bulk import bulkdata_response

            return bulkdata_response(self.backend, start, instance, "/".join(tail[1:]))
        raise DicomWebError(404, "no DICOMweb resource at this path")

    def _pixels(self, instance: StoredInstance, numbers: list[int]) -> Any:
        try:
            info = self.backend.frames.info(instance.path)
        except ConversionError as exc:
            raise DicomWebError(406, str(exc)) from exc
        if info is None:
            raise DicomWebError(404, f"instance {instance.sop_instance_uid} has no pixel data")
        bad = [n for n in numbers if n > info.frames]
        if bad:
            raise DicomWebError(
                404, f"frame {bad[0]} does not exist (the instance has {info.frames})"
            )
        return info

    def _frames(
        self, start: StartResponse, instance: StoredInstance, numbers: list[int], ranges: list[Any]
    ) -> Iterator[bytes]:
        info = self._pixels(instance, numbers)
        media, syntax, decode = wado.frames_plan(
            ranges, info.transfer_syntax_uid, info.encapsulated
        )
        boundary = wado.new_frames_boundary()
        start(status_line(200), [("Content-Type", wado.frames_type(media, boundary, syntax))])
        return wado.frames_body(
            self.backend, instance, info, numbers, media, syntax, decode, boundary
        )

    def _rendered(
        self,
        start: StartResponse,
        instance: StoredInstance,
        numbers: list[int],
        params: dict[str, list[str]],
        ranges: list[Any],
        *,
        thumbnail: bool,
    ) -> list[bytes]:
        rendering = render.parameters(params, ranges, thumbnail=thumbnail)
        info = self._pixels(instance, numbers)
        try:
            array = self.backend.frames.decoded(instance.path, info, numbers[0])
        except ConversionError as exc:
            raise DicomWebError(406, f"this instance cannot be rendered: {exc}") from exc
        image = render.fit(render.to_image(array, info.header, rendering), rendering.viewport)
        body = render.encode(image, rendering)
        start(
            status_line(200),
            [("Content-Type", rendering.media), ("Content-Length", str(len(body)))],
        )
        return [body]

    # -- STOW-RS --------------------------------------------------------------------------------
    def _stow(
        self, environ: dict[str, Any], start: StartResponse, exchange: Exchange, study: str | None
    ) -> Iterable[bytes]:
        self._allow(exchange, STOW)
        content_type = environ.get("CONTENT_TYPE", "")
        length = _length(environ)
        stow.check_request(content_type, length, self.max_upload_bytes)
        report = stow.store_all(
            self.backend,
            environ["wsgi.input"],
            content_type,
            length,
            max_bytes=self.max_upload_bytes,
            study_uid=study,
        )
        exchange.audit = _transfer_facts(report.stored)
        if report.failed:
            exchange.outcome = "PartialSuccess" if report.stored else "Failure"
            exchange.audit["outcome_description"] = "; ".join(stow.reasons(report))[:1000]
        return json_body(start, report.status, stow.response(report, self.root(environ), study))


def _search_level(parts: list[str]) -> str | None:
    """The level of a search resource, None for a retrieve resource."""
    n = len(parts)
    if n == 1:
        return {"studies": "study", "series": "series", "instances": "instance"}[parts[0]]
    if parts[0] != "studies":
        raise DicomWebError(404, "no DICOMweb resource at this path")
    if n == 3 and parts[2] in ("series", "instances"):
        return "series" if parts[2] == "series" else "instance"
    if n == 5 and parts[2] == "series" and parts[4] == "instances":
        return "instance"
    return None


def _json_kinds(ranges: list[Any]) -> set[str]:
    kinds = set()
    for item in ranges:
        if item.matches("application/dicom+json") or item.matches("application/json"):
            kinds.add("application/dicom+json")
    return kinds


def _length(environ: dict[str, Any]) -> int | None:
    text = environ.get("CONTENT_LENGTH") or ""
    try:
        return int(text) if text.strip() else None
    except ValueError:
        raise DicomWebError(400, f"malformed Content-Length {text[:20]!r}") from None


def _transfer_facts(instances: Iterable[StoredInstance]) -> dict[str, Any]:
    """Audit facts of a transfer (PS3.15 A.5.3.7): studies, their series and instances."""
    studies: dict[str, dict[str, Any]] = {}
    patients: list[str] = []
    for i in instances:
        entry = studies.setdefault(
            i.study_instance_uid,
            {"study_uid": i.study_instance_uid, "series_uids": [], "instances": []},
        )
        if i.series_instance_uid not in entry["series_uids"]:
            entry["series_uids"].append(i.series_instance_uid)
        entry["instances"].append((i.sop_class_uid, i.sop_instance_uid))
        if i.patient_id and i.patient_id not in patients:
            patients.append(i.patient_id)
    return {"studies": list(studies.values()), "patient_ids": patients}
