"""Issue 19: the probe's one pass reads a return's values (``toolkit/xlsx_fast.py``) instead of
python-calamine. Wherever it does, the grid of every sheet must be the one calamine gives, cell by
cell and type by type; wherever it is unsure it must step aside. Checked on the samples, both hostile
corpora and real returns whose values, strings, styles and cell spellings are rewritten at random."""

from __future__ import annotations

import io
import random
import re

import corpus_broken_files
import corpus_disguised_files
import pytest
from conftest import SAMPLES
from python_calamine import CalamineWorkbook

from toolkit import probe as probe_mod
from toolkit import xlsx_fast
from toolkit.probe import ProbeProblem, probe

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
    book = xlsx_fast.FastBook(pr.values)
    fast = book.sheet_names, {n: _typed(book.grid(n)) for n in book.sheet_names}
    assert fast == _calamine(data)
    return True


def test_samples_are_read_in_one_pass_as_calamine_reads_them():
    files = GOOD + sorted((SAMPLES / "faulty").glob("*.xlsx")) + sorted((SAMPLES / "seed-2023").glob("*.xlsx"))
    assert len(files) > 25
    assert all(one_pass_agrees(f.read_bytes()) is True for f in files)


def test_hostile_corpora_read_in_one_pass_only_as_calamine_reads_them(tmp_path):
    corpus_broken_files.build(tmp_path / "h1")
    corpus_disguised_files.build(tmp_path / "h2")
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
    p = corpus_disguised_files.parts(src)
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
    return corpus_disguised_files.pack(p)


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
        data, _ = corpus_disguised_files.mutate_return(rng, GOOD[i % len(GOOD)])
        seen[one_pass_agrees(data)] += 1
    assert seen[True] > 10, seen


def test_dates_are_whole_days_in_date_styles():
    """A date typed into the cover (a whole number in a date style) is the date calamine gives;
    a time of day, or a day before 1900-03-01 (Excel's phantom 29 February), is left to calamine."""
    rng = random.Random(7)
    p = corpus_disguised_files.parts(GOOD[0])
    name = "xl/worksheets/sheet1.xml"
    taken = 0
    for serial in [b"61", b"45000", b"46030", b"2958465", b"60", b"59", b"1", b"45000.25", b"2958466"]:
        body = re.sub(rb'<c r="B10" s="(\d+)" t="s"><v>\d+</v></c>', rb'<c r="B10" s="\1"><v>' + serial + b"</v></c>", p[name])
        assert body != p[name]
        agrees = one_pass_agrees(corpus_disguised_files.pack(p | {name: body}))
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
    assert xlsx_fast.xml_text(b"a&amp;b&lt;&#20013;&#x4e2d;") == "a&b<中中"
    assert xlsx_fast.xml_text("平".encode()) == "平"
    for doubtful in [b"a\x01b", "\uffff".encode(), b"a\r\nb", b"x_x000D_", b"&nbsp;", b"&#0;", b"&#55296;", b"a & b", b"\xff"]:
        assert xlsx_fast.xml_text(doubtful) is None, doubtful


@pytest.mark.parametrize("off", ["VALUES"])
def test_the_careful_path_is_still_there(monkeypatch, off):
    """With the one pass switched off, every sample is read by calamine (the reference the other
    tests compare with) and gives the same report."""
    from toolkit.reader import read_bytes

    fast = [read_bytes(f.read_bytes(), f.name) for f in GOOD[:5]]
    monkeypatch.setattr(probe_mod, off, False)
    assert all(probe(f.read_bytes())[0].values is None for f in GOOD[:5])
    careful = [read_bytes(f.read_bytes(), f.name) for f in GOOD[:5]]

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
        p = corpus_disguised_files.parts(src)
        data = corpus_disguised_files.pack(p)
        pr, zf = probe(data)
        names = set(zf.namelist())
        rels, types = probe_mod._workbook_rels(zf, probe_mod.Probe(kind="xlsx"))
        book = probe_mod._fast_book(zf, names, rels, types)
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
    p = corpus_disguised_files.parts(GOOD[0])
    changed = edit(p[part])
    assert changed != p[part]
    data = corpus_disguised_files.pack(p | {part: changed})
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
    p = corpus_disguised_files.parts(GOOD[0])
    at = p[part].find(b"</sheetData>") if part.endswith("sheet1.xml") else p[part].find(b"</sst>")
    data = corpus_disguised_files.pack(p | {part: p[part][:at] + body + p[part][at:]})
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
        p = corpus_disguised_files.parts(src)
        probe(corpus_disguised_files.pack(p))  # its skeletons remembered
        for name in sorted(n for n in p if n.startswith("xl/worksheets/")):
            if old not in p[name]:
                continue
            body = _protection_first(p[name]) if old == new else p[name].replace(old, new, 1)
            changed = dict(p, **{name: body})
            data = corpus_disguised_files.pack(changed)
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
    from test_perf_paths import _sheet_like

    rng = random.Random(1919)
    extra = [b"<!DOCTYPE", b"<!--", b"<sheetProtection ", b"<sheetProtection/>", b"<a:b>", b"<r:x "]
    for _ in range(20000):
        data = _sheet_like(rng) + b"".join(rng.choice(extra) for _ in range(rng.randint(0, 1)))
        if xlsx_fast._MARKUP.search(data) is None:
            assert not probe_mod._odd(data) and b"<!" not in data and b"<sheetProtection" not in data, data
            assert probe_mod._ODD.search(data) is None, data


def test_shared_strings_quick_branch_reads_as_the_entry_by_entry_loop():
    """The whole-table pattern (edge spaces allowed only where preserved) gives the table the
    entry-by-entry loop gives, or steps aside to it. Random tables of edge-space spellings."""
    rng = random.Random(2021)
    texts = ["平", " 前", "后 ", "\t制表", "换行\n", " ", "", "中 间", "a\nb", "  空格  "]
    quick = 0
    for _ in range(3000):
        entries = []
        for _ in range(rng.randint(1, 6)):
            t = rng.choice(texts).encode()
            entries.append(rng.choice([b"<si><t>%s</t></si>", b'<si><t xml:space="preserve">%s</t></si>']) % t)
        sst = b'<?xml version="1.0" encoding="UTF-8"?>\n<sst xmlns="x">' + b"".join(entries) + b"</sst>"
        got = xlsx_fast.shared_strings(sst)
        found = xlsx_fast._SI.findall(sst)
        loop = [xlsx_fast._entry(b) for b in found]
        want = None if None in loop else loop
        assert got == want, sst
        quick += len(xlsx_fast._SI_PLAIN_TEXT.findall(sst.decode())) == len(entries)
    assert 300 < quick < 2700
