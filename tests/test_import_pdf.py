"""Issue 18/12: PDFs made by a real application (LibreOffice), read back with pdftotext -layout —
a return printed from our own template, and a published report whose 表三 runs over several
pages with repeated header rows, running headers and page numbers in between."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import SAMPLES, run_cli

from toolkit.check import CheckOptions, check_paths, check_report
from toolkit.published.importer import read_published
from toolkit.spec import current_format

pytestmark = pytest.mark.skipif(
    not shutil.which("soffice") or not shutil.which("pdftotext"), reason="需要 LibreOffice 和 pdftotext"
)
SAMPLE = SAMPLES / "returns" / "152502306_锡林浩特市自然资源局_2025年政府信息公开年报.xlsx"


def to_pdf(src: Path, out: Path) -> Path:
    subprocess.run(
        [
            "soffice",
            "--headless",
            f"-env:UserInstallation=file://{out}/prof",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out),
            str(src),
        ],
        capture_output=True,
        timeout=180,
        check=True,
    )
    return out / (src.stem + ".pdf")


@pytest.fixture(scope="module")
def own_pdf(tmp_path_factory) -> Path:
    return to_pdf(SAMPLE, tmp_path_factory.mktemp("own"))


def test_pdf_of_our_own_template_keeps_its_identity(own_pdf):
    """Issue 12: not 混合格式, unit and code from the 封面 (not the file name), year from the cover."""
    rep = check_report(read_published(own_pdf), CheckOptions())
    assert (rep.unit_name, rep.unit_code, rep.year) == ("锡林浩特市自然资源局", "152502306", 2025)
    assert "format-hybrid" not in {f.code for f in rep.findings}
    (orig,) = check_paths([SAMPLE], CheckOptions()).reports
    fmt = current_format()
    assert {c.id: rep.values[c.id] for c in fmt.inputs if fmt.sheet(c.sheet_id).published} == {
        c.id: orig.values[c.id] for c in fmt.inputs if fmt.sheet(c.sheet_id).published
    }
    assert not [f for f in rep.findings if f.severity == "错误"]


def test_pdf_of_our_template_meets_the_roster(own_pdf, tmp_path):
    out = tmp_path / "o"
    r = run_cli("import", own_pdf, "-r", SAMPLES / "roster.csv", "--out", out)
    assert r.returncode == 0, r.stderr
    (xlsx,) = out.glob("*.xlsx")
    r = run_cli("check", xlsx, "-r", SAMPLES / "roster.csv", "--year", "2025")
    assert r.returncode == 0, r.stderr
    assert "不在本次名册中" not in r.stderr


# ---------------------------------------------------------------- a report over several pages


def published_workbook(path: Path, values: dict, unit: str, year: int) -> None:
    """The three tables as a word processor or spreadsheet prints them in a published report:
    tall rows so 表三 spans pages, its header rows repeated on every page, a running header
    with the report title and a footer with page numbers."""
    import xlsxwriter

    fmt = current_format()
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("年报")
    box = wb.add_format({"border": 1, "text_wrap": True, "valign": "vcenter", "align": "center", "font_size": 9})
    ws.set_header(f"&C{unit}{year}年政府信息公开工作年度报告")
    ws.set_footer("&C- &P -")
    ws.set_paper(9)
    ws.set_column(0, 2, 14)
    ws.set_column(3, 14, 7)
    row = 0
    repeat = None
    for sheet in fmt.sheets:
        if not sheet.published:
            continue
        ws.write(row, 0, sheet.title)
        row += 1
        top = row - sheet.first_row
        for lb in sheet.labels:
            r, c = top + lb.row, lb.col - 1
            if lb.rowspan > 1 or lb.colspan > 1:
                ws.merge_range(r, c, r + lb.rowspan - 1, c + lb.colspan - 1, lb.text, box)
            else:
                ws.write(r, c, lb.text, box)
        for cell in sheet.cells:
            r, c = top + cell.row, cell.col - 1
            v = values.get(cell.id, 0)
            if cell.colspan > 1:
                ws.merge_range(r, c, r, c + cell.colspan - 1, v, box)
            else:
                ws.write(r, c, v, box)
        last = top + sheet.last_row
        for r in range(row, last + 1):
            ws.set_row(r, 90 if sheet.id == "t3" else 30)
        if sheet.id == "t3":
            repeat = (top + sheet.first_row, top + sheet.first_row + sheet.header_rows - 1)
        row = last + 2
    ws.repeat_rows(*repeat)
    ws.fit_to_pages(1, 0)
    wb.close()


def test_table_across_pages_with_repeated_headers_and_page_numbers(tmp_path):
    fmt = current_format()
    (orig,) = check_paths([SAMPLE], CheckOptions()).reports
    values = {c.id: orig.values[c.id] for c in fmt.cells.values() if fmt.sheet(c.sheet_id).published}
    xlsx = tmp_path / "某县自然资源局2025年报.xlsx"
    published_workbook(xlsx, values, "某县自然资源局", 2025)
    pdf = to_pdf(xlsx, tmp_path)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout
    assert (
        text.count("\f") >= 3 and text.count("申请人情况") >= 2 and "-2-" in text.replace(" ", "")
    )  # really split, headers repeated
    rep = check_report(read_published(pdf, year=2025), CheckOptions())
    assert rep.unit_name == "某县自然资源局"
    missed = {
        cid: (rep.cached.get(cid) if fmt.cells[cid].is_total else rep.values.get(cid), v)
        for cid, v in values.items()
        if (rep.cached.get(cid) if fmt.cells[cid].is_total else rep.values.get(cid)) != v
    }
    assert not missed
    assert not [f.message for f in rep.findings if f.severity == "错误"]
