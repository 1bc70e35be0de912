"""接收: check files as ``check`` does, add the cross-year findings when last year is in the
archive, and store each file — its bytes, its Report, its findings — in one transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..check import CheckOptions, iter_checked
from ..findings import sort_key
from ..inputs import Source, collect, load
from ..report import Report
from . import schema as T
from .core import Archive, Received, now, verdict
from .store import findings_json, report_json

NOT_THIS_UNIT = "非本单位（未接收）"


def _paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    return [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]


def receive(
    archive: Archive,
    paths: str | Path | Iterable[str | Path],
    year: int,
    *,
    progress: Callable[[int], Any] | None = None,
    workers: int | None = None,
    only_unit: str | None = None,
) -> list[Received]:
    """``only_unit``: store only that unit's returns (a unit's private upload link); any other file is
    checked and answered with outcome 非本单位, and nothing of it is stored."""
    ros = archive.need_roster(year)
    plist = _paths(paths)
    sources = list(collect(plist))
    last_year = previous_reports(archive, year - 1)
    out = []
    for src, report in zip(sources, iter_checked(plist, CheckOptions(year=year, roster=ros), progress, workers), strict=True):
        if only_unit is not None and report.unit_code != only_unit:
            out.append(Received(src.name, NOT_THIS_UNIT, report.unit_code, report.unit_name, report=report))
            continue
        data = _bytes(src)
        if data is None:
            out.append(Received(src.name, "无法读取", report=report, counts={"错误": 1, "警告": 0, "提示": 0}))
            continue
        add_cross_year(report, last_year)
        out.append(store(archive, year, report, data))
    states = {s.code: s.status for s in archive.status(year)}
    for r in out:
        if r.outcome != NOT_THIS_UNIT:  # never tell a unit's link another unit's status
            r.status = states.get(r.unit_code, "不在名册" if r.unit_code else "无法读取")
    return out


def _bytes(src: Source) -> bytes | None:
    if src.data is not None:
        return src.data
    loaded = load(Source(src.name, src.path, None, src.mtime))
    return loaded.data


def previous_reports(archive: Archive, year: int) -> dict[str, Report]:
    """Last year's accepted current return of each unit (已通过 or 待说明: its figures stand)."""
    if archive.roster(year) is None:
        return {}
    return {r.unit_code: r for r in archive.reports(year, statuses=("已通过", "待说明"))}


def add_cross_year(report: Report, last_year: dict[str, Report]) -> None:
    """The cross-year rules of the format, when last year's return of the unit is known."""
    from ..years import cross_year_findings

    prev = last_year.get(report.unit_code) if report.readable else None
    if prev is None:
        return
    report.previous = prev
    for f in cross_year_findings(report):
        f.file = report.provenance.name
        f.unit_code = f.unit_code or report.unit_code
        f.unit_name = f.unit_name or report.unit_name
        report.findings.append(f.finish(report.year))
    report.findings.sort(key=sort_key)
    report.previous = None


def store(archive: Archive, year: int, report: Report, data: bytes) -> Received:
    """One file, one transaction: a no-op when these bytes were received for this year before."""
    sha = hashlib.sha256(data).hexdigest()
    report.provenance.sha256, report.provenance.size = sha, len(data)
    status, c = verdict(report)
    with archive.engine.begin() as conn:
        seen = conn.execute(
            T.submissions.select()
            .with_only_columns(T.submissions.c.received_at, T.submissions.c.unit_code)
            .where(T.submissions.c.year == year, T.submissions.c.sha256 == sha)
            .order_by(T.submissions.c.id)
        ).first()
        if seen is not None:
            name, code = report.provenance.name, report.unit_code
            return Received(name, "重复（未改动）", code, report.unit_name, "", c, report, seen.received_at)
        earlier = conn.execute(
            T.submissions.select()
            .with_only_columns(T.submissions.c.id)
            .where(T.submissions.c.year == year, T.submissions.c.unit_code == report.unit_code)
        ).first()
        _insert_file(conn, sha, data)
        conn.execute(T.submissions.insert().values(**_row(year, report, sha, status, c)))
    outcome = "无法读取" if not report.readable else ("更正" if earlier is not None and report.unit_code else "新收")
    return Received(report.provenance.name, outcome, report.unit_code, report.unit_name, "", c, report)


def _insert_file(conn: Any, sha: str, data: bytes) -> None:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(T.files).values(sha256=sha, size=len(data), data=data).on_conflict_do_nothing())


def _row(year: int, report: Report, sha: str, status: str, c: dict[str, int]) -> dict[str, Any]:
    return dict(
        year=year,
        unit_code=report.unit_code or "",
        unit_name=report.unit_name or "",
        received_at=now(),
        name=report.provenance.name,
        sha256=sha,
        status=status,
        errors=c["错误"],
        warnings=c["警告"],
        hints=c["提示"],
        filler=str(report.cover.get("filler", "") or ""),
        phone=str(report.cover.get("phone", "") or ""),
        warning_fps=sorted({f.fingerprint for f in report.findings if f.severity == "警告"}),
        report=report_json(report),
        findings=findings_json(report.findings),
    )
