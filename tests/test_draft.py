"""Issue 17: `nianbao draft` — the published report (Word and web page) from a return or a summary.

The tables are compared with the format definition (labels, merges, positions), never with a
second hand-typed copy; every figure of the prose is traced back to the source values; the web
page is read back by `nianbao import`'s reader. The LibreOffice round trip is in test_draft_render.py.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, run_cli, sha256
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.check import CheckOptions, check_report
from toolkit.draft import (
    DraftOptions,
    build_document,
    pending_in_file,
    placeholders,
    read_source,
    render_html,
    write_docx,
    write_html,
)
from toolkit.draft import model as M
from toolkit.draft.sentences import number_text, percent
from toolkit.published.importer import read_published
from toolkit.report import Report, derive_totals
from toolkit.roster import Unit
from toolkit.spec import current_format
from toolkit.synth import random_values
from toolkit.template import ReturnContent, write_return

SECTIONS = current_format().sections

SEED_RETURN = SAMPLES / "seed-2023" / "152502201_宝力根苏木_2023年政府信息公开年报.xlsx"
SEED_PUBLISHED = SAMPLES / "published" / "宝力根苏木2023年政府信息公开工作年度报告.txt"
COVER = {"filler": "图雅", "phone": "0479-0000108", "date": "2026-01-12"}


# ---------------------------------------------------------------- helpers (also used by test_draft_render.py)


def make_report(
    fmt, values: dict, year: int = 2025, name: str = "宝力根苏木", unit_type: str = "苏木", level: str = "填报单位"
) -> Report:
    inputs = {c.id: values.get(c.id, 0) for c in fmt.inputs}
    return Report(
        format_id=fmt.id,
        format_version=fmt.version,
        year=year,
        unit_code="152502201",
        unit_name=name,
        unit_type=unit_type,
        level=level,
        values=derive_totals(fmt, inputs),
    )


def make_return(path: Path, fmt, values: dict, year: int = 2025, unit=("152502201", "宝力根苏木", "苏木")) -> Path:
    write_return(
        path, fmt, ReturnContent(unit=Unit(*unit), year=year, values={c.id: values.get(c.id, 0) for c in fmt.inputs}, cover=COVER)
    )
    return path


def expected_grid(fmt, sheet, report) -> dict[tuple[int, int], tuple[int, int, str]]:
    """What the format definition says the published table is: anchor → (rowspan, colspan, text)."""
    out = {(lb.row - sheet.first_row + 1, lb.col - sheet.first_col + 1): (lb.rowspan, lb.colspan, lb.text) for lb in sheet.labels}
    for c in sheet.cells:
        out[(c.row - sheet.first_row + 1, c.col - sheet.first_col + 1)] = (1, c.colspan, number_text(report.value(c.id)))
    return out


def html_grids(html_text: str) -> list[dict[tuple[int, int], tuple[int, int, str]]]:
    """Every <table> of a page as anchor → (rowspan, colspan, text), by the HTML table model."""
    from lxml import html as lhtml

    out = []
    for table in lhtml.fromstring(html_text.encode("utf-8")).iter("table"):
        taken: set[tuple[int, int]] = set()
        grid = {}
        for r, tr in enumerate(table.iter("tr"), start=1):
            c = 1
            for cell in tr:
                while (r, c) in taken:
                    c += 1
                rs, cs = int(cell.get("rowspan", 1)), int(cell.get("colspan", 1))
                grid[(r, c)] = (rs, cs, " ".join(cell.text_content().split()))
                taken |= {(rr, cc) for rr in range(r, r + rs) for cc in range(c, c + cs)}
                c += cs
        out.append(grid)
    return out


def docx_grids(path: Path, sliver_twips: int = 0) -> list[dict[tuple[int, int], tuple[int, int, str]]]:
    """Every table of a .docx as anchor → (rowspan, colspan, text), from python-docx's layout grid.
    Column boundaries closer than ``sliver_twips`` are one boundary (LibreOffice's re-save can put a
    merged cell's edge 1 twip off the others, where its relative column units round differently)."""
    from docx import Document
    from docx.oxml.ns import qn

    out = []
    for table in Document(str(path)).tables:
        pos = [0]
        for g in table._tbl.tblGrid.findall(qn("w:gridCol")):
            pos.append(pos[-1] + int(g.get(qn("w:w"))))
        kept: list[int] = []
        for p in pos:
            if not kept or p - kept[-1] > sliver_twips:
                kept.append(p)

        def snap(p: int, kept=kept) -> int:
            return min(range(len(kept)), key=lambda i: abs(kept[i] - p))  # noqa: B023 - kept is bound as a default

        cells = table._cells  # one entry per grid position; a merged cell repeats the same object
        ncols = table._column_count
        spans: dict[int, list[tuple[int, int]]] = {}
        objs = {}
        for i, cell in enumerate(cells):
            spans.setdefault(id(cell), []).append(divmod(i, ncols))
            objs[id(cell)] = cell
        grid = {}
        for key, where in spans.items():
            rows, cols = [p[0] for p in where], [p[1] for p in where]
            first, last = snap(pos[min(cols)]), snap(pos[max(cols) + 1])
            grid[(min(rows) + 1, first + 1)] = (max(rows) - min(rows) + 1, last - first, objs[key].text.strip())
        out.append(grid)
    return out


def published_inputs(fmt) -> list[str]:
    return [c.id for c in fmt.inputs if fmt.sheet(c.sheet_id).published]


def assert_figures_trace(doc: M.Document, report: Report, previous: Report | None = None) -> int:
    """Every number of the prose is a run whose value is the source's (or derived from it), and
    no digit stands outside such a run. Returns how many figures were checked."""
    checked = 0
    for p in doc.paragraphs():
        rest = p.text
        for r in p.runs:
            if r.kind in (M.DATE, M.REF, M.WARNING, M.PLACEHOLDER):
                rest = rest.replace(r.text, "", 1)
                continue
            if r.kind not in M.NUMERIC:
                continue
            rest = rest.replace(r.text, "", 1)
            assert r.text == number_text(r.value) or r.kind in (M.GROWTH, M.SHARE), r
            checked += 1
            cid = r.cells[0]
            now = sum(report.value(c) for c in r.cells)
            before = sum(previous.values[c] for c in r.cells) if previous is not None else None
            if r.kind == M.FIGURE:
                assert len(r.cells) == 1 and r.value == report.value(cid), r
            elif r.kind == M.TOTAL:
                assert abs(r.value - now) < 1e-9, r
            elif r.kind == M.PREV_FIGURE:
                assert previous is not None and r.value == previous.values[cid], r
            elif r.kind == M.CHANGE:
                assert abs(r.value - abs(now - before)) < 1e-9, r
            elif r.kind == M.GROWTH:
                exact = 100 * abs(now - before) / before
                places = len(r.text.split(".")[1]) if "." in r.text else 0
                assert r.value == round(exact, max(places, 1)) and float(r.text) == r.value, r
            elif r.kind == M.SHARE:
                part = sum(report.value(c) for c in r.cells[:-1])
                exact = 100 * part / report.value(r.cells[-1])
                assert abs(float(r.text) - exact) <= 0.05 + 1e-9, r
                assert float(r.text) < 100 or part == report.value(r.cells[-1]), r  # never rounded up to 100%
        assert not re.search(r"\d", rest), f"a digit outside a traced run: {rest!r}"
    return checked


def figures(doc: M.Document) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in doc.runs():
        if r.kind == M.FIGURE:
            out.setdefault(r.cells[0], []).append(r.value)
    return out


# ---------------------------------------------------------------- the tables are the format's


def test_tables_are_the_format_definition(fmt):
    report = read_source(SEED_RETURN)
    doc = build_document(report, fmt)
    published = [s for s in fmt.sheets if s.published]
    assert [t.sheet_id for t in doc.tables()] == [s.id for s in published]
    for table, sheet in zip(doc.tables(), published, strict=True):
        got = {(c.row, c.col): (c.rowspan, c.colspan, c.text) for c in table.cells}
        assert got == expected_grid(fmt, sheet, report)
        grid = table.grid()
        assert all(cell is not None for row in grid for cell in row), "a hole in the table"
        covered = sum(c.rowspan * c.colspan for c in table.cells)
        assert covered == table.n_rows * table.n_cols, "overlapping cells"


def test_headings_in_official_order_and_fee_sheet_is_prose(fmt):
    doc = build_document(read_source(SEED_RETURN), fmt)
    heads = [p.text for p in doc.paragraphs() if p.style == "heading1"]
    assert heads == list(SECTIONS)
    assert doc.title == "宝力根苏木2023年政府信息公开工作年度报告"
    unpublished = [s for s in fmt.sheets if not s.published]
    assert unpublished and not any(t.sheet_id == s.id for t in doc.tables() for s in unpublished)
    six = [p.text for p in doc.paragraphs()]
    assert "2023年，本苏木未发出政府信息公开信息处理费收费通知，未收取信息处理费。" in six


def test_docx_and_html_tables_have_the_official_merges(fmt, tmp_path):
    report = read_source(SEED_RETURN)
    doc = build_document(report, fmt)
    docx, page = write_docx(doc, tmp_path / "a.docx"), write_html(doc, tmp_path / "a.html")
    expected = [expected_grid(fmt, s, report) for s in fmt.sheets if s.published]
    assert docx_grids(docx) == expected
    assert html_grids(page.read_text(encoding="utf-8")) == expected


def test_html_is_clean_and_accessible(fmt):
    from lxml import html as lhtml

    text = render_html(build_document(read_source(SEED_RETURN), fmt))
    root = lhtml.fromstring(text.encode("utf-8"))
    assert root.get("lang") == "zh-CN" and root.find(".//meta[@charset]").get("charset") == "utf-8"
    assert not root.xpath("//script") and not root.xpath("//style")  # styles inline: they survive a paste
    assert not root.xpath("//@*[starts-with(name(), 'on')]")  # no event handlers either
    assert all("border:1px solid" in c.get("style", "") for c in root.xpath("//td|//th"))
    for table in root.iter("table"):
        labelled = table.get("aria-labelledby")
        assert root.get_element_by_id(labelled).tag == "h2"
        assert all(th.get("scope") in ("col", "colgroup", "row", "rowgroup") for th in table.iter("th"))
        assert all(re.fullmatch(r"[\d.]+", td.text_content()) for td in table.iter("td"))
    assert root.xpath("//mark[@class='placeholder']")


def test_html_escapes_unit_names(fmt):
    rep = make_report(fmt, {}, name="<script>alert(1)</script>镇")
    text = render_html(build_document(rep, fmt))
    assert "<script>" not in text and "&lt;script&gt;" in text


# ---------------------------------------------------------------- round trip through the importer (HTML)


def round_trip_html(fmt, report, tmp_path, **kw):
    page = write_html(build_document(report, fmt, **kw), tmp_path / "报告.html")
    back = check_report(read_published(page), CheckOptions())
    return back


@pytest.mark.parametrize("which", ["seed", "summary"])
def test_html_round_trip_recovers_every_figure(fmt, tmp_path, which):
    if which == "seed":
        source = SEED_RETURN
    else:
        source = tmp_path / "汇总.xlsx"
        r = run_cli("consolidate", SAMPLES / "returns", "--roster", SAMPLES / "roster.csv", "--year", "2025", "--out", source)
        assert r.returncode == 0, r.stderr
    report = read_source(source)
    back = round_trip_html(fmt, report, tmp_path)
    assert back.readable and not back.unknown
    assert {c: back.values[c] for c in published_inputs(fmt)} == {c: report.value(c) for c in published_inputs(fmt)}
    assert not [f for f in back.findings if f.severity == "错误"], [f.message for f in back.findings]
    assert not [f for f in back.findings if f.code in ("narrative-mismatch", "section-title", "format-hybrid")]
    assert back.year == report.year and back.unit_name == build_document(report, fmt).unit_name


# ---------------------------------------------------------------- sentences


def test_summary_sentences_state_the_table_figures(fmt, tmp_path):
    source = tmp_path / "汇总.xlsx"
    assert (
        run_cli(
            "consolidate", SAMPLES / "returns", "--roster", SAMPLES / "roster.csv", "--year", "2025", "--out", source
        ).returncode
        == 0
    )
    report = read_source(source)
    doc = build_document(report, fmt)
    assert assert_figures_trace(doc, report) > 20
    text = "\n".join(p.text for p in doc.paragraphs())
    v = report.value
    assert f"共收到政府信息公开申请{v('t3.r1.tot')}件" in text
    assert f"上年结转政府信息公开申请{v('t3.r2.tot')}件" in text
    assert f"结转下年度继续办理{v('t3.r4.tot')}件" in text
    assert f"被申请行政复议{v('t4.r1.rv_tot')}件" in text
    assert f"行政事业性收费{number_text(v('t2.fees.amt'))}万元" in text
    assert doc.title == "锡林浩特市2025年政府信息公开工作年度报告" and "全市各级行政机关" in text
    assert "由锡林浩特市所属各单位报送的年度报表汇总形成" in text
    # every non-zero result cell of the 总计 column is named with its own figure
    for c in fmt.sheet("t3").cells:
        if c.col_id == "tot" and c.row_id.startswith("r3_") and c.row_id != "r3_7" and v(c.id):
            assert v(c.id) in figures(doc)[c.id]


def test_all_zero_return_reads_naturally(fmt):
    doc = build_document(make_report(fmt, {}), fmt)
    body = "\n".join(p.text for p in doc.paragraphs() if p.style == "body")
    assert assert_figures_trace(doc, make_report(fmt, {})) == 0
    assert not re.search(r"(?<![\d.])0(件|万元|元|%)", body) and "占" not in body
    assert "本苏木未收到政府信息公开申请，也没有上年结转的申请。" in body
    assert "未发生因政府信息公开工作被申请行政复议、提起行政诉讼的情况" in body
    assert "未制发、废止行政规范性文件" in body and "无行政许可、行政处罚、行政强制处理决定" in body
    assert "无行政事业性收费" in body and "本苏木未发出政府信息公开信息处理费收费通知，未收取信息处理费。" in body


def test_applications_results_and_shares(fmt):
    vals = {
        "t3.r1.np": 5,
        "t3.r1.biz": 1,
        "t3.r2.np": 1,
        "t3.r3_1.np": 3,
        "t3.r3_2.biz": 1,
        "t3.r3_4_1.np": 1,
        "t3.r3_6_2.np": 1,
        "t3.r4.np": 1,
    }
    rep = make_report(fmt, vals)
    doc = build_document(rep, fmt)
    assert assert_figures_trace(doc, rep) > 0
    text = next(p.text for p in doc.paragraphs() if p.text.startswith("2025年，本苏木共收到政府信息公开申请"))
    assert text.startswith("2025年，本苏木共收到政府信息公开申请6件，其中自然人5件、商业企业1件；上年结转政府信息公开申请1件。")
    assert "本年度办结6件，其中予以公开3件，占50%；部分公开1件，占16.7%；" in text
    assert "无法提供1件，占16.7%（均为本机关不掌握相关政府信息）" in text
    assert "其他处理1件，占16.7%（均为申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请）" in text
    assert text.endswith("；结转下年度继续办理1件。")
    only_np = build_document(make_report(fmt, {"t3.r1.np": 2, "t3.r3_1.np": 2}), fmt)
    assert any("共收到政府信息公开申请2件，均由自然人提出。" in p.text for p in only_np.paragraphs())


def test_appeals_sentence(fmt):
    vals = {"t4.r1.rv_main": 2, "t4.r1.rv_pend": 1, "t4.r1.as_corr": 1}
    rep = make_report(fmt, vals, name="锡林浩特市司法局", unit_type="县级部门")
    text = "\n".join(p.text for p in build_document(rep, fmt).paragraphs())
    assert (
        "2025年，本机关因政府信息公开工作被申请行政复议3件（结果维持2件、尚未审结1件）；"
        "被提起政府信息公开行政诉讼1件，均为复议后起诉（结果纠正1件）。"
    ) in text
    only_suit = "\n".join(p.text for p in build_document(make_report(fmt, {"t4.r1.ds_othr": 2}), fmt).paragraphs())
    assert "未因政府信息公开工作被申请行政复议；被提起政府信息公开行政诉讼2件，均为未经复议直接起诉（其他结果2件）。" in only_suit


@pytest.mark.parametrize(
    ("fees", "expected"),
    [
        ({}, "2025年，本苏木未发出政府信息公开信息处理费收费通知，未收取信息处理费。"),
        (
            {"t6.notices.n": 2, "t6.notice_amt.n": 300, "t6.collected.n": 150},
            "2025年，本苏木依据《政府信息公开信息处理费管理办法》发出收费通知2件，收费通知总金额300元，实际收取信息处理费150元。",
        ),
        (
            {"t6.notices.n": 1, "t6.notice_amt.n": 85.5},
            "2025年，本苏木依据《政府信息公开信息处理费管理办法》发出收费通知1件，收费通知总金额85.5元，实际未收取信息处理费。",
        ),
        (
            {"t6.notice_amt.n": 50},
            "2025年，本苏木依据《政府信息公开信息处理费管理办法》收费通知总金额50元，实际未收取信息处理费。",
        ),
        ({"t6.collected.n": 40}, "2025年，本苏木实际收取信息处理费40元。"),
    ],
)
def test_fee_sentence_in_section_six(fmt, fees, expected):
    rep = make_report(fmt, fees)
    doc = build_document(rep, fmt)
    paras = [p.text for p in doc.paragraphs()]
    six = paras.index("六、其他需要报告的事项")
    assert paras[six + 1] == expected
    assert_figures_trace(doc, rep)


def test_amounts_keep_their_decimals(fmt, tmp_path):
    assert [number_text(x) for x in (129.15, 3.5, 0.1 + 0.2, 7730.28, 12.0, 0)] == ["129.15", "3.5", "0.3", "7730.28", "12", "0"]
    assert percent(1, 3) == (33.3, "33.3") and percent(1, 2) == (50.0, "50") and percent(1, 3000) == (0.03, "0.03")
    rep = make_report(fmt, {"t2.fees.amt": 3.456, "t2.license.n": 12})
    back = round_trip_html(fmt, rep, tmp_path)
    assert back.values["t2.fees.amt"] == 3.456
    assert any("行政事业性收费3.456万元" in p.text for p in build_document(rep, fmt).paragraphs())


def test_year_on_year_comparisons(fmt, tmp_path):
    prev = make_report(
        fmt,
        {
            "t2.license.n": 140,
            "t2.penalty.n": 4,
            "t2.coercion.n": 3,
            "t3.r1.np": 3,
            "t3.r3_1.np": 3,
            "t4.r1.rv_main": 1,
            "t2.fees.amt": 2.5,
        },
        year=2024,
    )
    cur = make_report(
        fmt,
        {
            "t2.license.n": 146,
            "t2.penalty.n": 2,
            "t3.r1.np": 4,
            "t3.r3_1.np": 4,
            "t4.r1.rv_main": 1,
            "t2.fees.amt": 3.1,
            "t2.norm.made": 1,
        },
    )
    doc = build_document(cur, fmt, prev)
    assert assert_figures_trace(doc, cur, prev) > 10
    text = "\n".join(p.text for p in doc.paragraphs())
    assert (
        "作出行政许可处理决定146件、行政处罚处理决定2件，无行政强制处理决定（上年行政强制3件）；行政事业性收费3.1万元。" in text
    )
    assert (
        "行政许可处理决定比上年增加6件、增长4.3%；行政处罚处理决定比上年减少2件、下降50%；"
        "行政事业性收费比上年增加0.6万元、增长24%。"
    ) in text
    assert "共收到政府信息公开申请4件，比上年增加1件、增长33.3%" in text
    assert "被申请行政复议1件（结果维持1件）；未被提起政府信息公开行政诉讼。行政复议与上年持平。" in text
    assert text.count("与上年持平") == 1
    # last year's figures never read as this year's: the importer's narrative check stays quiet
    back = round_trip_html(fmt, cur, tmp_path, previous=prev)
    assert not [f for f in back.findings if f.code == "narrative-mismatch"]


def test_comparisons_from_zero_and_to_zero(fmt, tmp_path):
    prev = make_report(fmt, {"t3.r1.np": 3, "t3.r3_1.np": 3}, year=2024)
    cur = make_report(fmt, {"t2.license.n": 5})
    text = "\n".join(p.text for p in build_document(cur, fmt, prev).paragraphs())
    assert "行政许可处理决定比上年增加5件。" in text  # no percentage of a zero base
    assert "本苏木未收到政府信息公开申请（上年为3件），也没有上年结转的申请。" in text
    back = round_trip_html(fmt, cur, tmp_path, previous=prev)
    assert not [f for f in back.findings if f.code == "narrative-mismatch"]


def test_unknown_unit_name_is_a_placeholder(fmt):
    doc = build_document(make_report(fmt, {}, name=""), fmt)
    assert doc.title == "【请填写：单位名称】2025年政府信息公开工作年度报告"
    assert placeholders(doc)[0].text == "单位名称"


def test_help_has_examples(cli):
    r = cli("draft", "--help")
    assert r.returncode == 0 and "示例" in r.stdout and "nianbao draft" in r.stdout and "--prev" in r.stdout


def test_previous_of_another_unit_is_noted(fmt):
    other = make_report(fmt, {}, year=2024, name="朝克乌拉苏木")
    assert any("朝克乌拉苏木" in n for n in build_document(make_report(fmt, {}), fmt, other).notes)
    same = make_report(fmt, {}, year=2024, name="宝力根苏木人民政府")
    assert not build_document(make_report(fmt, {}), fmt, same).notes


def test_previous_must_be_last_year(fmt):
    from toolkit.errors import NianbaoError

    with pytest.raises(NianbaoError, match="应提供2024年度"):
        build_document(make_report(fmt, {}), fmt, make_report(fmt, {}, year=2023))


def test_government_and_department_guidance(fmt):
    town = [p.text for p in build_document(make_report(fmt, {}), fmt).paragraphs()]
    dept = [p.text for p in build_document(make_report(fmt, {}, name="锡林浩特市审计局", unit_type="县级部门"), fmt).paragraphs()]
    assert any("工作考核、社会评议和责任追究结果" in t for t in town)
    assert not any("工作考核、社会评议和责任追究结果" in t for t in dept)
    assert any(t.startswith("2025年，本机关") for t in dept)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), busy=st.booleans(), with_prev=st.booleans())
def test_property_random_returns_trace_and_round_trip(fmt, tmp_path_factory, seed, busy, with_prev):
    rng = random.Random(seed)
    cur = make_report(fmt, random_values(fmt, rng, busy=busy))
    prev = make_report(fmt, random_values(fmt, rng, busy=busy), year=2024) if with_prev else None
    doc = build_document(cur, fmt, prev)
    assert_figures_trace(doc, cur, prev)
    back = round_trip_html(fmt, cur, tmp_path_factory.mktemp("rt"), previous=prev)
    assert {c: back.values[c] for c in published_inputs(fmt)} == {c: cur.value(c) for c in published_inputs(fmt)}
    assert not [f for f in back.findings if f.severity == "错误" or f.code == "narrative-mismatch"]


# ---------------------------------------------------------------- placeholders


def test_placeholders_are_listed_and_found_again_in_the_files(fmt, tmp_path):
    doc = build_document(read_source(SEED_RETURN), fmt, options=DraftOptions(site="宝力根苏木政务公开专栏"))
    pending = placeholders(doc)
    assert pending and all(p.kind == "请填写" for p in pending)
    assert not any("网站名称" in p.text for p in pending)  # --site filled it
    assert any(p.heading == "一、总体情况 （三）政府信息管理" for p in pending)
    docx, page = write_docx(doc, tmp_path / "a.docx"), write_html(doc, tmp_path / "a.html")
    assert pending_in_file(docx) == pending == pending_in_file(page)
    # the office replaces them in Word: the file is then clean
    from docx import Document

    d = Document(str(docx))
    for p in d.paragraphs:
        if "【请填写" in p.text:
            for run in p.runs:
                run.text = re.sub(r"【请填写：[^】]*】", "（已填写）", run.text)
    d.save(str(tmp_path / "b.docx"))
    assert pending_in_file(tmp_path / "b.docx") == []


# ---------------------------------------------------------------- the command


def test_cli_writes_docx_and_html_and_lists_placeholders(tmp_path):
    before = sha256(SEED_RETURN)
    r = run_cli("draft", SEED_RETURN, "--out", tmp_path / "年报.docx", "--html", tmp_path / "年报.html")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "年报.docx").stat().st_size > 10000 and (tmp_path / "年报.html").is_file()
    assert "已生成2023年度年报文稿（宝力根苏木）" in r.stderr and "处【请填写：…】" in r.stderr
    assert "一、总体情况（三）政府信息管理：政府信息管理情况" in r.stderr.replace("\n", "")
    assert sha256(SEED_RETURN) == before
    assert not list(tmp_path.glob(".~nianbao-*"))


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d: d / "没有这个文件.xlsx", "找不到文件"),
        (lambda d: SAMPLES / "roster.csv", "不是填报表或汇总表"),
        (lambda d: (d / "假的.xlsx").write_bytes(b"not a workbook at all") and d / "假的.xlsx", "不是可用的填报表或汇总表"),
        (lambda d: ROOT / "templates" / "zfxxgk-2021.toml", "不是填报表或汇总表"),
    ],
)
def test_cli_bad_input_is_a_chinese_message_and_exit_2(tmp_path, make, needle):
    r = run_cli("draft", make(tmp_path), "--out", tmp_path / "x.docx")
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "x.docx").exists()


def test_cli_bad_options_exit_2(tmp_path):
    r = run_cli("draft", SEED_RETURN, "--out", tmp_path / "x.pdf")
    assert r.returncode == 2 and "--out 应为 .docx" in r.stderr
    r = run_cli("draft", SEED_RETURN, "--out", tmp_path / "x.docx", "--html", tmp_path / "x.txt")
    assert r.returncode == 2 and "--html 应为 .html" in r.stderr
    r = run_cli("draft", SEED_RETURN, "--out", tmp_path / "x.docx", "--prev", SAMPLES / "roster.csv")
    assert r.returncode == 2 and "不能作为上年数据" in r.stderr
    r = run_cli("draft", SEED_RETURN, "--out", tmp_path / "x.docx", "--prev", SEED_PUBLISHED)  # 2023 is not 2022
    assert r.returncode == 2 and "应提供2022年度" in r.stderr
    assert not (tmp_path / "x.docx").exists()


def test_cli_format_without_wording_is_refused(tmp_path):
    from toolkit.spec import formats

    trial = make_return(tmp_path / "2020.xlsx", formats()["zfxxgk-2019"], {"t2.license.n": 3}, year=2020)
    r = run_cli("draft", trial, "--out", tmp_path / "x.docx")
    assert r.returncode == 2 and "没有“zfxxgk-2019”格式的年报文字模板" in r.stderr, r.stderr
    assert not (tmp_path / "x.docx").exists()


def test_cli_refuses_a_return_with_errors_unless_forced(tmp_path):
    faulty = SAMPLES / "faulty" / "152502003_杭盖街道_2025年政府信息公开年报_有误.xlsx"
    r = run_cli("draft", faulty, "--out", tmp_path / "x.docx")
    assert r.returncode == 1 and "有1个错误，未生成年报文稿" in r.stderr and "自然人列" in r.stderr
    assert not (tmp_path / "x.docx").exists()
    r = run_cli("draft", faulty, "--out", tmp_path / "x.docx", "--html", tmp_path / "x.html", "--force")
    assert r.returncode == 1 and "不得发布" in r.stderr
    first = [p for p in pending_in_file(tmp_path / "x.docx") if p.kind == "警告"]
    assert first and "不得发布" in first[0].text and any("自然人列" in p.text for p in first)
    from docx import Document

    paras = [p.text for p in Document(str(tmp_path / "x.docx")).paragraphs]
    assert paras[1].startswith("【警告：") and paras.index(next(p for p in paras if p == "一、总体情况")) > 2
    assert '<p class="warning" role="alert"' in (tmp_path / "x.html").read_text(encoding="utf-8")


def test_cli_previous_year_from_a_return_and_from_a_published_report(fmt, tmp_path):
    cur = make_return(tmp_path / "2024.xlsx", fmt, {"t2.license.n": 150, "t2.penalty.n": 2}, year=2024)
    r = run_cli("draft", cur, "--prev", SEED_PUBLISHED, "--out", tmp_path / "a.docx", "--html", tmp_path / "a.html")
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "a.html").read_text(encoding="utf-8")
    assert "作出行政许可处理决定150件、行政处罚处理决定2件" in page
    assert "行政许可处理决定比上年增加4件、增长2.7%；行政处罚处理决定与上年持平。" in page
    prev = make_return(
        tmp_path / "2023.xlsx", fmt, {"t2.license.n": 146, "t2.penalty.n": 2, "t3.r1.np": 1, "t3.r4.np": 1}, year=2023
    )
    r = run_cli("draft", cur, "--prev", prev, "--out", tmp_path / "b.docx")
    assert r.returncode == 0, r.stderr
    assert "与上年核对" in r.stderr and "上年结转" in r.stderr  # I6: last year carried 1 forward, this year 0 received


def test_docs_examples_run_in_order(tmp_path):
    """docs/draft.md (the README section): every `nianbao …` example runs, in order, in one folder."""
    import os
    import subprocess
    import sys

    doc = (ROOT / "docs" / "draft.md").read_text(encoding="utf-8")
    examples = [line.strip() for line in doc.splitlines() if line.startswith("    nianbao ")]
    assert any(" draft " in e for e in examples)
    (tmp_path / "samples").symlink_to(SAMPLES)
    (tmp_path / "输出").mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    for example in examples:
        cmd = re.sub(r"^nianbao ", f"{sys.executable} -m toolkit.cli ", example)
        r = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=180)
        assert r.returncode == 0 and "Traceback" not in r.stderr, f"{example}\n{r.stderr[-2000:]}"
    assert (tmp_path / "输出" / "锡林浩特市2025年报.docx").is_file()
    for image in re.findall(r"\]\((docs/img/[^)]+)\)", doc):
        assert (ROOT / image).is_file(), image


def test_cli_site_and_name(tmp_path):
    r = run_cli(
        "draft",
        SEED_RETURN,
        "--out",
        tmp_path / "a.docx",
        "--html",
        tmp_path / "a.html",
        "--site",
        "锡林浩特市人民政府门户网站（www.example.gov.cn）",
        "--name",
        "宝力根苏木人民政府",
    )
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "a.html").read_text(encoding="utf-8")
    assert ">宝力根苏木人民政府2023年政府信息公开工作年度报告</h1>" in page
    assert "本报告电子版可在锡林浩特市人民政府门户网站（www.example.gov.cn）查阅或下载" in page
