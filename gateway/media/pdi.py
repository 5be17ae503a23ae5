"""The non-DICOM part of a PDI medium, and the checks of its DICOM part.

IHE RAD Portable Data for Imaging (RAD TF-1 §15, RAD TF-3 §4.47 Distribute Imaging Information on
Media) puts in the root of the medium, beside the ``DICOMDIR`` of the DICOM File-set:

- ``README.TXT``: who made the medium and how to reach them, the application that made it and its
  version, and what the medium holds and how it is organised;
- ``INDEX.HTM``: a page a web browser opens, here listing the patients and studies of the
  DICOMDIR and pointing to README.TXT (this medium carries DICOM content only: no ``IHE_PDI``
  web-viewable copies of the images).

Both are plain ASCII with 8.3 names, as every non-DICOM file name on PDI media (ISO 9660 Level 1).
Nothing starts by itself: no autorun file is written.

The DICOM part is checked here (:func:`check_file_ids`): File IDs of at most eight components of
one to eight characters from ``0-9``, ``A-Z`` and ``_`` (PS3.10 §8.2 and §8.5, PS3.12 F.1.2.1),
every component also a valid ISO 9660 Level 1 name.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydicom import dcmread

from gateway import __version__
from gateway.media.inventory import Inventory, MediaInstance, read_media

_COMPONENT = re.compile(r"^[0-9A-Z_]{1,8}$")
MAX_COMPONENTS = 8
NEWLINE = "\r\n"  # the medium is read on every system; plain text with CR LF reads everywhere


class MediaLayoutError(ValueError):
    """The File-set does not have the layout PS3.10 and PDI require."""


def check_file_ids(root: Path) -> int:
    """Check every Referenced File ID of ``root``'s DICOMDIR; return how many there are.

    Raises: MediaLayoutError naming the first File ID that breaks PS3.10 §8.2.
    """
    records = dcmread(root / "DICOMDIR").get("DirectoryRecordSequence") or []
    count = 0
    for record in records:
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        components = [str(file_id)] if isinstance(file_id, str) else [str(c) for c in file_id]
        bad = [c for c in components if not _COMPONENT.match(c)]
        if bad or len(components) > MAX_COMPONENTS:
            raise MediaLayoutError(
                f"File ID {'/'.join(components)} breaks PS3.10 §8.2 (at most {MAX_COMPONENTS} "
                "components of 1 to 8 characters 0-9, A-Z, _)"
            )
        if not (root / Path(*components)).is_file():
            raise MediaLayoutError(f"File ID {'/'.join(components)} names no file")
        count += 1
    return count


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaFacts:
    """What README.TXT and INDEX.HTM say besides the content."""

    creator: str  # who made the medium and how to reach them
    created: datetime
    fileset_id: str
    deidentified: bool
    transfer_syntax: str  # the transfer syntax name of the instances


def write_pdi_files(root: Path, facts: MediaFacts) -> Inventory:
    """Write README.TXT and INDEX.HTM into ``root`` from its DICOMDIR; return the content read.

    Standard: IHE RAD TF-3 §4.47.4.1.2 (media content). Raises: MediaLayoutError, OSError.
    """
    content = read_media(root)
    if not content.through_dicomdir or not content.instances:
        raise MediaLayoutError(f"{root} has no DICOMDIR listing instances")
    if content.refused:
        path, reason = content.refused[0]
        raise MediaLayoutError(f"{path}: {reason}")
    _write(root / "README.TXT", NEWLINE.join(readme_lines(content, facts)) + NEWLINE)
    _write(root / "INDEX.HTM", index_page(content, facts))
    return content


def _write(path: Path, text: str) -> None:
    """Write ASCII text atomically (characters beyond ASCII become XML/escape sequences)."""
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_bytes(text.encode("ascii", "xmlcharrefreplace"))
    os.replace(temporary, path)


def readme_lines(content: Inventory, facts: MediaFacts) -> list[str]:
    """The lines of README.TXT."""
    studies = content.studies()
    lines = [
        "IHE Portable Data for Imaging (PDI) medium",
        "",
        f"Created by: {facts.creator}",
        f"Created on: {facts.created.strftime('%Y-%m-%d %H:%M %Z').strip()}",
        f"Application: xdsi-gateway {__version__} (IHE XDS-I.b gateway), Portable Media Creator",
        "",
        "Content:",
        f"  {len(content.patients())} patient(s), {len(studies)} study(ies), "
        f"{len(content.instances)} DICOM instance(s) in {facts.transfer_syntax}.",
        "  DICOMDIR (in this folder) indexes every DICOM file of the medium: open it with a",
        "  DICOM viewer or import it into a PACS. The DICOM files are in the PT* folders; their",
        "  names follow DICOM PS3.10 (no extensions). INDEX.HTM lists the studies for a web",
        "  browser. The medium holds DICOM content only (no web copies of the images).",
        f"  DICOM File-set ID: {facts.fileset_id}",
    ]
    if facts.deidentified:
        lines += [
            "",
            "De-identified: every instance was de-identified with the DICOM PS3.15 Annex E",
            "Basic Application Confidentiality Profile, Retain Longitudinal Temporal Information",
            "with Modified Dates and Clean Descriptors options. Pixel data are unchanged.",
        ]
    lines += ["", "No program on this medium starts by itself.", "", "Studies:"]
    lines += [f"  {line}" for line in _study_lines(studies.values())]
    return lines


def _study_lines(studies: Iterable[list[MediaInstance]]) -> list[str]:
    lines = []
    for members in studies:
        first = members[0]
        modalities = "/".join(sorted({m.modality for m in members if m.modality})) or "?"
        date = first.study_date or "(no date)"
        lines.append(
            f"{date} {modalities} {first.study_description or '(no description)'}: "
            f"{len(members)} instance(s), patient {first.patient.name or first.patient.patient_id}"
        )
    return lines


def index_page(content: Inventory, facts: MediaFacts) -> str:
    """INDEX.HTM: an XHTML 1.0 page listing the studies (RAD TF-3 §4.47.4.1.2)."""
    rows = []
    for members in content.studies().values():
        first = members[0]
        modalities = "/".join(sorted({m.modality for m in members if m.modality}))
        cells = (
            first.patient.name or first.patient.patient_id,
            first.patient.patient_id,
            _date(first.study_date),
            modalities,
            first.study_description,
            str(len(members)),
        )
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    note = (
        "<p>The images were de-identified (DICOM PS3.15 Annex E).</p>" if facts.deidentified else ""
    )
    return "\n".join(
        [
            '<?xml version="1.0" encoding="US-ASCII"?>',
            '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
            '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">',
            '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">',
            "<head><title>Imaging studies on this medium</title></head>",
            "<body>",
            "<h1>Imaging studies on this medium</h1>",
            f"<p>Created by {html.escape(facts.creator)} on "
            f"{facts.created.strftime('%Y-%m-%d')} with xdsi-gateway {__version__}. "
            'Read <a href="README.TXT">README.TXT</a> first.</p>',
            note,
            "<p>Open the DICOMDIR file of this medium with a DICOM viewer to see the images.</p>",
            "<table>",
            "<tr><th>Patient</th><th>Patient ID</th><th>Study date</th><th>Modalities</th>"
            "<th>Description</th><th>Instances</th></tr>",
            *rows,
            "</table>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) >= 8 else value
