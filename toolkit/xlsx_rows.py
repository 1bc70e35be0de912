"""Whole rows into a streaming XlsxWriter sheet, as the XML XlsxWriter itself writes for them.

Why: 明细 and 报送情况 of a province's summary hold one row per unit — 10,000 rows, 376,000 cells.
Through XlsxWriter's per-cell API every cell costs about 3.5 µs (argument conversion, a cell
tuple, attribute escaping, one method call per element): 1.3 s of the 3 s a county has for
consolidating from the archive. A streaming (``constant_memory``) sheet keeps each finished row
as XML in a temporary file; ``RowWriter`` appends whole rows there in one string, built with
XlsxWriter's own escaping and cell references. ``tests/test_xlsx_rows.py`` proves the sheet's XML
byte-identical to the per-cell API's. When the sheet does not stream, or XlsxWriter's internals are
not what this module expects (a new major version), every row goes through the per-cell API.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from itertools import repeat
from operator import lt
from typing import Any

from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

try:  # XlsxWriter's own helpers for the cell XML (private: absent or renamed → the per-cell API)
    from xlsxwriter.utility import xl_rowcol_to_cell_fast
    from xlsxwriter.xmlwriter import XMLwriter

    try:
        from xlsxwriter.utility import _preserve_whitespace
    except ImportError:  # older XlsxWriter (3.2.0) names it without the underscore
        from xlsxwriter.utility import preserve_whitespace as _preserve_whitespace  # type: ignore[attr-defined,no-redef]
    _HELPERS = True
except ImportError:  # pragma: no cover - depends on the installed XlsxWriter
    _HELPERS = False

# A cell: column, value (str, int, float; None or "" = a blank carrying the format), format.
Cell = tuple[int, Any, Format]

_INTERNALS = (
    "_write_single_row",
    "_write_row",
    "_check_dimensions",
    "_escape_data",
    "row_data_fh",
    "previous_row",
    "table",
    "row_info",
)
_SIMPLE = frozenset({int, str, type(None)})
_EXACT = 2**53
_MAX_CHARS = 32767 // 2  # longer strings take the per-cell API (it truncates them by UTF-16 length)
_MAX_COL = 16383
_MAX_TEXTS = 100_000  # texts remembered per sheet (then forgotten and remembered anew)
# What XlsxWriter's _escape_control_characters changes: '_xHHHH_' look-alikes, control characters,
# the non-characters U+FFFE and U+FFFF. A string without any of them is left as it is.
_NEEDS_ESCAPE = re.compile("_x[0-9a-fA-F]{4}_|[\x00-\x08\x0b-\x1f\ufffe\uffff]")


def _plain_value(value: Any) -> bool:
    """A value whose cell XML this module writes exactly as the API would: text (not a rich
    string, within the length limit), a finite int or float, a bool, or a blank."""
    if value is None or isinstance(value, bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return len(value) <= _MAX_CHARS and not (value.startswith("<r>") and value.endswith("</r>"))
    return False


def _plain_texts(texts: list[str]) -> bool:
    """Usually, what ``all(map(_plain_value, texts))`` says, in C: none too long, none that could be a
    rich string (False may be wrong: then each is looked at)."""
    return max(map(len, texts)) <= _MAX_CHARS and not any(map(str.startswith, texts, repeat("<r>")))


def _streams(ws: Worksheet) -> bool:
    return _HELPERS and bool(getattr(ws, "constant_memory", False)) and all(hasattr(ws, name) for name in _INTERNALS)


class RowWriter:
    """Rows of one streaming sheet, written in increasing row order, each row whole and written once.

    Rows written through the per-cell API before a bulk row are flushed first; a row must not be
    touched through the API after it was written here (the streaming sheet has already left it).
    """

    def __init__(self, ws: Worksheet, *, bulk: bool = True) -> None:
        self.ws = ws
        self.bulk = bulk and _streams(ws)
        self.last = -1
        self.styles: dict[int, str] = {}  # id(format) → ' s="index"'
        self.heads: dict[int, str] = {}  # column → '<c r="AB'
        self.ends: dict[int, str] = {}  # id(format) → '" s="index"><v>' (what follows a number's row)
        self.texts: dict[str, str] = {}  # text → its cell's XML after the style (``_text``)

    def write_row(self, row: int, cells: Iterable[Cell]) -> None:
        cells = [c for c in cells if c[2] is not None or (c[1] is not None and c[1] != "")]  # the API skips these too
        if not cells:
            return
        if row <= self.last:
            raise ValueError(f"row {row} comes after row {self.last}: rows go in increasing order, once each")
        self.last = row
        if not self._bulk_row(row, cells):
            self._per_cell(row, cells)
            return
        ws = self.ws
        if row < ws.previous_row or (row == ws.previous_row and ws.table):
            raise ValueError(f"row {row} was already started through the per-cell API")
        ws._write_single_row(row)  # the API's pending row goes out first
        ws._check_dimensions(row, cells[0][0])  # columns in increasing order (_bulk_row): first and last
        ws._check_dimensions(row, cells[-1][0])
        ws._write_row(row, None)
        number = str(row + 1)
        heads, ends, cell = self.heads, self.ends, self._cell
        xml = "".join(
            [  # a whole number (most cells of a summary) written here, without a call; the rest by _cell
                f"{heads.get(col) or self._head(col)}{number}{ends.get(id(fmt)) or self._end(fmt)}{value}</v></c>"
                if value.__class__ is int and -_EXACT < value < _EXACT
                else cell(number, col, value, fmt)
                for col, value, fmt in cells
            ]
        )
        ws.row_data_fh.write(xml + "</row>")

    def _bulk_row(self, row: int, cells: list[Cell]) -> bool:
        """Whether this row may be written whole: everything else goes through the per-cell API
        (a row with a height, format or comment of its own; a cell without a format, which the
        API would give the row's or column's; columns out of order, repeated or out of range;
        values the API treats specially)."""
        ws = self.ws
        if not self.bulk or row in ws.row_info or row in getattr(ws, "comments", {}):
            return False
        cols, values, fmts = zip(*cells, strict=True)
        if cols[0] < 0 or cols[-1] > _MAX_COL or not all(map(lt, cols, cols[1:])):  # increasing: sorted, none twice
            return False
        if None in fmts:
            return False
        kinds = set(map(type, values))
        if kinds <= _SIMPLE:  # whole numbers, blanks and text, most of a summary: only the text to look at
            texts = [v for v in values if v.__class__ is str]
            return not texts or _plain_texts(texts) or all(map(_plain_value, texts))
        return all(map(_plain_value, values))

    def _text(self, value: str) -> str:
        """What follows a text cell's style, as XlsxWriter writes it; remembered per text (a summary
        repeats its statuses, types and dates on every row)."""
        raw = value
        if _NEEDS_ESCAPE.search(value):
            value = XMLwriter._escape_control_characters(value)
        space = ' xml:space="preserve"' if _preserve_whitespace(value) else ""
        text = f' t="inlineStr"><is><t{space}>{self.ws._escape_data(value)}</t></is></c>'
        if len(self.texts) >= _MAX_TEXTS:
            self.texts.clear()
        self.texts[raw] = text
        return text

    def _head(self, col: int) -> str:
        return self.heads.setdefault(col, f'<c r="{xl_rowcol_to_cell_fast(0, col)[:-1]}')

    def _style(self, fmt: Format) -> str:
        # formats live as long as their workbook (add_format keeps them): their ids stay theirs
        return self.styles.get(id(fmt)) or self.styles.setdefault(id(fmt), f' s="{fmt._get_xf_index()}"')

    def _end(self, fmt: Format) -> str:
        return self.ends.setdefault(id(fmt), f'"{self._style(fmt)}><v>')

    def _cell(self, number: str, col: int, value: Any, fmt: Format) -> str:
        """A cell other than a whole number (those ``write_row`` writes itself)."""
        head, style = self.heads.get(col) or self._head(col), self._style(fmt)
        if value is None or value == "":
            return f'{head}{number}"{style}/>'
        if isinstance(value, str):
            text = self.texts.get(value)
            if text is None:
                text = self._text(value)
            return f'{head}{number}"{style}{text}'
        return f'{head}{number}"{style}><v>{value:.16G}</v></c>'

    def _per_cell(self, row: int, cells: list[Cell]) -> None:
        ws = self.ws
        for col, value, fmt in cells:
            if value is None or value == "":
                ws.write_blank(row, col, None, fmt)
            elif isinstance(value, str):
                ws.write_string(row, col, value, fmt)
            elif isinstance(value, float) and not math.isfinite(value):  # write_number refuses INF/NaN
                ws.write_string(row, col, str(value), fmt)
            else:
                ws.write_number(row, col, value, fmt)
