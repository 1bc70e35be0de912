"""Duplicates and nested archives (issue 26): memory of ``check``, ``check --json``, ``consolidate`` and
``receive`` on thousands of copies of one return.

Every duplicate's message used to list all the other copies: memory and output grew with the
square of the number of copies (40 nested zips × 100 copies: 1.2 GB; 8,000 copies: 4.5 GB). Now a
duplicate names the count and a few others, and an archive with its nested archives has the same
member limit as a flat one. Cases, built in a temporary folder:

- ``nested 40×100``: one zip holding 40 zips of 100 copies each (4,000 members: over the member
  limit, refused as a flat zip of 4,000 would be);
- ``nested 40×49``: the same at the limit (40 + 1,960 = 2,000 members), every copy read;
- ``folder N``: N copies as loose files (default 10,000).

Each command runs in a fresh process tree; printed: exit code, wall seconds, peak RSS of the largest
process in it, and the size of what it printed.

    python benchmarks/bench_duplicates.py              # N = 10,000
    python benchmarks/bench_duplicates.py --n 8000 --only folder
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "returns" / "152502201_宝力根苏木_2025年政府信息公开年报.xlsx"
ROSTER = ROOT / "samples" / "roster.csv"
YEAR = "2025"
NIANBAO = str(Path(sys.executable).with_name("nianbao"))

_PROBE = (
    "import resource,subprocess,sys,time;t=time.perf_counter();"
    "r=subprocess.run(sys.argv[2:],stdout=open(sys.argv[1],'wb'),stderr=subprocess.DEVNULL);"
    "print(time.perf_counter()-t,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,r.returncode)"
)


def measure(argv: list[str], out: Path) -> dict:
    """Wall time, peak RSS (the largest process of the tree) and output size of one command."""
    res = subprocess.run([sys.executable, "-c", _PROBE, str(out), *argv], capture_output=True, text=True, check=True)
    secs, rss, rc = res.stdout.split()
    return {"seconds": float(secs), "peak_mb": int(rss) / 1024, "exit": int(rc), "output_kb": out.stat().st_size / 1024}


def zipped(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", method) as z:
        for name, body in members:
            z.writestr(name, body)
    return b.getvalue()


def nested(inner: int, copies: int, good: bytes) -> bytes:
    one = zipped([(f"第{k}份.xlsx", good) for k in range(copies)], zipfile.ZIP_STORED)
    return zipped([(f"乡镇{i}.zip", one) for i in range(inner)])


def build(d: Path, n: int, only: str) -> dict[str, Path]:
    good = SAMPLE.read_bytes()
    cases: dict[str, Path] = {}
    if only in ("all", "nested"):
        for inner, copies in ((40, 100), (40, 49)):
            p = d / f"nested_{inner}x{copies}.zip"
            p.write_bytes(nested(inner, copies, good))
            cases[f"nested {inner}×{copies} ({p.stat().st_size / 1048576:.1f} MB zip)"] = p
    if only in ("all", "folder"):
        folder = d / f"folder_{n}"
        folder.mkdir()
        for i in range(n):
            (folder / f"{i:05d}.xlsx").write_bytes(good)
        cases[f"folder of {n:,} copies"] = folder
    return cases


def commands(src: Path, d: Path) -> dict[str, list[str]]:
    db = d / "archive.db"
    if db.exists():
        db.unlink()
    subprocess.run([NIANBAO, "roster", "load", str(ROSTER), "--year", YEAR, "--db", str(db)], check=True, capture_output=True)
    base = [str(src), "--roster", str(ROSTER), "--year", YEAR]
    return {
        "check": [NIANBAO, "check", *base],
        "check --json": [NIANBAO, "check", *base, "--json"],
        "consolidate": [NIANBAO, "consolidate", *base, "--out", str(d / "汇总.xlsx"), "--force", "--overwrite"],
        "receive": [NIANBAO, "receive", str(src), "--year", YEAR, "--db", str(db)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="copies in the folder case")
    ap.add_argument("--only", choices=("all", "nested", "folder"), default="all")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="nianbao-dups-"))
    try:
        print(f"{'case':<34} {'command':<14} {'exit':>4} {'seconds':>8} {'peak MB':>8} {'output KB':>10}")
        for case, src in build(d, args.n, args.only).items():
            for name, argv in commands(src, d).items():
                m = measure(argv, d / "stdout")
                print(
                    f"{case:<34} {name:<14} {m['exit']:>4} {m['seconds']:>8.1f} {m['peak_mb']:>8.0f} {m['output_kb']:>10.0f}",
                    flush=True,
                )
    finally:
        if args.keep:
            print(f"kept {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
