"""`Report`: one unit's annual figures as plain data, independent of Excel.

Values are keyed by the stable cell ids of the format definition. Totals are
always recomputed from their parts (``values``); what the spreadsheet itself
stored for a total is kept apart (``cached``) so a disagreement is visible.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import is_
from typing import Any

from .findings import Finding
from .spec import Format, formats

Number = float | int


class CellValues(Mapping):
    """Every cell id of a format with its value, stored sparsely: most cells of most returns are 0.

    Reads like a plain dict of all cell ids (absent → 0, blank → None), so a batch of 10,000
    complete reports stays small, and the cell-id strings are shared with the format definition.
    """

    __slots__ = ("_fmt_id", "_fmt", "_nonzero", "_missing")

    def __init__(self, fmt: Format, values: Mapping[str, Any]):
        self._fmt_id, self._fmt = fmt.id, fmt
        ids = fmt.cell_ids
        # both with C-level iterators (a batch compacts every one of its reports)
        self._nonzero = dict(compress(values.items(), values.values()))
        self._missing = frozenset(compress(ids, map(is_, map(values.get, ids), repeat(None))))

    @classmethod
    def of(cls, fmt_id: str, values: Mapping[str, Any]) -> CellValues:
        return cls(formats()[fmt_id], values)

    def __getitem__(self, key: str) -> Any:
        v = self._nonzero.get(key)
        if v is not None:
            return v
        if key in self._missing:
            return None
        if key in self._nonzero or key in self._fmt.cell_id_set:
            return 0
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        v = self._nonzero.get(key)
        if v is not None:
            return v
        if key in self._missing:
            return None
        return 0 if key in self._fmt.cell_id_set else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._fmt.cell_ids)

    def __len__(self) -> int:
        return len(self._fmt.cell_ids)

    def __reduce__(self) -> tuple:
        return (_rebuild_values, (self._fmt_id, self._nonzero, tuple(self._missing)))

    @property
    def nonzero(self) -> dict[str, Any]:
        """The cells neither 0 nor blank: what a sum or a stored receipt needs (do not change it)."""
        return self._nonzero

    @property
    def blank(self) -> frozenset[str]:
        """The blank cells (None)."""
        return self._missing

    @classmethod
    def sparse(cls, fmt_id: str, nonzero: dict[str, Any], blank: Iterable[str]) -> CellValues:
        """The values of a format's report from its ``nonzero`` and ``blank`` cells (codec.from_stored)."""
        return _rebuild_values(fmt_id, nonzero, tuple(blank))


def _rebuild_values(fmt_id: str, nonzero: dict[str, Any], missing: tuple[str, ...]) -> CellValues:
    """Unpickling: the ids come from this process's format registry, so keys are shared. (No import
    inside: this runs once per report, and a function-level import costs ~4 µs each time.)"""
    out = CellValues.__new__(CellValues)
    out._fmt_id, out._fmt, out._nonzero, out._missing = fmt_id, formats()[fmt_id], nonzero, frozenset(missing)
    return out


@dataclass
class Provenance:
    path: str = ""
    name: str = ""
    sha256: str = ""
    size: int = 0
    mtime: float = 0.0
    application: str = ""


@dataclass
class Report:
    format_id: str = ""
    format_version: str = ""
    template_version: str = ""
    year: int | None = None
    unit_code: str = ""
    unit_name: str = ""
    unit_type: str = ""
    level: str = "填报单位"  # 填报单位 | 县级汇总 | 市级汇总 …
    values: Mapping[str, Number | None] = field(default_factory=dict)
    cached: Mapping[str, Number | None] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)  # what the clerk typed, when it was not a clean number
    cover: dict[str, str] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)
    findings: list[Finding] = field(default_factory=list)
    children: list[dict[str, Any]] = field(default_factory=list)  # 明细 of a summary: unit + values
    # cells whose value is unknown (a published table cut off or unreadable) — unlike a blank
    # cell (missing, counted by the rules' missing-value strategy), no rule may use them
    unknown: set[str] = field(default_factory=set)
    readable: bool = True  # False when no values could be read at all
    extra_sheets: tuple[str, ...] = ()  # sheets nianbao itself added (e.g. 问题清单 of an annotated copy)
    scope: str = ""  # summaries: 全部 | 节点汇总 | 选择汇总
    scope_note: str = ""  # summaries: what a selection leaves out
    previous: Report | None = field(default=None, repr=False)  # last year's report of this unit, when known

    def value(self, cid: str) -> Number:
        v = self.values.get(cid)
        return 0 if v is None else v

    def compact(self) -> Report:
        """Store values sparsely (for batches and the process pool); the report stays complete."""
        if self.format_id and not isinstance(self.values, CellValues):
            if self.format_id in formats():
                self.values = CellValues.of(self.format_id, self.values)
        return self

    def to_rows(self) -> list[dict[str, Any]]:
        """One canonical tidy row per cell of the format: who, which cell (with its labels), what
        value, and whether it was filled, blank or unknown; the source's sha256 ties it to the file."""
        fmt = formats().get(self.format_id)
        if fmt is None:
            return []
        head = {
            "year": self.year,
            "unit_code": self.unit_code,
            "unit_name": self.unit_name,
            "unit_type": self.unit_type,
            "level": self.level,
            "format_id": self.format_id,
        }
        tail = {"source_sha256": self.provenance.sha256, "source_file": self.provenance.name}
        rows = []
        for cid, cell in fmt.cells.items():
            v = self.values.get(cid)
            status = "unknown" if cid in self.unknown else ("blank" if v is None else "value")
            rows.append(
                {
                    **head,
                    "sheet": cell.sheet_name,
                    "cell_id": cid,
                    "row_label": cell.row_label,
                    "col_label": cell.col_label,
                    "value": v,
                    "status": status,
                    **tail,
                }
            )
        return rows


def derive_totals(fmt: Format, values: dict[str, Number | None]) -> dict[str, Number | None]:
    """Fill in every total of ``fmt`` from its parts (a missing part counts 0; all missing → missing)."""
    out = dict(values)
    get = out.get
    for cid, parts in fmt.total_order:  # parts that are totals come first
        found = list(map(get, parts))
        if None not in found:  # every part filled: the usual case
            out[cid] = _clean(sum(found))
            continue
        present = [v for v in found if v is not None]
        out[cid] = _clean(sum(present)) if present else None
    return out


def nonzero_totals(fmt: Format, nonzero: Mapping[str, Number]) -> dict[str, Number]:
    """The non-zero totals of a row given only its non-zero inputs — what ``derive_totals`` gives
    for them, without visiting the format's every total: a province's 明细 has 10,000 such rows,
    most of them nearly all zeros."""
    paths = fmt.paths_up
    sums: dict[str, Number] = {}
    for cid, v in nonzero.items():
        for total in paths.get(cid, ()):
            sums[total] = sums.get(total, 0) + v
    return {cid: t for cid, v in sums.items() if (t := _clean(v))}


def mark_unknown(fmt: Format, report: Report) -> None:
    """A total built on an unknown part is unknown too; unknown cells hold None, never 0."""
    if not report.unknown:  # the usual case: nothing to spread
        return
    grew = True
    while grew:  # a total may sum totals
        before = len(report.unknown)
        report.unknown.update(c.id for c in fmt.totals if any(p in report.unknown for p in c.parts))
        grew = len(report.unknown) != before
    for cid in report.unknown:
        report.values[cid] = None


def _clean(x: Number) -> Number:
    """Sums of amounts drift (0.1 + 0.2); round to 6 places and return ints as ints."""
    if isinstance(x, float):
        x = round(x, 6)
        if x.is_integer() and abs(x) < 2**53:
            return int(x)
    return x


def blank_values(fmt: Format) -> dict[str, Number | None]:
    """A fresh template's values: every input 0, totals derived."""
    return derive_totals(fmt, {c.id: 0 for c in fmt.inputs})
