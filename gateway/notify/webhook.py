"""Webhooks: a CloudEvents 1.0 JSON POST per matching publication, signed with HMAC-SHA256.

The event is sent in CloudEvents' *structured content mode* (CloudEvents 1.0 HTTP protocol
binding §3.2, JSON event format): ``Content-Type: application/cloudevents+json``, the body one
JSON object with ``specversion`` "1.0", ``id`` (unique per event, the same on every retry: a
receiver drops repeats by it), ``source``, ``type`` :data:`EVENT_TYPE`, ``subject`` (the
DocumentEntry uniqueId), ``time``, ``datacontenttype`` "application/json" and ``data``: the
patient, study UIDs, DocumentEntry uniqueId and entryUUID, repositoryUniqueId, formatCode and
where to fetch the study (RAD-69 endpoint, WADO-RS study URLs).

Signature: header :data:`SIGNATURE_HEADER` = ``sha256=`` + the lower-case hex HMAC-SHA256 of
the exact body bytes under the webhook's ``secret`` (UTF-8). A receiver verifies with
``hmac.compare_digest(header, "sha256=" + hmac.new(secret, body, sha256).hexdigest())``
(:func:`verify`). Without a secret no header is sent.

A 2xx answer is a delivery; anything else (or no answer) is retried with back-off by the
outbox; the event is the same on every attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from gateway.notify.outbox import Claimed

EVENT_TYPE = "org.ihe.xds.documententry.published"
SIGNATURE_HEADER = "X-XDSI-Signature"
CONTENT_TYPE = "application/cloudevents+json"
TIMEOUT = 30.0


def cloud_event(*, event_id: str, source: str, subject: str, data: Mapping[str, Any]) -> bytes:
    """The structured-mode body of one event (CloudEvents 1.0 §3 context attributes)."""
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": EVENT_TYPE,
        "subject": subject,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "datacontenttype": "application/json",
        "data": dict(data),
    }
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``, the value of :data:`SIGNATURE_HEADER`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """A receiver's check: ``header`` is the signature of ``body`` under ``secret``."""
    return header is not None and hmac.compare_digest(header, signature(secret, body))


def make_sender(
    secrets: Callable[[str], str], session_factory: Callable[[], Any] | None = None
) -> Callable[[Claimed], None]:
    """The outbox sender of kind ``webhook``: POST the stored body, signed now.

    ``secrets(url)``: the configured secret of that webhook (looked up at send time, so a
    changed secret applies to what is still queued; the secret is never stored in the table).
    """

    def send(item: Claimed) -> None:
        body = item.payload["body"].encode()
        headers = {"Content-Type": CONTENT_TYPE}
        secret = secrets(item.target)
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, body)
        session = session_factory() if session_factory is not None else requests.Session()
        with session:
            answer = session.post(item.target, data=body, headers=headers, timeout=TIMEOUT)
        if not 200 <= answer.status_code < 300:
            raise RuntimeError(f"HTTP {answer.status_code}")

    return send
