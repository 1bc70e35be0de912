"""A unit's versions of a year and the cell differences between them (the reviewer's view of what
changed): the SQL and the lookups; workflow.py decides, toolkit/diff.py compares."""

from __future__ import annotations

from typing import Any

from . import workflow as W
from .db import ArchiveError
from .records import Version
from .status import _load


def rows(conn: Any, code: str, year: int) -> tuple[list[Any], list[Any]]:
    """The unit's versions and events of the year, oldest first."""
    subs, events = _load(conn, year, code)
    return subs.get(code, []), events.get(code, [])


def versions(subs: list[Any], events: list[Any]) -> list[Version]:
    """The versions (``rows``) as the reviewer sees them: numbered, each with its last decision."""
    approved = W.approved_of(events)
    out = []
    for n, v in enumerate(subs, 1):
        mine = [e for e in events if e.submission_id == v.id]
        decided = [e for e in mine if W.is_decision(e)]
        last = decided[-1] if decided else None
        counts = {"错误": v.errors, "警告": v.warnings, "提示": v.hints}
        out.append(
            Version(
                n,
                v.id,
                v.received_at,
                v.name,
                v.source,
                v.filled_on,
                counts,
                v.status,
                decision=W.APPROVE if last is not None and W.is_approval(last) else (last.kind if last else ""),
                decision_note=last.note if last else "",
                decided_by=last.actor if last else "",
                approved=v.id == approved,
                newest=n == len(subs),
                older_date=n > 1 and W.is_older(v.filled_on, subs[n - 2].filled_on),
                explanation=v.explanation,
                repeats=sum(1 for e in mine if e.kind == W.REPEAT),
            )
        )
    return out


def diff_reports(old: Any, new: Any) -> list[Any]:
    try:
        from ..diff import diff_reports
    except ImportError:  # toolkit/diff.py not there (yet)
        raise ArchiveError("本版本的 nianbao 没有单元格对比功能（缺少 toolkit/diff.py）。") from None
    return diff_reports(old, new)


def diff_ids(subs: list[Any], events: list[Any], unit: str, year: int, from_id: int | None, to_id: int | None) -> tuple[int, int]:
    """The two versions to compare (``rows``); by default from the approved version (or, without
    one, the version before the newest) to the newest."""
    if not subs:
        raise ArchiveError(f"{unit} {year}年度还没有报送，没有可对比的版本。")
    ids = {v.id for v in subs}
    to_id = subs[-1].id if to_id is None else to_id
    if from_id is None:
        from_id = W.approved_of(events)
        if from_id is None or from_id == to_id:
            before = [v.id for v in subs if v.id < to_id]
            if not before:
                raise ArchiveError(f"{unit} {year}年度只有第1版，没有可对比的版本（与上年对比请加 --last-year）。")
            from_id = before[-1]
    for sid in (from_id, to_id):
        if sid not in ids:
            raise ArchiveError(
                f"{unit} {year}年度没有编号为 {sid} 的版本（用 nianbao history {unit} --year {year} 查看各版本）。"
            )
    return from_id, to_id


def newest_id(subs: list[Any], unit: str, year: int, submission_id: int | None = None) -> int:
    """The version compared with last year's approved one (default: the newest)."""
    if not subs:
        raise ArchiveError(f"{unit} {year}年度还没有报送，没有可对比的版本。")
    sid = subs[-1].id if submission_id is None else submission_id
    if sid not in {v.id for v in subs}:
        raise ArchiveError(f"{unit} {year}年度没有编号为 {sid} 的版本。")
    return sid
