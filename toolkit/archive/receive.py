"""接收: check files as ``check`` does, add the cross-year findings when last year is in the
archive, and store each file — its bytes, its Report, its findings — wholly or not at all (a few files
per transaction, so storing keeps pace with the checking workers)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from ..check import CheckOptions, WorkerPool, iter_kept
from ..findings import counts, sort_key
from ..inputs import Source, collect, load
from ..report import Report
from . import schema as T
from .core import Archive, Received, now, unit_usage, verdict
from .store import findings_json, report_json

NOT_THIS_UNIT = "非本单位（未接收）"
TOO_BIG = "拒收（文件过大）"
OVER_QUOTA = "拒收（超过本单位存储限额）"
REFUSED = {"unexpected-large-part": "拒收（夹带大附件）"}  # finding code → outcome, for ``refuse_codes``


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
    pool: WorkerPool | None = None,
    refuse_codes: Iterable[str] = (),
    max_bytes: int | None = None,
    unit_bytes: int | None = None,
) -> list[Received]:
    """``only_unit``: store only that unit's returns (a unit's private upload link); any other file is
    checked and answered with outcome 非本单位, and nothing of it is stored.

    What a web upload may store (each refusal is an outcome 拒收…, and nothing of the file is stored):
    ``refuse_codes``: a file with a finding of one of these codes (answered with its findings; the web
    refuses pictures and embedded objects so); ``max_bytes``: a file (or zip member) larger than this
    is neither read nor stored; ``unit_bytes``: a unit's year holds at most this many bytes of distinct
    files — counted inside the storing transaction, so that several processes agree."""
    ros = archive.need_roster(year)
    plist = _paths(paths)
    sources = list(collect(plist))
    last_year = previous_reports(archive, year - 1, only_unit)
    batch = Batch(archive, year, unit_bytes)
    checked = _check_all(sources, CheckOptions(year=year, roster=ros), progress, workers, pool, max_bytes)
    for src, kept in checked:
        refused = _refused(src, kept, only_unit, frozenset(refuse_codes), max_bytes)
        if refused is not None:
            batch.flush()  # the lines stay in input order
            batch.done.append(refused)
            continue
        report = kept.report
        data = kept.data if kept.data is not None else _bytes(src)  # read again only when its reader crashed
        if data is None:  # vanished or unreadable on disk: nothing to keep
            batch.flush()  # the lines stay in input order
            batch.done.append(Received(src.name, "无法读取", report=report, counts=counts(report.findings)))
            continue
        add_cross_year(report, last_year)
        batch.add(report, data, hashed=kept.data is not None)
    batch.flush()
    out = batch.done
    if only_unit is not None:  # a unit's link: its own state is all the page shows
        states = {only_unit: archive.state(only_unit, year).status}
    else:
        from .status import current_statuses

        states = current_statuses(archive, year)
    for r in out:
        if r.outcome not in (NOT_THIS_UNIT, TOO_BIG):  # never tell a unit's link another unit's status
            r.status = states.get(r.unit_code, "不在名册" if r.unit_code else "无法读取")
    return out


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


def _refused(src: Source, kept: Any, only_unit: str | None, refuse_codes: frozenset[str], max_bytes: int | None):
    """The answer (a Received) for a file that must not be stored, or None."""
    if kept is None or (max_bytes is not None and kept.data is not None and len(kept.data) > max_bytes):
        return Received(src.name, TOO_BIG)
    report = kept.report
    if only_unit is not None and report.unit_code != only_unit:
        return Received(src.name, NOT_THIS_UNIT, report.unit_code, report.unit_name, report=report)
    hit = sorted({f.code for f in report.findings} & refuse_codes)
    if hit:
        outcome = REFUSED.get(hit[0], "拒收")
        return Received(src.name, outcome, report.unit_code, report.unit_name, counts=counts(report.findings), report=report)
    return None


def store_imported(archive: Archive, reports: list[Report]) -> list[Received]:
    """Published reports read by ``import``, kept as their year's returns (last year's figures for
    the cross-year rules); the year's roster must be in the archive."""
    years = sorted({r.year for r in reports if r.readable and r.year})
    for y in years:
        archive.need_roster(y)
    out: list[Received] = []
    for y in years:
        batch = Batch(archive, y)
        last_year = previous_reports(archive, y - 1)
        for r in (r for r in reports if r.readable and r.year == y):
            if not any(f.code == "carryover-mismatch" for f in r.findings):
                add_cross_year(r, last_year)
            batch.add(r, Path(r.provenance.path).read_bytes())
        batch.flush()
        out.extend(batch.done)
    return out


def _bytes(src: Source) -> bytes | None:
    if src.data is not None:
        return src.data
    loaded = load(Source(src.name, src.path, None, src.mtime))
    return loaded.data


STANDING = ("已通过", "待说明")  # statuses whose figures stand


def previous_reports(archive: Archive, year: int, only: str | None = None) -> dict[str, Report]:
    """Last year's accepted current return of each unit (已通过 or 待说明: its figures stand); of one
    unit only with ``only`` (an upload through a unit's link must not rebuild the whole year)."""
    ros = archive.roster(year)
    if ros is None:
        return {}
    if only is None:
        return {r.unit_code: r for r in archive.reports(year, statuses=STANDING)}
    if ros.get(only) is None:
        return {}
    state = archive.state(only, year)
    if state.submission_id is None or state.status not in STANDING:
        return {}
    return {only: archive.report(state.submission_id)}


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

    def __init__(self, archive: Archive, year: int, unit_bytes: int | None = None):
        self.archive, self.year, self.unit_bytes = archive, year, unit_bytes
        self.items: list[tuple[Report, bytes, bool]] = []
        self.size, self.started = 0, 0.0
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
            self.done.extend(store(self.archive, self.year, self.items, self.unit_bytes))
        self.items, self.size = [], 0


def store(archive: Archive, year: int, items: list[tuple[Report, bytes, bool]], unit_bytes: int | None = None) -> list[Received]:
    """Files in one transaction; a file whose bytes were received for this year before is a no-op
    (so an upload retried after a lost answer is acknowledged, never stored twice); with
    ``unit_bytes``, a new file that would take its unit's year over that many bytes is refused."""
    S = T.submissions
    for report, data, hashed in items:
        if not hashed:
            report.provenance.sha256, report.provenance.size = hashlib.sha256(data).hexdigest(), len(data)
    shas = {r.provenance.sha256 for r, _, _ in items}
    codes = {r.unit_code for r, _, _ in items if r.unit_code}
    with archive.engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE already serialises writers
            conn.execute(text("SELECT pg_advisory_xact_lock(7215002, :y)"), {"y": year})
        seen = dict(conn.execute(select(S.c.sha256, S.c.received_at).where(S.c.year == year, S.c.sha256.in_(shas))).all())
        known = set(conn.execute(select(S.c.unit_code).where(S.c.year == year, S.c.unit_code.in_(codes)).distinct()).scalars())
        out, files, rows, at = [], {}, [], now()
        room = _Room(conn, year, unit_bytes)
        for report, data, _ in items:
            if not room.admits(report, len(data), seen):
                out.append(room.refusal(report))
                continue
            out.append(_one(report, year, seen, known, at, rows))
            files.setdefault(report.provenance.sha256, data)
            seen.setdefault(report.provenance.sha256, at)
        if rows:
            _insert_files(conn, {sha: files[sha] for sha in {r["sha256"] for r in rows}})
            conn.execute(S.insert(), rows)
    return out


class _Room:
    """Bytes each unit's year may still take, read once per storing transaction (which holds the
    writers' lock, so no other process stores in between)."""

    def __init__(self, conn: Any, year: int, limit: int | None):
        self.conn, self.year, self.limit = conn, year, limit
        self.used: dict[str, int] = {}

    def admits(self, report: Report, size: int, seen: dict) -> bool:
        code = report.unit_code
        if self.limit is None or not code or report.provenance.sha256 in seen:  # a duplicate adds nothing
            return True
        if code not in self.used:
            self.used[code] = unit_usage(self.conn, code, self.year).bytes
        if self.used[code] + size > self.limit:
            return False
        self.used[code] += size
        return True

    @staticmethod
    def refusal(report: Report) -> Received:
        return Received(report.provenance.name, OVER_QUOTA, report.unit_code, report.unit_name, "", verdict(report)[1], report)


def _one(report: Report, year: int, seen: dict, known: set, at: str, rows: list) -> Received:
    name, code, sha = report.provenance.name, report.unit_code, report.provenance.sha256
    status, c = verdict(report)
    if sha in seen:
        return Received(name, "重复（未改动）", code, report.unit_name, "", c, report, seen[sha])
    rows.append(_row(year, report, sha, status, c, at))
    outcome = "无法读取" if not report.readable else ("更正" if code and code in known else "新收")
    known.add(code)
    return Received(name, outcome, code, report.unit_name, "", c, report)


def _insert_files(conn: Any, files: dict[str, bytes]) -> None:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    rows = [{"sha256": sha, "size": len(data), "data": data} for sha, data in files.items()]
    conn.execute(insert(T.files).on_conflict_do_nothing(), rows)


def _row(year: int, report: Report, sha: str, status: str, c: dict[str, int], at: str) -> dict[str, Any]:
    return dict(
        year=year,
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
        report=report_json(report),
        findings=findings_json(report.findings),
    )
