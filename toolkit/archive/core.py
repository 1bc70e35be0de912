"""The archive of a collection across years: rosters, every version a unit sent, its check, the
county's decisions on each version — and everything a year's work asks of them.

States of a roster unit (workflow.py decides them): 未报送, 待审核 (its newest version awaits the
reviewer), 退回, 已通过. The figures that count (consolidation, export, next year's carry-over) are
those of the version the reviewer approved, which a later upload never replaces by itself.
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

STATUSES = ("未报送", "待审核", "退回", "已通过")  # = workflow.STATUSES (kept here for callers)
CARRY_TO, CARRY_FROM = "t3.r2.", "t3.r4."  # 二、上年结转 ← last year's 四、结转下年度继续办理 (rule carryover-mismatch)


def now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="microseconds")


@dataclass
class Received:
    """One file given to ``receive``: what became of it."""

    name: str
    # 新收 | 新版本 | 重复（与最新版本相同） | 无法读取 | 拒收… | 非本单位（未接收） (see receive.py)
    outcome: str
    unit_code: str = ""
    unit_name: str = ""
    status: str = ""  # the unit's status afterwards
    counts: dict[str, int] = field(default_factory=dict)
    report: Report | None = None
    previous_at: str = ""  # 重复: when the newest version (the same bytes) was received
    version: int = 0  # 第N版 of the unit's year this file is (or, for a 重复, repeats)
    submission_id: int | None = None
    older_date: bool = False  # its 填报日期 is earlier than the approved (or previous) version's
    auto: str = ""  # the decision recorded at once: 通过 (auto-approve) | 退回 (强制性 errors, unreadable) | ""
    reason: str = ""  # why a file was refused (拒收, 无法读取), in Chinese


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
    late: bool = False  # past the deadline and not 已通过
    submitted_late: bool = False  # its first version came after the deadline
    # the newest version (file, filler … hints above are its own); None = 未报送
    submission_id: int | None = None
    version: int = 0  # 第N版 of the newest version
    approved_id: int | None = None  # the version whose figures count (may be older than the newest)
    approved_version: int = 0
    pending_id: int | None = None  # the newest version when it is not the approved one
    older_date: bool = False  # the newest version's 填报日期 is earlier than the approved (or previous) one's
    filled_on: str = ""  # 填报日期 of the newest version
    source: str = ""  # who sent the newest version: 链接 | 管理页面 | 命令行 | 在线填写 | 导入
    explanation: str = ""  # the newest version's 情况说明 (cover)
    note: str = ""  # the decision on the newest version: 退回 reason or 说明
    reason: str = ""  # the reviewer's 退回 reason while it stands (also above a newer version awaiting review)
    decided_by: str = ""  # who decided on the newest version: 管理页面 | 命令行 | 自动

    def row(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class HistoryItem:
    at: str
    year: int
    unit_code: str
    kind: str  # 收到 (a version) | 重复收到 | 拒收 | 通过 | 退回 | 撤销通过 (说明: 通过 before schema 0004)
    text: str
    file: str = ""
    sha256: str = ""
    actor: str = ""  # who: 链接 | 管理页面 | 命令行 | 在线填写 | 导入 | 自动
    submission_id: int | None = None
    version: int = 0
    note: str = ""


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

    def load_roster(
        self, roster: Roster | str | Path, year: int, deadline: dt.date | None = None, auto_approve: bool | None = None
    ) -> Roster:
        """The year's roster (replacing one loaded before), the deadline for returns and whether clean
        versions are approved at receipt; ``deadline`` or ``auto_approve`` None keeps the year's
        value (off for a new year: the county reviews every version)."""
        from ..api import as_roster

        ros = as_roster(roster)
        assert ros is not None
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
        return ros

    def auto_approve(self, year: int) -> bool:
        """Whether the year's clean versions are approved at receipt (``roster load --auto-approve``)."""
        with self._read() as conn:
            row = conn.execute(T.years.select().where(T.years.c.year == year)).first()
        return bool(row.auto_approve) if row else False

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
        source: str = "命令行",
        stored: Callable[[int], Any] | None = None,
        **limits: Any,
    ) -> list[Received]:
        """Check every file exactly as ``check`` does and store each as a new version of its unit
        (a few files per transaction; ``pool``: long-lived worker processes, as a server keeps them;
        ``source``: who sends, workflow.SOURCES; ``stored``: called with the number of files stored so
        far; ``limits``: what a web upload may store, see ``receive.receive``)."""
        from .receive import receive

        return receive(
            self,
            paths,
            year,
            progress=progress,
            workers=workers,
            only_unit=only_unit,
            pool=pool,
            source=source,
            stored=stored,
            **limits,
        )

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

    def approve(self, unit: str, year: int, note: str = "", submission_id: int | None = None, actor: str = "命令行") -> UnitState:
        """通过: the version ``submission_id`` (None = the newest) becomes the unit's figures. Refused
        when it is not the newest, has 强制性 errors or is unreadable; a 说明 (``note``) is required
        when it has 警告 or 核实性 errors, and is bound to them."""
        from . import workflow as W
        from .status import decide

        return decide(self, unit, year, note, W.APPROVE, submission_id, actor)[0]

    accept = approve  # the CLI command's name (accept = 通过)

    def reject(
        self, unit: str, year: int, note: str, submission_id: int | None = None, actor: str = "命令行"
    ) -> tuple[UnitState, Report]:
        """退回 the version ``submission_id`` (None = the newest, which it must be) with the reason; a
        退回 of the approved version also withdraws its approval. The Report, for the annotated copy."""
        from . import workflow as W
        from .status import decide

        state, sid = decide(self, unit, year, note, W.REJECT, submission_id, actor)
        return state, self.report(sid)

    def reopen(self, unit: str, year: int, note: str, submission_id: int | None = None, actor: str = "命令行") -> UnitState:
        """撤销通过: the approved version no longer counts (the unit's figures leave the summary until
        a version is approved again); ``note`` says why."""
        from . import workflow as W
        from .status import decide

        return decide(self, unit, year, note, W.REOPEN, submission_id, actor)[0]

    def approve_clean(self, year: int, actor: str = "命令行") -> list[UnitState]:
        """通过 every unit whose newest version awaits review without 错误 or 警告 (after a batch)."""
        out = []
        for s in self.status(year):
            if s.status == "待审核" and not s.errors and not s.warnings and s.submission_id:
                out.append(self.approve(s.code, year, "", s.submission_id, actor))
        return out

    def history(self, unit: str, year: int | None = None) -> list[HistoryItem]:
        """Every version, 重复收到, 拒收, 通过, 退回 and 撤销通过 of a unit, in time order, with who."""
        from .status import history

        return history(self, unit, year)

    def versions(self, unit: str, year: int) -> list[Version]:
        """The unit's versions of the year, oldest first (第1版 …), each with its decision."""
        from .versions import versions

        return versions(self, unit, year)

    def diff(self, unit: str, year: int, from_id: int | None = None, to_id: int | None = None) -> list[Any]:
        """The cells that differ between two versions (default: the approved one → the newest)."""
        from .versions import diff

        return diff(self, unit, year, from_id, to_id)

    def diff_last_year(self, unit: str, year: int, submission_id: int | None = None) -> list[Any]:
        """The cells that differ from last year's approved version (default: of the newest version)."""
        from .versions import diff_last_year

        return diff_last_year(self, unit, year, submission_id)

    # ------------------------------------------------------------ reports

    def report(self, submission_id: int) -> Report:
        from .store import rebuild

        with self._read() as conn:
            row = conn.execute(T.submissions.select().where(T.submissions.c.id == submission_id)).one()
        return rebuild(row.report, row.findings)

    def reports(self, year: int, *, codes: Iterable[str] | None = None) -> list[Report]:
        """The approved version of every unit of the year that has one (of ``codes`` only, if given),
        rebuilt from the archive: the same Reports ``check`` made, without reading any file. Units
        without an approved version are absent (未报送 in a summary)."""
        from sqlalchemy import select

        from .status import approved_ids
        from .store import rebuild

        S = T.submissions
        self.need_roster(year)
        with self._read() as conn:
            ids = approved_ids(conn, year, set(codes) if codes is not None else None)
            rows = conn.execute(
                select(S.c.id, S.c.report, S.c.findings).where(S.c.id.in_(list(ids.values()))).order_by(S.c.id)
            ).all()
        return [rebuild(r.report, r.findings) for r in rows]

    def notes(self, year: int) -> list[tuple[str, str]]:
        """(unit, 说明) of every unit whose approved version was approved with a 说明."""
        from .status import accepted_notes

        return accepted_notes(self, year)

    def consolidate(self, year: int, **options: Any):
        """The summary of the year's approved versions, as ``api.consolidate`` makes it from a folder
        of the same files; 汇总说明 lists the 说明 of the approvals."""
        from ..api import consolidate

        ros = self.need_roster(year)
        reports = self.reports(year)
        summary = consolidate(reports, ros, year, **options)
        summary.notes = self.notes(year)
        return summary

    def carryover(self, year: int, only: str | None = None) -> dict[str, dict[str, Any]]:
        """Unit code → 上年结转 of ``year``'s template, from last year's accepted 结转下年度 (non-zero only);
        of one unit only with ``only`` (a unit's link downloading its template)."""
        from ..spec import current_format
        from .receive import previous_reports

        cells = [c.id for c in current_format().inputs if c.id.startswith(CARRY_TO)]
        out = {}
        for code, prev in previous_reports(self, year - 1, only).items():
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
        with self.engine.connect().execution_options(nianbao_read=True) as conn:
            busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            conn.rollback()
        return not busy

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
class Version:
    """One version of a unit's year, as ``Archive.versions`` lists them."""

    number: int  # 第N版
    id: int
    received_at: str
    name: str
    source: str
    filled_on: str
    counts: dict[str, int]
    status: str  # the checker's verdict: 有错误 | 有警告 | 通过 | 无法读取
    decision: str = ""  # the last decision on it: 通过 | 退回 | 撤销通过 | ""
    decision_note: str = ""
    decided_by: str = ""
    approved: bool = False  # its figures are the ones that count
    newest: bool = False
    older_date: bool = False  # its 填报日期 is earlier than the previous version's
    explanation: str = ""
    repeats: int = 0  # how many times the same file was received again while it was the newest


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
