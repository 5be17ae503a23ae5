"""An ISO 9660 image of a PDI medium, ready to burn on a CD-R or DVD (``media export --iso``).

Written by GNU xorriso in its mkisofs emulation (Debian package ``xorriso``): maintained, fast,
and streaming files from disk, where a pure-Python writer would be another runtime dependency for
the same result. The image is what PS3.12 Annex F asks of a DICOM CD-R:

- ISO 9660 Level 1 (``-iso-level 1``): 8.3 names; a File ID component ``IM000001`` is recorded as
  ``IM000001.;1``, a DICOM file name without extension, version 1 (F.1.2.1); no Rock Ridge or Joliet
  names, which F.1.2.1 note 3 warns may be mistaken for the file names;
- the File-set ID of the DICOMDIR as the Volume Identifier (F.1.1).

The image is written next to the target under a temporary name and renamed into place when
complete: an interrupted run leaves no half image behind.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

_VOLUME = re.compile(r"^[0-9A-Z_ ]{0,32}$")
TOOL = "xorriso"


class IsoError(RuntimeError):
    """The image cannot be written; the message says why."""


def iso_tool() -> str:
    """The path of xorriso. Raises: IsoError when it is not installed."""
    found = shutil.which(TOOL)
    if found is None:
        raise IsoError(
            "--iso needs GNU xorriso, which is not installed "
            "(Debian/Ubuntu: apt-get install xorriso)"
        )
    return found


def write_iso(folder: Path, target: Path, volume_id: str, *, timeout: float = 3600.0) -> int:
    """Write ``folder`` as an ISO 9660 Level 1 image to ``target``; return its size in bytes.

    Standard: DICOM PS3.12 F.1.1, F.1.2.1. Raises: IsoError.
    """
    if not _VOLUME.match(volume_id):
        raise IsoError(f"volume identifier {volume_id!r}: at most 32 characters 0-9, A-Z, _")
    tool = iso_tool()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
    command = [
        tool, "-as", "mkisofs", "-quiet", "-iso-level", "1", "-V", volume_id,
        "-m", ".*", "-o", str(temporary), str(folder),
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise IsoError(f"xorriso failed: {lines[-1] if lines else result.returncode}")
        os.replace(temporary, target)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise IsoError(f"cannot write {target}: {exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)
    return target.stat().st_size
