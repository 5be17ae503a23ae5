"""Fetched instances into a local PACS: C-STORE (and C-FIND to skip what it already holds).

Each batch of instances is sent over one association whose presentation contexts are the
(SOP Class, Transfer Syntax) pairs of the batch's files, so every data set goes unchanged in the
syntax the imaging document source returned (no coercion, PS3.4 §B.4.1). Success and the warning
statuses of PS3.4 Table B.2-1 (0xB000, 0xB006, 0xB007) count as stored.

Before the instances of a study are asked for, one association proposes every requested transfer
syntax for each SOP Class of the study, each in a presentation context of its own (PS3.8
§7.1.1.13: one syntax is agreed per context), and is released at once: the contexts accepted say
which syntaxes the PACS takes (:meth:`PacsDestination.transfer_syntaxes`), and RAD-69 asks for
those only. A PACS that takes only uncompressed data thus gets JPEG studies decompressed by the
imaging source; an association that fails says why in plain words (PS3.8 Table 9-21 for a
rejection).

Before a study is fetched, a Study Root C-FIND at IMAGE level (PS3.4 §C.6.2, Table C.6-5..C.6-7)
asks for the SOP Instance UIDs the PACS already has for it; a PACS that does not answer it simply
gets everything again (a C-STORE of an instance it holds is harmless).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import ssl
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info
from pynetdicom import AE

from gateway import dicomscu
from gateway.consumer.errors import PeerError
from gateway.consumer.manifest import InstanceRef
from gateway.consumer.store import check_instance
from gateway.soap.message import Attachment

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Q/R Information Model - FIND
STORED_STATUSES = frozenset({0x0000, 0xB000, 0xB006, 0xB007})  # PS3.4 Table B.2-1
MAX_CONTEXTS = 128  # PS3.8 §9.3.2.2: presentation context ids are odd numbers 1..255
_TARGET = re.compile(r"^([^@]{1,16})@(.+):(\d{1,5})$")


@dataclass(frozen=True, slots=True)
class StoreTarget:
    """A DICOM peer: Called AE Title, host and port."""

    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_store_target(text: str) -> StoreTarget:
    """Read ``AET@host:port`` (``[::1]`` allowed for IPv6). Raises: ValueError."""
    found = _TARGET.match(text.strip())
    if not found or not 0 < int(found[3]) < 65536:
        raise ValueError(f"{text!r} is not AET@host:port")
    return StoreTarget(found[1].strip(), found[2].strip("[]"), int(found[3]))


class PacsDestination:
    """C-STORE every fetched instance to ``target``."""

    def __init__(
        self,
        target: StoreTarget,
        *,
        calling_ae_title: str = "XDSI_CONSUMER",
        timeout: float = 60.0,
        spool_dir: str | Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context``: DICOM over TLS to the PACS (PS3.15 B.1/B.9), the node's client
        context; the PACS's certificate must name ``target.host``."""
        self.target = target
        self.ssl_context = ssl_context
        self.calling_ae_title = calling_ae_title
        self.timeout = timeout
        self.spool_dir = Path(spool_dir or tempfile.mkdtemp(prefix="xdsi-consumer-"))
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._accepted: dict[str, tuple[str, ...]] = {}  # SOP Class -> syntaxes it takes

    def describe(self) -> str:
        return f"PACS {self.target}"

    def _ae(self) -> AE:
        ae = AE(ae_title=self.calling_ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        return ae

    def _associate(self, ae: AE) -> Any:
        tls = (self.ssl_context, self.target.host) if self.ssl_context is not None else None
        assoc = ae.associate(
            self.target.host, self.target.port, ae_title=self.target.ae_title, tls_args=tls
        )
        if not assoc.is_established:  # a failed TLS handshake leaves the socket open
            sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        return assoc

    def transfer_syntaxes(
        self, sop_classes: Sequence[str], requested: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        """Per SOP Class, the syntaxes of ``requested`` the PACS accepts, in ``requested`` order.

        Standard: PS3.8 §7.1.1.13-14, §9.3.2.2. Raises: PeerError (unreachable, or the
        association rejected).
        """
        wanted = [c for c in dict.fromkeys(sop_classes) if c not in self._accepted]
        pairs = [(sop_class, syntax) for sop_class in wanted for syntax in requested]
        for start in range(0, len(pairs), MAX_CONTEXTS):
            chunk = pairs[start : start + MAX_CONTEXTS]
            accepted = self._negotiate(chunk)
            for sop_class in dict.fromkeys(c for c, _ in chunk):
                taken = [s for c, s in chunk if c == sop_class and (c, s) in accepted]
                self._accepted[sop_class] = (*self._accepted.get(sop_class, ()), *taken)
        return {sop_class: self._accepted[sop_class] for sop_class in sop_classes}

    def _negotiate(self, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Propose one context per (SOP Class, syntax); return those accepted, then release."""
        ae = self._ae()
        for sop_class, syntax in pairs:
            ae.add_requested_context(sop_class, [syntax])
        assoc = self._associate(ae)
        if not assoc.is_established:
            answer = assoc.acceptor.primitive
            if answer is not None and getattr(answer, "result", None) == 0x00:
                return set()  # accepted, but not one of the contexts (all rejected)
            raise PeerError(self._not_established(assoc), transient=not assoc.is_rejected)
        try:
            return {
                (str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
                for cx in assoc.accepted_contexts
            }
        finally:
            assoc.release()

    def _not_established(self, assoc: Any) -> str:
        """Why an association was not established, in plain words."""
        answer = assoc.acceptor.primitive
        if assoc.is_rejected and answer is not None:
            return (
                f"{self.describe()} rejected the association ({answer.result_str}, "
                f"{answer.source_str}: {answer.reason_str})"
            )
        if answer is not None and getattr(answer, "result", None) == 0x00:
            return f"{self.describe()} accepted none of the presentation contexts proposed"
        return f"{self.describe()} cannot be reached (no association; is it listening?)"

    def existing(self, patient_id: str, refs: Sequence[InstanceRef]) -> set[str]:
        """The instances of ``refs`` the PACS reports by C-FIND (empty when it cannot say)."""
        wanted = {ref.sop_instance_uid for ref in refs}
        found: set[str] = set()
        for study_uid in dict.fromkeys(ref.study_instance_uid for ref in refs):
            found |= self._find_instances(study_uid)
        return found & wanted

    def _find_instances(self, study_uid: str) -> set[str]:
        ae = self._ae()
        ae.add_requested_context(STUDY_ROOT_FIND)
        assoc = self._associate(ae)
        if not assoc.is_established:
            return set()
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = ""
        query.SOPInstanceUID = ""
        found: set[str] = set()
        try:
            for status, identifier in assoc.send_c_find(query, STUDY_ROOT_FIND):
                pending = status is not None and status.get("Status") in (0xFF00, 0xFF01)
                if pending and identifier is not None:
                    found.add(str(identifier.get("SOPInstanceUID", "") or ""))
        finally:
            assoc.release()
        return found - {""}

    def store(
        self, patient_id: str, items: Sequence[tuple[InstanceRef, Attachment]]
    ) -> dict[str, str]:
        """Send a batch over one association; return the reason per instance not stored."""
        problems: dict[str, str] = {}
        files: list[tuple[InstanceRef, Path, str, str]] = []
        try:
            for ref, attachment in items:
                path = self.spool_dir / f"{uuid.uuid4().hex}.dcm"
                attachment.save_to(path)
                attachment.discard()
                reason = check_instance(path.read_bytes(), ref.sop_instance_uid)
                if reason is not None:
                    problems[ref.sop_instance_uid] = reason
                    path.unlink(missing_ok=True)
                    continue
                meta = read_file_meta_info(path)
                files.append(
                    (ref, path, str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID))
                )
            problems.update(self._send(files))
        finally:
            for _, path, _, _ in files:
                path.unlink(missing_ok=True)
        return problems

    def _send(self, files: Sequence[tuple[InstanceRef, Path, str, str]]) -> dict[str, str]:
        if not files:
            return {}
        contexts = list(dict.fromkeys((sop_class, syntax) for _, _, sop_class, syntax in files))
        if len(contexts) > MAX_CONTEXTS:
            half = len(files) // 2
            return {**self._send(files[:half]), **self._send(files[half:])}
        ae = self._ae()
        for sop_class, syntax in contexts:
            ae.add_requested_context(sop_class, [syntax])
        assoc = self._associate(ae)
        if not assoc.is_established:
            reason = self._not_established(assoc)
            return {ref.sop_instance_uid: reason for ref, _, _, _ in files}
        problems: dict[str, str] = {}
        try:
            for ref, path, _, _ in files:
                try:
                    status = dicomscu.send_c_store(assoc, str(path))
                except (ValueError, RuntimeError) as exc:  # no accepted context for the file
                    problems[ref.sop_instance_uid] = f"C-STORE not sent: {exc}"
                    continue
                code = status.get("Status") if status is not None else None
                if code not in STORED_STATUSES:
                    shown = f"0x{code:04X}" if isinstance(code, int) else "no response"
                    problems[ref.sop_instance_uid] = f"C-STORE status {shown}"
        finally:
            assoc.release()
        return problems

    def finish(self) -> list[str]:
        shutil.rmtree(self.spool_dir, ignore_errors=True)
        return []
