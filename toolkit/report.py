"""`Report`: one unit's annual figures as plain data, independent of Excel.

Values are keyed by the stable cell ids of the format definition. Totals are
always recomputed from their parts (``values``); what the spreadsheet itself
stored for a total is kept apart (``cached``) so a disagreement is visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .findings import Finding
from .spec import Format

Number = float | int


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
    values: dict[str, Number | None] = field(default_factory=dict)
    cached: dict[str, Number | None] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)  # what the clerk typed, when it was not a clean number
    cover: dict[str, str] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)
    findings: list[Finding] = field(default_factory=list)
    children: list[dict[str, Any]] = field(default_factory=list)  # 明细 of a summary: unit + values
    # cells whose value is unknown (a published table cut off or unreadable) — unlike a blank
    # cell (missing, counted by the rules' missing-value strategy), no rule may use them
    unknown: set[str] = field(default_factory=set)
    readable: bool = True  # False when no values could be read at all

    def value(self, cid: str) -> Number:
        v = self.values.get(cid)
        return 0 if v is None else v

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_id": self.format_id, "format_version": self.format_version,
            "template_version": self.template_version, "year": self.year,
            "unit_code": self.unit_code, "unit_name": self.unit_name, "unit_type": self.unit_type,
            "level": self.level, "values": self.values, "cached": self.cached, "cover": self.cover,
            "provenance": vars(self.provenance), "readable": self.readable,
        }


def derive_totals(fmt: Format, values: dict[str, Number | None]) -> dict[str, Number | None]:
    """Fill in every total of ``fmt`` from its parts (a missing part counts 0; all missing → missing)."""
    out = dict(values)

    def total(cid: str) -> Number | None:
        if cid in done:
            return out[cid]
        parts = [total(p) if fmt.cells[p].is_total else out.get(p) for p in fmt.cells[cid].parts]
        present = [p for p in parts if p is not None]
        out[cid] = _clean(sum(present)) if present else None
        done.add(cid)
        return out[cid]

    done: set[str] = set()
    for c in fmt.totals:
        total(c.id)
    return out


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
