"""One archive for a city or a province (issue 31): the roster's tree, who may see which part of it,
and the approval of a node's summary by the level above — the SQL and the sums around workflow.py's
level states.

- A **node** is a roster unit with units below it (a county in a city's roster); it sums itself from
  its **own units** (its own row — the county government's 本级 return — and its children that have no
  units below them) and its **lower nodes** (their approved summaries).
- A **Scope** is what an administrator may see and decide: the subtree of one unit (a county
  reviewer's key) or the whole archive (the admin key). The web layer asks it on every page and
  decision; the archive asks it on every county decision.
- ``Levels`` is the part of ``Archive`` that speaks of levels (keys per level, 上报, 通过, 退回, the
  overview per county and the city's summary); ``Archive`` inherits it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..roster import Roster, Unit
from . import schema as T
from . import workflow as W
from .db import ArchiveError
from .records import HistoryItem, UnitState, now

if TYPE_CHECKING:
    from ..consolidate import Summary
    from ..report import Report
    from ..spec import Format

SM, SE = T.summaries, T.summary_events
WHOLE = "全部单位"
SUMMARY_COLS = (SM.c.id, SM.c.unit_code, SM.c.at, SM.c.actor, SM.c.note, SM.c.excluded)
EVENT_COLS = (SE.c.id, SE.c.unit_code, SE.c.at, SE.c.kind, SE.c.note, SE.c.summary_id, SE.c.actor)


# ---------------------------------------------------------------- scopes


@dataclass(frozen=True)
class Scope:
    """What one administrator may see and decide: the subtree of ``root`` (``codes`` None: the whole
    archive, the admin key's). Plain data: the web keeps it for a request and asks it every time."""

    root: str = ""
    name: str = WHOLE  # the root unit's name, for messages and history
    codes: frozenset[str] | None = None  # the root and every unit below it (None: every unit)
    key_id: int | None = None  # the reviewer's key it came from (None: the admin key, the command line)
    label: str = ""  # who holds the key (keys add --label)

    @property
    def whole(self) -> bool:
        return self.codes is None

    def can_see(self, unit_code: str) -> bool:
        return self.codes is None or unit_code in self.codes

    def can_decide_summary(self, node: str) -> bool:
        """The level above a node decides on its summary: a county's reviewer sees its county but
        does not approve it."""
        return self.can_see(node) and (self.codes is None or node != self.root)

    def units(self, roster: Roster) -> list[Unit]:
        """The roster's units this scope sees, in roster order."""
        return list(roster.units) if self.codes is None else [u for u in roster.units if u.code in self.codes]

    @property
    def actor(self) -> str:
        """Who decided, as the history records it."""
        if self.key_id is None:
            return "管理页面"  # the admin key signs in on the web page only
        who = f"，{self.label}" if self.label else ""
        return f"{self.name}审核人（密钥{self.key_id}{who}）"

    @property
    def unit_actor(self) -> str:
        """Who decided on a unit, as its events record it (at most 16 characters)."""
        return "管理页面" if self.key_id is None else f"审核密钥{self.key_id}"[:16]

    def require(self, unit_code: str, what: str = "查看或审核") -> None:
        if not self.can_see(unit_code):
            raise ArchiveError(f"{self.name}的审核人只能{what}{self.name}及其下级单位，单位 {unit_code} 不在其中。")


def children_of(roster: Roster) -> dict[str, list[Unit]]:
    out: dict[str, list[Unit]] = {}
    for u in roster.units:
        out.setdefault(u.parent, []).append(u)
    return out


def top_code(roster: Roster) -> str:
    """The code of the roster's top: its root row, or the one 上级代码 its top units share ("" if none)."""
    root = roster.root()
    if root is not None:
        return root.code
    codes = {u.code for u in roster.units}
    parents = {u.parent for u in roster.units if u.parent not in codes}
    return parents.pop() if len(parents) == 1 else ""


def node_name(roster: Roster, code: str) -> str:
    u = roster.get(code)
    return u.name if u is not None else f"上级单位{code}"


def is_node(roster: Roster, code: str) -> bool:
    """A roster unit, or the top the roster's units share, that has units below it."""
    return bool(code) and code in children_of(roster)


def scope_of(roster: Roster, root: str | None, name: str = "", key_id: int | None = None, label: str = "") -> Scope:
    """The scope of the subtree of ``root`` (None or "": the whole archive) in the roster."""
    if not root:
        return Scope("", name or WHOLE, None, key_id, label)
    units = roster.subtree(root)
    if not units:
        raise ArchiveError(f"单位代码 {root} 不在名册中，也不是名册中任何单位的上级代码。")
    return Scope(root, name or node_name(roster, root), frozenset({root, *(u.code for u in units)}), key_id, label)


def parts(roster: Roster, code: str) -> tuple[list[Unit], list[Unit]]:
    """(the units a node sums itself: its own row and its children without units below them, its
    lower nodes)."""
    children = children_of(roster)
    kids = children.get(code, [])
    me = roster.get(code)
    own = ([me] if me is not None else []) + [u for u in kids if u.code not in children]
    return own, [u for u in kids if u.code in children]


def node_roster(roster: Roster, code: str) -> Roster:
    """The roster of a node's own summary: itself (as the top) and its direct children — a city's
    roster as it was before one server held the counties' units too."""
    own, nodes = parts(roster, code)
    rows = [dataclasses.replace(u, parent="") if u.code == code else u for u in own] + nodes
    return Roster(tuple(sorted(rows, key=lambda u: (u.line, u.code))), roster.source)


def children_problems(report: Report, fmt: Format) -> list[str]:
    """The parent-versus-children check of a stored summary: every input cell of the parent equals
    the sum of its 明细 (the check ``check`` makes of a summary workbook)."""
    sums: dict[str, float] = {}
    for child in report.children:
        for cid, v in (child.get("values") or {}).items():
            sums[cid] = sums.get(cid, 0) + (v or 0)
    out = []
    for c in fmt.inputs:
        parent, total = report.value(c.id), round(sums.get(c.id, 0), 6)
        if abs(parent - total) > 1e-6:
            out.append(f"{c.sheet_name}{c.a1}（{c.row_label} {c.col_label}）为{parent}，下级之和为{total}")
    return out


# ---------------------------------------------------------------- records


@dataclass
class KeyInfo:
    """One reviewer's key as ``keys list`` shows it — never the key itself."""

    id: int
    code: str
    name: str
    label: str
    created_at: str
    used_at: str
    revoked_at: str

    def row(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class NodeState:
    """One line of the overview of a level: a county, its units' progress and its summary's state."""

    year: int
    code: str
    name: str
    status: str = "未报送"  # of its summary one level up (workflow.LevelFlow)
    units: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # 未报送/待审核/退回/已通过 of its units
    late: int = 0  # its units past the deadline and not 已通过
    ready: bool = False  # every unit 已通过 and not submitted yet: it may submit now
    version: int = 0  # 第N次上报
    summary_id: int | None = None
    approved_id: int | None = None
    note: str = ""
    reason: str = ""
    submitted_at: str = ""
    decided_at: str = ""
    decided_by: str = ""
    excluded: dict[str, str] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return dict(vars(self))


def _flows(conn: Any, year: int, codes: Iterable[str] | None = None) -> dict[str, tuple[W.LevelFlow, Any]]:
    """Node code → (its LevelFlow, its newest summary row) for every node that ever submitted."""
    q_sum, q_ev = _flow_statements(codes is not None)
    params = {"year": year, "codes": sorted(codes)} if codes is not None else {"year": year}
    subs: dict[str, list[Any]] = {}
    evs: dict[str, list[Any]] = {}
    for r in conn.execute(q_sum, params):
        subs.setdefault(r.unit_code, []).append(r)
    if not subs:  # no summary yet, so no event of one (most stores through a link, until counties submit)
        return {}
    for e in conn.execute(q_ev, params):
        evs.setdefault(e.unit_code, []).append(e)
    return {code: (W.level_flow(got, evs.get(code, [])), got[-1]) for code, got in subs.items()}


@functools.cache
def _flow_statements(some: bool) -> tuple[Any, Any]:
    """The year's summaries and their events (of the nodes ``:codes`` only, with ``some``), built once:
    every store through a link asks them."""
    from sqlalchemy import bindparam

    q_sum = select(*SUMMARY_COLS).where(SM.c.year == bindparam("year"))
    q_ev = select(*EVENT_COLS).where(SE.c.year == bindparam("year"))
    if some:
        q_sum = q_sum.where(SM.c.unit_code.in_(bindparam("codes", expanding=True)))
        q_ev = q_ev.where(SE.c.unit_code.in_(bindparam("codes", expanding=True)))
    return q_sum.order_by(SM.c.id), q_ev.order_by(SE.c.id)


def _lock(conn: Any, year: int) -> None:
    """The year's writers' lock, the one unit decisions take (status.decide)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy import text

        conn.execute(text("SELECT pg_advisory_xact_lock(7215002, :y)"), {"y": year})


def _node_state(st: NodeState, units: list[UnitState], flow: W.LevelFlow, row: Any) -> NodeState:
    st.units = len(units)
    st.counts = {s: sum(1 for u in units if u.status == s) for s in W.STATUSES}
    st.late = sum(1 for u in units if u.late)
    st.status, st.version, st.summary_id, st.approved_id = flow.status, flow.version, flow.summary_id, flow.approved_id
    st.note, st.reason, st.submitted_at = flow.note, flow.reason, flow.submitted_at
    st.decided_at, st.decided_by = flow.decided_at, flow.decided_by
    st.excluded = dict(row.excluded) if row is not None else {}
    st.ready = not flow.locked and bool(units) and all(u.status == W.APPROVED for u in units)
    return st


def check_open(conn: Any, ros: Roster, unit_code: str, year: int) -> None:
    """Refuse a decision on a unit whose county (or any node above it) has submitted or been approved
    — asked by status.decide inside its transaction, after the year's lock, so that a 上报 between the
    page's look and the decision cannot slip one in."""
    above = ros.above(unit_code)[1:]  # its county, city… (a parent named without a row of its own too)
    if is_node(ros, unit_code):
        above.insert(0, unit_code)  # a county's own row is one of the county's units
    if not above:
        return
    flows = _flows(conn, year, above)
    for code in above:
        if code in flows:
            W.check_unit_open(node_name(ros, unit_code), node_name(ros, code), flows[code][0])


def locked_in(conn: Any, ros: Roster, year: int, codes: Iterable[str] | None = None) -> set[str]:
    """The units of every node that has submitted (待审核) or been approved (read on ``conn``: the
    storing transaction asks it before approving a clean version automatically); with ``codes``, those
    of them only — read from the nodes above them, not from every county of a province."""
    if codes is None:
        locked = [code for code, (flow, _) in _flows(conn, year).items() if flow.locked]
        return {u.code for code in locked for u in ros.subtree(code)}
    chains = {code: set(ros.above(code)) for code in codes}
    nodes = set().union(*chains.values())
    if not nodes:
        return set()
    locked_nodes = {code for code, (flow, _) in _flows(conn, year, nodes).items() if flow.locked}
    return {code for code, chain in chains.items() if chain & locked_nodes}


# ---------------------------------------------------------------- the archive's levels


class Levels:
    """Keys per level, approval up the tree, the overview per county, the city's summary. Mixed into
    ``Archive`` (core.py), whose engine, roster, states and reports it uses."""

    engine: Any

    if TYPE_CHECKING:

        def need_roster(self, year: int) -> Roster: ...
        def roster(self, year: int) -> Roster | None: ...
        def years(self) -> list[int]: ...
        def status(self, year: int, today: dt.date | None = None) -> list[UnitState]: ...
        def reports(self, year: int, *, codes: Iterable[str] | None = None) -> list[Report]: ...
        def notes(self, year: int) -> list[tuple[str, str]]: ...
        def is_admin_key(self, key: str) -> bool: ...
        def _read(self) -> Any: ...

    # ------------------------------------------------------------ scopes and keys

    def _key_roster(self, year: int | None) -> Roster:
        years = self.years()
        if year is None and not years:
            raise ArchiveError("档案库中还没有名册。请先运行：nianbao roster load 名册.csv --year 年度")
        return self.need_roster(year if year is not None else years[-1])

    def scope(self, year: int, under: str | None = None) -> Scope:
        """The scope of the subtree of ``under`` in the year's roster (None: the whole archive)."""
        ros = self.need_roster(year)
        return scope_of(ros, _resolve(ros, under) if under else None)

    def add_key(self, under: str, label: str = "", year: int | None = None) -> tuple[int, str]:
        """A new reviewer's key for the subtree of ``under`` (code or name, in the year's roster; default
        the newest year): (its id, the key). The key is shown this once: only its digest is stored."""
        from .secrets import add_key

        ros = self._key_roster(year)
        code = _resolve(ros, under)
        scope_of(ros, code)
        return add_key(self.engine, code, label.strip())

    def keys(self) -> list[KeyInfo]:
        """Every reviewer's key ever made, revoked ones too (code, name, created, last used, revoked)."""
        from .secrets import keys

        years = self.years()
        ros = self.roster(years[-1]) if years else None
        return [_key_info(r, ros) for r in keys(self.engine)]

    def revoke_key(self, key_id: int) -> KeyInfo:
        """Revoke a reviewer's key: it stops working at once."""
        from .secrets import revoke_key

        years = self.years()
        return _key_info(revoke_key(self.engine, key_id), self.roster(years[-1]) if years else None)

    def key_scope(self, key: str, year: int | None = None) -> Scope | None:
        """The scope a presented key gives in the year's roster (default the newest): the admin key
        the whole archive, a reviewer's key its unit's subtree; None for anything else (revoked too)."""
        from .secrets import key_row

        if not key or len(key) > 200:
            return None
        if self.is_admin_key(key):
            years = self.years()
            return Scope(top_code(self._key_roster(year)) if years else "", WHOLE, None)
        row = key_row(self.engine, key)
        if row is None:
            return None
        ros = self._key_roster(year)
        if not ros.subtree(row.unit_code):  # the unit left the roster: the key sees nothing
            return Scope(row.unit_code, node_name(ros, row.unit_code), frozenset(), row.id, row.label)
        return scope_of(ros, row.unit_code, key_id=row.id, label=row.label)

    def new_scoped_session(self, scope: Scope) -> str:
        """A signed-in session of the holder of ``scope`` (the web's sign-in form): the admin key's for
        the whole archive, else the session records its key and unit (secrets.new_session)."""
        from .secrets import new_session

        return new_session(self.engine) if scope.key_id is None else new_session(self.engine, scope.root, scope.key_id)

    def session_scope(self, token: str, year: int | None = None) -> Scope | None:
        """The scope of a live session (None: none, expired, ended, or its key revoked): the whole
        archive for the admin key's, the key's subtree in the year's roster for a reviewer's."""
        from .secrets import session_row

        row = session_row(self.engine, token)
        if row is None:
            return None
        if not row.label:  # the admin key's: the whole archive
            return Scope()
        from .secrets import keys

        ros = self._key_roster(year)

        key_id = int(row.label)
        label = next((k.label or "" for k in keys(self.engine) if k.id == key_id), "")
        if not ros.subtree(row.unit_code):  # the unit left the roster: the key sees nothing
            return Scope(row.unit_code, node_name(ros, row.unit_code), frozenset(), key_id, label)
        return scope_of(ros, row.unit_code, key_id=key_id, label=label)

    def decide_unit(
        self, scope: Scope, decision: str, unit: str, year: int, note: str = "", submission_id: int | None = None
    ) -> UnitState:
        """A unit's 通过, 退回 or 撤销通过 by the holder of ``scope`` (the web's reviewer pages): refused
        for a unit outside the scope; the history names the key."""
        code = self.unit_code(unit, year)  # type: ignore[attr-defined]
        scope.require(code, "审核")
        call = {W.APPROVE: self.approve, W.REJECT: self.reject, W.REOPEN: self.reopen}.get(decision)  # type: ignore[attr-defined]
        if call is None:
            raise ArchiveError(f"无法识别的审核决定“{decision}”：应为 通过、退回 或 撤销通过。")
        got = call(code, year, note, submission_id, scope.unit_actor)
        return got[0] if isinstance(got, tuple) else got

    # ------------------------------------------------------------ nodes

    def node_code(self, node: str | None, year: int) -> str:
        """A node given by code or name (None: the roster's top), checked to have units below it."""
        ros = self.need_roster(year)
        code = _resolve(ros, node) if node else top_code(ros)
        if not is_node(ros, code):
            raise ArchiveError(f"{node_name(ros, code)}（{code}）下没有单位，不是汇总单位（县、市），没有汇总可以上报或审核。")
        return code

    def summary_flow(self, node: str, year: int) -> W.LevelFlow:
        """The state of a node's summary one level up."""
        code = self.node_code(node, year)
        with self._read() as conn:
            got = _flows(conn, year, [code]).get(code)
        return got[0] if got else W.LevelFlow()

    def summary_states(
        self, year: int, under: str | None = None, today: dt.date | None = None, states: list[UnitState] | None = None
    ) -> list[NodeState]:
        """The overview of a level: every node directly below ``under`` (default the roster's top) —
        its units' 未报送/待审核/退回/已通过, how many are 逾期, its summary's state — in roster order.
        ``states``: the units' states the caller already has (at least ``under``'s subtree), so that a
        page showing both the counties and the units computes them once (2,500 units: ~0.2 s each time)."""
        ros = self.need_roster(year)
        root = self.node_code(under, year)
        _, nodes = parts(ros, root)
        states = {s.code: s for s in (states if states is not None else self.status(year, today))}
        with self._read() as conn:
            flows = _flows(conn, year, [n.code for n in nodes])
        out = []
        for n in nodes:
            units = [states[u.code] for u in ros.subtree(n.code) if u.code in states]
            flow, row = flows.get(n.code, (W.LevelFlow(), None))
            out.append(_node_state(NodeState(year, n.code, n.name), units, flow, row))
        return out

    def own_states(self, year: int, under: str | None = None, today: dt.date | None = None) -> list[UnitState]:
        """报送情况 of the units a node (default the roster's top) reviews and sums itself: its own row
        and its children without units below them (a city's own departments), in roster order."""
        ros = self.need_roster(year)
        own = {u.code for u in parts(ros, self.node_code(under, year))[0]}
        return [s for s in self.status(year, today) if s.code in own]

    def summary_state(
        self, node: str, year: int, today: dt.date | None = None, states: list[UnitState] | None = None
    ) -> NodeState:
        """One node's line of the overview (``states``: as in ``summary_states``)."""
        ros = self.need_roster(year)
        code = self.node_code(node, year)
        codes = {u.code for u in ros.subtree(code)}
        units = [s for s in (states if states is not None else self.status(year, today)) if s.code in codes]
        with self._read() as conn:
            flow, row = _flows(conn, year, [code]).get(code, (W.LevelFlow(), None))
        return _node_state(NodeState(year, code, node_name(ros, code)), units, flow, row)

    def check_unit_open(self, unit_code: str, year: int) -> None:
        """Refuse a decision on a unit whose county (or any node above it) has submitted or been approved."""
        ros = self.need_roster(year)
        with self._read() as conn:
            check_open(conn, ros, unit_code, year)

    def locked_codes(self, year: int) -> set[str]:
        """The units of every node that has submitted (待审核) or been approved: no decision on them."""
        with self._read() as conn:
            return locked_in(conn, self.need_roster(year), year)

    # ------------------------------------------------------------ sums

    def node_summary(self, year: int, node: str | None = None) -> Summary:
        """A node's summary now (default the roster's top: the city's): its own units' approved
        versions and its lower nodes' approved summaries (a county not approved is 未报送 in it) —
        equal, cell for cell, to summing all their approved units directly."""
        ros = self.need_roster(year)
        code = self.node_code(node, year)
        return self._sum_node(ros, code, year, {})[0]

    def _node_reports(self, ros: Roster, code: str, year: int) -> tuple[list[Report], dict[str, dict[str, int]]]:
        """The Reports a node sums (own units' approved versions, lower nodes' approved summaries,
        each checked parent against children) and the basis: which version or summary of each."""
        from ..codec import from_stored
        from ..spec import current_format
        from .status import approved_ids

        own, nodes = parts(ros, code)
        with self._read() as conn:
            units = approved_ids(conn, year, {u.code for u in own})
            flows = _flows(conn, year, [n.code for n in nodes])
            approved = {c: f.approved_id for c, (f, _) in flows.items() if f.approved_id is not None}
            rows = conn.execute(select(SM.c.id, SM.c.unit_code, SM.c.report).where(SM.c.id.in_(list(approved.values())))).all()
        reports = self.reports(year, codes=list(units))
        fmt = current_format()
        for r in rows:
            rep = from_stored(r.report, [])
            bad = children_problems(rep, fmt)
            if bad:
                raise ArchiveError(
                    f"{node_name(ros, r.unit_code)}（{r.unit_code}）已通过的汇总与其下级单位之和不符：{'；'.join(bad[:3])}。"
                    "档案库中的记录可能被改动，请运行 nianbao verify，并请上级退回该单位后重新上报。"
                )
            reports.append(rep)
        return reports, {"units": units, "nodes": approved}

    def _sum_node(self, ros: Roster, code: str, year: int, excluded: Mapping[str, str]) -> tuple[Summary, dict[str, Any]]:
        """(the node's summary, its basis). Every version summed is approved and an approval refuses
        强制性 errors, so the 错误 left are 核实性 ones the reviewer explained: summed as the archive's
        other sums do (``force``)."""
        from ..consolidate import ConsolidateOptions, Refused, consolidate
        from ..spec import current_format

        reports, basis = self._node_reports(ros, code, year)
        name = None if ros.get(code) else node_name(ros, code)
        opts = ConsolidateOptions(exclude=tuple(excluded), force=True, summary_name=name)
        try:
            summary = consolidate(current_format(), reports, node_roster(ros, code), year, opts)
        except Refused as e:
            raise ArchiveError(str(e)) from None
        own = {f"（{u.code}）" for u in parts(ros, code)[0]}
        summary.notes = [(who, note) for who, note in self.notes(year) if any(who.endswith(c) for c in own)]
        return summary, basis

    # ------------------------------------------------------------ decisions one level up

    def submit_summary(
        self,
        node: str,
        year: int,
        note: str = "",
        excluded: Mapping[str, str] | None = None,
        actor: str = "命令行",
        scope: Scope | None = None,
    ) -> NodeState:
        """上报: the node's summary (its approved units, its lower nodes' approved summaries) goes to
        the level above and is stored as the node's version; refused while a unit is not 已通过 (unless
        ``excluded`` with a 说明: unit code → why), or while the node awaits or has the level above's
        approval. ``scope``: the submitter's (must see the node)."""
        ros = self.need_roster(year)
        code = self.node_code(node, year)
        if scope is not None:
            scope.require(code, "上报")
            actor = scope.actor
        head, excluded = (
            f"{node_name(ros, code)}（{code}）{year}年度",
            {k.strip(): v.strip() for k, v in (excluded or {}).items()},
        )
        own, nodes = parts(ros, code)
        states = {s.code: s for s in self.status(year)}
        lower = {s.code: s for s in self.summary_states(year, code)} if nodes else {}
        W.check_submit(head, self.summary_flow(code, year), [states[u.code] for u in own], list(lower.values()), excluded)
        summary, basis = self._sum_node(ros, code, year, excluded)
        self._store_summary(ros, code, year, summary, basis, dict(note=note.strip(), excluded=excluded, actor=actor), head)
        return self.summary_state(code, year)

    def _store_summary(
        self, ros: Roster, code: str, year: int, summary: Summary, basis: dict[str, Any], values: dict, head: str
    ) -> None:
        """Store the summary, inside the year's writers' lock, if nothing it was made of changed meanwhile."""
        from ..codec import to_stored
        from ..spec import current_format

        bad = children_problems(summary.report, current_format())
        if bad:  # cannot happen: the summary is made as the sum of its 明细
            raise ArchiveError(f"{head}的汇总与其下级单位之和不符（{'；'.join(bad[:3])}），未上报。")
        with self.engine.begin() as conn:
            _lock(conn, year)
            got = _flows(conn, year, [code]).get(code)
            if got is not None and got[0].locked:
                raise ArchiveError(f"{head}已上报（{got[0].status}），不能再次上报。")
            if self._basis_now(conn, ros, code, year) != basis:
                raise ArchiveError(f"{head}的单位在汇总期间有新的审核决定，请重新上报。")
            conn.execute(
                SM.insert().values(year=year, unit_code=code, at=now(), report=to_stored(summary.report), basis=basis, **values)
            )

    def _basis_now(self, conn: Any, ros: Roster, code: str, year: int) -> dict[str, Any]:
        from .status import approved_ids

        own, nodes = parts(ros, code)
        flows = _flows(conn, year, [n.code for n in nodes])
        approved = {c: f.approved_id for c, (f, _) in flows.items() if f.approved_id is not None}
        return {"units": approved_ids(conn, year, {u.code for u in own}), "nodes": approved}

    def approve_summary(
        self, node: str, year: int, note: str = "", actor: str = "命令行", scope: Scope | None = None
    ) -> NodeState:
        """通过 (by the level above): the node's newest summary counts one level up; its units stay locked."""
        return self._decide_summary(node, year, W.APPROVE, note, actor, scope)

    def return_summary(self, node: str, year: int, note: str, actor: str = "命令行", scope: Scope | None = None) -> NodeState:
        """退回 (by the level above, with the reason): the node is reopened — its reviewer may decide on
        its units again and submit anew; an approved node's approval is withdrawn."""
        return self._decide_summary(node, year, W.REJECT, note, actor, scope)

    def _decide_summary(self, node: str, year: int, kind: str, note: str, actor: str, scope: Scope | None) -> NodeState:
        ros = self.need_roster(year)
        code = self.node_code(node, year)
        head = f"{node_name(ros, code)}（{code}）{year}年度"
        if scope is not None:
            if not scope.can_decide_summary(code):
                raise ArchiveError(f"{scope.name}的审核人不能审核{head}的上报：只有其上级可以通过或退回。")
            actor = scope.actor
        note = (note or "").strip()
        with self.engine.begin() as conn:
            _lock(conn, year)
            flow = _flows(conn, year, [code]).get(code, (W.LevelFlow(), None))[0]
            if kind == W.APPROVE:
                W.check_level_approve(head, flow)
            else:
                W.check_level_return(head, flow, note)
            values = dict(year=year, unit_code=code, at=now(), kind=kind, note=note, summary_id=flow.summary_id, actor=actor)
            conn.execute(SE.insert().values(**values))
        return self.summary_state(code, year)

    def submitted_report(self, node: str, year: int, summary_id: int | None = None) -> Report:
        """A summary the node submitted (default: the newest), as stored."""
        from ..codec import from_stored

        code = self.node_code(node, year)
        flow = self.summary_flow(code, year)
        sid = summary_id or flow.summary_id
        with self._read() as conn:
            row = conn.execute(select(SM.c.report).where(SM.c.id == sid, SM.c.unit_code == code, SM.c.year == year)).first()
        if row is None:
            raise ArchiveError(f"{code} {year}年度没有上报过汇总" + (f"（编号 {summary_id}）。" if summary_id else "。"))
        return from_stored(row.report, [])

    def summary_history(self, node: str, year: int) -> list[HistoryItem]:
        """Every 上报 of a node and every decision of the level above on it, in time order, with who."""
        code = self.node_code(node, year)
        items = []
        with self._read() as conn:
            number = {}
            for n, r in enumerate(
                conn.execute(select(*SUMMARY_COLS).where(SM.c.year == year, SM.c.unit_code == code).order_by(SM.c.id)), 1
            ):
                number[r.id] = n
                why = "；".join(f"不纳入{c}：{w}" for c, w in (r.excluded or {}).items())
                text = f"第{n}次上报" + (f"：{r.note}" if r.note else "") + (f"（{why}）" if why else "")
                items.append(
                    HistoryItem(r.at, year, code, W.LEVEL_SUBMIT, text, actor=r.actor, submission_id=r.id, version=n, note=r.note)
                )
            for e in conn.execute(select(*EVENT_COLS).where(SE.c.year == year, SE.c.unit_code == code).order_by(SE.c.id)):
                n = number.get(e.summary_id, 0)
                text = f"第{n}次上报" + (f"：{e.note}" if e.note else "")
                items.append(
                    HistoryItem(e.at, year, code, e.kind, text, actor=e.actor, submission_id=e.summary_id, version=n, note=e.note)
                )
        return sorted(items, key=lambda i: dt.datetime.fromisoformat(i.at))


def _resolve(ros: Roster, unit: str | None) -> str:
    """A unit given by code or name — or the code its units share as 上级代码 (an implicit top)."""
    unit = (unit or "").strip()
    u = ros.get(unit) or next((x for x in ros.units if x.name == unit), None)
    if u is not None:
        return u.code
    if unit and any(x.parent == unit for x in ros.units):
        return unit
    raise ArchiveError(f"名册中没有单位“{unit}”（请用单位代码或名册中的单位名称）。")


def _key_info(row: Any, ros: Roster | None) -> KeyInfo:
    name = node_name(ros, row.unit_code) if ros is not None else ""
    return KeyInfo(row.id, row.unit_code, name, row.label or "", row.created_at, row.used_at or "", row.revoked_at or "")
