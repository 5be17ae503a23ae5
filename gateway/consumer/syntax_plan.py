"""Which transfer syntaxes to ask RAD-69 for, per SOP Class, so the destination can take them.

A folder takes anything: every instance is asked for in the syntaxes the user requested. A PACS
takes what it accepts in association negotiation (PS3.8 §7.1.1.13-14): before a study is fetched
the destination is asked (:meth:`Destination.transfer_syntaxes`) which of the requested syntaxes
it accepts for each SOP Class of the study, and RAD-69 requests list only those (RAD TF-3
§4.69.4.1.2: the syntaxes the consumer is able to process). The imaging source then returns each
instance as stored when the PACS takes that syntax, and decompressed otherwise (RAD TF-3
§4.69.4.2.3), so an uncompressed-only PACS gets every JPEG instance decompressed, at the source.

When a syntax cannot be delivered, the reason is said plainly, and such an instance is not asked
for again (a retry cannot change it): the PACS takes the SOP Class in no requested syntax, or
takes it only in syntaxes the source answered it cannot provide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field

from pydicom.uid import UID

from gateway.consumer.manifest import InstanceRef
from gateway.consumer.syntaxes import ALL
from gateway.metadata.retrieve import RegistryError

_SHOWN = 4  # syntaxes named in a message before "..."


def uid_name(uid: str) -> str:
    """The name of a known UID (``CT Image Storage``, ``JPEG 2000 ...``), else the UID."""
    try:
        known = UID(uid).name
    except Exception:  # not a UID pydicom can name
        return uid
    return known if known and known != uid else uid


def syntax_names(uids: Iterable[str]) -> str:
    """Transfer syntax names for messages, at most a few (``a, b, c and 2 more``)."""
    names = [uid_name(uid) for uid in uids]
    if len(names) <= _SHOWN:
        return ", ".join(names)
    return f"{', '.join(names[:_SHOWN])} and {len(names) - _SHOWN} more"


@dataclass(frozen=True, slots=True)
class SyntaxPlan:
    """The RAD-69 TransferSyntaxUIDList of each SOP Class, for one destination."""

    requested: tuple[str, ...]
    by_class: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    where: str = ""  # the destination, for messages

    @classmethod
    def anything(cls, requested: tuple[str, ...]) -> SyntaxPlan:
        """A destination that keeps whatever comes (a folder)."""
        return cls(requested=requested)

    def syntaxes(self, ref: InstanceRef) -> tuple[str, ...]:
        """The syntaxes to list in the RAD-69 request of ``ref`` (empty: none can be taken)."""
        return tuple(self.by_class.get(ref.sop_class_uid, self.requested))

    def narrowed(self, ref: InstanceRef) -> bool:
        """True when the destination takes fewer syntaxes than were requested for ``ref``."""
        return self.syntaxes(ref) != self.requested

    def refusal(self, ref: InstanceRef) -> str | None:
        """Why ``ref`` cannot be delivered at all, or None when some syntax can be asked for."""
        if self.syntaxes(ref):
            return None
        asked = "any transfer syntax" if self.requested == ALL else syntax_names(self.requested)
        return f"{self.where} does not accept {uid_name(ref.sop_class_uid)} in {asked}"

    def explain(self, ref: InstanceRef, answer: str) -> str:
        """The reason when the source could not provide ``ref`` in what the destination takes."""
        taken = syntax_names(self.syntaxes(ref))
        return (
            f"{self.where} takes {uid_name(ref.sop_class_uid)} only in {taken}; "
            f"the imaging source answered: {answer}"
        )

    def reword(
        self,
        batch: Sequence[InstanceRef],
        errors: Sequence[RegistryError],
        failures: MutableMapping[str, str],
    ) -> set[str]:
        """Reword the failures of ``batch`` the source answered with an error for an instance
        the destination takes only in some syntaxes: that is why it failed, and asking again
        cannot help. Returns the SOP Instance UIDs reworded."""
        named = {error.location: error for error in errors if error.location}
        reworded = set()
        for ref in batch:
            uid = ref.sop_instance_uid
            error = named.get(uid)
            if uid in failures and error is not None and self.narrowed(ref):
                failures[uid] = self.explain(ref, error.context)
                reworded.add(uid)
        return reworded
