"""The archive as pandas tables for analysts: long ("tidy") by default, one row per unit with ``wide``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .core import Archive
from .db import ArchiveError

HEAD = ("year", "unit_code", "unit_name", "unit_type", "parent", "status")
LONG_COLUMNS = (*HEAD, "sheet", "row_label", "col_label", "cell_id", "value")


def _rows(archive: Archive, year: int) -> list[dict[str, Any]]:
    from ..spec import formats

    states = {s.code: s for s in archive.status(year)}
    out = []
    for r in archive.reports(year):
        st = states.get(r.unit_code)
        fmt = formats().get(r.format_id)
        if st is None or fmt is None or not r.readable:
            continue
        head = (year, st.code, st.name, st.type, st.parent, st.status)
        for cid, cell in fmt.cells.items():
            value = None if cid in r.unknown else r.values.get(cid)
            out.append((*head, cell.sheet_name, cell.row_label, cell.col_label, cid, value))
    return out


def export_frame(archive: Archive, years: int | Iterable[int], wide: bool = False):
    """Every cell of every unit's current return of the years; ``wide``: one row per unit and year."""
    import pandas as pd

    ys = [years] if isinstance(years, int) else list(years)
    rows = [row for y in ys for row in _rows(archive, y)]
    frame = pd.DataFrame(rows, columns=list(LONG_COLUMNS))
    if not wide:
        return frame
    table = frame.pivot(index=list(HEAD), columns="cell_id", values="value")
    order = [c for c in dict.fromkeys(frame["cell_id"]) if c in table.columns]
    return table[order].reset_index().rename_axis(columns=None)


def write_frame(frame: Any, out: Path) -> Path:
    """CSV (UTF-8 with BOM, for Excel), .xlsx or .parquet, written atomically."""
    from ..fileio import atomic_write_bytes

    suffix = out.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ArchiveError("导出 .parquet 需要安装 pyarrow（pip install pyarrow）；也可以导出为 .csv 或 .xlsx。") from None
    import io

    buf = io.BytesIO()
    if suffix == ".csv":
        buf.write(frame.to_csv(index=False).encode("utf-8-sig"))
    elif suffix == ".xlsx":
        frame.to_excel(buf, index=False, engine="xlsxwriter")
    elif suffix == ".parquet":
        frame.to_parquet(buf, index=False)
    else:
        raise ArchiveError(f"导出文件名应以 .csv、.xlsx 或 .parquet 结尾：{out}")
    atomic_write_bytes(out, buf.getvalue())
    return out
