"""The patient's identifier in another community's domain (ITI TF-1 §18.2.3)."""

from __future__ import annotations

from gateway.errors import SEVERITY_WARNING
from gateway.metadata.query import AdhocQuery, patient_ids
from gateway.metadata.retrieve import RegistryError
from gateway.xca.patients import domain_of, for_community

OURS, THEIRS = "1.3.6.1.4.1.21367.13.20.1000", "1.3.6.1.4.1.21367.13.20.2000"
PID = f"P1^^^&{OURS}&ISO"
THEIR_PID = f"B7^^^&{THEIRS}&ISO"
HOME = "urn:oid:1.2.3.4"


def _find(pid: str = PID) -> AdhocQuery:
    query = AdhocQuery(query_id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d")
    query.add("$XDSDocumentEntryPatientId", f"'{pid}'")
    query.add("$XDSDocumentEntryStatus", "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')")
    return query


def test_same_domain_goes_out_unchanged() -> None:
    query = _find()
    assert for_community(query, home=HOME, domain="", lookup=None) is query


def test_the_cross_referenced_id_replaces_the_patient() -> None:
    asked: list[tuple[str, str]] = []

    def lookup(pid: str, domain: str) -> list[str]:
        asked.append((pid, domain))
        return [THEIR_PID]

    translated = for_community(_find(), home=HOME, domain=THEIRS, lookup=lookup)
    assert isinstance(translated, AdhocQuery)
    assert asked == [(PID, THEIRS)]
    assert patient_ids(translated) == [THEIR_PID]
    assert translated.slots[0].values == (f"'{THEIR_PID}'",)
    assert translated.slots[1] == _find().slots[1]  # other parameters untouched


def test_an_unknown_id_skips_the_community_with_a_warning() -> None:
    skipped = for_community(_find(), home=HOME, domain=THEIRS, lookup=lambda pid, domain: [])
    assert isinstance(skipped, RegistryError)
    assert (skipped.code, skipped.location, skipped.severity) == (
        "XDSUnknownPatientId",
        HOME,
        SEVERITY_WARNING,
    )
    assert PID in skipped.context and "XCPD" in skipped.context
    assert isinstance(for_community(_find(), home=HOME, domain=THEIRS, lookup=None), RegistryError)


def test_an_id_already_of_that_domain_is_kept() -> None:
    query = _find(THEIR_PID)
    kept = for_community(query, home=HOME, domain=THEIRS, lookup=lambda pid, domain: [])
    assert kept is query
    assert domain_of(THEIR_PID) == THEIRS and domain_of("no-cx") is None
