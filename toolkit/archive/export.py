"""The archive as tables for the county and its analysts: long ("tidy", one row per unit and cell)
by default, ``wide`` one row per unit in the summary's 明细 layout. Headings are Chinese (a clerk
opens the file in Excel); counts are integers, amounts keep their decimals."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .db import ArchiveError

# The export's own columns; the unit columns of 明细 (单位代码 …) come from templates/workbook.toml.
YEAR, PARENT, NOTE = "年度", "上级代码", "情况说明"
SHEET, ROW, COL, CELL_ID, VALUE = "表", "行", "列", "单元格编号", "数值"
Years = list[tuple[int, list[Any], list[Any]]]  # (year, 报送情况, approved Reports) of each year exported


def _unit_columns() -> list[tuple[str, str]]:
    """(key, heading) of the columns before the figures: 年度, then 明细's fixed columns, then 上级代码."""
    from ..spec import conventions

    return [("year", YEAR), *conventions().detail_fixed, ("parent", PARENT)]


def head_columns() -> list[str]:
    return [label for _, label in _unit_columns()]


def long_columns() -> list[str]:
    return [*head_columns(), SHEET, ROW, COL, CELL_ID, VALUE]


def _number(value: Any, integer: bool) -> Any:
    """300 for a count (never 300.0); an amount as it is (3.5 万元)."""
    if integer and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _units(year: int, states_of: list[Any], reports: list[Any]):
    """(unit columns, note, report, format) of every unit's current return of the year."""
    from ..spec import formats

    states = {s.code: s for s in states_of}
    for r in reports:
        st = states.get(r.unit_code)
        fmt = formats().get(r.format_id)
        if st is None or fmt is None or not r.readable:
            continue
        known = {"year": year, "unit_code": st.code, "unit_name": st.name, "unit_type": st.type}
        known |= {"parent": st.parent, "status": st.status}
        head = [known.get(key, "") for key, _ in _unit_columns()]
        yield head, str(r.cover.get("note") or ""), r, fmt


def _value(r: Any, cid: str, fmt: Any) -> Any:
    cell = fmt.cells[cid]
    return None if cid in r.unknown else _number(r.values.get(cid), fmt.kinds[cell.kind].integer)


def _long(years: Years):
    import pandas as pd

    rows = [
        (*head, cell.sheet_name, cell.row_label, cell.col_label, cid, _value(r, cid, fmt))
        for y in years
        for head, _, r, fmt in _units(*y)
        for cid, cell in fmt.cells.items()
    ]
    return pd.DataFrame(rows, columns=long_columns(), dtype=object).astype({YEAR: "int64"})


def _wide(years: Years):
    """One row per unit and year: the unit columns, 情况说明, then one column per cell id in the
    order of the format (the 明细 sheet's columns; today's format when nothing is there yet);
    integer cells as nullable integers."""
    import pandas as pd

    from ..spec import current_format

    fixed = [*head_columns(), NOTE]
    rows, cells = [], {}
    for y in years:
        for head, note, r, fmt in _units(*y):
            rows.append(dict(zip(fixed, [*head, note], strict=True)) | {cid: _value(r, cid, fmt) for cid in fmt.cells})
            cells |= {cid: fmt.kinds[cell.kind].integer for cid, cell in fmt.cells.items() if cid not in cells}
    if not cells:
        fmt = current_format()
        cells = {cid: fmt.kinds[cell.kind].integer for cid, cell in fmt.cells.items()}
    frame = pd.DataFrame(rows, columns=[*fixed, *cells])
    return frame.astype({YEAR: "int64"} | {cid: "Int64" if integer else "float64" for cid, integer in cells.items()})


def export_frame(years: Years, wide: bool = False):
    """Every cell of every unit's current return of the years (columns 年度, 单位代码, …, 单元格编号,
    数值); ``wide``: one row per unit and year, one column per cell id (``frame["t3.r1.tot"]``).
    ``years``: (year, its 报送情况, its approved Reports) each, as ``Archive.export_frame`` reads them."""
    return _wide(years) if wide else _long(years)


def headings(columns: Iterable[str]) -> list[str]:
    """The 明细 heading row above a wide frame's columns: a cell id becomes its table, row and column
    labels (as in the summary's 明细 sheet); any other column keeps its own (Chinese) name."""
    from ..spec import current_format, formats
    from ..summary_writer import detail_heading

    known = {cid: cell for f in formats().values() for cid, cell in f.cells.items()}
    known |= current_format().cells  # an id in several formats: today's labels
    return [detail_heading(known[c]) if c in known else str(c) for c in columns]


def _wide_file(frame: Any) -> bool:
    from ..spec import formats

    return any(c in f.cells for f in formats().values() for c in frame.columns)


def _xlsx(frame: Any, top: list[str] | None) -> bytes:
    """The sheet 明细 (the summary's name for it); a wide frame gets the heading row above the ids."""
    import io

    import pandas as pd

    from ..spec import conventions

    name = conventions().detail_sheet
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="xlsxwriter") as writer:
        frame.to_excel(writer, sheet_name=name, index=False, startrow=1 if top else 0)
        ws = writer.sheets[name]
        if top:
            ws.write_row(0, 0, top)
        rows = 2 if top else 1
        ws.freeze_panes(rows, 3 if top else 0)
        ws.autofilter(rows - 1, 0, rows - 1 + len(frame), max(len(frame.columns) - 1, 0))
    return buf.getvalue()


def _csv(frame: Any, top: list[str] | None) -> bytes:
    import csv
    import io

    text = io.StringIO()
    if top:
        csv.writer(text, lineterminator="\n").writerow(top)
    frame.to_csv(text, index=False, lineterminator="\n")
    return text.getvalue().encode("utf-8-sig")


def write_frame(frame: Any, out: Path) -> Path:
    """CSV (UTF-8 with BOM, for Excel), .xlsx or .parquet, written atomically. A wide frame, in CSV
    and XLSX, has two header rows like 明细: the labels, then the column names (cell ids), so that
    ``pd.read_csv(path, skiprows=[0])`` gives back the frame."""
    from ..fileio import atomic_write_bytes

    suffix = out.suffix.lower()
    if suffix not in (".csv", ".xlsx", ".parquet"):
        raise ArchiveError(f"导出文件名应以 .csv、.xlsx 或 .parquet 结尾：{out}")
    top = headings(frame.columns) if _wide_file(frame) else None
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ArchiveError("导出 .parquet 需要安装 pyarrow（pip install pyarrow）；也可以导出为 .csv 或 .xlsx。") from None
        import io

        buf = io.BytesIO()
        typed = frame.astype({VALUE: "float64"}) if VALUE in frame.columns else frame  # one type per parquet column
        typed.to_parquet(buf, index=False)
        data = buf.getvalue()
    else:
        data = _csv(frame, top) if suffix == ".csv" else _xlsx(frame, top)
    atomic_write_bytes(out, data)
    return out
