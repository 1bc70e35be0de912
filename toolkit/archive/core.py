"""The archive of a collection across years: rosters, every version a unit sent, its check, the
county's decisions on each version — and everything a year's work asks of them.

States of a roster unit (workflow.py decides them): 未报送, 待审核 (its newest version awaits the
reviewer), 退回, 已通过. The figures that count (consolidation, export, next year's carry-over) are
those of the version the reviewer approved, which a later upload never replaces by itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..report import Report
from ..roster import Roster, Unit
from . import schema as T
from .db import POOL_SIZE, ArchiveError, open_engine, shown
from .records import HistoryItem, Received, UnitState, Usage, Version, now, unit_usage
from .tree import Levels

if TYPE_CHECKING:
    from ..check import WorkerPool

CARRY_TO, CARRY_FROM = "t3.r2.", "t3.r4."  # 二、上年结转 ← last year's 四、结转下年度继续办理 (rule carryover-mismatch)
PRUNE_EVERY = 60.0  # seconds between two clean-ups of a kind's old attempts by one process
# The years' rows seen during one answer of the server (``Archive.answering``), on every thread it runs on.
_ANSWER_YEARS: contextvars.ContextVar[dict[tuple[str, int], Any] | None] = contextvars.ContextVar(
    "nianbao_answer_years", default=None
)


class Archive(Levels):  # Levels (tree.py): keys per level, approval up the tree (issue 31)
    """``Archive.open(db)`` — a SQLite file path or a postgresql:// URL; None = $NIANBAO_DB or nianbao.db."""

    def __init__(self, engine: Any, url: str):
        self.engine, self.url = engine, url
        self._rosters: dict[int, tuple[tuple[Any, ...], Roster]] = {}
        self._pin = threading.local()  # this thread's reading connection while a ``_read`` block is open
        self._pruned: dict[str, float] = {}  # attempts' kind → when this process last dropped its old ones
        # PostgreSQL reads without a transaction: under READ COMMITTED each statement sees its own
        # snapshot either way, and BEGIN and ROLLBACK were two more round trips per page
        self._read_options: dict[str, Any] = {"nianbao_read": True}
        if engine.dialect.name == "postgresql":
            self._read_options["isolation_level"] = "AUTOCOMMIT"

    @classmethod
    def open(cls, db: str | Path | None = None, connections: int = POOL_SIZE) -> Archive:
        """``connections``: PostgreSQL connections kept open (``make_engine``); a server's processes
        keep enough for their threads."""
        return cls(*open_engine(db, connections))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Archive({shown(self.url)!r})"

    @contextlib.contextmanager
    def _read(self, streamed: bool = False):  # type: ignore[no-untyped-def]
        """A reading connection. Blocks opened inside another one, in the same thread, share its
        connection, and read the year's row once: a page that asks a dozen questions (the roster, the
        deadline, a unit's state, its history) costs one connection and one look at the year, not a
        dozen (each connection is a ping and a rollback, each a round trip to the server). Never
        wrapped around a write: SQLite's reader would not see it. ``streamed``: rows will be read
        through a server-side cursor, which PostgreSQL keeps only inside a transaction."""
        pin = self._pin
        shared = getattr(pin, "conn", None)
        if shared is not None:
            yield shared
            return
        options = {"nianbao_read": True} if streamed else self._read_options
        with self.engine.connect().execution_options(**options) as conn:
            answer = _ANSWER_YEARS.get()
            pin.conn, pin.years = conn, (answer if answer is not None else {})
            try:
                yield conn
            finally:
                pin.conn = pin.years = None

    reading = _read  # for the pages: ``with archive.reading(): …`` around the reads of one answer

    @contextlib.contextmanager
    def answering(self):  # type: ignore[no-untyped-def]
        """One answer of the server: the year's row (which says whether the roster changed) is read
        once for all of it, on whichever threads the answer's steps run (an upload asked for it four
        times: the link, the check, last year's reports, the page). A roster loaded during the answer
        is seen by the next one, as if the answer had begun a moment earlier."""
        token = _ANSWER_YEARS.set({})
        try:
            yield
        finally:
            _ANSWER_YEARS.reset(token)

    def _year_row(self, conn: Any, year: int) -> Any:
        """The year's row (roster loaded when, deadline, automatic 通过), once per reading block or answer."""
        seen = self._pin.years if getattr(self._pin, "conn", None) is conn else _ANSWER_YEARS.get()
        key = (self.url, year)  # an answer may read two archives
        if seen is not None and key in seen:
            return seen[key]
        # the year before comes along: an upload asks for it next (last year's reports, the cross-year rules)
        rows = {r.year: r for r in conn.execute(_year_statement(), {"years": [year, year - 1]})}
        if seen is not None:
            seen[key] = rows.get(year)
            seen.setdefault((self.url, year - 1), rows.get(year - 1))
        return rows.get(year)

    # ------------------------------------------------------------ rosters

    def load_roster(
        self, roster: Roster | str | Path, year: int, deadline: dt.date | None = None, auto_approve: bool | None = None
    ) -> Roster:
        """The year's roster (replacing one loaded before), the deadline for returns and whether clean
        versions are approved at receipt; ``deadline`` or ``auto_approve`` None keeps the year's
        value (off for a new year: the county reviews every version)."""
        from ..roster import load_roster

        ros = roster if isinstance(roster, Roster) else load_roster(roster)
        rows = [dict(year=year, code=u.code, name=u.name, type=u.type, parent=u.parent, line=u.line) for u in ros.units]
        Y = T.years
        with self.engine.begin() as conn:
            old = conn.execute(Y.select().where(Y.c.year == year)).first()
            if deadline is None and old is not None:
                deadline = old.deadline
            if auto_approve is None:
                auto_approve = bool(old.auto_approve) if old is not None else False
            conn.execute(T.units.delete().where(T.units.c.year == year))
            conn.execute(Y.delete().where(Y.c.year == year))
            values = dict(year=year, deadline=deadline, roster_source=str(ros.source), loaded_at=now(), auto_approve=auto_approve)
            conn.execute(Y.insert().values(**values))
            conn.execute(T.units.insert(), rows)
        if (seen := _ANSWER_YEARS.get()) is not None:
            seen.pop((self.url, year), None)
        return ros

    def auto_approve(self, year: int) -> bool:
        """Whether the year's clean versions are approved at receipt (``roster load --auto-approve``)."""
        with self._read() as conn:
            row = self._year_row(conn, year)
        return bool(row.auto_approve) if row else False

    def years(self) -> list[int]:
        with self._read() as conn:
            return [r.year for r in conn.execute(T.years.select().order_by(T.years.c.year))]

    def roster(self, year: int) -> Roster | None:
        """The year's roster. A server asks for it on every request: the units are read again only
        when the year's row says the roster was loaded anew (by this or any other process)."""
        with self._read() as conn:
            src = self._year_row(conn, year)
            if src is None:
                return None
            loaded = (src.loaded_at, src.roster_source)
            cached = self._rosters.get(year)
            if cached is not None and cached[0] == loaded:
                return cached[1]
            rows = conn.execute(T.units.select().where(T.units.c.year == year).order_by(T.units.c.line, T.units.c.code)).all()
        ros = Roster(tuple(Unit(r.code, r.name, r.type, r.parent, r.line) for r in rows), src.roster_source)
        self._rosters[year] = (loaded, ros)
        return ros

    def need_roster(self, year: int) -> Roster:
        ros = self.roster(year)
        if ros is None:
            raise ArchiveError(f"档案库中还没有{year}年度的名册。请先运行：nianbao roster load 名册.csv --year {year}")
        return ros

    def deadline(self, year: int) -> dt.date | None:
        with self._read() as conn:
            row = self._year_row(conn, year)
        return row.deadline if row else None

    # ------------------------------------------------------------ receive

    def receive(
        self,
        paths: str | Path | Iterable[str | Path],
        year: int,
        *,
        progress: Callable[[int], Any] | None = None,
        workers: int | None = None,
        only_unit: str | None = None,
        pool: WorkerPool | None = None,
        source: str = "命令行",
        stored: Callable[[int], Any] | None = None,
        **limits: Any,
    ) -> list[Received]:
        """Check every file exactly as ``check`` does and store each as a new version of its unit
        (a few files per transaction; ``pool``: long-lived worker processes, as a server keeps them;
        ``source``: who sends, workflow.SOURCES; ``stored``: called with the number of files stored so
        far; ``limits``: what a web upload may store, see ``receive.receive``; ``unit_bytes`` among them
        is the bytes a unit's year may hold)."""
        from .receive import Intake, receive, tell_states

        with self._read():  # one connection for what is read before checking (none held while storing)
            ros = self.need_roster(year)
            last_year = self.previous_reports(year - 1, only_unit)
        intake = Intake(self.engine, year, source, unit_bytes=limits.pop("unit_bytes", None))
        opts = dict(progress=progress, workers=workers, only_unit=only_unit, pool=pool, stored=stored)
        out = receive(intake, paths, ros, last_year, **opts, **limits)
        if only_unit is not None:  # a unit's link: its status as its last storing transaction left it
            told = [r.status for r in out if r.unit_code == only_unit and r.status]
            states = {only_unit: told[-1]} if told else {}
        else:
            from .status import current_statuses

            with self._read() as conn:
                states = current_statuses(conn, ros, year)
        tell_states(out, states)
        return out

    def store_imported(self, reports: list[Report]) -> list[Received]:
        """Published reports read by ``import``, kept as their year's approved versions (last year's
        figures for the cross-year rules: what a unit published counts); the year's roster must be in
        the archive."""
        from .receive import Intake, store_published

        years = sorted({r.year for r in reports if r.readable and r.year})
        for y in years:
            self.need_roster(y)
        out: list[Received] = []
        for y in years:
            mine = [r for r in reports if r.readable and r.year == y]
            out.extend(store_published(Intake(self.engine, y, "导入", imported=True), mine, self.previous_reports(y - 1)))
        return out

    def add_cross_year(self, reports: Iterable[Report], year: int) -> None:
        """The cross-year findings of ``year``'s reports against the archive's approved versions of the
        year before (`check --db`), added to each report's findings."""
        from .receive import add_cross_year

        last = self.previous_reports(year - 1)
        for r in reports:
            add_cross_year(r, last)

    def previous_reports(self, year: int, only: str | None = None) -> dict[str, Report]:
        """The approved version of each unit of ``year`` (last year's, for the cross-year rules: its
        figures stand); of one unit only with ``only`` (an upload through a unit's link must not
        rebuild the whole year). Empty when the archive has no roster of the year."""
        ros = self.roster(year)
        if ros is None or (only is not None and ros.get(only) is None):
            return {}
        return {r.unit_code: r for r in self.reports(year, codes=None if only is None else [only])}

    def usage(
        self, unit: str, year: int, since: str = "", shas: Iterable[str] = (), attempts: tuple[str, float] | None = None
    ) -> Usage:
        """What a unit's link has used of its quotas: bytes stored for the unit's year (each distinct
        file once), the versions its link stored since ``since`` (an ISO time as ``now()`` writes it;
        the county's own uploads for the unit are not the link's), which of ``shas`` the year already
        holds (a retried upload adds no bytes); with ``attempts`` (kind, window) also what
        ``attempts(kind, unit, window)`` says, in the same round trip."""
        with self._read() as conn:
            return unit_usage(conn, unit, year, since, shas, attempts)

    # ------------------------------------------------------------ status

    def status(self, year: int, today: dt.date | None = None, under: str | None = None) -> list[UnitState]:
        """报送情况 of every roster unit of the year, in roster order (of the subtree of ``under`` only)."""
        states = self._states(year, today)
        scope = None if under is None else self.scope(year, under)
        return states if scope is None else [s for s in states if scope.can_see(s.code)]

    def state(self, unit: str, year: int, today: dt.date | None = None) -> UnitState:
        """One unit's line of 报送情况 (reads only that unit's receipts and decisions)."""
        with self._read():
            return self._states(year, today, self.unit_code(unit, year))[0]

    def unit_page(self, unit: str, year: int, today: dt.date | None = None) -> tuple[UnitState, list[HistoryItem]]:
        """``state`` and ``history`` of the year together, as a unit's page shows them after every
        upload: one connection, one read of the unit's versions and one of its events."""
        from .status import unit_page

        with self._read() as conn:
            code, ros, deadline = self.unit_code(unit, year), self.need_roster(year), self.deadline(year)
            return unit_page(conn, ros, deadline, code, year, today or dt.date.today())

    def _states(self, year: int, today: dt.date | None, only: str | None = None) -> list[UnitState]:
        from .status import unit_states

        with self._read() as conn:  # the roster, the deadline and the states: one connection, the year read once
            ros, deadline = self.need_roster(year), self.deadline(year)
            return unit_states(conn, ros, deadline, year, today or dt.date.today(), only)

    def chase_list(self, year: int, states: list[UnitState] | None = None) -> list[UnitState]:
        """Whom to chase (未报送, 退回) among ``states`` (default: the year's 报送情况), with last year's
        填报人 and 电话 when this year's are unknown."""
        from .status import chase_list

        last = self.status(year - 1) if self.roster(year - 1) is not None else None
        return chase_list(self.status(year) if states is None else states, last, year)

    def unit_code(self, unit: str, year: int) -> str:
        """A unit given by code or by name, checked against the year's roster."""
        ros = self.need_roster(year)
        u = ros.get(unit) or next((x for x in ros.units if x.name == unit), None)
        if u is None:
            raise ArchiveError(f"{year}年度名册中没有单位“{unit}”（请用单位代码或名册中的单位名称）。")
        return u.code

    def approve(self, unit: str, year: int, note: str = "", submission_id: int | None = None, actor: str = "命令行") -> UnitState:
        """通过: the version ``submission_id`` (None = the newest) becomes the unit's figures. Refused
        when it is not the newest, has 强制性 errors or is unreadable; a 说明 (``note``) is required
        when it has 警告 or 核实性 errors, and is bound to them."""
        from . import workflow as W

        return self._decide(unit, year, note, W.APPROVE, submission_id, actor)[0]

    accept = approve  # the CLI command's name (accept = 通过)

    def reject(
        self, unit: str, year: int, note: str, submission_id: int | None = None, actor: str = "命令行"
    ) -> tuple[UnitState, Report]:
        """退回 the version ``submission_id`` (None = the newest, which it must be) with the reason; a
        退回 of the approved version also withdraws its approval. The Report, for the annotated copy."""
        from . import workflow as W

        state, sid = self._decide(unit, year, note, W.REJECT, submission_id, actor)
        return state, self.report(sid)

    def reopen(self, unit: str, year: int, note: str, submission_id: int | None = None, actor: str = "命令行") -> UnitState:
        """撤销通过: the approved version no longer counts (the unit's figures leave the summary until
        a version is approved again); ``note`` says why."""
        from . import workflow as W

        return self._decide(unit, year, note, W.REOPEN, submission_id, actor)[0]

    def _decide(self, unit: str, year: int, note: str, kind: str, sid: int | None, actor: str) -> tuple[UnitState, int]:
        """Record a decision (status.decide); the unit's state after it and the version decided on."""
        from .status import decide, label
        from .tree import check_open

        code = self.unit_code(unit, year)
        self.check_unit_open(code, year)  # its county has submitted or been approved: locked (tree.py)
        ros, head = self.need_roster(year), label(self.state(code, year))
        # the county's lock asked again inside the decision's transaction, after the year's lock
        decided = decide(self.engine, code, year, head, note, kind, sid, actor, lambda conn: check_open(conn, ros, code, year))
        return self.state(code, year), decided

    def approve_clean(self, year: int, actor: str = "命令行", under: str | None = None) -> list[UnitState]:
        """通过 every unit whose newest version awaits review without 错误 or 警告 (after a batch; of
        the subtree of ``under`` only; not in a county that has submitted or been approved)."""
        out = []
        locked = self.locked_codes(year)
        for s in self.status(year, under=under):
            if s.status == "待审核" and not s.errors and not s.warnings and s.submission_id and s.code not in locked:
                out.append(self.approve(s.code, year, "", s.submission_id, actor))
        return out

    def history(self, unit: str, year: int | None = None) -> list[HistoryItem]:
        """Every version, 重复收到, 拒收, 通过, 退回 and 撤销通过 of a unit, in time order, with who."""
        from .status import history

        years, code = self._unit_years(unit, year)
        with self._read() as conn:
            return history(conn, code, years)

    def _unit_years(self, unit: str, year: int | None) -> tuple[list[int], str]:
        """The years to look in (``year``, or all) and the unit's code (given by code or name)."""
        years = [year] if year else self.years()
        for y in years:
            ros = self.roster(y)
            u = None if ros is None else ros.get(unit) or next((x for x in ros.units if x.name == unit), None)
            if u is not None:
                return years, u.code
        if year:
            self.unit_code(unit, year)  # raises the Chinese message
        raise ArchiveError(f"档案库中没有单位“{unit}”（请用单位代码或名册中的单位名称）。")

    def _version_rows(self, unit: str, year: int) -> tuple[list[Any], list[Any]]:
        from .versions import rows

        with self._read() as conn:
            return rows(conn, self.unit_code(unit, year), year)

    def versions(self, unit: str, year: int) -> list[Version]:
        """The unit's versions of the year, oldest first (第1版 …), each with its decision."""
        from .versions import versions

        return versions(*self._version_rows(unit, year))

    def diff(self, unit: str, year: int, from_id: int | None = None, to_id: int | None = None) -> list[Any]:
        """The cells that differ between two versions (default: the approved one → the newest)."""
        from .versions import diff_ids, diff_reports

        old, new = diff_ids(*self._version_rows(unit, year), unit, year, from_id, to_id)
        return diff_reports(self.report(old), self.report(new))

    def diff_last_year(self, unit: str, year: int, submission_id: int | None = None) -> list[Any]:
        """The cells that differ from last year's approved version (default: of the newest version)."""
        from .versions import diff_reports, newest_id

        sid = newest_id(self._version_rows(unit, year)[0], unit, year, submission_id)
        last = self.previous_reports(year - 1, self.unit_code(unit, year))
        if not last:
            raise ArchiveError(f"档案库中没有{unit} {year - 1}年度已通过的填报表，无法与上年对比。")
        return diff_reports(next(iter(last.values())), self.report(sid))

    # ------------------------------------------------------------ reports

    def report(self, submission_id: int) -> Report:
        from ..codec import from_stored

        with self._read() as conn:
            row = conn.execute(T.submissions.select().where(T.submissions.c.id == submission_id)).one()
        return from_stored(row.report, row.findings)

    def reports(self, year: int, *, codes: Iterable[str] | None = None) -> list[Report]:
        """The approved version of every unit of the year that has one (of ``codes`` only, if given),
        rebuilt from the archive: the same Reports ``check`` made, without reading any file. Units
        without an approved version are absent (未报送 in a summary)."""
        from sqlalchemy import select

        from ..codec import from_stored
        from .status import approved_ids

        S = T.submissions
        self.need_roster(year)
        with self._read() as conn:
            ids = approved_ids(conn, year, set(codes) if codes is not None else None)
            rows = conn.execute(
                select(S.c.id, S.c.report, S.c.findings).where(S.c.id.in_(list(ids.values()))).order_by(S.c.id)
            ).all()
        return [from_stored(r.report, r.findings) for r in rows]

    def notes(self, year: int) -> list[tuple[str, str]]:
        """(unit, 说明) of every unit whose approved version was approved with a 说明."""
        from .status import accepted_notes

        states = self.status(year)
        with self._read() as conn:
            return accepted_notes(conn, states, year)

    def consolidate(self, year: int, options: Any = None, **choices: Any):
        """The summary of the year's approved versions, as ``nianbao.consolidate`` makes it from a folder
        of the same files (``options``: a ConsolidateOptions, or its fields as keywords); 汇总说明
        lists the 说明 of the approvals."""
        from ..consolidate import consolidate
        from ..spec import current_format

        ros = self.need_roster(year)
        reports = self.reports(year)
        if not reports:
            raise ArchiveError(f"档案库中还没有{year}年度审核通过的填报表，未生成汇总表。")
        summary = consolidate(current_format(), reports, ros, year, options, **choices)
        summary.notes = self.notes(year)
        return summary

    def carryover(self, year: int, only: str | None = None) -> dict[str, dict[str, Any]]:
        """Unit code → 上年结转 of ``year``'s template, from last year's accepted 结转下年度 (non-zero only);
        of one unit only with ``only`` (a unit's link downloading its template)."""
        from ..spec import current_format

        cells = [c.id for c in current_format().inputs if c.id.startswith(CARRY_TO)]
        out = {}
        for code, prev in self.previous_reports(year - 1, only).items():
            values = {cid: prev.value(CARRY_FROM + cid.removeprefix(CARRY_TO)) for cid in cells}
            out[code] = {k: v for k, v in values.items() if v}
        return {k: v for k, v in out.items() if v}

    # ------------------------------------------------------------ analysts

    def export_frame(self, years: int | Iterable[int], wide: bool = False, under: str | None = None):
        """The approved figures of the years (of the subtree of ``under`` only) as a table."""
        from .export import export_frame

        ys = [years] if isinstance(years, int) else list(years)
        rows = []
        for y in ys:
            states = self.status(y, under=under)
            rows.append((y, states, self.reports(y, codes=None if under is None else [s.code for s in states])))
        return export_frame(rows, wide)

    # ------------------------------------------------------------ care

    def verify(self, progress: Callable[[int], Any] | None = None) -> list[str]:
        """Re-hash every stored file and every stored receipt (report, findings, status): the problems
        found, in Chinese (empty when everything is as received). A changed receipt is named by unit,
        year and the cells whose stored figure differs from the stored file's."""
        from .verify import verify

        return verify(functools.partial(self._read, streamed=True), progress)

    def file_bytes(self, sha256: str) -> bytes:
        with self._read() as conn:
            row = conn.execute(T.files.select().where(T.files.c.sha256 == sha256)).first()
        if row is None:
            raise ArchiveError(f"档案库中没有文件 {sha256}")
        return bytes(row.data)

    # ------------------------------------------------------------ 在线填写 drafts (issue 30, drafts.py)

    def save_draft(self, unit: str, year: int, author: str, body: dict[str, Any]) -> str:
        """Keep what ``author`` (链接: the unit's clerk; 审核人: the reviewer) typed into the unit's form;
        returns when (ISO time). ArchiveError in Chinese for a draft over drafts.MAX_BYTES."""
        from . import drafts

        return drafts.save(self.engine, year, unit, author, body)

    def draft(self, unit: str, year: int, author: str) -> tuple[dict[str, Any], str] | None:
        """(body, saved at) of the unit's draft by ``author``, or None."""
        from . import drafts

        with self._read() as conn:
            return drafts.load(conn, year, unit, author)

    def drop_draft(self, unit: str, year: int, author: str | None = None) -> None:
        from . import drafts

        drafts.drop(self.engine, year, unit, author)

    def backup(self, out: str | Path) -> str:
        """A consistent copy while in use (SQLite); for PostgreSQL, the pg_dump command to run."""
        from .backup import backup

        return backup(self.url, Path(out))

    def wal_file(self) -> Path | None:
        """The SQLite write-ahead log beside the archive (None for PostgreSQL): while a server runs,
        recent changes live there until a checkpoint moves them into the archive file."""
        if self.engine.dialect.name != "sqlite":
            return None
        return Path(self.url.removeprefix("sqlite:///") + "-wal")

    def checkpoint(self) -> bool:
        """Move the write-ahead log into the archive file and empty it, so that the file alone holds
        everything (a copy of it is then not a stale archive). True when the log could be emptied;
        False when readers kept part of it (the next checkpoint finishes it). PostgreSQL: nothing to do."""
        if self.engine.dialect.name != "sqlite":
            return True
        with self.engine.connect().execution_options(**self._read_options) as conn:
            busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            conn.rollback()
        return not busy

    # ------------------------------------------------------------ settings and secrets (secrets.py)

    def setting(self, key: str) -> str | None:
        from .secrets import setting

        with self._read() as conn:
            return setting(conn, key)

    def set_setting(self, key: str, value: str, keep: bool = False) -> str:
        """Store a setting; with ``keep`` a value already there wins, so several servers starting at
        once agree on one. Returns the value now stored."""
        from .secrets import set_setting

        return set_setting(self.engine, key, value, keep)

    def links(self, codes: list[str] | None = None) -> dict[str, str | None]:
        """The units' live links: code → token (None: made by an older nianbao, cannot be shown)."""
        from .secrets import links_of

        return links_of(self.engine, codes)

    def issue_links(
        self, year: int, rotate: list[str] | tuple[str, ...] = (), under: str | None = None
    ) -> tuple[list[Any], list[Unit]]:
        """Every roster unit's current link (of the subtree of ``under`` only), made for a unit without
        one and for the codes in ``rotate``; second, the units whose working link cannot be shown
        (secrets.issue_links)."""
        from .secrets import issue_links

        return issue_links(self.engine, self.scope(year, under).units(self.need_roster(year)), rotate)

    def rotate_link(self, code: str) -> str:
        """A new link for one unit (the admin page's 重新生成); the old one stops working at once."""
        from .secrets import rotate_link

        return rotate_link(self.engine, code)

    def link_unit(self, token: str, year: int | None = None) -> str | None:
        """The unit code of a live link (one made for any year), or None; with ``year``, None also
        for a unit not in that year's roster — the link and the roster read on one connection (every
        request through a link asks)."""
        from .secrets import digest

        if not token or len(token) > 200:  # as secrets.live: anything that long is not one of ours
            return None
        with self._read() as conn:
            code = conn.execute(_link_statement(), {"digest": digest(token)}).scalar()
            if code is None or year is None:
                return code
            return code if self.need_roster(year).get(code) is not None else None

    def set_admin_key(self, key: str | None = None) -> str:
        """Replace the admin key (a new random one unless given); every session signed in ends."""
        from .secrets import set_admin_key

        return set_admin_key(self.engine, key)

    def admin_key_since(self) -> str | None:
        """When the live admin key was set (None: the archive has none yet)."""
        from .secrets import admin_key_since

        return admin_key_since(self.engine)

    def is_admin_key(self, key: str) -> bool:
        from .secrets import live

        return live(self.engine, "admin", key) is not None

    def new_session(self) -> str:
        """A signed-in admin's session id (stored as its digest)."""
        from .secrets import new_session

        return new_session(self.engine)

    def is_session(self, token: str) -> bool:
        """A live session signed in within the last secrets.SESSION_HOURS hours."""
        from .secrets import is_session

        return is_session(self.engine, token)

    def end_session(self, token: str) -> None:
        """退出: the session stops working at once, in every server process."""
        from .secrets import end_session

        end_session(self.engine, token)

    # ------------------------------------------------------------ shared by server processes (leases.py, issue 31)

    def process_locks(self) -> Any:
        """This process's named locks, shared with the archive's other server processes (PostgreSQL
        advisory locks; a SQLite archive has one server process and keeps them in memory)."""
        from .leases import process_locks

        return process_locks(self.engine)

    def add_attempt(self, kind: str, subject: str, window: float) -> None:
        """Count one attempt (a wrong admin key, an upload through a link) for every server process.
        The kind's attempts older than ``window`` are dropped at most once a minute by this process
        (counting ignores them anyway): one statement per attempt instead of two."""
        from .leases import add_attempt

        clock = time.monotonic()
        prune = clock - self._pruned.get(kind, -PRUNE_EVERY) >= PRUNE_EVERY
        if prune:
            self._pruned[kind] = clock
        add_attempt(self.engine, kind, subject, window, prune=prune)

    def attempts(self, kind: str, subject: str, window: float) -> tuple[int, float]:
        """(attempts of ``subject`` in the last ``window`` seconds, seconds until the oldest leaves it)."""
        from .leases import attempts

        with self._read() as conn:
            return attempts(conn, kind, subject, window)

    def clear_attempts(self, kind: str, subject: str) -> None:
        from .leases import clear_attempts

        clear_attempts(self.engine, kind, subject)


@functools.cache
def _year_statement() -> Any:
    """The rows of ``:years``, asked on every answer of the server: built once."""
    from sqlalchemy import bindparam

    return T.years.select().where(T.years.c.year.in_(bindparam("years", expanding=True)))


@functools.cache
def _link_statement() -> Any:
    """A live link's unit by the link's digest, asked on every request through a link: built once."""
    from sqlalchemy import bindparam, select

    K = T.secrets
    return select(K.c.unit_code).where(K.c.kind == "link", K.c.digest == bindparam("digest"), K.c.revoked_at.is_(None))
