"""The archive under faults: two receive processes at once, SIGKILL in the middle of a receive,
databases that are not archives, archives of a newer nianbao, a server that does not answer."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from archive_util import BACKENDS, new_db
from conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
ROSTER = SAMPLES / "roster.csv"
RETURNS = sorted((SAMPLES / "returns").glob("*.xlsx"))


def _count(path: Path, table: str = "submissions") -> int:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def _popen(*args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "toolkit.cli", *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )


def test_two_receives_at_once_on_one_sqlite_file(tmp_path):
    db = tmp_path / "a.db"  # a new archive: both processes also race to create the schema
    assert run_cli("roster", "load", ROSTER, "--year", 2025, "--db", db).returncode == 0
    halves = (RETURNS[::2], RETURNS[1::2])
    procs = [_popen("receive", *half, "--year", 2025, "--db", db) for half in halves]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err
    assert _count(db) == len(RETURNS) == _count(db, "files")


def test_two_processes_create_one_archive(tmp_path):
    db = tmp_path / "new.db"
    procs = [_popen("roster", "load", ROSTER, "--year", y, "--db", db) for y in (2024, 2025)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert _count(db, "years") == 2


@pytest.mark.slow
def test_sigkill_during_receive_leaves_every_file_whole(tmp_path):
    db = tmp_path / "k.db"
    assert run_cli("roster", "load", ROSTER, "--year", 2025, "--db", db).returncode == 0
    p = _popen("receive", *RETURNS, "--year", 2025, "--db", db)
    deadline = time.monotonic() + 120
    while _count(db) < 3 and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    stored = _count(db)  # files are stored a batch at a time (one transaction each): all of one, or none
    assert stored > 0
    con = sqlite3.connect(db)
    orphans = con.execute("SELECT count(*) FROM submissions s LEFT JOIN files f ON f.sha256 = s.sha256 WHERE f.sha256 IS NULL")
    assert orphans.fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM files").fetchone()[0] == stored
    con.close()
    res = run_cli("verify", "--db", db)
    assert res.returncode == 0, res.stderr
    res = run_cli("receive", *RETURNS, "--year", 2025, "--db", db)  # the rest comes in, nothing twice
    assert res.returncode == 0, res.stderr
    assert _count(db) == len(RETURNS)


def test_ctrl_c_during_receive_says_how_many_files_were_stored(tmp_path):
    """Issue 27: Ctrl-C in the middle of a long receive says how many files are in the archive (each
    whole), not "没有写出任何文件"; exit code 130."""
    import zipfile

    folder = tmp_path / "收到"
    folder.mkdir()
    for n in range(24):  # 528 distinct files (a zip comment changes the bytes, not the return)
        for src in RETURNS:
            target = folder / f"{n:02d}_{src.name}"
            target.write_bytes(src.read_bytes())
            with zipfile.ZipFile(target, "a") as z:
                z.comment = f"copy {n}".encode()
    db = tmp_path / "i.db"
    assert run_cli("roster", "load", ROSTER, "--year", 2025, "--db", db).returncode == 0
    p = _popen("receive", folder, "--year", 2025, "--db", db)
    deadline = time.monotonic() + 120
    while _count(db) < 3 and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    stored = _count(db)
    assert p.returncode == 130, err
    assert 0 < stored < 528 and f"已完整存入档案库 {stored} 个文件" in err and "没有写出任何文件" not in err, err
    assert "Traceback" not in err


def test_bytes_are_stored_unchanged(tmp_path):
    from toolkit.archive import Archive

    with Archive.open(tmp_path / "b.db") as archive:
        archive.load_roster(ROSTER, 2025)
        got = archive.receive(RETURNS[:3], 2025)
        for path, r in zip(RETURNS[:3], got, strict=True):
            assert archive.file_bytes(r.report.provenance.sha256) == path.read_bytes()
        assert archive.verify() == []


def test_backup_is_an_archive(tmp_path):
    from toolkit.archive import Archive

    with Archive.open(tmp_path / "b.db") as archive:
        archive.load_roster(ROSTER, 2025)
        archive.receive(RETURNS[:2], 2025)
        archive.backup(tmp_path / "copy.db")
    with Archive.open(tmp_path / "copy.db") as copy:
        assert [s.status for s in copy.status(2025)].count("待审核") == 2
    res = run_cli("backup", "--out", tmp_path / "copy.db", "--db", tmp_path / "b.db")
    assert res.returncode == 2 and "已存在" in res.stderr


def test_page_size_of_new_and_older_archives(tmp_path, monkeypatch):
    """A new archive gets the larger pages that store files cheaply; an archive made with SQLite's
    default pages (every archive before) keeps them and goes on receiving."""
    import sqlite3

    from toolkit.archive import Archive, db

    def page_size(path) -> int:
        con = sqlite3.connect(path)
        try:
            return con.execute("PRAGMA page_size").fetchone()[0]
        finally:
            con.close()

    with Archive.open(tmp_path / "new.db") as archive:
        archive.load_roster(ROSTER, 2025)
        archive.receive(RETURNS[:1], 2025)
    assert page_size(tmp_path / "new.db") == db.PAGE_SIZE == 16384

    monkeypatch.setattr(db, "PAGE_SIZE", 4096)  # as every archive was made before
    with Archive.open(tmp_path / "old.db") as archive:
        archive.load_roster(ROSTER, 2025)
        archive.receive(RETURNS[:1], 2025)
    monkeypatch.undo()
    with Archive.open(tmp_path / "old.db") as archive:
        archive.receive(RETURNS[1:3], 2025)
        assert [s.status for s in archive.status(2025)].count("待审核") == 3
    assert page_size(tmp_path / "old.db") == 4096


def _refused(res, *words: str) -> None:
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "错误" in res.stderr
    for w in words:
        assert w in res.stderr, res.stderr


def test_not_a_database(tmp_path):
    bad = tmp_path / "年报.db"
    bad.write_bytes(b"PK\x03\x04 this is a spreadsheet, not a database" * 100)
    before = bad.read_bytes()
    _refused(run_cli("status", "--year", 2025, "--db", bad), "不是 nianbao 档案库")
    assert bad.read_bytes() == before


def test_corrupted_archive(tmp_path):
    db = tmp_path / "c.db"
    assert run_cli("roster", "load", ROSTER, "--year", 2025, "--db", db).returncode == 0
    assert run_cli("receive", *RETURNS[:4], "--year", 2025, "--db", db).returncode == 0
    data = bytearray(db.read_bytes())
    for i in range(4096, len(data), 4096):
        data[i : i + 200] = b"\xff" * 200  # every page but the header scribbled over
    db.write_bytes(bytes(data))
    _refused(run_cli("status", "--year", 2025, "--db", db), "已损坏")


def test_foreign_database(tmp_path):
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()
    _refused(run_cli("status", "--year", 2025, "--db", other), "不是 nianbao 档案库", "其他程序")
    con = sqlite3.connect(other)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["customers"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_newer_schema(backend, tmp_path):
    url, cleanup = new_db(backend, tmp_path)
    try:
        from sqlalchemy import text

        from toolkit.archive import Archive

        with Archive.open(url) as archive, archive.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
        _refused(run_cli("status", "--year", 2025, "--db", url), "更新版本", "9999_future")
    finally:
        cleanup()


def test_server_that_does_not_answer(tmp_path):
    _refused(run_cli("status", "--year", 2025, "--db", "postgresql://nianbao@127.0.0.1:1/archive"), "无法连接")
    _refused(run_cli("status", "--year", 2025, "--db", tmp_path / "没有的文件夹" / "a.db"), "文件夹不存在")


def test_default_location_and_env(tmp_path, monkeypatch):
    from toolkit.archive import resolve_url

    monkeypatch.delenv("NIANBAO_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_url(None) == f"sqlite:///{tmp_path / 'nianbao.db'}"
    monkeypatch.setenv("NIANBAO_DB", str(tmp_path / "x.db"))
    assert resolve_url(None).endswith("x.db")
    assert resolve_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"


def test_schema_head_is_the_newest_migration():
    from toolkit.archive.db import SCHEMA_HEAD, head_revision

    assert head_revision() == SCHEMA_HEAD


@pytest.mark.slow
def test_archive_benchmark_smoke():
    r = subprocess.run(
        [sys.executable, "benchmarks/bench_archive.py", "--n", "20", "--repeat", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "NIANBAO_TEST_PG"},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "sqlite" in r.stdout and "size÷files" in r.stdout and "the best of 2 rounds" in r.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_receives_of_the_same_files(backend, tmp_path):
    """Two reviewers receive the same mail at once: every file is stored once (one version, and the
    second receipt recorded as 重复收到), both succeed."""
    url, cleanup = new_db(backend, tmp_path)
    try:
        assert run_cli("roster", "load", ROSTER, "--year", 2025, "--db", url).returncode == 0
        procs = [_popen("receive", *RETURNS[:8], "--year", 2025, "--db", url) for _ in range(2)]
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
        from toolkit.archive import Archive

        with Archive.open(url) as archive:
            assert [h.kind for h in archive.history("152502001", 2025)] == ["收到", "重复收到"]
            assert sum(1 for s in archive.status(2025) if s.status == "待审核" and s.version == 1) == 8
    finally:
        cleanup()


def test_archive_backup_and_links_are_readable_by_their_owner_only(tmp_path):
    """Issue 26.10: the archive (and its -wal/-shm while in use), a backup and the links file hold
    every unit's returns or the keys to upload as a unit: created 0600 even under a lenient umask."""
    import stat

    from toolkit.archive import Archive

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    old = os.umask(0o002)  # a machine where every new file is readable by everyone
    try:
        db = tmp_path / "nianbao.db"
        assert run_cli("roster", "load", ROSTER, "--year", 2025, "--db", db).returncode == 0
        assert mode(db) == 0o600
        with Archive.open(db) as archive, archive.engine.connect() as conn:  # in use: -wal and -shm exist
            from sqlalchemy import text

            conn.execute(text("UPDATE years SET roster_source = roster_source"))
            side = [tmp_path / "nianbao.db-wal", tmp_path / "nianbao.db-shm"]
            assert all(p.exists() for p in side) and {mode(p) for p in side} == {0o600}
            conn.rollback()
        assert run_cli("backup", "--out", tmp_path / "备份.db", "--db", db).returncode == 0
        assert mode(tmp_path / "备份.db") == 0o600
        res = run_cli("links", "--year", 2025, "--base-url", "http://10.1.2.3:8000", "--out", tmp_path / "链接.csv", "--db", db)
        assert res.returncode == 0, res.stderr
        assert mode(tmp_path / "链接.csv") == 0o600
        run_cli("export", "--year", 2025, "--out", tmp_path / "明细.csv", "--db", db)
        assert mode(tmp_path / "明细.csv") == 0o664  # other outputs keep what the umask gives
    finally:
        os.umask(old)
