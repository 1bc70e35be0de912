"""`check --json` of every corpus, to prove a refactor of the reading code changes no report.

    python benchmarks/json_snapshot.py build CORPUS      # once: write the hostile corpora as files
    python benchmarks/json_snapshot.py dump CORPUS OUT   # at each commit to compare
    python benchmarks/json_snapshot.py compare OUT_A OUT_B

The corpora are the samples, the faulty samples, the hostile files (tests/corpus_*.py), mutated
returns and, when built (benchmarks/bench.py), the tool-written and LibreOffice-saved piles.
Reports are compared after dropping what names the run, not the files: times and absolute paths.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
ROSTER = ROOT / "samples" / "roster.csv"
VOLATILE = {"generated", "generated_at", "created", "time", "seconds", "elapsed", "mtime", "tool", "version", "path"}


def build(corpus: Path) -> None:
    import corpus_beyond_limits as hostile3
    import corpus_broken_files as hostile
    import corpus_disguised_files as hostile2

    hostile.build(corpus / "hostile")
    hostile2.build(corpus / "hostile2")
    hostile3.build(corpus / "hostile3")
    for name, kinds in (("formulas", hostile2.formula_kinds()), ("trust", hostile2.trust_kinds())):
        d = corpus / name
        d.mkdir(parents=True, exist_ok=True)
        for file, (body, _codes) in kinds.items():
            (d / (file if file.endswith((".xlsx", ".ods", ".xlsm")) else file + ".xlsx")).write_bytes(body)
    d = corpus / "mutated"
    d.mkdir(parents=True, exist_ok=True)
    for seed in range(80):
        body, _ = hostile2.mutate_return(random.Random(seed), hostile2.GOOD)
        (d / f"m{seed:03d}.xlsx").write_bytes(body)


def targets(corpus: Path) -> dict[str, list[str]]:
    out = {
        "returns": [str(ROOT / "samples" / "returns"), "--roster", str(ROSTER), "--year", "2025"],
        "faulty": [str(ROOT / "samples" / "faulty"), "--roster", str(ROSTER), "--year", "2025"],
    }
    for d in sorted(p for p in corpus.iterdir() if p.is_dir()):
        out[d.name] = [str(d)]
    for pile in sorted(p.parent for p in (ROOT / "benchmarks" / "out").glob("*pile-*/.complete")):
        roster = pile / "roster.csv"
        out[pile.name] = [str(pile / "returns")] + (["--roster", str(roster), "--year", "2025"] if roster.exists() else [])
    return out


def dump(corpus: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, args in targets(corpus).items():
        r = subprocess.run([sys.executable, "-m", "toolkit.cli", "check", *args, "--json"], capture_output=True, cwd=ROOT)
        (out / f"{name}.json").write_bytes(r.stdout)
        (out / f"{name}.exit").write_text(str(r.returncode))
        print(name, r.returncode, len(r.stdout), flush=True)


def _clean(x, corpus_roots: tuple[str, ...]):
    if isinstance(x, dict):
        return {k: _clean(v, corpus_roots) for k, v in x.items() if k not in VOLATILE}
    if isinstance(x, list):
        return [_clean(v, corpus_roots) for v in x]
    if isinstance(x, str):
        for r in corpus_roots:
            x = x.replace(r, "<ROOT>")
    return x


def compare(a: Path, b: Path) -> int:
    bad = 0
    roots = (str(ROOT), "/work/main", "/work/w29r")
    for fa in sorted(a.glob("*.json")):
        fb = b / fa.name
        ea, eb = (fa.with_suffix(".exit").read_text(), fb.with_suffix(".exit").read_text()) if fb.exists() else ("", "?")
        try:
            same = fb.exists() and _clean(json.loads(fa.read_bytes()), roots) == _clean(json.loads(fb.read_bytes()), roots)
        except ValueError:
            same = fb.exists() and fa.read_bytes() == fb.read_bytes()
        print(f"{fa.stem:<24} exit {ea}/{eb} {'identical' if same and ea == eb else 'DIFFERENT'}")
        bad += not (same and ea == eb)
    return 1 if bad else 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "build":
        build(Path(sys.argv[2]))
    elif cmd == "dump":
        dump(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
