"""The archive against the folder workflow it replaces.

    python benchmarks/bench_archive.py                  # N = 500
    python benchmarks/bench_archive.py --n 10000        # the issue's targets
    python benchmarks/bench_archive.py --n 200 --pg postgresql://postgres@127.0.0.1:5432/postgres

Generates N returns (benchmarks/bench.py: mostly zeros, a few busy departments, ~1% with an error)
and measures, each command in a fresh process:
  check        `nianbao check DIR --roster R --year Y` (the reference)
  receive      `nianbao receive DIR --year Y --db A` into an empty archive  target ≤ 1.2 × check
  consolidate  `nianbao consolidate --db A --year Y --force`                target ≤ 3 s at N = 10,000
  status       ``Archive.status(Y)`` in this process (library call)        target ≤ 0.5 s at N = 10,000
  size         archive size / total size of the received files              target ≤ 1.3
check, receive and consolidate run in --repeat rounds (default 3: check, receive into a fresh archive,
consolidate from it) and the fastest of each is kept, as the machine's load moves single runs by ±15 %.
The toolkit's bytecode is compiled first, as in an installed nianbao (see bench.py).
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

from bench import YEAR, compile_bytecode, generate, measure, units_for, write_roster  # noqa: E402

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


def run_backend(label: str, new_db, folder: Path, roster: Path, work: Path, repeat: int) -> dict:  # type: ignore[no-untyped-def]
    """``repeat`` rounds of check, receive into a fresh archive and consolidate from it (the machine's
    load moves single runs by ±15 %: the fastest of each is kept, all treated alike); then, on the
    last archive, status and size."""
    checks, receives, consolidations, rcs = [], [], [], []
    out = work / f"汇总-{label}.xlsx"
    for _ in range(max(1, repeat)):
        db = new_db()
        # clean returns approved at receipt: the consolidation sums every unit, as a season's end does
        rc = measure([*CLI, "roster", "load", str(roster), "--year", str(YEAR), "--auto-approve", "--db", db])
        assert rc["exit"] == 0, rc
        checks.append(_check(folder, roster))
        rec = measure([*CLI, "receive", str(folder), "--year", str(YEAR), "--db", db])
        receives.append(rec["seconds"])
        con = measure([*CLI, "consolidate", "--db", db, "--year", str(YEAR), "--out", str(out), "--force"])
        consolidations.append(con["seconds"])
        rcs.append((rec["exit"], con["exit"]))
    check_s, receive_s = min(checks), min(receives)
    status_s = _status_seconds(db)
    files = sum(p.stat().st_size for p in folder.glob("*.xlsx"))
    size = _sqlite_size(Path(db)) if label == "sqlite" else _pg_size(db)
    return {
        "backend": label,
        "check_s": check_s,
        "receive_s": receive_s,
        "receive_ratio": receive_s / check_s,
        "check_runs": checks,
        "receive_runs": receives,
        "consolidate_s": min(consolidations),
        "consolidate_runs": consolidations,
        "status_s": status_s,
        "size_ratio": size / files,
        "rc": tuple(max(codes) for codes in zip(*rcs, strict=True)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500, help="number of returns (default 500)")
    ap.add_argument("--pg", default=None, help="PostgreSQL server URL (default: $NIANBAO_TEST_PG, else SQLite only)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of check and receive; the best of each is kept (default 3)")
    args = ap.parse_args()
    import os

    pg = args.pg or os.environ.get("NIANBAO_TEST_PG")
    compile_bytecode()  # as an installed nianbao has it (see bench.py)
    with tempfile.TemporaryDirectory(prefix="nianbao-bench-archive-") as tmp:
        work = Path(tmp)
        units = units_for(args.n)
        roster, folder = work / "roster.csv", work / "returns"
        write_roster(roster, units)
        t = time.perf_counter()
        generate(folder, units)
        print(f"generated {args.n} returns in {time.perf_counter() - t:.1f} s")
        rounds = iter(range(10**6))
        rows = [run_backend("sqlite", lambda: str(work / f"archive-{next(rounds)}.db"), folder, roster, work, args.repeat)]
        if pg:
            rows.append(run_backend("postgresql", lambda: _new_pg(pg), folder, roster, work, args.repeat))
    print(f"\nN = {args.n}")
    head = f"{'backend':<11} {'check s':>8} {'receive s':>9} {'÷check':>7} {'consol. s':>9} {'status s':>9} {'size÷files':>10}"
    print(head + "  exit codes")
    for r in rows:
        print(
            f"{r['backend']:<11} {r['check_s']:>8.2f} {r['receive_s']:>9.2f} {r['receive_ratio']:>7.2f}"
            f" {r['consolidate_s']:>9.2f} {r['status_s']:>9.3f} {r['size_ratio']:>10.2f}  {r['rc']}"
        )
        steps = ("check", "receive", "consolidate")
        runs = "; ".join(f"{k} runs " + ", ".join(f"{x:.2f}" for x in r[f"{k}_runs"]) for k in steps)
        print(f"{'':<11} {runs}")
    print(f"(check, receive and consolidate: the best of {args.repeat} rounds, each receive into a fresh archive)")
    print("targets at N = 10,000 (SQLite): receive ≤ 1.2 × check, consolidate ≤ 3 s, status ≤ 0.5 s, size ≤ 1.3 × files")


if __name__ == "__main__":
    main()
