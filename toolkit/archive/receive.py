"""接收: check files as ``check`` does, add the cross-year findings when last year is in the
archive, and store each file — its bytes, its Report, its findings — wholly or not at all (a few files
per transaction, so storing keeps pace with the checking workers)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from ..check import CheckOptions, WorkerPool, iter_kept
from ..codec import findings_data, to_stored
from ..findings import counts, sort_key
from ..inputs import Source, collect, load
from ..report import Report
from ..roster import Roster
from . import schema as T
from . import workflow as W
from .records import Received, now, verdict

NOT_THIS_UNIT = "非本单位（未接收）"
TOO_BIG = "拒收（文件过大）"
OVER_QUOTA = "拒收（超过本单位存储限额）"
SUMMARY = "拒收（汇总表）"
REFUSED = {"unexpected-large-part": "拒收（夹带大附件）"}  # finding code → outcome, for ``refuse_codes``
NEW, NEW_VERSION, REPEAT, UNREADABLE = "新收", "新版本", "重复（与最新版本相同）", "无法读取"
SUMMARY_TYPES = frozenset({"县级汇总", "市级汇总", "省级汇总"})  # roster types whose return is a summary


def _paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    return [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]


@dataclass
class Intake:
    """Where and how files are stored: the archive's engine, the one year they go to, who sends them
    (workflow.SOURCES), the bytes a unit's year may hold, and whether they are published reports
    (approved as they are). Every step of storing reads the year here, from one place."""

    engine: Any
    year: int
    source: str = "命令行"
    unit_bytes: int | None = None
    imported: bool = False
    roster: Roster | None = None  # the year's: no automatic 通过 in a county that has submitted (tree.locked_in)


def receive(
    intake: Intake,
    paths: str | Path | Iterable[str | Path],
    ros: Roster,
    last_year: dict[str, Report],
    *,
    progress: Callable[[int], Any] | None = None,
    workers: int | None = None,
    only_unit: str | None = None,
    pool: WorkerPool | None = None,
    stored: Callable[[int], Any] | None = None,
    refuse_codes: Iterable[str] = (),
    max_bytes: int | None = None,
    only_codes: Iterable[str] | None = None,
) -> list[Received]:
    """Check the files against the year's roster ``ros``, add the cross-year findings against
    ``last_year`` (unit code → last year's approved Report) and store them (``Archive.receive`` gives
    all of it). ``only_unit``: store only that unit's returns (a unit's private upload link); any other file,
    an unreadable one or a summary is answered with its refusal, nothing of it is stored, and the
    attempt is recorded for the county (an event 拒收).

    Each stored file is a new version of its unit (workflow.py), unless it is identical to the unit's
    newest version (an event 重复收到). ``stored``: told the
    number of files stored so far after each transaction (an interrupted receive says how many).

    What a web upload may store (each refusal is an outcome 拒收…, and nothing of the file is stored):
    ``refuse_codes``: a file with a finding of one of these codes (answered with its findings; the web
    refuses pictures and embedded objects so); ``max_bytes``: a file (or zip member) larger than this
    is neither read nor stored; ``intake.unit_bytes``: a unit's year holds at most this many bytes of
    distinct files — counted inside the storing transaction, so that several processes agree;
    ``only_codes``: the units a scoped reviewer may store (issue 31) — another unit's file, or one
    that cannot be read (it would be kept under no unit), is refused."""
    sources = list(collect(_paths(paths)))
    batch = Batch(dataclasses.replace(intake, roster=ros), stored=stored)
    # a unit's link stores only that unit's file: its check needs the unit's line of the roster, not a
    # province's 2,600 lines sent to the checking process with every upload (another unit's file is
    # refused whatever its findings, and told nothing of them)
    checks_with = ros if only_unit is None else ros.only({only_unit})
    checked = _check_all(sources, CheckOptions(year=intake.year, roster=checks_with), progress, workers, pool, max_bytes)
    allowed = None if only_codes is None else frozenset(only_codes)
    for src, kept in checked:
        refused = _refused(src, kept, only_unit, frozenset(refuse_codes), max_bytes, ros) or _outside(kept, src, allowed)
        if refused is not None:
            batch.flush()  # the lines stay in input order
            batch.done.append(refused)
            continue
        report = kept.report
        data = kept.data if kept.data is not None else _bytes(src)  # read again only when its reader crashed
        if data is None:  # vanished or unreadable on disk: nothing to keep
            batch.flush()  # the lines stay in input order
            batch.done.append(Received(src.name, UNREADABLE, report=report, counts=counts(report.findings), reason=_why(report)))
            continue
        add_cross_year(report, last_year)
        batch.add(report, data, hashed=kept.data is not None)
    batch.flush()
    out = batch.done
    if only_unit is not None:
        record_refusals(intake, only_unit, [r for r in out if r.submission_id is None and not r.previous_at])
    return out


def tell_states(out: list[Received], states: dict[str, str]) -> None:
    """Each stored file's unit status afterwards (``states``: unit code → status)."""
    for r in out:
        if r.submission_id is not None or r.previous_at:  # never tell a refused file another unit's status
            r.status = states.get(r.unit_code, "不在名册" if r.unit_code else UNREADABLE)


def record_refusals(intake: Intake, unit: str, refused: list[Received]) -> None:
    """The files a unit's link did not take, as events 拒收 of the unit (the county sees the attempts)."""
    if not refused:
        return
    at = now()
    rows = [
        dict(
            year=intake.year,
            unit_code=unit,
            at=at,
            kind="拒收",
            note=f"{r.name}：{r.outcome}" + (f"。{r.reason}" if r.reason else ""),
            fingerprints=[],
            submission_id=None,
            actor=intake.source,
        )
        for r in refused
    ]
    with intake.engine.begin() as conn:
        conn.execute(T.events.insert(), rows)


def _why(report: Report | None) -> str:
    """The first 错误 of a file that could not be read or was refused, in Chinese."""
    if report is None:
        return ""
    first = next((f for f in report.findings if f.severity == "错误"), None)
    return (first.message or "") if first is not None else ""


def _check_all(sources: list[Source], opts: CheckOptions, progress, workers, pool, max_bytes: int | None):
    """(source, kept) in input order; kept is None for a file over ``max_bytes``, which is not read."""
    big = {i for i, src in enumerate(sources) if max_bytes is not None and _size(src) > max_bytes}
    rest = iter(iter_kept([s for i, s in enumerate(sources) if i not in big], opts, progress, workers, pool))
    for i, src in enumerate(sources):
        yield src, (None if i in big else next(rest))


def _size(src: Source) -> int:
    """Known before reading for a file on disk; a zip member's is checked once read (``_refused``)."""
    if src.data is not None:
        return len(src.data)
    if src.member:
        return 0
    try:
        return Path(src.path).stat().st_size
    except OSError:  # vanished: the reader says so
        return 0


def _refused(src: Source, kept: Any, only_unit: str | None, refuse_codes: frozenset[str], max_bytes: int | None, ros: Any):
    """The answer (a Received) for a file that must not be stored, or None."""
    if kept is None or (max_bytes is not None and kept.data is not None and len(kept.data) > max_bytes):
        limit = f"（上限 {max_bytes // (1024 * 1024)} MB）" if max_bytes and max_bytes >= 1024 * 1024 else ""
        return Received(src.name, TOO_BIG, reason=f"文件过大{limit}，未读取；请删除其中的图片等附件后重新上传。")
    report = kept.report
    c = counts(report.findings)
    if only_unit is not None and not report.readable:
        return Received(src.name, UNREADABLE, report.unit_code, report.unit_name, counts=c, report=report, reason=_why(report))
    if only_unit is not None and report.unit_code != only_unit:
        # nothing of another unit's file is told back through a link (its name, code, findings)
        reason = "这不是本单位的填报表（文件中的单位代码与本单位不符）。请上传本单位的填报表。"
        return Received(src.name, NOT_THIS_UNIT, report.unit_code, report.unit_name, report=report, reason=reason)
    summary = _summary_refusal(report, only_unit, ros)
    if summary:
        return Received(src.name, SUMMARY, report.unit_code, report.unit_name, counts=c, report=report, reason=summary)
    hit = sorted({f.code for f in report.findings} & refuse_codes)
    if hit:
        outcome = REFUSED.get(hit[0], "拒收")
        found = next(f for f in report.findings if f.code == hit[0])
        return Received(src.name, outcome, report.unit_code, report.unit_name, counts=c, report=report, reason=found.message)
    return None


def _outside(kept: Any, src: Source, only_codes: frozenset[str] | None) -> Received | None:
    """The refusal of a file a scoped reviewer may not store: unreadable, or of a unit outside the scope."""
    if only_codes is None or kept is None:
        return None
    report = kept.report
    if not report.readable:
        return Received(src.name, UNREADABLE, report.unit_code, report.unit_name, report=report, reason=_why(report))
    if report.unit_code not in only_codes:
        reason = (
            f"文件中的单位代码 {report.unit_code or '（空）'} 不在您管理的单位范围内，未接收。"
            "请核对文件；其他县（旗、区）单位的填报表请交给该县的审核人。"
        )
        return Received(src.name, NOT_THIS_UNIT, report.unit_code, report.unit_name, reason=reason)
    return None


def _summary_refusal(report: Report, only_unit: str | None, ros: Any) -> str:
    """Why a summary (县级汇总 …) cannot be a unit's return here: it never arrives through a unit's
    link, and is taken only for a roster unit whose type is a summary level (a city's roster of
    county summaries) — never in place of a unit's own (本级) return."""
    if not report.readable or report.level == "填报单位":
        return ""
    unit = ros.get(report.unit_code) if report.unit_code else None
    if only_unit is None and (unit is None or unit.type in SUMMARY_TYPES):
        return ""
    name = f"{unit.name}（{unit.code}）" if unit is not None else f"{report.unit_name}（{report.unit_code}）"
    return (
        f"这是{report.level}表，不是{name}本级的填报表，未接收（汇总表由县里用 nianbao consolidate 生成，"
        "不替换本级填报表）。请上传本单位自己的填报表。"
    )


def store_published(intake: Intake, reports: list[Report], last_year: dict[str, Report]) -> list[Received]:
    """Published reports of ``intake.year`` read by ``import``, kept as the year's approved versions."""
    batch = Batch(intake)
    for r in reports:
        if not any(f.code == "carryover-mismatch" for f in r.findings):
            add_cross_year(r, last_year)
        batch.add(r, Path(r.provenance.path).read_bytes())
    batch.flush()
    return batch.done


def _bytes(src: Source) -> bytes | None:
    if src.data is not None:
        return src.data
    loaded = load(Source(src.name, src.path, None, src.mtime))
    return loaded.data


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


class Batch:
    """Checked files waiting to be stored: a few at a time, each batch in one transaction, so every
    file is either wholly in the archive or not at all (a kill loses at most the batch in flight)."""

    MAX_FILES, MAX_BYTES, MAX_SECONDS = 64, 32 << 20, 1.0

    def __init__(self, intake: Intake, *, stored: Callable[[int], Any] | None = None):
        self.intake, self.stored = intake, stored
        self.items: list[tuple[Report, bytes, bool]] = []
        self.size, self.started, self.count = 0, 0.0, 0
        self.done: list[Received] = []

    def add(self, report: Report, data: bytes, hashed: bool = False) -> None:
        """``hashed``: the report was read from exactly ``data`` (its provenance holds their sha256)."""
        if not self.items:
            self.started = time.monotonic()
        self.items.append((report, data, hashed))
        self.size += len(data)
        full = len(self.items) >= self.MAX_FILES or self.size >= self.MAX_BYTES
        if full or time.monotonic() - self.started >= self.MAX_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.items:
            got = store(self.intake, self.items)
            self.done.extend(got)
            self.count += sum(1 for r in got if r.submission_id is not None and not r.previous_at)
            if self.stored is not None:
                self.stored(self.count)
        self.items, self.size = [], 0


def store(intake: Intake, items: list[tuple[Report, bytes, bool]]) -> list[Received]:
    """Files in one transaction, each a new version of its unit — or, identical to the unit's newest
    version (an upload retried after a lost answer, a forward), an event 重复收到 and nothing stored
    twice; with ``intake.unit_bytes``, a new file that would take its unit's year over that many bytes is
    refused. The automatic outcome of each version (workflow.auto_outcome) is recorded with it."""
    for report, data, hashed in items:
        if not hashed:
            report.provenance.sha256, report.provenance.size = hashlib.sha256(data).hexdigest(), len(data)
    shas = {r.provenance.sha256 for r, _, _ in items}
    codes = {r.unit_code for r, _, _ in items if r.unit_code}
    year = intake.year
    with intake.engine.begin() as conn:
        _lock_units(conn, year, {r.unit_code or "" for r, _, _ in items})
        rows = conn.execute(_seen_statement(), {"year": year, "shas": sorted(shas)}).all()
        seen = {sha: at for sha, at, _ in rows if sha is not None}
        auto_approve = any(auto for sha, _, auto in rows if sha is None)  # read inside the transaction: after a roster load
        units = _Units(conn, intake, codes, auto_approve)
        out, at = [], now()
        room = _Room(intake, units.stored)
        for report, data, _ in items:
            if not room.admits(report, len(data), seen):
                out.append(room.refusal(report))
                continue
            out.append(units.take(report, data, at, seen))
            seen.setdefault(report.provenance.sha256, at)
        units.flush(out)
    statuses = units.statuses()  # as this transaction left each unit (``receive`` of a folder asks again at the end)
    for r in out:
        if r.submission_id is not None or r.previous_at:
            r.status = statuses.get(r.unit_code, r.status)
    return out


@functools.cache
def _seen_statement() -> Any:
    """Which of the digests ``:shas`` the year holds, and since when, and in a row without a digest
    whether the year approves clean returns automatically: every store asks both, in one round trip."""
    from sqlalchemy import Boolean, String, bindparam, cast, null, union_all

    S, Y = T.submissions, T.years
    shas = bindparam("shas", expanding=True)
    held = select(S.c.sha256, S.c.received_at, cast(null(), Boolean)).where(S.c.year == bindparam("year"), S.c.sha256.in_(shas))
    year = select(cast(null(), String), cast(null(), String), Y.c.auto_approve).where(Y.c.year == bindparam("year"))
    return union_all(held, year)


YEAR_LOCK, UNIT_LOCK = 7215002, 7215003  # advisory lock classes: the year's writers (status.decide, tree.py), one unit's
FEW_UNITS = 4  # a batch of more units than this (a county's folder) takes the year's lock alone, in one statement


def _lock_units(conn: Any, year: int, codes: set[str]) -> None:
    """PostgreSQL: a store waits only for what it could conflict with. It shares the year's writers'
    lock (decisions and a county's 上报 hold it alone, so none of them sees a store half done) and holds
    its units' own locks, taken in one order (two stores never wait on each other in a circle): at
    province size a hundred units' uploads are stored side by side, two of one unit one after the other.
    A batch of many units (``receive`` of a folder) takes the year's lock alone, as every store once did.
    SQLite's BEGIN IMMEDIATE already serialises writers."""
    if conn.dialect.name != "postgresql":
        return
    if len(codes) > FEW_UNITS:
        conn.execute(text("SELECT pg_advisory_xact_lock(:c, :y)"), {"c": YEAR_LOCK, "y": year})
        return
    keys = sorted({unit_key(year, code) for code in codes})  # taken left to right, in one round trip
    params = {"c": YEAR_LOCK, "y": year, "u": UNIT_LOCK} | {f"k{n}": k for n, k in enumerate(keys)}
    conn.execute(_units_lock_statement(len(keys)), params)


@functools.cache
def _units_lock_statement(n: int) -> Any:
    """The year's lock shared and ``n`` units' locks (``:k0``…), in one statement, built once per ``n``."""
    units = "".join(f", pg_advisory_xact_lock(:u, :k{i})" for i in range(n))
    return text(f"SELECT pg_advisory_xact_lock_shared(:c, :y){units}")


def unit_key(year: int, code: str) -> int:
    """A unit-year as the second key of a PostgreSQL advisory lock (a signed 32-bit integer; two units
    that share one merely wait for each other)."""
    digest = hashlib.sha256(f"{year}\0{code}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


@dataclass
class _V:
    """A version as the storing transaction knows it."""

    id: int
    sha256: str
    received_at: str
    filled_on: str
    status: str


@dataclass
class _E:
    """An event as the storing transaction knows it (``id``: its order among the unit's events)."""

    id: int
    kind: str
    note: str
    submission_id: int | None
    actor: str


@functools.cache
def _units_statements() -> tuple[Any, Any]:
    """The versions and the events of the units ``:codes`` of a year, as ``_Units`` reads them in
    every storing transaction: built once."""
    from sqlalchemy import bindparam

    from .status import EVENT_COLS

    S, E = T.submissions, T.events
    year, codes = bindparam("year"), bindparam("codes", expanding=True)
    q = select(S.c.id, S.c.unit_code, S.c.sha256, S.c.received_at, S.c.filled_on, S.c.status, T.files.c.size)
    q_versions = q.join_from(S, T.files).where(S.c.year == year, S.c.unit_code.in_(codes)).order_by(S.c.id)
    return q_versions, select(*EVENT_COLS).where(E.c.year == year, E.c.unit_code.in_(codes)).order_by(E.c.id)


class _Units:
    """The versions and decisions of the units of one storing transaction, kept up to date as files
    are added: the newest version (a 重复 or a new version), the number of the next one, the date a
    new one is compared with, and whether the reviewer's 退回 holds back an automatic 通过."""

    def __init__(self, conn: Any, intake: Intake, codes: set[str], auto_approve: bool):
        self.conn, self.intake = conn, intake
        self.auto_approve = auto_approve
        self.locked: set[str] = set()  # units of a county that has submitted or been approved: not approved automatically
        if self.auto_approve and intake.roster is not None and codes:
            from .tree import locked_in

            self.locked = locked_in(conn, intake.roster, intake.year, codes)
        year = intake.year
        self.subs: dict[str, list[Any]] = {}
        self.events: dict[str, list[Any]] = {}
        self.new_events: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []  # new versions, inserted together by ``flush``
        self.files: dict[str, bytes] = {}
        self.stored: dict[str, int] = {}  # each unit-year's bytes before this transaction, each distinct file once
        if not codes:
            return
        q_versions, q_events = _units_statements()
        params = {"year": year, "codes": sorted(codes)}
        sizes: dict[str, dict[str, int]] = {}
        for r in conn.execute(q_versions, params):
            self.subs.setdefault(r.unit_code, []).append(_V(r.id, r.sha256, r.received_at, r.filled_on, r.status))
            sizes.setdefault(r.unit_code, {})[r.sha256] = r.size
        self.stored = {code: sum(by_sha.values()) for code, by_sha in sizes.items()}
        for e in conn.execute(q_events, params):
            self.events.setdefault(e.unit_code, []).append(e)

    def take(self, report: Report, data: bytes, at: str, seen: dict) -> Received:
        name, code, sha = report.provenance.name, report.unit_code, report.provenance.sha256
        status, c = verdict(report)
        if not code:  # no unit to file it under: kept once
            if sha in seen:
                return Received(name, REPEAT, code, report.unit_name, "", c, report, seen[sha])
            sid = self._insert(_row(self.intake, report, sha, status, c, at), data)
            return Received(name, UNREADABLE, "", report.unit_name, "", c, report, submission_id=sid, reason=_why(report))
        mine = self.subs.setdefault(code, [])
        evs = self.events.setdefault(code, [])
        if mine and mine[-1].sha256 == sha:
            newest = mine[-1]
            self._event(code, at, W.REPEAT, name, newest.id, self.intake.source)
            return Received(name, REPEAT, code, report.unit_name, "", c, report, newest.received_at, len(mine), newest.id)
        row = _row(self.intake, report, sha, status, c, at)
        approved = W.approved_of(evs)
        ref = next((v for v in mine if v.id == approved), None) if approved is not None else (mine[-1] if mine else None)
        older = ref is not None and W.is_older(row["filled_on"], ref.filled_on)
        held = W.unit_flow(mine, evs).held if mine else False
        sid = self._insert(row, data)
        mine.append(_V(sid, sha, at, row["filled_on"], status))
        outcome = UNREADABLE if not report.readable else (NEW_VERSION if len(mine) > 1 else NEW)
        got = Received(
            name, outcome, code, report.unit_name, "", c, report, version=len(mine), submission_id=sid, older_date=older
        )
        got.reason = "" if report.readable else _why(report)
        if self.intake.imported:
            auto: tuple[str, str] | None = (W.APPROVE, "导入已发布的年报")
        else:
            auto = W.auto_outcome(report.readable, report.findings, self.auto_approve and code not in self.locked, held, older)
        if auto is not None:
            got.auto = auto[0]
            self._event(code, at, auto[0], auto[1], sid, W.AUTO)
        return got

    def statuses(self) -> dict[str, str]:
        """Each unit's status with this transaction's versions and decisions (workflow.py decides it
        from the same rows ``Archive.state`` would read back: ids compare alike, placeholders or not)."""
        return {code: W.unit_flow(mine, self.events.get(code, [])).status for code, mine in self.subs.items() if mine}

    def _insert(self, row: dict[str, Any], data: bytes) -> int:
        """A placeholder id (negative) until ``flush`` inserts the rows and learns their ids."""
        self.rows.append(row)
        self.files.setdefault(row["sha256"], data)
        return -len(self.rows)

    def _event(self, code: str, at: str, kind: str, note: str, sid: int, actor: str) -> None:
        self.new_events.append(
            dict(
                year=self.intake.year,
                unit_code=code,
                at=at,
                kind=kind,
                note=note,
                fingerprints=[],
                submission_id=sid,
                actor=actor,
            )
        )
        self.events.setdefault(code, []).append(_E(1 << 60 | len(self.new_events), kind, note, sid, actor))

    def flush(self, out: list[Received]) -> None:
        """Insert the files (each once: identical bytes share them), the versions in one statement,
        then the events; the placeholder ids become the rows' ids in what refers to them."""
        ids: dict[int, int] = {}
        if self.rows:
            _insert_files(self.conn, self.files)
            insert = T.submissions.insert().returning(T.submissions.c.id, sort_by_parameter_order=True)
            got = self.conn.execute(insert, self.rows).scalars().all()
            ids = {-(n + 1): sid for n, sid in enumerate(got)}
        for r in out:
            if r.submission_id is not None and r.submission_id < 0:
                r.submission_id = ids[r.submission_id]
        for e in self.new_events:
            if e["submission_id"] < 0:
                e["submission_id"] = ids[e["submission_id"]]
        if self.new_events:
            self.conn.execute(T.events.insert(), self.new_events)


class _Room:
    """Bytes each unit's year may still take, as the storing transaction read them (it holds the
    unit's lock, so no other process stores for the unit in between)."""

    def __init__(self, intake: Intake, stored: dict[str, int]):
        self.limit = intake.unit_bytes
        self.used = dict(stored)

    def admits(self, report: Report, size: int, seen: dict) -> bool:
        code = report.unit_code
        if self.limit is None or not code or report.provenance.sha256 in seen:  # a duplicate adds nothing
            return True
        if self.used.get(code, 0) + size > self.limit:
            return False
        self.used[code] = self.used.get(code, 0) + size
        return True

    @staticmethod
    def refusal(report: Report) -> Received:
        return Received(report.provenance.name, OVER_QUOTA, report.unit_code, report.unit_name, "", verdict(report)[1], report)


def _insert_files(conn: Any, files: dict[str, bytes]) -> None:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # in one order: two stores of the same bytes side by side (two units' uploads) never wait on each other in a circle
    rows = [{"sha256": sha, "size": len(data), "data": data} for sha, data in sorted(files.items())]
    conn.execute(insert(T.files).on_conflict_do_nothing(), rows)


def _row(intake: Intake, report: Report, sha: str, status: str, c: dict[str, int], at: str) -> dict[str, Any]:
    return dict(
        source=intake.source,
        filled_on=W.day(report.cover.get("date", "")),
        explanation=str(report.cover.get("note", "") or ""),
        year=intake.year,
        unit_code=report.unit_code or "",
        unit_name=report.unit_name or "",
        received_at=at,
        name=report.provenance.name,
        sha256=sha,
        status=status,
        errors=c["错误"],
        warnings=c["警告"],
        hints=c["提示"],
        filler=str(report.cover.get("filler", "") or ""),
        phone=str(report.cover.get("phone", "") or ""),
        warning_fps=sorted({f.fingerprint for f in report.findings if f.severity == "警告"}),
        report=to_stored(report),
        findings=findings_data(report.findings),
    )
