"""Walk the format definition over a token stream: find each row's label, take its numbers.

Labels are matched fuzzily (punctuation width, spaces, line breaks, small typos, a missing
numbering prefix, the aliases seen in real reports). Blank cells stay missing (None), never
0. Digits that an extractor ran together ('0000000', '58700166') are split: a row's own
totals fix most splits; what is left is settled jointly by every equality of the format
(column sums, 一+二 = 三（七）+四, the 表四 totals). Of the splits left, those that break a
plausibility bound of the format (I9, I9b) are set aside when exactly one reading of the row keeps
them all — said in a 提示, since a table that truly breaks the bound is then misread. A cell whose
digits still split more than one way is unknown: no reading is picked among the plausible ones.
No number takes digits it cannot be sure of: a grouped number ('1,888') is one cell as it stands,
and the last number of a copied text that stops right after it may be cut short ('44' shown as
'4'), so it is unknown. A printed total is read as printed, also when it is not the sum of its parts.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

from ..aliases import row_aliases
from ..findings import Finding, make
from ..report import Number
from ..spec import Cell, Format, Label, Sheet
from .tokens import Tok, norm

MAX_SPLITS = 64  # candidate splits kept per row; more means the row is unknown
MAX_SOLUTIONS = 256  # joint solutions over all ambiguous rows; more means they stay unknown
MAX_DIGITS = 9  # no single cell of these tables has more digits


@dataclass
class Pending:
    """A row whose digits split more than one way under its own totals."""

    cells: list[Cell]
    splits: list[list[Number | None]]
    label: str
    raw: str


@dataclass
class Parsed:
    values: dict[str, Number | None] = field(default_factory=dict)  # read cells (inputs and printed totals)
    problems: list[Finding] = field(default_factory=list)
    rows_read: int = 0
    pending: list[Pending] = field(default_factory=list)
    ambiguous: set[str] = field(default_factory=set)  # cells left unknown: their digits split several ways
    found: set[str] = field(default_factory=set)  # "sheet.row" of every row whose label was found
    candidates: dict[str, set[Number | None]] = field(default_factory=dict)  # ambiguous cell → every value it may have


# ---------------------------------------------------------------- labels


_ENUM = re.compile(r"^(?:\d{1,2}[.,]|[一二三四五六七八九十]{1,2},|\([一二三四五六七八九十]{1,2}\))")


def strip_enum(text: str) -> str:
    """'1.属于国家秘密' → '属于国家秘密' (a label printed without its numbering)."""
    return _ENUM.sub("", text, count=1)


def row_label(sheet: Sheet, row: int) -> Label | None:
    """The label that names a data row: the right-most label cell starting on that row."""
    first_data = min(c.col for c in sheet.cells if c.row == row)
    on_row = [lb for lb in sheet.labels if lb.row == row and lb.col < first_data]
    return max(on_row, key=lambda lb: lb.col) if on_row else None


@cache
def _n(label: str) -> str:
    return norm(label)


def matches_n(a: str, b: str) -> bool:
    """Does the (normalized) token ``a`` name the (normalized) label ``b``?"""
    if not a:
        return False
    if a == b:
        return True
    if len(a) > 3 * len(b) + 10:  # a paragraph is never a label (and difflib on it is slow)
        return False
    sb = strip_enum(b)
    if len(sb) >= 4 and sb != b and strip_enum(a) == sb:  # the numbering missing or written differently
        return True
    if b.startswith(a) and (len(a) >= 6 or (len(a) >= 4 and len(a) >= 0.5 * len(b))):  # a label broken across lines
        return True
    if len(a) > len(b) // 2 and b[:4] in a:  # "（六）其他处理 2.申请人…": a group label run into the row label
        tail = a[a.find(b[:4]) :]
        if (b.startswith(tail) and len(tail) >= 0.5 * len(b)) or tail == b:
            return True
    return len(a) >= 4 and abs(len(a) - len(b)) <= max(3, len(b) // 4) and difflib.SequenceMatcher(None, a, b).ratio() >= 0.85


def find(toks: list[Tok], pos: int, labels: list[str], window: int) -> int | None:
    targets = [_n(lb) for lb in labels]
    for i in range(pos, min(len(toks), pos + window)):
        if toks[i].text and toks[i].digits is None and any(matches_n(toks[i].n, b) for b in targets):
            return i
    return None


# ---------------------------------------------------------------- reading a row's numbers


def read_values(toks: list[Tok], i: int, need: int, label: str, groups: frozenset[str] = frozenset()) -> tuple[list[Tok], int]:
    """The value tokens after position ``i``: numbers, digit runs and blanks, stopping at text
    or after ``need`` tokens. Skipped on the way: the rest of a label broken across lines, and a
    group label (（四）无法提供) that a PDF prints beside the middle of its rows."""
    vals: list[Tok] = []
    j = i
    nl = _n(label)
    while j < len(toks) and len(vals) < need:
        t = toks[j]
        if t.text == "" or t.digits is not None:
            vals.append(t)
        elif not (t.n and (t.n in nl or t.n in groups or _beside_group(t.n, nl, groups))):
            break
        j += 1
    return vals, j


def _beside_group(text: str, label: str, groups: frozenset[str]) -> bool:
    """'度办计其他情形)': the rest of a label broken across lines, after a piece of the tall group
    label beside it ('三、本年度办理结果' printed two characters a line in a LibreOffice PDF)."""
    for i in range(1, min(5, len(text) - 1)):
        head, rest = text[:i], text[i:]
        if len(rest) >= 2 and rest in label and not label.startswith(rest) and any(head in g for g in groups):
            return True
    return False


def plain(vals: list[Tok]) -> list[Number | None] | None:
    """The values when each token is one cell (numbers or blanks), else None."""
    out: list[Number | None] = []
    for t in vals:
        if t.text == "":
            out.append(None)
        elif t.number is None:
            return None
        else:
            out.append(t.number)
    return out


def forced_totals(cells: list[Cell], fmt: Format) -> dict[int, list[int]]:
    """Index of each total in the row whose parts all precede it in the row → the parts' indexes."""
    pos = {c.id: i for i, c in enumerate(cells)}
    out = {}
    for i, c in enumerate(cells):
        if c.is_total and all(p in pos and pos[p] < i for p in c.parts):
            out[i] = [pos[p] for p in c.parts]
    return out


def split_row(cells: list[Cell], vals: list[Tok], fmt: Format, totals: bool = True) -> list[list[Number | None]]:
    """Every way to cut the value tokens into ``len(cells)`` numbers: each token gives at least
    one number, numbers have no leading zeros, decimals only where the cell holds an amount,
    and (``totals``) a total whose parts precede it in the row must equal their sum. At most MAX_SPLITS."""
    splitter = _Splitter(
        ["" if t.text == "" else (t.digits or "") for t in vals],
        len(cells),
        forced_totals(cells, fmt) if totals else {},
        [fmt.kinds[c.kind].integer for c in cells],
        [t.grouped for t in vals],
    )
    splitter.gen(0, 0, 0)
    return splitter.out


@dataclass
class _Splitter:
    raw: list[str]  # per token: its digits, or '' for a blank cell
    need: int
    forced: dict[int, list[int]]
    integer: list[bool]
    whole: list[bool]  # per token: one cell as it stands ('1,888'), never cut
    out: list[list[Number | None]] = field(default_factory=list)
    acc: list[Number | None] = field(default_factory=list)
    ti: int = 0  # the token being cut

    def pieces(self, rest: str, ci: int) -> list[str]:
        """Candidate texts for cell ``ci`` at the start of ``rest``."""
        if ci in self.forced:
            parts = [self.acc[p] for p in self.forced[ci]]
            if all(p is not None for p in parts):
                s = _num_text(sum(parts))  # type: ignore[arg-type]
                return [s] if rest.startswith(s) else []
        if self.whole[self.ti]:
            return [rest]
        return [rest[:n] for n in range(1, min(len(rest), MAX_DIGITS + 3) + 1)]

    def ok(self, piece: str, rest: str, ci: int) -> bool:
        if piece.endswith(".") or rest[len(piece) :].startswith("."):
            return False
        if "." in piece and self.integer[ci]:
            return False
        whole = piece.split(".")[0]
        return not (len(whole) > 1 and whole[0] == "0") and len(whole) <= MAX_DIGITS

    def feasible(self, ti: int, off: int, ci: int) -> bool:
        """Enough cells left for the tokens left (each gives one), and enough digits for the cells."""
        cells_left, tokens_left = self.need - ci, len(self.raw) - ti
        digits_left = sum(max(1, len(r)) for r in self.raw[ti:]) - off
        return tokens_left - (1 if off else 0) <= cells_left <= digits_left

    def gen(self, ti: int, off: int, ci: int) -> None:
        if len(self.out) >= MAX_SPLITS:
            return
        if ci == self.need or ti == len(self.raw):
            if ci == self.need and ti == len(self.raw):
                self.out.append(list(self.acc))
            return
        if not self.feasible(ti, off, ci):
            return
        rest = self.raw[ti][off:]
        self.ti = ti
        options = [None] if self.raw[ti] == "" else [p for p in self.pieces(rest, ci) if self.ok(p, rest, ci)]
        for piece in options:
            self.acc.append(None if piece is None else _value(piece))
            if piece is None or len(piece) == len(rest):
                self.gen(ti + 1, 0, ci + 1)
            else:
                self.gen(ti, off + len(piece), ci + 1)
            self.acc.pop()


def _value(piece: str) -> Number:
    return float(piece) if "." in piece else int(piece)


def _num_text(v: Number) -> str:
    if isinstance(v, float):
        v = round(v, 6)
        return str(int(v)) if v.is_integer() else f"{v:.6f}".rstrip("0").rstrip(".")
    return str(v)


def visible_prefix(vals: list[Tok]) -> list[Number | None] | None:
    """The values of a row cut off by the end of the text: plain numbers, or runs of zeros
    (each '0' is one cell: no number starts with 0). Other runs are ambiguous → None."""
    out: list[Number | None] = []
    for t in vals:
        if t.text == "":
            out.append(None)
        elif t.number is not None and (t.loose is False or len(t.text.strip()) == 1):
            out.append(t.number)
        elif t.digits is not None and set(t.digits) == {"0"}:
            out.extend([0] * len(t.digits))
        else:
            return None
    return out


# ---------------------------------------------------------------- the walk


@dataclass
class Walker:
    fmt: Format
    toks: list[Tok]
    name: str
    out: Parsed = field(default_factory=Parsed)
    open_end: bool = False  # the text stops right after a number (no separator after it)
    pos: int = 0
    ended: bool = False

    def __post_init__(self) -> None:
        self.aliases = row_aliases(self.fmt)
        self.values_after = [0] * (len(self.toks) + 1)  # how many value tokens remain from each position on
        for i in range(len(self.toks) - 1, -1, -1):
            self.values_after[i] = self.values_after[i + 1] + (self.toks[i].digits is not None)

    def run(self) -> Parsed:
        for sheet in self.fmt.sheets:
            if not sheet.published:  # e.g. 信息处理费: reported in prose, not as a table
                continue
            self.anchor(sheet)
            for row in sorted({c.row for c in sheet.cells}):
                cells = sorted((c for c in sheet.cells if c.row == row), key=lambda c: c.col)
                if not self.ended:
                    self.row(sheet, cells)
        return self.out

    def groups(self, sheet: Sheet) -> frozenset[str]:
        """The sheet's row-group labels: labels that span several data rows."""
        return frozenset(_n(lb.text) for lb in sheet.labels if lb.rowspan > 1 and lb.row >= min(c.row for c in sheet.cells))

    def anchor(self, sheet: Sheet) -> None:
        """Move to the sheet's header (prose before a table may use its row labels)."""
        first_data = min(c.row for c in sheet.cells)
        header = [lb.text for lb in sheet.labels if lb.row < first_data and len(norm(lb.text)) >= 4]
        k = find(self.toks, self.pos, header, window=3000) if header else None
        if k is not None:
            self.pos = k

    def row(self, sheet: Sheet, cells: list[Cell]) -> None:
        if self.values_after[min(self.pos, len(self.toks))] == 0 and self.out.rows_read:
            # the text stops here (a page cut short): one finding, the rest stays unknown
            self.unreadable(
                sheet,
                cells[0],
                f"原文在{sheet.name}“{cells[0].row_label.split(' ')[-1] or sheet.title}”之前结束（可能被截断），此后各行缺失",
            )
            self.ended = True
            return
        lb = row_label(sheet, cells[0].row)
        located = self.locate_table4(sheet, cells) if lb is None else self.locate(sheet, cells, lb)
        if located is None:
            return
        vals, end, label = located
        self.out.found.add(f"{sheet.id}.{cells[0].row_id}")
        self.take(sheet, cells, vals, end, label)

    def locate(self, sheet: Sheet, cells: list[Cell], lb: Label) -> tuple[list[Tok], int, str] | None:
        labels = [lb.text, *self.aliases.get((sheet.id, cells[0].row_id), [])]
        start = self.pos
        for _attempt in range(4):  # a prose mention of the label has no numbers after it: try the next one
            k = find(self.toks, start, labels, window=600)
            if k is None:
                break
            vals, end = read_values(self.toks, k + 1, len(cells), lb.text, self.groups(sheet))
            if not vals:
                vals, end = self.numbers_above(k, len(cells)), k + 1
            if vals:
                return vals, end, lb.text
            if not self.toks[k].loose:  # a table cell without numbers: the row is blank, not elsewhere
                break
            start = k + 1
        if k is None and start == self.pos and (by_pos := self.by_position(sheet, cells)) is not None:
            return by_pos
        self.unreadable(
            sheet, cells[0], f"找不到“{lb.text}”一行" if k is None and start == self.pos else f"“{lb.text}”一行没有数字"
        )
        return None

    def by_position(self, sheet: Sheet, cells: list[Cell]) -> tuple[list[Tok], int, str] | None:
        """A first data row printed without its label (an empty label cell): its numbers stand right
        after the column headers and right before the next row's label. Read by position, with a 提示."""
        row = cells[0].row
        header = [lb for lb in sheet.labels if lb.row == row - 1]
        following = [c for c in sheet.cells if c.row == row + 1]
        if not header or any(c.row == row - 1 for c in sheet.cells) or not following:
            return None
        nxt = row_label(sheet, row + 1)
        last = max(header, key=lambda lb: lb.col)
        h = find(self.toks, self.pos, [last.text], window=12)
        if nxt is None or h is None:
            return None
        labels = [_n(x) for x in (nxt.text, *self.aliases.get((sheet.id, following[0].row_id), []))]
        for start in (h + 1, h + 2):  # the empty label cell may survive as a blank cell ('cell |' shape)
            vals, end = read_values(self.toks, start, len(cells), last.text)
            fits = len(vals) == len(cells) or (vals and split_row(cells, vals, self.fmt))
            if fits and end < len(self.toks) and any(matches_n(self.toks[end].n, b) for b in labels):
                break
            if start >= len(self.toks) or self.toks[start].text != "":
                return None
        else:
            return None
        label = cells[0].row_label.split(" ")[-1]
        self.out.problems.append(make("row-label-missing", where=cells[0], file=self.name))
        return vals, end, label

    def numbers_above(self, k: int, need: int) -> list[Tok]:
        """pdftotext puts a row's numbers on the line above its label when a tall merged label
        beside it is centred there: take the unconsumed numbers of the line just before."""
        line = self.toks[k].line
        before = [t for t in self.toks[self.pos : k] if t.line < line]
        if not before:
            return []
        last = before[-1].line
        nums = [t for t in before if t.line == last and t.digits is not None]
        return nums if len(nums) == need and all(t.number is not None and not t.loose for t in nums) else []

    def locate_table4(self, sheet: Sheet, cells: list[Cell]) -> tuple[list[Tok], int, str] | None:
        """表四 has no row label: its numbers follow the last header label."""
        header = [x for x in sheet.labels if x.row < cells[0].row]
        last = max(header, key=lambda x: (x.row, x.col))
        start = find(self.toks, self.pos, [x.text for x in header if x.row == sheet.first_row], window=4000)
        if start is None:
            self.unreadable(sheet, cells[0], f"找不到{sheet.name}（{sheet.title}）的表头")
            return None
        k = start
        while k < len(self.toks) and self.toks[k].digits is None and self.toks[k].text != "":
            k += 1
        vals, end = read_values(self.toks, k, len(cells), last.text)
        return vals, end, last.text

    def cut_at_end(self, vals: list[Tok], end: int) -> bool:
        """The row's last number is where the text stops, with nothing after it: a page cut short
        may have cut that number too ('44' shown as '4'), so it is not a figure. Zeros are whole
        (no number starts with 0)."""
        last = vals[-1] if vals else None
        return self.open_end and end >= len(self.toks) and last is self.toks[-1] and set(last.digits or "0") != {"0"}

    def take(self, sheet: Sheet, cells: list[Cell], vals: list[Tok], end: int, label: str) -> None:
        out = self.out
        if self.cut_at_end(vals, end):
            self.truncated(sheet, cells, vals[:-1], label, whole=True)
            return
        values = plain(vals) if len(vals) == len(cells) else None
        if values is None:
            splits = split_row(cells, vals, self.fmt) or self.as_printed(cells, vals)
            if end >= len(self.toks) and len(splits) != 1:  # the text ends inside this row
                self.truncated(sheet, cells, vals, label)
                return
            raw = " ".join(t.text for t in vals)
            if not splits and sum(max(1, len(t.digits or "")) for t in vals) < len(cells):
                self.short(cells, vals, label)
                self.pos = max(self.pos, end)
                return
            if not splits:
                self.unreadable(sheet, cells[0], f"“{label}”一行读到“{raw}”，无法拆分为{len(cells)}个数字")
                self.pos = max(self.pos, end)
                return
            if len(splits) > 1:  # decided later by the other rows
                out.pending.append(Pending(cells, splits, label, raw))
                out.rows_read += 1
                self.pos = end
                return
            values = splits[0]
        for c, v in zip(cells, values, strict=True):
            out.values[c.id] = v
            if v is None:
                out.problems.append(make("value-missing", where=c, file=self.name))
        out.rows_read += 1
        self.pos = end

    def as_printed(self, cells: list[Cell], vals: list[Tok]) -> list[list[Number | None]]:
        """A row whose printed total is not the sum of its parts has no split that keeps it; when
        the row is one run of digits that cuts only one way ('0000001' into seven cells), that is
        what was printed: read it, and the rules report the total."""
        if len(vals) != 1:  # digits in several tokens: a lost blank cell could explain the sums as well
            return []
        free = split_row(cells, vals, self.fmt, totals=False)
        return free if len(free) == 1 else []

    def short(self, cells: list[Cell], vals: list[Tok], label: str) -> None:
        """Fewer digits than cells, and the next row follows: the row has empty cells, but the
        text no longer shows which ones (separators lost). Every cell stays unknown; one 提示."""
        f = make("value-missing", where=cells[0], file=self.name)
        digits = sum(max(1, len(t.digits or "")) for t in vals)
        f.message = (
            f"“{label}”一行只有{digits}个数字，应有{len(cells)}个：原文有单元格为空（未填0），"
            "且分隔符已丢失，无法确定是哪几格，该行各单元格按未知处理。"
        )
        self.out.problems.append(f)

    def truncated(self, sheet: Sheet, cells: list[Cell], vals: list[Tok], label: str, whole: bool = False) -> None:
        """The text ends inside this row: keep the visible cells when they are certain (``whole``:
        ``vals`` are the complete tokens before a number the end may have cut)."""
        seen = visible_prefix(vals) or []
        for c, v in zip(cells, seen[: len(cells) - (0 if whole else 1)], strict=False):
            self.out.values[c.id] = v
        self.unreadable(sheet, cells[min(len(seen), len(cells) - 1)], f"原文在“{label}”一行中途截断，此后各行缺失")
        self.ended = True

    def unreadable(self, sheet: Sheet, cell: Cell, detail: str) -> None:
        self.out.problems.append(
            make("table-unreadable", file=self.name, sheet=sheet.name, cell=cell.a1, row_label=cell.row_label, detail=detail)
        )


def walk(fmt: Format, toks: list[Tok], name: str, open_end: bool = False) -> Parsed:
    """Read every row of the format from the tokens. ``open_end``: the text stops right after a
    digit, so its last number may be cut short."""
    return Walker(fmt, toks, name, open_end=open_end).run()


# ---------------------------------------------------------------- rows that split several ways

Constraint = tuple[tuple[str, float], ...]  # sum(sign * value) == 0 (an equality) or <= 0 (a bound)


@dataclass(frozen=True)
class Bound:
    """A 警告 rule ``a <= b + c`` over plain cells (I9, I9b): a reading that breaks it is kept
    only when no reading keeps it."""

    terms: Constraint
    code: str
    title: str


def _rule_terms(rule, inst: dict, fmt: Format) -> Constraint | None:
    """``left - right`` as (cell, sign) terms, or None when a side holds anything but plain cells."""
    from ..rules import parse

    terms = []
    for side_sign, expr in ((1, rule.left), (-1, rule.right)):
        for sign, source, ids in parse(expr.format(**inst) if inst else expr, fmt):
            if source != "v" or len(ids) != 1:
                return None
            terms.append((ids[0], sign * side_sign))
    return tuple(terms) or None


@cache
def _constraints(fmt_id: str, digest: str) -> tuple[Constraint, ...]:
    """Every equality of the format: each total equals its parts, and each 错误 rule ``a + b == c + d``
    over plain cells (O1: 一 + 二 = 三（七）+ 四)."""
    from ..spec import formats

    fmt = formats()[fmt_id]
    out: list[Constraint] = [((c.id, 1), *((p, -1) for p in c.parts)) for c in fmt.totals]
    for rule in fmt.rules:
        if rule.severity == "错误" and rule.operator == "==":
            out += [terms for inst in rule.instances() if (terms := _rule_terms(rule, inst, fmt))]
    return tuple(out)


@cache
def _bounds(fmt_id: str, digest: str) -> tuple[Bound, ...]:
    """The format's plausibility bounds between plain cells of one report, for every unit type
    (I9: 废止 ≤ 有效 + 制发; I9b: 制发 ≤ 有效 + 废止), each as ``sum(sign * value) <= 0``."""
    from ..spec import formats

    fmt = formats()[fmt_id]
    out: list[Bound] = []
    for rule in fmt.rules:
        if rule.severity != "警告" or rule.operator not in ("<=", ">=") or rule.unit_types:
            continue
        flip = 1 if rule.operator == "<=" else -1
        for inst in rule.instances():
            if terms := _rule_terms(rule, inst, fmt):
                out.append(Bound(tuple((cid, s * flip) for cid, s in terms), rule.code, rule.title))
    return tuple(out)


@dataclass
class Solver:
    """Choose one split per pending row so that every checkable equality holds; collect all such
    choices (up to a limit) and keep only what they agree on."""

    fmt: Format
    parsed: Parsed
    budget: int = 200_000

    def __post_init__(self) -> None:
        pend = self.parsed.pending
        self.where = {c.id: (ri, ci) for ri, p in enumerate(pend) for ci, c in enumerate(p.cells)}
        self.checks: dict[int, list[Constraint]] = {}
        for con in _constraints(self.fmt.id, self.fmt.digest):
            rows = {self.where[cid][0] for cid, _ in con if cid in self.where}
            known = all(cid in self.where or self.parsed.values.get(cid) is not None for cid, _ in con)
            if rows and known:
                self.checks.setdefault(max(rows), []).append(con)
        self.choice = [0] * len(pend)
        self.solutions: list[tuple[int, ...]] = []

    def value(self, cid: str, choice: Sequence[int] | None = None) -> Number | None:
        """A cell's figure under ``choice`` (a split per pending row; the search's current one by default)."""
        if cid in self.where:
            ri, ci = self.where[cid]
            return self.parsed.pending[ri].splits[(self.choice if choice is None else choice)[ri]][ci]
        return self.parsed.values.get(cid)

    def holds(self, con: Constraint) -> bool:
        vals = [(self.value(cid), sign) for cid, sign in con]
        if any(v is None for v, _ in vals):
            return True
        return abs(sum(v * s for v, s in vals)) <= 1e-6  # type: ignore[operator]

    def search(self, ri: int = 0) -> None:
        if len(self.solutions) > MAX_SOLUTIONS or self.budget <= 0:
            return
        if ri == len(self.parsed.pending):
            self.solutions.append(tuple(self.choice))
            return
        for si in range(len(self.parsed.pending[ri].splits)):
            self.budget -= 1
            self.choice[ri] = si
            if all(self.holds(c) for c in self.checks.get(ri, [])):
                self.search(ri + 1)

    def complete(self) -> bool:
        return len(self.solutions) <= MAX_SOLUTIONS and self.budget > 0

    def bound_rows(self) -> dict[frozenset[int], list[Bound]]:
        """The format's bounds that touch a pending row, grouped by the pending rows they touch
        (I9 and I9b of 行政规范性文件 touch that row alone)."""
        groups: dict[frozenset[int], list[Bound]] = {}
        for bound in _bounds(self.fmt.id, self.fmt.digest):
            rows = frozenset(self.where[cid][0] for cid, _ in bound.terms if cid in self.where)
            if rows:
                groups.setdefault(rows, []).append(bound)
        return groups

    def broken(self, solution: tuple[int, ...], bounds: list[Bound]) -> list[Bound]:
        """Which of ``bounds`` this joint reading breaks (a blank counts as no figure: not checked)."""
        out = []
        for bound in bounds:
            vals = [(self.value(cid, solution), sign) for cid, sign in bound.terms]
            if all(v is not None for v, _ in vals) and sum(v * s for v, s in vals) > 1e-6:  # type: ignore[operator]
                out.append(bound)
        return out

    def plausible(self) -> dict[int, dict[tuple, list[Bound]]]:
        """When the format's equalities leave several readings, drop those that break a bound of
        the format (a reading in which more documents were issued this year than are in force or
        repealed at its end) — row by row, and only where some reading of those rows keeps all
        their bounds (a row that breaks a bound every way stays unknown, and does not hold back the
        others). → pending row → its readings set aside → the bounds each breaks."""
        out: dict[int, dict[tuple, list[Bound]]] = {}
        for rows, bounds in sorted(self.bound_rows().items(), key=lambda kv: sorted(kv[0])):
            breaks = {s: b for s in self.solutions if (b := self.broken(s, bounds))}
            if not breaks or len(breaks) == len(self.solutions):
                continue
            self.solutions = [s for s in self.solutions if s not in breaks]
            for ri in rows:
                still = {s[ri] for s in self.solutions}
                split_of = self.parsed.pending[ri].splits
                for s, found in breaks.items():
                    if s[ri] not in still:
                        mine = [b for b in found if any(self.where.get(cid, (-1,))[0] == ri for cid, _ in b.terms)]
                        out.setdefault(ri, {}).setdefault(tuple(split_of[s[ri]]), []).extend(mine)
        return out


def settle(fmt: Format, parsed: Parsed, name: str) -> None:
    """Rows whose run-together digits split several ways: keep every cell on which all the
    splits that satisfy the format's equalities agree (preferring readings that keep the format's
    plausibility bounds, with a 提示 naming what was dropped for each row so settled); the others stay
    unknown (one finding per row)."""
    if not parsed.pending:
        return
    solver = Solver(fmt, parsed)
    solver.search()
    sure = solver.complete() and bool(solver.solutions)
    set_aside = solver.plausible() if sure else {}
    settled: set[int] = set()
    for ri, p in enumerate(parsed.pending):
        unknown = []
        for ci, c in enumerate(p.cells):
            seen = {p.splits[s[ri]][ci] for s in solver.solutions} if sure else set()
            if len(seen) == 1:
                parsed.values[c.id] = v = next(iter(seen))
                if v is None:
                    parsed.problems.append(make("value-missing", where=c, file=name))
            else:
                unknown.append(c)
                parsed.ambiguous.add(c.id)
                if seen:
                    parsed.candidates[c.id] = seen
        if not unknown:
            settled.add(ri)
            continue
        cols = "、".join(c.col_label.split(" ")[-1] or c.row_label.split(" ")[-1] for c in unknown)
        sheet = fmt.sheet(p.cells[0].sheet_id)
        parsed.problems.append(
            make(
                "table-unreadable",
                file=name,
                sheet=sheet.name,
                cell=unknown[0].a1,
                row_label=unknown[0].row_label,
                detail=f"“{p.label}”一行的数字连在一起（“{p.raw}”），有多种拆分都符合表内的合计关系，"
                f"无法确定{cols}，这些单元格按未知处理",
            )
        )
    # said only where a reading was taken: a row still unknown has its 错误 above, not a 提示
    _report_dropped(parsed, name, {ri: r for ri, r in set_aside.items() if ri in settled})


def _report_dropped(parsed: Parsed, name: str, set_aside: dict[int, dict[tuple, list[Bound]]]) -> None:
    """One 提示 per row whose readings were narrowed by a plausibility bound: the reader of the
    audit sees which readings of that row were set aside, and which of its bounds each breaks."""
    for ri, readings in sorted(set_aside.items()):
        p = parsed.pending[ri]
        bounds = {b.code: b for found in readings.values() for b in found}
        parsed.problems.append(
            make(
                "split-plausible",
                where=p.cells[0],
                file=name,
                label=p.label,
                raw=p.raw,
                others="；".join("/".join("空" if v is None else _num_text(v) for v in r) for r in readings),
                rules="、".join(f"{b.code}（{b.title}）" for b in sorted(bounds.values(), key=lambda b: b.code)),
            )
        )
