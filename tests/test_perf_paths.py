"""Issue 19: the per-core shortcuts of `check` (cheaper fast scan, cells read in place from a list
computed once per format, plain whole numbers without normalize_number, leaner rule evaluation)
give the same `check --json` as the reference code paths, on the samples, the faulty samples and
the three hostile corpora."""

from __future__ import annotations

import random

import corpus_beyond_limits
import corpus_broken_files
import corpus_disguised_files
import pytest
from conftest import SAMPLES

from toolkit import probe as probe_mod
from toolkit import reader as reader_mod
from toolkit import rules as rules_mod
from toolkit import xlsx_fast


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("perfpaths")
    corpus_broken_files.build(d / "h1")
    corpus_disguised_files.build(d / "h2")
    corpus_beyond_limits.build(d / "h3")
    return d


def _reference(monkeypatch) -> None:
    monkeypatch.setattr(probe_mod, "_odd", lambda data: probe_mod._ODD.search(data) is not None)
    monkeypatch.setattr(reader_mod, "FAST", False)
    monkeypatch.setattr(probe_mod, "MEMO", False)
    monkeypatch.setattr(probe_mod, "VALUES", False)
    monkeypatch.setattr(xlsx_fast, "SKELETONS", False)
    monkeypatch.setattr(probe_mod, "RAW", False)
    monkeypatch.setattr(probe_mod, "DOCPROPS", False)
    monkeypatch.setattr(rules_mod, "FAST", False)
    monkeypatch.setattr(probe_mod, "formula_risk", probe_mod._formula_risk)
    monkeypatch.setattr(reader_mod, "formula_risk", probe_mod._formula_risk)


@pytest.mark.parametrize("which", ["returns", "faulty", "h1", "h2", "h3"])
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
    """``_odd`` finds what the careful ``_ODD`` finds, except error types spelled another way than
    the fast scan's cells (those it leaves to the cell count, next test)."""
    import re

    canonical = re.compile(probe_mod._ODD.pattern.replace(rb"|\st\s*=\s*[\"']e", rb'|t="e'))
    assert canonical.pattern != probe_mod._ODD.pattern
    rng = random.Random(19)
    for _ in range(20000):
        data = _sheet_like(rng)
        assert probe_mod._odd(data) == (canonical.search(data) is not None), data


def _zipped(body: bytes):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("xl/worksheets/sheet1.xml", body)
    return zipfile.ZipFile(buf)


@pytest.mark.parametrize(
    "cell",
    [
        b'<c r="B6" t = "e"><v>#DIV/0!</v></c>',
        b"<c r=\"B6\" t='e'><v>#N/A</v></c>",
        b'<c r="B6"\nt\t=\n"e"/>',
        b'<c r="B6" t=" e"><v>#DIV/0!</v></c>',
        b'<c r="B6" t="&#101;"><v>#DIV/0!</v></c>',
        b'<c r="B6" s="1" t="&#x65; "><v>#REF!</v></c>',
        b'<c r="B6" t="d"><v>2025-01-01</v></c>',
    ],
)
def test_error_type_spelled_otherwise_goes_the_careful_way(cell):
    """An error type that ``_odd`` no longer looks for is never read by the fast scan: the cell
    does not match its pattern, the cell count differs, and the XML parser reads the part."""
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="x"><sheetData><row r="6">'
        + cell
        + b"</row></sheetData></worksheet>"
    )
    assert not probe_mod._odd(body)
    info = probe_mod.SheetInfo(name="x")
    assert probe_mod._fast_scan(body, info) is False
    careful = probe_mod.SheetInfo(name="x")
    probe_mod._stream_scan(_zipped(body), "xl/worksheets/sheet1.xml", careful)
    if b"<v>#" in body:  # an error value the XML parser sees, and the fast scan must not miss
        assert careful.errors.get("B6", "").startswith("#"), careful.errors


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


def _stream(body: bytes):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("xl/worksheets/sheet1.xml", body)
    info = probe_mod.SheetInfo(name="x")
    try:
        probe_mod._stream_scan(zipfile.ZipFile(buf), "xl/worksheets/sheet1.xml", info)
    except probe_mod.ProbeProblem as e:
        return ("refused", e.code, e.detail)
    return (True, info.protected, info.formulas)


def test_one_pass_formulas_same_as_xml_parser():
    """The one pass (xlsx_fast.scan) finds the formulas the XML parser finds (or steps aside), on
    real worksheet parts rewritten by the XML fuzzer and with formulas moved inside their cells."""
    import io
    import zipfile

    rng = random.Random(1919)
    goods = sorted((SAMPLES / "returns").glob("*.xlsx"))[:6]
    bodies = []
    for i in range(30):
        data, _ = corpus_disguised_files.mutate_return(rng, goods[i % len(goods)])
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
    accepted = 0
    for body in bodies:
        fast = _scan(body)
        if fast[0] is True:
            assert fast[:3] == _stream(body), body[:300]
            accepted += bool(fast[2])
        elif fast[0] == "refused":
            assert _stream(body)[0] == "refused"
    assert accepted > 50  # many accepted parts with formulas


def test_generated_rule_checks_same_as_term_by_term(monkeypatch):
    """Each rule as one generated function (rules._checker) fails exactly the instances the
    term-by-term evaluation fails, with the same numbers: random values with blanks, decimals,
    huge numbers and unknown cells, cached totals that differ, last year's figures, every unit type."""
    from toolkit.report import Report, derive_totals
    from toolkit.spec import formats
    from toolkit.synth import random_values

    def report(fid, fmt, rng, seed, year):
        vals = random_values(fmt, rng, busy=seed % 4 == 0, faulty=seed % 3 == 0)
        inputs = {c.id: (None if rng.random() < 0.05 else vals.get(c.id)) for c in fmt.inputs}
        for c in fmt.inputs:
            if rng.random() < 0.05:
                inputs[c.id] = rng.choice([0.5, 1e-7, 3.3333333, -2, 10**15])
        full = derive_totals(fmt, inputs)
        cached = {k: v if rng.random() < 0.9 else (v or 0) + rng.choice([1, 0.5, -1e-7]) for k, v in full.items()}
        unknown = {c for c in fmt.cells if rng.random() < 0.02} if seed % 5 == 0 else set()
        kind = rng.choice(["镇", "街道", "县级政府部门", "设区的市级政府"])
        return Report(format_id=fid, year=year, unit_type=kind, values=full, cached=cached, unknown=unknown)

    def findings(fmt, rep):
        return [(f.code, f.cell_id, f.found, f.expected, f.message) for f in rules_mod.run_rules(fmt, rep)]

    failed = 0
    for fid, fmt in formats().items():
        for seed in range(150):
            rng = random.Random(seed)
            rep = report(fid, fmt, rng, seed, 2025)
            if seed % 2:
                rep.previous = report(fid, fmt, rng, seed, 2024)
            monkeypatch.setattr(rules_mod, "FAST", True)
            fast = findings(fmt, rep)
            monkeypatch.setattr(rules_mod, "FAST", False)
            assert fast == findings(fmt, rep), (fid, seed)
            failed += len(fast)
    assert failed > 1000


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


@pytest.mark.parametrize("cached", [b"NaN", b"inf", b"-3", b"1e13", b"2.5", b"", b"abc"])
def test_odd_cached_totals_read_as_the_careful_path_reads_them(monkeypatch, cached):
    """A total whose cached value is not a plain number (NaN, infinity, negative, huge, text) gives
    the same report whether the sheet is read in one go (reader._plain_sheet) or cell by cell."""
    import re

    p = corpus_disguised_files.parts(sorted((SAMPLES / "returns").glob("*.xlsx"))[0])
    name = "xl/worksheets/sheet3.xml"
    p[name] = re.sub(rb"(</f>)<v>[^<]*</v>", rb"\1<v>" + cached + b"</v>", p[name], count=3)
    data = corpus_disguised_files.pack(p)

    def seen():
        r = reader_mod.read_bytes(data, "x.xlsx")
        return dict(r.values), dict(r.cached), sorted(f.fingerprint for f in r.findings)

    fast = seen()
    monkeypatch.setattr(reader_mod, "FAST", False)
    assert fast == seen()


def _walk_reference(p, suffixes):
    """The folder walk as it was before the listing's file types were used: ``os.walk`` and an
    ``lstat`` of every entry (labels of a walk from "." keep their subfolder, as from any folder)."""
    import os
    from pathlib import Path

    from toolkit import inputs

    root = os.path.realpath(p)
    entries, folders = [], {}
    for dirpath, dirnames, filenames in os.walk(p, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".~nianbao")]
        folder = Path(dirpath)
        base = p.parent if p.parent != p else p
        label = str(folder.relative_to(base)) if folder != base else ""
        folders[dirpath] = (folder.parts, label)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            entries.append((dirpath, name))
    entries.sort(key=lambda e: (*folders[e[0]][0], e[1]))
    for dirpath, name in entries:
        label = folders[dirpath][1]
        yield from inputs._entry(Path(dirpath, name), os.path.join(label, name) if label else name, root, suffixes)


def test_folder_walk_same_as_os_walk(tmp_path, monkeypatch):
    import os
    import shutil
    from pathlib import Path

    from toolkit import inputs, outputs

    tree = tmp_path / "收到"
    sample = next((SAMPLES / "returns").glob("*.xlsx"))
    for rel in ("a.xlsx", "子/b.XLSX", "子/深/c.xlsx", "子/~$d.xlsx", ".~nianbao-x/e.xlsx", "z/..xlsx", "y.", "说明.txt"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample, tree / rel)
    shutil.make_archive(str(tree / "包"), "zip", tree / "子")
    os.symlink(tree / "a.xlsx", tree / "内链.xlsx")
    os.symlink(tmp_path, tree / "外链目录")
    os.symlink(sample, tree / "外链.xlsx")
    os.symlink(tree / "子", tree / "链目录")
    os.symlink(tree / "无", tree / "断链.xlsx")
    os.mkfifo(tree / "管道.xlsx")
    (tree / "锁").mkdir()
    (tree / "锁" / "f.xlsx").write_bytes(b"x")
    os.chmod(tree / "锁", 0)
    try:
        for start in (tree, tree / "子", Path(".")):
            if start == Path("."):
                monkeypatch.chdir(tree)
            got = [(s.name, s.path, s.problem and s.problem.detail, s.member) for s in inputs.collect([start])]
            want = [
                (s.name, s.path, s.problem and s.problem.detail, s.member)
                for s in _walk_reference(start, inputs.WORKBOOK_SUFFIXES)
            ]
            assert got == want and len(got) >= 2
            listed = sorted(outputs.input_files([start]))
            assert listed == sorted(str(f) for f in start.rglob("*") if f.is_file()) and listed
    finally:
        os.chmod(tree / "锁", 0o700)
