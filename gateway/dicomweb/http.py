"""HTTP answers of the DICOMweb service: its error type and the small response helpers.

Every failure leaves the service as one :class:`DicomWebError` carrying the status code of
PS3.18 §8.5 (Table 8.5-1) and a one-line reason, sent as ``text/plain``; nothing else escapes
(the boundary in ``service.py`` logs anything unexpected and answers 500 without a trace).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]

REASONS = {
    200: "OK",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class DicomWebError(Exception):
    """A request answered with ``status`` and the one-line ``reason`` (PS3.18 §8.5)."""

    def __init__(self, status: int, reason: str, *, headers: Iterable[tuple[str, str]] = ()):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = list(headers)


def status_line(status: int) -> str:
    return f"{status} {REASONS.get(status, 'Unknown')}"


def plain(
    start_response: StartResponse, status: int, text: str, headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    body = (text.rstrip("\n") + "\n").encode("utf-8")
    start_response(
        status_line(status),
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *headers,
        ],
    )
    return [body]


def json_body(
    start_response: StartResponse,
    status: int,
    payload: Any,
    *,
    media: str = "application/dicom+json",
    headers: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    """A JSON answer (PS3.18 Annex F) with its Content-Length."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    start_response(
        status_line(status),
        [("Content-Type", media), ("Content-Length", str(len(body))), *headers],
    )
    return [body]


def warning(text: str, service: str = "xdsi-gateway") -> tuple[str, str]:
    """A Warning header field (PS3.18 §8.4.3; RFC 7234 §5.5: code 299, miscellaneous)."""
    return ("Warning", f'299 {service} "{text}"')
