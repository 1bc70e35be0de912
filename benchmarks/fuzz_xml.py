"""Hostile input at length (issue 13): print figures, assert nothing.

1. The second hostile corpus (tests/corpus_disguised_files.py) with the 22 good sample returns, through the CLI
   in one batch: wall time and peak RSS of the whole batch (workers included).
2. Each bad file on its own through the CLI: the slowest decision and the largest peak RSS.
3. The XML fuzzer of tests/test_disguised_files.py for longer: rewritten real returns read in this
   process; rounds, failures (a reader exception or fast/careful scans disagreeing), peak RSS.

    python benchmarks/fuzz_xml.py [--seconds 60] [--seed 20260113] [--skip-files]
"""

from __future__ import annotations

import argparse
import io
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import corpus_disguised_files  # noqa: E402

from toolkit.reader import read_bytes  # noqa: E402
from toolkit.xlsx import fast as xlsx_fast  # noqa: E402
from toolkit.xlsx import guard, parts, scan  # noqa: E402

MEASURE = (
    "import resource,subprocess,sys,time;t=time.time();"
    "r=subprocess.run([sys.executable,'-m','toolkit.cli','check',*sys.argv[1:]],capture_output=True);"
    "print(time.time()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)"
)


def measure(*args: str | Path) -> tuple[float, float, int]:
    """Seconds, peak RSS in MB (the largest single process of the command tree), exit code."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *map(str, args)], capture_output=True, text=True, cwd=ROOT).stdout
    seconds, rss_kb, code = out.split()
    return float(seconds), int(rss_kb) / 1024, int(code)


def batch(d: Path, kinds: list, skip_files: bool) -> None:
    good = d / "good"
    good.mkdir()
    for p in sorted((ROOT / "samples" / "returns").glob("*.xlsx")):
        shutil.copy(p, good / p.name)
    seconds, rss, code = measure(good, d / "bad", "--roster", ROOT / "samples" / "roster.csv", "--year", "2025", "--json")
    print(f"batch: {len(kinds)} hostile kinds + 22 good returns: {seconds:.2f} s, peak RSS {rss:.0f} MB, exit {code}")
    if skip_files:
        return
    worst_t, worst_m = (0.0, ""), (0.0, "")
    for k in kinds:
        seconds, rss, _ = measure(d / "bad" / k.file)
        worst_t, worst_m = max(worst_t, (seconds, k.name)), max(worst_m, (rss, k.name))
    print(f"each bad file alone (CLI start-up included): slowest {worst_t[0]:.2f} s ({worst_t[1]}), ", end="")
    print(f"largest peak RSS {worst_m[0]:.0f} MB ({worst_m[1]})")


def fuzz(seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    good = sorted((ROOT / "samples" / "returns").glob("*.xlsx"))
    t0, rounds, failures, fast_taken = time.time(), 0, 0, 0
    while time.time() - t0 < seconds:
        data, mutations = corpus_disguised_files.mutate_return(rng, good[rounds % len(good)])
        rounds += 1
        try:
            z = zipfile.ZipFile(io.BytesIO(data))
            for name in (n for n in z.namelist() if n.startswith("xl/worksheets/")):
                fast, slow = parts.SheetInfo(name="x"), parts.SheetInfo(name="x")
                try:
                    took = xlsx_fast._fast_scan(z.read(name), fast)
                except guard.ProbeProblem:
                    continue
                if took:
                    fast_taken += 1
                    try:
                        scan._stream_scan(z, name, slow)
                    except guard.ProbeProblem:
                        continue
                    if (fast.protected, fast.formulas) != (slow.protected, slow.formulas):
                        raise AssertionError(f"fast and careful scans disagree on {name}: {mutations}")
            rep = read_bytes(data, "fuzz.xlsx")
            assert all(f.code and f.message for f in rep.findings)
        except Exception:  # noqa: BLE001 - a benchmark reports, it does not stop
            failures += 1
            traceback.print_exc(limit=3)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    elapsed = time.time() - t0
    print(f"fuzz: seed {seed}, {rounds} rounds in {elapsed:.1f} s ({rounds / elapsed:.0f}/s), {failures} failures, ", end="")
    print(f"fast scan taken for {fast_taken} parts, peak RSS {rss:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=20260113)
    ap.add_argument("--skip-files", action="store_true", help="skip timing every bad file on its own")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        kinds = corpus_disguised_files.build(d / "bad")
        batch(d, kinds, args.skip_files)
    fuzz(args.seconds, args.seed)


if __name__ == "__main__":
    main()
