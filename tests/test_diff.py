"""Issue 27: the cell-by-cell difference between two versions of a unit's return (toolkit/diff.py),
on the real sample returns changed the way a clerk changes them (in a spreadsheet) and read back."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import openpyxl
import pytest

from toolkit.diff import BLANK, CellChange, diff_reports, format_changes, same, shown
from toolkit.reader import read_bytes
from toolkit.spec import conventions

ROOT = Path(__file__).resolve().parent.parent
RETURNS = ROOT / "samples" / "returns"
SEED = ROOT / "samples" / "seed-2023"


def sample(code: str) -> Path:
    return next(RETURNS.glob(f"{code}_*.xlsx"))


def read(path: Path):
    return read_bytes(path.read_bytes(), path.name, str(path))


def edited(tmp_path: Path, src: Path, cells: dict[tuple[str, str], object], name: str = "v2.xlsx") -> Path:
    """A copy of ``src`` with some cells rewritten, as a clerk would in a spreadsheet program."""
    out = tmp_path / name
    shutil.copyfile(src, out)
    wb = openpyxl.load_workbook(out)
    for (sheet, ref), value in cells.items():
        wb[sheet][ref] = value
    wb.save(out)
    return out


def test_identical_versions_have_no_changes(tmp_path):
    src = sample("152502001")
    copy = tmp_path / "again.xlsx"
    shutil.copyfile(src, copy)
    assert diff_reports(read(src), read(copy)) == []


def test_changed_cells_named_from_the_format(tmp_path, fmt):
    src = sample("152502001")  # 希日塔拉街道: one application by a 自然人, 予以公开
    new = edited(
        tmp_path,
        src,
        {
            ("表三", "D7"): 3,  # 本年新收 自然人 1 → 3
            ("表三", "D9"): 3,  # 予以公开 1 → 3
            ("表二", "B13"): None,  # 行政处罚 0 → blank
            ("封面", "B11"): "本年度新收申请3件，已全部办结。",
        },
    )
    old_r, new_r = read(src), read(new)
    assert old_r.value("t3.r1.np") == 1 and new_r.value("t3.r1.np") == 3
    changes = diff_reports(old_r, new_r)
    by_id = {c.cell_id: c for c in changes}
    # inputs, and the totals computed from them (row total, column total (七), the corner)
    assert {"t3.r1.np", "t3.r3_1.np", "t2.penalty.n", "t3.r1.tot", "t3.r3_7.np", "t3.r3_7.tot"} <= set(by_id)
    assert set(by_id) - {"cover.note"} == {
        "t3.r1.np",
        "t3.r3_1.np",
        "t2.penalty.n",
        "t3.r1.tot",
        "t3.r3_1.tot",
        "t3.r3_7.np",
        "t3.r3_7.tot",
    }
    for cid, c in by_id.items():
        if cid.startswith("cover."):
            continue
        cell = fmt.cells[cid]
        assert (c.sheet, c.ref, c.row_label, c.col_label) == (cell.sheet_name, cell.a1, cell.row_label, cell.col_label)
        assert c.where == cell.where  # the same naming a finding uses
    assert (by_id["t3.r1.np"].old, by_id["t3.r1.np"].new) == (1, 3)
    assert (by_id["t2.penalty.n"].old, by_id["t2.penalty.n"].new) == (0, None)  # blank is not 0
    lines = format_changes(changes)
    assert "表三 一、本年新收政府信息公开申请数量 × 申请人情况 自然人（D7）：1 → 3" in lines
    assert "表二 行政处罚 × 第二十条第（六）项 本年处理决定数量（B13）：0 → 空白" in lines
    assert "封面 情况说明（B11）：空白 → 本年度新收申请3件，已全部办结。" in lines


def test_order_is_cover_then_sheet_row_column(tmp_path, fmt):
    src = sample("152502301")  # 公安局: many figures
    new = edited(
        tmp_path,
        src,
        {("表四", "A7"): 9, ("表二", "B10"): 301, ("表三", "E7"): 7, ("表三", "D7"): 5, ("封面", "B10"): "2026-01-20"},
    )
    changes = diff_reports(read(src), read(new))
    assert changes[0].cell_id == "cover.date" and changes[0].sheet == fmt.cover.sheet_name
    assert changes[0].ref == f"{openpyxl.utils.get_column_letter(conventions().cover_value_col)}10"
    sheets = [s.name for s in fmt.sheets]
    cells = [c for c in changes if not c.is_cover]
    keys = [(sheets.index(c.sheet), fmt.cells[c.cell_id].row, fmt.cells[c.cell_id].col) for c in cells]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert [c.cell_id for c in cells][:1] == ["t2.license.n"]
    assert "t4.r1.rv_main" in {c.cell_id for c in cells} and "t4.r1.rv_tot" in {c.cell_id for c in cells}


def test_numbers_compare_as_numbers(tmp_path):
    src = sample("152502001")
    # 1 written back as 1.0 (what another program may store) is no change; blank ≠ 0
    new = edited(tmp_path, src, {("表三", "D7"): 1.0})
    assert diff_reports(read(src), read(new)) == []
    assert same(1, 1.0) and same(3.5, 3.5000000000001) and not same(None, 0) and same(None, None) and not same(0, 1)
    assert shown(None) == BLANK and shown("") == BLANK and shown(5.0) == "5" and shown(3.25) == "3.25"


def test_fee_amount_decimal(tmp_path, fmt):
    src = sample("152502306")  # 自然资源局: 收费 86.35 万元
    cell = fmt.cells["t2.fees.amt"]
    assert read(src).values.get("t2.fees.amt") == 86.35
    same_again = edited(tmp_path, src, {(cell.sheet_name, cell.a1): 86.35000000000001}, "same.xlsx")
    assert diff_reports(read(src), read(same_again)) == []
    new = edited(tmp_path, src, {(cell.sheet_name, cell.a1): 8.635})
    changes = diff_reports(read(src), read(new))
    assert format_changes(changes) == [f"{cell.where}：86.35 → 8.635"]


def test_cover_only_when_asked_and_long_text_cut(tmp_path):
    src = sample("152502001")
    note = "情况说明" * 40
    new = edited(tmp_path, src, {("封面", "B7"): "张三", ("封面", "B11"): note})
    changes = diff_reports(read(src), read(new))
    assert [c.cell_id for c in changes] == ["cover.filler", "cover.note"]
    assert changes[1].new == note  # the data keeps the whole text; only the line is cut
    line = format_changes(changes)[1]
    assert line.startswith("封面 情况说明（B11）：空白 → 情况说明") and line.endswith("…") and len(line) < 100
    assert diff_reports(read(src), read(new), cover=False) == []


def test_unreadable_version_has_no_figures(tmp_path):
    src = sample("152502001")
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"")
    bad = read(broken)
    assert not bad.readable
    changes = diff_reports(read(src), bad)
    assert changes and all(c.is_cover for c in changes)  # the clerk's cover fields, nothing about cells


def test_sparse_and_pickled_reports_as_the_archive_keeps_them(tmp_path):
    src = sample("152502001")
    new = edited(tmp_path, src, {("表三", "D7"): 2, ("表三", "D9"): 2})
    a, b = read(src).compact(), pickle.loads(pickle.dumps(read(new).compact()))
    assert {c.cell_id for c in diff_reports(a, b)} == {
        "t3.r1.np",
        "t3.r1.tot",
        "t3.r3_1.np",
        "t3.r3_1.tot",
        "t3.r3_7.np",
        "t3.r3_7.tot",
    }


def test_against_last_year(fmt):
    """A unit's return against its return of an earlier year: same cell ids, the cover's date left out."""
    old, new = read(next(SEED.glob("*.xlsx"))), read(sample("152502201"))
    assert old.year != new.year
    changes = diff_reports(old, new, cover=False)
    assert changes and all(not c.is_cover for c in changes)
    for c in changes:
        assert not same(old.values.get(c.cell_id), new.values.get(c.cell_id))
    unchanged = [cid for cid in fmt.cells if cid not in {c.cell_id for c in changes}]
    assert all(same(old.values.get(cid), new.values.get(cid)) for cid in unchanged)


def test_change_is_plain_data():
    c = CellChange("t3.r1.np", "表三", "D7", "一、本年新收政府信息公开申请数量", "申请人情况 自然人", 1, None)
    assert format_changes([c]) == ["表三 一、本年新收政府信息公开申请数量 × 申请人情况 自然人（D7）：1 → 空白"]
    with pytest.raises(AttributeError):
        c.new = 2  # type: ignore[misc]


def test_pure_no_spreadsheet_library():
    """The diff is plain data: the web page and the archive use it without loading openpyxl."""
    import subprocess
    import sys

    code = "import sys, toolkit.diff; assert not {'openpyxl', 'xlsxwriter'} & set(sys.modules), sorted(sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
