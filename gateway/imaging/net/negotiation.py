"""What the acceptor answers to an A-ASSOCIATE-RQ: reject it, or accept it with a result per
proposed presentation context, role selections and the asynchronous operations window.

The association is rejected (PS3.8 §9.3.4, Table 9-21) for a protocol version without bit 0
(ACSE, protocol-version-not-supported), an application context other than DICOM's (service user,
application-context-name-not-supported) and, when the listener requires it, a Called AE Title
that is not its own (service user, called-AE-title-not-recognized). Otherwise it is accepted and
each presentation context gets its result (PS3.8 Table 9-18): acceptance with the transfer syntax
``choose(abstract syntax, proposed syntaxes)`` returns, abstract-syntax-not-supported, or
transfer-syntaxes-not-supported. Which syntax is chosen is the caller's rule, given as one
function (``Policy.choose``), so it can change without touching the protocol code.

Roles (PS3.7 Annex D.3.3.4): this acceptor is only ever the SCP. A proposed SCU role is
accepted, a proposed SCP role refused; a context whose SOP Class the requestor proposes only as
SCP has no usable role and is rejected (user-rejection). Asynchronous operations (PS3.7 Annex
D.3.3.3): when proposed, the answer is a window of one operation each way, that is, messages are
performed one at a time, as without the sub-item.

Standard: DICOM PS3.8 §7.1.1.13-14, §9.3.2-9.3.4; PS3.7 Annex D.3.3.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from gateway.imaging.net import pdu

IMPLICIT_VR_LE = "1.2.840.10008.1.2"  # the DICOM default transfer syntax (PS3.5 §10.1)

ChooseSyntax = Callable[[str, Sequence[str]], "str | None"]


@dataclass(frozen=True, slots=True)
class AcceptedContext:
    """A presentation context of the established association."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The acceptor's side of negotiation."""

    ae_title: str
    abstract_syntaxes: Collection[str]  # the SOP Classes served
    choose: ChooseSyntax  # accepted transfer syntax for (abstract syntax, proposed), or None
    max_pdu: int  # the Maximum Length announced to the peer (PS3.8 Annex D.1)
    implementation_class_uid: str
    implementation_version_name: str
    require_called_aet: bool = True


@dataclass(frozen=True, slots=True)
class Rejection:
    """An A-ASSOCIATE-RJ to send, and why (for the log)."""

    result: int
    source: int
    reason: int
    why: str

    def encode(self) -> bytes:
        """The A-ASSOCIATE-RJ PDU."""
        return pdu.encode_associate_rj(self.result, self.source, self.reason)


@dataclass(frozen=True, slots=True)
class Acceptance:
    """An A-ASSOCIATE-AC to send and the contexts it accepts."""

    accept: bytes
    contexts: dict[int, AcceptedContext]


def check(request: pdu.AssociateRequest, policy: Policy) -> Rejection | None:
    """Why the association must be rejected, or None (PS3.8 §9.3.4)."""
    if not request.protocol_version & 0x0001:
        return Rejection(
            pdu.REJECTED_PERMANENT,
            pdu.RJ_SERVICE_PROVIDER_ACSE,
            pdu.PROTOCOL_VERSION_NOT_SUPPORTED,
            f"protocol version 0x{request.protocol_version:04X} is not supported",
        )
    if request.application_context != pdu.DICOM_APPLICATION_CONTEXT:
        return Rejection(
            pdu.REJECTED_PERMANENT,
            pdu.RJ_SERVICE_USER,
            pdu.APPLICATION_CONTEXT_NOT_SUPPORTED,
            f"application context {request.application_context!r} is not DICOM's",
        )
    if policy.require_called_aet and request.called_ae != policy.ae_title:
        return Rejection(
            pdu.REJECTED_PERMANENT,
            pdu.RJ_SERVICE_USER,
            pdu.CALLED_AE_TITLE_NOT_RECOGNIZED,
            f"called AE title {request.called_ae!r} is not {policy.ae_title!r}",
        )
    return None


def accept(request: pdu.AssociateRequest, policy: Policy) -> Acceptance:
    """The A-ASSOCIATE-AC for an association :func:`check` let through (PS3.8 §9.3.3)."""
    # SOP Classes the requestor will not be the SCU of: nothing this acceptor can serve there
    refused_scu = {role.sop_class_uid for role in request.roles if not role.scu}
    results: list[pdu.ContextResult] = []
    accepted: dict[int, AcceptedContext] = {}
    for proposed in request.contexts:
        result, syntax = _result(proposed, policy, refused_scu)
        results.append(pdu.ContextResult(proposed.context_id, result, syntax))
        if result == pdu.ACCEPTANCE:
            accepted[proposed.context_id] = AcceptedContext(
                proposed.context_id, proposed.abstract_syntax, syntax
            )
    served = {context.abstract_syntax for context in accepted.values()}
    roles: dict[str, pdu.RoleSelection] = {}
    for role in request.roles:  # SCU role accepted, SCP role refused; one answer per SOP Class
        if role.sop_class_uid in served:
            roles.setdefault(role.sop_class_uid, pdu.RoleSelection(role.sop_class_uid, True, False))
    message = pdu.encode_associate_ac(
        request,
        results,
        max_length=policy.max_pdu,
        implementation_class_uid=policy.implementation_class_uid,
        implementation_version_name=policy.implementation_version_name,
        async_window=(1, 1) if request.async_window is not None else None,
        roles=list(roles.values()),
    )
    return Acceptance(message, accepted)


def _result(
    proposed: pdu.ProposedContext, policy: Policy, refused_scu: set[str]
) -> tuple[int, str]:
    """(result, transfer syntax) of one proposed presentation context (PS3.8 Table 9-18)."""
    # the syntax item of a refused context is not significant (PS3.8 Table 9-18) but present
    fallback = proposed.transfer_syntaxes[0] if proposed.transfer_syntaxes else IMPLICIT_VR_LE
    if proposed.context_id % 2 == 0:  # context IDs are odd (PS3.8 §9.3.2.2)
        return pdu.NO_REASON, fallback
    if proposed.abstract_syntax not in policy.abstract_syntaxes:
        return pdu.ABSTRACT_SYNTAX_NOT_SUPPORTED, fallback
    if proposed.abstract_syntax in refused_scu:
        return pdu.USER_REJECTION, fallback
    chosen = policy.choose(proposed.abstract_syntax, proposed.transfer_syntaxes)
    if chosen is None:
        return pdu.TRANSFER_SYNTAXES_NOT_SUPPORTED, fallback
    return pdu.ACCEPTANCE, chosen
