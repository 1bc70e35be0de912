"""Issue 3: the generated template matches the official tables, is locked, and reads back."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from official_labels import NUMERIC, T2, T3, T4

from toolkit.roster import Unit
from toolkit.spec import a1
from toolkit.template import ReturnContent, file_name, write_return

UNIT = Unit("152502201", "宝力根苏木", "苏木", "152502")


@pytest.fixture(scope="module")
def blank(tmp_path_factory, fmt) -> Path:
    path = tmp_path_factory.mktemp("tpl") / file_name(UNIT, 2025)
    write_return(path, fmt, ReturnContent(unit=UNIT, year=2025))
    return path


@pytest.fixture(scope="module")
def wb(blank):
    return openpyxl.load_workbook(blank)


@pytest.fixture(scope="module")
def wb_values(blank):
    return openpyxl.load_workbook(blank, data_only=True)


def _merges(ws) -> set[str]:
    return {str(r) for r in ws.merged_cells.ranges}


@pytest.mark.parametrize("sheet_name,sheet_id,expected", [("表二", "t2", T2), ("表三", "t3", T3), ("表四", "t4", T4)])
def test_every_official_label_verbatim_in_place_and_merged(wb, fmt, sheet_name, sheet_id, expected):
    """Compared against a list typed independently from the spec, not from the format data."""
    ws = wb[sheet_name]
    sheet = fmt.sheet(sheet_id)
    merges = _merges(ws)
    for r, c, rs, cs, text in expected:
        row, col = sheet.first_row + r - 1, sheet.first_col + c - 1
        assert ws.cell(row, col).value == text, f"{sheet_name} {a1(row, col)}"
        if rs > 1 or cs > 1:
            assert f"{a1(row, col)}:{a1(row + rs - 1, col + cs - 1)}" in merges, f"{sheet_name} merge of {text}"
    # and nothing else is a label inside the table area
    assert len(sheet.labels) == len(expected)


def test_workbook_matches_format_data(wb, fmt):
    for sheet in fmt.sheets:
        ws = wb[sheet.name]
        for lb in sheet.labels:
            assert ws[lb.a1].value == lb.text
        for c in sheet.cells:
            v = ws[c.a1].value
            if c.is_total:
                assert isinstance(v, str) and v.startswith("="), c.id
            else:
                assert v == 0, c.id


def test_numeric_cell_counts_match_the_spec(fmt):
    for name, n in NUMERIC.items():
        sheet = next(s for s in fmt.sheets if s.name == name)
        assert len(sheet.cells) == n


def test_sheets_and_cover(wb, fmt):
    assert wb.sheetnames == [fmt.cover.sheet_name, "表二", "表三", "表四", "信息处理费"]
    cover = wb[fmt.cover.sheet_name]
    values = {cover.cell(f.row, 1).value: cover.cell(f.row, 2) for f in fmt.cover.fields}
    assert values["填报单位"].value == "宝力根苏木"
    assert values["单位代码"].value == "152502201"
    assert values["报告年度"].value == 2025
    for label in ("填报单位", "单位代码", "报告年度"):
        assert values[label].protection.locked
    for label in ("填报人", "联系电话", "审核人", "填报日期"):
        assert values[label].protection.locked is False
    texts = " ".join(str(c.value) for row in cover.iter_rows() for c in row if c.value)
    assert "填报说明" in texts


def test_exactly_the_input_cells_are_unlocked(wb, fmt):
    editable_cover = {f.row for f in fmt.cover.fields if f.editable}
    for ws in wb.worksheets:
        assert ws.protection.sheet, ws.title
        unlocked = {c.coordinate for row in ws.iter_rows() for c in row if c.protection.locked is False}
        if ws.title == fmt.cover.sheet_name:
            assert unlocked == {a1(r, 2) for r in editable_cover}
            continue
        sheet = next(s for s in fmt.sheets if s.name == ws.title)
        expected = set()
        for c in sheet.cells:
            if not c.is_total:
                expected |= {a1(c.row, c.col + k) for k in range(c.colspan)}
        assert unlocked == expected, ws.title


def test_workbook_structure_is_locked(blank):
    xml = zipfile.ZipFile(blank).read("xl/workbook.xml").decode()
    assert re.search(r'<workbookProtection lockStructure="1"\s*/>', xml)
    assert openpyxl.load_workbook(blank).security.lockStructure


def test_validation_on_every_input(wb, fmt):
    for sheet in fmt.sheets:
        ws = wb[sheet.name]
        covered: dict[str, str] = {}
        for dv in ws.data_validations.dataValidation:
            for rng in dv.sqref.ranges:
                for row in ws[rng.coord] if ":" in rng.coord else [[ws[rng.coord]]]:
                    for cell in row:
                        covered[cell.coordinate] = (dv.type, dv.operator, dv.formula1, dv.promptTitle, dv.error)
        for c in sheet.cells:
            if c.is_total:
                assert c.a1 not in covered
                continue
            typ, operator, f1, title, error = covered[c.a1]
            kind = fmt.kinds[c.kind]
            assert typ == ("whole" if kind.integer else "decimal"), c.id
            assert operator == "greaterThanOrEqual" and f1 == "0"
            assert title == kind.input_title and error == kind.error_message


def test_inputs_read_back_zero_and_totals_cached(wb_values, fmt):
    for sheet in fmt.sheets:
        ws = wb_values[sheet.name]
        for c in sheet.cells:
            assert ws[c.a1].value == 0, c.id


def test_totals_with_values_have_correct_cached_values(tmp_path, fmt):
    values = {c.id: 0 for c in fmt.inputs}
    values.update(
        {
            "t3.r1.np": 7,
            "t3.r1.biz": 2,
            "t3.r3_1.np": 5,
            "t3.r3_3_4.biz": 2,
            "t3.r4.np": 2,
            "t4.r1.rv_main": 10,
            "t4.r1.rv_corr": 1,
            "t4.r1.as_pend": 4,
        }
    )
    path = tmp_path / "v.xlsx"
    write_return(path, fmt, ReturnContent(unit=UNIT, year=2025, values=values))
    ws3 = openpyxl.load_workbook(path, data_only=True)["表三"]
    cells = fmt.cells
    assert ws3[cells["t3.r1.tot"].a1].value == 9
    assert ws3[cells["t3.r3_7.np"].a1].value == 5
    assert ws3[cells["t3.r3_7.biz"].a1].value == 2
    assert ws3[cells["t3.r3_7.tot"].a1].value == 7
    ws4 = openpyxl.load_workbook(path, data_only=True)["表四"]
    assert ws4[cells["t4.r1.rv_tot"].a1].value == 11
    assert ws4[cells["t4.r1.as_tot"].a1].value == 4
    # the formulas themselves are there too
    f3 = openpyxl.load_workbook(path)["表三"]
    assert f3[cells["t3.r1.tot"].a1].value == f"=SUM({cells['t3.r1.np'].a1}:{cells['t3.r1.oth'].a1})"


def test_selfcheck_cached_values_follow_the_rule(tmp_path, fmt):
    sheet = fmt.sheet("t3")
    sc_row = sheet.last_row + sheet.selfcheck.gap + 3  # 1-based row of 自检结果
    values = {c.id: 0 for c in fmt.inputs} | {"t3.r1.np": 3, "t3.r3_1.np": 1}
    path = tmp_path / "bad.xlsx"
    write_return(path, fmt, ReturnContent(unit=UNIT, year=2025, values=values))
    ws = openpyxl.load_workbook(path, data_only=True)["表三"]
    np_col = fmt.cells["t3.r1.np"].col
    assert ws.cell(sc_row, np_col).value == "不符，差2"
    assert ws.cell(sc_row, np_col + 1).value == "相符"
    formulas = openpyxl.load_workbook(path)["表三"]
    assert formulas.cell(sc_row - 2, np_col).value == f"={fmt.cells['t3.r1.np'].a1}+{fmt.cells['t3.r2.np'].a1}"
    rules = formulas.conditional_formatting
    assert any(a1(sc_row, np_col) in str(cf.sqref) for cf in rules)


def test_custom_properties(wb):
    props = {p.name: p.value for p in wb.custom_doc_props}
    assert props["nianbao_format_id"] == "zfxxgk-2021"
    assert props["nianbao_year"] == 2025
    assert props["nianbao_unit_code"] == "152502201"
    assert props["nianbao_unit_name"] == "宝力根苏木"
    assert props["nianbao_template_version"] == "1"
    assert props["nianbao_level"] == "填报单位"


def test_print_setup(wb, fmt):
    for sheet in fmt.sheets:
        ws = wb[sheet.name]
        assert ws.page_setup.paperSize == 9
        assert ws.page_setup.fitToWidth in (None, 1)  # 1 is the default and may be omitted
        assert ws.page_setup.fitToHeight in (None, 1)
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert "宝力根苏木" in ws.oddFooter.left.text
        assert ws.print_area
    assert wb["表四"].page_setup.orientation == "landscape"


def test_file_name_is_windows_safe():
    assert file_name(UNIT, 2025) == "152502201_宝力根苏木_2025年政府信息公开年报.xlsx"
    odd = Unit("CON", 'a/b\\c:..d"e', "镇")
    name = file_name(odd, 2025)
    assert "/" not in name and "\\" not in name and ":" not in name and ".." not in name
    assert not name.upper().startswith("CON_") or name.startswith("_")
