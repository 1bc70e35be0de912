"""The published report as plain data, independent of Word and HTML.

`build_document` fills this model from a `Report`; the Word and HTML writers only render
it. Every number in the prose is a `Run` that remembers where it came from (the cell ids
of this year's or last year's report), so tests can prove that the text never states a
figure the tables do not contain, and the writers cannot re-type anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..report import Number

# What a run of text is. Every digit of the prose sits in a run of one of the numeric kinds.
TEXT = "text"
FIGURE = "figure"  # a cell value of this year's report (cells = (id,))
PREV_FIGURE = "prev_figure"  # a cell value of last year's report (cells = (id,))
TOTAL = "total"  # the sum of this year's cells (a group of 表三's results, 行政诉讼 of both kinds)
CHANGE = "change"  # |this year − last year| of the sum of cells
GROWTH = "growth"  # |change| / last year × 100, one decimal
SHARE = "share"  # sum(cells[:-1]) / cells[-1] × 100 of this year, one decimal (never 100 unless all)
DATE = "date"  # the statistical period, the report year
REF = "ref"  # a legal reference (国办公开办函〔2021〕30号)
PLACEHOLDER = "placeholder"  # 【请填写：…】 what only the office knows
WARNING = "warning"  # 【警告：…】 printed on the first page of a forced draft

NUMERIC = (FIGURE, PREV_FIGURE, TOTAL, CHANGE, GROWTH, SHARE)
PLACEHOLDER_RE = re.compile(r"【(请填写|警告)[：:]([^】]*)】")


@dataclass(frozen=True)
class Run:
    text: str
    kind: str = TEXT
    cells: tuple[str, ...] = ()
    value: Number | None = None  # the number the text shows (numeric kinds)


@dataclass(frozen=True)
class Paragraph:
    runs: tuple[Run, ...]
    style: str = "body"  # title | heading1 | heading2 | body | warning | signoff

    @property
    def text(self) -> str:
        return "".join(r.text for r in self.runs)


@dataclass(frozen=True)
class TableCell:
    """One cell of an official table; row/col are 1-based inside the table."""

    row: int
    col: int
    rowspan: int
    colspan: int
    text: str
    role: str  # header (column heading) | rowhead (row label) | value
    cell_id: str = ""  # the format's cell id, for value cells


@dataclass(frozen=True)
class Table:
    sheet_id: str
    heading: str  # the section heading it belongs to, e.g. 二、主动公开政府信息情况
    n_rows: int
    n_cols: int
    header_rows: int  # leading rows that are column headings (repeated on a new page)
    col_widths: tuple[float, ...]  # relative widths from the format definition
    landscape: bool
    cells: tuple[TableCell, ...]

    def grid(self) -> list[list[TableCell | None]]:
        """The anchor cell at each (row, col) it covers: what a reader of the table sees."""
        out: list[list[TableCell | None]] = [[None] * self.n_cols for _ in range(self.n_rows)]
        for c in self.cells:
            for r in range(c.row, c.row + c.rowspan):
                for k in range(c.col, c.col + c.colspan):
                    out[r - 1][k - 1] = c
        return out


Block = Paragraph | Table


@dataclass
class Document:
    title: str
    unit_name: str  # the name used in the title and text
    year: int
    format_id: str
    blocks: list[Block] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for the person drafting (console), never in the document
    forced: bool = False  # written although the source has 错误

    def paragraphs(self) -> list[Paragraph]:
        return [b for b in self.blocks if isinstance(b, Paragraph)]

    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]

    def runs(self) -> list[Run]:
        return [r for p in self.paragraphs() for r in p.runs]


@dataclass(frozen=True)
class Pending:
    """A placeholder or warning still in the document, with the heading it sits under."""

    kind: str  # 请填写 | 警告
    text: str
    heading: str  # '一、总体情况 （一）主动公开'; '' before the first heading (the opening paragraph)

    def __str__(self) -> str:
        return f"{self.heading}：【{self.kind}：{self.text}】" if self.heading else f"【{self.kind}：{self.text}】"

    def short(self) -> str:
        """One console line: where, and the first words of the guidance."""
        where = self.heading.replace(" ", "") if self.heading else "开头段落"
        first = re.split(r"[，；。]", self.text, maxsplit=1)[0]
        return f"{where}：{first}"


def placeholders(doc: Document) -> list[Pending]:
    """Every 【请填写：…】 and 【警告：…】 of the model, in reading order."""
    return pending_in_lines((p.style, p.text) for p in doc.paragraphs())


def pending_in_lines(lines) -> list[Pending]:
    """Placeholders in (style, text) lines; headings ('heading…' styles) give the context."""
    out: list[Pending] = []
    h1 = h2 = ""
    for style, text in lines:
        if style == "title":
            h1, h2 = "", ""
        elif style == "heading1":
            h1, h2 = text.strip(), ""
        elif style == "heading2":
            h2 = text.strip()
        heading = f"{h1} {h2}".strip()
        for m in PLACEHOLDER_RE.finditer(text):
            out.append(Pending(m.group(1), m.group(2), heading))
    return out
