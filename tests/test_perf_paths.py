"""Issue 19: the per-core shortcuts of `check` (cheaper fast scan, cells read in place from a list
computed once per format, plain whole numbers without normalize_number, leaner rule evaluation)
give the same `check --json` as the reference code paths, on the samples, the faulty samples and
both hostile corpora."""

from __future__ import annotations

import random

import hostile
import hostile2
import pytest
from conftest import SAMPLES

from toolkit import probe as probe_mod
from toolkit import reader as reader_mod
from toolkit import rules as rules_mod


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("perfpaths")
    hostile.build(d / "h1")
    hostile2.build(d / "h2")
    return d


def _reference(monkeypatch) -> None:
    monkeypatch.setattr(probe_mod, "_odd", lambda data: probe_mod._ODD.search(data) is not None)
    monkeypatch.setattr(reader_mod, "FAST", False)
    monkeypatch.setattr(probe_mod, "MEMO", False)
    monkeypatch.setattr(probe_mod, "formula_risk", probe_mod._formula_risk)
    monkeypatch.setattr(reader_mod, "formula_risk", probe_mod._formula_risk)
    monkeypatch.setattr(rules_mod, "_eval", rules_mod._eval_reference)


@pytest.mark.parametrize("which", ["returns", "faulty", "h1", "h2"])
def test_check_json_same_as_reference(cli, corpus, monkeypatch, which):
    folder = SAMPLES / which if which in ("returns", "faulty") else corpus / which
    args = ["check", folder, "--roster", SAMPLES / "roster.csv", "--year", "2025", "--json"]
    fast = cli(*args)
    assert fast.returncode in (0, 1), fast.stderr
    assert '"findings"' in fast.stdout or '"reports"' in fast.stdout
    _reference(monkeypatch)
    careful = cli(*args)
    assert (careful.returncode, careful.stdout) == (fast.returncode, fast.stdout)


def _sheet_like(rng: random.Random) -> bytes:
    pieces = [
        b'<c r="A1" t="e">',
        b"<x:c ",
        b"<![CDATA[",
        b" t = 'e'",
        b'\tt="e',
        b'at="e',
        b't="e',
        b"<c/>",
        b"<c>",
        b"<c\n",
        b"<sheetData>",
        b"<ns.1:row>",
        b" ",
        b"\n",
        b"=",
        b'"',
        b"e",
        b"t",
        b"<",
        b":",
        b"f",
        b"row",
        b"x",
    ]
    return b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))


def test_odd_shape_test_same_as_regex():
    rng = random.Random(19)
    for _ in range(20000):
        data = _sheet_like(rng)
        assert probe_mod._odd(data) == (probe_mod._ODD.search(data) is not None), data
