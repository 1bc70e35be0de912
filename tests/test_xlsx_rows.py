"""toolkit.xlsx_rows writes whole rows of a streaming sheet as one string: the sheet must be
byte-identical to what XlsxWriter's per-cell API writes for the same rows, for every kind of value
the summary's 明细 and 报送情况 hold and the awkward ones a unit name or file name may bring."""

from __future__ import annotations

import io
import zipfile

import pytest
from xlsxwriter.workbook import Workbook

from toolkit.xlsx_rows import RowWriter

AWKWARD = [
    "锡林浩特市民政局",
    "A&B <c> \"d\" 'e'",
    " 前导空格",
    "末尾空格 ",
    "换行\n在中间",
    "控制字符\x01\x1f",
    "_x0041_ 像转义",
    "汉" * 20000,  # over Excel's cell limit: the API truncates it
    "",
    "非字符\ufffe\uffff",
    "<r>像富文本</r>",
]
NUMBERS = [0, 1, 7, 146, 86.35, 0.1 + 0.2, 1e-7, 1234567890123, 2.5e15, -3, True]


def sheet_xml(bulk: bool, *, streaming: bool = True) -> bytes:
    buf = io.BytesIO()
    wb = Workbook(buf, {"in_memory": True})
    wb.constant_memory = streaming
    ws = wb.add_worksheet("明细")
    wb.constant_memory = False
    note, num = wb.add_format({"font_size": 8}), wb.add_format({"font_name": "宋体"})
    ws.set_row(0, 90)
    ws.set_row(7, 30)  # a row with a height of its own
    ws.set_column(4, 4, 12, num)  # a column with a format: a cell without one takes it
    ws.write_string(0, 0, "单位代码", note)  # header through the API, then bulk rows, then a total through the API
    ws.write_string(1, 3, "t2.reg.made", note)
    rows = RowWriter(ws, bulk=bulk)
    for r in range(2, 40):
        cells = [(0, AWKWARD[r % len(AWKWARD)], note), (1, None, note), (2, "", None)]
        cells += [(3 + k, NUMBERS[(r + k) % len(NUMBERS)], num) for k in range(r % 5)]
        if r == 11:
            cells = [(4, 5, None), *cells]  # no format: the column's
        if r == 13:
            cells = [cells[-1], *cells[:-1]]  # columns out of order: the API sorts them
        rows.write_row(r, cells)
    rows.write_row(40, [(1, None, None)])  # nothing to write: no row at all
    ws.write_formula(41, 3, "=SUM(D3:D40)", num, 12)
    ws.autofilter(0, 0, 40, 6)
    wb.close()
    with zipfile.ZipFile(buf) as z:
        return z.read("xl/worksheets/sheet1.xml")


def test_bulk_rows_are_byte_identical_to_the_per_cell_api():
    bulk, api = sheet_xml(True), sheet_xml(False)
    assert bulk == api
    assert b"_xFFFE__xFFFF_" in bulk and "\uffff".encode() not in bulk
    assert bulk.count(b'<row r="8"') == 1 and b'<row r="8" ht="30" customHeight="1">' in bulk
    assert b"A&amp;B &lt;c&gt;" in bulk and b'xml:space="preserve"' in bulk and b"_x005F_x0041_" in bulk
    assert b"<v>1234567890123</v>" in bulk and b"_x0001_" in bulk and b"<f>SUM(D3:D40)</f>" in bulk and b'<row r="41"' not in bulk


def test_a_sheet_that_does_not_stream_takes_the_per_cell_api():
    assert sheet_xml(True, streaming=False) == sheet_xml(False, streaming=False)


def test_rows_go_in_increasing_order_once_each():
    wb = Workbook(io.BytesIO(), {"in_memory": True})
    wb.constant_memory = True
    ws = wb.add_worksheet()
    fmt = wb.add_format()
    rows = RowWriter(ws)
    rows.write_row(3, [(0, 1, fmt)])
    with pytest.raises(ValueError):
        rows.write_row(3, [(0, 2, fmt)])
    ws.write_number(5, 0, 1)  # a row started through the API cannot then be written whole
    with pytest.raises(ValueError):
        RowWriter(ws).write_row(5, [(1, 2, fmt)])
    wb.close()


def test_values_the_api_treats_specially_take_the_api():
    """NaN and infinity (the API refuses them or writes error formulas), Decimal, Fraction and
    numpy numbers, rich-string look-alikes, over-long text: never written by this module."""
    from decimal import Decimal
    from fractions import Fraction

    from toolkit.xlsx_rows import _plain_value

    assert all(_plain_value(v) for v in (None, "", "文字", 0, 3, 2.5, True, 10**15))
    special = (float("nan"), float("inf"), -float("inf"), Decimal("1.5"), Fraction(1, 3), "<r>x</r>", "汉" * 20000)
    assert not any(_plain_value(v) for v in special)
