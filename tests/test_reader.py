"""Issue 4: the reader — what clerks type, what tampering looks like, what broken files are."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

from toolkit.check import CheckOptions, check_report
from toolkit.reader import normalize_number, read_bytes
from toolkit.roster import Unit
from toolkit.template import ReturnContent, write_return

UNIT = Unit("152502201", "宝力根苏木", "苏木", "152502")
COVER = {"filler": "图雅", "phone": "0479-0000108", "date": "2026-01-12", "note": "测试"}


def build(tmp_path: Path, fmt, values=None, name="r.xlsx", **kw) -> Path:
    vals = {c.id: 0 for c in fmt.inputs} | (values or {})
    path = tmp_path / name
    write_return(path, fmt, ReturnContent(unit=UNIT, year=2025, values=vals, cover=dict(COVER), **kw))
    return path


def check(path: Path, year=2025):
    rep = read_bytes(path.read_bytes(), path.name, str(path))
    return check_report(rep, CheckOptions(year=year))


def found(rep):
    return sorted((f.code, f.sheet, f.cell) for f in rep.findings)


def edit(path: Path, fn) -> Path:
    """Change a workbook the way another application would (openpyxl keeps properties/protection)."""
    wb = openpyxl.load_workbook(path)
    fn(wb)
    out = path.with_name("edited_" + path.name)
    wb.save(out)
    return out


@pytest.mark.parametrize(
    "raw,integer,expected",
    [
        (None, True, (None, "blank", None)),
        ("   ", True, (None, "blank", None)),
        (5.0, True, (5, None, 5)),
        (3, True, (3, None, 3)),
        ("１２", True, (12, "number-as-text", 12)),
        ("1,200", True, (1200, "number-as-text", 1200)),
        ("１，２００", True, (1200, "number-as-text", 1200)),
        (" 15 ", True, (15, "number-as-text", 15)),
        ("'42", True, (42, "number-as-text", 42)),
        ("-", True, (None, "not-a-number", None)),
        ("/", True, (None, "not-a-number", None)),
        ("无", True, (None, "not-a-number", None)),
        ("五件", True, (None, "not-a-number", None)),
        (-3.0, True, (-3, "negative", None)),
        (2.5, True, (2.5, "not-integer", None)),
        (2.5, False, (2.5, None, 2.5)),
        (1e308, True, (None, "value-too-large", None)),
        (float("nan"), True, (None, "value-not-finite", None)),
        (float("inf"), True, (None, "value-not-finite", None)),
        (float("-inf"), True, (None, "value-not-finite", None)),
        ("1e309", True, (None, "value-not-finite", None)),
        (True, True, (None, "not-a-number", None)),
        (dt.datetime(2025, 3, 1), True, (None, "date-in-number", None)),
    ],
)
def test_normalize_what_clerks_type(raw, integer, expected):
    assert normalize_number(raw, integer) == expected


def test_clean_return_reads_values_and_identity(tmp_path, fmt):
    path = build(tmp_path, fmt, {"t2.license.n": 146, "t2.penalty.n": 2, "t2.fees.amt": 3.5})
    rep = check(path)
    assert rep.findings == []
    assert (rep.unit_code, rep.unit_name, rep.year, rep.format_id) == ("152502201", "宝力根苏木", 2025, "zfxxgk-2021")
    assert rep.values["t2.license.n"] == 146 and rep.values["t2.fees.amt"] == 3.5
    assert rep.cover["filler"] == "图雅" and rep.cover["date"] == "2026-01-12"
    assert rep.provenance.sha256 and rep.provenance.size == path.stat().st_size


def test_text_in_number_cells(tmp_path, fmt):
    path = build(
        tmp_path,
        fmt,
        {"t3.r1.np": None, "t3.r3_1.np": 12, "t2.license.n": None, "t3.r1.biz": None},
        raw={"t3.r1.np": "１２", "t2.license.n": "1,200", "t3.r1.biz": "无"},
    )
    rep = check(path)
    by = {f.cell_id: f for f in rep.findings if f.cell_id}
    assert by["t3.r1.np"].code == "number-as-text" and by["t3.r1.np"].expected == 12
    assert by["t3.r1.np"].cell == "D7" and by["t3.r1.np"].severity == "警告"
    assert rep.values["t3.r1.np"] == 12 and rep.values["t2.license.n"] == 1200
    assert by["t3.r1.biz"].code == "not-a-number" and by["t3.r1.biz"].found == "无"
    assert by["t3.r1.biz"].message == "应填写数字，实际是“无”。"
    # a missing part (“无”) makes the row-total rule skip that row (missing-value strategy skip_if_any)
    assert "t3.r1.tot" not in by
    # without it, the spreadsheet's SUM ignored the full-width text, so its cached 总计 disagrees
    path = build(tmp_path, fmt, {"t3.r1.np": None, "t3.r3_1.np": 12}, raw={"t3.r1.np": "１２"}, name="fw.xlsx")
    by = {f.cell_id: f for f in check(path).findings if f.cell_id}
    assert by["t3.r1.tot"].code == "I2" and by["t3.r1.tot"].message.startswith("表中总计为0，")


def test_blank_cells_are_zero_with_one_hint_per_sheet(tmp_path, fmt):
    path = build(tmp_path, fmt, {"t3.r1.np": None, "t3.r1.biz": None, "t4.r1.rv_main": None})
    rep = check(path)
    blanks = [f for f in rep.findings if f.code == "value-blank"]
    assert [(f.sheet, f.severity) for f in blanks] == [("表三", "提示"), ("表四", "提示")]
    assert blanks[0].message == "2个数字单元格为空，已按0计算（D7、E7）。"
    assert rep.values["t3.r1.np"] is None and rep.value("t3.r1.np") == 0


def test_formula_in_input_and_overwritten_total(tmp_path, fmt):
    path = build(tmp_path, fmt, {"t3.r1.np": 1, "t3.r3_1.np": 1})

    def tamper(wb):
        wb["表三"]["E7"] = "=1+2"
        wb["表三"]["J7"] = 9

    rep = check(edit(path, tamper))
    assert ("formula-in-input", "表三", "E7") in found(rep)
    over = next(f for f in rep.findings if f.code == "formula-overwritten")
    assert (over.cell, over.found) == ("J7", "9")
    assert over.message.startswith("总计单元格的公式被改写为数字9")
    assert not [f for f in rep.findings if f.code == "I2" and f.cell == "J7"]


def test_label_edited(tmp_path, fmt):
    path = edit(build(tmp_path, fmt), lambda wb: wb["表二"].__setitem__("A10", "行政审批"))
    rep = check(path)
    f = next(f for f in rep.findings if f.code == "label-changed")
    assert (f.sheet, f.cell, f.expected, f.found) == ("表二", "A10", "行政许可", "行政审批")
    assert f.message == "标签应为“行政许可”，实为“行政审批”。"


def test_rows_inserted(tmp_path, fmt):
    path = edit(build(tmp_path, fmt), lambda wb: wb["表三"].insert_rows(10, 1))
    rep = check(path)
    shifted = [f for f in rep.findings if f.code == "layout-shifted"]
    assert len(shifted) == 1 and shifted[0].sheet == "表三" and "下移了1行" in shifted[0].message
    assert rep.findings[0].severity == "错误"


def test_columns_deleted(tmp_path, fmt):
    path = edit(build(tmp_path, fmt), lambda wb: wb["表四"].delete_cols(2, 1))
    rep = check(path)
    assert [f.sheet for f in rep.findings if f.code == "layout-shifted"] == ["表四"]


def _rezip(path: Path, fn) -> Path:
    src = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, fn(item.filename, src.read(item.filename)))
    new = path.with_name("z_" + path.name)
    new.write_bytes(out.getvalue())
    return new


def test_protection_removed(tmp_path, fmt):
    path = _rezip(
        build(tmp_path, fmt), lambda n, b: re.sub(rb"<sheetProtection[^>]*/>", b"", b) if n == "xl/worksheets/sheet4.xml" else b
    )
    rep = check(path)
    assert found(rep) == [("protection-removed", "表四", "")]
    assert rep.findings[0].message == "工作表“表四”的保护已被撤销，表格结构和公式可能已被改动。"


def test_structure_unlocked_by_excel_vs_libreoffice(tmp_path, fmt):
    def unlock(n, b):
        return re.sub(rb"<workbookProtection[^>]*/>", b"", b) if n == "xl/workbook.xml" else b

    path = _rezip(build(tmp_path, fmt), unlock)
    assert [f.code for f in check(path).findings] == ["structure-unprotected"]

    def lo(n, b):
        b = unlock(n, b)
        if n == "docProps/app.xml":
            b = re.sub(rb"<Application>[^<]*</Application>", b"<Application>LibreOffice/7.4.7.2$Linux_X86_64</Application>", b)
        if n == "docProps/custom.xml":  # LibreOffice headless writes integer properties as r8
            b = re.sub(rb"<vt:i4>(\d+)</vt:i4>", rb"<vt:r8>\1.0</vt:r8>", b)
        return b

    rep = check(_rezip(build(tmp_path, fmt, name="lo.xlsx"), lo))
    assert [(f.code, f.severity) for f in rep.findings] == [("structure-unprotected-lo", "提示")]
    assert rep.year == 2025


def test_extra_and_missing_sheets(tmp_path, fmt):
    def tamper(wb):
        wb.create_sheet("我的备注")
        del wb["信息处理费"]

    rep = check(edit(build(tmp_path, fmt), tamper))
    assert ("sheet-extra", "", "") in found(rep) and ("sheet-missing", "", "") in found(rep)
    assert any("我的备注" in f.message for f in rep.findings)


def test_identity_year_and_roster(tmp_path, fmt):
    from toolkit.roster import Roster

    path = build(tmp_path, fmt)
    rep = read_bytes(path.read_bytes(), path.name)
    other = Roster((Unit("152502201", "宝力根镇", "镇"),), "r.csv")
    check_report(rep, CheckOptions(year=2024, roster=other))
    codes = {f.code: f for f in rep.findings}
    assert codes["year-mismatch"].message == "文件是2025年度的模板，本次审核的是2024年度。"
    assert codes["unit-name-mismatch"].expected == "宝力根镇"
    rep = read_bytes(path.read_bytes(), path.name)
    check_report(rep, CheckOptions(roster=Roster((Unit("1", "甲", "镇"),), "r.csv")))
    assert [f.code for f in rep.findings] == ["unit-not-in-roster"]


@pytest.mark.parametrize(
    "data,code,needle",
    [
        (b"", "file-empty", "0字节"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "file-xls", "另存为"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 100, "file-encrypted", "加密"),
        (b"%PDF-1.7\n...", "file-not-workbook", "PDF"),
        ("单位,数量\n甲,1\n".encode("gbk"), "file-not-workbook", "CSV"),
        (b"PK\x03\x04garbage-that-is-not-a-zip", "file-unreadable", "损坏"),
    ],
)
def test_broken_files_get_one_clear_finding(data, code, needle):
    rep = read_bytes(data, "x.xlsx")
    assert [f.code for f in rep.findings] == [code]
    assert needle in rep.findings[0].message + rep.findings[0].instruction
    assert not rep.readable


def test_docx_renamed_and_truncated_xlsx(tmp_path, fmt):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    rep = read_bytes(buf.getvalue(), "年报.xlsx")
    assert [f.code for f in rep.findings] == ["file-not-workbook"] and "Word" in rep.findings[0].message
    data = build(tmp_path, fmt).read_bytes()
    rep = read_bytes(data[: len(data) // 2], "半截.xlsx")
    assert [f.code for f in rep.findings] == ["file-unreadable"]


def test_some_other_workbook(tmp_path):
    wb = openpyxl.Workbook()
    wb.active["A1"] = "村名"
    p = tmp_path / "other.xlsx"
    wb.save(p)
    rep = read_bytes(p.read_bytes(), p.name)
    assert [f.code for f in rep.findings] == ["not-our-template"]


def test_properties_lost_falls_back_to_labels_and_cover(tmp_path, fmt):
    def strip(n, b):
        return b"" if n == "docProps/custom.xml" else b

    path = _rezip(build(tmp_path, fmt, {"t2.license.n": 3}), strip)
    rep = check(path)
    assert rep.format_id == "zfxxgk-2021" and rep.unit_code == "152502201" and rep.year == 2025
    assert rep.values["t2.license.n"] == 3
