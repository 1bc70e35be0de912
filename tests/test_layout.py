"""Issue 12.1: a clerk who inserts or deletes rows and columns must never make a unit's table
count as zeros. Moved tables are read by their labels; a table that cannot be placed with
certainty is refused (never summed, never sent back empty)."""

from __future__ import annotations

import json
import random
import shutil

import openpyxl
import pytest
from conftest import SAMPLES
from lo import Office, require_libreoffice

from toolkit.reader import read_bytes
from toolkit.roster import load_roster
from toolkit.synth import random_values
from toolkit.template import ReturnContent, file_name, write_return

ROSTER = SAMPLES / "roster.csv"
XLSX = "Calc MS Excel 2007 XML"
COVER = {"filler": "乌云", "phone": "0479-0000107", "date": "2026-01-12"}


@pytest.fixture(scope="module")
def busy(fmt, tmp_path_factory):
    """A return of 阿尔善宝拉格镇 with figures in almost every part of 表三 and 表四."""
    unit = load_roster(ROSTER).get("152502101")
    values = random_values(fmt, random.Random(11), busy=True)
    values |= {"t4.r1.rv_main": 2, "t4.r1.rv_pend": 1, "t3.r3_3_2.np": 1, "t3.r1.np": values["t3.r1.np"] + 1}
    path = tmp_path_factory.mktemp("busy") / file_name(unit, 2025)
    write_return(path, fmt, ReturnContent(unit=unit, year=2025, values=values, cover=dict(COVER)))
    return path, values


def _read(path):
    return read_bytes(path.read_bytes(), path.name)


def _edit(src, dst, fn):
    wb = openpyxl.load_workbook(src)
    fn(wb)
    wb.save(dst)
    return dst


@pytest.mark.parametrize(
    "edit,sheet",
    [
        (lambda wb: wb["表三"].insert_rows(12, 1), "表三"),
        (lambda wb: wb["表三"].insert_cols(5, 2), "表三"),
        (lambda wb: wb["表四"].insert_rows(7, 1), "表四"),  # above the data row, which has no label
        (lambda wb: wb["表四"].insert_cols(3, 1), "表四"),
        (lambda wb: wb["表二"].insert_rows(8, 1), "表二"),
    ],
)
def test_inserted_rows_and_columns_are_read_by_their_labels(busy, fmt, tmp_path, edit, sheet):
    path, values = busy
    rep = _read(_edit(path, tmp_path / "edited.xlsx", edit))
    shifted = [f for f in rep.findings if f.code == "layout-shifted"]
    assert [f.sheet for f in shifted] == [sheet] and shifted[0].severity == "错误"
    assert not rep.unknown
    assert {c.id: rep.values[c.id] for c in fmt.inputs} == {c.id: values[c.id] for c in fmt.inputs}


def test_deleted_row_is_unknown_not_zero(busy, fmt, tmp_path):
    path, values = busy
    rep = _read(_edit(path, tmp_path / "del.xlsx", lambda wb: wb["表三"].delete_rows(12, 1)))  # 2.其他法律行政法规禁止公开
    gone = {c.id for c in fmt.sheet("t3").cells if c.row_id == "r3_3_2"}
    assert gone <= rep.unknown and all(rep.values[c] is None for c in gone)
    assert "t3.r3_7.np" in rep.unknown  # a total built on an unknown cell is unknown too
    assert rep.values["t3.r1.np"] == values["t3.r1.np"]  # the rest is read where it went
    assert "删除了“2.其他法律行政法规禁止公开”所在的行" in next(f.message for f in rep.findings if f.code == "layout-shifted")


def test_figures_typed_into_an_inserted_row_are_reported(busy, tmp_path):
    path, _ = busy

    def edit(wb):
        wb["表三"].insert_rows(12, 1)
        wb["表三"]["D12"] = 7

    rep = _read(_edit(path, tmp_path / "typed.xlsx", edit))
    stray = next(f for f in rep.findings if f.code == "content-outside-table")
    assert stray.severity == "错误" and "D12=7" in stray.message


def test_table_that_cannot_be_placed_is_refused(busy, fmt, tmp_path, cli):
    path, _ = busy

    def scramble(wb):  # labels wiped and rows moved: no certain alignment is possible
        ws = wb["表三"]
        for row in range(7, 32):
            for col in (1, 2, 3):
                if type(ws.cell(row, col)).__name__ == "Cell":
                    ws.cell(row, col).value = None
        ws.insert_rows(12, 3)

    bad = _edit(path, tmp_path / "坏表三.xlsx", scramble)
    rep = _read(bad)
    assert [f.code for f in rep.findings if f.code == "table-not-read"] == ["table-not-read"]
    assert {c.id for c in fmt.sheet("t3").cells} <= rep.unknown
    assert rep.values["t2.license.n"] is not None  # the other tables are still read

    folder = tmp_path / "returns"
    shutil.copytree(SAMPLES / "returns", folder)
    (folder / path.name).unlink()
    shutil.copy(bad, folder / path.name)
    out = tmp_path / "汇总.xlsx"
    r = cli("consolidate", folder, "--roster", ROSTER, "--year", "2025", "--out", out, "--force", "--json")
    assert r.returncode == 1 and not out.exists() and "表三未能读取" in r.stderr
    data = json.loads(r.stdout)
    assert data["refused"] and "--exclude 152502101" in data["refused"]["reason"]
    # the advice given works: excluding that unit consolidates the rest, marked as a selection
    r = cli("consolidate", folder, "--roster", ROSTER, "--year", "2025", "--out", out, "--exclude", "152502101", "--json")
    assert r.returncode == 0 and out.exists(), r.stderr
    assert json.loads(r.stdout)["summary"]["scope"] == "选择汇总"
    # and no annotated copy is sent back with an empty 表三
    r = cli("check", bad, "--annotate", tmp_path / "退回")
    assert r.returncode == 1 and "未生成" in r.stderr and not list((tmp_path / "退回").glob("*.xlsx"))


# ---------------------------------------------------------------- the same, in LibreOffice


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    require_libreoffice()
    o = Office(tmp_path_factory.mktemp("lo"))
    o.start()
    yield o
    o.stop()


def test_row_inserted_in_libreoffice_consolidates_like_the_clean_return(office, busy, fmt, tmp_path, cli):
    """The reported case: a clerk unprotects 表三 in LibreOffice, inserts a row in the middle and
    fills the rows above it. The figures must come through exactly, in check, in the annotated
    copy and in the summary (LibreOffice also moves the formulas, so the totals stay right)."""
    path, values = busy
    edited = tmp_path / path.name
    office.run(
        path,
        [
            {"op": "api_unprotect", "sheet": "表三", "password": fmt.protection_password},
            {"op": "api_insert_rows", "sheet": "表三", "row": 14, "count": 1},
            {"op": "save", "path": str(edited), "filter": XLSX},
        ],
    )
    rep = _read(edited)
    codes = {f.code for f in rep.findings if f.severity == "错误"}
    assert codes == {"layout-shifted", "protection-removed"}, rep.findings
    assert {c.id: rep.values[c.id] for c in fmt.inputs} == {c.id: values[c.id] for c in fmt.inputs}

    clean, shifted = tmp_path / "clean", tmp_path / "shifted"
    clean.mkdir()
    shifted.mkdir()
    shutil.copy(path, clean / path.name)
    shutil.copy(edited, shifted / path.name)
    args = ["--roster", ROSTER, "--year", "2025", "--units", "152502101", "--force", "--json"]
    a = json.loads(cli("consolidate", clean, *args, "--out", tmp_path / "a.xlsx").stdout)["summary"]["totals"]
    r = cli("consolidate", shifted, *args, "--out", tmp_path / "b.xlsx")
    assert r.returncode == 1, r.stderr  # forced: the layout change is an 错误
    assert json.loads(r.stdout)["summary"]["totals"] == a

    r = cli("check", edited, "--year", "2025", "--annotate", tmp_path / "退回")
    (copy,) = (tmp_path / "退回").glob("*.xlsx")
    back = _read(copy)
    assert {c.id: back.values[c.id] for c in fmt.inputs} == {c.id: values[c.id] for c in fmt.inputs}
    assert not [f for f in back.findings if f.code in ("layout-shifted", "protection-removed")]
