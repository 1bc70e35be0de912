"""Speed of `nianbao audit` on published reports: the corpus of tests/published, and 1,000
reports (the corpus repeated, each copy under its own name), so the ratio shows whether the
time grows linearly with the number of reports.

    python benchmarks/bench_audit.py               # corpus and 1,000 reports
    python benchmarks/bench_audit.py --n 200       # smaller second batch

Each run is `nianbao audit DIR --out 审计.xlsx` in a fresh process (wall time including
interpreter start and writing the workbook). Prints one table.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "published"


def make_batch(dest: Path, n: int) -> int:
    """``n`` reports: the corpus files copied round-robin under distinct names (copy number first,
    so each copy of a unit's two years still pairs up by name and year)."""
    files = sorted(CORPUS.glob("*.source.txt"))
    dest.mkdir(parents=True)
    for i in range(n):
        src = files[i % len(files)]
        shutil.copyfile(src, dest / f"{i // len(files):03d}_{src.name}")
    return n


def run_audit(folder: Path, out: Path) -> float:
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "toolkit.cli", "audit", str(folder), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - t
    if r.returncode not in (0, 1):
        sys.exit(f"nianbao audit failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    corpus_n = len(list(CORPUS.glob("*.source.txt")))
    with tempfile.TemporaryDirectory(prefix="nianbao-bench-audit-") as tmp:
        tmp_path = Path(tmp)
        t_corpus = run_audit(CORPUS, tmp_path / "corpus.xlsx")
        big = tmp_path / "batch"
        make_batch(big, args.n)
        t_big = run_audit(big, tmp_path / "batch.xlsx")
    per_small, per_big = t_corpus / corpus_n, t_big / args.n
    print(f"{'batch':<26}{'reports':>8}{'seconds':>10}{'ms/report':>11}")
    print(f"{'tests/published (corpus)':<26}{corpus_n:>8}{t_corpus:>10.2f}{per_small * 1000:>11.1f}")
    print(f"{'corpus repeated':<26}{args.n:>8}{t_big:>10.2f}{per_big * 1000:>11.1f}")
    print(
        f"time ratio {t_big / t_corpus:.1f} for {args.n / corpus_n:.1f}× the reports; "
        f"per-report ratio {per_big / per_small:.2f} (≤ 1 means linear or better: start-up is spread out)"
    )


if __name__ == "__main__":
    main()
