"""在线填写 (issue 30): the official tables as a web form, checked as the clerk types, and turned into
the same locked workbook ``template`` writes.

Everything comes from the format definition: the form's grid (labels, merges, input and total cells,
the self-check rows below 表三) is derived from the ``Format`` here, and a form's values are checked
by building the very ``Report`` the workbook reader makes of the workbook those values give — the
reader's own cell reading (``reader._read_cells``), its completeness checks, then ``check``'s identity
checks and the format's rules — so the live hints and the findings after 提交 are one code path.

No web imports: the page (toolkit/web/form.py) renders a ``FormModel`` and posts values back.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import NianbaoError
from .findings import Finding, fmt_num, sort_key
from .report import Number, Provenance, Report, derive_totals, mark_unknown
from .roster import Roster, Unit
from .spec import Cell, Format, Sheet

MAX_DRAFT_BYTES = 256 * 1024  # a whole return typed in is ~10 KB of JSON
MAX_TEXT = 2000  # characters of one typed value (情况说明 included)
CLERK_SOURCE, REVIEWER_SOURCE = "在线填写", "审核人在线录入"  # workflow.SOURCES: who stored the version
CLERK_AUTHOR, REVIEWER_AUTHOR = "链接", "审核人"  # whose draft
# what a spreadsheet turns into a number when typed: digits, sign, decimals, thousands separators
_TYPED_NUMBER = re.compile(r"[+-]?(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d+)?", re.ASCII)
_ISO_DAY = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")


class FormError(NianbaoError):
    """What was posted cannot be a form of this format (unknown cells, too large): said in Chinese."""


# ---------------------------------------------------------------- the form's layout


@dataclass(frozen=True)
class Slot:
    """One place of a table's grid: a label (th), an input, a total, a self-check output or nothing."""

    kind: str  # label | input | total | empty | selfsum | self
    text: str = ""
    rowspan: int = 1
    colspan: int = 1
    cell: Cell | None = None
    row: int = 0  # inputs: 0-based index among the table's input rows / columns
    col: int = 0
    side: str = ""  # selfsum: left | right


@dataclass(frozen=True)
class FormTable:
    sheet: Sheet
    rows: tuple[tuple[Slot, ...], ...]  # the table's rows, then its self-check rows


@dataclass
class FormModel:
    """The form of one format definition (derived once per format and kept on the model)."""

    fmt: Format

    @cached_property
    def cover_fields(self) -> tuple[Any, ...]:
        """The cover's fields the clerk fills in (identity fields come from the roster)."""
        return tuple(f for f in self.fmt.cover.fields if not f.source)

    @cached_property
    def identity_fields(self) -> tuple[Any, ...]:
        return tuple(f for f in self.fmt.cover.fields if f.source)

    @cached_property
    def input_ids(self) -> frozenset[str]:
        return frozenset(self.fmt.input_ids)

    @cached_property
    def cover_ids(self) -> frozenset[str]:
        return frozenset(f.id for f in self.cover_fields)

    @cached_property
    def tables(self) -> tuple[FormTable, ...]:
        return tuple(FormTable(s, _grid(self.fmt, s) + _selfcheck_rows(self.fmt, s)) for s in self.fmt.sheets)

    @cached_property
    def selfcheck_terms(self) -> list[tuple[str, str, str, frozenset[str]]]:
        """(column's cell id, left expression, right expression, input cells named directly) of every
        self-check column: the template's check formulas, e.g. =D7+D8 (a text there makes it #VALUE!)."""
        out = []
        for sheet in self.fmt.sheets:
            rule = _selfcheck_rule(self.fmt, sheet)
            for inst in rule.instances() if rule else ():
                left, right = rule.left.format(**inst), rule.right.format(**inst)
                named = frozenset(c for c in re.findall(r"[a-z][a-z0-9_]*\.[a-z0-9_]+\.[a-z0-9_]+", left + " " + right))
                out.append((rule.at.format(**inst), left, right, named))
        return out

    def hint(self, cell_id: str) -> str:
        """The template's data-validation message of a cell's kind (numbers only, whole or amounts)."""
        return self.fmt.kinds[self.fmt.cells[cell_id].kind].error_message


def _selfcheck_rule(fmt: Format, sheet: Sheet):  # type: ignore[no-untyped-def]
    sc = sheet.selfcheck
    return next((r for r in fmt.rules if r.code == sc.rule), None) if sc else None


def _grid(fmt: Format, sheet: Sheet) -> tuple[tuple[Slot, ...], ...]:
    """The table as rows of slots, merges as spans, positions covered by a span left out."""
    at: dict[tuple[int, int], Slot] = {}
    covered: set[tuple[int, int]] = set()
    for lb in sheet.labels:
        at[(lb.row, lb.col)] = Slot("label", lb.text, lb.rowspan, lb.colspan)
        covered.update((lb.row + i, lb.col + j) for i in range(lb.rowspan) for j in range(lb.colspan) if i or j)
    inputs = [c for c in sheet.cells if not c.is_total]
    in_rows = sorted({c.row for c in inputs})
    in_cols = sorted({c.col for c in inputs})
    for c in sheet.cells:
        if c.is_total:
            at[(c.row, c.col)] = Slot("total", colspan=c.colspan, cell=c)
        else:
            at[(c.row, c.col)] = Slot("input", colspan=c.colspan, cell=c, row=in_rows.index(c.row), col=in_cols.index(c.col))
        covered.update((c.row, c.col + j) for j in range(1, c.colspan))
    rows = []
    for r in range(sheet.first_row, sheet.last_row + 1):
        line = [at.get((r, c), Slot("empty")) for c in range(sheet.first_col, sheet.last_col + 1) if (r, c) not in covered]
        rows.append(tuple(line))
    return tuple(rows)


def _selfcheck_rows(fmt: Format, sheet: Sheet) -> tuple[tuple[Slot, ...], ...]:
    """The three rows the template computes below 表三: left sum, right sum, 相符 / 不符，差N."""
    rule = _selfcheck_rule(fmt, sheet)
    if rule is None or sheet.selfcheck is None:
        return ()
    sc = sheet.selfcheck
    cols = {fmt.cells[rule.at.format(**inst)].col: rule.at.format(**inst) for inst in rule.instances()}
    first_value_col = min(c.col for c in sheet.cells)
    rows = []
    for kind, text, side in (
        ("selfsum", sc.left_label, "left"),
        ("selfsum", sc.right_label, "right"),
        ("self", sc.result_label, ""),
    ):
        line = [Slot("label", text, colspan=first_value_col - sheet.first_col)]
        for col in range(first_value_col, sheet.last_col + 1):
            cid = cols.get(col)
            line.append(Slot(kind, cell=fmt.cells[cid], side=side) if cid else Slot("empty"))
        rows.append(tuple(line))
    return tuple(rows)


# ---------------------------------------------------------------- typed text → workbook cells


def typed_cell(text: str) -> tuple[Number | None, str | None]:
    """What typing ``text`` into the template's cell leaves there, as (number, text): a number when a
    spreadsheet takes it as one (digits, a sign, decimals, thousands separators), else the text as
    typed ("无", "5件"), which the reader then judges. Full-width digits typed with a Chinese input
    method are digits ("１２" is 12, as a spreadsheet's input takes them). Blank: 0 (the form's empty cell)."""
    typed = str(text).strip()
    s = unicodedata.normalize("NFKC", typed)
    if not s:
        return 0, None
    if _TYPED_NUMBER.fullmatch(s):
        f = float(s.replace(",", ""))
        if math.isfinite(f):
            f = float(f"{f:.16G}")  # what XlsxWriter writes into the file, and the reader reads back
            return (int(f) if f.is_integer() and abs(f) < 2**53 else f), None
    return None, typed


def cover_cell(text: str, kind: str) -> Any:
    """A cover field as written: a date field's YYYY-MM-DD as a date (the template's date cell), else text."""
    s = str(text).strip()
    m = _ISO_DAY.fullmatch(s) if kind == "date" else None
    if m:
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return s
    return s


def content(model: FormModel, unit: Unit, year: int, values: dict[str, str], cover: dict[str, str]):  # type: ignore[no-untyped-def]
    """The ``ReturnContent`` of a filled form: what ``template`` writes, with the clerk's figures and cover."""
    from .template import ReturnContent

    nums: dict[str, Number | None] = {}
    raw: dict[str, Any] = {}
    for cid in model.fmt.input_ids:
        nums[cid], text = typed_cell(values.get(cid, ""))
        if text is not None:
            raw[cid] = text
    cov = {f.id: cover_cell(cover.get(f.id, ""), f.kind) for f in model.cover_fields}
    return ReturnContent(unit=unit, year=year, values=nums, raw=raw, cover={k: v for k, v in cov.items() if v != ""})


def write_form_return(
    model: FormModel, unit: Unit, year: int, values: dict[str, str], cover: dict[str, str], folder: Path
) -> Path:
    """The return workbook of a filled form, written by the template's own writer into ``folder``."""
    from .template import file_name, write_return

    return write_return(Path(folder) / file_name(unit, year), model.fmt, content(model, unit, year, values, cover))


# ---------------------------------------------------------------- checking a form


@dataclass
class _SheetInfo:
    """What the reader's probe knows of a sheet the template wrote: its formulas (the totals)."""

    formulas: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class _Probe:
    sheets: dict[str, _SheetInfo]
    careful: bool = False


@dataclass
class Evaluation:
    report: Report
    totals: dict[str, Number]
    selfcheck: dict[str, str]
    selfsums: dict[str, list[Number]]
    hints: dict[str, str]


def _written(model: FormModel, unit: Unit, year: int, values: dict[str, str], cover: dict[str, str]) -> tuple[Any, dict]:
    """The content and, per sheet, the grid of what the workbook holds: the typed inputs and the
    totals' cached results, as the template writes them (``template._cell``)."""
    got = content(model, unit, year, values, cover)
    derived = derive_totals(model.fmt, got.values)
    grids = {}
    for sheet in model.fmt.sheets:
        lay = sheet.grid_layout
        grid: list[list[Any]] = [[None] * lay.cols for _ in range(lay.rows)]
        for c in sheet.cells:
            if c.is_total:
                v = derived.get(c.id)
                grid[c.row - 1][c.col - 1] = float(0 if v is None else v)
            else:
                v = got.values.get(c.id)
                grid[c.row - 1][c.col - 1] = got.raw.get(c.id, None if v is None else float(v))
        grids[sheet.name] = grid
    return got, grids


def read_form(model: FormModel, unit: Unit, year: int, values: dict[str, str], cover: dict[str, str]) -> Report:
    """The Report the reader makes of the workbook ``write_form_return`` writes for these values (a
    template it wrote itself: identity, protection and labels as they should be)."""
    from . import reader
    from .layout import Alignment
    from .template import file_name

    fmt, name = model.fmt, file_name(unit, year)
    got, grids = _written(model, unit, year, values, cover)
    report = Report(format_id=fmt.id, format_version=fmt.version, template_version=fmt.template_version, year=year)
    report.unit_code, report.unit_name, report.unit_type = unit.code, unit.name, unit.type
    report.provenance = Provenance(path=name, name=name)
    ident = {"unit_name": unit.name, "unit_code": unit.code, "year": year}
    for f in fmt.cover.fields:
        report.cover[f.id] = reader._cover_text(ident[f.source] if f.source else got.cover.get(f.id), f.kind)
    probe = _Probe({s.name: _SheetInfo({c.a1: "=" for c in s.cells if c.is_total}) for s in fmt.sheets})
    for sheet in fmt.sheets:
        reader._read_cells(report, fmt, sheet, grids[sheet.name], probe, name, Alignment())  # type: ignore[arg-type]
    ids = fmt.input_ids
    report.values = derive_totals(fmt, dict(zip(ids, map(report.values.get, ids), strict=True)))
    mark_unknown(fmt, report)
    reader._completeness(report, fmt, name)
    for f in report.findings:
        f.file, f.unit_code, f.unit_name = name, unit.code, unit.name
        f.finish(year)
    return report


def check_form(model: FormModel, report: Report, roster: Roster | None, cross_year: Callable[[Report], None] | None) -> Report:
    """``check``'s identity checks and the format's rules (``check.check_report``, with the model's
    format), then ``cross_year``: the archive's cross-year findings against last year's approved
    return, as ``receive`` adds them (``archive.receive.add_cross_year``, given by the api)."""
    from .check import CheckOptions, check_report

    check_report(report, CheckOptions(year=report.year, roster=roster), fmt=model.fmt)
    if cross_year is not None:
        cross_year(report)
    report.findings.sort(key=sort_key)
    return report


def evaluate(
    model: FormModel,
    unit: Unit,
    year: int,
    values: dict[str, str],
    cover: dict[str, str],
    roster: Roster | None = None,
    cross_year: Callable[[Report], None] | None = None,
) -> Evaluation:
    """Everything the form shows after a change: findings, totals, the self-check texts, hints."""
    report = check_form(model, read_form(model, unit, year, values, cover), roster, cross_year)
    fmt = model.fmt
    derived = derive_totals(fmt, content(model, unit, year, values, cover).values)
    totals = {c.id: derived.get(c.id) or 0 for c in fmt.totals}
    selfcheck, sums = _selfcheck(model, values, derived)
    return Evaluation(report, totals, selfcheck, sums, _hints(model, report))


def _selfcheck(model: FormModel, values: dict[str, str], derived: dict[str, Any]) -> tuple[dict[str, str], dict[str, list]]:
    """What the template's self-check rows show: 相符, 不符，差N, or the text-error note when a cell the
    check formula adds holds text (the spreadsheet's #VALUE!)."""
    from .rules import evaluate as side

    probe = Report(values=derived)
    texts, sums = {}, {}
    for sheet in model.fmt.sheets:
        sc = sheet.selfcheck
        for cid, left, right, named in model.selfcheck_terms:
            if sc is None or model.fmt.cells[cid].sheet_id != sheet.id:
                continue
            lv, rv = side(left, model.fmt, probe).value, side(right, model.fmt, probe).value
            sums[cid] = [lv, rv]
            if any(typed_cell(values.get(n, ""))[1] is not None for n in named):
                texts[cid] = sc.text_error
            else:
                texts[cid] = sc.ok_text if abs(lv - rv) < 1e-9 else f"{sc.bad_text}{fmt_num(abs(lv - rv))}"
    return texts, sums


READING = frozenset({"not-a-number", "negative", "not-integer", "number-as-text", "value-too-large", "date-in-number"})


def _hints(model: FormModel, report: Report) -> dict[str, str]:
    """A short hint beside each cell a finding is about: the template's validation message for what
    is not a proper number, else the finding's title."""
    out: dict[str, str] = {}
    for f in report.findings:
        if not f.cell_id or f.cell_id in out:
            continue
        out[f.cell_id] = model.hint(f.cell_id) if f.code in READING else f.title
    return out


def finding_json(f: Finding, model: FormModel) -> dict[str, Any]:
    """A finding as the page lists it; ``cells`` names form cells (``cover:<id>`` for a cover field)."""
    cells = [f.cell_id] if f.cell_id else []
    if not cells and f.sheet == model.fmt.cover.sheet_name:
        from .spec import a1, conventions

        col = conventions().cover_value_col
        cells = [f"cover:{x.id}" for x in model.cover_fields if a1(x.row, col) == f.cell]
    return {
        "level": f.severity,
        "title": f.title,
        "message": f.message,
        "where": f.locate(),
        "instruction": f.instruction,
        "cells": cells,
    }


# ---------------------------------------------------------------- drafts and starting values


def clean_draft(model: FormModel, body: Any) -> dict[str, dict[str, str]]:
    """A posted form as a draft: ``{"cover": {...}, "values": {...}}`` of known fields and cells only,
    texts of bounded length, the whole within ``MAX_DRAFT_BYTES``; FormError (Chinese) otherwise."""
    if not isinstance(body, dict):
        raise FormError("提交的内容格式不对（应为封面和各单元格的内容）。请刷新页面后重试。")
    out: dict[str, dict[str, str]] = {}
    for part, known, what in (("cover", model.cover_ids, "封面项目"), ("values", model.input_ids, "单元格")):
        given = body.get(part) or {}
        if not isinstance(given, dict):
            raise FormError("提交的内容格式不对（应为封面和各单元格的内容）。请刷新页面后重试。")
        unknown = [k for k in given if k not in known]
        if unknown:
            shown = "、".join(str(k)[:40] for k in unknown[:3])
            raise FormError(f"表格中没有{what}“{shown}”（可能页面已过期）。请刷新页面后重新填写。")
        out[part] = {k: _text(v) for k, v in given.items() if _text(v)}
    if len(json.dumps(out, ensure_ascii=False).encode("utf-8")) > MAX_DRAFT_BYTES:
        raise FormError(f"填写的内容超过 {MAX_DRAFT_BYTES // 1024} KB 的上限，没有保存。请删去过长的文字（如情况说明）后重试。")
    return out


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        raise FormError("提交的内容格式不对（单元格内容应为文字）。请刷新页面后重试。")
    s = str(v)
    if len(s) > MAX_TEXT:
        raise FormError(f"有一项内容超过 {MAX_TEXT} 个字，没有保存。请缩短后重试。")
    return s.strip()


def from_report(model: FormModel, report: Report) -> dict[str, dict[str, str]]:
    """A stored return as the form's texts: what the clerk typed where it was no clean number."""
    values = {}
    for cid in model.fmt.input_ids:
        if cid in report.raw and report.raw[cid] is not None:
            values[cid] = str(report.raw[cid])
        elif report.values.get(cid) is not None:
            values[cid] = fmt_num(report.values[cid])
    cover = {f.id: str(report.cover.get(f.id) or "") for f in model.cover_fields if report.cover.get(f.id)}
    return {"cover": cover, "values": values}


def from_carryover(model: FormModel, carried: dict[str, Number] | None) -> dict[str, dict[str, str]]:
    """Year 2: last year's 结转下年度 as this year's 上年结转, like ``template --db``."""
    return {"cover": {}, "values": {k: fmt_num(v) for k, v in (carried or {}).items() if k in model.input_ids}}
