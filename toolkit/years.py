"""Across years: which report is last year's report of the same unit, and what the cross-year
rules of the format definition (``prev(...)``) say about the pair. Units are matched by code,
or by name when a report has no real code (a published report read from a web page)."""

from __future__ import annotations

from collections.abc import Iterable

from .findings import Finding
from .report import Report
from .rules import run_rule
from .spec import formats
from .textnum import canonical_name


def unit_key(report: Report) -> str:
    """The same unit across files: its roster (or cover) code, else its name without 人民政府/办事处
    (a published report read without a roster has only a name)."""
    code = report.unit_code
    if code and not code.startswith("X"):
        return "code:" + code
    return "name:" + canonical_name(report.unit_name)


def link_years(reports: Iterable[Report]) -> None:
    """Set ``previous`` on every report whose unit also has a report of the year before."""
    by_unit: dict[str, dict[int, Report]] = {}
    for r in reports:
        if r.readable and r.year:
            by_unit.setdefault(unit_key(r), {}).setdefault(r.year, r)
    for years in by_unit.values():
        for year, r in years.items():
            if year - 1 in years and r.previous is None:
                r.previous = years[year - 1]


def cross_year_findings(report: Report) -> list[Finding]:
    """The cross-year rules on one report whose ``previous`` is set."""
    fmt = formats().get(report.format_id)
    if fmt is None or report.previous is None:
        return []
    out = []
    for rule in fmt.rules:
        if rule.cross_year:
            for f in run_rule(rule, fmt, report):
                out.append(f.finish(report.year))
    return out


def cross_year(reports: list[Report]) -> list[Finding]:
    """Link the years of each unit and return every cross-year finding (file and unit filled in)."""
    link_years(reports)
    out = []
    for r in reports:
        for f in cross_year_findings(r):
            f.file = f.file or r.provenance.name
            out.append(f)
    return out
