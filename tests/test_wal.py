"""Backups while serving: a serving SQLite archive keeps recent uploads in its write-ahead log until a
checkpoint; the server checkpoints regularly, so the archive file alone is never far behind, and
`status` warns when the log has grown large."""

from __future__ import annotations

import shutil
import sqlite3
import time

from web_util import RETURNS, YEAR, new_archive, page_csrf, sample, web_client

from toolkit.archive import Archive
from toolkit.web import WebConfig, create_app

BAOLIGEN = "152502201"


def _submissions_in_file_alone(db, tmp_path) -> int:
    """How many versions a plain copy of the archive file (without its -wal) holds."""
    copy = tmp_path / "copy.db"
    shutil.copyfile(db, copy)
    with sqlite3.connect(copy) as conn:
        return conn.execute("SELECT count(*) FROM submissions").fetchone()[0]


def test_checkpoint_moves_the_log_into_the_file(tmp_path):
    db = tmp_path / "nianbao.db"
    new_archive(db)
    with Archive.open(str(db)) as archive:
        archive.receive(sorted(RETURNS.glob("*.xlsx"))[:5], YEAR)
        assert archive.wal_file().stat().st_size > 0  # the open engine keeps the log
        assert _submissions_in_file_alone(db, tmp_path) == 0  # a plain copy of the file misses them
        assert archive.checkpoint() is True
        assert archive.wal_file().stat().st_size == 0
        assert _submissions_in_file_alone(db, tmp_path) == 5


def test_the_server_checkpoints_while_it_serves(tmp_path):
    db = tmp_path / "nianbao.db"
    tokens = new_archive(db)
    app = create_app(WebConfig(db=str(db), year=YEAR, checkpoint_seconds=0.2))
    with web_client(app) as client:  # runs the server's lifespan, as uvicorn does
        link = f"/u/{tokens[BAOLIGEN]}"
        path = sample(BAOLIGEN)
        page = client.get(link)
        got = client.post(link + "/upload", data={"csrf": page_csrf(page.text)}, files={"files": (path.name, path.read_bytes())})
        assert got.status_code == 200
        deadline = time.monotonic() + 60  # generous: the point is that it happens while serving
        while _submissions_in_file_alone(db, tmp_path) == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _submissions_in_file_alone(db, tmp_path) == 1


def test_status_warns_when_the_log_is_large(tmp_path, cli, monkeypatch):
    import toolkit.cli.archive as archive_cli

    db = tmp_path / "nianbao.db"
    new_archive(db)
    with Archive.open(str(db)) as archive:  # held open, like a running server: the log stays
        archive.receive(sorted(RETURNS.glob("*.xlsx"))[:3], YEAR)
        quiet = cli("status", "--year", str(YEAR), "--db", db)
        assert quiet.returncode == 0
        assert "预写日志" not in quiet.stderr
        monkeypatch.setattr(archive_cli, "WAL_WARN_BYTES", 1)
        loud = cli("status", "--year", str(YEAR), "--db", db)
        assert loud.returncode == 0
        assert "预写日志" in loud.stderr and "nianbao backup" in loud.stderr
