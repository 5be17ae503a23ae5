"""Which transfer syntax the DICOM listener accepts in each proposed presentation context.

PS3.8 §7.1.1.13-14 / §9.3.2.2: the requestor proposes, per presentation context, an abstract
syntax and one or more transfer syntaxes; only one of them is agreed per context, and PS3.7
§D.3.2 (d) leaves the choice to the acceptor (PS3.8 §9.3.3.2 carries it back). By default this
gateway takes, per context, the first syntax *the sender* proposed among those it supports
("sender"), so a modality that proposes JPEG Lossless first, with Explicit VR Little Endian as a
fall-back in the same context (dcmtk ``dcmsend``'s default), sends its data unchanged and they are
stored as sent (PS3.4 §B.4.1). An operator may instead give the listener's own order
(``imaging_source.transfer_syntax_preference``: a list of UIDs): the first listed syntax the
sender proposed wins, and a context that proposes none of the listed ones still gets the sender's
first supported syntax (the listener never refuses what it can store).

pynetdicom (3.0, ``presentation.negotiate_as_acceptor``) accepts the first syntax of the
*acceptor's* list that the requestor proposed, and keys the acceptor's list by abstract syntax
only, so it cannot honour the sender's order, nor a different order in two contexts of the same
SOP class. Its ``EVT_REQUESTED`` notification runs after the A-ASSOCIATE-RQ is received and before
negotiation; :meth:`SyntaxChooser.on_requested` narrows each proposed context there to the one
syntax chosen, which pynetdicom then accepts (it is among the supported ones by construction).
Contexts whose abstract syntax, or every transfer syntax, is unsupported are left untouched and
pynetdicom rejects them with the usual results (PS3.8 Table 9-18: 0x3 / 0x4).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("gateway.imaging")

SENDER = "sender"


@dataclass(frozen=True, slots=True)
class SyntaxChooser:
    """The listener's rule for one presentation context: the sender's order, or ``order``.

    ``supported`` maps each abstract syntax (SOP Class UID) to the transfer syntaxes the listener
    supports for it.
    """

    supported: Mapping[str, Collection[str]]
    order: tuple[str, ...] = ()  # empty: the sender's order

    def choose(self, abstract_syntax: str, proposed: Sequence[str]) -> str | None:
        """The transfer syntax to accept for one proposed context, or None (none supported).

        Standard: PS3.8 §7.1.1.14 (one transfer syntax per accepted context), PS3.7 §D.3.2.
        """
        supported = self.supported.get(abstract_syntax)
        if not supported:
            return None
        usable = [str(syntax) for syntax in proposed if str(syntax) in supported]
        for preferred in self.order:
            if preferred in usable:
                return preferred
        return usable[0] if usable else None

    def on_requested(self, event: Any) -> None:
        """``EVT_REQUESTED`` handler: narrow every proposed context to the syntax chosen."""
        primitive = event.assoc.requestor.primitive
        contexts = getattr(primitive, "presentation_context_definition_list", None) or []
        for context in contexts:
            proposed = list(context.transfer_syntax)
            chosen = self.choose(str(context.abstract_syntax), proposed)
            if chosen is None or proposed == [chosen]:
                continue
            log.debug(
                "context %s (%s): proposed %s, accepting %s",
                context.context_id,
                context.abstract_syntax,
                ", ".join(map(str, proposed)),
                chosen,
            )
            context.transfer_syntax = [chosen]


def parse_preference(text: str, accepted: Iterable[str]) -> tuple[str, ...]:
    """The listener's order from ``imaging_source.transfer_syntax_preference``: ``sender`` (or
    empty) gives ``()``, else comma-separated UIDs, each one the listener accepts.

    Raises: ValueError naming the first UID the listener does not accept.
    """
    value = text.strip()
    if not value or value.lower() == SENDER:
        return ()
    known = set(accepted)
    order: list[str] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if item not in known:
            raise ValueError(
                f"{item!r} is not a transfer syntax the DICOM listener accepts "
                "(give 'sender' or transfer syntax UIDs, comma-separated)"
            )
        order.append(item)
    if not order:
        raise ValueError("expected 'sender' or transfer syntax UIDs, comma-separated")
    return tuple(dict.fromkeys(order))


def supported_by(contexts: Iterable[Any]) -> dict[str, frozenset[str]]:
    """Abstract syntax -> transfer syntaxes, from pynetdicom presentation contexts."""
    return {
        str(context.abstract_syntax): frozenset(str(ts) for ts in context.transfer_syntax)
        for context in contexts
    }
