"""Write a return workbook from the format definition: the locked template a clerk
fills, the annotated copy sent back (退回), and the official tables of a summary.

Everything about labels and positions comes from the ``Format``; this module only
decides how it looks. XlsxWriter cannot lock the workbook structure, so the
finished zip is patched (``lock_structure``) before it is written atomically.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from . import __version__
from .fileio import atomic_write_bytes, safe_filename
from .findings import Finding, fmt_num
from .pool import Progress
from .report import Number, Report, blank_values, derive_totals
from .roster import Unit
from .rules import evaluate
from .spec import Format, Sheet, a1, conventions

FONT = "宋体"
GREY = "#E7E6E6"
GREEN = "#E2EFDA"
RED = "#FF9999"
INPUT = "#FFFFFF"


@dataclass
class ReturnContent:
    """What goes into one return workbook besides the format itself."""

    unit: Unit
    year: int
    values: dict[str, Number | None] | None = None  # inputs; totals are derived
    raw: dict[str, Any] = field(default_factory=dict)  # clerk's text to show instead of a number
    cover: dict[str, Any] = field(default_factory=dict)
    level: str = "填报单位"
    locked_inputs: bool = False  # summaries: nothing to fill in
    marks: dict[tuple[str, str], str] = field(default_factory=dict)  # (sheet, A1) → comment
    props: dict[str, str] = field(default_factory=dict)  # extra custom properties (e.g. a summary's scope)
    notes: dict[tuple[str, str], str] = field(default_factory=dict)  # (sheet, A1) → a plain comment (pre-filled)


def file_name(unit: Unit, year: int, suffix: str = "政府信息公开年报") -> str:
    """``<code>_<name>_<year>年政府信息公开年报.xlsx``, safe on Windows."""
    return f"{safe_filename(unit.code, 32)}_{safe_filename(unit.name, 60)}_{year}年{suffix}.xlsx"


def _est_lines(text: str, width_chars: float) -> int:
    """How many lines a wrapped label needs; CJK characters are about two width units."""
    units = sum(2.1 if ord(ch) > 0x2E80 else 1.1 for ch in text)
    return max(1, math.ceil(units / max(width_chars - 1, 1)))


class Styles:
    """All cell formats of one workbook (XlsxWriter formats belong to a workbook)."""

    def __init__(self, wb: Workbook, fmt: Format):
        base = {"font_name": FONT, "font_size": 10, "valign": "vcenter", "text_wrap": True}
        box = {**base, "border": 1}
        self.title = wb.add_format({**base, "bold": True, "font_size": 15, "align": "center"})
        self.period = wb.add_format({**base, "align": "center", "font_size": 10})
        self.unitline = wb.add_format({**base, "align": "left", "font_size": 10})
        self.label = wb.add_format({**box, "align": "center", "bg_color": GREY})
        self.label_left = wb.add_format({**box, "align": "left", "bg_color": GREY})
        self.label_bad = wb.add_format({**box, "align": "center", "bg_color": RED})
        self.text_in = wb.add_format({**box, "align": "left", "locked": False, "bg_color": INPUT})
        self.text_in_bad = wb.add_format({**box, "align": "left", "locked": False, "bg_color": RED})
        self.text_fixed = wb.add_format({**box, "align": "left", "bg_color": GREY, "bold": True})
        self.date_in = wb.add_format({**box, "align": "left", "locked": False, "num_format": "yyyy-mm-dd"})
        self.note = wb.add_format({**base, "align": "left", "font_size": 10})
        self.note_bold = wb.add_format({**base, "align": "left", "bold": True, "font_size": 11})
        self.check_label = wb.add_format({**box, "align": "left", "bg_color": "#FFF2CC", "font_size": 9})
        self.check_val = wb.add_format({**box, "align": "center", "bg_color": "#FFF2CC", "font_size": 9})
        self.ok = wb.add_format({"bg_color": "#C6EFCE", "font_color": "#006100"})
        self.bad = wb.add_format({"bg_color": "#FFC7CE", "font_color": "#9C0006", "bold": True})
        self.inp: dict[tuple[str, bool, bool], Any] = {}
        for kid, kind in fmt.kinds.items():
            for locked in (False, True):
                for bad in (False, True):
                    self.inp[(kid, locked, bad)] = wb.add_format(
                        {
                            **box,
                            "align": "center",
                            "num_format": kind.num_format,
                            "locked": locked,
                            "bg_color": RED if bad else (GREY if locked else INPUT),
                        }
                    )
            for bad in (False, True):
                self.inp[(kid, "total", bad)] = wb.add_format(
                    {  # type: ignore[index]
                        **box,
                        "align": "center",
                        "num_format": kind.num_format,
                        "bold": True,
                        "bg_color": RED if bad else GREEN,
                    }
                )


def _footer(unit: Unit) -> str:
    name = unit.name[:60].replace("&", "&&").replace("\n", " ")
    return f'&L&"{FONT}"&9{name}&R&"{FONT}"&9第 &P 页，共 &N 页'


def _page_setup(
    ws: Worksheet,
    unit: Unit,
    landscape: bool,
    last_row: int,
    last_col: int,
    repeat: tuple[int, int] | None,
    one_page: bool = False,
) -> None:
    ws.set_paper(9)  # A4
    if landscape:
        ws.set_landscape()
    else:
        ws.set_portrait()
    ws.fit_to_pages(1, 1 if one_page else 0)
    ws.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.7)
    ws.center_horizontally()
    ws.set_footer(_footer(unit))
    ws.print_area(0, 0, last_row - 1, last_col - 1)
    if repeat:
        ws.repeat_rows(*repeat)
    ws.hide_gridlines(2)


def _mark(ws: Worksheet, sheet: str, addr: str, content: ReturnContent) -> bool:
    text = content.marks.get((sheet, addr))
    note = content.notes.get((sheet, addr))
    if text or note:
        author = "nianbao 审核" if text else "nianbao"
        ws.write_comment(addr, text or note, {"author": author, "x_scale": 3, "y_scale": 2.5, "font_name": FONT, "font_size": 10})
    return bool(text)


def _cover_field(ws: Worksheet, sheet_name: str, st: Styles, f: Any, content: ReturnContent) -> None:
    """One line of the cover: its label, and the unit's identity (locked) or the clerk's field."""
    conv = conventions()
    r, label_c, value_c = f.row - 1, conv.cover_label_col - 1, conv.cover_value_col - 1
    bad = _mark(ws, sheet_name, a1(f.row, conv.cover_value_col), content)
    ws.write_string(r, label_c, f.label, st.label_left)
    ws.set_row(r, 60 if f.kind == "longtext" else 20)
    if f.source:
        val = {"unit_name": content.unit.name, "unit_code": content.unit.code, "year": content.year}[f.source]
        if isinstance(val, int):
            ws.write_number(r, value_c, val, st.text_fixed)
        else:
            ws.write_string(r, value_c, str(val), st.text_fixed)
        return
    val = content.cover.get(f.id)
    style = (
        st.text_fixed if content.locked_inputs else (st.text_in_bad if bad else (st.date_in if f.kind == "date" else st.text_in))
    )
    if isinstance(val, (dt.date, dt.datetime)):
        ws.write_datetime(r, value_c, dt.datetime.combine(val, dt.time()) if type(val) is dt.date else val, style)
    elif val not in (None, ""):
        ws.write_string(r, value_c, str(val), style)
    else:
        ws.write_blank(r, value_c, None, style)
    if content.locked_inputs:
        return
    if f.kind == "date":
        ws.data_validation(
            r,
            value_c,
            r,
            value_c,
            {
                "validate": "date",
                "criteria": ">=",
                "value": dt.date(2000, 1, 1),
                "input_title": "填报日期",
                "input_message": f.input_message or "请输入日期",
                "error_title": "日期有误",
                "error_message": "请输入日期，例如 2026-01-15。",
                "error_type": "warning",
            },
        )
    elif f.input_message:
        ws.data_validation(r, value_c, r, value_c, {"validate": "any", "input_title": f.label, "input_message": f.input_message})


def write_cover(wb: Workbook, fmt: Format, st: Styles, content: ReturnContent) -> Worksheet:
    cov = fmt.cover
    ws = wb.add_worksheet(cov.sheet_name)
    for i, w in enumerate(cov.col_widths):
        ws.set_column(i, i, w)
    ncols = max(len(cov.col_widths), 2)
    fill = {"year": str(content.year), "unit_name": content.unit.name, "unit_code": content.unit.code}
    ws.merge_range(0, 0, 0, ncols - 1, cov.title.format(**fill), st.title)
    ws.set_row(0, 30)
    if cov.subtitle:
        ws.merge_range(1, 0, 1, ncols - 1, cov.subtitle.format(**fill), st.period)
    last = 2
    for f in cov.fields:
        _cover_field(ws, cov.sheet_name, st, f, content)
        last = max(last, f.row - 1)
    r = last + 2
    ws.merge_range(r, 0, r, ncols - 1, cov.instructions_title, st.note_bold)
    for line in cov.instructions:
        r += 1
        ws.merge_range(r, 0, r, ncols - 1, line.format(**fill), st.note)
        ws.set_row(r, 15 * _est_lines(line, sum(cov.col_widths)))
    r += 2
    ws.merge_range(
        r,
        0,
        r,
        ncols - 1,
        f"格式：{fmt.title}（{fmt.id} {fmt.version}），模板版本 {fmt.template_version}，由 nianbao {__version__} 生成。",
        st.note,
    )
    ws.protect(fmt.protection_password, {"select_locked_cells": True, "select_unlocked_cells": True})
    _page_setup(ws, content.unit, False, r + 1, ncols, None, one_page=True)
    ws.activate()
    return ws


def _selfcheck(ws: Worksheet, fmt: Format, sheet: Sheet, st: Styles, report: Report) -> None:
    """Rows below 表三 that the spreadsheet computes itself: 一+二 vs （七）+四 per column."""
    sc = sheet.selfcheck
    assert sc is not None
    rule = next(r for r in fmt.rules if r.code == sc.rule)
    r0 = sheet.last_row + sc.gap  # 0-based row index of the first check row
    label_cols = min(c.col for c in sheet.cells) - 1
    rows = (sc.left_label, sc.right_label, sc.result_label)
    for i, text in enumerate(rows):
        if label_cols > 1:
            ws.merge_range(r0 + i, sheet.first_col - 1, r0 + i, label_cols - 1, text, st.check_label)
        else:
            ws.write_string(r0 + i, 0, text, st.check_label)
    for inst in rule.instances():
        left_e, right_e = rule.left.format(**inst), rule.right.format(**inst)
        col = fmt.cells[rule.at.format(**inst)].col - 1
        lv, rv = evaluate(left_e, fmt, report).value, evaluate(right_e, fmt, report).value
        ws.write_formula(r0, col, "=" + _excel(left_e, fmt), st.check_val, lv)
        ws.write_formula(r0 + 1, col, "=" + _excel(right_e, fmt), st.check_val, rv)
        la, ra = a1(r0 + 1, col + 1), a1(r0 + 2, col + 1)
        ok = abs(lv - rv) < 1e-9
        cached = sc.ok_text if ok else f"{sc.bad_text}{fmt_num(abs(lv - rv))}"
        ws.write_formula(
            r0 + 2,
            col,
            f'=IF(ISERROR({la}-{ra}),"{sc.text_error}",IF({la}={ra},"{sc.ok_text}","{sc.bad_text}"&ABS({la}-{ra})))',
            st.check_val,
            cached,
        )
        rng = a1(r0 + 3, col + 1)
        ws.conditional_format(rng, {"type": "formula", "criteria": f'={rng}<>"{sc.ok_text}"', "format": st.bad})
        ws.conditional_format(rng, {"type": "formula", "criteria": f'={rng}="{sc.ok_text}"', "format": st.ok})
    hint_row = r0 + 3
    ws.merge_range(hint_row, sheet.first_col - 1, hint_row, sheet.last_col - 1, sc.hint, st.note)
    ws.set_row(hint_row, 28)


def _excel(expr: str, fmt: Format) -> str:
    """A rule expression (cell ids, +, -) as an Excel formula."""

    def repl(m: re.Match[str]) -> str:
        c = fmt.cells[m.group(0)]
        return c.a1

    return re.sub(r"[a-z][a-z0-9_]*\.[a-z0-9_]+\.[a-z0-9_]+", repl, expr).replace(" ", "")


def _sheet_head(ws: Worksheet, sheet: Sheet, st: Styles, content: ReturnContent) -> None:
    """Title, statistical period and the unit's line above the table, each tall enough for its text."""
    fill = {"year": str(content.year)}
    for i, w in enumerate(sheet.col_widths):
        ws.set_column(sheet.first_col - 1 + i, sheet.first_col - 1 + i, w)
    c0, c1 = sheet.first_col - 1, sheet.last_col - 1
    ws.merge_range(0, c0, 0, c1, sheet.title.format(**fill), st.title)
    ws.set_row(0, 28)
    width = sum(sheet.col_widths) or 9 * (c1 - c0 + 1)
    lines = [(1, sheet.period.format(**fill), st.period)] if sheet.period else []
    lines.append((2, f"填报单位：{content.unit.name}（{content.unit.code}）", st.unitline))
    for row, text, style in lines:
        ws.merge_range(row, c0, row, c1, text, style)
        ws.set_row(row, 15 * _est_lines(text, width) + 3)


def _labels(ws: Worksheet, sheet: Sheet, st: Styles, content: ReturnContent) -> None:
    """Every label and merge of the official table; rows as tall as their longest wrapped label."""
    widths = {sheet.first_col + i: w for i, w in enumerate(sheet.col_widths)}
    row_lines: dict[int, int] = {}
    for lb in sheet.labels:
        style = st.label_bad if _mark(ws, sheet.name, lb.a1, content) else st.label
        r, c = lb.row - 1, lb.col - 1
        if lb.rowspan > 1 or lb.colspan > 1:
            ws.merge_range(r, c, r + lb.rowspan - 1, c + lb.colspan - 1, lb.text, style)
        else:
            ws.write_string(r, c, lb.text, style)
        width = sum(widths.get(lb.col + k, 9) for k in range(lb.colspan))
        row_lines[lb.row] = max(row_lines.get(lb.row, 1), math.ceil(_est_lines(lb.text, width) / lb.rowspan))
    for row, lines in row_lines.items():
        ws.set_row(row - 1, max(20, 14 * lines + 4))


def _write_value(ws: Worksheet, r: int, c: int, raw: Any, v: Number | None, style: Any) -> None:
    """What the clerk typed when it was not a clean number (a negative number stays a number), else the value."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        ws.write_number(r, c, raw, style)
    elif raw is not None:
        ws.write_string(r, c, str(raw), style)
    elif v is None:
        ws.write_blank(r, c, None, style)
    else:
        ws.write_number(r, c, v, style)


def _total_formula(fmt: Format, cell: Any) -> str:
    parts = [fmt.cells[p] for p in cell.parts]
    if len(parts) > 2 and (all(p.row == cell.row for p in parts) or all(p.col == cell.col for p in parts)):
        return f"=SUM({parts[0].a1}:{parts[-1].a1})"
    return "=" + "+".join(p.a1 for p in parts)


def _cell(ws: Worksheet, fmt: Format, sheet: Sheet, st: Styles, content: ReturnContent, cell: Any, v: Number | None) -> None:
    """One numeric cell: a total as a formula with its cached value (or what the clerk typed over it)."""
    r, c = cell.row - 1, cell.col - 1
    bad = _mark(ws, sheet.name, cell.a1, content)
    overwritten = cell.is_total and cell.id in content.raw
    if cell.is_total:
        style = st.inp[(cell.kind, "total", bad or overwritten)]  # type: ignore[index]
    else:
        style = st.inp[(cell.kind, content.locked_inputs, bad)]
    if cell.colspan > 1:
        ws.merge_range(r, c, r, c + cell.colspan - 1, None, style)
    if cell.is_total and not overwritten:
        ws.write_formula(r, c, _total_formula(fmt, cell), style, 0 if v is None else v)
    else:
        _write_value(ws, r, c, content.raw.get(cell.id), v, style)


def _validations(ws: Worksheet, fmt: Format, sheet: Sheet) -> None:
    """One validation per kind and sheet, over all its input cells."""
    ranges: dict[str, list[str]] = {}
    for cell in sheet.cells:
        if not cell.is_total:
            ranges.setdefault(cell.kind, []).append(
                cell.a1 if cell.colspan == 1 else f"{cell.a1}:{a1(cell.row, cell.col + cell.colspan - 1)}"
            )
    for kid, refs in ranges.items():
        kind = fmt.kinds[kid]
        first = refs[0].split(":")
        ws.data_validation(
            f"{first[0]}:{first[-1]}",
            {
                "validate": "integer" if kind.integer else "decimal",
                "criteria": ">=",
                "value": 0,
                "input_title": kind.input_title,
                "input_message": kind.input_message,
                "error_title": kind.error_title,
                "error_message": kind.error_message,
                "multi_range": " ".join(refs),
            },
        )


def write_table_sheet(
    wb: Workbook, fmt: Format, sheet: Sheet, st: Styles, content: ReturnContent, values: dict[str, Number | None]
) -> Worksheet:
    """One official table: head, labels and merges, numeric cells, validation, self-check, locking."""
    ws = wb.add_worksheet(sheet.name)
    _sheet_head(ws, sheet, st, content)
    _labels(ws, sheet, st, content)
    for cell in sheet.cells:
        _cell(ws, fmt, sheet, st, content, cell, values.get(cell.id))
    if not content.locked_inputs:
        _validations(ws, fmt, sheet)
    if sheet.selfcheck:
        _selfcheck(ws, fmt, sheet, st, Report(values=values))
    ws.protect(fmt.protection_password, {"select_locked_cells": True, "select_unlocked_cells": True})
    repeat = (sheet.first_row - 1, sheet.first_row - 2 + sheet.header_rows) if sheet.header_rows else None
    _page_setup(ws, content.unit, sheet.landscape, sheet.last_row, sheet.last_col, repeat, one_page=True)
    if sheet.header_rows:
        ws.freeze_panes(sheet.first_row - 1 + sheet.header_rows, 0)
    return ws


def set_identity(
    wb: Workbook,
    fmt: Format,
    unit: Unit,
    year: int,
    level: str,
    extra_sheets: Iterable[str] = (),
    extra_props: dict[str, str] | None = None,
) -> None:
    """Custom document properties: a returned file is matched to its unit by content, not name."""
    props = {
        "format_id": fmt.id,
        "format_version": fmt.version,
        "template_version": fmt.template_version,
        "year": year,
        "unit_code": unit.code,
        "unit_name": unit.name,
        "unit_type": unit.type,
        "level": level,
        "tool_version": __version__,
    }
    if extra_sheets:
        props["extra_sheets"] = "|".join(extra_sheets)
    props |= extra_props or {}
    for k, v in props.items():
        wb.set_custom_property(conventions().prefix + k, v[:255] if isinstance(v, str) else v)  # Excel's limit
    wb.set_properties(
        {
            "title": fmt.doc_title.format(year=year, unit_name=unit.name)[:255],
            "subject": fmt.title,
            "author": "nianbao",
            "company": unit.name[:255],
            "comments": "由 nianbao 生成；请勿增删行列、修改标签或工作表名称。",
        }
    )


def new_workbook(buf: io.BytesIO) -> Workbook:
    return LockedWorkbook(
        buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    )


def add_return_sheets(
    wb: Workbook, fmt: Format, content: ReturnContent, extra_sheets: Iterable[str] = (), after_cover: Iterable[Any] = ()
) -> Styles:
    """Cover + every official table, in the order of the format definition; ``after_cover``
    are callables adding sheets between the cover and the tables (e.g. 汇总说明)."""
    st = Styles(wb, fmt)
    values = derive_totals(fmt, content.values) if content.values is not None else blank_values(fmt)
    write_cover(wb, fmt, st, content)
    for add in after_cover:
        add(wb, st)
    for sheet in fmt.sheets:
        write_table_sheet(wb, fmt, sheet, st, content, values)
    set_identity(wb, fmt, content.unit, content.year, content.level, extra_sheets, content.props)
    return st


class LockedWorkbook(xlsxwriter.Workbook):
    """XlsxWriter cannot lock the workbook structure; this adds
    ``<workbookProtection lockStructure="1"/>`` where the schema wants it (before bookViews),
    instead of re-zipping the finished file."""

    def _write_book_views(self) -> None:
        self._xml_empty_tag("workbookProtection", [("lockStructure", 1)])
        super()._write_book_views()


def finish(wb: Workbook, buf: io.BytesIO, path: Path) -> None:
    wb.close()
    atomic_write_bytes(path, buf.getvalue())


def write_return(
    path: Path, fmt: Format, content: ReturnContent, extra: Iterable[Any] = (), extra_sheets: Iterable[str] = ()
) -> Path:
    """Write one return workbook atomically; ``extra`` are callables adding the sheets
    named in ``extra_sheets`` (e.g. 问题清单), which the reader then expects."""
    buf = io.BytesIO()
    wb = new_workbook(buf)
    st = add_return_sheets(wb, fmt, content, extra_sheets)
    for add in extra:
        add(wb, st)
    finish(wb, buf, Path(path))
    return Path(path)


FINDING_COLUMNS = (  # (heading, width, printed): the printed ones fit an A4 page across
    ("级别", 6, True),
    ("单位", 16, True),
    ("位置", 26, True),
    ("问题", 46, True),
    ("处理办法", 34, True),
    ("问题名称", 18, False),
    ("代码", 12, False),
    ("文件", 24, False),
    ("单元格", 8, False),
    ("应为", 8, False),
    ("实为", 8, False),
    ("差额", 8, False),
    ("指纹", 14, False),
)


def _finding_row(f: Finding) -> list[str]:
    def num(v: Any) -> str:
        return fmt_num(v) if v is not None else ""

    return [
        f.severity,
        f.unit_name,
        f.locate() or "整个文件",
        f.message,
        f.instruction,
        f.title,
        f.code,
        f.file,
        f.cell,
        num(f.expected),
        num(f.found),
        num(f.delta),
        f.fingerprint,
    ]


def findings_sheet(findings: list[Finding], name: str | None = None):
    """A sheet listing findings; every text is written as a string, never as a formula. Codes and
    fingerprints stay in the sheet (for filtering and machines) but outside the print area."""

    def add(wb: Workbook, st: Styles) -> None:
        ws = wb.add_worksheet(name or conventions().findings_sheet)
        for i, (head, width, _) in enumerate(FINDING_COLUMNS):
            ws.set_column(i, i, width)
            ws.write_string(0, i, head, st.label)
        printed = sum(1 for *_, p in FINDING_COLUMNS if p)
        for n, f in enumerate(findings, start=1):
            row = _finding_row(f)
            for i, v in enumerate(row):
                ws.write_string(n, i, str(v), st.note)
            lines = max(_est_lines(row[i], FINDING_COLUMNS[i][1]) for i in range(1, printed))
            ws.set_row(n, 14 * lines + 4)
        ws.autofilter(0, 0, max(len(findings), 1), len(FINDING_COLUMNS) - 1)
        ws.freeze_panes(1, 0)
        ws.protect("", {"autofilter": True, "sort": True, "select_locked_cells": True})
        _page_setup(ws, Unit("", "", ""), True, max(len(findings), 1) + 1, printed, (0, 0))

    return add


__all__ = ["ReturnContent", "write_return", "file_name", "add_return_sheets", "findings_sheet", "new_workbook", "finish"]


def _write_one(task: tuple) -> str:
    from .spec import formats

    fmt_id, unit, year, out_dir, *pre = task
    fmt = formats()[fmt_id]
    path = Path(out_dir) / file_name(unit, year)
    write_return(path, fmt, _prefilled(fmt, unit, year, pre[0] if pre else None))
    return str(path)


PREFILL_NOTE = "已按{prev}年度报告的“{label}”预填为{value}。本年“上年结转”应等于上年的结转下年度数；如有不同，请书面说明原因。"


def _prefilled(fmt: Format, unit: Unit, year: int, values: dict[str, Number] | None) -> ReturnContent:
    """A blank template, or one with some inputs pre-filled from last year (each with a comment)."""
    if not values:
        return ReturnContent(unit=unit, year=year)
    notes = {}
    for cid, v in values.items():
        cell = fmt.cells[cid]
        notes[(cell.sheet_name, cell.a1)] = PREFILL_NOTE.format(prev=year - 1, label="结转下年度继续办理", value=v)
    return ReturnContent(unit=unit, year=year, values={c.id: 0 for c in fmt.inputs} | values, notes=notes)


def generate_templates(
    fmt: Format,
    units: Iterable[Unit],
    year: int,
    out_dir: Path,
    progress: Progress = None,
    workers: int | None = None,
    prefill: dict[str, dict[str, Number]] | None = None,
) -> list[Path]:
    """One locked template per unit (all cores for large rosters); returns the paths. ``prefill``:
    unit code → input values known beforehand (上年结转 from last year's archive), with a comment.
    The folder gets the whole new set or, if interrupted, nothing new (``Staging``)."""
    import os

    from .fileio import Staging
    from .pool import new_pool, stop_pool

    units = list(units)
    with Staging(out_dir) as stage:
        tasks = [(fmt.id, u, year, str(stage.dir), (prefill or {}).get(u.code)) for u in units]
        for u in units:
            stage.path(file_name(u, year))
        workers = workers if workers is not None else (os.cpu_count() or 1)
        if progress:
            progress(len(tasks))
        if workers > 1 and len(tasks) >= 40:
            pool = new_pool(workers)
            try:
                for _ in pool.map(_write_one, tasks, chunksize=max(1, min(32, len(tasks) // (workers * 8)))):
                    if progress:
                        progress(-1)
            finally:
                stop_pool(pool)
        else:
            for task in tasks:
                _write_one(task)
                if progress:
                    progress(-1)
        return stage.commit()
