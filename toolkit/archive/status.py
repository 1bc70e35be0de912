"""报送情况 from the stored receipts and decisions; the reviewer's decisions; a unit's history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from . import schema as T
from .core import ACCEPT, REJECT, Archive, HistoryItem, UnitState, now
from .db import ArchiveError

S = T.submissions
LIGHT = (S.c.id, S.c.unit_code, S.c.received_at, S.c.name, S.c.errors, S.c.warnings, S.c.hints, S.c.status)


def _load(
    archive: Archive, year: int, only: str | None = None, details: bool = True
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The year's receipts and decisions by unit (of one unit only, when ``only`` is given: a unit's
    page asks for its own state on every upload, and need not read the whole year). Without
    ``details``, the receipts' light columns only (no filler, phone or fingerprints)."""
    subs: dict[str, list[Any]] = {}
    events: dict[str, list[Any]] = {}
    q_subs = select(*LIGHT, *((S.c.filler, S.c.phone, S.c.warning_fps) if details else ())).where(S.c.year == year)
    q_events = T.events.select().where(T.events.c.year == year)
    if only is not None:
        q_subs, q_events = q_subs.where(S.c.unit_code == only), q_events.where(T.events.c.unit_code == only)
    with archive._read() as conn:
        for r in conn.execute(q_subs.order_by(S.c.id)):
            subs.setdefault(r.unit_code, []).append(r)
        for e in conn.execute(q_events.order_by(T.events.c.id)):
            events.setdefault(e.unit_code, []).append(e)
    return subs, events


def _status(cur: Any, events: list[Any]) -> tuple[str, str]:
    """(status, note) of a unit from its current receipt and the decisions on the year."""
    on_this = [e for e in events if e.submission_id == cur.id]
    if on_this and on_this[-1].kind == REJECT:  # sent back (a later 说明 on the same file overrides it)
        return "退回", on_this[-1].note
    if cur.errors or cur.status == "无法读取":
        return "退回", ""
    if not cur.warnings:
        return "已通过", ""
    need = set(cur.warning_fps)
    ok = [e for e in events if e.kind == ACCEPT and need <= set(e.fingerprints)]
    return ("已通过", ok[-1].note) if ok else ("待说明", "")


def _late(deadline: dt.date | None, first: str, today: dt.date) -> bool:
    if deadline is None:
        return False
    if not first:
        return today > deadline
    return dt.datetime.fromisoformat(first).date() > deadline


def unit_states(archive: Archive, year: int, today: dt.date, only: str | None = None) -> list[UnitState]:
    ros = archive.need_roster(year)
    deadline = archive.deadline(year)
    subs, events = _load(archive, year, only)
    out = []
    for u in [ros.get(only)] if only is not None else ros.units:
        st = UnitState(year, u.code, u.name, u.type, u.parent)
        got = subs.get(u.code)
        if got:
            cur = got[-1]
            st.status, st.note = _status(cur, events.get(u.code, []))
            st.file, st.filler, st.phone = cur.name, cur.filler, cur.phone
            st.first_received, st.last_received = got[0].received_at, cur.received_at
            st.errors, st.warnings, st.hints, st.submission_id = cur.errors, cur.warnings, cur.hints, cur.id
        st.late = _late(deadline, st.first_received, today)
        out.append(st)
    return out


def current_statuses(archive: Archive, year: int) -> dict[str, str]:
    """The status of every roster unit that has a return, as ``unit_states`` works it out, without
    the rest of a UnitState: what ``receive`` tells of each file it stored. The warnings' fingerprints
    (JSON) are read only for units with a 说明 on record, where they decide."""
    ros = archive.need_roster(year)
    subs, events = _load(archive, year, details=False)
    current = {code: got[-1] for code, got in subs.items() if ros.get(code) is not None}
    needed = [r.id for code, r in current.items() if r.warnings and any(e.kind == ACCEPT for e in events.get(code, ()))]
    fps: dict[int, Any] = {}
    if needed:
        with archive._read() as conn:
            fps = dict(conn.execute(select(S.c.id, S.c.warning_fps).where(S.c.id.in_(needed))).all())
    return {code: _status(_WithFps(cur, fps.get(cur.id, ())), events.get(code, []))[0] for code, cur in current.items()}


class _WithFps:
    """A light receipt row with its warnings' fingerprints (``_status`` reads them only when a 说明
    on record may cover them)."""

    def __init__(self, row: Any, warning_fps: Any):
        self.id, self.errors, self.warnings, self.status = row.id, row.errors, row.warnings, row.status
        self.warning_fps = warning_fps


def decide(archive: Archive, unit: str, year: int, note: str, kind: str) -> UnitState:
    """Record a 退回 or a 说明 on the unit's current return."""
    note = (note or "").strip()
    if not note:
        raise ArchiveError("请用 --note 写明" + ("退回原因。" if kind == REJECT else "说明（为什么接受这些警告）。"))
    state = archive.state(unit, year)
    if state.submission_id is None:
        raise ArchiveError(f"{state.name}（{state.code}）{year}年度还没有报送，无法{'退回' if kind == REJECT else '接受'}。")
    if kind == ACCEPT and state.errors:
        raise ArchiveError(
            f"{state.name}（{state.code}）的填报表有{state.errors}个错误，不能强制上报；"
            "请用 nianbao reject 退回，更正后重新接收。"
        )
    with archive.engine.begin() as conn:
        fps = conn.execute(select(S.c.warning_fps).where(S.c.id == state.submission_id)).scalar_one()
        conn.execute(
            T.events.insert().values(
                year=year,
                unit_code=state.code,
                at=now(),
                kind=kind,
                note=note,
                fingerprints=list(fps) if kind == ACCEPT else [],
                submission_id=state.submission_id,
            )
        )
    return archive.state(state.code, year)


def accepted_notes(archive: Archive, year: int) -> list[tuple[str, str]]:
    """(unit, 说明) of the units whose current 警告 stand accepted, in roster order. Only units with a
    强制上报 on record can have one: their states alone are worked out, not the whole year's."""
    with archive._read() as conn:
        q = select(T.events.c.unit_code).where(T.events.c.year == year, T.events.c.kind == ACCEPT).distinct()
        accepted = {r.unit_code for r in conn.execute(q)}
    if not accepted:
        return []
    ros = archive.need_roster(year)
    codes = [u.code for u in ros.units if u.code in accepted]
    if len(codes) > 200:  # beyond a few hundred, one pass over the year costs less than a query per unit
        states = unit_states(archive, year, dt.date.today())
    else:
        states = [archive.state(c, year) for c in codes]
    return [(f"{s.name}（{s.code}）", s.note) for s in states if s.status == "已通过" and s.warnings and s.note]


def _unit_years(archive: Archive, unit: str, year: int | None) -> tuple[list[int], str]:
    years = [year] if year else archive.years()
    for y in years:
        ros = archive.roster(y)
        if ros is None:
            continue
        u = ros.get(unit) or next((x for x in ros.units if x.name == unit), None)
        if u is not None:
            return years, u.code
    if year:
        archive.unit_code(unit, year)  # raises the Chinese message
    raise ArchiveError(f"档案库中没有单位“{unit}”（请用单位代码或名册中的单位名称）。")


def history(archive: Archive, unit: str, year: int | None) -> list[HistoryItem]:
    """Every receipt, 退回 and 说明 of a unit, in time order."""
    years, code = _unit_years(archive, unit, year)
    items: list[HistoryItem] = []
    with archive._read() as conn:
        q = select(*LIGHT, S.c.year, S.c.sha256).where(S.c.unit_code == code, S.c.year.in_(years))
        for r in conn.execute(q):
            text = f"收到 {r.name}：错误{r.errors}个，警告{r.warnings}个，提示{r.hints}个"
            items.append(HistoryItem(r.received_at, r.year, code, "收到", text, r.name, r.sha256))
        q2 = T.events.select().where(T.events.c.unit_code == code, T.events.c.year.in_(years))
        for e in conn.execute(q2):
            items.append(HistoryItem(e.at, e.year, code, e.kind, e.note))
    return sorted(items, key=lambda i: (dt.datetime.fromisoformat(i.at), i.kind != "收到"))


def chase_list(archive: Archive, states: list[UnitState], year: int) -> list[UnitState]:
    """Whom to chase (未报送, 退回, 待说明), with last year's 填报人 and 电话 when this year's are unknown."""
    chase = [s for s in states if s.status != "已通过"]
    if archive.roster(year - 1) is None:
        return chase
    last = {s.code: s for s in archive.status(year - 1)}
    for s in chase:
        prev = last.get(s.code)
        if prev is not None and not (s.filler or s.phone) and (prev.filler or prev.phone):
            s.filler, s.phone = f"{prev.filler}（{year - 1}年）", prev.phone
    return chase
