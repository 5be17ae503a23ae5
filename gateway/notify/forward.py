"""DICOM forwarding: ``[[imaging_source.forward]]`` rules and the C-STORE sender.

Every instance the imaging source stores, by C-STORE (``gateway.imaging.storescp``) or STOW-RS
(``gateway.dicomweb.stow``), reaches :meth:`ForwardRule.matches` through the one "instance
stored" hook; a match becomes an outbox row of kind ``forward`` whose sequence key is the
destination and the study, so the instances of a study go out one at a time in the order they
were received. The sender opens an association to the destination (Storage SCU, PS3.4 Annex B),
proposing the stored file's SOP Class and transfer syntax (the data set goes unchanged), and
sends one C-STORE through :func:`gateway.dicomscu.send_c_store` (which guards against
pynetdicom's reactor race). Success and the warning statuses (PS3.4 Table B.2-1: 0x0000, 0xB000,
0xB006, 0xB007) count as delivered; a refusal status (other than
0xA7xx, out of resources, retried) or a presentation context the peer does not
accept is a permanent failure (the row is kept as failed, the study's next instance follows);
no association, or an abort, is retried with back-off. DICOM TLS (PS3.15 B.1) uses the node's
client context when the rule says ``tls = true``.
"""

from __future__ import annotations

import fnmatch
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.filereader import read_file_meta_info
from pynetdicom import AE

from gateway import dicomscu
from gateway.notify.outbox import Claimed, Message, PermanentFailure

DELIVERED = frozenset({0x0000, 0xB000, 0xB006, 0xB007})  # PS3.4 Table B.2-1
_TARGET = re.compile(r"^([^@]{1,16})@(.+):(\d{1,5})$")
TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """What the "instance stored" hook tells: one instance just stored by the imaging source."""

    sop_instance_uid: str
    study_instance_uid: str
    path: Path  # the stored Part 10 file
    modality: str | None
    calling_ae_title: str | None  # C-STORE's calling AE; None for STOW-RS
    via: str  # "C-STORE" or "STOW-RS"


@dataclass(frozen=True, slots=True)
class ForwardRule:
    """One rule: a destination and filters (empty = any)."""

    destination: str
    calling_ae_title: str = ""
    modality: str = ""
    study_description: str = ""
    tls: bool = False

    def matches(self, instance: StoredInstance, description: Callable[[], str]) -> bool:
        """True when every given filter matches (``description`` read only when needed)."""
        if self.calling_ae_title and (instance.calling_ae_title or "").strip() != (
            self.calling_ae_title.strip()
        ):
            return False
        if self.modality and (instance.modality or "").upper() != self.modality.upper():
            return False
        if self.study_description:
            return fnmatch.fnmatchcase(description().upper(), self.study_description.upper())
        return True

    def message(self, instance: StoredInstance) -> Message:
        """The outbox row: sequence per destination and study (their order kept)."""
        return Message(
            kind="forward",
            target=self.destination,
            payload={"sop_instance_uid": instance.sop_instance_uid, "tls": self.tls},
            sequence_key=f"forward:{self.destination}:{instance.study_instance_uid}"[:255],
        )


def study_description(path: Path) -> str:
    """Study Description (0008,1030) of a stored file, "" when absent."""
    ds = dcmread(path, stop_before_pixels=True, specific_tags=["StudyDescription"])
    return str(ds.get("StudyDescription", "") or "")


def parse_destination(text: str) -> tuple[str, str, int]:
    """``AET@host:port`` -> (AE title, host, port). Raises ValueError."""
    found = _TARGET.match(text.strip())
    if found is None:
        raise ValueError(f"expected AET@host:port, got {text!r}")
    return found.group(1), found.group(2), int(found.group(3))


def _reachable(host: str, port: int) -> None:
    """Fail early, and cleanly, when nothing listens (pynetdicom leaves the refused socket to
    the garbage collector). Raises OSError (retried)."""
    with socket.create_connection((host, port), timeout=TIMEOUT):
        pass


def make_sender(
    locate: Callable[[str], Path | None],
    *,
    ae_title: str,
    ssl_context: Callable[[], ssl.SSLContext | None] = lambda: None,
) -> Callable[[Claimed], None]:
    """The outbox sender of kind ``forward``: one C-STORE of the instance to its destination.

    ``locate(sop_instance_uid)``: the stored file, None when the instance is not indexed (retried
    a few times, since a journaled row may be committed late; then the row fails for good).
    """

    def send(item: Claimed) -> None:
        uid = item.payload["sop_instance_uid"]
        path = locate(uid)
        if path is None or not path.exists():
            if item.attempts < 5:  # its index row may still be on its way (imaging journal)
                raise RuntimeError(f"instance {uid} is not (yet) in the index")
            raise PermanentFailure(f"instance {uid} is no longer stored")
        called, host, port = parse_destination(item.target)
        meta = read_file_meta_info(path)
        sop_class = str(meta.MediaStorageSOPClassUID)
        syntax = str(meta.TransferSyntaxUID)
        ae = AE(ae_title=ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
        ae.add_requested_context(sop_class, syntax)
        tls: Any = None
        if item.payload.get("tls"):
            context = ssl_context()
            if context is None:
                raise PermanentFailure("tls = true but the node has no [tls] configuration")
            tls = (context, host)
        _reachable(host, port)
        assoc = ae.associate(host, port, ae_title=called, tls_args=tls)
        if not assoc.is_established:
            raise RuntimeError(f"no association with {item.target}")
        try:
            if not any(
                c.abstract_syntax == sop_class and c.result == 0x00 for c in assoc.accepted_contexts
            ):
                raise PermanentFailure(f"{item.target} does not accept {sop_class} in {syntax}")
            status = dicomscu.send_c_store(assoc, dcmread(path))
            if not status or "Status" not in status:
                raise RuntimeError("no C-STORE response (association aborted or timed out)")
            code = int(status.Status)
            if code & 0xFF00 == 0xA700:  # out of resources: may pass later
                raise RuntimeError(f"C-STORE refused with status 0x{code:04X}")
            if code not in DELIVERED:
                raise PermanentFailure(f"C-STORE refused with status 0x{code:04X}")
        finally:
            if assoc.is_established:
                assoc.release()

    return send
