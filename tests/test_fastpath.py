"""Issue 8: no correctness shortcut. The fast path (linear scan of sheet parts, worker
processes, slim reports) gives the same findings and the same summary as the careful path
(tree-shaped scan, one process, full reports) on the samples and on the hostile corpus."""

from __future__ import annotations

import subprocess
import sys

import hostile
import pytest
from conftest import ROOT, SAMPLES

from toolkit import probe as probe_mod
from toolkit.check import CheckOptions, check_paths, iter_checked
from toolkit.consolidate import consolidate
from toolkit.roster import load_roster
from toolkit.spec import current_format

ROSTER = load_roster(SAMPLES / "roster.csv")


def _key(reports):
    return sorted((r.provenance.name, f.code, f.fingerprint, str(f.found), str(f.expected)) for r in reports
                  for f in r.findings)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("fast")
    hostile.build(d / "corpus")
    return [SAMPLES / "returns", SAMPLES / "faulty", SAMPLES / "seed-2023", d / "corpus"]


def test_fast_scan_equals_careful_scan(inputs, monkeypatch):
    opts = CheckOptions(year=2025, roster=ROSTER)
    fast = check_paths(inputs, opts).reports
    monkeypatch.setattr(probe_mod, "_fast_scan", lambda data, info: False)
    careful = check_paths(inputs, opts).reports
    assert _key(fast) == _key(careful) and len(fast) > 80
    assert [r.values for r in fast] == [r.values for r in careful]


def test_pool_and_slim_reports_equal_sequential_full_reports(inputs):
    opts = CheckOptions(year=2025, roster=ROSTER)
    careful = check_paths(inputs, opts).reports
    fast = [r for r, _ in iter_checked(inputs, opts, workers=2)]
    assert _key(fast) == _key(careful)
    fmt = current_format()
    a = consolidate(fmt, careful, ROSTER, 2025, force=True).report
    b = consolidate(fmt, fast, ROSTER, 2025, force=True).report
    assert a.values == b.values and a.children == b.children


def test_benchmark_smoke():
    r = subprocess.run([sys.executable, "benchmarks/bench.py", "--n", "20", "--no-scale"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "calamine floor" in r.stdout and "consolidate" in r.stdout and "60-unit county" in r.stdout
