"""What `draft` (and other writers) take from the archive: a unit's approved version, or the year's
summary made from the archive's approved versions — and the same for the year before, for the
year-on-year sentences."""

from __future__ import annotations

from ..report import Report
from .core import Archive
from .db import ArchiveError


def year_report(archive: Archive, year: int, unit: str | None = None, under: str | None = None) -> Report:
    """``unit`` given: that unit's approved version; otherwise the year's summary of the whole roster
    (of the subtree of ``under`` only: one county of a city's archive)."""
    if unit is None:
        summary = archive.consolidate(year, force=True, under=under)
        report = summary.report
        report.findings = [f for f in summary.findings if f.severity == "错误"] + [
            f for f in report.findings if f.severity == "错误"
        ]
        return report
    state = archive.state(unit, year)
    if not state.approved_id:
        what = "还没有收到" if not state.submission_id else "还没有审核通过"
        raise ArchiveError(f"档案库中{what}{state.name}（{state.code}）{year}年度的填报表。")
    return archive.report(state.approved_id)


def previous_report(archive: Archive, year: int, unit: str | None = None, under: str | None = None) -> Report | None:
    """Last year's figures of the same unit (or summary, of the subtree of ``under`` only), when the
    archive holds that year (and, for ``under``, that node)."""
    last = archive.roster(year - 1)
    if last is None or (unit is None and under and not last.subtree(under)):
        return None
    try:
        if unit is not None:
            code = archive.unit_code(unit, year)
            ros = archive.need_roster(year - 1)
            if ros.get(code) is None:
                return None
            state = archive.state(code, year - 1)
            return archive.report(state.approved_id) if state.approved_id else None
        return archive.consolidate(year - 1, force=True, under=under).report
    except ArchiveError:
        return None
