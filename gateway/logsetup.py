"""Logging, set up once by the command line: text or JSON lines on stderr.

Every SOAP request produces one line on the ``gateway.access`` logger (transaction, outcome,
HTTP status, duration, bytes), emitted by :func:`access_log_observer` when the response has been
fully sent. Patient data never goes into these lines: identifiers of messages only.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

from gateway.soap.dispatch import TransactionCompleted

access = logging.getLogger("gateway.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any structured fields.

    ``process``: which process of ``serve --workers N`` wrote the line (``worker 2``), if any.
    """

    def __init__(self, process: str | None = None) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.process:
            payload["process"] = self.process
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


# An HL7 CX patient identifier as XDS writes it: ID^^^&OID&ISO (ITI TF-3 §4.2.3.2.14), or with a
# namespace instead of the OID; also the ID alone where an ADT message is quoted.
_CX = re.compile(r"[^\s^|'\"<>,;()]+\^\^\^[^\s|'\"<>,;()]*")
MASK = "<patient-id>"


class PatientIdMask(logging.Filter):
    """Replace patient identifiers in a record's message by a fixed mask (``log.patient_ids``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _CX.sub(MASK, message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def configure_logging(
    level: str = "INFO", fmt: str = "text", *, patient_ids: bool = True, process: str | None = None
) -> None:
    """Install one stderr handler on the root logger (idempotent).

    ``patient_ids=False`` masks patient identifiers in every line (hardening: ordinary logs then
    hold no patient data at all). ``process`` (``worker 2``) marks every line of a worker of
    ``serve --workers N``, whose lines share the supervisor's stderr.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_xdsi", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._xdsi = True  # type: ignore[attr-defined]
    if fmt == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        where = f"[{process}] " if process else ""
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s %(levelname)-7s {where}%(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"
            )
        )
    if not patient_ids:
        handler.addFilter(PatientIdMask())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Third-party chatter (urllib3 retries, cheroot's per-connection errors) stays quiet.
    for noisy in ("urllib3", "cheroot", "alembic", "pynetdicom"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def access_log_observer(event: TransactionCompleted) -> None:
    """Write the one access line of a finished SOAP request."""
    fields = {
        "path": event.path,
        "transaction": event.transaction,
        "outcome": event.outcome,
        "status": event.http_status,
        "duration_ms": round(event.duration_ms, 1),
        "bytes": event.bytes_sent,
        "request_id": event.request_id,
        "remote": event.remote_addr,
        "errors": list(event.error_codes),
    }
    access.info(
        "%s %s %s %d %.1fms %dB id=%s%s",
        event.path,
        event.transaction or "-",
        event.outcome,
        event.http_status,
        event.duration_ms,
        event.bytes_sent,
        event.request_id,
        f" errors={','.join(event.error_codes)}" if event.error_codes else "",
        extra={"fields": fields},
    )
