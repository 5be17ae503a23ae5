"""QIDO-RS on SQLite and PostgreSQL (the ``db_url`` fixture): the catalog follows the index of
the imaging source, whichever process stored an instance, and the searches match the same way.

Two gateways share one database and one storage folder here, as scaled-out processes do: the
second one's DICOMweb finds what the first one stored (its catalog catches up from
``received_at``).
"""

from __future__ import annotations

from pathlib import Path

import requests

from gateway.imaging import synthetic
from tests.integration.dicomweb.conftest import load, root, start_gateway


def _studies(base: str, query: str) -> set[str]:
    answer = requests.get(f"{base}/studies?{query}", timeout=30)
    assert answer.status_code in (200, 204), answer.text
    return (
        {s["0020000D"]["Value"][0] for s in answer.json()} if answer.status_code == 200 else set()
    )


def test_searches_on_a_shared_database(db_url: str, tmp_path: Path) -> None:
    first = start_gateway(tmp_path, XDSI_REGISTRY_DATABASE_URL=db_url)
    try:
        second = start_gateway(tmp_path, XDSI_REGISTRY_DATABASE_URL=db_url)
        try:
            a = synthetic.StudySpec(
                patient_id="DB-A", patient_name="Ünal^Anna", study_date="20240110"
            )
            b = synthetic.StudySpec(
                patient_id="DB-B",
                study_date="20240220",
                study_time="083000",
                series=(synthetic.SeriesSpec(modality="MR", count=2),),
            )
            load(first, tmp_path / "a", a)
            load(first, tmp_path / "b", b)
            # the second process searches what the first one stored (one database)
            base = root(second)
            assert _studies(base, "PatientID=DB-A") == {a.study_uid}
            assert _studies(base, "StudyDate=20240201-20240229") == {b.study_uid}
            assert _studies(base, "StudyTime=0800-0900") == {b.study_uid}
            assert _studies(base, "ModalitiesInStudy=MR") == {b.study_uid}
            assert _studies(base, "PatientName=üNAL*") == {a.study_uid}
            assert _studies(base, "PatientID=DB-?") == {a.study_uid, b.study_uid}
            assert _studies(base, "PatientID=DB-A,DB-B") == set()  # not a UID: no list matching
            assert _studies(base, f"StudyInstanceUID={a.study_uid},{b.study_uid}") == {
                a.study_uid,
                b.study_uid,
            }
            page = requests.get(f"{base}/studies?limit=1&offset=1", timeout=30)
            assert len(page.json()) == 1 and "Warning" not in page.headers
            series = requests.get(f"{base}/series?Modality=MR", timeout=30).json()
            assert [s["00201209"]["Value"] for s in series] == [[2]]
            assert series[0]["00100020"]["Value"] == ["DB-B"]  # all series: study attributes too
        finally:
            second.stop()
    finally:
        first.stop()
