"""The archive against the folder workflow it replaces.

    python benchmarks/bench_archive.py                  # N = 500
    python benchmarks/bench_archive.py --n 10000        # the issue's targets
    python benchmarks/bench_archive.py --n 200 --pg postgresql://postgres@127.0.0.1:5432/postgres

Generates N returns (benchmarks/bench.py: mostly zeros, a few busy departments, ~1% with an error)
and measures, each command in a fresh process:
  check        `nianbao check DIR --roster R --year Y` (the reference; the faster of a run just
               before and one just after receive, as the machine's load varies)
  receive      `nianbao receive DIR --year Y --db A` into an empty archive  target ≤ 1.2 × check
  consolidate  `nianbao consolidate --db A --year Y --force`                target ≤ 3 s at N = 10,000
  status       ``Archive.status(Y)`` in this process (library call)        target ≤ 0.5 s at N = 10,000
  size         archive size / total size of the received files              target ≤ 1.3
The same on PostgreSQL with --pg (or $NIANBAO_TEST_PG): reported, no target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench import YEAR, generate, measure, units_for, write_roster  # noqa: E402

CLI = [sys.executable, "-m", "toolkit.cli"]


def _status_seconds(db: str) -> float:
    from toolkit.archive import Archive

    with Archive.open(db) as archive:
        archive.status(YEAR)  # warm: connection and roster
        t = time.perf_counter()
        archive.status(YEAR)
        return time.perf_counter() - t


def _sqlite_size(path: Path) -> int:
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def _pg_size(url: str) -> int:
    from sqlalchemy import create_engine, text

    from toolkit.archive.db import resolve_url

    eng = create_engine(resolve_url(url))
    with eng.connect() as conn:
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    eng.dispose()
    return int(size)


def _new_pg(server: str) -> str:
    import psycopg

    name = "nb_bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rpartition("/")[0] + "/" + name


def _check(folder: Path, roster: Path) -> float:
    return measure([*CLI, "check", str(folder), "--roster", str(roster), "--year", str(YEAR)])["seconds"]


def run_backend(label: str, db: str, folder: Path, roster: Path, work: Path) -> dict:
    rc = measure([*CLI, "roster", "load", str(roster), "--year", str(YEAR), "--db", db])
    assert rc["exit"] == 0, rc
    before = _check(folder, roster)  # check right before and after receive: the machine's load varies
    rec = measure([*CLI, "receive", str(folder), "--year", str(YEAR), "--db", db])
    check_s = min(before, _check(folder, roster))
    out = work / f"汇总-{label}.xlsx"
    con = measure([*CLI, "consolidate", "--db", db, "--year", str(YEAR), "--out", str(out), "--force"])
    status_s = _status_seconds(db)
    files = sum(p.stat().st_size for p in folder.glob("*.xlsx"))
    size = _sqlite_size(Path(db)) if label == "sqlite" else _pg_size(db)
    return {
        "backend": label,
        "check_s": check_s,
        "receive_s": rec["seconds"],
        "receive_ratio": rec["seconds"] / check_s,
        "consolidate_s": con["seconds"],
        "status_s": status_s,
        "size_ratio": size / files,
        "rc": (rec["exit"], con["exit"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500, help="number of returns (default 500)")
    ap.add_argument("--pg", default=None, help="PostgreSQL server URL (default: $NIANBAO_TEST_PG, else SQLite only)")
    args = ap.parse_args()
    import os

    pg = args.pg or os.environ.get("NIANBAO_TEST_PG")
    with tempfile.TemporaryDirectory(prefix="nianbao-bench-archive-") as tmp:
        work = Path(tmp)
        units = units_for(args.n)
        roster, folder = work / "roster.csv", work / "returns"
        write_roster(roster, units)
        t = time.perf_counter()
        generate(folder, units)
        print(f"generated {args.n} returns in {time.perf_counter() - t:.1f} s")
        rows = [run_backend("sqlite", str(work / "archive.db"), folder, roster, work)]
        if pg:
            rows.append(run_backend("postgresql", _new_pg(pg), folder, roster, work))
    print(f"\nN = {args.n}")
    head = f"{'backend':<11} {'check s':>8} {'receive s':>9} {'÷check':>7} {'consol. s':>9} {'status s':>9} {'size÷files':>10}"
    print(head + "  exit codes")
    for r in rows:
        print(
            f"{r['backend']:<11} {r['check_s']:>8.2f} {r['receive_s']:>9.2f} {r['receive_ratio']:>7.2f}"
            f" {r['consolidate_s']:>9.2f} {r['status_s']:>9.3f} {r['size_ratio']:>10.2f}  {r['rc']}"
        )
    print("targets at N = 10,000 (SQLite): receive ≤ 1.2 × check, consolidate ≤ 3 s, status ≤ 0.5 s, size ≤ 1.3 × files")


if __name__ == "__main__":
    main()
