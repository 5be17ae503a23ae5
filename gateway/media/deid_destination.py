"""A fetch destination that de-identifies every instance before the real destination gets it
(``fetch-study --deidentify``, ``media export --deidentify``).

It stands between the consumer's fetch (``gateway.consumer.fetch``) and a folder or File-set
destination: the fetch asks for and receives the original instances (ITI-18, ITI-43, RAD-69), this
destination de-identifies each one (``gateway.media.deidentify``) and hands the result on under its
new UIDs and the patient's pseudonym, so the destination's layout, its DICOMDIR and its
"already there" check (a re-run skips what is present) only ever see de-identified values. An
instance refused for its burned-in annotation is reported as a permanent problem: asking again
cannot change it.
"""

from __future__ import annotations

import dataclasses
import io
import uuid
from collections.abc import Sequence
from pathlib import Path

from gateway.consumer.manifest import InstanceRef
from gateway.consumer.store import Destination, PermanentProblem
from gateway.media.deidentify import BurnedInAnnotation, Deidentifier
from gateway.soap.message import Attachment


class DeidentifyingDestination:
    """De-identifies instances, then stores them in ``inner``."""

    def __init__(self, inner: Destination, deidentifier: Deidentifier) -> None:
        self.inner = inner
        self.deidentifier = deidentifier
        self.spool_dir: Path = inner.spool_dir

    def describe(self) -> str:
        return f"{self.inner.describe()}, de-identified"

    def transfer_syntaxes(
        self, sop_classes: Sequence[str], requested: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        """What the real destination takes (de-identification keeps the transfer syntax)."""
        return self.inner.transfer_syntaxes(sop_classes, requested)

    def _ref(self, ref: InstanceRef) -> InstanceRef:
        uid = self.deidentifier.uid
        return dataclasses.replace(
            ref,
            study_instance_uid=uid(ref.study_instance_uid),
            series_instance_uid=uid(ref.series_instance_uid),
            sop_instance_uid=uid(ref.sop_instance_uid),
        )

    def _patient(self, patient_id: str) -> str:
        return self.deidentifier.pseudonym(patient_id)

    def existing(self, patient_id: str, refs: Sequence[InstanceRef]) -> set[str]:
        """Originals whose de-identified instance the destination has already."""
        mapped = {self._ref(ref).sop_instance_uid: ref.sop_instance_uid for ref in refs}
        found = self.inner.existing(self._patient(patient_id), [self._ref(ref) for ref in refs])
        return {mapped[uid] for uid in found if uid in mapped}

    def store(
        self, patient_id: str, items: Sequence[tuple[InstanceRef, Attachment]]
    ) -> dict[str, str]:
        """De-identify each instance and store it; reasons are keyed by the original UIDs."""
        problems: dict[str, str] = {}
        forward: list[tuple[InstanceRef, Attachment]] = []
        original: dict[str, str] = {}
        for ref, attachment in items:
            try:
                new_ref, new_attachment = self._deidentified(ref, attachment)
            except BurnedInAnnotation as exc:
                problems[ref.sop_instance_uid] = PermanentProblem(str(exc))
                continue
            except (ValueError, OSError) as exc:
                problems[ref.sop_instance_uid] = f"cannot de-identify: {exc}"
                continue
            finally:
                attachment.discard()
            forward.append((new_ref, new_attachment))
            original[new_ref.sop_instance_uid] = ref.sop_instance_uid
        for uid, reason in self.inner.store(self._patient(patient_id), forward).items():
            problems[original.get(uid, uid)] = reason
        return problems

    def _deidentified(
        self, ref: InstanceRef, attachment: Attachment
    ) -> tuple[InstanceRef, Attachment]:
        data = attachment.data or b""
        source = attachment.path if attachment.path is not None else io.BytesIO(data)
        target = self.spool_dir / f"{uuid.uuid4().hex}.deid"
        try:
            study, series, sop = self.deidentifier.deidentify_file(source, target)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        new_ref = dataclasses.replace(
            ref, study_instance_uid=study, series_instance_uid=series, sop_instance_uid=sop
        )
        return new_ref, Attachment.from_file(target, owned=True)

    def finish(self) -> list[str]:
        return self.inner.finish()
