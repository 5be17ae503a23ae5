"""The registry's patient identity store (ITI-8 sink): feeds, merges, aliases, local ids."""

from __future__ import annotations

import json

from gateway.hl7.ack import parse_ack
from gateway.hl7.adt import Demographics
from gateway.hl7.feed import PatientFeedHandler, PatientIdentitySink
from gateway.registry.database import Database
from gateway.registry.iti42 import Registry
from gateway.registry.patients import PatientRegistry, PatientStatus
from tests.integration.registry import builders
from tests.integration.registry.support import Clock, rows_where

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
A = f"A^^^&{DOMAIN}&ISO"
B = f"B^^^&{DOMAIN}&ISO"
C = f"C^^^&{DOMAIN}&ISO"
D = f"D^^^&{DOMAIN}&ISO"
LOCAL = "MRN-1^^^HOSP&1.2.3&ISO^MR"


def test_is_a_patient_identity_sink(db: Database) -> None:
    sink: PatientIdentitySink = PatientRegistry(db)  # type-checks the protocol's signatures
    assert callable(sink.register) and callable(sink.merge)


def test_register_and_update_demographics(db: Database, clock: Clock) -> None:
    patients = PatientRegistry(db, clock=clock)
    assert not patients.is_known(A)
    assert patients.state(A).status is PatientStatus.UNKNOWN
    patients.register(A, Demographics(family_name="Doe", given_name="Jane"), other_ids=[LOCAL])
    assert patients.is_known(A)
    clock.advance(60)
    patients.register(A, Demographics(family_name="Smith"), other_ids=[])
    [row] = rows_where(db, "patient", patient_id=A)
    assert json.loads(row["demographics"]) == {"family_name": "Smith"}
    assert row["updated"] == "20240601120100"
    assert row["merged_into"] is None
    assert patients.domain_id_for_local(LOCAL) == A
    assert patients.domain_id_for_local("unknown^^^X") is None


def test_local_id_moves_to_the_latest_domain_id(db: Database) -> None:
    patients = PatientRegistry(db)
    patients.register(A, Demographics(), other_ids=[LOCAL, A])
    patients.register(B, Demographics(), other_ids=[LOCAL])
    assert patients.domain_id_for_local(LOCAL) == B
    assert rows_where(db, "patient_local_id", local_id=A) == []  # its own id is not "local"


def test_merge(db: Database) -> None:
    """ITI TF-2 §3.8.4.2.3: the subsumed id is no longer usable; the survivor's aliases have it."""
    patients = PatientRegistry(db)
    patients.register(A, Demographics(), other_ids=[])
    patients.register(B, Demographics(), other_ids=[LOCAL])
    patients.merge(A, B)
    assert patients.is_known(A)
    assert not patients.is_known(B)
    state = patients.state(B)
    assert (state.status, state.merged_into) == (PatientStatus.MERGED, A)
    assert patients.resolve(B) == A
    assert patients.resolve(A) == A
    assert patients.aliases(A) == [A, B]
    assert patients.aliases(B) == [B]
    assert patients.domain_id_for_local(LOCAL) == A
    assert patients.resolve(C) is None
    assert patients.aliases(C) == [C]


def test_merges_stay_flat_and_transitive(db: Database) -> None:
    patients = PatientRegistry(db)
    for pid in (A, B, C, D):
        patients.register(pid, Demographics(), other_ids=[])
    patients.merge(B, C)  # C -> B
    patients.merge(A, B)  # B -> A, and C re-pointed to A
    patients.merge(A, D)
    assert {r["patient_id"]: r["merged_into"] for r in rows_where(db, "patient")} == {
        A: None,
        B: A,
        C: A,
        D: A,
    }
    assert patients.aliases(A) == [A, B, C, D]
    assert patients.resolve(C) == A


def test_merge_with_ids_never_fed(db: Database) -> None:
    patients = PatientRegistry(db)
    patients.merge(A, B)
    assert patients.is_known(A)
    assert patients.resolve(B) == A
    patients.merge(A, A)  # a no-op, not a self-loop
    assert patients.is_known(A)


def test_merge_into_an_id_that_was_merged_away(db: Database) -> None:
    patients = PatientRegistry(db)
    patients.merge(A, B)  # B -> A
    patients.merge(B, C)  # C -> B, but B resolves to A: C -> A
    assert patients.resolve(C) == A
    patients.merge(B, A)  # reverses the first merge: A -> B, B active again
    assert patients.is_known(B)
    assert not patients.is_known(A)
    assert patients.resolve(C) == B
    assert patients.aliases(B) == [B, A, C]


def test_feed_handler_end_to_end(registry: Registry, db: Database) -> None:
    """ITI-8 A01 through the hl7 room's handler, then an ITI-42 for that patient succeeds."""
    handler = PatientFeedHandler(registry.patients, DOMAIN)
    message = (
        "MSH|^~\\&|PAT_IDENTITY_X_REF_MGR|IHE|XDSb|IHE|20240601120000||ADT^A01^ADT_A01|MSG1|P|2.5\r"
        "EVN||20240601120000\r"
        f"PID|||NEW-1^^^&{DOMAIN}&ISO~L-9^^^HOSP&1.2.3&ISO^MR||Doe^Jane||19700101|F\r"
        "PV1||O\r"
    ).encode()
    ack = parse_ack(handler(message))
    assert ack.code == "AA"
    new_pid = f"NEW-1^^^&{DOMAIN}&ISO"
    assert registry.patients.is_known(new_pid)
    registry.register_document_set(builders.fresh(builders.documents(1), patient_id=new_pid))


def test_find_by_demographics_for_media_reconciliation(db: Database) -> None:
    """Exact family name, given name (case and spaces aside), birth date to the day and sex;
    merged ids are not proposed (IHE RAD IRWF.b reconciliation of imported media)."""
    patients = PatientRegistry(db)
    jane = Demographics(family_name="Doe", given_name="Jane", birth_date="198001011230", sex="F")
    patients.register(A, jane, other_ids=[])
    patients.register(
        B,
        Demographics(family_name="DOE", given_name=" jane ", birth_date="19800101", sex="F"),
        other_ids=[],
    )
    patients.register(
        C,
        Demographics(family_name="Doe", given_name="Jane", birth_date="19800102", sex="F"),
        other_ids=[],
    )
    patients.register(
        D,
        Demographics(family_name="Doe", given_name="Jane", birth_date="19800101", sex="M"),
        other_ids=[],
    )

    def find(**changes: str) -> list[str]:
        wanted = {"family_name": "doe", "given_name": "JANE", "birth_date": "19800101", "sex": "F"}
        wanted.update(changes)
        return [m.patient_id for m in patients.find_by_demographics(**wanted)]

    assert find() == [A, B]
    assert (
        patients.find_by_demographics(
            family_name="Doe", given_name="Jane", birth_date="19800101", sex="F"
        )[0].birth_date
        == "198001011230"
    )
    assert find(sex="M") == [D]
    assert find(given_name="John") == []
    assert find(birth_date="1980") == []  # not a full date: no match on demographics
    patients.merge(A, B)
    assert find() == [A]


def test_search_by_id_local_id_or_name(db: Database) -> None:
    """The exchange browser's patient search (``/ui/patients?q=``)."""
    ada, grace = f"PAT-1001^^^&{DOMAIN}&ISO", f"PAT-2002^^^&{DOMAIN}&ISO"
    odd = f"P_%1^^^&{DOMAIN}&ISO"
    patients = PatientRegistry(db)
    lovelace = Demographics(family_name="Lovelace", given_name="Ada", birth_date="18151210")
    patients.register(ada, lovelace, other_ids=[LOCAL])
    patients.register(grace, Demographics(family_name="Hopper", given_name="Grace"), other_ids=[])
    patients.register(odd, Demographics(family_name="Xu"), other_ids=[])

    def found(text: str) -> list[str]:
        return [m.patient_id for m in patients.search(text)]

    assert found(ada) == [ada]  # the CX
    assert found("PAT-1001") == [ada]  # the bare id (a prefix of the CX)
    assert found("PAT-") == [ada, grace]
    assert found("MRN-1") == [ada]  # a local id fed with it
    assert found("lovelace") == [ada] and found("GRACE") == [grace]  # names, case aside
    assert found("name") == [] and found("1815") == []  # not the JSON keys, not other fields
    match = patients.search("hopper")[0]
    assert (match.family_name, match.given_name) == ("Hopper", "Grace")
    assert found("P_%") == [odd] and found("P__") == []  # no wildcards
    assert found("") == [] and found("nobody") == []
    assert len(patients.search("PAT-", limit=1)) == 1
    patients.merge(ada, grace)  # grace merged into ada: no longer found
    assert found("grace") == []
