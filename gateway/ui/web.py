"""The exchange browser at ``/ui``: dashboard, patient search, patient, study and document pages.

Pages are rendered on the server (Jinja2, autoescaped) from the actors' public interfaces
(:mod:`gateway.ui.ports`); images are the DICOMweb service's ``/thumbnail`` and ``/rendered``
resources (DICOM PS3.18 §10.4.1.1.3), fetched through ``/ui`` so that the UI's login guards them
too. Every asset is served from the package (``gateway/ui/static``): no CDN.

Who may look (README, "The exchange browser"): with ``ui.accounts_file`` set, every route but
``/ui/login`` and ``/ui/static/*`` (the stylesheet and the viewer script, no data) needs a
signed-in operator; without it the UI is open only when the HTTP listener is bound to loopback,
else refused. Access rules (``[access]``) can restrict ``/ui`` by TLS identity (rule name
``UI``). Every page showing a patient's data writes an audit record with the operator's name
(DICOM PS3.15 A.5.3.10 Query, A.5.3.14 Patient Record).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import logging
import mimetypes
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import fields, replace
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from cryptography.fernet import Fernet, InvalidToken
from jinja2 import Environment, PackageLoader, select_autoescape

from gateway.metadata import vocabulary
from gateway.metadata.model import DocumentEntry
from gateway.mount import Exchange, exchange_of
from gateway.ui import accounts, sessions
from gateway.ui.journal import Journal
from gateway.ui.ports import Backends, SeriesView

log = logging.getLogger("gateway.ui")

StartResponse = Callable[..., Any]
STUDY_UID_TYPE = "urn:ihe:iti:xds:2016:studyInstanceUID"  # ITI TF-3 §4.2.3.2.28
FIND_DOCUMENTS = str(vocabulary.FIND_DOCUMENTS)  # ITI TF-2 §3.18.4.1.2.3.7.1
PATIENT_SEARCH = "urn:xdsi-gateway:ui:patient-search"
MAX_FORM_BYTES = 8192
_UID = re.compile(r"^[0-9]+(\.[0-9]+){0,63}$")
_STATIC = re.compile(r"^[a-z0-9_-]+\.(css|js|svg|png)$")
_SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
]
STATUS_WORDS = {
    str(vocabulary.STATUS_APPROVED): "Approved",
    str(vocabulary.STATUS_DEPRECATED): "Deprecated",
}


class Reply(Exception):
    """An early answer (redirect, refusal) raised from inside a route."""

    def __init__(self, status: str, body: str = "", headers: Sequence[tuple[str, str]] = ()):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, list(headers)


def mask(patient_id: str) -> str:
    """A patient id for display when ``log.patient_ids = false``: first character, then stars,
    the assigning authority kept (``A***^^^&1.2.3&ISO``)."""
    head, sep, tail = patient_id.partition("^")
    return (head[:1] + "***") + (sep + tail if sep else "")


def study_uid_of(entry: DocumentEntry) -> str | None:
    """The Study Instance UID in an entry's referenceIdList (ITI TF-3 §4.2.3.2.28), if any."""
    for reference in entry.reference_id_list:
        parts = reference.split("^")
        if len(parts) >= 5 and parts[4] == STUDY_UID_TYPE and parts[0]:
            return parts[0]
    return None


def _dtm(value: str | None) -> str:
    """An XDS DTM (YYYY[MM[DD[hh[mm[ss]]]]]) for reading: ``2026-12-06 14:03``."""
    if not value:
        return ""
    v = value
    out = v[:4]
    if len(v) >= 8:
        out = f"{v[:4]}-{v[4:6]}-{v[6:8]}"
    if len(v) >= 12:
        out += f" {v[8:10]}:{v[10:12]}"
    return out


def _when(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


class UiApplication:
    """The WSGI application mounted at ``/ui``."""

    def __init__(
        self,
        backends: Backends,
        *,
        journal: Journal | None,
        accounts_file: Path | None,
        open_access: bool,
        key: bytes,
        secure_cookies: bool = False,
        mask_patient_ids: bool = False,
    ) -> None:
        self.backends = backends
        self.journal = journal
        self.accounts_file = accounts_file
        self.open_access = open_access and accounts_file is None
        self.signer = sessions.Signer(key)
        self.secure = secure_cookies
        self.mask_ids = mask_patient_ids
        self.templates = Environment(
            loader=PackageLoader("gateway.ui", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["pid"] = self.show_id
        self.templates.filters["pidref"] = self.patient_ref
        # Masked mode: patient pages are addressed by an encrypted reference, so that the id
        # appears neither on the page nor in URLs, browser history or access logs.
        self._refs = Fernet(
            base64.urlsafe_b64encode(hmac.new(key, b"ui patient ref", hashlib.sha256).digest())
        )
        self.templates.filters["urlpart"] = lambda s: quote(str(s), safe="")
        self.templates.filters["when"] = _when
        self.templates.filters["dtm"] = _dtm

    def show_id(self, patient_id: str | None) -> str:
        """A patient id as shown on a page (masked when ``log.patient_ids = false``)."""
        if not patient_id:
            return ""
        return mask(patient_id) if self.mask_ids else patient_id

    def patient_ref(self, patient_id: str) -> str:
        """The path segment of a patient's page: the id (URL-quoted), or when ids are masked an
        encrypted reference (``~`` + Fernet token) that only this gateway can read."""
        if not self.mask_ids:
            return quote(patient_id, safe="")
        return "~" + self._refs.encrypt(patient_id.encode("utf-8")).decode("ascii")

    def _patient_id(self, segment: str) -> str:
        if not segment.startswith("~"):
            return segment
        try:
            return self._refs.decrypt(segment[1:].encode("ascii"), ttl=86400).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise Reply("404 Not Found", "this patient link has expired; search again") from None

    # -- WSGI ------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        exchange = exchange_of(environ)
        path = environ.get("PATH_INFO", "") or ""
        method = environ.get("REQUEST_METHOD", "GET").upper()
        try:
            if path == "":
                raise Reply("301 Moved Permanently", headers=[("Location", self._url(environ))])
            if not exchange.authorize("UI"):  # the access rules first, for every route
                exchange.outcome = "Failure"
                raise Reply("403 Forbidden", "this client may not use the UI (access rules)")
            if path.startswith("/static/"):  # public within the UI: no data in them
                return self._static(path[len("/static/") :], start_response)
            if path == "/login":
                return self._login(environ, start_response, method, exchange)
            operator = self._operator(environ)
            if operator is None:
                if method == "GET" and not _is_image(path):
                    query = environ.get("QUERY_STRING", "")
                    wanted = path + ("?" + query if query else "")
                    target = self._url(environ, "/login") + "?" + urlencode({"next": wanted})
                    raise Reply("303 See Other", headers=[("Location", target)])
                raise Reply("401 Unauthorized", "sign in first (/ui/login)")
            try:
                return self._route(environ, start_response, method, path, operator)
            except Reply:
                raise
            except Exception:  # an actor or peer failed: a page that says so, details in the log
                log.exception("UI %s failed (request %s)", path, exchange.request_id)
                exchange.outcome = "Failure"
                raise Reply(
                    "502 Bad Gateway",
                    "the exchange could not answer this page; the gateway's log has the "
                    f"details (request {exchange.request_id})",
                ) from None
        except Reply as reply:
            return self._reply(start_response, reply)

    def _route(
        self,
        environ: dict[str, Any],
        start: StartResponse,
        method: str,
        path: str,
        operator: str,
    ) -> Iterable[bytes]:
        parts = [unquote(p) for p in path.split("/") if p]
        if method == "POST":
            if parts == ["logout"]:
                return self._logout(environ, start)
            if len(parts) == 3 and (parts[0], parts[2]) == ("inbox", "accept"):
                return self._inbox_accept(environ, operator, parts[1])
            raise Reply(
                "405 Method Not Allowed",
                "only /ui/login, /ui/logout and /ui/inbox/ID/accept take POST",
            )
        if method not in ("GET", "HEAD"):
            raise Reply("405 Method Not Allowed", f"{method} is not supported here")
        params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        page: dict[str, Any] = {
            "operator": operator,
            "csrf": self._csrf(environ),
            "open": self.open_access,
            "has_inbox": self.backends.inbox is not None,
        }
        if not parts:
            return self._page(start, "dashboard.html", **page, **self._dashboard())
        if parts[0] == "patients" and len(parts) == 1:
            return self._search(environ, start, page, (params.get("q") or [""])[-1])
        if parts[0] == "patients" and len(parts) == 2:
            return self._patient(environ, start, page, self._patient_id(parts[1]))
        if parts[0] == "studies" and len(parts) == 2:
            return self._study(environ, start, page, _uid(parts[1]))
        if (
            parts[0] == "studies"
            and len(parts) == 7
            and (parts[2], parts[4]) == ("series", "instances")
            and parts[6] in ("thumbnail", "rendered")
        ):
            return self._image(environ, start, [_uid(p) for p in parts[1:6:2]], parts[6])
        if parts == ["inbox"]:
            return self._inbox(environ, start, page)
        if parts[0] == "documents" and len(parts) in (2, 3):
            return self._document(environ, start, page, parts[1], download=len(parts) == 3)
        raise Reply("404 Not Found", "no page at this address")

    # -- access ----------------------------------------------------------------------------------
    def _cookies(self, environ: dict[str, Any]) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(environ.get("HTTP_COOKIE", ""))
        except CookieError:
            return {}
        return {k: m.value for k, m in jar.items()}

    def _operator(self, environ: dict[str, Any]) -> str | None:
        if self.open_access:
            return "local"
        if self.accounts_file is None:
            raise Reply(
                "403 Forbidden",
                "the UI is open only on a loopback listener; set ui.accounts_file "
                "(xdsi-gateway ui add-user NAME) to sign in from elsewhere",
            )
        session = self.signer.check(self._cookies(environ).get(sessions.COOKIE))
        return session.operator if session is not None else None

    def _csrf(self, environ: dict[str, Any]) -> str:
        token = self._cookies(environ).get(sessions.COOKIE)
        return self.signer.csrf(token) if token else ""

    def _form_binding(self, environ: dict[str, Any]) -> str | None:
        """What the CSRF token of a data-changing form is bound to: the session cookie, or on an
        open (loopback, no accounts) UI the pre-login cookie (SameSite=Strict, so another site's
        page cannot post with it)."""
        name = sessions.PRE_COOKIE if self.open_access else sessions.COOKIE
        return self._cookies(environ).get(name)

    def _login(
        self, environ: dict[str, Any], start: StartResponse, method: str, exchange: Exchange
    ) -> Iterable[bytes]:
        params = parse_qs(environ.get("QUERY_STRING", ""))
        target = _safe_next((params.get("next") or ["/"])[-1])
        if self.open_access:
            raise Reply("303 See Other", headers=[("Location", self._url(environ, target))])
        if self.accounts_file is None:
            self._operator(environ)  # raises the refusal
        cookies = self._cookies(environ)
        pre = cookies.get(sessions.PRE_COOKIE)
        if method == "GET":
            return self._login_page(start, target, "", pre)
        if method != "POST":
            raise Reply("405 Method Not Allowed", "GET or POST")
        form = _form(environ)
        if not self.signer.csrf_ok(pre, form.get("csrf")):
            exchange.outcome = "Failure"
            raise Reply("403 Forbidden", "the form's CSRF token is missing or wrong")
        name, password = form.get("username", ""), form.get("password", "")
        target = _safe_next(form.get("next", "/"))
        remote = environ.get("REMOTE_ADDR")
        assert self.accounts_file is not None and self.journal is not None
        if self.journal.recent_failures(name, remote, sessions.WINDOW_SECONDS) >= (
            sessions.MAX_FAILURES
        ):
            exchange.outcome = "Failure"
            log.warning("UI login of %r from %s refused: too many failures", name, remote)
            return self._login_page(
                start, target, "Too many failed logins: wait a few minutes.", pre, status=429
            )
        if not accounts.verify(self.accounts_file, name, password):
            self.journal.failed_login(name, remote)
            exchange.outcome = "Failure"
            log.warning("UI login of %r from %s refused: wrong name or password", name, remote)
            return self._login_page(start, target, "Wrong name or password.", pre, status=401)
        token = self.signer.issue(name)
        log.info("UI login of %s from %s", name, remote)
        raise Reply(
            "303 See Other",
            headers=[
                ("Location", self._url(environ, target)),
                (
                    "Set-Cookie",
                    sessions.cookie(
                        sessions.COOKIE, token, secure=self.secure, max_age=sessions.SESSION_SECONDS
                    ),
                ),
                (
                    "Set-Cookie",
                    sessions.cookie(sessions.PRE_COOKIE, "", secure=self.secure, max_age=0),
                ),
            ],
        )

    def _login_page(
        self, start: StartResponse, target: str, error: str, pre: str | None, status: int = 200
    ) -> Iterable[bytes]:
        headers = []
        if not pre:
            pre = secrets.token_urlsafe(24)
            headers.append(
                ("Set-Cookie", sessions.cookie(sessions.PRE_COOKIE, pre, secure=self.secure))
            )
        return self._page(
            start,
            "login.html",
            status=status,
            headers=headers,
            operator=None,
            csrf=self.signer.csrf(pre),
            next=target,
            error=error,
        )

    def _logout(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        token = self._cookies(environ).get(sessions.COOKIE)
        if not self.open_access and not self.signer.csrf_ok(token, _form(environ).get("csrf")):
            raise Reply("403 Forbidden", "the form's CSRF token is missing or wrong")
        raise Reply(
            "303 See Other",
            headers=[
                ("Location", self._url(environ, "/login")),
                ("Set-Cookie", sessions.cookie(sessions.COOKIE, "", secure=self.secure, max_age=0)),
            ],
        )

    # -- pages -----------------------------------------------------------------------------------
    def _dashboard(self) -> dict[str, Any]:
        b = self.backends
        recent = self.journal.recent(50) if self.journal is not None else []
        errors = self.journal.recent(10, failures_only=True) if self.journal is not None else []
        return {
            "actors": dict(b.actors()),
            "counts": dict(b.counts()),
            "audit_depth": b.audit_depth(),
            "recent": recent,
            "errors": errors,
        }

    def _search(
        self, environ: dict[str, Any], start: StartResponse, page: dict[str, Any], text: str
    ) -> Iterable[bytes]:
        text = text.strip()[:128]
        rows: Sequence[Any] = []
        if text and self.backends.search_patients is not None:
            rows = self.backends.search_patients(text, 200)
            self.backends.audit_query(
                page["operator"],
                environ.get("REMOTE_ADDR"),
                PATIENT_SEARCH,
                f"q={text}",
                [r.patient_id for r in rows],
            )
        return self._page(
            start,
            "patients.html",
            **page,
            q=text,
            rows=rows,
            available=self.backends.search_patients is not None,
        )

    def _patient(
        self, environ: dict[str, Any], start: StartResponse, page: dict[str, Any], pid: str
    ) -> Iterable[bytes]:
        if self.backends.documents_of is None:
            raise Reply("404 Not Found", "no registry is reachable from this gateway")
        operator, host = page["operator"], environ.get("REMOTE_ADDR")
        entries = self.backends.documents_of(pid)
        self.backends.audit_query(operator, host, FIND_DOCUMENTS, f"patientId={pid}", [pid])
        studies: dict[str, dict[str, Any]] = {}
        others = []
        for entry in entries:
            uid = study_uid_of(entry)
            if uid is None:
                others.append(entry)
                continue
            study = studies.setdefault(uid, {"uid": uid, "entries": [], "series": []})
            study["entries"].append(entry)
        for study in studies.values():
            study["series"] = self._series(study["uid"])
            first = study["entries"][0]
            study["date"] = _dtm(first.service_start_time or first.creation_time)
            study["sort"] = first.service_start_time or first.creation_time or ""
        ordered = sorted(studies.values(), key=lambda s: s["sort"], reverse=True)
        self.backends.audit_patient(operator, host, [pid], [s["uid"] for s in ordered])
        return self._page(
            start,
            "patient.html",
            **page,
            pid=pid,
            studies=ordered,
            others=others,
            describe=_describe,
        )

    def _inbox(
        self, environ: dict[str, Any], start: StartResponse, page: dict[str, Any]
    ) -> Iterable[bytes]:
        """The XDR inbox (RAD TF-1 §18 XDR-I, ITI TF-2b §3.41): the submissions the Document
        Recipient received, with an Accept button for those not yet imported. Audited as a
        Patient Record read (DICOM PS3.15 A.5.3.14) of the patients listed."""
        if self.backends.inbox is None:
            raise Reply("404 Not Found", "this gateway has no XDR Document Recipient")
        headers: list[tuple[str, str]] = []
        binding = self._form_binding(environ)
        if self.open_access and not binding:
            binding = secrets.token_urlsafe(24)
            headers.append(
                ("Set-Cookie", sessions.cookie(sessions.PRE_COOKIE, binding, secure=self.secure))
            )
        rows = [  # an import's error may name the patient: masked like the column
            replace(r, error=r.error.replace(r.patient_id, self.show_id(r.patient_id)))
            if self.mask_ids and r.patient_id and r.error
            else r
            for r in self.backends.inbox()
        ]
        pids = sorted({r.patient_id for r in rows if r.patient_id})
        studies = sorted({uid for r in rows for uid in r.studies})
        if rows:
            self.backends.audit_patient(page["operator"], environ.get("REMOTE_ADDR"), pids, studies)
        return self._page(
            start,
            "inbox.html",
            headers=headers,
            **{**page, "csrf": self.signer.csrf(binding) if binding else ""},
            rows=rows,
            acceptable=("received", "failed"),
            can_accept=self.backends.inbox_accept is not None,
        )

    def _inbox_accept(self, environ: dict[str, Any], operator: str, text: str) -> Iterable[bytes]:
        """``POST /ui/inbox/ID/accept`` (CSRF-checked): queue the import of an inbox entry, as
        ``xdsi-gateway inbox accept ID`` does; back to the inbox page."""
        if not self.signer.csrf_ok(self._form_binding(environ), _form(environ).get("csrf")):
            raise Reply("403 Forbidden", "the form's CSRF token is missing or wrong")
        if self.backends.inbox_accept is None:
            raise Reply("404 Not Found", "this gateway has no XDR Document Recipient")
        if not text.isdigit() or len(text) > 18:
            raise Reply("404 Not Found", "no such inbox entry")
        row = self.backends.inbox_accept(int(text))
        if row is None:
            raise Reply("409 Conflict", f"inbox entry {text} does not exist or is not to accept")
        log.info("UI: %s accepted inbox entry %s (outbox row %d)", operator, text, row)
        raise Reply("303 See Other", headers=[("Location", self._url(environ, "/inbox"))])

    def _series(self, study_uid: str) -> list[SeriesView]:
        if self.backends.series_of is None:
            return []
        return list(self.backends.series_of(study_uid))

    def _study(
        self, environ: dict[str, Any], start: StartResponse, page: dict[str, Any], uid: str
    ) -> Iterable[bytes]:
        series = self._series(uid)
        if not series:
            raise Reply("404 Not Found", "this gateway's imaging source holds no such study")
        pid = self.backends.patient_of_study(uid)
        self.backends.audit_patient(
            page["operator"], environ.get("REMOTE_ADDR"), [pid] if pid else [], [uid]
        )
        return self._page(start, "study.html", **page, uid=uid, series=series)

    def _document(
        self,
        environ: dict[str, Any],
        start: StartResponse,
        page: dict[str, Any],
        uuid: str,
        *,
        download: bool,
    ) -> Iterable[bytes]:
        if self.backends.document is None or not uuid.startswith("urn:uuid:"):
            raise Reply("404 Not Found", "no such document")
        entry = self.backends.document(uuid)
        if entry is None:
            raise Reply("404 Not Found", "no such document")
        pids = [entry.patient_id] if entry.patient_id else []
        self.backends.audit_patient(page["operator"], environ.get("REMOTE_ADDR"), pids, [])
        if download:
            if self.backends.download is None:
                raise Reply("404 Not Found", "no repository is reachable from this gateway")
            got = self.backends.download(entry)
            name = "document.dcm" if got.mime_type == "application/dicom" else "document"
            try:
                start(
                    "200 OK",
                    [
                        ("Content-Type", got.mime_type),
                        ("Content-Length", str(got.size)),
                        ("Content-Disposition", f'attachment; filename="{name}"'),
                        ("Cache-Control", "no-store"),
                        *_SECURITY_HEADERS,
                    ],
                )
            except BaseException:
                got.close()
                raise
            return _ClosingBody(got.chunks, got.close)
        rows = [
            (f.name.replace("_", " "), _text(self._masked_field(f.name, getattr(entry, f.name))))
            for f in fields(entry)
            if getattr(entry, f.name) not in (None, "", [], {})
        ]
        return self._page(start, "document.html", **page, entry=entry, rows=rows)

    def _masked_field(self, name: str, value: Any) -> Any:
        """A DocumentEntry attribute for display: patient ids (patientId, sourcePatientId and
        the PID-3 of sourcePatientInfo) masked when ``log.patient_ids = false``."""
        if not self.mask_ids:
            return value
        if name in ("patient_id", "source_patient_id"):
            return self.show_id(value)
        if name == "source_patient_info":
            return [
                "PID-3|" + "~".join(self.show_id(i) for i in v[6:].split("~"))
                if v.startswith("PID-3|")
                else v
                for v in value
            ]
        return value

    def _image(
        self, environ: dict[str, Any], start: StartResponse, uids: list[str], kind: str
    ) -> Iterable[bytes]:
        """A rendered image or thumbnail from the DICOMweb service (PS3.18 §10.4.1.1.3)."""
        app = self.backends.rendered
        if app is None:
            raise Reply("404 Not Found", "no DICOMweb service in this gateway")
        study, series, instance = uids
        params = parse_qs(environ.get("QUERY_STRING", ""))
        query = {k: v[-1] for k, v in params.items() if k in ("window", "viewport")}
        inner = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": f"/studies/{study}/series/{series}/instances/{instance}/{kind}",
            "QUERY_STRING": urlencode(query),
            "HTTP_ACCEPT": "image/jpeg",
            "SCRIPT_NAME": "/dicomweb",
            "SERVER_NAME": environ.get("SERVER_NAME", "localhost"),
            "SERVER_PORT": environ.get("SERVER_PORT", "80"),
            "wsgi.url_scheme": environ.get("wsgi.url_scheme", "http"),
            "REMOTE_ADDR": environ.get("REMOTE_ADDR"),
        }
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        body_iter = app(inner, capture)
        try:
            body = b"".join(body_iter)
        finally:
            close = getattr(body_iter, "close", None)
            if close is not None:
                close()
        status = captured.get("status", "500 Internal Server Error")
        media = dict(captured.get("headers", [])).get("Content-Type", "application/octet-stream")
        start(
            status,
            [
                ("Content-Type", media),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "private, max-age=3600"),
                *_SECURITY_HEADERS,
            ],
        )
        return [body]

    # -- helpers ---------------------------------------------------------------------------------
    def _page(
        self,
        start: StartResponse,
        template: str,
        *,
        status: int = 200,
        headers: Sequence[tuple[str, str]] = (),
        **values: Any,
    ) -> Iterable[bytes]:
        body = self.templates.get_template(template).render(**values).encode("utf-8")
        start(
            f"{status} {_REASONS.get(status, 'OK')}",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                *_SECURITY_HEADERS,
                *headers,
            ],
        )
        return [body]

    def _reply(self, start: StartResponse, reply: Reply) -> Iterable[bytes]:
        body = b""
        if reply.body:
            body = (
                self.templates.get_template("message.html")
                .render(message=reply.body, status=reply.status, operator=None)
                .encode("utf-8")
            )
        start(
            reply.status,
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                *_SECURITY_HEADERS,
                *reply.headers,
            ],
        )
        return [body]

    def _static(self, name: str, start: StartResponse) -> Iterable[bytes]:
        if not _STATIC.match(name):
            raise Reply("404 Not Found", "no such file")
        try:
            data = resources.files("gateway.ui").joinpath("static", name).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise Reply("404 Not Found", "no such file") from None
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        start(
            "200 OK",
            [
                ("Content-Type", media + ("; charset=utf-8" if media.startswith("text") else "")),
                ("Content-Length", str(len(data))),
                ("Cache-Control", "public, max-age=3600"),
                ("X-Content-Type-Options", "nosniff"),
            ],
        )
        return [data]

    @staticmethod
    def _url(environ: dict[str, Any], tail: str = "/") -> str:
        return environ.get("SCRIPT_NAME", "").rstrip("/") + tail


_REASONS = {200: "OK", 401: "Unauthorized", 429: "Too Many Requests"}


class _ClosingBody:
    """A streamed response body whose ``close`` (called by the server, PEP 3333) releases what
    produced it."""

    def __init__(self, chunks: Iterable[bytes], close: Callable[[], None]) -> None:
        self._chunks, self._close = chunks, close

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    def close(self) -> None:
        try:
            close = getattr(self._chunks, "close", None)  # a generator holding an open file
            if close is not None:
                close()
        finally:
            self._close()


def _is_image(path: str) -> bool:
    return path.endswith("/thumbnail") or path.endswith("/rendered") or "/download" in path


def _uid(text: str) -> str:
    if not _UID.match(text) or len(text) > 64:
        raise Reply("400 Bad Request", "not a valid UID")
    return text


def _safe_next(target: str) -> str:
    """A redirect target inside ``/ui`` only (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _form(environ: dict[str, Any]) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body of at most :data:`MAX_FORM_BYTES`."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_FORM_BYTES:
        raise Reply("413 Content Too Large", "form too large")
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)
    if hasattr(value, "code") and hasattr(value, "scheme"):
        name = getattr(value, "display_name", None) or ""
        return f"{value.code} ({value.scheme}){' ' + name if name else ''}"
    return str(value)


def _describe(entry: DocumentEntry) -> dict[str, str]:
    """The columns of an entry on the patient page."""
    modalities = [
        c.code for c in entry.event_code_list if getattr(c, "scheme", "") == "1.2.840.10008.2.16.4"
    ]
    return {
        "title": entry.title or "",
        "modality": ", ".join(modalities),
        "status": STATUS_WORDS.get(
            entry.availability_status or "", entry.availability_status or ""
        ),
        "community": entry.home_community_id or "this community",
        "date": _dtm(entry.service_start_time or entry.creation_time),
    }
