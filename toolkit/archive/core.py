"""The archive of a collection across years: rosters, every received file, its check, the
reviewer's decisions (退回, 说明) — and everything a year's work asks of them.

Statuses of a roster unit: 未报送 (nothing received), 退回 (its current return has 错误, or the
reviewer sent it back), 待说明 (警告 without an accepted 说明), 已通过. A 说明 accepts a set of
warning fingerprints: a new receipt with the same warnings keeps it, a new warning needs a new one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..findings import counts
from ..report import Report
from ..roster import Roster, Unit
from . import schema as T
from .db import ArchiveError, open_engine, shown

if TYPE_CHECKING:
    from ..check import WorkerPool

STATUSES = ("未报送", "退回", "待说明", "已通过")
REJECT, ACCEPT = "退回", "说明"
CARRY_TO, CARRY_FROM = "t3.r2.", "t3.r4."  # 二、上年结转 ← last year's 四、结转下年度继续办理 (rule carryover-mismatch)


def now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="microseconds")


@dataclass
class Received:
    """One file given to ``receive``: what became of it."""

    name: str
    outcome: str  # 新收 | 更正 | 重复（未改动） | 无法读取 | 非本单位… | 拒收… (see receive.py)
    unit_code: str = ""
    unit_name: str = ""
    status: str = ""  # the unit's status afterwards
    counts: dict[str, int] = field(default_factory=dict)
    report: Report | None = None
    previous_at: str = ""  # when the same bytes were received before


@dataclass
class UnitState:
    """One line of 报送情况."""

    year: int
    code: str
    name: str
    type: str
    parent: str
    status: str = "未报送"
    file: str = ""
    filler: str = ""
    phone: str = ""
    first_received: str = ""
    last_received: str = ""
    errors: int = 0
    warnings: int = 0
    hints: int = 0
    late: bool = False
    submission_id: int | None = None
    note: str = ""  # the last 退回 reason or 说明

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "submission_id"}


@dataclass
class HistoryItem:
    at: str
    year: int
    unit_code: str
    kind: str  # 收到 | 退回 | 说明
    text: str
    file: str = ""
    sha256: str = ""


class Archive:
    """``Archive.open(db)`` — a SQLite file path or a postgresql:// URL; None = $NIANBAO_DB or nianbao.db."""

    def __init__(self, engine: Any, url: str):
        self.engine, self.url = engine, url
        self._rosters: dict[int, tuple[tuple[Any, ...], Roster]] = {}

    @classmethod
    def open(cls, db: str | Path | None = None) -> Archive:
        return cls(*open_engine(db))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Archive({shown(self.url)!r})"

    def _read(self):  # type: ignore[no-untyped-def]
        return self.engine.connect().execution_options(nianbao_read=True)

    # ------------------------------------------------------------ rosters

    def load_roster(self, roster: Roster | str | Path, year: int, deadline: dt.date | None = None) -> Roster:
        """The year's roster (replacing one loaded before) and the deadline for returns."""
        from ..api import as_roster

        ros = as_roster(roster)
        assert ros is not None
        rows = [dict(year=year, code=u.code, name=u.name, type=u.type, parent=u.parent, line=u.line) for u in ros.units]
        with self.engine.begin() as conn:
            conn.execute(T.units.delete().where(T.units.c.year == year))
            conn.execute(T.years.delete().where(T.years.c.year == year))
            conn.execute(T.years.insert().values(year=year, deadline=deadline, roster_source=str(ros.source), loaded_at=now()))
            conn.execute(T.units.insert(), rows)
        return ros

    def years(self) -> list[int]:
        with self._read() as conn:
            return [r.year for r in conn.execute(T.years.select().order_by(T.years.c.year))]

    def roster(self, year: int) -> Roster | None:
        """The year's roster. A server asks for it on every request: the units are read again only
        when the year's row says the roster was loaded anew (by this or any other process)."""
        with self._read() as conn:
            src = conn.execute(T.years.select().where(T.years.c.year == year)).first()
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
            row = conn.execute(T.years.select().where(T.years.c.year == year)).first()
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
        **limits: Any,
    ) -> list[Received]:
        """Check every file exactly as ``check`` does and store it, one transaction per file
        (``pool``: long-lived worker processes, as a server keeps them; ``limits``: what a web upload
        may store, see ``receive.receive``)."""
        from .receive import receive

        return receive(self, paths, year, progress=progress, workers=workers, only_unit=only_unit, pool=pool, **limits)

    def usage(self, unit: str, year: int, since: str = "", shas: Iterable[str] = ()) -> Usage:
        """What a unit's link has used of its quotas: bytes stored for the unit's year (each distinct
        file once), receipts since ``since`` (an ISO time as ``now()`` writes it), and which of
        ``shas`` the year already holds (a retried upload adds no bytes)."""
        with self._read() as conn:
            return unit_usage(conn, unit, year, since, shas)

    # ------------------------------------------------------------ status

    def status(self, year: int, today: dt.date | None = None) -> list[UnitState]:
        """报送情况 of every roster unit of the year, in roster order."""
        from .status import unit_states

        return unit_states(self, year, today or dt.date.today())

    def state(self, unit: str, year: int, today: dt.date | None = None) -> UnitState:
        """One unit's line of 报送情况 (reads only that unit's receipts and decisions)."""
        from .status import unit_states

        code = self.unit_code(unit, year)
        return unit_states(self, year, today or dt.date.today(), only=code)[0]

    def unit_code(self, unit: str, year: int) -> str:
        """A unit given by code or by name, checked against the year's roster."""
        ros = self.need_roster(year)
        u = ros.get(unit) or next((x for x in ros.units if x.name == unit), None)
        if u is None:
            raise ArchiveError(f"{year}年度名册中没有单位“{unit}”（请用单位代码或名册中的单位名称）。")
        return u.code

    def accept(self, unit: str, year: int, note: str) -> UnitState:
        """强制上报: accept the current return's 警告 with a written 说明."""
        from .status import decide

        return decide(self, unit, year, note, ACCEPT)

    def reject(self, unit: str, year: int, note: str) -> tuple[UnitState, Report]:
        """退回 the current return with the reason; the Report, for the annotated copy."""
        from .status import decide

        state = decide(self, unit, year, note, REJECT)
        return state, self.report(state.submission_id)  # type: ignore[arg-type]

    def history(self, unit: str, year: int | None = None) -> list[HistoryItem]:
        from .status import history

        return history(self, unit, year)

    # ------------------------------------------------------------ reports

    def report(self, submission_id: int) -> Report:
        from .store import rebuild

        with self._read() as conn:
            row = conn.execute(T.submissions.select().where(T.submissions.c.id == submission_id)).one()
        return rebuild(row.report, row.findings)

    def reports(self, year: int, *, statuses: Iterable[str] | None = None) -> list[Report]:
        """The current return of every unit of the year (optionally only units in ``statuses``), rebuilt
        from the archive: the same Reports ``check`` made, without reading any file."""
        from sqlalchemy import func, select

        from .store import rebuild

        S = T.submissions
        self.need_roster(year)
        current = select(func.max(S.c.id)).where(S.c.year == year, S.c.unit_code != "").group_by(S.c.unit_code)
        with self._read() as conn:
            rows = conn.execute(select(S.c.id, S.c.report, S.c.findings).where(S.c.id.in_(current)).order_by(S.c.id)).all()
        # codes outside the roster have no status: they go to a summary as 不在名册, like files in a folder
        if statuses is not None:
            wanted = set(statuses)
            status = {s.submission_id: s.status for s in self.status(year) if s.submission_id}
            rows = [r for r in rows if status.get(r.id) in wanted]
        return [rebuild(r.report, r.findings) for r in rows]

    def notes(self, year: int) -> list[tuple[str, str]]:
        """(unit, 说明) of every unit whose current warnings are accepted."""
        from .status import accepted_notes

        return accepted_notes(self, year)

    def consolidate(self, year: int, **options: Any):
        """The summary of the year's current returns from the archive, as ``api.consolidate`` makes it
        from a folder of the same files; 汇总说明 lists the accepted 说明."""
        from ..api import consolidate

        ros = self.need_roster(year)
        reports = self.reports(year)
        summary = consolidate(reports, ros, year, **options)
        summary.notes = self.notes(year)
        return summary

    def carryover(self, year: int) -> dict[str, dict[str, Any]]:
        """Unit code → 上年结转 of ``year``'s template, from last year's accepted 结转下年度 (non-zero only)."""
        from ..spec import current_format
        from .receive import previous_reports

        cells = [c.id for c in current_format().inputs if c.id.startswith(CARRY_TO)]
        out = {}
        for code, prev in previous_reports(self, year - 1).items():
            values = {cid: prev.value(CARRY_FROM + cid.removeprefix(CARRY_TO)) for cid in cells}
            out[code] = {k: v for k, v in values.items() if v}
        return {k: v for k, v in out.items() if v}

    # ------------------------------------------------------------ analysts

    def export_frame(self, years: int | Iterable[int], wide: bool = False):
        from .export import export_frame

        return export_frame(self, years, wide)

    # ------------------------------------------------------------ care

    def verify(self, progress: Callable[[int], Any] | None = None) -> list[str]:
        """Re-hash every stored file and every stored receipt (report, findings, status): the problems
        found, in Chinese (empty when everything is as received). A changed receipt is named by unit,
        year and the cells whose stored figure differs from the stored file's."""
        from .verify import verify

        return verify(self, progress)

    def file_bytes(self, sha256: str) -> bytes:
        with self._read() as conn:
            row = conn.execute(T.files.select().where(T.files.c.sha256 == sha256)).first()
        if row is None:
            raise ArchiveError(f"档案库中没有文件 {sha256}")
        return bytes(row.data)

    def backup(self, out: str | Path) -> str:
        """A consistent copy while in use (SQLite); for PostgreSQL, the pg_dump command to run."""
        from .backup import backup

        return backup(self, Path(out))

    # ------------------------------------------------------------ settings (nianbao_meta)

    def setting(self, key: str) -> str | None:
        with self._read() as conn:
            return conn.execute(T.meta.select().with_only_columns(T.meta.c.value).where(T.meta.c.key == key)).scalar()

    def set_setting(self, key: str, value: str, keep: bool = False) -> str:
        """Store a setting; with ``keep`` a value already there wins, so several servers starting at
        once agree on one. Returns the value now stored."""
        from sqlalchemy.exc import IntegrityError

        where = T.meta.c.key == key
        try:
            with self.engine.begin() as conn:
                old = conn.execute(T.meta.select().with_only_columns(T.meta.c.value).where(where)).scalar()
                if old is None:
                    conn.execute(T.meta.insert().values(key=key, value=value))
                elif keep:
                    return old
                elif old != value:
                    conn.execute(T.meta.update().where(where).values(value=value))
        except IntegrityError:  # another process inserted it first (PostgreSQL)
            return self.setting(key) if keep else self.set_setting(key, value)
        return value


@dataclass
class Usage:
    """A unit's use of its year in the archive (the web quotas)."""

    bytes: int = 0
    receipts: int = 0
    known: set[str] = field(default_factory=set)


def unit_usage(conn: Any, unit: str, year: int, since: str = "", shas: Iterable[str] = ()) -> Usage:
    """``Archive.usage`` on an open connection (``store`` asks it inside its own transaction)."""
    from sqlalchemy import func, select

    S, F = T.submissions, T.files
    mine = select(S.c.sha256).where(S.c.year == year, S.c.unit_code == unit).distinct()
    stored = conn.execute(select(func.coalesce(func.sum(F.c.size), 0)).where(F.c.sha256.in_(mine))).scalar_one()
    receipts = 0
    if since:
        when = (S.c.year == year) & (S.c.unit_code == unit) & (S.c.received_at >= since)
        receipts = conn.execute(select(func.count()).select_from(S).where(when)).scalar_one()
    wanted = set(shas)
    known = set(conn.execute(select(S.c.sha256).where(S.c.year == year, S.c.sha256.in_(wanted))).scalars()) if wanted else set()
    return Usage(int(stored), int(receipts), known)


def verdict(report: Report) -> tuple[str, dict[str, int]]:
    c = counts(report.findings)
    if not report.readable:
        return "无法读取", c
    return ("有错误" if c["错误"] else "有警告" if c["警告"] else "通过"), c
