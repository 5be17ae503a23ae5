"""Process leases (gateway.database.leases) on SQLite and PostgreSQL: a row per live process,
renewed, lost and taken again, deleted at a clean stop, and processes of this machine that no
longer exist recognised at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import insert, select

from gateway.database.leases import (
    Lease,
    db_now,
    gateway_process,
    live_owner_ids,
    live_processes,
    node_identity,
    pid_alive,
)
from tests.support.site import Site, site_at


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    with site_at(db_url) as opened:
        yield opened


def row(site: Site, owner: str) -> dict[str, object] | None:
    with site.engine.connect() as conn:
        found = conn.execute(select(gateway_process).where(gateway_process.c.owner == owner))
        first = found.first()
    return None if first is None else dict(first._mapping)


def test_the_lease_clock_is_the_database_clock(site: Site) -> None:
    with site.engine.connect() as conn:
        now = conn.execute(select(db_now())).scalar_one()
    assert abs(now - time.time()) < 60  # same machine: the same clock, give or take


def test_acquire_renew_release(site: Site) -> None:
    lease = Lease(site.engine, seconds=30).acquire()
    first = row(site, lease.owner)
    assert first is not None and first["pid"] == os.getpid() and first["node"] == node_identity()
    assert lease.owner in live_owner_ids(site.engine)
    assert [p["owner"] for p in live_processes(site.engine)] == [lease.owner]
    assert lease.renew() and lease.valid
    renewed = row(site, lease.owner)
    assert renewed is not None and renewed["expires_at"] >= first["expires_at"]  # type: ignore[operator]
    lease.release()
    assert row(site, lease.owner) is None and not lease.valid
    assert live_owner_ids(site.engine) == set()


def test_an_expired_lease_is_not_live_and_a_lost_one_is_taken_again(site: Site) -> None:
    lease = Lease(site.engine, seconds=30).acquire()
    site.expire(lease)
    assert lease.owner not in live_owner_ids(site.engine)
    assert lease.renew()  # the row is still there: renewed, live again
    assert lease.owner in live_owner_ids(site.engine)
    with site.engine.begin() as conn:  # another process gave it up for good
        conn.execute(gateway_process.delete().where(gateway_process.c.owner == lease.owner))
    assert not lease.renew()  # lost (logged), and inserted again
    assert lease.owner in live_owner_ids(site.engine)
    lease.release()


def test_heartbeat_thread_keeps_a_short_lease_alive(site: Site) -> None:
    lease = Lease(site.engine, seconds=1).start()
    try:
        first = row(site, lease.owner)
        assert first is not None
        deadline = time.monotonic() + 30
        while (renewed := row(site, lease.owner)) is not None and renewed["heartbeat_at"] == first[
            "heartbeat_at"
        ]:
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.05)  # polling the row for the heartbeat's renewal, with a deadline
    finally:
        lease.release()


def test_processes_of_this_machine_that_are_gone_are_reaped(site: Site) -> None:
    if not node_identity():
        pytest.skip("this platform does not tell boot id and PID namespace")
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid = int(ended.stdout)
    assert not pid_alive(dead_pid)
    rows = [
        ("a" * 32, node_identity(), dead_pid),  # this machine, process gone: reaped
        ("b" * 32, node_identity(), os.getppid()),  # this machine, alive: kept
        ("c" * 32, "another-machine/pid:[1]", dead_pid),  # elsewhere: only its lease counts
    ]
    with site.engine.begin() as conn:
        for owner, node, pid in rows:
            conn.execute(
                insert(gateway_process).values(
                    owner=owner,
                    host="h",
                    node=node,
                    pid=pid,
                    started_at=db_now(),
                    heartbeat_at=db_now(),
                    expires_at=db_now() + 600,
                )
            )
    me = Lease(site.engine).acquire()  # acquiring reaps
    assert live_owner_ids(site.engine) == {"b" * 32, "c" * 32, me.owner}
    me.release()
