"""Where an official table really is in a returned sheet.

A clerk who unprotects a sheet can insert or delete rows and columns. The labels still say
which row is which, so the expected rows and columns of the format definition are aligned with
the sheet's actual rows and columns by their label texts (a sequence alignment, like a diff),
and every number is then read where its row and column actually went. Only a certain alignment
is used: when the labels do not pin a row or a column down, the table is not read at all —
an unread table is never turned into zeros.

Pure data: a grid of cell values in, a mapping out; no spreadsheet library here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .spec import Sheet, a1

MARGIN = 40  # inserted rows/columns looked for beyond the expected table


def cell_text(v: Any) -> str:
    """A cell as the text a label comparison needs ('' for blanks, numbers as written)."""
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    return isinstance(v, str) and v.strip().replace(".", "", 1).replace(",", "").lstrip("-").isdigit()


@dataclass
class Alignment:
    """Expected (spec) row/column → actual row/column; None where the row/column is gone."""

    rows: dict[int, int | None] = field(default_factory=dict)
    cols: dict[int, int | None] = field(default_factory=dict)
    certain: bool = True
    inserted_rows: list[int] = field(default_factory=list)  # actual rows not in the definition
    inserted_cols: list[int] = field(default_factory=list)
    stray: list[tuple[str, Any]] = field(default_factory=list)  # (A1, value) in inserted rows/columns

    @property
    def identity(self) -> bool:
        return all(k == v for k, v in self.rows.items()) and all(k == v for k, v in self.cols.items())

    def where(self, row: int, col: int) -> tuple[int, int] | None:
        r, c = self.rows.get(row, row), self.cols.get(col, col)
        return None if r is None or c is None else (r, c)


def _at(grid: list[list[Any]], row: int, col: int) -> Any:
    if 1 <= row <= len(grid) and 1 <= col <= len(grid[row - 1]):
        v = grid[row - 1][col - 1]
        return None if v == "" else v
    return None


def _text_cells(grid: list[list[Any]], row: int, cols: range) -> tuple[str, ...]:
    return tuple(t for c in cols if (t := cell_text(_at(grid, row, c))) and not _is_number(_at(grid, row, c)))


def _align(expected: list[tuple[str, ...]], actual: list[tuple[str, ...]]) -> dict[int, int | None]:
    """Index alignment of two signature sequences; equal-length replaced runs map in order
    (a label retyped in place is still the same row)."""
    out: dict[int, int | None] = dict.fromkeys(range(len(expected)))
    # rows without any label must not be matched with each other: they say nothing about position
    exp = [sig or ("\0expected", str(i)) for i, sig in enumerate(expected)]
    act = [sig or ("\0actual", str(j)) for j, sig in enumerate(actual)]
    sm = difflib.SequenceMatcher(None, exp, act, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            for k in range(i2 - i1):
                out[i1 + k] = j1 + k
    return out


def _fill_unlabelled(
    mapping: dict[int, int | None], signatures: list[tuple[str, ...]], has_numbers: Callable[[int], bool], limit: int
) -> bool:
    """Rows (or columns) without any label, such as 表四's data row, have no signature to align;
    they are placed only when the pinned neighbours leave no doubt. Returns False when uncertain."""
    keys = sorted(mapping)
    i = 0
    while i < len(keys):
        if signatures[keys[i]] or mapping[keys[i]] is not None:
            i += 1
            continue
        run_end = i
        while run_end + 1 < len(keys) and not signatures[keys[run_end + 1]] and mapping[keys[run_end + 1]] is None:
            run_end += 1
        run = keys[i : run_end + 1]
        prev = next((mapping[k] for k in reversed(keys[:i]) if mapping[k] is not None), -1)
        nxt = next((mapping[k] for k in keys[run_end + 1 :] if mapping[k] is not None), None)
        gap = list(range(prev + 1, nxt if nxt is not None else min(limit, prev + 1 + len(run) + MARGIN)))
        with_numbers = [j for j in gap if has_numbers(j)]
        if nxt is not None and len(gap) == len(run):
            chosen = gap
        elif len(with_numbers) == len(run):
            chosen = with_numbers
        else:
            return False
        for k, j in zip(run, chosen, strict=True):
            mapping[k] = j
        i = run_end + 1
    return True


def unlabelled_rows_in_place(sheet: Sheet, grid: list[list[Any]]) -> bool:
    """Labels all in place do not prove that a row without a label (表四's data row) is: a row
    inserted above it moves the numbers down without moving any label. True when such a row is
    either filled where expected or nothing with numbers lies below it."""
    for row, cols in sheet.unlabelled_rows:
        if any(_is_number(_at(grid, row, c)) for c in cols):
            continue
        below = range(row + 1, min(len(grid), row + MARGIN) + 1)
        if any(_is_number(_at(grid, r, c)) for r in below for c in cols):
            return False
    return True


def align(sheet: Sheet, grid: list[list[Any]]) -> Alignment:
    """Align the sheet's expected table (labels and numeric cells) with the actual grid."""
    first_row, last_row = sheet.first_row, sheet.last_row
    first_col, last_col = sheet.first_col, sheet.last_col
    exp_rows = list(range(first_row, last_row + 1))
    exp_cols = list(range(first_col, last_col + 1))
    act_rows = list(range(first_row, min(len(grid), last_row + MARGIN) + 1))
    width = max((len(r) for r in grid), default=0)
    act_cols = list(range(first_col, min(width, last_col + MARGIN) + 1))

    labels_on_row: dict[int, list[str]] = {}
    for lb in sorted(sheet.labels, key=lambda lb: (lb.row, lb.col)):
        labels_on_row.setdefault(lb.row, []).append(lb.text)
    exp_row_sigs = [tuple(labels_on_row.get(r, ())) for r in exp_rows]
    act_row_sigs = [_text_cells(grid, r, range(first_col, (act_cols[-1] if act_cols else last_col) + 1)) for r in act_rows]
    row_map = _align(exp_row_sigs, act_row_sigs)
    result = Alignment()

    number_cols = sorted({c.col for c in sheet.cells})
    number_rows = sorted({c.row for c in sheet.cells})

    def row_has_content(j: int) -> bool:
        return j < len(act_rows) and any(_is_number(_at(grid, act_rows[j], result.cols.get(c, c) or c)) for c in number_cols)

    certain = _fill_unlabelled(row_map, exp_row_sigs, row_has_content, len(act_rows))
    result.rows = {exp_rows[i]: (act_rows[j] if j is not None else None) for i, j in row_map.items()}

    labels_in_col: dict[int, list[str]] = {}
    for lb in sorted(sheet.labels, key=lambda lb: (lb.col, lb.row)):
        labels_in_col.setdefault(lb.col, []).append(lb.text)
    mapped_rows = sorted(r for r in result.rows.values() if r is not None)
    exp_col_sigs = [tuple(labels_in_col.get(c, ())) for c in exp_cols]
    act_col_sigs = [
        tuple(t for r in mapped_rows if (t := cell_text(_at(grid, r, c))) and not _is_number(_at(grid, r, c))) for c in act_cols
    ]
    col_map = _align(exp_col_sigs, act_col_sigs)

    def col_has_content(j: int) -> bool:
        return j < len(act_cols) and any(
            _is_number(_at(grid, r, act_cols[j])) for r in (result.rows.get(x) for x in number_rows) if r is not None
        )

    certain = _fill_unlabelled(col_map, exp_col_sigs, col_has_content, len(act_cols)) and certain
    result.cols = {exp_cols[i]: (act_cols[j] if j is not None else None) for i, j in col_map.items()}
    result.certain = certain and _labels_confirm(sheet, grid, result)
    _strays(sheet, grid, result, act_rows, act_cols)
    return result


def _labels_confirm(sheet: Sheet, grid: list[list[Any]], al: Alignment) -> bool:
    """A shifted alignment is trusted only when most labels are found exactly where it puts them."""
    if al.identity:
        return True
    hits = 0
    for lb in sheet.labels:
        pos = al.where(lb.row, lb.col)
        hits += pos is not None and cell_text(_at(grid, *pos)) == lb.text
    return hits >= 0.8 * len(sheet.labels)


def _strays(sheet: Sheet, grid: list[list[Any]], al: Alignment, act_rows: list[int], act_cols: list[int]) -> None:
    """Rows and columns a clerk inserted into the table, and any figures typed into them."""
    used_rows = {r for r in al.rows.values() if r is not None}
    used_cols = {c for c in al.cols.values() if c is not None}
    last_used_row = max(used_rows, default=sheet.last_row)
    last_used_col = max(used_cols, default=sheet.last_col)
    al.inserted_rows = [r for r in act_rows if r not in used_rows and r < last_used_row]
    al.inserted_cols = [c for c in act_cols if c not in used_cols and c < last_used_col]
    for r in al.inserted_rows:
        for c in sorted(used_cols):
            v = _at(grid, r, c)
            if _is_number(v) and v not in (0, "0"):
                al.stray.append((a1(r, c), v))
    for c in al.inserted_cols:
        for r in sorted(used_rows):
            v = _at(grid, r, c)
            if _is_number(v) and v not in (0, "0"):
                al.stray.append((a1(r, c), v))
