"""The fast reading and evaluation give what the careful ones give (``careful=True`` on
``read_bytes``, ``probe``, ``run_rules`` and ``CheckOptions``): the careful path — XML parser,
python-calamine, cell by cell, term by term, nothing remembered between files — defines the
semantics, and every shortcut is proven equal to it here, part by part.

- whole reports: ``check`` on the samples, the faulty samples and the three hostile corpora gives
  the same JSON read fast or carefully; worker processes and compact reports change nothing;
- values: the one pass over a worksheet part (``toolkit/xlsx/fast.py``) gives calamine's grid cell by
  cell and type by type, or steps aside; remembered skeletons give what the full pass gives;
- integrity facts: the fast scan finds the formulas, errors and extent the XML parser finds;
- rules: each rule's generated function fails exactly the instances the term-by-term evaluation fails.

python-calamine is pinned to the minor version these tests were run with (pyproject.toml): the fast
reader imitates its values, so a new minor is let in only after this file passes with it.
"""

from __future__ import annotations

import io
import json
import random
import re
import subprocess
import sys

import corpus_beyond_limits as hostile3
import corpus_broken_files as hostile
import corpus_disguised_files as hostile2
import pytest
from conftest import ROOT, SAMPLES
from python_calamine import CalamineWorkbook

from toolkit import reader as reader_mod
from toolkit import rules as rules_mod
from toolkit.check import CheckOptions, check_paths, check_report, check_source, iter_checked
from toolkit.consolidate import consolidate
from toolkit.inputs import collect, load
from toolkit.jsonout import dumps, result_json
from toolkit.reader import read_bytes
from toolkit.roster import load_roster
from toolkit.spec import current_format
from toolkit.xlsx import Book, ProbeProblem, guard, parts, probe, scan
from toolkit.xlsx import fast as xlsx_fast

ROSTER = load_roster(SAMPLES / "roster.csv")


def _key(reports):
    return sorted((r.provenance.name, f.code, f.fingerprint, str(f.found), str(f.expected)) for r in reports for f in r.findings)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("fast")
    hostile.build(d / "corpus")
    return [SAMPLES / "returns", SAMPLES / "faulty", SAMPLES / "seed-2023", d / "corpus"]


def test_fast_scan_equals_careful_scan(inputs):
    fast = check_paths(inputs, CheckOptions(year=2025, roster=ROSTER)).reports
    careful = check_paths(inputs, CheckOptions(year=2025, roster=ROSTER, careful=True)).reports
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


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("perfpaths")
    hostile.build(d / "h1")
    hostile2.build(d / "h2")
    hostile3.build(d / "h3")
    return d


def _check_json(folder, careful: bool) -> str:
    result = check_paths([folder], CheckOptions(year=2025, roster=ROSTER, careful=careful), workers=1)
    return dumps(result_json("check", result.reports, year=2025, batch=result.batch))


@pytest.mark.parametrize("which", ["returns", "faulty", "h1", "h2", "h3"])
def test_check_json_same_as_reference(corpus, which):
    """`check --json` read fast and read carefully (XML parser and calamine only, cell by cell,
    rules term by term, nothing remembered between files): the same text."""
    folder = SAMPLES / which if which in ("returns", "faulty") else corpus / which
    fast = _check_json(folder, careful=False)
    assert '"findings"' in fast and '"files"' in fast
    assert _check_json(folder, careful=True) == fast


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


# What the fast scan must leave to the XML parser, as one careful pattern: a prefixed cell, row,
# formula, value or sheet element, CDATA, or an error type however spelled.
_ODD = re.compile(rb"<[A-Za-z_][\w.-]*:(?:c|row|f|v|is|sheetData|sheetProtection)[\s/>]|<!\[CDATA\[|\st\s*=\s*[\"']e")


def test_odd_shape_test_covers_the_regex():
    """``_odd`` finds what the careful ``_ODD`` finds, except error types spelled another way than
    the fast scan's cells (those it leaves to the cell count, next test); it may find more
    (prefixes the root does not declare), never less."""
    canonical = re.compile(_ODD.pattern.replace(rb"|\st\s*=\s*[\"']e", rb'|t="e'))
    assert canonical.pattern != _ODD.pattern
    rng = random.Random(19)
    found = 0
    for _ in range(20000):
        data = b'<worksheet xmlns:x="u" xmlns:ns.1="v">' + _sheet_like(rng)  # declared: found as sheet elements
        if canonical.search(data) is not None:
            found += 1
            assert xlsx_fast._odd(data, data), data
    assert found > 1000


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
    assert not xlsx_fast._odd(body, body)
    info = parts.SheetInfo(name="x")
    assert xlsx_fast._fast_scan(body, info) is False
    careful = parts.SheetInfo(name="x")
    scan._stream_scan(_zipped(body), "xl/worksheets/sheet1.xml", careful)
    if b"<v>#" in body:  # an error value the XML parser sees, and the fast scan must not miss
        assert careful.errors.get("B6", "").startswith("#"), careful.errors


def _scan(body: bytes):
    info = parts.SheetInfo(name="x")
    try:
        took = xlsx_fast._fast_scan(body, info)
    except guard.ProbeProblem as e:
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
    info = parts.SheetInfo(name="x")
    try:
        scan._stream_scan(zipfile.ZipFile(buf), "xl/worksheets/sheet1.xml", info)
    except guard.ProbeProblem as e:
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
    accepted = 0
    for body in bodies:
        fast = _scan(body)
        if fast[0] is True:
            assert fast[:3] == _stream(body), body[:300]
            accepted += bool(fast[2])
        elif fast[0] == "refused":
            assert _stream(body)[0] == "refused"
    assert accepted > 50  # many accepted parts with formulas


def test_generated_rule_checks_same_as_term_by_term():
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

    def findings(fmt, rep, careful):
        return [(f.code, f.cell_id, f.found, f.expected, f.message) for f in rules_mod.run_rules(fmt, rep, careful=careful)]

    failed = 0
    for fid, fmt in formats().items():
        for seed in range(150):
            rng = random.Random(seed)
            rep = report(fid, fmt, rng, seed, 2025)
            if seed % 2:
                rep.previous = report(fid, fmt, rng, seed, 2024)
            fast = findings(fmt, rep, careful=False)
            assert fast == findings(fmt, rep, careful=True), (fid, seed)
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
def test_odd_cached_totals_read_as_the_careful_path_reads_them(cached):
    """A total whose cached value is not a plain number (NaN, infinity, negative, huge, text) gives
    the same report read the fast way (numbers taken as they are) or carefully, cell by cell."""
    import re

    p = hostile2.parts(sorted((SAMPLES / "returns").glob("*.xlsx"))[0])
    name = "xl/worksheets/sheet3.xml"
    p[name] = re.sub(rb"(</f>)<v>[^<]*</v>", rb"\1<v>" + cached + b"</v>", p[name], count=3)
    data = hostile2.pack(p)

    def seen(careful):
        r = reader_mod.read_bytes(data, "x.xlsx", careful=careful)
        return dict(r.values), dict(r.cached), sorted(f.fingerprint for f in r.findings)

    assert seen(False) == seen(True)


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


GOOD = sorted((SAMPLES / "returns").glob("*.xlsx"))


def _typed(grid):
    return [[(type(v).__name__, v) for v in row] for row in grid]


def _calamine(data: bytes):
    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
        return wb.sheet_names, {n: _typed(wb.get_sheet_by_name(n).to_python(skip_empty_area=False)) for n in wb.sheet_names}
    except BaseException as e:  # noqa: BLE001 - calamine's panics arrive as BaseException
        if isinstance(e, KeyboardInterrupt):
            raise
        return "error", type(e).__name__


def one_pass_agrees(data: bytes) -> bool | None:
    """True: the one pass read the values, and they are calamine's. False: it stepped aside.
    None: the probe refused the file (calamine is then never asked)."""
    try:
        pr, _ = probe(data)
    except ProbeProblem:
        return None
    if pr.values is None:
        return False
    book = Book(pr.values, lambda name: pr.values[name].grid())
    fast = book.sheet_names, {n: _typed(book.grid(n)) for n in book.sheet_names}
    assert fast == _calamine(data)
    return True


def test_samples_are_read_in_one_pass_as_calamine_reads_them():
    files = GOOD + sorted((SAMPLES / "faulty").glob("*.xlsx")) + sorted((SAMPLES / "seed-2023").glob("*.xlsx"))
    assert len(files) > 25
    assert all(one_pass_agrees(f.read_bytes()) is True for f in files)


def test_hostile_corpora_read_in_one_pass_only_as_calamine_reads_them(tmp_path):
    hostile.build(tmp_path / "h1")
    hostile2.build(tmp_path / "h2")
    seen = {True: 0, False: 0, None: 0}
    for f in sorted(tmp_path.rglob("*.xls*")):
        if f.is_file():
            seen[one_pass_agrees(f.read_bytes())] += 1
    assert seen[True] > 10 and seen[False] > 5, seen


# ---------------------------------------------------------------- values, strings and styles at random

NUMBERS = [b"0", b"12", b"+5", b".5", b"5.", b"1e3", b"1E+2", b"-0", b"007", b" 5", b"inf", b"NaN", b"1_0", b"abc", b""]
NUMBERS += [b"12.50", b"-3", b"45000", b"45000.5", b"61", b"60", b"2958465", b"2958466", b"0.0000001", b"1" * 20]
TYPES = [b"", b' t="n"', b' t="s"', b' t="str"', b' t="b"', b' t="inlineStr"', b' t="d"', b' t="zz"', b' t="e"']
TEXTS = ["平", "a\x01b", "a\x1fb", "\ufffe"]
TEXTS += ["a&amp;b", "&lt;&#20013;&#x4e2d;&quot;&apos;", "a\r\nb", "x_x000D_y", "&nbsp;", "&#0;", "  空格  ", "", "&#55296;"]
FORMATS = ["General", "0", "0.00", "@", '"d"0', '0"天"', "[Red]0", "yyyy-mm-dd", "yyyy\\-mm\\-dd", "yyyy/m/d", "h:mm"]
FORMATS += ["[h]:mm:ss", "e", "mmm", 'yyyy"年"m"月"d"日"', "[$-804]yyyy/m/d", "#,##0_ ", "0.0E+00", "ss.0", "yyyy-mm-dd hh:mm"]
_V = re.compile(rb'<c r="[A-Z]+\d+"[^>]*?(?<!/)><v>[^<]*</v></c>')


def _cell_edit(rng: random.Random, body: bytes) -> bytes:
    cells = list(_V.finditer(body))
    if not cells:
        return body
    m = rng.choice(cells)
    ref = re.match(rb'<c (r="[A-Z]+\d+")', m.group()).group(1)
    style = rng.choice([b"", b' s="%d"' % rng.randint(0, 25)])
    kind = rng.random()
    if kind < 0.5:
        new = b"<c " + ref + style + rng.choice(TYPES) + b"><v>" + rng.choice(NUMBERS) + b"</v></c>"
    elif kind < 0.6:
        new = b"<c " + ref + style + b' t="inlineStr"><is><t>' + rng.choice(TEXTS).encode() + b"</t></is></c>"
    elif kind < 0.7:
        value = rng.choice([b"", b"<v/>", b"<v></v>", b"<v>2</v>"])
        new = b"<c " + ref + style + rng.choice([b"", b' t="str"']) + b"><f>1+1</f>" + value + b"</c>"
    elif kind < 0.8:
        new = b"<c " + ref + style + rng.choice([b' cm="1"', b' ph="1"', b" t='s'", b' s = "1"']) + b"><v>1</v></c>"
    elif kind < 0.9:
        new = rng.choice([b"<c " + ref + style + b"></c>", b"<c " + ref + style + b"> </c>", m.group() + m.group()])
    else:  # a later cell first
        later = rng.choice(cells)
        return body[: m.start()] + later.group() + body[m.end() :] if later.start() > m.start() else body
    return body[: m.start()] + new + body[m.end() :]


def _strings_edit(rng: random.Random, sst: bytes) -> bytes:
    entries = list(re.finditer(rb"<si>.*?</si>", sst, re.DOTALL))
    m = rng.choice(entries)
    text = rng.choice(TEXTS).encode()
    new = rng.choice(
        [
            b"<si><t>" + text + b"</t></si>",
            b'<si><t xml:space="preserve">' + text + b"</t></si>",
            b"<si><t/></si>",
            b'<si><r><rPr><b/><sz val="11"/></rPr><t>' + text + '</t></r><r><t xml:space="preserve"> 续</t></r></si>'.encode(),
            '<si><t>基</t><rPh sb="0" eb="1"><t>JI</t></rPh></si>'.encode(),
        ]
    )
    return sst[: m.start()] + new + sst[m.end() :]


def _styles_edit(rng: random.Random, styles: bytes) -> bytes:
    code = rng.choice(FORMATS).replace('"', "&quot;").encode()
    if b'numFmtId="164"' in styles:
        return re.sub(rb'(<numFmt numFmtId="164" formatCode=")[^"]*(")', lambda m: m.group(1) + code + m.group(2), styles)
    return styles


def mutate_values(rng: random.Random, src) -> bytes:
    p = hostile2.parts(src)
    sheets = sorted(n for n in p if n.startswith("xl/worksheets/"))
    for _ in range(rng.randint(1, 4)):
        what = rng.random()
        if what < 0.6:
            name = rng.choice(sheets)
            p[name] = _cell_edit(rng, p[name])
        elif what < 0.8:
            p["xl/sharedStrings.xml"] = _strings_edit(rng, p["xl/sharedStrings.xml"])
        else:
            p["xl/styles.xml"] = _styles_edit(rng, p["xl/styles.xml"])
    return hostile2.pack(p)


def test_values_rewritten_at_random_are_read_as_calamine_reads_them():
    rng = random.Random(2026_12_04)
    seen = {True: 0, False: 0, None: 0}
    for i in range(300):
        seen[one_pass_agrees(mutate_values(rng, GOOD[i % len(GOOD)]))] += 1
    assert seen[True] > 40 and seen[False] > 100, seen


def test_spellings_rewritten_at_random_are_read_as_calamine_reads_them():
    """The XML fuzzer's rewrites (whitespace, quoting, prefixes, cells without r=, duplicate parts)."""
    rng = random.Random(19_2)
    seen = {True: 0, False: 0, None: 0}
    for i in range(120):
        data, _ = hostile2.mutate_return(rng, GOOD[i % len(GOOD)])
        seen[one_pass_agrees(data)] += 1
    assert seen[True] > 10, seen


def test_dates_are_whole_days_in_date_styles():
    """A date typed into the cover (a whole number in a date style) is the date calamine gives;
    a time of day, or a day before 1900-03-01 (Excel's phantom 29 February), is left to calamine."""
    rng = random.Random(7)
    p = hostile2.parts(GOOD[0])
    name = "xl/worksheets/sheet1.xml"
    taken = 0
    for serial in [b"61", b"45000", b"46030", b"2958465", b"60", b"59", b"1", b"45000.25", b"2958466"]:
        body = re.sub(rb'<c r="B10" s="(\d+)" t="s"><v>\d+</v></c>', rb'<c r="B10" s="\1"><v>' + serial + b"</v></c>", p[name])
        assert body != p[name]
        agrees = one_pass_agrees(hostile2.pack(p | {name: body}))
        taken += agrees is True
        assert agrees is (61 <= float(serial) <= 2958465 and serial.isdigit()), serial
    assert taken == 4 and rng


def test_number_formats_are_classified_or_left_to_calamine():
    kind = xlsx_fast.format_kind
    assert [kind(c) for c in ["General", "0", "0.00", "#,##0_ ", '"d"0', '0"天"', "@", "0.0E+00"]] == ["n"] * 8
    assert [kind(c) for c in ["yyyy-mm-dd", "yyyy\\-mm\\-dd", 'yyyy"年"m"月"d"日"', "[$-804]yyyy/m/d", "m/d/yyyy"]] == ["d"] * 5
    assert [kind(c) for c in ["h:mm", "[h]:mm:ss", "mmm", "e", "[Red]0", "yyyy-mm-dd hh:mm", "ss.0"]] == ["?"] * 7
    assert [kind(c) for c in ['"_"yyyy', '"a\\"d']] == ["?"] * 2  # calamine escapes inside quotes too


def test_text_is_read_as_an_xml_parser_reads_it_or_left_alone():
    assert guard.xml_text(b"a&amp;b&lt;&#20013;&#x4e2d;") == "a&b<中中"
    assert guard.xml_text("平".encode()) == "平"
    for doubtful in [b"a\x01b", "\uffff".encode(), b"a\r\nb", b"x_x000D_", b"&nbsp;", b"&#0;", b"&#55296;", b"a & b", b"\xff"]:
        assert guard.xml_text(doubtful) is None, doubtful


def test_the_careful_path_is_still_there():
    """With the one pass switched off, every sample is read by calamine (the reference the other
    tests compare with) and gives the same report."""

    fast = [read_bytes(f.read_bytes(), f.name) for f in GOOD[:5]]
    assert all(probe(f.read_bytes(), careful=True)[0].values is None for f in GOOD[:5])
    careful = [read_bytes(f.read_bytes(), f.name, careful=True) for f in GOOD[:5]]

    def seen(reports):
        return [(r.values, [x.fingerprint for x in r.findings]) for r in reports]

    assert seen(fast) == seen(careful)


def test_a_known_skeleton_gives_what_the_full_pass_gives():
    """Parts that differ from one read before only in their values (and the footer after the sheet
    data) are read from the remembered skeleton: the same formulas, extent and values as the full
    pass, or the full pass itself when a value is in doubt."""
    rng = random.Random(404)
    hits = 0
    for i in range(200):
        src = GOOD[i % len(GOOD)]
        p = hostile2.parts(src)
        data = hostile2.pack(p)
        pr, zf = probe(data)
        names = set(zf.namelist())
        rels, types = parts._workbook_rels(zf, parts.Probe(kind="xlsx"))
        book = xlsx_fast._fast_book(zf, names, rels, types, set())
        name = rng.choice(sorted(n for n in p if n.startswith("xl/worksheets/")))
        body = p[name]
        xlsx_fast.scan(body, book)  # remembered
        for _ in range(5):
            changed = _V.sub(lambda m: _new_value(rng, m.group()), body, count=rng.randint(1, 40))
            if rng.random() < 0.3:
                changed = changed.replace(b"</headerFooter>", b"<evenFooter>x</evenFooter></headerFooter>")
            key = tuple(xlsx_fast._V_SLOT.split(changed[: changed.rfind(b"</sheetData>")])[0::2])
            hits += key in xlsx_fast._SKELETONS
            assert _facts(xlsx_fast.scan(changed, book)) == _facts(xlsx_fast.full_scan(changed, book))
    assert hits > 500


def _facts(cells):
    if cells is None:
        return None
    return cells.formulas, cells.max_row, cells.max_col, None if cells.values is None else _typed(cells.grid())


def _new_value(rng: random.Random, cell: bytes) -> bytes:
    if rng.random() < 0.5:
        return cell
    return re.sub(rb"<v>[^<]*</v>", b"<v>" + rng.choice(NUMBERS + [b"3", b"41"]).replace(b"<", b"") + b"</v>", cell)


def test_shared_strings_in_doubt_are_left_to_calamine():
    """Entries a pattern could miss or misread (a namespace prefix, phonetic runs, a DTD) leave the
    whole table to calamine; plain ones, with or without xml:space, are read."""
    ns = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    x = b'xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    head = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    plain = head + b"<sst " + ns + b'><si><t>a</t></si><si><t xml:space="preserve"> b </t></si><si><t>c</t></si></sst>'
    assert xlsx_fast.shared_strings(plain) == ["a", " b ", "c"]
    for doubtful in [
        head + b"<x:sst " + x + b"><x:si><x:t>a</x:t></x:si></x:sst>",
        head + b"<sst " + ns + b"><si><t>a</t></si><x:si " + x + b"><x:t>b</x:t></x:si><si><t>c</t></si></sst>",
        head + b"<sst " + ns + b'><si><t>a</t><rPh sb="0" eb="1"><t>A</t></rPh></si></sst>',
        head + b'<!DOCTYPE sst [<!ENTITY e "x">]><sst ' + ns + b"><si><t>&e;</t></si></sst>",
        head + b"<sst " + ns + b"><si><t> a</t></si></sst>",
    ]:
        assert xlsx_fast.shared_strings(doubtful) is None, doubtful


@pytest.mark.parametrize(
    "part, edit",
    [
        ("xl/workbook.xml", lambda b: b.replace(b"<sheets>", b'<workbookPr date1904="1"/><sheets>', 1)),  # dates from 1904
        ("xl/worksheets/sheet1.xml", lambda b: b.replace(b'<c r="B6"', b'<c r="B0"', 1)),  # row 0: calamine refuses it
        ("xl/styles.xml", lambda b: b.replace(b'numFmtId="0"', b'numFmtId="00"')),  # an id calamine reads as written
        ("xl/workbook.xml", lambda b: b.replace(b'name="\xe8\xa1\xa8\xe4\xba\x8c"', b'name="\xe8\xa1\xa8&gt;\n\xe4\xba\x8c"', 1)),
    ],
)
def test_what_calamine_reads_otherwise_is_left_to_it(part, edit):
    """1904 dates, row 0, number format ids calamine reads as written, a sheet
    name with '>' and a line break: the one pass never gives a grid calamine would not."""
    p = hostile2.parts(GOOD[0])
    changed = edit(p[part])
    assert changed != p[part]
    data = hostile2.pack(p | {part: changed})
    assert one_pass_agrees(data) in (False, None)


@pytest.mark.parametrize(
    "part, body",
    [
        ("xl/worksheets/sheet1.xml", b'<c r="A1">' * 20000),  # cells left open
        ("xl/sharedStrings.xml", b"<si>" * 20000),  # entries left open
        ("xl/worksheets/sheet1.xml", b"<x>" + b" :c " * 50000 + b"</x>"),  # colons far from any '<'
    ],
)
def test_parts_left_open_are_read_in_linear_time(part, body):
    """A crafted part that never closes its cells or entries: every pattern stops at the next start
    (once, each of these took a minute; now the file is refused or read at once)."""
    p = hostile2.parts(GOOD[0])
    at = p[part].find(b"</sheetData>") if part.endswith("sheet1.xml") else p[part].find(b"</sst>")
    data = hostile2.pack(p | {part: p[part][:at] + body + p[part][at:]})
    assert one_pass_agrees(data) in (False, None, True)


def _outcome(data: bytes):
    try:
        pr, _ = probe(data)
    except ProbeProblem as e:
        return ("refused", e.code, e.detail)
    infos = {n: (i.protected, i.formulas, i.errors, i.cells) for n, i in pr.sheets.items()}
    grids = None if pr.values is None else {n: _typed(c.grid()) for n, c in pr.values.items()}
    return infos, grids


_TAIL_EDITS = [
    (b"</worksheet>", b"<!DOCTYPE x [<!ENTITY a 'b'>]></worksheet>"),
    (b"</worksheet>", b'<sheetProtection sheet="1"/></worksheet>'),
    (b"</worksheet>", b'<sheetProtection password="AB12" sheet="0"/></worksheet>'),
    (b"</worksheet>", "<!-- 备注 --></worksheet>".encode()),
    (b"</oddFooter>", b"<![CDATA[x]]></oddFooter>"),
    (b"</worksheet>", b'<x:sheetProtection sheet="1"/></worksheet>'),
    (b"</worksheet>", b'<ext t = "e"/></worksheet>'),
    (b"<sheetProtection ", b"<sheetProtection\n"),
    (b'sheet="1"', b'sheet="0"'),
    (b"<v>0</v>", b'<v>t="e!</v>'),
    # markup before the sheet data: such a skeleton is remembered, but never quiet
    (b"<sheetData>", b"<!-- x --><sheetData>"),
    (b"<sheetProtection ", b"<sheetProtection "),  # moved before the sheet data, below
]


def _protection_first(body: bytes) -> bytes:
    prot = re.search(rb"<sheetProtection [^>]*/>", body)
    if prot is None:
        return body
    body = body.replace(prot.group(), b"")
    return body.replace(b"<sheetData>", prot.group() + b"<sheetData>", 1)


@pytest.mark.parametrize("edit", _TAIL_EDITS)
def test_a_quiet_skeleton_is_checked_after_its_sheet_data_as_the_whole_part(monkeypatch, edit):
    """Parts with a known quiet skeleton are checked for DTDs, CDATA, prefixes, error types and
    protection after their sheet data only: the outcome is the one of checking the whole part."""
    old, new = edit
    compared = 0
    for src in GOOD[:8]:
        p = hostile2.parts(src)
        probe(hostile2.pack(p))  # its skeletons remembered
        for name in sorted(n for n in p if n.startswith("xl/worksheets/")):
            if old not in p[name]:
                continue
            body = _protection_first(p[name]) if old == new else p[name].replace(old, new, 1)
            changed = dict(p, **{name: body})
            data = hostile2.pack(changed)
            _outcome(data)  # the changed part's own skeleton remembered, when it may be
            cut = xlsx_fast.split(changed[name])
            compared += cut is not None and cut.known is not None
            fast = _outcome(data)
            with monkeypatch.context() as m:
                m.setattr(xlsx_fast.Split, "quiet", property(lambda self: False))
                assert _outcome(data) == fast
    assert compared >= 4


def test_what_a_quiet_skeleton_lacks_covers_every_check():
    """``_MARKUP`` finds everything the part's checks look for: no DTD or comment start, no CDATA,
    no prefixed element, no protection, no error type. Random markup-like bytes."""

    rng = random.Random(1919)
    extra = [b"<!DOCTYPE", b"<!--", b"<sheetProtection ", b"<sheetProtection/>", b"<a:b>", b"<r:x "]
    for _ in range(20000):
        data = _sheet_like(rng) + b"".join(rng.choice(extra) for _ in range(rng.randint(0, 1)))
        if xlsx_fast._MARKUP.search(data) is None:
            assert b"<!" not in data and b"<sheetProtection" not in data and b't="e' not in data, data
            assert _ODD.search(data) is None, data


_TABLE_EDITS = [  # (what, into what): whitespace, empty, prefixed, repeated or unclosed entries; markup around them
    (b"</si><si>", b"</si> <si>"),
    (b"</si><si>", b"</si><si/><si>"),
    (b"</si><si>", b"</si><si></si><si>"),
    (b"</si><si>", b'</si><x:si xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:t>X</x:t></x:si><si>'),
    (b"</si><si>", b"</si><!-- x --><si>"),
    (b"</si><si>", b"</si><si><si>"),
    (b"<si>", b"<si >"),
    (b"</si>", b"</si >"),
    (b"<t>", b"<t> "),
    (b"</t>", b"</t><rPh><t>A</t></rPh>"),
    (b"<t>", b"<t><![CDATA[c]]>"),
    (b"</t>", b"&amp;&#20013;</t>"),
    (b"</rPr>", b'<x:t xmlns:x="x">Y</x:t></rPr>'),
    (b"</rPr>", b'<si a="1"/></rPr>'),
    (b"</sst>", b"</sst>\n"),
    (b"</sst>", b"</sst><!-- end -->"),
    (b"<sst ", b"<sst\n "),
    (b"<sst ", b"<!DOCTYPE sst><sst "),
]


def test_shared_strings_cut_at_their_entries_are_read_as_calamine_reads_them():
    """The table is read only when it is exactly <sst>, entries side by side and </sst>: random edits
    of the samples' tables (plain) and of their LibreOffice round trip's (rich-text runs) are read as
    calamine reads them, or left to it."""
    rng = random.Random(2026_12_07)
    seen = {True: 0, False: 0, None: 0}
    for i in range(240):
        p = hostile2.parts(GOOD[i % len(GOOD)])
        sst = p["xl/sharedStrings.xml"]
        if i % 2:  # runs as LibreOffice writes a label
            sst = sst.replace(b"<si><t>", b'<si><r><rPr><sz val="10"/><rFont val="Noto Sans CJK SC"/></rPr><t>', 3)
            sst = sst.replace(b"</t></si>", b"</t></r></si>", 3)
        for _ in range(rng.randint(0, 2)):
            old, new = rng.choice(_TABLE_EDITS)
            at = [m.start() for m in re.finditer(re.escape(old), sst)]
            if at:
                k = rng.choice(at)
                sst = sst[:k] + new + sst[k + len(old) :]
        seen[one_pass_agrees(hostile2.pack(p | {"xl/sharedStrings.xml": sst}))] += 1
    assert seen[True] > 40 and seen[False] > 40, seen


def test_a_known_skeleton_is_bounded_before_its_grid_is_built(tmp_path):
    """A part read before (its skeleton remembered) with a cell in row 1,048,576 is refused again,
    never laid out as a grid of 17 billion cells first."""
    hostile.build(tmp_path)
    data = (tmp_path / "million_rows.xlsx").read_bytes()
    for _ in range(2):
        with pytest.raises(ProbeProblem) as refused:
            probe(data)
        assert refused.value.code == "file-too-large"


def _probed(data: bytes, careful: bool):
    try:
        pr, _ = probe(data, careful=careful)
    except ProbeProblem as e:
        return ("refused", e.code, e.detail)
    return {n: (i.protected, i.formulas, i.errors, i.cells) for n, i in pr.sheets.items()}, pr.macros_hidden


@pytest.mark.parametrize(
    "part, edit",
    [
        ("xl/worksheets/sheet1.xml", lambda b: b.replace(b"</worksheet>", b"<foo:bar/></worksheet>")),  # unbound element
        ("xl/worksheets/sheet1.xml", lambda b: b.replace(b"<row ", b'<row foo:x="1" ', 1)),  # unbound attribute
        ("xl/worksheets/sheet1.xml", lambda b: b.replace(b"</worksheet>", b'<ext xmlns:y="u"><y:z/></ext></worksheet>')),
        (
            "xl/worksheets/sheet1.xml",
            lambda b: b.replace(b"</worksheet>", b'<ext xmlns:y="u"/><y:z/></worksheet>'),
        ),  # out of scope
        ("xl/macrosheets/sheet1.xml", lambda b: b"<xm:macrosheet/>"),  # read by no reader: only bounded
        ("xl/macrosheets/sheet1.xml", lambda b: b'<xm:macrosheet><sheetData><row><c r="A1"/></row></sheetData></xm:macrosheet>'),
    ],
)
def test_an_unbound_namespace_prefix_is_read_as_the_xml_parser_reads_it(part, edit):
    """The XML parser refuses a prefix no enclosing element declares; the patterns would not notice.
    The fast scan leaves any prefix its root does not declare to the parser, so both readings agree:
    a listed sheet with one is unreadable, a part no relationship points at is still only bounded
    (and its macros reported)."""
    p = hostile2.parts(GOOD[0])
    data = hostile2.pack(p | {part: edit(p.get(part, b""))})
    fast = _probed(data, careful=False)
    assert fast == _probed(data, careful=True)
    if part.startswith("xl/macrosheets/"):
        assert fast[1] == [part]
