"""`nianbao serve --workers 4` on one PostgreSQL archive (issue 31): a real server of four worker
processes on loopback, a roster of 100 units. What the workers must agree on is in the database, so
every test here makes one worker answer a request and another the next: the other workers are
paused (SIGSTOP) while a connection is made, and a paused process cannot accept it. Skipped without
$NIANBAO_TEST_PG (a PostgreSQL server, as .ci/pg starts one); the SQLite refusal runs everywhere."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from archive_util import PG_ENV, cli_ok, new_db, write_return
from conftest import run_cli
from web_util import YEAR, Served, page_csrf

from toolkit.archive import Archive
from toolkit.web.keys import issue_links

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

COUNTY = "152502"
UNITS = [f"{COUNTY}{n:03d}" for n in range(1, 103)]  # 100 for the concurrent uploads, 2 for the turn tests
KEY = "市级审核人的管理密钥-0123456789abcdef"
WORKERS = 4


def _roster(path: Path) -> Path:
    lines = ["单位代码,单位名称,单位类型,上级代码", f"{COUNTY},锡林浩特市人民政府,县级政府,152500"]
    lines += [f"{code},测试{code[-3:]}街道,街道,{COUNTY}" for code in UNITS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Workers:
    """The served archive, its worker processes, and a way to have one of them take a connection."""

    def __init__(self, server: Served, url: str, tokens: dict[str, str], returns: dict[str, Path]):
        self.server, self.url, self.tokens, self.returns = server, url, tokens, returns

    def pids(self) -> list[int]:
        """The supervisor's worker processes (children of `nianbao serve` started by multiprocessing)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.server.proc.pid and b"spawn_main" in cmd:
                found.append(int(entry.name))
        return sorted(found)

    @contextlib.contextmanager
    def only(self, pid: int):
        """Every worker but ``pid`` paused: a connection made now is accepted by ``pid``."""
        others = [p for p in self.pids() if p != pid]
        for p in others:
            with contextlib.suppress(ProcessLookupError):  # replaced by the supervisor meanwhile
                os.kill(p, signal.SIGSTOP)
        try:
            yield
        finally:
            for p in others:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGCONT)

    def client(self) -> httpx.Client:
        """A browser on a new connection per request (no keep-alive: each request may go elsewhere)."""
        return httpx.Client(
            base_url=self.server.base,
            timeout=120,
            headers={"Origin": self.server.base},
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def on(self, pid: int, fn, *args, **kw):
        with self.only(pid):
            return fn(*args, **kw)


def _advisory_locks(url: str) -> int:
    """Advisory locks held in the archive's database by the server (the test's own excluded)."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()[0]


def _wait(what, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("not reached in time")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not os.environ.get(PG_ENV):
        pytest.skip(f"{PG_ENV} is not set (URL of a PostgreSQL server)")
    tmp = tmp_path_factory.mktemp("workers")
    url, drop = new_db("postgresql", tmp)
    roster = _roster(tmp / "roster.csv")
    with Archive.open(url) as archive:
        archive.load_roster(roster, YEAR)
        made, _ = issue_links(archive, YEAR)
    tokens = {link.unit_code: link.token for link in made}
    returns = {code: write_return(tmp / f"{code}.xlsx", code, YEAR, roster=roster) for code in UNITS}
    keyfile = tmp / "key.txt"
    keyfile.write_text(KEY, encoding="utf-8")
    server = Served(url, "--workers", str(WORKERS), "--admin-key-file", str(keyfile), log=tmp / "serve.log")
    try:
        server.wait_ready(timeout=120)
        w = Workers(server, url, tokens, returns)
        w.roster, w.keyfile = roster, keyfile
        _wait(lambda: len(w.pids()) == WORKERS)
        yield w
    finally:
        server.stop()
        log = (tmp / "serve.log").read_text("utf-8", "replace")
        drop()
    assert "Traceback" not in log, log
    assert server.proc.returncode == 128 + signal.SIGTERM, (server.proc.returncode, log)  # stopped as README says


def _upload(w: Workers, code: str, data: bytes | None = None) -> httpx.Response:
    with w.client() as c:
        csrf = page_csrf(c.get(f"/u/{w.tokens[code]}").text)
        files = {"files": (f"{code}.xlsx", data if data is not None else w.returns[code].read_bytes())}
        return c.post(f"/u/{w.tokens[code]}/upload", data={"csrf": csrf}, files=files)


def _receipts(url: str) -> list[tuple[str, str]]:
    """(unit code, stored file's sha256) of every receipt of the year."""
    from sqlalchemy import select

    from toolkit.archive import schema as T

    with Archive.open(url) as archive, archive.engine.connect() as conn:
        S = T.submissions
        return [tuple(r) for r in conn.execute(select(S.c.unit_code, S.c.sha256).where(S.c.year == YEAR))]


def test_a_session_and_its_form_token_are_good_on_every_worker(served):
    w = served
    pids = w.pids()
    with w.client() as c:
        login_page = w.on(pids[0], c.get, "/login")
        assert login_page.status_code == 200
        csrf = page_csrf(login_page.text)  # made by the first worker …
        r = w.on(pids[1], c.post, "/login", data={"csrf": csrf, "key": KEY})  # … accepted by the second
        assert r.status_code == 303, r.text
        for pid in pids:  # the session, made by the second, is good on each
            page = w.on(pid, c.get, "/")
            assert page.status_code == 200 and "报送情况" in page.text, pid
        form_token = page_csrf(page.text)  # the session's token, from the last worker
        out = w.on(pids[2], c.post, "/logout", data={"csrf": form_token})
        assert out.status_code == 303
        for pid in pids:  # ended on one worker, refused by every one
            gone = w.on(pid, c.get, "/")
            assert gone.status_code == 303 and gone.headers["location"] == "/login", pid
    with w.client() as stranger:  # a token of no visitor of this archive is refused on each
        for pid in pids:
            bad = w.on(pid, stranger.post, "/login", data={"csrf": "0" * 64, "key": KEY})
            assert bad.status_code == 403


def test_one_unit_takes_its_turn_on_every_worker(served):
    """The test holds the unit's turn as a fifth process would (a worker checking a slow file):
    uploads of the unit taken by four different workers wait in the unit's four places; a fifth is
    refused at once (three waiting is the limit, whichever worker took them); nothing is checked or
    stored until the turn is let go, then each is, once."""
    w = served
    code = UNITS[-1]
    datas = [
        write_return(w.returns[code].with_name(f"v{n}.xlsx"), code, YEAR, roster=w.roster, cover={"note": f"第{n}版"})
        for n in range(5)
    ]
    with Archive.open(w.url) as archive:
        held = archive.process_locks()
        assert held.take_first([f"turn\0{code}"])
        try:
            base = _advisory_locks(w.url)
            with cf.ThreadPoolExecutor(4) as pool:
                futures = []
                for n, pid in enumerate(w.pids()):
                    with w.only(pid):
                        futures.append(pool.submit(_upload, w, code, datas[n].read_bytes()))
                        _wait(lambda n=n: _advisory_locks(w.url) >= base + n + 1)  # its place taken, on this worker
                refused = _upload(w, code, datas[4].read_bytes())
                assert refused.status_code == 429 and "排队" in refused.text, refused.status_code
                assert not any(f.done() for f in futures)
                assert [c for c, _ in _receipts(w.url) if c == code] == []  # none checked while the turn is held
                held.release(f"turn\0{code}")
                answers = [f.result() for f in futures]
        finally:
            held.close()
    assert [r.status_code for r in answers] == [200] * 4, [r.text[-500:] for r in answers]
    assert sorted(sha for c, sha in _receipts(w.url) if c == code) == sorted(
        __import__("hashlib").sha256(d.read_bytes()).hexdigest() for d in datas[:4]
    )


def test_a_killed_worker_leaves_no_unit_blocked(served):
    """A worker killed while it holds a unit's place: the database lets its locks go with its
    connection, and the unit's next upload is taken (the supervisor starts a new worker)."""
    w = served
    code = UNITS[-2]
    with Archive.open(w.url) as archive:
        held = archive.process_locks()
        assert held.take_first([f"turn\0{code}"])
        base = _advisory_locks(w.url)
        victim = w.pids()[0]
        with cf.ThreadPoolExecutor(1) as pool:
            with w.only(victim):
                future = pool.submit(_upload, w, code)
                _wait(lambda: _advisory_locks(w.url) > base)
            os.kill(victim, signal.SIGKILL)
            with pytest.raises(httpx.HTTPError):
                future.result()
        _wait(lambda: _advisory_locks(w.url) == base)  # its place released by PostgreSQL
        held.close()
    _wait(lambda: len(w.pids()) == WORKERS and victim not in w.pids())
    assert _upload(w, code).status_code == 200
    assert [c for c, _ in _receipts(w.url)].count(code) == 1


def test_100_concurrent_uploads_each_stored_once(served):
    w = served
    todo = UNITS[:100]  # the units the tests above did not use
    assert not {c for c, _ in _receipts(w.url)} & set(todo)
    with cf.ThreadPoolExecutor(len(todo)) as pool:
        answers = dict(zip(todo, pool.map(lambda c: _upload(w, c), todo), strict=True))
    bad = {c: r.status_code for c, r in answers.items() if r.status_code != 200}
    assert not bad, bad
    for code, r in answers.items():  # acknowledged once, as the unit's own
        assert r.text.count("新收") == 1, (code, r.text[-800:])
        assert f"测试{code[-3:]}街道" in r.text
    import hashlib

    stored = [(c, sha) for c, sha in _receipts(w.url) if c in answers]
    assert sorted(stored) == sorted((c, hashlib.sha256(w.returns[c].read_bytes()).hexdigest()) for c in todo)


def test_wrong_keys_are_counted_across_workers(served):
    """Five wrong keys, each through another worker, lock the address out on every worker."""
    w = served
    pids = w.pids()
    with w.client() as c:
        for n in range(5):
            pid = pids[n % len(pids)]
            csrf = page_csrf(w.on(pid, c.get, "/login").text)
            assert w.on(pid, c.post, "/login", data={"csrf": csrf, "key": f"错误的密钥{n:016d}"}).status_code == 403
        for pid in pids:
            csrf = page_csrf(w.on(pid, c.get, "/login").text)
            r = w.on(pid, c.post, "/login", data={"csrf": csrf, "key": KEY})
            assert r.status_code == 429 and "连续输错 5 次" in r.text, (pid, r.status_code)


def test_ctrl_c_stops_every_worker(served, tmp_path):
    """Ctrl-C in the terminal (SIGINT to the whole process group): every worker stops without a
    traceback, and serve exits 130 like every command. A second server on the same archive, as a
    restart beside a running one would be."""
    w = served
    log = tmp_path / "second.log"
    second = Served(w.url, "--workers", "2", "--admin-key-file", str(w.keyfile), log=log, preexec_fn=os.setsid)
    try:
        second.wait_ready(timeout=120)
        workers = Workers(second, w.url, w.tokens, w.returns)
        pids = _wait(lambda: len(workers.pids()) == 2 and workers.pids())
        assert httpx.get(second.base + "/login", timeout=60).status_code == 200
        os.killpg(second.proc.pid, signal.SIGINT)
        assert second.proc.wait(60) == 130
    finally:
        second.stop()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    text = log.read_text("utf-8", "replace")
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text


def test_ctrl_c_while_the_workers_start(served, tmp_path):
    """Ctrl-C at once after `serve --workers` said it started, while its workers are still importing
    (a user who notices a wrong option): exit 130, no traceback from any worker, at any moment of it."""
    w = served
    for delay in (0.0, 0.2, 0.6):
        log = tmp_path / f"early-{delay}.log"
        early = Served(w.url, "--workers", "2", "--admin-key-file", str(w.keyfile), log=log, preexec_fn=os.setsid)
        try:
            _wait(lambda log=log: "个工作进程" in log.read_text("utf-8", "replace"))
            time.sleep(delay)
            os.killpg(early.proc.pid, signal.SIGINT)
            assert early.proc.wait(60) == 130
        finally:
            early.stop()
        text = log.read_text("utf-8", "replace")
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, (delay, text)


def test_a_worker_that_cannot_start_stops_serve_with_exit_3(served, tmp_path):
    """The database refuses a worker after serve's own checks passed (here: a role allowed one
    connection, which the first worker takes): every worker stops, serve says why in Chinese and
    exits 3, without a traceback."""
    import uuid

    import psycopg

    w = served
    role = "nb_one_" + uuid.uuid4().hex[:8]
    with psycopg.connect(w.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 1")
        conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        conn.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    try:
        url = w.url.replace("postgres@", f"{role}@", 1)
        log = tmp_path / "one.log"
        one = Served(url, "--workers", "2", "--admin-key-file", str(w.keyfile), log=log)
        try:
            assert one.proc.wait(120) == 3
        finally:
            one.stop()
        text = log.read_text("utf-8", "replace")
        assert "工作进程无法启动" in text and "报送网页已停止" in text and "Traceback" not in text, text
        assert "Child process" not in text, text  # uvicorn's own lines said in Chinese
    finally:
        with psycopg.connect(w.url, autocommit=True) as conn:
            conn.execute(f"REASSIGN OWNED BY {role} TO postgres")
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_workers_do_not_outlive_a_killed_serve(served, tmp_path):
    """`serve` killed outright (SIGKILL: no chance to stop its workers): the workers end too, instead
    of serving the port with nobody to stop them."""
    w = served
    second = Served(w.url, "--workers", "2", "--admin-key-file", str(w.keyfile), log=tmp_path / "killed.log")
    try:
        second.wait_ready(timeout=120)
        workers = Workers(second, w.url, w.tokens, w.returns)
        pids = _wait(lambda: len(workers.pids()) == 2 and workers.pids())
        second.proc.kill()
        second.proc.wait(60)
    finally:
        second.stop()

    def gone(pid: int) -> bool:
        status = Path(f"/proc/{pid}/status")
        return not status.exists() or "zombie" in status.read_text().lower()

    _wait(lambda: all(gone(p) for p in pids))
    with pytest.raises(httpx.HTTPError):
        httpx.get(second.base + "/login", timeout=5)


def test_a_place_and_the_turn_in_one_call(db):
    """``take_first_with``: the first free place and, with it, the turn when free; never the turn
    without a place; a turn held elsewhere (another process on PostgreSQL, this one too) stays
    theirs while the place is still taken."""
    with Archive.open(db) as a, Archive.open(db) as b:
        mine, theirs = a.process_locks(), b.process_locks()
        other = theirs if a.engine.dialect.name == "postgresql" else mine
        assert mine.take_first_with(["p0", "p1"], "t") == ("p0", True)
        mine.release("t")
        assert other.take_first(["t"]) == "t"  # the turn is busy elsewhere: the place alone
        assert mine.take_first_with(["p0", "p1"], "t") == ("p1", False)
        assert mine.take_first_with(["p0", "p1"], "u") == (None, False)
        assert other.take_first(["u"]) == "u"  # no place, so "u" was never taken
        other.release("t", "u")
        mine.release("p0")
        assert mine.take_first_with(["p0"], "t") == ("p0", True)
        assert other.take_first(["t"]) is None
        mine.close()
        theirs.close()


def test_locks_and_attempts_of_the_archive(db):
    """What the workers share, on both databases: a lock name held is refused to every other holder
    (another process on PostgreSQL, this one too) until let go; attempts counted in a window."""
    with Archive.open(db) as a, Archive.open(db) as b:
        mine, theirs = a.process_locks(), b.process_locks()
        assert mine.take_first(["x", "y"]) == "x"
        assert mine.take_first(["x", "y"]) == "y"  # never the same name twice, not even in one process
        assert mine.take_first(["x", "y"]) is None
        shared = a.engine.dialect.name == "postgresql"  # SQLite: one server process, its own memory
        if shared:
            assert theirs.take_first(["x", "y"]) is None
        mine.release("x")
        assert (theirs if shared else mine).take_first(["x"]) == "x"
        mine.close()
        theirs.close()
        for _ in range(3):
            a.add_attempt("login", "10.0.0.7", 600)
        count, left = b.attempts("login", "10.0.0.7", 600)
        assert count == 3 and 590 < left <= 600
        used = b.usage("10.0.0.7", 2025, attempts=("login", 600))  # the same count, with a unit's usage
        assert used.tried == 3 and 590 < used.tried_left <= 600 and used.bytes == 0
        assert (b.usage("10.0.0.8", 2025, attempts=("login", 600)).tried, b.usage("10.0.0.8", 2025).tried) == (0, 0)
        assert b.attempts("login", "10.0.0.8", 600) == (0, 0.0)
        b.clear_attempts("login", "10.0.0.7")
        assert a.attempts("login", "10.0.0.7", 600)[0] == 0


def test_several_workers_need_postgresql(tmp_path):
    db = tmp_path / "nianbao.db"
    res = cli_ok(run_cli("serve", "--year", str(YEAR), "--workers", "2", "--db", db), 2)
    assert "PostgreSQL" in res.stderr + res.stdout and "SQLite" in res.stderr + res.stdout
    assert not db.exists()  # refused before anything was made
