"""Who waits for whom when the archive stores on PostgreSQL (issue 31, province size): a unit's upload
waits only for another store of the same unit and for a decision in progress, never for another
unit's store; a decision waits for a store in progress. Each waiting side is held by a real open
transaction that holds the lock, and let go by the test."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from archive_util import new_db, write_return

ROSTER = Path(__file__).resolve().parent.parent / "samples" / "roster.csv"
A, B = "152502001", "152502101"
STILL = 1.0  # seconds a blocked store is watched: it cannot finish while the lock is held, however slow the machine
DONE = 120.0  # seconds a free store may take on a busy machine


@pytest.fixture
def archive(tmp_path):
    from toolkit.archive import Archive

    url, cleanup = new_db("postgresql", tmp_path)
    with Archive.open(url) as a:
        a.load_roster(ROSTER, 2025)
        yield a
    cleanup()


def _in_thread(fn, *args, **kw) -> tuple[threading.Thread, list]:
    out: list = []

    def run() -> None:
        try:
            out.append(fn(*args, **kw))
        except Exception as e:  # shown by the assertion on ``out``
            out.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def _holding(archive, codes: set[str]):
    """An open transaction holding the locks a store of ``codes`` takes (receive._lock_units)."""
    from toolkit.archive.receive import _lock_units

    conn = archive.engine.connect()
    conn.begin()
    _lock_units(conn, 2025, codes)
    return conn


def test_a_store_waits_for_its_own_unit_only(archive, tmp_path):
    a_file, b_file = write_return(tmp_path / "a.xlsx", A, 2025), write_return(tmp_path / "b.xlsx", B, 2025)
    held = _holding(archive, {A})
    try:
        other, got_b = _in_thread(archive.receive, [b_file], 2025, only_unit=B)
        other.join(DONE)
        assert not other.is_alive() and got_b[0][0].outcome == "新收", got_b  # another unit's store never waits
        same, got_a = _in_thread(archive.receive, [a_file], 2025, only_unit=A)
        same.join(STILL)
        assert same.is_alive() and not got_a  # the unit's own store waits for the one in progress
    finally:
        held.rollback()
        held.close()
    same.join(DONE)
    assert not same.is_alive() and got_a[0][0].outcome == "新收", got_a
    assert [v.number for v in archive.versions(A, 2025)] == [1] and archive.state(A, 2025).status == "待审核"


def test_a_decision_waits_for_a_store_in_progress(archive, tmp_path):
    archive.receive([write_return(tmp_path / "b.xlsx", B, 2025)], 2025, only_unit=B)
    held = _holding(archive, {A})  # a store of another unit: it shares the year's lock that decisions hold alone
    try:
        decision, got = _in_thread(archive.reject, B, 2025, "封面未盖章")
        decision.join(STILL)
        assert decision.is_alive() and not got
    finally:
        held.rollback()
        held.close()
    decision.join(DONE)
    assert not decision.is_alive() and got[0][0].status == "退回", got
