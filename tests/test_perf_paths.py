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
    monkeypatch.setattr(probe_mod, "_formulas_in_place", lambda data: None)
    monkeypatch.setattr(probe_mod, "formula_risk", probe_mod._formula_risk)
    monkeypatch.setattr(reader_mod, "formula_risk", probe_mod._formula_risk)


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


def _scan(body: bytes):
    info = probe_mod.SheetInfo(name="x")
    try:
        took = probe_mod._fast_scan(body, info)
    except probe_mod.ProbeProblem as e:
        return ("refused", e.code, e.detail)
    return (took, info.protected, info.formulas, info.cells) if took else (False,)


_MOVES = [
    (b"><f>", b"><v>0</v><f>"),  # the value before the formula
    (b"><f>", b"> \n <f>"),  # whitespace between cell and formula
    (b'"><f>', b'"/><f>'),  # a formula after a self-closed cell
    (b"<f>", b'<f t="shared" ref="A1:A2" si="0">'),
    (b"</f>", b"</f><f>SUM(1)</f>"),  # two formulas in one cell
    (b"<f>", b"<f/><f>"),
]


def test_formulas_in_place_same_as_look_back(monkeypatch):
    """The one-pass formula read gives what the look back from each formula gives (or steps aside),
    on real worksheet parts rewritten by the XML fuzzer and with formulas moved inside their cells."""
    import io
    import zipfile

    rng = random.Random(1919)
    goods = sorted((SAMPLES / "returns").glob("*.xlsx"))[:6]
    bodies = []
    for i in range(30):
        data, _ = hostile2.mutate_return(rng, goods[i % len(goods)])
        z = zipfile.ZipFile(io.BytesIO(data))
        bodies += [z.read(n) for n in z.namelist() if n.startswith("xl/worksheets/")]
    for src in goods:
        z = zipfile.ZipFile(src)
        for n in (n for n in z.namelist() if n.startswith("xl/worksheets/")):
            body = z.read(n)
            for old, new in _MOVES:
                at = [k for k in range(len(body)) if body.startswith(old, k)]
                for k in rng.sample(at, min(3, len(at))):
                    bodies.append(body[:k] + new + body[k + len(old) :])
    assert len(bodies) > 100
    fast = [_scan(b) for b in bodies]
    monkeypatch.setattr(probe_mod, "_formulas_in_place", lambda data: None)
    assert fast == [_scan(b) for b in bodies]
    assert sum(1 for f in fast if f[0] is True and f[2]) > 50  # many accepted parts with formulas


def test_nonzero_totals_same_as_derive_totals():
    """明细's totals of each unit from its non-zero inputs alone equal derive_totals' (busy and quiet
    units, decimals in the fee cell)."""
    from toolkit.report import derive_totals, nonzero_totals
    from toolkit.spec import current_format
    from toolkit.synth import random_values

    fmt = current_format()
    for seed in range(200):
        values = random_values(fmt, random.Random(seed), busy=seed % 4 == 0, faulty=seed % 7 == 0)
        inputs = {c.id: values.get(c.id) for c in fmt.inputs}
        full = derive_totals(fmt, inputs)
        nonzero = {cid: v for cid, v in inputs.items() if v}
        assert nonzero_totals(fmt, nonzero) == {c.id: full[c.id] for c in fmt.totals if full[c.id]}


def test_manifest_text_is_the_same_json():
    import json

    from toolkit.findings import fmt_num
    from toolkit.summary_writer import manifest_text

    data = {
        "tool": "nianbao",
        "options": {"year": 2025, "units": [], "force": True},
        "inputs": [{"name": f"{i:03d}_单位.xlsx", "used": i % 2 == 0} for i in range(5)],
        "totals": {"t2.fees.amt": 12.5, "t3.r1.tot": 3},
        "units": [],
        "forced": False,
    }
    text = manifest_text(data)
    assert json.loads(text) == json.loads(json.dumps(data, default=fmt_num))
    lines = [line for line in text.splitlines() if "_单位.xlsx" in line]
    assert len(lines) == 5 and all(line.startswith("    {") for line in lines)  # one line per input
