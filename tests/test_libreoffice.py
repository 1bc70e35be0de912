"""Issue 6: a real spreadsheet application (LibreOffice) fills, saves, tampers with and renders
our files; the tool must read what it produced. Cells are typed through the dispatcher
(.uno:EnterString), the path behind typing, which respects sheet protection.

Rendered pages are kept in tests/artifacts/render/ (PDF and PNG) for a person to look at.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest
from conftest import ROOT, SAMPLES, run_cli
from lo import Office, require_libreoffice
from python_calamine import CalamineWorkbook

from toolkit.reader import read_bytes
from toolkit.roster import load_roster
from toolkit.template import ReturnContent, file_name, write_return

ARTIFACTS = ROOT / "tests" / "artifacts" / "render"
XLSX, ODS = "Calc MS Excel 2007 XML", "calc8"


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    require_libreoffice()
    o = Office(tmp_path_factory.mktemp("lo"))
    o.start()
    yield o
    o.stop()


@pytest.fixture(scope="module")
def blank(tmp_path_factory, fmt) -> Path:
    unit = load_roster(SAMPLES / "roster.csv").get("152502101")
    path = tmp_path_factory.mktemp("tpl") / file_name(unit, 2025)
    write_return(path, fmt, ReturnContent(unit=unit, year=2025))
    return path


def a(fmt, cid: str) -> str:
    return fmt.cells[cid].a1


def cover_steps(fmt) -> list[dict]:
    cov = fmt.cover
    return [
        {"op": "type", "sheet": cov.sheet_name, "cell": f"B{cov.field(k).row}", "text": v}
        for k, v in (("filler", "乌云"), ("phone", "0479-0000107"), ("date", "2026-01-12"))
    ]


def type_steps(fmt, values: dict[str, str]) -> list[dict]:
    return [{"op": "type", "sheet": fmt.cells[cid].sheet_name, "cell": a(fmt, cid), "text": text} for cid, text in values.items()]


# What the clerk of 阿尔善宝拉格镇 types: realistic, consistent, with one full-width number
# and one number with a thousands separator.
TYPED = {
    "t2.license.n": "1,086",
    "t2.penalty.n": "4",
    "t2.norm.made": "1",
    "t2.norm.valid": "3",
    "t3.r1.np": "2",
    "t3.r1.biz": "１",
    "t3.r3_1.np": "1",
    "t3.r3_1.biz": "1",
    "t3.r4.np": "1",
    "t4.r1.rv_main": "1",
}


@pytest.fixture(scope="module")
def filled(office, blank, fmt, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("filled")
    paths = {"xlsx": out / "阿尔善宝拉格镇.xlsx", "ods": out / "阿尔善宝拉格镇.ods"}
    office.run(
        blank,
        cover_steps(fmt)
        + type_steps(fmt, TYPED)
        + [
            {"op": "save", "path": str(paths["xlsx"]), "filter": XLSX},
            {"op": "save", "path": str(paths["ods"]), "filter": ODS},
        ],
    )
    return paths


@pytest.mark.parametrize("kind", ["xlsx", "ods"])
def test_clerk_fills_and_we_read_it(filled, kind, fmt, tmp_path):
    path = filled[kind]
    r = run_cli("check", path, "--roster", SAMPLES / "roster.csv", "--year", "2025", "--json")
    assert "Traceback" not in r.stderr
    (f,) = json.loads(r.stdout)["files"]
    assert (f["unit_code"], f["unit_name"], f["year"], f["format_id"]) == ("152502101", "阿尔善宝拉格镇", 2025, "zfxxgk-2021")
    assert "LibreOffice" in f["application"]
    got = sorted((x["code"], x["cell"]) for x in f["findings"])
    # the full-width １ is text to LibreOffice: reported, read as 1, and LibreOffice's own SUM left it out of 总计
    assert got == sorted([("number-as-text", a(fmt, "t3.r1.biz")), ("I2", a(fmt, "t3.r1.tot")), ("structure-unprotected-lo", "")])
    assert r.returncode == 1
    rep = read_bytes(path.read_bytes(), path.name)
    assert rep.values["t2.license.n"] == 1086 and rep.values["t3.r1.biz"] == 1 and rep.values["t3.r1.tot"] == 3
    assert rep.cover["filler"] == "乌云" and rep.cover["date"] == "2026-01-12"
    # consolidation works on it too (forced, because of the I2 error LibreOffice's SUM produced)
    out = tmp_path / "汇总.xlsx"
    r = run_cli(
        "consolidate",
        path,
        "--roster",
        SAMPLES / "roster.csv",
        "--year",
        "2025",
        "--out",
        out,
        "--units",
        "152502101",
        "--force",
        "--json",
    )
    assert r.returncode == 1 and out.exists(), r.stderr
    totals = json.loads(r.stdout)["summary"]["totals"]
    assert totals["t2.license.n"] == 1086 and totals["t3.r1.tot"] == 3 and totals["t3.r3_7.tot"] == 2


def test_clean_fill_passes_and_consolidates(office, blank, fmt, tmp_path):
    clean = dict(TYPED) | {"t3.r1.biz": "1"}
    path = tmp_path / "clean.xlsx"
    office.run(blank, cover_steps(fmt) + type_steps(fmt, clean) + [{"op": "save", "path": str(path), "filter": XLSX}])
    # LibreOffice's file (General as a custom number format, its own formula attributes, the date
    # typed into the cover) is read in one pass, every cell as python-calamine reads it
    from test_read_paths import one_pass_agrees

    assert one_pass_agrees(path.read_bytes()) is True
    r = run_cli("check", path, "--roster", SAMPLES / "roster.csv", "--year", "2025", "--json", "--annotate", tmp_path / "退回")
    assert r.returncode == 0, r.stderr
    (hint,) = json.loads(r.stdout)["files"][0]["findings"]
    assert hint["code"] == "structure-unprotected-lo" and hint["severity"] == "提示"
    assert "由 LibreOffice 7.4 保存" in hint["message"] and "$" not in hint["message"]  # said for people
    assert not (tmp_path / "退回").exists()  # it passed: nothing goes back to the clerk
    assert "已生成 0 份审核意见副本" in r.stderr
    r = run_cli(
        "consolidate",
        path,
        "--roster",
        SAMPLES / "roster.csv",
        "--year",
        "2025",
        "--out",
        tmp_path / "s.xlsx",
        "--units",
        "152502101",
    )
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("cid_or_label", ["label", "t3.r1.tot"])
def test_typing_into_locked_cells_is_refused(office, blank, fmt, cid_or_label):
    """One probe per fresh load: a second protection error in one document aborts LibreOffice 7.4."""
    cell = fmt.sheet("t3").labels[10].a1 if cid_or_label == "label" else a(fmt, cid_or_label)
    before = office.run(blank, [{"op": "read", "sheet": "表三", "cells": [cell]}])[0]["cells"][cell]
    res = office.run(
        blank, [{"op": "type", "sheet": "表三", "cell": cell, "text": "999"}, {"op": "read", "sheet": "表三", "cells": [cell]}]
    )
    after = res[1]["cells"][cell]
    assert after == before and res[1]["protected"]


def selfcheck_row(fmt) -> int:
    sheet = fmt.sheet("t3")
    return sheet.last_row + sheet.selfcheck.gap + 3


def test_selfcheck_turns_red_exactly_when_rule_breaks(office, blank, fmt, tmp_path):
    row = selfcheck_row(fmt)
    cols = [fmt.cells[f"t3.r1.{c}"].col for c in ("np", "biz", "res", "ngo", "law", "oth", "tot")]
    cells = [openpyxl.utils.get_column_letter(c) + str(row) for c in cols]
    # np balanced, biz short by 2, law has a text number
    typed = {"t3.r1.np": "3", "t3.r3_1.np": "2", "t3.r4.np": "1", "t3.r1.biz": "4", "t3.r3_2.biz": "2", "t3.r1.law": "１"}
    path = tmp_path / "sc.xlsx"
    res = office.run(
        blank,
        type_steps(fmt, typed)
        + [{"op": "calc"}, {"op": "read", "sheet": "表三", "cells": cells}, {"op": "save", "path": str(path), "filter": XLSX}],
    )
    shown = {c: v["string"] for c, v in res[-2]["cells"].items()}
    expected = ["相符", "不符，差2", "相符", "相符", "有文字，请改为数字", "相符", "不符，差2"]
    assert [shown[c] for c in cells] == expected
    # the cached values LibreOffice stored read back the same
    ws = openpyxl.load_workbook(path, data_only=True)["表三"]
    assert [ws[c].value for c in cells] == expected
    grid = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("表三").to_python(skip_empty_area=False)
    assert [grid[row - 1][c - 1] for c in cols] == expected
    # red exactly when not 相符: the conditional format compares the result with the ok text
    rules = [r for cf in openpyxl.load_workbook(path)["表三"].conditional_formatting for r in cf.rules]
    assert any('<>"相符"' in (r.formula or [""])[0] for r in rules)


def test_libreoffice_keeps_protection_validation_and_properties(filled, fmt):
    path = filled["xlsx"]
    wb = openpyxl.load_workbook(path)
    props = {p.name: p.value for p in wb.custom_doc_props}
    assert props["nianbao_unit_code"] == "152502101" and int(float(props["nianbao_year"])) == 2025
    for sheet in fmt.sheets:
        ws = wb[sheet.name]
        assert ws.protection.sheet
        unlocked = {c.coordinate for row in ws.iter_rows() for c in row if c.protection.locked is False}
        inputs = {c.a1 for c in sheet.cells if not c.is_total}
        assert inputs <= unlocked
        assert not {c.a1 for c in sheet.cells if c.is_total} & unlocked
        validated = set()
        for dv in ws.data_validations.dataValidation:
            for rng in dv.sqref.ranges:
                validated |= (
                    {c.coordinate for row in ws[rng.coord] for c in (row if isinstance(row, tuple) else (row,))}
                    if ":" in rng.coord
                    else {rng.coord}
                )
            assert dv.promptTitle and dv.error
        assert inputs <= validated, sheet.name
    xml = zipfile.ZipFile(path).read("xl/workbook.xml").decode()
    assert "lockStructure" not in xml  # LibreOffice drops structure protection (libreoffice-notes §4.2)


def test_libreoffice_error_value_sends_the_file_the_careful_way(filled):
    """The clerk's file has text in a number cell, so LibreOffice's own SUM in the self-check row
    holds #VALUE!: an error value, which only the careful path reads (the clean file of the test
    above takes the one pass)."""
    from test_read_paths import one_pass_agrees

    assert b"<v>#VALUE!</v>" in zipfile.ZipFile(filled["xlsx"]).read("xl/worksheets/sheet3.xml")
    assert one_pass_agrees(filled["xlsx"].read_bytes()) is False


def test_tamper_in_libreoffice_is_reported(office, blank, fmt, tmp_path):
    label = fmt.sheet("t2").labels[6]  # 行政许可
    cases = {
        "add_sheet": ([{"op": "api_insert_sheet", "name": "我的草稿"}], {"sheet-extra"}),
        "unprotect_edit": (
            [
                {"op": "api_unprotect", "sheet": "表二", "password": fmt.protection_password},
                {"op": "type", "sheet": "表二", "cell": label.a1, "text": "行政审批"},
            ],
            {"protection-removed", "label-changed"},
        ),
        # the row API, unlike the cell API, respects protection in LibreOffice 7.4: unprotect first
        "delete_row": (
            [
                {"op": "api_unprotect", "sheet": "表三", "password": fmt.protection_password},
                {"op": "api_remove_row", "sheet": "表三", "row": 9},
            ],
            {"protection-removed", "layout-shifted"},
        ),
        "overwrite_total": (
            [{"op": "api_set", "sheet": "表三", "cell": a(fmt, "t3.r1.tot"), "value": 7}],
            {"formula-overwritten"},
        ),
    }
    for name, (steps, codes) in cases.items():
        path = tmp_path / f"{name}.xlsx"
        office.run(blank, cover_steps(fmt) + steps + [{"op": "save", "path": str(path), "filter": XLSX}])
        rep = read_bytes(path.read_bytes(), path.name)
        got = {f.code for f in rep.findings} - {"structure-unprotected-lo", "empty-return"}
        assert got == codes, name


def _pdf_pages(pdf: Path) -> int:
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    return int(next(line.split()[-1] for line in out.splitlines() if line.startswith("Pages:")))


def _text(pdf: Path) -> str:
    return "".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout.split())


def _pieces(label: str, text: str) -> int:
    """In how many consecutive pieces ``label`` is found in ``text`` (a large number if not at all)."""
    pieces, i = 0, 0
    while i < len(label):
        j = len(label)
        while j > i and label[i:j] not in text:
            j -= 1
        if j == i:
            return 99
        pieces, i = pieces + 1, j
    return pieces


def render(office, path: Path, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    pdf = ARTIFACTS / f"{name}.pdf"
    office.run(path, [{"op": "pdf", "path": str(pdf)}])
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(ARTIFACTS / name)], check=True, timeout=120)
    return pdf


def test_render_template_annotated_and_summary(office, blank, fmt, tmp_path):
    if not shutil.which("pdfinfo"):
        pytest.skip("没有 poppler-utils（pdfinfo/pdftotext/pdftoppm）")
    pdf = render(office, blank, "template")
    assert _pdf_pages(pdf) == 1 + len(fmt.sheets)  # cover + each official table on one page
    text = _text(pdf)
    for sheet in fmt.sheets:
        for lb in sheet.labels:  # CJK font present (no tofu); a wrapped label comes out in a few pieces
            assert _pieces("".join(lb.text.split()), text) <= max(1, len(lb.text) // 8 + 1), lb.text
    assert "□" not in text

    annotated = tmp_path / "退回"
    run_cli("check", SAMPLES / "faulty" / "152502003_杭盖街道_2025年政府信息公开年报_有误.xlsx", "--annotate", annotated)
    (copy,) = annotated.iterdir()
    pdf = render(office, copy, "annotated")
    assert _pdf_pages(pdf) >= 1 + len(fmt.sheets)
    assert "第一项＋第二项=3" in _text(pdf)  # the printed 问题清单 (codes and fingerprints are not printed)

    summary = tmp_path / "汇总.xlsx"
    run_cli("consolidate", SAMPLES / "returns", "--roster", SAMPLES / "roster.csv", "--year", "2025", "--out", summary)
    pdf = render(office, summary, "summary")
    text = _text(pdf)
    assert "汇总说明" in text and "三、收到和处理政府信息公开申请情况" in text
    assert sorted(p.name for p in ARTIFACTS.glob("template-*.png"))


def test_summary_recalculated_by_libreoffice_matches_cached(office, fmt, tmp_path):
    summary = tmp_path / "汇总.xlsx"
    r = run_cli("consolidate", SAMPLES / "returns", "--roster", SAMPLES / "roster.csv", "--year", "2025", "--out", summary)
    assert r.returncode == 0, r.stderr
    cached = openpyxl.load_workbook(summary, data_only=True)
    steps = [{"op": "calc"}]
    for sheet in fmt.sheets:
        steps.append({"op": "read", "sheet": sheet.name, "cells": [c.a1 for c in sheet.cells if c.is_total]})
    detail = cached["明细"]
    last = detail.max_row
    detail_cells = [f"{openpyxl.utils.get_column_letter(col)}{last}" for col in range(5, detail.max_column + 1)]
    steps.append({"op": "read", "sheet": "明细", "cells": detail_cells})
    res = office.run(summary, steps)
    reads = [x for x in res if x["op"] == "read"]
    compared = 0
    for sheet, got in zip([*fmt.sheets, None], reads, strict=True):
        ws = cached[sheet.name if sheet else "明细"]
        for addr, v in got["cells"].items():
            assert v["value"] == pytest.approx(ws[addr].value or 0), (ws.title, addr)
            compared += 1
    assert compared > 200
