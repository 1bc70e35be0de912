"""Issue 28: a draft an office can publish — rendered by LibreOffice (the layout holds: 表三 on one
page, no merged group of 表二/表四 split, the title on one line), read back by `nianbao import`
(unit and every cell, from the PDF and from the web page), never overwriting a person's edits,
and carrying what real reports carry (opening paragraph, sign-off, subtotals and shares, totals)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import SAMPLES, run_cli
from lo import require_libreoffice
from test_draft import SEED_PUBLISHED, SEED_RETURN, assert_figures_trace, make_report, make_return, published_inputs
from test_draft_render import soffice_convert

from toolkit.check import CheckOptions, check_paths, check_report
from toolkit.draft import build_document, read_source, render_html
from toolkit.draft import written as W
from toolkit.draft.sentences import number_text
from toolkit.published.importer import read_published
from toolkit.template import ReturnContent, write_return

RETURNS = SAMPLES / "returns"
ROSTER = SAMPLES / "roster.csv"
DEPARTMENT = RETURNS / "152502303_锡林浩特市司法局_2025年政府信息公开年报.xlsx"
GOVERNMENT = RETURNS / "152502_锡林浩特市人民政府_2025年政府信息公开年报.xlsx"

# the first and last labels of each official table as pdftotext prints them (spaces removed)
T3_FIRST, T3_LAST = "申请人情况", "四、结转下年度继续办理"
T2_FIRST, T2_LAST = "第二十条第（一）项", "行政事业性收费"
T4_FIRST, T4_LAST = "行政复议", "复议后起诉"


def _summary(work: Path, year: int, returns: Path) -> Path:
    out = work / f"汇总{year}.xlsx"
    r = run_cli("consolidate", returns, "--roster", ROSTER, "--year", str(year), "--out", out)
    assert r.returncode in (0, 1), r.stderr
    return out


def _last_year_returns(work: Path, fmt) -> Path:
    """The samples as 2024 returns, 行政许可 of every unit one fewer (so the county has a 同比)."""
    from toolkit.roster import load_roster

    folder = work / "2024"
    folder.mkdir()
    roster = load_roster(ROSTER)
    for src in RETURNS.glob("*.xlsx"):
        r = read_source(src)
        values = {c.id: r.values.get(c.id) or 0 for c in fmt.inputs}
        values["t2.license.n"] = max(0, values["t2.license.n"] - 1)
        content = ReturnContent(unit=roster.get(r.unit_code), year=2024, values=values, cover=dict(r.cover))
        write_return(folder / src.name, fmt, content)
    return folder


@pytest.fixture(scope="module")
def drafts(tmp_path_factory, fmt):
    """The test set, written by the CLI (.docx and .html) and printed to PDF by LibreOffice."""
    require_libreoffice()
    work = tmp_path_factory.mktemp("publish")
    cur_2024 = make_return(
        work / "宝力根苏木2024.xlsx", fmt, {"t2.license.n": 150, "t2.penalty.n": 2, "t3.r1.np": 3, "t3.r3_1.np": 3}, year=2024
    )
    county = _summary(work, 2025, RETURNS)
    county_prev = _summary(work, 2024, _last_year_returns(work, fmt))
    cases = {
        "seed": (SEED_RETURN,),
        "prev-text": (cur_2024, "--prev", SEED_PUBLISHED),
        "county": (county,),
        "county-prev": (county, "--prev", county_prev),
        "department": (DEPARTMENT,),
        "government": (GOVERNMENT,),
    }
    out = {}
    for key, args in cases.items():
        docx, html = work / f"{key}.docx", work / f"{key}.html"
        r = run_cli("draft", *args, "--out", docx, "--html", html)
        assert r.returncode == 0, r.stderr
        out[key] = {"source": args[0], "docx": docx, "html": html, "stderr": r.stderr}
    pdfs = soffice_convert([d["docx"] for d in out.values()], "pdf", work / "pdf", work / "lo-profile")
    for d, pdf in zip(out.values(), pdfs, strict=True):
        d["pdf"] = pdf
    return out


KEYS = ["seed", "prev-text", "county", "county-prev", "department", "government"]


def pages(pdf: Path) -> list[str]:
    """The text of each page, without spaces and line breaks (pdftotext, one call per page)."""
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    n = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    out = []
    for p in range(1, n + 1):
        text = subprocess.run(
            ["pdftotext", "-f", str(p), "-l", str(p), "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout
        out.append(text)
    return out


def _flat(text: str) -> str:
    return "".join(text.split())


def _page_of(texts: list[str], needle: str, after: int = 0) -> int:
    return next(i for i, t in enumerate(texts) if i >= after and needle in _flat(t))


@pytest.mark.parametrize("key", KEYS)
def test_tables_hold_together_in_libreoffice(drafts, fmt, key):
    if not shutil.which("pdftotext"):
        pytest.skip("没有 pdftotext（poppler-utils）")
    texts = pages(drafts[key]["pdf"])
    heading2 = _page_of(texts, "二、主动公开政府信息情况")
    assert _page_of(texts, T2_FIRST, heading2) == _page_of(texts, T2_LAST, heading2) == heading2
    heading3 = _page_of(texts, "三、收到和处理政府信息公开申请情况")
    assert _page_of(texts, T3_FIRST, heading3) == heading3
    assert _page_of(texts, T3_LAST, heading3) == heading3, f"表三 splits across pages in {key}"
    assert "（四）1.本机关不掌握" not in _flat(texts[heading3 - 1])
    heading4 = _page_of(texts, "四、政府信息公开行政复议、行政诉讼情况")
    assert _page_of(texts, T4_FIRST, heading4) == _page_of(texts, T4_LAST, heading4) == heading4
    # the data rows sit with their merged headers: every figure of 表二 and 表四 on the table's page
    report = read_source(drafts[key]["source"])
    for sheet, page in (("t2", heading2), ("t4", heading4)):
        figures = [number_text(report.value(c.id)) for c in sorted(fmt.sheet(sheet).cells, key=lambda c: (c.row, c.col))]
        assert "".join(figures) in re.sub(r"[^\d.]", "", texts[page]), (sheet, figures)


@pytest.mark.parametrize("key", KEYS)
def test_title_is_one_line_and_in_the_properties(drafts, key):
    from docx import Document

    first_line = next(line for line in pages(drafts[key]["pdf"])[0].splitlines() if line.strip())
    title = Document(str(drafts[key]["docx"])).core_properties.title
    assert _flat(first_line) == title and title.endswith("年政府信息公开工作年度报告")
    core = Document(str(drafts[key]["docx"])).core_properties
    report = read_source(drafts[key]["source"])
    assert str(report.year) in core.keywords and str(report.year) in core.category and core.subject == title
    assert core.created.year >= 2026 and core.modified.year >= 2026  # not python-docx's 2013
    page = drafts[key]["html"].read_text(encoding="utf-8")
    assert f"<title>{title}</title>" in page and f'<meta name="nianbao-year" content="{report.year}">' in page


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("which", ["pdf", "html"])
def test_round_trip_through_the_importer(drafts, fmt, key, which):
    """`import` of LibreOffice's PDF (and of the web page) recognises the unit and reads every cell."""
    from docx import Document

    d = drafts[key]
    report = read_source(d["source"])
    back = check_report(read_published(d[which]), CheckOptions())
    title = Document(str(d["docx"])).core_properties.title
    assert back.readable and not back.unknown, (key, which, sorted(back.unknown)[:10])
    got = {c: back.values[c] for c in published_inputs(fmt)}
    want = {c: report.value(c) for c in published_inputs(fmt)}
    assert got == want, (key, which, {c: (got[c], want[c]) for c in got if got[c] != want[c]})
    assert back.year == report.year
    assert back.unit_name and title.startswith(back.unit_name), (key, which, back.unit_name)
    assert not [f for f in back.findings if f.severity == "错误"], [f.message for f in back.findings]


def test_import_cli_recognises_the_unit_of_the_pdf(drafts, tmp_path):
    """`nianbao import` of the seed's PDF names the unit from the title, not from the file name."""
    out = tmp_path / "导入.xlsx"
    r = run_cli("import", drafts["seed"]["pdf"], "--out", out)
    assert r.returncode == 0, r.stderr
    assert "宝力根苏木" in r.stderr + r.stdout


def test_self_reference_by_level(drafts):
    text = {k: _flat("".join(pages(drafts[k]["pdf"]))) for k in ("seed", "county", "department", "government")}
    assert "2023年，本苏木" in text["seed"] and "我苏木" not in text["seed"]
    assert "2025年，全市" in text["county"] and "全市各级行政机关" in text["county"]
    assert "2025年，本机关" in text["department"]
    assert "2025年，市政府" in text["government"] and "本机关" not in text["government"].split("本报告")[0]
    assert "由锡林浩特市所属各单位报送的年度报表汇总形成" in text["county"]
    assert "明细" not in drafts["county"]["stderr"] or "见汇总表“明细”" in drafts["county"]["stderr"]


def test_county_with_last_year_groups_unchanged_items(drafts):
    text = _flat("".join(pages(drafts["county-prev"]["pdf"])))
    assert all(sentence.count("与上年持平") <= 1 for sentence in text.split("。"))  # unchanged items named together
    assert "行政许可处理决定比上年增加" in text


# ---------------------------------------------------------------- never overwrite a person's work


def _draft(out: Path, *extra) -> subprocess.CompletedProcess:
    return run_cli("draft", SEED_RETURN, "--out", out, "--html", out.with_suffix(".html"), *extra)


def _refused(r, path: Path, before: bytes) -> None:
    assert r.returncode == 2, r.stderr
    assert "没有覆盖" in r.stderr and path.name in r.stderr and "--overwrite" in r.stderr and "Traceback" not in r.stderr
    assert path.read_bytes() == before


def test_rerun_replaces_an_untouched_draft_without_backup(tmp_path):
    out = tmp_path / "年报.docx"
    assert _draft(out).returncode == 0
    assert W.state(out) == W.OURS and W.state(out.with_suffix(".html")) == W.OURS
    r = _draft(out)
    assert r.returncode == 0, r.stderr
    assert not list(tmp_path.glob("*.bak-*"))


def test_phone_number_filled_into_the_html_is_kept(tmp_path):
    out = tmp_path / "年报.docx"
    assert _draft(out).returncode == 0
    page = out.with_suffix(".html")
    edited = page.read_text(encoding="utf-8").replace("【请填写：联系电话】", "0479-8223456", 1)
    page.write_text(edited, encoding="utf-8")
    _refused(_draft(out), page, edited.encode("utf-8"))
    assert W.state(page) == W.EDITED


def test_docx_edited_with_python_docx_is_kept(tmp_path):
    from docx import Document

    out = tmp_path / "年报.docx"
    assert _draft(out).returncode == 0
    d = Document(str(out))
    d.paragraphs[2].add_run("（已修改）")
    d.save(str(out))
    assert Document(str(out)).core_properties.last_modified_by == "nianbao"  # what fooled the old check
    before = out.read_bytes()
    _refused(_draft(out), out, before)


def test_docx_saved_by_libreoffice_is_kept_and_overwrite_keeps_a_backup(tmp_path):
    from docx import Document

    require_libreoffice()
    out = tmp_path / "年报.docx"
    assert _draft(out).returncode == 0
    (saved,) = soffice_convert([out], "docx:MS Word 2007 XML", tmp_path / "lo", tmp_path / "lo-profile")
    shutil.copyfile(saved, out)
    before = out.read_bytes()
    assert Document(str(out)).core_properties.title  # still a draft by its properties
    _refused(_draft(out), out, before)
    r = _draft(out, "--overwrite")
    assert r.returncode == 0 and "已备份" in r.stderr, r.stderr
    (backup,) = tmp_path.glob("年报.bak-*.docx")
    assert backup.read_bytes() == before and W.state(out) == W.OURS


def test_a_file_nianbao_did_not_write_is_kept_unless_forced(tmp_path):
    out = tmp_path / "年报.docx"
    out.write_bytes(b"not a report")
    _refused(_draft(out), out, b"not a report")
    r = _draft(out, "--force")
    assert r.returncode == 0 and W.state(out) == W.OURS
    (backup,) = tmp_path.glob("年报.bak-*.docx")
    assert backup.read_bytes() == b"not a report"


# ---------------------------------------------------------------- what real reports carry


def test_opening_paragraph_and_sign_off(fmt):
    rep = make_report(fmt, {"t3.r1.np": 4, "t3.r3_1.np": 4, "t4.r1.rv_main": 1})
    doc = build_document(rep, fmt)
    paras = doc.paragraphs()
    texts = [p.text for p in paras]
    one, first = texts.index("一、总体情况"), texts.index("（一）主动公开")
    between = texts[one + 1 : first]
    assert between[0].startswith("2025年，本苏木") and "共收到政府信息公开申请4件，办结4件" in between[0]
    assert "被申请行政复议1件、被提起行政诉讼0件" in between[0]
    assert between[1].startswith("【请填写：总体情况的开头一段")
    assert [p.style for p in paras[-2:]] == ["signoff", "signoff"] and "发布机关全称" in texts[-2]
    assert "成文日期" in texts[-1]
    assert_figures_trace(doc, rep)


def test_result_groups_have_subtotals_and_shares(fmt):
    vals = {"t3.r1.np": 81, "t3.r3_1.np": 70, "t3.r3_3_1.np": 2, "t3.r3_3_4.np": 3, "t3.r3_4_1.np": 4, "t3.r3_5_2.np": 2}
    rep = make_report(fmt, vals)
    doc = build_document(rep, fmt)
    text = "".join(p.text for p in doc.paragraphs())
    assert "不予公开5件，占6.17%（属于国家秘密2件、保护第三方合法权益3件）" not in text  # one decimal unless needed
    assert "不予公开5件，占6.2%（属于国家秘密2件、保护第三方合法权益3件）" in text
    assert "无法提供4件，占4.9%（均为本机关不掌握相关政府信息）" in text
    assert "不予处理2件，占2.5%（均为重复申请）" in text
    assert_figures_trace(doc, rep)


def test_appeal_totals(fmt):
    vals = {"t4.r1.rv_main": 2, "t4.r1.ds_main": 1, "t4.r1.as_corr": 1}
    rep = make_report(fmt, vals, name="锡林浩特市司法局", unit_type="县级部门")
    doc = build_document(rep, fmt)
    text = "".join(p.text for p in doc.paragraphs())
    assert (
        "本机关因政府信息公开工作被申请行政复议2件（结果维持2件）；被提起政府信息公开行政诉讼2件，"
        "其中未经复议直接起诉1件（结果维持1件）、复议后起诉1件（结果纠正1件）。"
    ) in text
    assert_figures_trace(doc, rep)


def test_shares_never_round_up_to_all(fmt):
    rep = make_report(fmt, {"t3.r1.np": 2000, "t3.r3_1.np": 1999, "t3.r3_4_1.np": 1})
    text = "".join(p.text for p in build_document(rep, fmt).paragraphs())
    assert "予以公开1999件，占99.95%" in text and "占100%" not in text
    rep = make_report(fmt, {"t3.r1.np": 7, "t3.r3_1.np": 7})
    assert "予以公开7件，占100%" in "".join(p.text for p in build_document(rep, fmt).paragraphs())


def test_unchanged_items_are_named_once(fmt):
    prev = make_report(fmt, {"t2.license.n": 5, "t2.penalty.n": 2, "t2.coercion.n": 1, "t2.fees.amt": 3}, year=2024)
    cur = make_report(fmt, {"t2.license.n": 5, "t2.penalty.n": 2, "t2.coercion.n": 1, "t2.fees.amt": 4})
    doc = build_document(cur, fmt, prev)
    text = "".join(p.text for p in doc.paragraphs())
    assert text.count("与上年持平") == 1
    assert "行政事业性收费比上年增加1万元、增长33.3%；行政许可处理决定、行政处罚处理决定、行政强制处理决定与上年持平。" in text
    assert_figures_trace(doc, cur, prev)


def test_fee_notified_but_not_collected_is_a_hint_and_a_sentence(fmt, tmp_path):
    path = make_return(tmp_path / "r.xlsx", fmt, {"t6.notices.n": 1, "t6.notice_amt.n": 85.5})
    (report,) = check_paths([path], CheckOptions()).reports
    hints = [f for f in report.findings if f.code == "fee-uncollected"]
    assert len(hints) == 1 and hints[0].severity == "提示" and hints[0].sheet == "信息处理费"
    assert "85.5" in hints[0].message
    paid = make_return(tmp_path / "p.xlsx", fmt, {"t6.notices.n": 1, "t6.notice_amt.n": 85.5, "t6.collected.n": 85.5})
    (ok,) = check_paths([paid], CheckOptions()).reports
    assert not [f for f in ok.findings if f.code == "fee-uncollected"]
    text = [p.text for p in build_document(report, fmt).paragraphs()]
    six = text.index("六、其他需要报告的事项")
    assert text[six + 1] == (
        "2025年，本苏木依据《政府信息公开信息处理费管理办法》发出收费通知1件，收费通知总金额85.5元，实际未收取信息处理费。"
    )


def test_html_fragment_is_self_contained(fmt):
    from lxml import html as lhtml

    page = render_html(build_document(read_source(SEED_RETURN), fmt))
    start, end = page.index("<!-- 复制开始"), page.index("<!-- 复制结束 -->")
    fragment = lhtml.fragment_fromstring(page[page.index("\n", start) + 1 : end].strip())
    assert fragment.get("class") == "nianbao-report" and "font-family" in fragment.get("style")
    cells = fragment.xpath(".//td|.//th")
    assert cells and all("border:1px solid" in c.get("style") for c in cells)
    total = [th for th in fragment.xpath(".//th") if th.text_content() == "总计"]
    assert total and all("white-space:nowrap" in th.get("style") for th in total)
    for table in fragment.xpath(".//table"):
        widths = [float(c.get("style").split(":")[1].rstrip("%")) for c in table.xpath("./colgroup/col")]
        assert widths and abs(sum(widths) - 100) < 1
