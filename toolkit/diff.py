"""What changed between two returns of a unit, cell by cell: the reviewer compares a pending version
with the approved one (or with last year's) before deciding, on the page and on the command line.

Pure data: two ``Report`` in, a list of ``CellChange`` out; every label and cell address comes from
the format definition, the same ones a finding names its cell with.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .findings import _visible, fmt_num
from .report import Report
from .spec import Cell, CoverField, Format, a1, conventions, formats

UNREAD = "无法读取"  # a cell whose value is unknown (a table that could not be read), unlike a blank one
BLANK = "空白"
TEXT_LIMIT = 60  # characters of a cover text (情况说明) shown in a one-line change


@dataclass(frozen=True)
class CellChange:
    """One cell (or cover field) whose value differs. ``old``/``new``: a number, None for a blank
    cell, the text of a cover field, or ``UNREAD``. ``cell_id`` is the format's id of the cell, or
    ``cover.<field id>`` for a cover field."""

    cell_id: str
    sheet: str
    ref: str  # A1 address in the template
    row_label: str
    col_label: str
    old: Any
    new: Any

    @property
    def where(self) -> str:
        """``表三 一、本年新收政府信息公开申请数量 × 申请人情况 自然人（D7）``, as findings locate a cell."""
        labels = " × ".join(p for p in (self.row_label, self.col_label) if p)
        return f"{self.sheet} {labels}（{self.ref}）" if labels else f"{self.sheet} {self.ref}"

    @property
    def is_cover(self) -> bool:
        return self.cell_id.startswith("cover.")


def diff_reports(old: Report, new: Report, *, cover: bool = True) -> list[CellChange]:
    """Every cell of the format (inputs and computed totals) whose value differs between ``old`` and
    ``new``, then — first in the list, as the cover is the first sheet — the clerk's cover fields
    (填报人, 联系电话, 填报日期, 情况说明 …) unless ``cover`` is False (last year's date always differs).
    Ordered by sheet, row, column. Numbers compare as numbers (1 == 1.0); a blank cell differs from 0.
    Cells are named as in ``new``'s format; a return of an older format is compared on the cell ids
    both formats share (the ids keep their meaning across formats). A return that could not be read
    has no figures: its cells are left out, its cover still compared."""
    fmt = formats().get(new.format_id) or formats().get(old.format_id)
    if fmt is None:
        return []
    out = list(_cover_changes(fmt, old, new)) if cover else []
    old_ids, new_ids = _figures(old), _figures(new)
    for c in _ordered(fmt):
        if c.id in old_ids and c.id in new_ids:
            a, b = _value(old, c.id), _value(new, c.id)
            if not same(a, b):
                out.append(CellChange(c.id, c.sheet_name, c.a1, c.row_label, c.col_label, a, b))
    return out


def format_changes(changes: list[CellChange]) -> list[str]:
    """One Chinese line per change: ``表三 一、本年新收… × 申请人情况 自然人（D7）：3 → 5``."""
    return [f"{c.where}：{shown(c.old)} → {shown(c.new)}" for c in changes]


def shown(value: Any) -> str:
    """A value as the reviewer reads it: 5 not 5.0, a blank cell as 空白, a long text cut short."""
    if value is None or value == "":
        return BLANK
    if isinstance(value, str):
        text = _visible(" ".join(value.split()))
        return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"
    return fmt_num(value)


def _figures(report: Report) -> frozenset[str] | dict[str, Cell]:
    """The cell ids a report has figures for: those of its format, none when it could not be read."""
    fmt = formats().get(report.format_id)
    return fmt.cells if fmt is not None and report.readable and report.values else frozenset()


def _ordered(fmt: Format) -> Iterator[Cell]:
    for sheet in fmt.sheets:
        yield from sorted(sheet.cells, key=lambda c: (c.row, c.col))


def _value(report: Report, cid: str) -> Any:
    return UNREAD if cid in report.unknown else report.values.get(cid)


def same(a: Any, b: Any) -> bool:
    """Equal as a reviewer means it: 1 == 1.0, 3.5 == 3.5000000001 (a float read back), blank ≠ 0."""
    if a is None or b is None:
        return a is b
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _cover_fields(fmt: Format) -> list[CoverField]:
    """The fields the clerk fills in (the unit's name, code and year are the template's)."""
    return [f for f in fmt.cover.fields if f.editable and not f.source]


def _cover_changes(fmt: Format, old: Report, new: Report) -> Iterator[CellChange]:
    col = conventions().cover_value_col
    for f in _cover_fields(fmt):
        a, b = (old.cover.get(f.id) or "").strip(), (new.cover.get(f.id) or "").strip()
        if a != b:
            # the field's name without its hint: "情况说明（数据为0…时请说明）" → "情况说明"
            name = f.label.split("（", 1)[0] or f.label
            yield CellChange(f"cover.{f.id}", fmt.cover.sheet_name, a1(f.row, col), name, "", a or None, b or None)
