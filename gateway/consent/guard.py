"""Enforcing patient consent (IHE BPPC) on queries and retrievals.

The affinity domain declares its privacy policies (``[consent] policies``: policy OID ->
``opt-in`` or ``opt-out``). A patient's consent is the newest of their Approved BPPC consent
documents (formatCode ``urn:ihe:iti:bppc:2007`` or ``urn:ihe:iti:bppc-sd:2007``) whose
eventCodeList names a declared policy (ITI TF-1 §19.2: "the most recent ... consent"); with no
such document the domain's default applies, which here is access (opt-in).

With an opt-out in force, a caller of another organization than the one that published a
document (the SubmissionSet's sourceId, mapped to organizations by the access rules):

- finds nothing of the patient: ITI-18 (and so ITI-38 and MHD ITI-67, which run the same stored
  queries) answers without those objects (:meth:`ConsentGuard.filter_objects`), Success;
- is refused the patient's documents: ITI-43 (ITI-39, ITI-68) and RAD-69 (RAD-75) answer each
  with ``XDSDocumentUniqueIdError`` (ITI TF-2 §3.43.4.2.3: "the document ... is not available";
  the TF has no consent-specific code for these transactions), the others as usual.

The publishing organization and the consent documents themselves stay visible to all. Every
refusal (and every answer from which objects were withheld) is reported to ``on_refusal``, which
the assembly audits (ITI-20 Security Alert, ``gateway.audit``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.consent.caller import Caller, current
from gateway.errors import XDSDocumentUniqueIdError, XDSError
from gateway.metadata.model import Association, RegistryObject
from gateway.metadata.retrieve import (
    DocumentRequest,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
    registry_errors,
    status_for,
)

log = logging.getLogger("gateway.consent")

OPT_IN, OPT_OUT = "opt-in", "opt-out"


class Owner(Protocol):
    """Whose an object is (``gateway.registry.consent_view.Owner``)."""

    @property
    def patient_id(self) -> str: ...

    @property
    def source_id(self) -> str | None: ...

    @property
    def consent(self) -> bool: ...


class ConsentDocument(Protocol):
    """A registered consent document (``gateway.registry.consent_view.ConsentDocument``)."""

    @property
    def unique_id(self) -> str: ...

    @property
    def policies(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """One refusal (or withholding) for the audit trail."""

    transaction: str
    caller: Caller
    patient_ids: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _StudyOwner:
    patient_id: str
    source_id: str | None
    consent: bool = False


class ConsentGuard:
    """The consent decisions of one gateway, over the registry's consent view."""

    def __init__(
        self,
        policies: Mapping[str, str],
        *,
        owners: Callable[[Iterable[str]], Mapping[str, Owner]],
        documents: Callable[[Iterable[str]], Mapping[str, Owner]],
        consents: Callable[[Iterable[str]], Mapping[str, Sequence[ConsentDocument]]],
        source_organizations: Mapping[str, str],
        on_refusal: Callable[[Refusal], None] = lambda _r: None,
    ) -> None:
        self.policies = dict(policies)
        self.owners, self.documents, self.consents = owners, documents, consents
        self.source_organizations = dict(source_organizations)
        self.on_refusal = on_refusal

    # -- decisions ------------------------------------------------------------------------------
    def opted_out(self, patient_ids: Iterable[str]) -> set[str]:
        """The patients whose newest consent document naming a declared policy is an opt-out."""
        found: set[str] = set()
        for patient, documents in self.consents(set(patient_ids)).items():
            for document in documents:  # newest first
                effects = {self.policies[p] for p in document.policies if p in self.policies}
                if effects:
                    if OPT_OUT in effects:
                        found.add(patient)
                    break
        return found

    def _visible(self, caller: Caller, owner: Owner, opted_out: set[str]) -> bool:
        if caller.local or owner.consent or owner.patient_id not in opted_out:
            return True
        publisher = self.source_organizations.get(owner.source_id or "")
        return publisher is not None and publisher == caller.organization

    # -- ITI-18, ITI-38, ITI-67 -----------------------------------------------------------------
    def filter_objects(self, objects: list[RegistryObject]) -> list[RegistryObject]:
        """Stored-query results without what the caller may not see (objects of an opted-out
        patient published by another organization, and associations touching them)."""
        caller = current()
        transaction = caller.transaction or "ITI-18"
        if caller.local or not objects:
            return objects
        # LeafClass answers carry their patients: when none of them opted out, that is all
        # (one look-up). ObjectRef answers need the registry to say whose each object is.
        named = {getattr(o, "patient_id", None) for o in objects if not isinstance(o, Association)}
        if None not in named and not self.opted_out({p for p in named if p}):
            return objects
        ids = {o.entry_uuid for o in objects if not isinstance(o, Association)}
        ids |= {
            end
            for o in objects
            if isinstance(o, Association)
            for end in (o.source_object, o.target_object)
        }
        owners = self.owners(ids)
        opted_out = self.opted_out({o.patient_id for o in owners.values()})
        if not opted_out:
            return objects
        hidden = {i for i, o in owners.items() if not self._visible(caller, o, opted_out)}
        if not hidden:
            return objects
        result = [o for o in objects if not _touches(o, hidden)]
        patients = sorted({owners[i].patient_id for i in hidden})
        self._refuse(
            transaction,
            caller,
            patients,
            f"{len(objects) - len(result)} object(s) withheld: the patient's consent (BPPC "
            "opt-out) keeps them from other organizations",
        )
        return result

    # -- ITI-43, ITI-39, ITI-68 -----------------------------------------------------------------
    def guard_documents(
        self,
        retrieve: Callable[[Sequence[DocumentRequest]], RetrieveDocumentSetResponse],
        transaction: str = "ITI-43",
    ) -> Callable[[Sequence[DocumentRequest]], RetrieveDocumentSetResponse]:
        """Wrap a repository's retrieve: refused documents are answered with
        XDSDocumentUniqueIdError and never read."""

        def guarded(requests: Sequence[DocumentRequest]) -> RetrieveDocumentSetResponse:
            caller = current()
            if caller.local:
                return retrieve(requests)
            owners = self.documents({r.document_unique_id for r in requests})
            refused = self._refused(caller, owners)
            if not refused:
                return retrieve(requests)
            called = caller.transaction or transaction  # ITI-43, or ITI-39 / ITI-68 on top
            allowed = [r for r in requests if r.document_unique_id not in refused]
            errors = [_refusal_error(uid) for uid in sorted(refused)]
            self._refuse(
                called,
                caller,
                sorted({owners[u].patient_id for u in refused}),
                f"retrieval of {len(refused)} document(s) refused: the patient's consent (BPPC "
                "opt-out) keeps them from other organizations",
            )
            return _merge(retrieve(allowed) if allowed else None, errors)

        return guarded

    # -- RAD-69, RAD-75 -------------------------------------------------------------------------
    def guard_imaging(
        self,
        retrieve: Callable[[RetrieveImagingDocumentSetRequest], RetrieveDocumentSetResponse],
        study_patient: Callable[[str], str | None],
        source_id: str,
        transaction: str = "RAD-69",
    ) -> Callable[[RetrieveImagingDocumentSetRequest], RetrieveDocumentSetResponse]:
        """Wrap an imaging source's RAD-69: the instances of a study whose patient (the
        affinity-domain id of its manifest) opted out are refused to other organizations
        (XDSDocumentUniqueIdError each), the publisher being the source's own ``source_id``."""

        def guarded(request: RetrieveImagingDocumentSetRequest) -> RetrieveDocumentSetResponse:
            caller = current()
            if caller.local:
                return retrieve(request)
            owners: dict[str, Owner] = {}
            for study in request.studies:
                patient = study_patient(study.study_instance_uid)
                if patient:
                    owners[study.study_instance_uid] = _StudyOwner(
                        patient_id=patient, source_id=source_id
                    )
            refused = self._refused(caller, owners)
            if not refused:
                return retrieve(request)
            called = caller.transaction or transaction  # RAD-69, or RAD-75 on top
            wanted = list(request.documents())
            allowed = [d for d in wanted if d.study_instance_uid not in refused]
            errors = [
                _refusal_error(d.document.document_unique_id)
                for d in wanted
                if d.study_instance_uid in refused
            ]
            self._refuse(
                called,
                caller,
                sorted({owners[s].patient_id for s in refused}),
                f"retrieval of {len(errors)} instance(s) refused: the patient's consent (BPPC "
                "opt-out) keeps them from other organizations",
            )
            answer = None
            if allowed:
                answer = retrieve(
                    RetrieveImagingDocumentSetRequest.of(allowed, request.transfer_syntaxes)
                )
            return _merge(answer, errors)

        return guarded

    # -- helpers --------------------------------------------------------------------------------
    def _refused(self, caller: Caller, owners: Mapping[str, Owner]) -> set[str]:
        opted_out = self.opted_out({o.patient_id for o in owners.values()})
        if not opted_out:
            return set()
        return {key for key, o in owners.items() if not self._visible(caller, o, opted_out)}

    def _refuse(self, transaction: str, caller: Caller, patients: list[str], reason: str) -> None:
        log.warning(
            "%s from %s (organization %s) for %s: %s",
            transaction,
            caller.remote_addr,
            caller.organization or "none",
            ", ".join(patients),
            reason,
        )
        try:
            self.on_refusal(
                Refusal(
                    transaction=transaction,
                    caller=caller,
                    patient_ids=tuple(patients),
                    reason=reason,
                )
            )
        except Exception:  # the audit trail must not break the answer
            log.exception("consent refusal not recorded")


def _touches(item: RegistryObject, hidden: set[str]) -> bool:
    """Is ``item`` hidden, or an association with a hidden end?"""
    if isinstance(item, Association):
        return item.source_object in hidden or item.target_object in hidden
    return item.entry_uuid in hidden


def _refusal_error(unique_id: str) -> XDSError:
    return XDSDocumentUniqueIdError(
        "the document is not available to your organization (patient privacy consent)",
        location=unique_id,
    )


def _merge(
    answer: RetrieveDocumentSetResponse | None, errors: list[XDSError]
) -> RetrieveDocumentSetResponse:
    """The answer for the allowed part with the refusals added; status recomputed."""
    documents = list(answer.documents) if answer is not None else []
    items = (list(answer.errors) if answer is not None else []) + registry_errors(errors)
    status: Any = status_for(items, partial=bool(documents))
    return RetrieveDocumentSetResponse(status=status, errors=items, documents=documents)
