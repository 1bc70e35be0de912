"""报送情况, the reviewer's decisions and a unit's history: the SQL around workflow.py, which alone
decides states. Reads a unit's versions and events, asks workflow.py, and stores what it decides."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from . import schema as T
from . import workflow as W
from .db import ArchiveError
from .records import HistoryItem, UnitState, now

S, E = T.submissions, T.events
LIGHT = (
    S.c.id,
    S.c.unit_code,
    S.c.received_at,
    S.c.name,
    S.c.errors,
    S.c.warnings,
    S.c.hints,
    S.c.status,
    S.c.source,
    S.c.filled_on,
)
DETAILS = (S.c.filler, S.c.phone, S.c.explanation)
HISTORY_SUBS = (*LIGHT, S.c.year, S.c.sha256)
EVENT_COLS = (E.c.id, E.c.unit_code, E.c.at, E.c.kind, E.c.note, E.c.submission_id, E.c.actor)


def _load(
    conn: Any, year: int, only: str | None = None, details: bool = True
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The year's versions and events by unit (of one unit only, when ``only`` is given: a unit's
    page asks for its own state on every upload, and need not read the whole year)."""
    subs: dict[str, list[Any]] = {}
    events: dict[str, list[Any]] = {}
    q_subs = select(*LIGHT, *(DETAILS if details else ())).where(S.c.year == year)
    q_events = select(*EVENT_COLS).where(E.c.year == year)
    if only is not None:
        q_subs, q_events = q_subs.where(S.c.unit_code == only), q_events.where(E.c.unit_code == only)
    for r in conn.execute(q_subs.order_by(S.c.id)):
        subs.setdefault(r.unit_code, []).append(r)
    for e in conn.execute(q_events.order_by(E.c.id)):
        events.setdefault(e.unit_code, []).append(e)
    return subs, events


def _late(deadline: dt.date | None, first: str, today: dt.date) -> bool:
    if deadline is None:
        return False
    if not first:
        return today > deadline
    return dt.datetime.fromisoformat(first).date() > deadline


def _fill(st: UnitState, versions: list[Any], events: list[Any]) -> None:
    fl = W.unit_flow(versions, events)
    st.status, st.note, st.reason = fl.status, fl.note, fl.reason
    st.approved_id, st.pending_id, st.version, st.approved_version = (
        fl.approved_id,
        fl.pending_id,
        fl.version,
        fl.approved_version,
    )
    st.older_date, st.decided_by = fl.older_date, fl.decided_by
    if not versions:
        return
    cur = versions[-1]
    st.file, st.filler, st.phone, st.explanation = cur.name, cur.filler, cur.phone, cur.explanation
    st.source, st.filled_on = cur.source, cur.filled_on
    st.first_received, st.last_received = versions[0].received_at, cur.received_at
    st.errors, st.warnings, st.hints, st.submission_id = cur.errors, cur.warnings, cur.hints, cur.id


def unit_states(
    conn: Any, ros: Any, deadline: dt.date | None, year: int, today: dt.date, only: str | None = None
) -> list[UnitState]:
    """报送情况 of the roster's units (of one unit with ``only``) from the year's versions and events."""
    subs, events = _load(conn, year, only)
    units = [ros.get(only)] if only is not None else ros.units
    return [_state(u, year, subs.get(u.code, []), events.get(u.code, []), deadline, today) for u in units]


def _state(u: Any, year: int, versions: list[Any], events: list[Any], deadline: dt.date | None, today: dt.date) -> UnitState:
    st = UnitState(year, u.code, u.name, u.type, u.parent)
    _fill(st, versions, events)
    # 逾期: past the deadline and still not approved; 迟交: the first version came after it
    st.late = deadline is not None and today > deadline and st.status != "已通过"
    st.submitted_late = bool(st.first_received) and _late(deadline, st.first_received, today)
    return st


def unit_page(
    conn: Any, ros: Any, deadline: dt.date | None, code: str, year: int, today: dt.date
) -> tuple[UnitState, list[HistoryItem]]:
    """One unit's line of 报送情况 and its history of the year, from one read of its versions and one
    of its events (the unit's page shows both after every upload)."""
    q_versions, q_events = _unit_page_statements()
    versions = conn.execute(q_versions, {"year": year, "code": code}).all()
    events = conn.execute(q_events, {"year": year, "code": code}).all()
    return _state(ros.get(code), year, versions, events, deadline, today), _history(code, versions, events)


@functools.cache
def _unit_page_statements() -> tuple[Any, Any]:
    """A unit's versions and events of a year: its page after every upload asks, built once."""
    from sqlalchemy import bindparam

    year, code = bindparam("year"), bindparam("code")
    q_versions = select(*HISTORY_SUBS, *DETAILS).where(S.c.year == year, S.c.unit_code == code).order_by(S.c.id)
    return q_versions, select(*EVENT_COLS, E.c.year).where(E.c.year == year, E.c.unit_code == code).order_by(E.c.id)


def current_statuses(conn: Any, ros: Any, year: int) -> dict[str, str]:
    """The status of every roster unit that has a version: what ``receive`` tells of each file."""
    subs, events = _load(conn, year, details=False)
    return {code: W.unit_flow(got, events.get(code, [])).status for code, got in subs.items() if ros.get(code) is not None}


def approved_ids(conn: Any, year: int, codes: set[str] | None = None) -> dict[str, int]:
    """Unit code → id of its approved version (only units that have one)."""
    q = select(*EVENT_COLS).where(E.c.year == year, E.c.kind.in_(W.DECISIONS)).order_by(E.c.id)
    if codes is not None:
        q = q.where(E.c.unit_code.in_(codes))
    events: dict[str, list[Any]] = {}
    for e in conn.execute(q):
        events.setdefault(e.unit_code, []).append(e)
    out = {code: W.approved_of(evs) for code, evs in events.items()}
    return {code: sid for code, sid in out.items() if sid is not None}


def label(state: UnitState) -> str:
    return f"{state.name}（{state.code}）{state.year}年度"


def decide(
    engine: Any,
    code: str,
    year: int,
    head: str,
    note: str,
    kind: str,
    submission_id: int | None = None,
    actor: str = "命令行",
    still_open: Callable[[Any], None] | None = None,
) -> int:
    """Record a 通过, 退回 or 撤销通过 of the unit ``code`` (workflow.py checks it, inside the writers'
    lock, so that the version it names is still the newest when it is recorded; ``head`` names the
    unit in messages). ``still_open``, asked with the connection inside the lock, refuses it when the
    unit's county has submitted or been approved meanwhile (tree.check_open: a county's 上报 cannot
    slip in between the caller's look and the decision). Returns the version decided on."""
    note = (note or "").strip()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            from sqlalchemy import text

            conn.execute(text("SELECT pg_advisory_xact_lock(7215002, :y)"), {"y": year})
        if still_open is not None:
            still_open(conn)
        subs, events = _load(conn, year, code, details=False)
        versions, evs = subs.get(code, []), events.get(code, [])
        fps: list[str] = []
        if kind == W.REOPEN:
            if submission_id is not None and submission_id != W.approved_of(evs):
                raise ArchiveError(f"{head}编号 {submission_id} 的版本不是当前已通过的版本，无需撤销。")
            sid = W.check_reopen(W.approved_of(evs), note, head)
        else:
            if not versions:
                raise ArchiveError(f"{head}还没有报送，无法{'退回' if kind == W.REJECT else '通过'}。")
            sid = W.check_newest(versions, submission_id, head).id
            if kind == W.REJECT:
                W.check_reject(note)
            else:
                row = conn.execute(select(S.c.findings, S.c.status).where(S.c.id == sid)).one()
                n = W.number_of(versions, sid)
                fps = W.check_approve(f"{head}第{n}版", row.status != "无法读取", row.findings, note)
        conn.execute(
            E.insert().values(
                year=year, unit_code=code, at=now(), kind=kind, note=note, fingerprints=fps, submission_id=sid, actor=actor
            )
        )
    return sid


def accepted_notes(conn: Any, states: list[UnitState], year: int) -> list[tuple[str, str]]:
    """(unit, 说明) of every unit whose approved version was approved with a 说明 accepting its 警告 or
    核实性 errors, in roster order (``states``: the year's 报送情况)."""
    q = select(E.c.unit_code, E.c.submission_id, E.c.note, E.c.fingerprints)
    q = q.where(E.c.year == year, E.c.kind.in_((W.APPROVE, W.OLD_APPROVE)))
    # a 说明 that accepted findings (警告, 核实性 errors); a remark on a clean version is not one
    notes = {(r.unit_code, r.submission_id): r.note for r in conn.execute(q.order_by(E.c.id)) if r.note and r.fingerprints}
    return [(f"{s.name}（{s.code}）", notes[(s.code, s.approved_id)]) for s in states if (s.code, s.approved_id) in notes]


def _receipt_text(r: Any, n: int) -> str:
    text = f"第{n}版 {r.name}：错误{r.errors}个，警告{r.warnings}个，提示{r.hints}个"
    if r.filled_on:
        text += f"；填报日期 {r.filled_on}"
    if r.explanation:
        short = " ".join(r.explanation.split())
        text += "；情况说明：" + (short[:60] + "…" if len(short) > 60 else short)
    return text


def _event_text(e: Any, number: dict[int, int]) -> str:
    n = number.get(e.submission_id) if e.submission_id else None
    head = f"第{n}版" if n else ""
    if e.kind == W.REPEAT:
        return f"再次收到与{head}相同的文件" + (f"（{e.note}）" if e.note else "")
    if not e.note:
        return head
    return f"{head}：{e.note}" if head else e.note


def history(conn: Any, code: str, years: list[int]) -> list[HistoryItem]:
    """Every version, 重复收到, 拒收, 通过, 退回 and 撤销通过 of a unit in the years, in time order, with who."""
    q = select(*HISTORY_SUBS, S.c.explanation).where(S.c.unit_code == code, S.c.year.in_(years)).order_by(S.c.id)
    q2 = select(*EVENT_COLS, E.c.year).where(E.c.unit_code == code, E.c.year.in_(years)).order_by(E.c.id)
    return _history(code, conn.execute(q).all(), conn.execute(q2).all())


def _history(code: str, versions: list[Any], events: list[Any]) -> list[HistoryItem]:
    """``history`` of the rows read (versions and events of the unit, each in id order, with their year)."""
    items: list[tuple[Any, HistoryItem]] = []
    number: dict[int, int] = {}
    counted: dict[int, int] = {}
    for r in versions:
        counted[r.year] = number[r.id] = counted.get(r.year, 0) + 1
        item = HistoryItem(r.received_at, r.year, code, "收到", _receipt_text(r, number[r.id]), r.name, r.sha256)
        item.actor, item.submission_id, item.version = r.source, r.id, number[r.id]
        items.append(((0, r.id), item))
    for e in events:
        item = HistoryItem(e.at, e.year, code, e.kind, _event_text(e, number))
        item.actor, item.submission_id, item.version = e.actor, e.submission_id, number.get(e.submission_id or 0, 0)
        item.note = e.note
        items.append(((1, e.id), item))
    items.sort(key=lambda p: (dt.datetime.fromisoformat(p[1].at), p[0]))
    return [i for _, i in items]


def chase_list(states: list[UnitState], last_year: list[UnitState] | None, year: int) -> list[UnitState]:
    """Whom to chase (未报送, 退回), with last year's 填报人 and 电话 (from ``last_year``'s 报送情况, None
    when the archive has no roster of it) when this year's are unknown."""
    chase = [s for s in states if s.status in ("未报送", "退回")]
    if last_year is None:
        return chase
    last = {s.code: s for s in last_year}
    for s in chase:
        prev = last.get(s.code)
        if prev is not None and not (s.filler or s.phone) and (prev.filler or prev.phone):
            s.filler, s.phone = f"{prev.filler}（{year - 1}年）", prev.phone
    return chase
