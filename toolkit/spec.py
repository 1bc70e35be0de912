"""Typed model of a format definition (``templates/*.toml``).

The TOML file is the single source of truth for labels, layout, cell ids,
totals and rules; this module turns it into immutable objects and refuses a
broken definition at load time, so that the writer, the reader, the rules and
the consolidation can never disagree about where a cell is.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SpecError

if TYPE_CHECKING:
    from .expr import CompiledRule

SEVERITIES = ("错误", "警告", "提示")
# What a reviewer may do about a finding: 强制性 = must be corrected, no 说明 makes it acceptable;
# 核实性 = to be verified, may be accepted with a written 说明 (carry-over, plausibility, jumps).
KINDS = ("强制性", "核实性")
OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
MISSING = ("zero", "skip_if_any", "skip_if_all", "never")


CELL_ID = re.compile(r"[a-z][a-z0-9_]*\.[a-z0-9_]+\.[a-z0-9_]+")  # <sheet>.<row>.<column>, e.g. t3.r1.np


def templates_dir() -> Path:
    """Where the format definitions live: ``templates/`` of the checkout, or the installed copy."""
    here = Path(__file__).resolve().parent
    source = here.parent / "templates"
    if (source / "checks.toml").is_file():
        return source
    return here / "formats"  # an installed wheel: templates/ is packaged as toolkit/formats/


def col_letter(col: int) -> str:
    """1-based column number → Excel letters (1 → A, 27 → AA)."""
    letters = ""
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def a1(row: int, col: int) -> str:
    """1-based row/column → A1 address."""
    return f"{col_letter(col)}{row}"


@dataclass(frozen=True)
class Kind:
    id: str
    unit: str
    integer: bool
    num_format: str
    input_title: str
    input_message: str
    error_title: str
    error_message: str


@dataclass(frozen=True)
class Label:
    sheet_id: str
    row: int  # absolute, 1-based
    col: int
    rowspan: int
    colspan: int
    text: str

    @property
    def a1(self) -> str:
        return a1(self.row, self.col)

    def covers(self, row: int, col: int) -> bool:
        return self.row <= row < self.row + self.rowspan and self.col <= col < self.col + self.colspan


@dataclass(frozen=True)
class Cell:
    """One numeric cell of an official table, addressed by a stable ASCII id."""

    id: str
    sheet_id: str
    sheet_name: str
    row_id: str
    col_id: str
    row: int  # absolute, 1-based
    col: int
    colspan: int
    kind: str
    parts: tuple[str, ...]  # non-empty for totals (formula cells)
    row_label: str
    col_label: str

    @property
    def is_total(self) -> bool:
        return bool(self.parts)

    @property
    def a1(self) -> str:
        return a1(self.row, self.col)

    @property
    def where(self) -> str:
        """Human location, e.g. ``表三 一、本年新收政府信息公开申请数量 × 自然人（D7）``."""
        parts = [p for p in (self.row_label, self.col_label) if p]
        return f"{self.sheet_name} {' × '.join(parts)}（{self.a1}）"


@dataclass(frozen=True)
class SelfCheck:
    rule: str
    gap: int
    left_label: str
    right_label: str
    result_label: str
    ok_text: str
    bad_text: str
    text_error: str
    hint: str


@dataclass(frozen=True)
class Sheet:
    id: str
    name: str
    title: str
    period: str
    first_row: int
    first_col: int
    last_row: int
    last_col: int
    col_widths: tuple[float, ...]
    landscape: bool
    header_rows: int
    verified: bool
    published: bool  # part of the tables of a published report (信息处理费 is prose there)
    labels: tuple[Label, ...]
    cells: tuple[Cell, ...]
    selfcheck: SelfCheck | None

    @cached_property
    def unlabelled_rows(self) -> list[tuple[int, list[int]]]:
        """The rows of cells without a label of their own, with their cells' columns."""
        labelled = {lb.row for lb in self.labels if lb.rowspan == 1} | {
            r for lb in self.labels for r in range(lb.row, lb.row + lb.rowspan)
        }
        rows = sorted({c.row for c in self.cells} - labelled)
        return [(row, [c.col for c in self.cells if c.row == row]) for row in rows]

    @cached_property
    def label_spots(self) -> list[tuple[int, int, str, bool]]:
        """(row, column) zero-based, text, and whether the text has no edge spaces, of every label:
        what the reader compares a returned sheet with."""
        return [(lb.row - 1, lb.col - 1, lb.text, lb.text == lb.text.strip()) for lb in self.labels]

    @cached_property
    def places(self) -> list[tuple[Cell, int, int, str, bool]]:
        """(cell, row, column, A1, is an input) of every cell, where a sheet in place holds it."""
        return [(c, c.row, c.col, a1(c.row, c.col), not c.is_total) for c in self.cells]

    @cached_property
    def grid_layout(self) -> GridLayout:
        """The cells in place grouped for reading the whole sheet with a few C-level calls."""
        rows, cols = max(c.row for c in self.cells), max(c.col for c in self.cells)
        ins = [c for c in self.cells if not c.is_total]
        tots = [c for c in self.cells if c.is_total]
        at = lambda c: (c.row - 1) * cols + c.col - 1  # noqa: E731 - index in the grid cut to rows × cols, flattened
        return GridLayout(
            tuple(c.id for c in ins),
            picker([at(c) for c in ins]),
            frozenset(a1(c.row, c.col) for c in ins),
            tuple(c.id for c in tots),
            picker([at(c) for c in tots]),
            frozenset(a1(c.row, c.col) for c in tots),
            rows,
            cols,
        )


@dataclass(frozen=True)
class GridLayout:
    """A sheet's cells in place: ids, pickers of their values out of the flattened grid, addresses."""

    input_ids: tuple[str, ...]
    inputs: Callable[[Sequence[Any]], tuple[Any, ...]]  # picks the inputs' values out of a flat grid
    input_addrs: frozenset[str]
    total_ids: tuple[str, ...]
    totals: Callable[[Sequence[Any]], tuple[Any, ...]]
    total_addrs: frozenset[str]
    rows: int
    cols: int


def picker(indices: list[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A function giving the items at ``indices`` as a tuple, in C (operator.itemgetter; it gives a
    bare item for one index and cannot take none, hence the two lambdas)."""
    if not indices:
        return lambda items: ()
    if len(indices) == 1:
        k = indices[0]
        return lambda items: (items[k],)
    return itemgetter(*indices)


@dataclass(frozen=True)
class CoverField:
    id: str
    label: str
    row: int
    source: str  # unit_name | unit_code | year | "" (clerk's field)
    editable: bool
    required: bool
    kind: str  # text | date | longtext
    input_message: str


@dataclass(frozen=True)
class Cover:
    sheet_name: str
    title: str
    subtitle: str
    col_widths: tuple[float, ...]
    instructions_title: str
    instructions: tuple[str, ...]
    fields: tuple[CoverField, ...]

    def field(self, fid: str) -> CoverField:
        for f in self.fields:
            if f.id == fid:
                return f
        raise KeyError(fid)


@dataclass(frozen=True)
class Rule:
    code: str
    title: str
    severity: str
    basis: str
    loop_var: str
    loop_values: tuple[str, ...]
    summary_member: str
    left: str
    operator: str
    right: str
    missing: str
    at: str
    message: str
    instruction: str
    example: str
    unit_types: tuple[str, ...]
    kind: str = "强制性"
    # when set, a failure's 应为 is the entry times this (35000 entered as 元 in a 万元 cell → 3.5): the
    # value the clerk probably meant, also {likely} in the message; else the rule's other side
    likely_scale: float = 0.0

    @property
    def cross_year(self) -> bool:
        """Compares this year with last year (``prev(...)``): runs only when last year is known."""
        return "prev(" in self.left or "prev(" in self.right

    def instances(self) -> list[dict[str, str]]:
        if not self.loop_var:
            return [{}]
        return [{self.loop_var: v} for v in self.loop_values]


@dataclass(frozen=True)
class Chart:
    type: str  # column | pie
    title: str
    by_unit: tuple[str, ...]
    series_names: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]  # each group: the cell ids it sums
    labels: tuple[str, ...]


@dataclass(frozen=True)
class CheckType:
    code: str
    severity: str
    title: str
    message: str
    instruction: str
    tags: tuple[str, ...] = ()
    kind: str = "强制性"


@dataclass(frozen=True)
class Format:
    id: str
    version: str
    template_version: str
    title: str
    basis: str
    status: str
    valid_from_year: int
    protection_password: str
    doc_title: str
    kinds: dict[str, Kind]
    cover: Cover
    sheets: tuple[Sheet, ...]
    rules: tuple[Rule, ...]
    source: str
    digest: str = ""  # sha256 of the definition file: the "rules version" recorded in manifests
    charts: tuple[Chart, ...] = ()
    cells: dict[str, Cell] = field(default_factory=dict)
    sections: tuple[str, ...] = ()  # the six section titles of a published report

    @cached_property
    def inputs(self) -> list[Cell]:
        return [c for c in self.cells.values() if not c.is_total]

    @cached_property
    def totals(self) -> list[Cell]:
        return [c for c in self.cells.values() if c.is_total]

    @cached_property
    def cell_ids(self) -> tuple[str, ...]:
        """Every cell id, one tuple shared by all reports of the format."""
        return tuple(self.cells)

    @cached_property
    def cell_id_set(self) -> frozenset[str]:
        return frozenset(self.cells)

    @cached_property
    def total_order(self) -> list[tuple[str, tuple[str, ...]]]:
        """The totals with their parts, each after the totals it sums."""
        order: list[tuple[str, tuple[str, ...]]] = []
        done: set[str] = set()

        def visit(cid: str) -> None:
            if cid in done:
                return
            done.add(cid)
            parts = tuple(self.cells[cid].parts)
            for p in parts:
                if self.cells[p].is_total:
                    visit(p)
            order.append((cid, parts))

        for c in self.totals:
            visit(c.id)
        return order

    @cached_property
    def paths_up(self) -> dict[str, tuple[str, ...]]:
        """Input cell id → every total it is summed into, once per path (as ``derive_totals`` adds)."""
        up: dict[str, list[str]] = {}
        for cid, parts in self.total_order:
            for p in parts:
                up.setdefault(p, []).append(cid)

        def above(cid: str) -> list[str]:
            return [t for total in up.get(cid, []) for t in (total, *above(total))]

        return {c.id: tuple(above(c.id)) for c in self.inputs}

    @cached_property
    def input_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.inputs)

    @cached_property
    def input_cells(self) -> dict[str, frozenset[str]]:
        """Sheet name → the A1 addresses of its input cells."""
        return {s.name: frozenset(c.a1 for c in s.cells if not c.is_total) for s in self.sheets}

    @cached_property
    def formula_cells(self) -> dict[str, frozenset[str]]:
        """Sheet name → where the template itself writes formulas: totals, and the self-check rows below a table."""
        out: dict[str, set[str]] = {}
        for sheet in self.sheets:
            cells = out.setdefault(sheet.name, set())
            cells.update(c.a1 for c in sheet.cells if c.is_total)
            sc = sheet.selfcheck
            if sc is None:
                continue
            rule = next((r for r in self.rules if r.code == sc.rule), None)
            first = sheet.last_row + sc.gap + 1
            for inst in rule.instances() if rule else ():
                col = self.cells[rule.at.format(**inst)].col
                cells.update(a1(first + k, col) for k in range(3))
        return {k: frozenset(v) for k, v in out.items()}

    @cached_property
    def compiled(self) -> dict[str, CompiledRule]:
        """Rule code → the rule with its expressions parsed (toolkit/expr.py): once per loaded definition,
        on the format itself rather than in a module dictionary keyed by its id."""
        from .expr import compile_rule

        return {r.code: compile_rule(r, self) for r in self.rules}

    def sheet(self, sid: str) -> Sheet:
        for s in self.sheets:
            if s.id == sid:
                return s
        raise KeyError(sid)

    def match(self, pattern: str) -> list[str]:
        """Cell ids matching a glob, or ``kind:<kind>`` for all input cells of a kind."""
        if pattern.startswith("kind:"):
            kind = pattern[5:]
            return [c.id for c in self.inputs if c.kind == kind]
        return [cid for cid in self.cells if fnmatch.fnmatchcase(cid, pattern)]


# ---------------------------------------------------------------- loading


def _req(d: dict[str, Any], key: str, where: str, typ: type | tuple[type, ...] = str) -> Any:
    if key not in d:
        raise SpecError(f"{where} 缺少“{key}”")
    val = d[key]
    if not isinstance(val, typ) or (typ is int and isinstance(val, bool)):
        raise SpecError(f"{where} 的“{key}”类型不对：{val!r}")
    return val


def _load_labels(raw: dict[str, Any], where: str, sid: str, fr: int, fc: int, occupy: Any) -> list[Label]:
    labels: list[Label] = []
    for i, lb in enumerate(raw.get("labels", [])):
        lw = f"{where} 第{i + 1}个标签"
        r, c = _req(lb, "r", lw, int), _req(lb, "c", lw, int)
        rs, cs = int(lb.get("rs", 1)), int(lb.get("cs", 1))
        text = _req(lb, "text", lw)
        if min(r, c, rs, cs) < 1 or not text.strip():
            raise SpecError(f"{lw} 的位置或文字无效")
        occupy(r, c, rs, cs, f"标签“{text}”")
        labels.append(Label(sid, fr + r - 1, fc + c - 1, rs, cs, text))
    return labels


def _unique_ids(items: list[dict[str, Any]], what: str, bw: str) -> list[str]:
    ids = [_req(x, "id", bw) for x in items]
    if len(set(ids)) != len(ids):
        raise SpecError(f"{bw} 中{what} id 重复")
    return ids


def _sum_parts(raw: dict[str, Any], own: str, ids: list[str], what: str, bw: str) -> tuple[str, ...]:
    parts = tuple(raw.get("sum", ()))
    for p in parts:
        if p not in ids or p == own:
            raise SpecError(f"{bw} {what}“{own}”的合计项“{p}”不存在")
    return parts


@dataclass
class _SheetContext:
    sid: str
    name: str
    fr: int
    fc: int
    labels: list[Label]
    occupy: Any


def _load_block(block: dict[str, Any], bw: str, ctx: _SheetContext, kinds: dict[str, Kind]) -> list[Cell]:
    """One block of numeric cells: rows × columns, with their totals and the labels that name them."""
    kind = _req(block, "kind", bw)
    if kind not in kinds:
        raise SpecError(f"{bw} 的类型“{kind}”未在 [kinds] 中定义")
    header_from = ctx.fr + int(block.get("header_from", 1)) - 1
    cols, rows = _req(block, "columns", bw, list), _req(block, "rows", bw, list)
    col_ids, row_ids = _unique_ids(cols, "列", bw), _unique_ids(rows, "行", bw)
    first_data_col = ctx.fc + min(col["c"] for col in cols) - 1
    first_data_row = ctx.fr + min(row["r"] for row in rows) - 1
    cells = []
    for row in rows:
        rid, rr = row["id"], ctx.fr + _req(row, "r", bw, int) - 1
        row_sum = _sum_parts(row, rid, row_ids, "行", bw)
        row_label = " ".join(
            lb.text for lb in ctx.labels if lb.col < first_data_col and lb.covers(rr, lb.col) and lb.row >= header_from
        )
        for col in cols:
            cid_, cc, cs = col["id"], ctx.fc + _req(col, "c", bw, int) - 1, int(col.get("cs", 1))
            col_sum = _sum_parts(col, cid_, col_ids, "列", bw)
            cell_id = f"{ctx.sid}.{rid}.{cid_}"
            if not CELL_ID.fullmatch(cell_id):
                raise SpecError(f"{bw} 的单元格 id “{cell_id}” 只能由小写字母、数字、下划线组成")
            parts = tuple(f"{ctx.sid}.{rid}.{p}" for p in col_sum) if col_sum else tuple(f"{ctx.sid}.{p}.{cid_}" for p in row_sum)
            col_label = " ".join(lb.text for lb in ctx.labels if header_from <= lb.row < first_data_row and lb.covers(lb.row, cc))
            ctx.occupy(rr - ctx.fr + 1, cc - ctx.fc + 1, 1, cs, f"单元格 {cell_id}")
            cells.append(Cell(cell_id, ctx.sid, ctx.name, rid, cid_, rr, cc, cs, kind, parts, row_label, col_label))
    return cells


def _load_selfcheck(raw: dict[str, Any], where: str) -> SelfCheck | None:
    sc = raw.get("selfcheck")
    if not sc:
        return None
    fields = ("rule", "left_label", "right_label", "result_label", "ok_text", "bad_text", "text_error", "hint")
    return SelfCheck(gap=int(sc.get("gap", 1)), **{k: _req(sc, k, where) for k in fields})


def _sheet_identity(raw: dict[str, Any], idx: int, fmt_where: str) -> tuple[str, str, str]:
    where = f"{fmt_where} 第{idx + 1}个工作表"
    sid = _req(raw, "id", where)
    if not re.fullmatch(r"[a-z][a-z0-9_]*", sid):
        raise SpecError(f"{where} 的 id “{sid}” 只能由小写字母、数字和下划线组成")
    where = f"{fmt_where} 工作表 {sid}"
    name = _req(raw, "name", where)
    if len(name) > 31 or re.search(r"[\[\]:*?/\\]", name):
        raise SpecError(f"{where} 的名称“{name}”不能用作工作表名")
    return sid, name, where


def _load_sheet(raw: dict[str, Any], idx: int, fmt_where: str, kinds: dict[str, Kind]) -> Sheet:
    sid, name, where = _sheet_identity(raw, idx, fmt_where)
    fr, fc = _req(raw, "first_row", where, int), _req(raw, "first_col", where, int)
    occupied: dict[tuple[int, int], str] = {}

    def occupy(r: int, c: int, rs: int, cs: int, what: str) -> None:
        for rr in range(r, r + rs):
            for cc in range(c, c + cs):
                if (rr, cc) in occupied:
                    raise SpecError(f"{where}：{what} 与 {occupied[(rr, cc)]} 在第{rr}行第{cc}列重叠")
                occupied[(rr, cc)] = what

    labels = _load_labels(raw, where, sid, fr, fc, occupy)
    ctx = _SheetContext(sid, name, fr, fc, labels, occupy)
    cells = [
        c for bi, block in enumerate(raw.get("blocks", [])) for c in _load_block(block, f"{where} 第{bi + 1}个数据块", ctx, kinds)
    ]
    if not cells:
        raise SpecError(f"{where} 没有任何数字单元格")
    return Sheet(
        id=sid,
        name=name,
        title=_req(raw, "title", where),
        period=raw.get("period", ""),
        first_row=fr,
        first_col=fc,
        last_row=max([lb.row + lb.rowspan - 1 for lb in labels] + [c.row for c in cells]),
        last_col=max([lb.col + lb.colspan - 1 for lb in labels] + [c.col + c.colspan - 1 for c in cells]),
        col_widths=tuple(float(w) for w in raw.get("col_widths", ())),
        landscape=bool(raw.get("landscape", False)),
        header_rows=int(raw.get("header_rows", 0)),
        verified=bool(raw.get("verified", True)),
        published=bool(raw.get("in_published_report", True)),
        labels=tuple(labels),
        cells=tuple(cells),
        selfcheck=_load_selfcheck(raw, where),
    )


_REF = re.compile(r"(cached|parts|sum|prev)\(([^)]*)\)|([a-z][a-z0-9_]*\.[a-z0-9_\[\]!*?]+\.[a-z0-9_\[\]!*?]+)")


def rule_refs(expr: str) -> list[tuple[str, str]]:
    """The references of an expression as (function, argument) pairs; function '' = plain cell."""
    return [(m.group(1) or "", m.group(2) if m.group(1) else m.group(3)) for m in _REF.finditer(expr)]


def _choice(raw: dict[str, Any], key: str, allowed: tuple[str, ...], where: str, default: str | None = None) -> str:
    val = raw.get(key, default) if default is not None else _req(raw, key, where)
    if val not in allowed:
        raise SpecError(f"{where} 的“{key}”为“{val}”，应为 {'/'.join(allowed)} 之一")
    return val


def _loop(raw: dict[str, Any], where: str, fmt: Format) -> tuple[str, tuple[str, ...]]:
    """A rule's for_each: one variable over a list, or over the cell ids a glob matches."""
    fe = raw.get("for_each", {})
    if len(fe) > 1:
        raise SpecError(f"{where} 的 for_each 只能有一个变量")
    if not fe:
        return "", ()
    var, spec_val = next(iter(fe.items()))
    if not isinstance(spec_val, str):
        return var, tuple(str(v) for v in spec_val)
    values = tuple(fmt.match(spec_val))
    if not values:
        raise SpecError(f"{where} 的 for_each “{spec_val}” 没有匹配任何单元格")
    return var, values


def _check_refs(rule: Rule, where: str, fmt: Format) -> None:
    """Every reference of every instance must resolve, so a typo fails at load, not at check time."""
    for inst in rule.instances():
        for side in (rule.left, rule.right, rule.at):
            expr = side.format(**inst) if inst else side
            for func, arg in rule_refs(expr):
                arg = arg.strip()
                targets = fmt.match(arg) if func == "sum" else ([arg] if arg in fmt.cells else [])
                if not targets:
                    raise SpecError(f"{where}：表达式“{expr}”引用的“{arg}”不存在")
                if func in ("cached", "parts") and not fmt.cells[arg].is_total:
                    raise SpecError(f"{where}：{func}({arg}) 只能用于总计单元格")
        at = rule.at.format(**inst) if inst else rule.at
        if at not in fmt.cells:
            raise SpecError(f"{where}：定位单元格“{at}”不存在")


def default_kind(severity: str) -> str:
    """The kind a finding has when its definition does not say: an 错误 must be corrected, a 警告 or
    提示 is verified and explained (which is what those severities always meant)."""
    return "强制性" if severity == "错误" else "核实性"


def _kind(raw: dict[str, Any], where: str) -> str:
    return _choice(raw, "kind", KINDS, where, default=default_kind(raw.get("severity", "")))


def _likely_scale(raw: dict[str, Any], where: str) -> float:
    scale = raw.get("likely_scale", 0.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 <= scale < 1e9:
        raise SpecError(f"{where} 的 likely_scale 应为正数，例如 0.0001（元换算为万元）")
    return float(scale)


def _load_rule(raw: dict[str, Any], where: str, fmt: Format) -> Rule:
    code = _req(raw, "code", where)
    where = f"{where} 规则 {code}"
    loop_var, loop_values = _loop(raw, where, fmt)
    rule = Rule(
        code=code,
        title=_req(raw, "title", where),
        severity=_choice(raw, "severity", SEVERITIES, where),
        basis=raw.get("basis", ""),
        loop_var=loop_var,
        loop_values=loop_values,
        summary_member=raw.get("summary_member", ""),
        left=_req(raw, "left", where),
        operator=_choice(raw, "operator", OPERATORS, where),
        right=_req(raw, "right", where),
        missing=_choice(raw, "missing", MISSING, where, default="zero"),
        at=_req(raw, "at", where),
        message=_req(raw, "message", where),
        instruction=_req(raw, "instruction", where),
        example=raw.get("example", ""),
        unit_types=tuple(raw.get("unit_types", ())),
        kind=_kind(raw, where),
        likely_scale=_likely_scale(raw, where),
    )
    _check_refs(rule, where, fmt)
    return rule


def _load_chart(raw: dict[str, Any], idx: int, where: str, fmt: Format) -> Chart:
    cw = f"{where} 第{idx + 1}个图表"
    typ = _req(raw, "type", cw)
    if typ not in ("column", "bar", "pie"):
        raise SpecError(f"{cw} 的类型“{typ}”无效")
    by_unit = tuple(raw.get("by_unit", ()))
    for cid in by_unit:
        if cid not in fmt.cells:
            raise SpecError(f"{cw} 引用的单元格“{cid}”不存在")
    groups = []
    for g in raw.get("groups", ()):
        ids = tuple(fmt.match(g))
        if not ids:
            raise SpecError(f"{cw} 的分组“{g}”没有匹配任何单元格")
        groups.append(ids)
    labels = tuple(raw.get("labels", ()))
    names = tuple(raw.get("series_names", ()))
    if groups and len(labels) != len(groups):
        raise SpecError(f"{cw} 的 labels 数量应与 groups 相同")
    if by_unit and len(names) != len(by_unit):
        raise SpecError(f"{cw} 的 series_names 数量应与 by_unit 相同")
    return Chart(typ, _req(raw, "title", cw), by_unit, names, tuple(groups), labels)


def _load_kinds(raw: dict[str, Any], where: str) -> dict[str, Kind]:
    kinds = {}
    for kid, k in _req(raw, "kinds", where, dict).items():
        kw = f"{where} 类型 {kid}"
        kinds[kid] = Kind(
            id=kid,
            unit=_req(k, "unit", kw),
            integer=bool(k.get("integer", True)),
            num_format=k.get("num_format", "0"),
            input_title=_req(k, "input_title", kw),
            input_message=_req(k, "input_message", kw),
            error_title=_req(k, "error_title", kw),
            error_message=_req(k, "error_message", kw),
        )
    return kinds


def _load_cover(raw: dict[str, Any], where: str) -> Cover:
    cov = _req(raw, "cover", where, dict)
    first = int(cov.get("fields_first_row", 4))
    fields = []
    for i, f in enumerate(_req(cov, "fields", where, list)):
        fw = f"{where} 封面字段{i + 1}"
        fields.append(
            CoverField(
                id=_req(f, "id", fw),
                label=_req(f, "label", fw),
                row=first + i,
                source=f.get("source", ""),
                editable=bool(f.get("editable", False)),
                required=bool(f.get("required", False)),
                kind=f.get("kind", "text"),
                input_message=f.get("input_message", ""),
            )
        )
    for need in ("unit_name", "unit_code", "year"):
        if need not in {f.source for f in fields}:
            raise SpecError(f"{where} 封面缺少来源为 {need} 的字段")
    return Cover(
        sheet_name=_req(cov, "sheet_name", where),
        title=_req(cov, "title", where),
        subtitle=cov.get("subtitle", ""),
        col_widths=tuple(float(w) for w in cov.get("col_widths", ())),
        instructions_title=cov.get("instructions_title", "填报说明"),
        instructions=tuple(cov.get("instructions", ())),
        fields=tuple(fields),
    )


def _read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
        return text, tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"无法读取格式定义文件 {path.name}：{e}") from e
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"格式定义文件 {path.name} 有语法错误：{e}") from e


def _index_cells(fmt: Format, where: str) -> None:
    """Cell ids unique across sheets; a total may sum totals (the corner cell), but never itself."""
    for s in fmt.sheets:
        for c in s.cells:
            if c.id in fmt.cells:
                raise SpecError(f"{where} 中单元格 id “{c.id}” 重复")
            fmt.cells[c.id] = c
    for c in fmt.totals:
        seen, stack = set(), list(c.parts)
        while stack:
            p = stack.pop()
            if p == c.id:
                raise SpecError(f"{where}：总计 {c.id} 循环引用了自身")
            if p not in seen:
                seen.add(p)
                stack.extend(fmt.cells[p].parts)


def _attach_rules(fmt: Format, raw: dict[str, Any], where: str) -> None:
    rules = tuple(_load_rule(r, where, fmt) for r in raw.get("rules", []))
    codes = [r.code for r in rules]
    if len(set(codes)) != len(codes):
        raise SpecError(f"{where} 中规则代码重复")
    object.__setattr__(fmt, "rules", rules)
    object.__setattr__(fmt, "charts", tuple(_load_chart(c, i, where, fmt) for i, c in enumerate(raw.get("charts", []))))
    for s in fmt.sheets:
        if s.selfcheck and s.selfcheck.rule not in codes:
            raise SpecError(f"{where} 工作表 {s.id} 的自检引用了不存在的规则 {s.selfcheck.rule}")


def load_format(path: Path) -> Format:
    """Load and validate one format definition file."""
    where = path.name
    text, raw = _read_toml(path)
    head = _req(raw, "format", where, dict)
    kinds = _load_kinds(raw, where)
    cover = _load_cover(raw, where)
    sheets = tuple(_load_sheet(s, i, where, kinds) for i, s in enumerate(_req(raw, "sheets", where, list)))
    names = [cover.sheet_name] + [s.name for s in sheets]
    if len(set(names)) != len(names):
        raise SpecError(f"{where} 中工作表名称重复")
    fmt = Format(
        id=_req(head, "id", where),
        version=_req(head, "version", where),
        template_version=str(_req(head, "template_version", where)),
        title=_req(head, "title", where),
        basis=head.get("basis", ""),
        status=head.get("status", "current"),
        valid_from_year=int(head.get("valid_from_year", 0)),
        protection_password=head.get("protection_password", ""),
        doc_title=head.get("doc_title", ""),
        kinds=kinds,
        cover=cover,
        sheets=sheets,
        rules=(),
        source=where,
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        sections=tuple(head.get("sections", ())),
    )
    _index_cells(fmt, where)
    _attach_rules(fmt, raw, where)
    return fmt


def load_checks(path: Path) -> dict[str, CheckType]:
    """Load the catalogue of non-arithmetic findings."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError(f"无法读取检查目录 {path.name}：{e}") from e
    out = {}
    for code, d in raw.items():
        w = f"{path.name} [{code}]"
        sev = _req(d, "severity", w)
        if sev not in SEVERITIES:
            raise SpecError(f"{w} 的严重程度“{sev}”无效")
        tags = d.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise SpecError(f"{w} 的 tags 应为文字列表")
        texts = (_req(d, "title", w), _req(d, "message", w), _req(d, "instruction", w))
        out[code] = CheckType(code, sev, *texts, tuple(tags), _kind(d, w))
    return out


@dataclass(frozen=True)
class Conventions:
    """Format-independent facts of nianbao's workbooks (templates/workbook.toml)."""

    prefix: str
    cover_label_col: int
    cover_value_col: int
    detail_sheet: str
    detail_id_row: int  # 1-based
    detail_total_label: str
    detail_fixed: tuple[tuple[str, str], ...]  # (id, Chinese heading)
    summary_names: dict[str, str]  # explain/status/charts/detail/findings → sheet name
    summary_order: tuple[str, ...]
    findings_sheet: str

    @property
    def summary_sheets(self) -> tuple[str, ...]:
        return tuple(self.summary_names[k] for k in self.summary_order)


NOT_FORMATS = ("checks.toml", "workbook.toml")


@cache
def conventions() -> Conventions:
    path = templates_dir() / "workbook.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError(f"无法读取 {path.name}：{e}") from e
    w = path.name
    det, cov, summ = _req(raw, "detail", w, dict), _req(raw, "cover", w, dict), _req(raw, "summary", w, dict)
    findings = _req(_req(raw, "annotated", w, dict), "findings_sheet", w)
    names = {k: _req(summ, k, w) for k in ("explain", "status", "charts")}
    names |= {"detail": _req(det, "sheet", w), "findings": findings}
    order = tuple(_req(summ, "order", w, list))
    if set(order) != set(names):
        raise SpecError(f"{w} 的 [summary].order 应包含且只包含：{'、'.join(names)}")
    return Conventions(
        prefix=_req(_req(raw, "properties", w, dict), "prefix", w),
        cover_label_col=_req(cov, "label_col", w, int),
        cover_value_col=_req(cov, "value_col", w, int),
        detail_sheet=_req(det, "sheet", w),
        detail_id_row=_req(det, "id_row", w, int),
        detail_total_label=_req(det, "total_label", w),
        detail_fixed=tuple((_req(f, "id", w), _req(f, "label", w)) for f in _req(det, "fixed", w, list)),
        summary_names=names,
        summary_order=order,
        findings_sheet=findings,
    )


@cache
def formats() -> dict[str, Format]:
    """All format definitions in ``templates/``, by format id (parsed once per process)."""
    out: dict[str, Format] = {}
    for p in sorted(templates_dir().glob("*.toml")):
        if p.name in NOT_FORMATS:
            continue
        f = load_format(p)
        out[f.id] = f
    if not out:
        raise SpecError(f"在 {templates_dir()} 中没有找到格式定义文件")
    return out


@cache
def checks() -> dict[str, CheckType]:
    return load_checks(templates_dir() / "checks.toml")


@cache
def tagged(tag: str) -> frozenset[str]:
    """The finding codes of the catalogue that carry ``tag``."""
    return frozenset(c.code for c in checks().values() if tag in c.tags)


def finding_kind(code: str, severity: str) -> str:
    """The kind (强制性/核实性) of a finding code: from the catalogue of checks, else from the rule of that
    code (the current format's first), else by its severity. Findings stored before kinds existed get
    theirs from here."""
    ct = checks().get(code)
    if ct is not None:
        return ct.kind
    fmts = sorted(formats().values(), key=lambda f: (f.status != "current", -f.valid_from_year))
    for fmt in fmts:
        for r in fmt.rules:
            if r.code == code:
                return r.kind
    return default_kind(severity)


def current_format() -> Format:
    """The newest format with status 'current'."""
    cur = [f for f in formats().values() if f.status == "current"]
    if not cur:
        raise SpecError("没有状态为 current 的格式定义")
    return max(cur, key=lambda f: f.valid_from_year)
