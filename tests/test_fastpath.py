"""Issue 8: no correctness shortcut. The fast path (linear scan of sheet parts, worker
processes, slim reports) gives the same findings and the same summary as the careful path
(tree-shaped scan, one process, full reports) on the samples and on the hostile corpus."""

from __future__ import annotations

import json
import subprocess
import sys

import corpus_broken_files
import pytest
from conftest import ROOT, SAMPLES

from toolkit import probe as probe_mod
from toolkit.check import CheckOptions, check_paths, check_report, check_source, iter_checked
from toolkit.consolidate import consolidate
from toolkit.inputs import collect, load
from toolkit.reader import read_bytes
from toolkit.roster import load_roster
from toolkit.spec import current_format

ROSTER = load_roster(SAMPLES / "roster.csv")


def _key(reports):
    return sorted((r.provenance.name, f.code, f.fingerprint, str(f.found), str(f.expected)) for r in reports for f in r.findings)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("fast")
    corpus_broken_files.build(d / "corpus")
    return [SAMPLES / "returns", SAMPLES / "faulty", SAMPLES / "seed-2023", d / "corpus"]


def test_fast_scan_equals_careful_scan(inputs, monkeypatch):
    opts = CheckOptions(year=2025, roster=ROSTER)
    fast = check_paths(inputs, opts).reports
    monkeypatch.setattr(probe_mod, "_fast_scan", lambda *args: False)
    careful = check_paths(inputs, opts).reports
    assert _key(fast) == _key(careful) and len(fast) > 80
    assert [r.values for r in fast] == [r.values for r in careful]


def test_pool_and_compact_reports_equal_sequential_full_reports(inputs):
    """Worker processes and the sparse transport change nothing: every cell, blank and unknown."""
    opts = CheckOptions(year=2025, roster=ROSTER)
    careful = [
        check_report(read_bytes(load(s).data or b"", s.name, s.path, s.mtime), opts)
        if load(s).problem is None
        else check_source(s, opts)
        for s in collect(inputs)
    ]
    fast = list(iter_checked(inputs, opts, workers=2))
    assert _key(fast) == _key(careful)
    assert [dict(r.values) for r in fast] == [dict(r.values) for r in careful]
    assert [r.unknown for r in fast] == [r.unknown for r in careful]
    fmt = current_format()
    a = consolidate(fmt, careful, ROSTER, 2025, force=True).report
    b = consolidate(fmt, fast, ROSTER, 2025, force=True).report
    assert a.values == b.values and a.children == b.children


def test_benchmark_smoke():
    r = subprocess.run(
        [sys.executable, "benchmarks/bench.py", "--n", "20", "--no-scale", "--repeat", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "calamine floor" in r.stdout and "consolidate" in r.stdout and "60-unit county" in r.stdout
    assert "best of 2 rounds" in r.stdout
    run = json.loads((ROOT / "benchmarks" / "out" / "bench-20.json").read_text(encoding="utf-8"))["runs"][0]
    for step in ("calamine_parallel", "check", "consolidate"):
        assert len(run[step]["runs"]) == 2 and run[step]["seconds"] == min(run[step]["runs"])
