"""``ExpectedContents`` keywords, checked on the metadata a query returned.

Each keyword does what the NIST ``testengine.engine.Validator`` does for it (read, not copied).
As in the toolkit, problems accumulate over all keywords of one ``ExpectedContents`` and the
"pattern" keywords look at their counts first and skip the association checks when a count (or an
earlier keyword) already failed. Association types are compared in their ebRIM 3.0 form.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.conformance.nist.ebrim import association_type_v3
from tests.conformance.nist.metadata import (
    MetadataView,
    simple_association_type,
    simple_status,
)
from tests.conformance.nist.xmlutil import Element, kids, local, text

UseIdResolver = Callable[[Element], str]


class ContentsChecker:
    """Runs ``ExpectedContents`` keywords over one :class:`MetadataView`."""

    def __init__(
        self,
        metadata: MetadataView,
        *,
        response_ok: bool = True,
        resolve_use_id: UseIdResolver | None = None,
    ) -> None:
        self.m = metadata
        self.response_ok = response_ok  # schema-valid and not Failure (RegistryResponseIsValid)
        self.resolve_use_id = resolve_use_id
        self.errors: list[str] = []
        self._keywords: dict[str, Callable[[int], None]] = {
            "SSwithOneDoc": lambda _: (self.ss_docs(1), self.ss_approved()),
            "SSwithOneDocOnly": lambda _: self.ss_docs(1),
            "SSwithTwoDoc": lambda _: (self.ss_docs(2), self.ss_approved()),
            "SSwithTwoDocOnly": lambda _: self.ss_docs(2),
            "SSwithOneFol": lambda _: self.ss_one_fol(),
            "SSwithOneDocOneFol": lambda _: self.ss_docs_in_fol(1, 4),
            "SSwithTwoDocOneFol": lambda _: self.ss_docs_in_fol(2, 7),
            "SSwithTwoDocOneFolOneDocInFol": lambda _: self.ss_two_docs_one_in_fol(),
            "SSApproved": lambda _: self.ss_approved(),
            "DocApp": lambda _: self.all_status(self.m.extrinsic_objects, "Approved", "Document"),
            "DocDep": lambda _: self.all_status(self.m.extrinsic_objects, "Deprecated", "Document"),
            "OneDocApp": lambda _: self.one_status("Approved"),
            "OneDocDep": lambda _: self.one_status("Deprecated"),
            "FolApp": lambda _: self.all_status(self.m.folders, "Approved", "Folder"),
            "FolDep": lambda _: self.all_status(self.m.folders, "Deprecated", "Folder"),
            "HasRPLC": lambda _: self.has_relationship("RPLC"),
            "HasXFRM_RPLC": lambda _: self.has_relationship("XFRM_RPLC"),
            "HasAPND": lambda _: self.has_relationship("APND"),
            "DocRplcDoc": lambda _: self.doc_rplc_doc(),
            "None": lambda _: self.none(),
            "NoDocument": lambda _: self.count("Documents", self.m.extrinsic_objects, 0),
            "NoSubmissionSet": lambda _: self.no_submission_set(),
            "ObjectRefs": self.object_refs_only,
            "Documents": lambda n: self.count("Documents", self.m.extrinsic_objects, n),
            "Folders": lambda n: self.count("Folders", self.m.folders, n),
            "SubmissionSets": lambda n: self.count("SubmissionSets", self.m.submission_sets, n),
            "Associations": lambda n: self.count("Associations", self.m.associations, n),
            "RegistryResponseIsValid": lambda _: self.registry_response_is_valid(),
        }

    def run(self, expected: Element) -> list[str]:
        """Check every child keyword of an ``ExpectedContents`` element; return the problems."""
        for child in kids(expected):
            name = local(child)
            if name == "DocumentEntries":
                self.document_entries(child)
            elif name in self._keywords:
                self._keywords[name](int(child.get("count", "-1")))
            else:
                self.err(f"ExpectedContents keyword {name} is not supported")
        return self.errors

    def err(self, message: str) -> None:
        """Record a problem."""
        self.errors.append(message)

    # -- counts and statuses ------------------------------------------------------------------

    def count(self, label: str, found: list[Element], expected: int) -> None:
        """``<label count=N/>``: exactly N objects of that kind."""
        if len(found) != expected:
            self.err(f"found {len(found)} {label} instead of {expected}")

    def has_submission_set(self) -> None:
        """A SubmissionSet is present."""
        if self.m.submission_set is None:
            self.err("no SubmissionSet found")

    def no_submission_set(self) -> None:
        """No SubmissionSet is present."""
        if self.m.submission_set is not None:
            self.err("SubmissionSet found")

    def ss_approved(self) -> None:
        """``SSApproved``: the SubmissionSet has status Approved."""
        ss = self.m.submission_set
        if ss is None:
            self.err("no SubmissionSet")
        elif simple_status(ss) != "Approved":
            self.err(f"SubmissionSet {ss.get('id')} has status {simple_status(ss) or '(none)'}")

    def all_status(self, objects: list[Element], wanted: str, label: str) -> None:
        """``DocApp``/``DocDep``/``FolApp``/``FolDep``: every object has the wanted status."""
        for obj in objects:
            if simple_status(obj) != wanted:
                self.err(
                    f"{label} {obj.get('id')} has status "
                    f"{simple_status(obj) or '(none)'} instead of {wanted}"
                )
                return

    def one_status(self, wanted: str) -> None:
        """``OneDocApp``/``OneDocDep``: exactly one DocumentEntry has the wanted status."""
        found = sum(1 for eo in self.m.extrinsic_objects if simple_status(eo) == wanted)
        if found != 1:
            self.err(f"found {found} {wanted} ExtrinsicObjects instead of one")

    def none(self) -> None:
        """``None``: no SubmissionSet, DocumentEntry, Folder or Association returned."""
        self.no_submission_set()
        self.count("Documents", self.m.extrinsic_objects, 0)
        self.count("Folders", self.m.folders, 0)
        if not self.errors:
            self.count("Associations", self.m.associations, 0)

    def object_refs_only(self, expected: int) -> None:
        """``ObjectRefs count=N``: N ObjectRefs and no leaf objects."""
        self.count("ObjectRefs", self.m.object_refs, expected)
        self.no_submission_set()
        self.count("Documents", self.m.extrinsic_objects, 0)
        self.count("Folders", self.m.folders, 0)
        self.count("Associations", self.m.associations, 0)

    def registry_response_is_valid(self) -> None:
        """``RegistryResponseIsValid``: schema-valid response whose status is not Failure."""
        if not self.response_ok:
            self.err("registry response is not valid (schema problem or Failure status)")

    # -- association patterns -----------------------------------------------------------------

    def has_association(
        self, source: Element | None, target: Element | None, kind: str
    ) -> Element | None:
        """The association ``source -kind-> target``, or record a problem."""
        full = association_type_v3(kind)
        if source is not None and target is not None:
            for assoc in self.m.associations:
                if (
                    assoc.get("sourceObject") == source.get("id")
                    and assoc.get("targetObject") == target.get("id")
                    and assoc.get("associationType") == full
                ):
                    return assoc
        self.err(
            f"{kind} association missing between "
            f"{None if source is None else source.get('id')} and "
            f"{None if target is None else target.get('id')} (expected {full})"
        )
        return None

    def has_association_to_one_of(
        self, source: Element | None, targets: list[Element], kind: str
    ) -> Element | None:
        """An association ``source -kind->`` any of ``targets``, or record a problem."""
        full = association_type_v3(kind)
        ids = {t.get("id") for t in targets}
        for assoc in self.m.associations:
            if (
                source is not None
                and assoc.get("sourceObject") == source.get("id")
                and assoc.get("targetObject") in ids
                and assoc.get("associationType") == full
            ):
                return assoc
        self.err(
            f"{kind} association missing from "
            f"{None if source is None else source.get('id')} to one of {sorted(ids)}"
        )
        return None

    def ss_docs(self, docs: int) -> None:
        """``SSwithOneDoc``/``SSwithTwoDoc``: one SS, N DEs, N HasMember SS->DE associations."""
        self.has_submission_set()
        self.count("Documents", self.m.extrinsic_objects, docs)
        self.count("Associations", self.m.associations, docs)
        if self.errors:
            return
        for eo in self.m.extrinsic_objects:
            self.has_association(self.m.submission_set, eo, "HasMember")

    def ss_one_fol(self) -> None:
        """``SSwithOneFol``: one SS, no DE, one Folder, one SS->Folder HasMember."""
        self.has_submission_set()
        self.count("Documents", self.m.extrinsic_objects, 0)
        self.count("Folders", self.m.folders, 1)
        if not self.errors:
            self.count("Associations", self.m.associations, 1)
            self.has_association(self.m.submission_set, self.m.folders[0], "HasMember")

    def ss_docs_in_fol(self, docs: int, associations: int) -> None:
        """``SSwithOneDocOneFol``/``SSwithTwoDocOneFol``: every DE in the one folder, SS owns all.

        SS HasMember each DE and the Folder; Folder HasMember each DE; SS HasMember each of the
        Folder->DE associations (ITI TF-3 §4.2.2.1).
        """
        self.has_submission_set()
        self.count("Documents", self.m.extrinsic_objects, docs)
        self.count("Folders", self.m.folders, 1)
        if self.errors:
            return
        self.count("Associations", self.m.associations, associations)
        ss, folder = self.m.submission_set, self.m.folders[0]
        folder_doc: list[Element] = []
        for eo in self.m.extrinsic_objects:
            self.has_association(ss, eo, "HasMember")
        self.has_association(ss, folder, "HasMember")
        for eo in self.m.extrinsic_objects:
            found = self.has_association(folder, eo, "HasMember")
            if found is not None:
                folder_doc.append(found)
        for member in list(folder_doc):
            self.has_association_to_one_of(ss, [member], "HasMember")
        if not folder_doc:
            self.has_association_to_one_of(ss, folder_doc, "HasMember")

    def ss_two_docs_one_in_fol(self) -> None:
        """``SSwithTwoDocOneFolOneDocInFol``: two DEs, one Folder holding one of them."""
        self.has_submission_set()
        self.count("Documents", self.m.extrinsic_objects, 2)
        self.count("Folders", self.m.folders, 1)
        if self.errors:
            return
        self.count("Associations", self.m.associations, 5)
        ss, folder = self.m.submission_set, self.m.folders[0]
        for eo in self.m.extrinsic_objects:
            self.has_association(ss, eo, "HasMember")
        self.has_association(ss, folder, "HasMember")
        found = self.has_association_to_one_of(folder, self.m.extrinsic_objects, "HasMember")
        if found is not None:
            self.has_association(ss, found, "HasMember")

    def has_relationship(self, kind: str) -> None:
        """``HasRPLC``/``HasXFRM_RPLC``/``HasAPND``: such an association exists, one per target."""
        targets = [
            a.get("targetObject") for a in self.m.associations if simple_association_type(a) == kind
        ]
        if not targets:
            self.err(f"{kind} association not found")
        elif len(set(targets)) != len(targets):
            self.err(f"multiple {kind} associations found for the same document")

    def doc_rplc_doc(self) -> None:
        """``DocRplcDoc``: two DEs, the Approved one replaces the Deprecated one."""
        self.count("Documents", self.m.extrinsic_objects, 2)
        self.count("Associations", self.m.associations, 1)
        if self.errors:
            return
        first, second = self.m.extrinsic_objects
        new, old = (first, second) if simple_status(first) == "Approved" else (second, first)
        self.has_association(new, old, "RPLC")
        if simple_status(old) != "Deprecated":
            self.err(
                f"ExtrinsicObject {old.get('id')} has status {simple_status(old)} "
                "instead of Deprecated"
            )

    # -- DocumentEntries (Include / Exclude / MustOnlyInclude by UseId) ----------------------

    def document_entries(self, element: Element) -> None:
        """``DocumentEntries``: listed entries (by UseId) must / must not be returned."""
        for selection in kids(element):
            mode = local(selection)
            if mode == "DocumentEntryType":
                wanted = text(selection)
                for eo in self.m.extrinsic_objects:
                    if eo.get("objectType") != wanted:
                        self.err(
                            f"ExtrinsicObject {eo.get('id')} objectType "
                            f"{eo.get('objectType')} is not {wanted}"
                        )
                continue
            if mode not in ("Include", "Exclude", "MustOnlyInclude"):
                self.err(f"DocumentEntries/{mode} is not supported")
                continue
            matched = self._select(selection, mode)
            if mode == "MustOnlyInclude" and matched != len(self.m.extrinsic_objects):
                self.err(
                    f"{matched} listed DocumentEntries matched but "
                    f"{len(self.m.extrinsic_objects)} were returned"
                )

    def _select(self, selection: Element, mode: str) -> int:
        by_id = {eo.get("id"): eo for eo in self.m.extrinsic_objects}
        matched = 0
        for entry in kids(selection, "DocumentEntry"):
            use_ids = kids(entry, "UseId")
            if not use_ids or self.resolve_use_id is None:
                self.err("DocumentEntry without a resolvable UseId")
                continue
            wanted = self.resolve_use_id(use_ids[0])
            found = by_id.get(wanted)
            if mode == "Exclude":
                if found is not None:
                    self.err(f"DocumentEntry {wanted} must not be returned but was")
                continue
            if found is None:
                self.err(f"DocumentEntry {wanted} was not returned")
                continue
            matched += 1
            for kind in kids(entry, "DocumentEntryType"):
                if found.get("objectType") != text(kind):
                    self.err(
                        f"DocumentEntry {wanted} objectType {found.get('objectType')} "
                        f"is not {text(kind)}"
                    )
        return matched
