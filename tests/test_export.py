"""Exports for the county (issue 27.10): Chinese headings, the long form and the wide form (the summary's
明细 layout, labels over cell ids), counts as integers and amounts in 万元 with their decimals, the
sheet 明细; the same from the command line, from pandas and from the web page."""

from __future__ import annotations

import csv
import io

import openpyxl
import pandas as pd
import pytest
from archive_util import BACKENDS, new_db
from conftest import SAMPLES

from toolkit.archive import Archive
from toolkit.spec import current_format
from toolkit.summary_writer import detail_heading

YEAR = 2025
XIRI, BAOLI = "152502001", "152502002"  # two 街道 of the sample roster
NOTE = "本年度行政许可由政务服务中心统一办理。"
ROSTER = SAMPLES / "roster.csv"
LONG = ["年度", "单位代码", "单位名称", "单位类型", "报送状态", "上级代码", "表", "行", "列", "单元格编号", "数值"]


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path):
    url, cleanup = new_db(request.param, tmp_path)
    with Archive.open(url) as archive:
        archive.load_roster(ROSTER, YEAR)
        files = [
            _return(tmp_path / "a.xlsx", XIRI, {"t2.license.n": 300, "t2.fees.amt": 3.5}, note=NOTE),
            _return(tmp_path / "b.xlsx", BAOLI, {"t2.license.n": 12, "t2.fees.amt": 0}),
        ]
        archive.receive(files, YEAR)
        for code in (XIRI, BAOLI):
            archive.approve(code, YEAR, "已核实")
    yield url
    cleanup()


def _return(path, code: str, values: dict, note: str = ""):
    """A consistent return of a sample unit (random figures but ``values``), with the clerk's 情况说明."""
    import random

    from toolkit.roster import load_roster
    from toolkit.synth import random_values
    from toolkit.template import ReturnContent, write_return

    fmt = current_format()
    vals = random_values(fmt, random.Random(code)) | values
    cover = {"filler": "测试员", "phone": "0479-1234567", "date": f"{YEAR + 1}-01-10", "note": note}
    return write_return(path, fmt, ReturnContent(unit=load_roster(ROSTER).get(code), year=YEAR, values=vals, cover=cover))


def _rows(path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))


def test_long_csv_has_chinese_headings_and_integer_counts(cli, db, tmp_path):
    out = tmp_path / "明细.csv"
    res = cli("export", "--year", YEAR, "--db", db, "--out", out)
    assert res.returncode == 0, res.stderr
    rows = _rows(out)
    assert rows[0] == LONG
    by = {(r[1], r[9]): r for r in rows[1:]}
    assert by[XIRI, "t2.license.n"][10] == "300"  # a count: never 300.0
    assert by[XIRI, "t2.fees.amt"][10] == "3.5"  # an amount in 万元 keeps its decimals
    assert by[XIRI, "t2.license.n"][:6] == ["2025", XIRI, "希日塔拉街道", "街道", "已通过", "152502"]
    assert len(rows) == 1 + 2 * len(current_format().cells)


def test_wide_csv_follows_the_detail_sheet(cli, db, tmp_path):
    out = tmp_path / "宽表.csv"
    res = cli("export", "--year", YEAR, "--db", db, "--out", out, "--wide")
    assert res.returncode == 0, res.stderr
    labels, ids, *units = _rows(out)
    cells = list(current_format().cells.values())
    fixed = ["年度", "单位代码", "单位名称", "单位类型", "报送状态", "上级代码", "情况说明"]
    assert ids == fixed + [c.id for c in cells]  # the format's order, as the columns of 明细
    assert labels == fixed + [detail_heading(c) for c in cells]  # the same labels as 明细's heading row
    assert len(units) == 2
    row = dict(zip(ids, units[0], strict=True))
    assert (row["单位代码"], row["t2.license.n"], row["t2.fees.amt"], row["情况说明"]) == (XIRI, "300", "3.5", NOTE)
    assert "." not in row["t3.r1.tot"]
    back = pd.read_csv(out, skiprows=[0], dtype={"单位代码": str})  # the frame again, as documented
    assert list(back.columns) == ids and back.loc[0, "t2.license.n"] == 300


def test_xlsx_sheet_is_named_like_the_summary(cli, db, tmp_path):
    for name, wide in (("明细.xlsx", []), ("宽表.xlsx", ["--wide"])):
        res = cli("export", "--year", YEAR, "--db", db, "--out", tmp_path / name, *wide)
        assert res.returncode == 0, res.stderr
    long = openpyxl.load_workbook(tmp_path / "明细.xlsx")
    assert long.sheetnames == ["明细"]
    rows = list(long["明细"].iter_rows(values_only=True))
    assert list(rows[0]) == LONG
    (count,) = [r[10] for r in rows[1:] if r[1] == XIRI and r[9] == "t2.license.n"]
    assert count == 300 and isinstance(count, int)
    wide = openpyxl.load_workbook(tmp_path / "宽表.xlsx")["明细"]
    head, ids, first = (list(r) for r in wide.iter_rows(max_row=3, values_only=True))
    j = ids.index("t2.fees.amt")
    assert head[j] == detail_heading(current_format().cells["t2.fees.amt"]) and first[j] == 3.5
    assert isinstance(first[ids.index("t2.license.n")], int)


def test_pandas_frames(db):
    with Archive.open(db) as archive:
        long = archive.export_frame([YEAR])
        wide = archive.export_frame([YEAR], wide=True)
    assert list(long.columns) == LONG and len(long) == 2 * long["单元格编号"].nunique()
    assert wide.groupby("单位类型")["t2.license.n"].sum()["街道"] == 312  # README's example, on these figures
    assert str(wide["t2.license.n"].dtype) == "Int64" and wide["t2.fees.amt"].tolist() == [3.5, 0.0]


def test_web_offers_both_forms(db, tmp_path):
    if not db.endswith(".db"):
        pytest.skip("the web page is tested on SQLite here")
    pytest.importorskip("httpx")
    from web_util import web_client

    from toolkit.web import WebConfig, create_app

    client = web_client(create_app(WebConfig(db=db, year=YEAR)))
    page = client.get("/")
    assert "/export.csv?form=wide" in page.text and "/export.xlsx?form=wide" in page.text
    long = client.get("/export.csv")
    assert long.status_code == 200 and long.content.decode("utf-8-sig").startswith(",".join(LONG))
    wide = client.get("/export.xlsx?form=wide")
    assert wide.status_code == 200 and "%E5%AE%BD%E8%A1%A8" in wide.headers["content-disposition"]  # 宽表
    sheet = openpyxl.load_workbook(io.BytesIO(wide.content))["明细"]
    assert [c.value for c in sheet[2]][:2] == ["年度", "单位代码"] and sheet.max_row == 4
