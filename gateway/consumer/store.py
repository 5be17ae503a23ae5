"""Where fetched instances go: Part 10 files in a folder (optionally with a DICOMDIR).

Layout: ``<root>/<patient>/<Study Instance UID>/<Series Instance UID>/<SOP Instance UID>.dcm``,
every component reduced to ``[A-Za-z0-9._-]`` so no identifier can leave the root. A file is
written to a temporary name in ``<root>/.xdsi-partial`` and renamed into place (``os.replace``)
only after it has been read back as DICOM with the expected SOP Instance UID, so a file at its
final path is always complete: a re-run skips it (:meth:`FolderDestination.existing`).

With a DICOMDIR (PS3.10 §8, Basic Directory IOD PS3.3 §F), the File-set's own conformant layout is
used instead (File IDs of at most eight characters, PS3.10 §8.2): instances are staged in the
layout above below ``<root>/.xdsi-partial/staged`` and pydicom's :class:`~pydicom.fileset.FileSet`
moves them into the File-set and rewrites ``<root>/DICOMDIR`` when the fetch ends.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.fileset import FileSet

from gateway.consumer.manifest import InstanceRef
from gateway.soap.message import Attachment

PARTIAL = ".xdsi-partial"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_UNDEFINED_LENGTH = 0xFFFFFFFF


class PermanentProblem(str):
    """A reason an instance is not kept that asking again cannot change (e.g. a de-identifying
    destination refusing burned-in annotation): the fetch reports it without retrying."""


class Destination(Protocol):
    """Something fetched instances are handed to (a folder, a PACS)."""

    spool_dir: Path

    def existing(self, patient_id: str, refs: Sequence[InstanceRef]) -> set[str]:
        """SOP Instance UIDs among ``refs`` that are already there (skipped by a re-run)."""
        ...

    def store(
        self, patient_id: str, items: Sequence[tuple[InstanceRef, Attachment]]
    ) -> dict[str, str]:
        """Keep every item; return a reason per SOP Instance UID that could not be kept."""
        ...

    def transfer_syntaxes(
        self, sop_classes: Sequence[str], requested: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        """Per SOP Class, the syntaxes of ``requested`` it takes, in that order (empty: none).
        Raises: ConsumerError (the destination cannot be asked)."""
        ...

    def finish(self) -> list[str]:
        """End of the fetch: complete what is pending; return lines for the summary."""
        ...

    def describe(self) -> str:
        """Where instances go, for messages."""
        ...


def safe_component(text: str) -> str:
    """A path component made of ``[A-Za-z0-9._-]`` only, never ``.``/``..``, at most 128."""
    cleaned = _UNSAFE.sub("_", text.strip()).strip(".")[:128]
    return cleaned or "_"


def patient_folder(patient_id: str) -> str:
    """The folder name of a patient: ``ID_OID`` from a CX ``ID^^^&OID&ISO`` (the id alone when
    the assigning authority is absent)."""
    parts = patient_id.split("^")
    identifier = parts[0]
    authority = parts[3].split("&") if len(parts) > 3 else []
    oid = authority[1] if len(authority) > 1 else (authority[0] if authority else "")
    return safe_component(f"{identifier}_{oid}" if oid else identifier)


def instance_path(root: Path, patient_id: str, ref: InstanceRef) -> Path:
    """Where an instance lives: root / patient / study / series / instance.dcm."""
    return (
        root
        / patient_folder(patient_id)
        / safe_component(ref.study_instance_uid)
        / safe_component(ref.series_instance_uid)
        / f"{safe_component(ref.sop_instance_uid)}.dcm"
    )


def check_instance(source: str | os.PathLike[str] | BinaryIO | bytes, sop_uid: str) -> str | None:
    """Read a Part 10 file completely; return why it is unusable, or None when it is a DICOM
    file of SOP Instance ``sop_uid`` whose every element is complete (PS3.10 §7, PS3.5 §7.1)."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = dcmread(handle)
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as exc:
            return f"not a DICOM Part 10 file ({exc})"
    for warning in caught:
        if "end of file" in str(warning.message).lower():
            return f"truncated ({warning.message})"
    found = str(ds.get("SOPInstanceUID", "") or "")
    if found != sop_uid:
        return f"holds SOP Instance {found or '?'}, not {sop_uid}"
    for raw in ds.elements():  # raw elements stay raw: their declared length is kept
        if (
            isinstance(raw, RawDataElement)
            and raw.length != _UNDEFINED_LENGTH
            and raw.value is not None
            and len(raw.value) != raw.length
        ):
            return f"truncated in element {raw.tag}"
    return None


def _file_ok(path: Path, sop_uid: str) -> bool:
    try:
        with path.open("rb") as handle:
            return check_instance(handle, sop_uid) is None
    except OSError:
        return False


class FolderDestination:
    """Part 10 files under ``root`` in the patient/study/series/instance layout."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.spool_dir = self.root / PARTIAL
        # folders this fetch creates, deepest first: removed again if nothing lands in them
        self._created = [p for p in (self.root, *self.root.parents) if not p.exists()]
        self.spool_dir.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return str(self.root)

    def transfer_syntaxes(
        self, sop_classes: Sequence[str], requested: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        """A folder keeps any transfer syntax."""
        return dict.fromkeys(sop_classes, tuple(requested))

    def path_of(self, patient_id: str, ref: InstanceRef) -> Path:
        """The final path of an instance."""
        return instance_path(self.root, patient_id, ref)

    def existing(self, patient_id: str, refs: Sequence[InstanceRef]) -> set[str]:
        """Instances whose file is present and reads back as the right, complete instance."""
        return {
            ref.sop_instance_uid
            for ref in refs
            if _file_ok(self.path_of(patient_id, ref), ref.sop_instance_uid)
        }

    def store(
        self, patient_id: str, items: Sequence[tuple[InstanceRef, Attachment]]
    ) -> dict[str, str]:
        """Check and place each instance atomically; return the reasons of those refused."""
        problems: dict[str, str] = {}
        for ref, attachment in items:
            reason = self._place(patient_id, ref, attachment)
            if reason is not None:
                problems[ref.sop_instance_uid] = reason
        return problems

    def _place(self, patient_id: str, ref: InstanceRef, attachment: Attachment) -> str | None:
        temporary = self.spool_dir / f"{uuid.uuid4().hex}.part"
        try:
            attachment.save_to(temporary)
            with temporary.open("rb") as handle:
                reason = check_instance(handle, ref.sop_instance_uid)
            if reason is not None:
                return reason
            target = self.path_of(patient_id, ref)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, target)
            return None
        except OSError as exc:
            return f"cannot write: {exc}"
        finally:
            temporary.unlink(missing_ok=True)
            attachment.discard()

    def finish(self) -> list[str]:
        shutil.rmtree(self.spool_dir, ignore_errors=True)
        self.remove_created_if_empty()
        return []

    def remove_created_if_empty(self) -> None:
        """Remove the folders this destination created that are still empty (a fetch that
        found nothing leaves no ``--out`` folder behind)."""
        for folder in self._created:
            if not folder.exists():  # removed with the spool folder already
                continue
            try:
                folder.rmdir()
            except OSError:  # not empty: something was fetched into it
                return


def _close(fileset: FileSet) -> None:
    # pydicom stages additions in a TemporaryDirectory it only removes when garbage-collected
    # (with a ResourceWarning); remove it as soon as the File-set is done with.
    stage = getattr(fileset, "_stage", {}).get("t")
    if stage is not None:
        stage.cleanup()


class DicomdirDestination:
    """A DICOM File-set with a DICOMDIR at ``root`` (PS3.10 §8), filled at :meth:`finish`."""

    def __init__(self, root: str | os.PathLike[str], *, fileset_id: str | None = None) -> None:
        self.root = Path(root)
        self.fileset_id = fileset_id  # File-set ID (0004,1130) of a new DICOMDIR (PS3.10 §8.4)
        self._staged = FolderDestination(self.root / PARTIAL / "staged")
        self.spool_dir = self._staged.spool_dir
        self._in_fileset: set[str] = set()
        if (self.root / "DICOMDIR").exists():
            fileset = FileSet(self.root / "DICOMDIR")
            try:
                self._in_fileset = {str(instance.SOPInstanceUID) for instance in fileset}
            finally:
                _close(fileset)

    def describe(self) -> str:
        return f"{self.root} (DICOMDIR)"

    def existing(self, patient_id: str, refs: Sequence[InstanceRef]) -> set[str]:
        """Instances in the File-set already, or staged by an earlier, interrupted run."""
        listed = {r.sop_instance_uid for r in refs if r.sop_instance_uid in self._in_fileset}
        others = [r for r in refs if r.sop_instance_uid not in listed]
        return listed | self._staged.existing(patient_id, others)

    def transfer_syntaxes(
        self, sop_classes: Sequence[str], requested: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        """A File-set keeps any transfer syntax (PS3.10 §8: each file names its own)."""
        return self._staged.transfer_syntaxes(sop_classes, requested)

    def store(
        self, patient_id: str, items: Sequence[tuple[InstanceRef, Attachment]]
    ) -> dict[str, str]:
        """Stage instances (checked, atomically) until :meth:`finish`."""
        return self._staged.store(patient_id, items)

    def finish(self) -> list[str]:
        """Add every staged instance to the File-set and write it (DICOMDIR included)."""
        partial = self.root / PARTIAL
        staged = sorted((partial / "staged").rglob("*.dcm"))
        if not staged:
            shutil.rmtree(partial, ignore_errors=True)
            self._staged.remove_created_if_empty()
            return []
        dicomdir = self.root / "DICOMDIR"
        fileset = FileSet(dicomdir) if dicomdir.exists() else FileSet()
        if not fileset.path and self.fileset_id:
            fileset.ID = self.fileset_id
        try:
            for path in staged:
                fileset.add(path)
            fileset.write(None if fileset.path else self.root)
            count = len(fileset)
        except (ValueError, OSError, KeyError, AttributeError) as exc:
            return [f"DICOMDIR not written ({exc}); the instances are kept in {partial}"]
        finally:
            _close(fileset)
        shutil.rmtree(partial, ignore_errors=True)
        return [f"DICOMDIR written: {dicomdir} ({count} instances)"]
