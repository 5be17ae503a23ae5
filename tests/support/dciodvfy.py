"""David Clunie's DICOM validator ``dciodvfy`` (Debian package ``dicom3tools``) for the tests.

:func:`validate` runs it on a Part 10 file and returns its errors and warnings, each a line of its
report. Deflated files are inflated first (``dicom3tools`` cannot read Deflated Explicit VR
Little Endian): the content checked is the same, only the encoding differs. Tests that need the
validator skip with a reason when it is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian


@dataclass(slots=True)
class Report:
    """What dciodvfy said about one file."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    text: str = ""


def dciodvfy() -> str:
    """The path of ``dciodvfy``; skips the calling test when it is not installed."""
    found = shutil.which("dciodvfy")
    if found is None:
        pytest.skip("dciodvfy is not installed (apt-get install dicom3tools)")
    return found


def _readable(data: bytes) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    if ds.file_meta.TransferSyntaxUID != DeflatedExplicitVRLittleEndian:
        return data
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def validate(part10: bytes | Path) -> Report:
    """Run dciodvfy on a Part 10 file (bytes or path); return its errors and warnings."""
    data = part10.read_bytes() if isinstance(part10, Path) else part10
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "object.dcm"
        path.write_bytes(_readable(data))
        result = subprocess.run(
            [dciodvfy(), str(path)], capture_output=True, text=True, timeout=60, check=False
        )
    text = result.stdout + result.stderr
    report = Report(text=text)
    for line in text.splitlines():
        if "Error - " in line or line.startswith("Error"):
            report.errors.append(line.strip())
        elif "Warning - " in line or line.startswith("Warning"):
            report.warnings.append(line.strip())
    return report
