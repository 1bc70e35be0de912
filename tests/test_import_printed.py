"""Issue 28: an importer that is never silently wrong — the imported return keeps what was printed
(totals included), a number the text shows only in part or run into its neighbours is unknown, and a
report title broken across lines (a LibreOffice PDF of a draft) still names the unit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import openpyxl
import pytest
from conftest import ROOT, run_cli
from published_text import flat_text, html_page

from toolkit.check import CheckOptions, check_report
from toolkit.published.identity import guess_identity
from toolkit.published.importer import read_published
from toolkit.published.tokens import Tok, _gap_tokens
from toolkit.published.walk import split_row
from toolkit.published.writer import write_imported

PUBLISHED = ROOT / "tests" / "published"


def imported(path: Path, **kw):
    return check_report(read_published(path, **kw), CheckOptions())


# ---------------------------------------------------------------- what was printed


def test_written_return_keeps_an_inconsistent_printed_total(tmp_path, fmt):
    """tests/published/54: 表三（一）予以公开 printed 总计 1 with parts 0. The return shows 1 (a value with a
    note, not the formula's 0); `check` of it shows the printed 1 against the sum 0."""
    src = PUBLISHED / "54_derived_printed_total_2023.source.txt"
    rep = imported(src, unit="宝力根苏木", year=2023)
    assert rep.cached["t3.r3_1.tot"] == 1 and any(f.code == "I2" for f in rep.findings)
    xlsx, js = write_imported(rep, tmp_path)
    cell = fmt.cells["t3.r3_1.tot"]
    ws = openpyxl.load_workbook(xlsx)[cell.sheet_name]
    assert ws[cell.a1].value == 1
    assert "印为1" in ws[cell.a1].comment.text and "计算为0" in ws[cell.a1].comment.text
    consistent = fmt.cells["t3.r1.tot"]
    assert str(ws[consistent.a1].value).startswith("=")  # a total the print agrees with stays a formula
    r = run_cli("check", xlsx)
    assert r.returncode == 1 and "改写为数字1" in r.stdout + r.stderr


def test_printed_total_over_unread_parts_is_kept(tmp_path, fmt):
    """A total printed 9 whose part 法人或其他组织 could not be read: the formula would show 4 (the part that
    was read); the return shows the 9 that was printed, and says why. The unread part stays blank."""
    p = tmp_path / "r.txt"
    p.write_text(flat_text(fmt, {"t3.r1.np": 4, "t3.r1.biz": 5, "t3.r1.tot": 9}, unit="某某镇", received=9), encoding="utf-8")
    rep = read_published(p)
    rep.values["t3.r1.biz"] = None
    rep.unknown |= {"t3.r1.biz", "t3.r1.tot"}
    xlsx, _ = write_imported(rep, tmp_path / "o")
    ws = openpyxl.load_workbook(xlsx)["表三"]
    tot, biz = fmt.cells["t3.r1.tot"], fmt.cells["t3.r1.biz"]
    assert ws[tot.a1].value == 9 and ws[biz.a1].value is None
    assert "印为9" in ws[tot.a1].comment.text and "无法确定" in ws[tot.a1].comment.text


# ---------------------------------------------------------------- never a guess


def test_number_cut_by_the_end_of_the_text_is_unknown(tmp_path, fmt):
    """An excerpt that stops inside '44' shows '4': the last number is no figure (the review found 现行有效
    44 read as 4); a '0' there is whole, and a number closed by its separator is certain."""
    text = flat_text(fmt, {"t2.norm.made": 3, "t2.norm.repealed": 1, "t2.norm.valid": 44})
    p = tmp_path / "cut.txt"
    p.write_text(text[: text.index("44 |") + 1], encoding="utf-8")
    rep = read_published(p)
    assert rep.values["t2.norm.made"] == 3 and rep.values["t2.norm.repealed"] == 1
    assert "t2.norm.valid" in rep.unknown and rep.values.get("t2.norm.valid") is None
    p.write_text(text[: text.index("44 |") + 1] + "……", encoding="utf-8")  # the excerpt marked as cut
    assert "t2.norm.valid" in read_published(p).unknown
    p.write_text(text[: text.index("44 |") + 4], encoding="utf-8")  # '44 |': closed
    assert read_published(p).values["t2.norm.valid"] == 44
    rows = (
        "某镇2023年政府信息公开工作年度报告\n第二十条第（一）项\n"
        "信息内容  本年制发件数  本年废止件数  现行有效件数\n规章  0  0  0\n"
    )
    p.write_text(rows + "行政规范性文件  1  0  12", encoding="utf-8")  # one row per line, cut inside 12
    rep = read_published(p)
    assert rep.values["t2.norm.made"] == 1 and "t2.norm.valid" in rep.unknown
    p.write_text(rows + "行政规范性文件  1  0  0", encoding="utf-8")
    assert read_published(p).values["t2.norm.valid"] == 0


@pytest.mark.parametrize("shape", ["cell", "one line", "no space"])
def test_grouped_number_is_one_cell(tmp_path, fmt, shape):
    """'1,888' is one cell in every shape: read as 1888, never split, never joined with its neighbours."""
    from test_import_recovery import no_space, tables_on_one_line

    vals = {"t2.norm.made": 8, "t2.norm.repealed": 9, "t2.norm.valid": 74, "t2.license.n": 1888, "t2.penalty.n": 741}
    text = flat_text(fmt, vals).replace("1888 |", "1,888 |")
    text = {"cell": text, "one line": tables_on_one_line(text), "no space": no_space(text)}[shape]
    p = tmp_path / "g.txt"
    p.write_text(text, encoding="utf-8")
    rep = read_published(p)
    assert rep.values["t2.license.n"] == 1888 and rep.values["t2.penalty.n"] == 741


def test_digits_run_into_a_grouped_number_are_unknown(fmt):
    """'89741,888': whether the grouped number is 1,888 or 741,888 cannot be told — the word is not a
    number at all (its row is unread, so unknown), never 888 or 89741888."""
    for word in ("89741,888", "1,8880000"):
        toks = _gap_tokens(word, 1)
        assert [t.digits for t in toks] == [None], (word, [t.text for t in toks])
    cells = [c for c in fmt.sheet("t3").cells if c.row_id == "r1"]
    splits = split_row(cells, [Tok("1,888", 1), Tok("000000", 1)], fmt)
    assert splits == []  # the total would have to be 1888 and the grouped token stays whole
    splits = split_row(cells, [Tok("1,888", 1), Tok("000001888", 1)], fmt)
    assert splits == [[1888, 0, 0, 0, 0, 0, 1888]]


def test_inconsistent_row_run_together_is_read_as_printed(tmp_path, fmt):
    """'0000001' into seven cells cuts one way only: read as printed (总计 1, parts 0) and the
    inconsistency is a finding, rather than the whole row unknown."""
    from test_import_recovery import no_space

    text = no_space((PUBLISHED / "54_derived_printed_total_2023.source.txt").read_text(encoding="utf-8"))
    assert "(一)予以公开0000001(二)" in text
    p = tmp_path / "r.txt"
    p.write_text(text, encoding="utf-8")
    rep = imported(p, unit="宝力根苏木", year=2023)
    assert rep.cached["t3.r3_1.tot"] == 1 and rep.values["t3.r3_1.np"] == 0
    assert "t3.r3_1.tot" not in rep.unknown and any(f.code == "I2" for f in rep.findings)


# ---------------------------------------------------------------- a title broken across lines


@pytest.mark.parametrize(
    "head,unit,year",
    [
        ("  宝力根苏木2023年\n   政府信息公开工作年度报告\n\n  本报告依据条例编制。", "宝力根苏木", 2023),
        ("宝力根苏木 2023 年政府信息公开工作年度报告\n本报告依据条例编制。", "宝力根苏木", 2023),
        ("锡林浩特市宝力根苏木\n2023年政府信息公开工作年度报告\n正文。", "锡林浩特市宝力根苏木", 2023),
        ("首页 > 政务公开\n宝力根苏木2023年\n政府信息公开工作年度报告\n正文。", "宝力根苏木", 2023),
        ("政务公开\n宝力根苏木2023年\n政府信息公开工作年度报告\n正文。", "宝力根苏木", 2023),
        ("2022年度螅镇\n政府信息公开工作年度报告\n正文。", "螅镇", 2022),
    ],
)
def test_title_joined_across_lines(head, unit, year):
    assert guess_identity(head) == (unit, year)


def test_title_split_in_text_and_html(tmp_path, fmt):
    text = flat_text(fmt, {"t2.license.n": 146}).replace(
        "宝力根苏木严格按照", "宝力根苏木2023年\n政府信息公开工作年度报告\n\n宝力根苏木严格按照", 1
    )
    text = text.replace("宝力根苏木严格按照", "本苏木严格按照")  # the first sentence no longer names the unit
    p = tmp_path / "split.txt"
    p.write_text(text, encoding="utf-8")
    rep = read_published(p)
    assert (rep.unit_name, rep.year) == ("宝力根苏木", 2023)
    page = html_page(fmt, {"t2.license.n": 146}).replace(
        "<title>宝力根苏木2023年政府信息公开工作年度报告</title>", "<title>锡林浩特市人民政府门户网站</title>"
    )
    page = page.replace(
        "<h1>宝力根苏木2023年政府信息公开工作年度报告</h1>", "<h1>宝力根苏木2023年<br>政府信息公开工作年度报告</h1>"
    )
    page = page.replace("<p>宝力根苏木严格按照", "<p>本苏木严格按照")
    h = tmp_path / "split.html"
    h.write_text(page, encoding="utf-8")
    rep = read_published(h)
    assert (rep.unit_name, rep.year, rep.values["t2.license.n"]) == ("宝力根苏木", 2023, 146)


def test_libreoffice_pdf_with_the_title_on_two_lines(tmp_path):
    """A draft whose title LibreOffice breaks after '2023年' (as in the issue's 8 drafts): the PDF names
    the unit, and every cell of the tables comes back."""
    from lo import require_libreoffice

    require_libreoffice()
    docx = pytest.importorskip("docx")
    seed = sorted((ROOT / "samples" / "seed-2023").glob("*.xlsx"))
    out = tmp_path / "draft.docx"
    r = run_cli("draft", *seed, "--out", out)
    assert out.exists(), r.stdout + r.stderr
    doc = docx.Document(out)
    title = next(p for p in doc.paragraphs if "政府信息公开工作年度报告" in p.text)
    text = title.text
    for run in title.runs[1:]:
        run.text = ""
    cut = text.index("年") + 1
    title.runs[0].text = text[:cut]
    title.runs[0].add_break()
    title.runs[0].add_text(text[cut:])
    doc.save(out)
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{tmp_path / 'profile'}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(out),
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    pdf = tmp_path / "draft.pdf"
    assert pdf.exists()
    layout = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=False).stdout
    assert "宝力根苏木2023年\n" in layout.replace(" ", "")  # the title really is on two lines
    rep = imported(pdf)
    assert (rep.unit_name, rep.year) == ("宝力根苏木", 2023)
    from toolkit.spec import formats

    fmt = formats()[rep.format_id]
    published = [c.id for c in fmt.cells.values() if fmt.sheet(c.sheet_id).published]
    assert not [c for c in published if c in rep.unknown]
    assert rep.values["t2.license.n"] == 146 and rep.values["t2.penalty.n"] == 2


def test_label_broken_beside_a_tall_group_label(tmp_path, fmt):
    """A LibreOffice PDF prints the tall group label 三、本年度办理结果 two characters a line, so the
    broken row label reads '本年 （二）部分公开…不' / '度办 计其他情形）  0 0 …' (issue 28: 14 cells
    unknown): the piece of the group label is passed over and the row is read."""
    vals = {"t3.r3_2.res": 2, "t3.r3_2.tot": 2, "t3.r1.res": 2, "t3.r1.tot": 2, "t3.r3_7.res": 2, "t3.r3_7.tot": 2}
    text = flat_text(fmt, vals, received=2)
    row = "（二）部分公开（区分处理的，只计这一情形，不计其他情形） |\n0 |\n0 |\n2 |\n0 |\n0 |\n0 |\n2 |\n"
    assert row in text
    layout = (
        "本年 （二）部分公开（区分处理的，只计这一情形，不\n度办 计其他情形）" + " " * 20 + "0    0    2     0     0   0    2\n"
    )
    p = tmp_path / "layout.txt"
    p.write_text(text.replace(row, layout), encoding="utf-8")
    rep = imported(p)
    assert [rep.values[f"t3.r3_2.{c}"] for c in ("np", "biz", "res", "ngo", "law", "oth")] == [0, 0, 2, 0, 0, 0]
    assert rep.cached["t3.r3_2.tot"] == 2 and not [f for f in rep.findings if f.severity == "错误"]
