"""Helpers of the archive tests: a database per test (SQLite file, or a fresh PostgreSQL database on
the server named by $NIANBAO_TEST_PG), and returns of any year built with the tool's own writer."""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

import pytest

PG_ENV = "NIANBAO_TEST_PG"
BACKENDS = ["sqlite", "postgresql"]


def new_db(backend: str, tmp_path: Path):
    """(url, cleanup) of an empty archive location."""
    if backend == "sqlite":
        return str(tmp_path / "archive.db"), lambda: None
    server = os.environ.get(PG_ENV)
    if not server:
        pytest.skip(f"{PG_ENV} is not set (URL of a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/postgres)")
    import psycopg

    name = "nb_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base, _, _ = server.rpartition("/")

    def drop() -> None:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    return f"{base}/{name}", drop


def cli_ok(res, code: int = 0):
    """A command's result, asserted to have exited with ``code`` and without a traceback."""
    assert res.returncode == code, res.stderr + res.stdout
    assert "Traceback" not in res.stderr
    return res


def write_return(
    path: Path, code: str, year: int, values: dict | None = None, roster: Path | None = None, cover: dict | None = None
) -> Path:
    """A consistent return of roster unit ``code`` for ``year`` (``values`` override the random ones,
    ``cover`` the cover's fields: filler, phone, date, note)."""
    from toolkit.roster import load_roster
    from toolkit.spec import current_format
    from toolkit.synth import random_values
    from toolkit.template import ReturnContent
    from toolkit.template import write_return as write

    fmt = current_format()
    ros = load_roster(roster or Path(__file__).resolve().parent.parent / "samples" / "roster.csv")
    vals = random_values(fmt, random.Random(f"{code}-{year}")) | (values or {})
    fields = {"filler": "测试员", "phone": "0479-1234567", "date": f"{year + 1}-01-10"} | (cover or {})
    return write(path, fmt, ReturnContent(unit=ros.get(code), year=year, values=vals, cover=fields))
