"""log.patient_ids = false masks patient identifiers in every log line."""

from __future__ import annotations

import logging

from gateway.logsetup import MASK, PatientIdMask


def _filtered(message: str, *args: object) -> str:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, message, args, None)
    PatientIdMask().filter(record)
    return record.getMessage()


def test_cx_identifiers_are_masked_and_the_rest_kept() -> None:
    line = _filtered(
        "XDSUnknownPatientId: %s was never fed; also 'P2^^^&1.2.3&ISO', request %s",
        "PAT-7^^^&1.3.6.1.4.1.21367.13.20.1000&ISO",
        "abc123",
    )
    assert "PAT-7" not in line and "P2^^^" not in line
    assert line.count(MASK) == 2
    assert "request abc123" in line


def test_lines_without_identifiers_are_untouched() -> None:
    assert _filtered("ITI-18 Success 200 %dms", 5) == "ITI-18 Success 200 5ms"
