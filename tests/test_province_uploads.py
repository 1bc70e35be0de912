"""What keeps one upload cheap when a province's clerks upload at once (issue 31, item 5): the roster
crosses to the checking worker packed once, the year's row is read once per answer, PostgreSQL reads
carry no BEGIN/ROLLBACK, old attempts are pruned once a minute, the server's connections stay open
and within PostgreSQL's limit. Each is tested for what it must not change as well as for the saving."""

from __future__ import annotations

import pickle
import re
import threading
import time
from pathlib import Path

import pytest
from archive_util import write_return
from sqlalchemy import event

from toolkit.archive import Archive
from toolkit.roster import Roster, Unit, _Unpacked

ROSTER = Path(__file__).resolve().parent.parent / "samples" / "roster.csv"
YEAR = 2025
UNIT = "152502201"


class Statements:
    """The SQL statements an archive sends while the block runs."""

    def __init__(self, archive: Archive):
        self.engine, self.sent = archive.engine, []

    def _seen(self, conn, cursor, statement, *args) -> None:  # noqa: ANN001 - SQLAlchemy's event signature
        self.sent.append(" ".join(statement.split()))

    def __enter__(self) -> list[str]:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self.sent

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def _years_read(sent: list[str]) -> int:
    return sum(1 for s in sent if re.search(r"\bFROM years\b", s))


def test_a_roster_crosses_to_a_worker_packed_and_is_unpacked_once():
    units = tuple(
        Unit(f"98{c:04d}{u:03d}", f"第{c}县第{u}单位", "镇", f"98{c:04d}", c * 100 + u) for c in range(40) for u in range(25)
    )
    ros = Roster(units, "省名册.csv")
    _Unpacked.last = None
    first = pickle.loads(pickle.dumps(ros))
    assert first == ros and first.get("980003007").name == "第3县第7单位" and first.source == "省名册.csv"
    assert pickle.loads(pickle.dumps(ros)) is first  # the same roster again: the one unpacked before
    assert len(pickle.dumps(ros)) < len(pickle.dumps(units)) + 1024  # the units once (no indexes), plus the digest
    changed = Roster((*units[:-1], Unit(units[-1].code, "改名的单位", "镇", units[-1].parent, units[-1].line)), "省名册.csv")
    other = pickle.loads(pickle.dumps(changed))
    assert other is not first and other.get(units[-1].code).name == "改名的单位"
    assert pickle.loads(pickle.dumps(ros)) == ros  # back to the first: unpacked anew, equal


def test_the_year_is_read_once_per_answer(db):
    """Within one answer the year's row is read once; a roster this archive loads is seen at once, one
    another process loads is seen by the next answer (as if this one had begun a moment earlier)."""
    with Archive.open(db) as a, Archive.open(db) as other:
        a.load_roster(ROSTER, YEAR)
        with Statements(a) as sent, a.answering():
            a.need_roster(YEAR)
            a.deadline(YEAR)
            a.auto_approve(YEAR)
            with a.reading():
                a.roster(YEAR)
        assert _years_read(sent) == 1

        def elsewhere(fn, *args) -> None:  # another process's load: not inside this answer
            t = threading.Thread(target=fn, args=args)
            t.start()
            t.join()

        with a.answering():
            before = a.need_roster(YEAR)
            smaller = Roster(before.units[:5], "少了单位的名册.csv")
            elsewhere(other.load_roster, smaller, YEAR)
            assert a.need_roster(YEAR) is before  # the answer goes on with the roster it began with
            a.load_roster(smaller, YEAR)  # this process's own load: seen at once
            assert len(a.need_roster(YEAR).units) == 5
            elsewhere(other.load_roster, before, YEAR)
            assert len(a.need_roster(YEAR).units) == 5
        assert a.need_roster(YEAR).units == before.units  # the next answer sees the other process's roster
        assert a.auto_approve(YEAR) is False


def test_an_upload_through_a_link_asks_the_archive_little(db, tmp_path):
    """One upload through a unit's link, start to page: the years' rows read once for the answer
    (this year's and last year's together, for the cross-year rules) and the automatic approval once
    inside the storing transaction (a roster load is serialised with it), and a bounded number of
    statements (15 on PostgreSQL; 21 before the place and the turn, the hour's two counts, and the
    digests seen with the automatic approval were asked together and an upload that stores a version
    stopped adding an attempt; 53 before issue 31): a regression that adds round trips to every upload
    shows here."""
    from web_util import web_client

    from toolkit.web import WebConfig, create_app
    from toolkit.web.keys import issue_links

    with Archive.open(db) as a:
        a.load_roster(ROSTER, YEAR, auto_approve=True)
        token = {x.unit_code: x.token for x in issue_links(a, YEAR)[0]}[UNIT]
    path = write_return(tmp_path / "return.xlsx", UNIT, YEAR)
    app = create_app(WebConfig(db=db, year=YEAR))
    with web_client(app) as client:
        page = client.get(f"/u/{token}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        with Statements(app.state.ctx.archive) as sent:
            answer = client.post(f"/u/{token}/upload", data={"csrf": csrf}, files={"files": (path.name, path.read_bytes())})
    assert answer.status_code == 200 and answer.text.count("新收") == 1
    assert "没有发现问题" in answer.text  # the findings shown are those of the version just stored
    assert _years_read(sent) == 2, sent
    counted = [s for s in sent if s.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA", "SAVEPOINT", "RELEASE")]
    assert len(counted) <= 15, "\n".join(counted)


def test_the_hour_counts_versions_and_the_uploads_that_stored_none(db, tmp_path):
    """A link's hour: the versions the link stored plus its uploads that stored no new version (a
    file sent again, a refusal); the county's own upload for the unit is not the link's. A stored
    version adds no attempt row (a statement saved on every upload); the same file again does; the
    next new file over the limit is refused, and told to wait until the oldest of them leaves the hour."""
    from web_util import web_client

    from toolkit.web import WebConfig, create_app
    from toolkit.web.keys import issue_links
    from toolkit.web.limits import Quotas

    with Archive.open(db) as a:
        a.load_roster(ROSTER, YEAR)
        token = {x.unit_code: x.token for x in issue_links(a, YEAR)[0]}[UNIT]
    county = write_return(tmp_path / "县里代传.xlsx", UNIT, YEAR, cover={"note": "县里代传"})
    with Archive.open(db) as a:
        assert a.receive([county], YEAR, source="管理页面")[0].submission_id
    first = write_return(tmp_path / "一.xlsx", UNIT, YEAR).read_bytes()
    second = write_return(tmp_path / "二.xlsx", UNIT, YEAR, cover={"note": "第二版"}).read_bytes()
    config = WebConfig(db=db, year=YEAR)
    config.quotas = Quotas(uploads_per_hour=2)
    app = create_app(config)
    archive = app.state.ctx.archive
    with web_client(app) as client:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get(f"/u/{token}").text).group(1)

        def upload(name: str, data: bytes):  # type: ignore[no-untyped-def]
            return client.post(f"/u/{token}/upload", data={"csrf": csrf}, files={"files": (name, data)})

        assert "新版本" in upload("一.xlsx", first).text
        assert archive.attempts("upload", UNIT, 3600)[0] == 0
        assert archive.usage(UNIT, YEAR, since="0").receipts == 1  # the link's own version only
        assert "重复" in upload("一.xlsx", first).text
        assert archive.attempts("upload", UNIT, 3600)[0] == 1
        refused = upload("二.xlsx", second)  # one version and one attempt: the limit of two
        assert refused.status_code == 429 and 3500 <= int(refused.headers["retry-after"]) <= 3600
        assert archive.attempts("upload", UNIT, 3600)[0] == 1  # refused before the check: not an attempt


def test_the_wait_is_until_the_oldest_of_the_hour_leaves():
    import datetime as dt

    from toolkit.archive.records import Usage
    from toolkit.web.limits import _hour_wait

    now = dt.datetime.now().astimezone()
    fifty_ago = (now - dt.timedelta(minutes=50)).isoformat()
    assert 595 <= _hour_wait(Usage(receipts=3, first_receipt=fifty_ago), now, 3) <= 601
    assert _hour_wait(Usage(receipts=1, first_receipt=fifty_ago, tried=2, tried_left=120.0), now, 3) == 121
    assert _hour_wait(Usage(tried=3, tried_left=10.0), now, 3) == 60  # at least a minute
    over = Usage(receipts=3, first_receipt=fifty_ago, tried=1, tried_left=10.0)
    assert _hour_wait(over, now, 3) == 3600  # over the limit: one leaving is not enough
    assert _hour_wait(Usage(), now, 0) == 3600


def test_an_attempt_the_database_cannot_count_leaves_the_answer_alone(caplog):
    """The attempt is counted after the upload was stored or refused: a database failing at that
    moment is logged, and the upload's own answer (or its own error) stands."""
    from sqlalchemy.exc import OperationalError

    from toolkit.web.limits import _count_attempt

    class Failing:
        def add_attempt(self, *args: object) -> None:
            raise OperationalError("INSERT INTO attempts", {}, Exception("database is locked"))

    _count_attempt(Failing(), UNIT)
    assert f"单位 {UNIT} 经链接的一次上传没有计入每小时次数" in caplog.text and "database is locked" in caplog.text


def test_old_attempts_are_pruned_at_most_once_a_minute(db):
    """Counting ignores attempts older than the window whether or not they were pruned yet; the first
    attempt of a kind prunes them, the next ones within the minute do not spend a statement on it."""
    from toolkit.archive import schema as T

    hour = 3600.0
    with Archive.open(db) as a:

        def old_row() -> None:
            with a.engine.begin() as conn:
                conn.execute(T.attempts.insert().values(kind="upload", subject=UNIT, at=time.time() - 2 * hour))

        def rows() -> int:
            with a.engine.connect() as conn:
                return len(conn.execute(T.attempts.select().where(T.attempts.c.kind == "upload")).all())

        old_row()
        a.add_attempt("upload", UNIT, hour)
        assert rows() == 1  # pruned on the way
        old_row()
        with Statements(a) as sent:
            a.add_attempt("upload", UNIT, hour)
        assert rows() == 3 and not any(s.startswith("DELETE") for s in sent)
        assert a.attempts("upload", UNIT, hour)[0] == 2  # the old one is not counted
        a._pruned["upload"] -= 61  # a minute later
        a.add_attempt("upload", UNIT, hour)
        assert rows() == 3 and a.attempts("upload", UNIT, hour)[0] == 3


def test_server_connections_stay_within_postgresql(db):
    """Each server process keeps connections for the requests it serves at once; all of them together
    stay within 80 of PostgreSQL's default 100, whatever ``--workers``."""
    from toolkit.archive import schema as T
    from toolkit.web.app import connections_per_process

    for workers in range(1, 17):
        assert connections_per_process(workers) * workers <= 80 or connections_per_process(workers) == 5
    assert connections_per_process(4) == 20
    if not db.startswith("postgresql"):
        pytest.skip("SQLite: one connection per thread, no pool to size")
    from psycopg.pq import TransactionStatus

    with Archive.open(db, connections=20) as a:
        assert a.engine.pool.size() == 15 and a.engine.pool._max_overflow == 5
        with a.reading() as conn:
            assert a.years() == []
            assert conn.connection.dbapi_connection.info.transaction_status == TransactionStatus.IDLE  # no BEGIN sent
        with a._read(streamed=True) as conn:  # a server-side cursor needs its transaction
            conn.execute(T.years.select()).all()
            assert conn.connection.dbapi_connection.info.transaction_status == TransactionStatus.INTRANS


def test_a_connection_idle_for_a_while_is_tried_before_use(db):
    """PostgreSQL: a pooled connection unused for a while is tried before it is handed out and replaced
    when the database dropped it (a restart); one used a moment ago goes out as it is — a drop in that
    moment fails one statement, and the next one gets a fresh connection."""
    if not db.startswith("postgresql"):
        pytest.skip("SQLite: no connection to a server")
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from toolkit.archive.db import IDLE_PING_SECONDS

    def backend(a: Archive) -> int:
        with a.engine.connect() as conn:
            return conn.execute(text("SELECT pg_backend_pid()")).scalar()

    def drop(pid: int) -> None:
        with Archive.open(db) as other, other.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()

    with Archive.open(db, connections=1) as a:
        first = backend(a)
        drop(first)
        a.engine.pool._pool.queue[0].info["used"] -= IDLE_PING_SECONDS + 1  # as if unused for a while
        second = backend(a)  # tried, found dropped, replaced: no error
        assert second != first
        drop(second)  # dropped right after its use: handed out untried
        with pytest.raises(DBAPIError):
            backend(a)
        assert backend(a) not in (first, second)


def test_uploads_worked_on_at_once_follow_the_cores(monkeypatch):
    """Twice a process's share of the cores, at least 2: a county's one process on 2 cores takes 4 at a
    time, each of a province's 4 workers on the same 2 cores 2, on 8 cores 4."""
    import os

    from toolkit.web.limits import uploads_at_once

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert (uploads_at_once(1), uploads_at_once(4)) == (4, 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert (uploads_at_once(1), uploads_at_once(4), uploads_at_once(16)) == (16, 4, 2)
