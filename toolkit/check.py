"""审核: read every return, check its identity against the roster and year, run the rules,
and judge the batch as a whole (who is missing, who sent two files, mixed years).

Files are read in worker processes: a reader that crashes or runs out of memory on one hostile
file takes only that worker down; the file gets a finding and the batch goes on. Ctrl-C or
SIGTERM stops the workers at once.
"""

from __future__ import annotations

import os
import queue
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import pool as pools
from .findings import NAMED, Finding, few_names, make, sort_key
from .inputs import Source, collect, load, shown
from .pool import new_pool, stop_pool
from .reader import read_bytes
from .report import Provenance, Report
from .roster import Roster, is_invented_code
from .rules import run_rules
from .spec import Format, current_format, formats


@dataclass
class CheckOptions:
    year: int | None = None
    roster: Roster | None = None
    # Read and evaluate the careful way only (XML parser, calamine, term by term): the reference the
    # fast paths are proven equal to in tests/test_read_paths.py; never a user setting.
    careful: bool = False


@dataclass
class BatchResult:
    reports: list[Report] = field(default_factory=list)
    batch: list[Finding] = field(default_factory=list)  # about the batch, not one file

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.reports for f in r.findings] + self.batch

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "错误" for f in self.findings)


def check_identity(report: Report, fmt: Format, opts: CheckOptions) -> list[Finding]:
    """Format, year and roster: is this the return we asked for, from whom it says?"""
    out: list[Finding] = []
    current = current_format()
    name = report.provenance.name
    if fmt.status != "current" and (report.year is None or report.year >= current.valid_from_year):
        out.append(make("format-outdated", file=name, found=fmt.title, expected=current.title, year=report.year or ""))
    if opts.year and report.year != opts.year:
        out.append(make("year-mismatch", file=name, found=report.year or "未知", expected=opts.year))
    if _version(report.template_version) < _version(fmt.template_version):
        out.append(make("template-outdated", file=name, found=report.template_version, expected=fmt.template_version))
    if report.level != "填报单位" and report.scope == "选择汇总":
        out.append(
            make(
                "summary-partial",
                file=name,
                found=report.level,
                unit_name=report.unit_name,
                detail=report.scope_note or "未说明未包括哪些单位",
            )
        )
    if opts.roster is not None:
        out.extend(_roster_identity(report, opts.roster))
    return out


def _shown_code(code: str) -> str:
    """A unit code as people see it: none when the file gave none (or a published report's unit got
    an invented key)."""
    return "（无）" if not code or is_invented_code(code) else code


def _roster_identity(report: Report, roster: Roster) -> list[Finding]:
    name = report.provenance.name
    unit = roster.get(report.unit_code)
    if unit is None:
        return [
            make("unit-not-in-roster", file=name, found=_shown_code(report.unit_code), unit_name=report.unit_name or "未知单位")
        ]
    report.unit_type = unit.type  # the roster is authoritative for rules such as I10
    if unit.name != report.unit_name:
        return [make("unit-name-mismatch", file=name, unit_code=report.unit_code, found=report.unit_name, expected=unit.name)]
    return []


def _version(v: str) -> tuple[int, ...]:
    """'1.10' > '1.9': compare template versions as numbers; unknown counts as current."""
    try:
        return tuple(int(x) for x in str(v).split(".")) if v else (10**9,)
    except ValueError:
        return (10**9,)


def check_report(report: Report, opts: CheckOptions, fmt: Format | None = None) -> Report:
    """Add identity and rule findings to a report the reader produced (``fmt``: a format given by the
    caller — the online form's, which a test may load from a copy — instead of the report's own)."""
    fmt = fmt or formats().get(report.format_id)
    if report.readable and fmt is not None:
        extra = check_identity(report, fmt, opts) + run_rules(fmt, report, careful=opts.careful)
        for f in extra:
            f.file = report.provenance.name
            f.unit_code = f.unit_code or report.unit_code
            f.unit_name = f.unit_name or report.unit_name
            f.finish(report.year)
        report.findings.extend(extra)
    report.findings.sort(key=sort_key)
    return report


def unreadable(src: Source, code: str, detail: str) -> Report:
    rep = Report(provenance=Provenance(path=shown(src.path), name=src.name, mtime=src.mtime), readable=False)
    rep.findings.append(make(code, file=src.name, detail=detail).finish())
    return rep


def check_source(src: Source, opts: CheckOptions) -> Report:
    src = load(src)
    if src.problem is not None:
        return unreadable(src, src.problem.code, src.problem.detail)
    report = read_bytes(src.data or b"", src.name, shown(src.path), src.mtime, careful=opts.careful)
    return check_report(report, opts).compact()


@dataclass
class Kept:
    """A checked file for the archive: the report and the very bytes that were checked, stored as
    they are (a second read could find the file changed since, and would cost a second hash).
    None: not read."""

    report: Report
    data: bytes | None = None


def keep_source(src: Source, opts: CheckOptions) -> Kept:
    report = check_source(src, opts)
    return Kept(report, src.data)


# ---------------------------------------------------------------- batches in worker processes


class _Worker:
    """A worker process's batch options, set once by the pool's initializer (a roster travels to each
    worker once, not with every chunk). Per-process state, not format data."""

    opts: CheckOptions


def _worker_init(opts: CheckOptions) -> None:
    _Worker.opts = opts


def _worker_run(chunk: list[Source], keep: bool = False) -> list[Report] | list[Kept]:
    return _worker_run_with(_Worker.opts, chunk, keep)


def _new_pool(workers: int, opts: CheckOptions) -> ProcessPoolExecutor:
    return new_pool(workers, _worker_init, (opts,))


def _worker_run_with(opts: CheckOptions, chunk: list[Source], keep: bool = False) -> list[Report] | list[Kept]:
    if keep:
        return [keep_source(src, opts) for src in chunk]
    return [check_source(src, opts) for src in chunk]


class WorkerPool:
    """Worker processes kept for many small batches (a server's uploads): started on first use,
    replaced after a worker died, stopped by ``close``. A file that kills a worker is still retried
    alone in a fresh process of its own, so crash isolation is the same as a batch's own pool.

    The workers are forked by a thread of this object that lives until ``close``: a worker dies
    with the thread that forked it (see toolkit/pool.py), and a server's request threads come and go."""

    def __init__(self, workers: int = 1):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._asks: queue.Queue = queue.Queue()
        self._forker: threading.Thread | None = None
        self._finalizers: list[weakref.finalize] = []  # a pool dropped without close() still stops

    @staticmethod
    def _fork_loop(asks: queue.Queue, workers: int) -> None:
        while (reply := asks.get()) is not None:
            try:
                reply.put(new_pool(workers))
            except BaseException as e:  # noqa: BLE001 - handed to the asking thread
                reply.put(e)

    def executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("worker pool closed")
            if self._pool is None:
                if self._forker is None:
                    self._forker = threading.Thread(
                        target=self._fork_loop, args=(self._asks, self.workers), name="nianbao-workers", daemon=True
                    )
                    self._forker.start()
                    self._finalizers.append(weakref.finalize(self, self._asks.put, None))
                reply: queue.Queue = queue.Queue()
                self._asks.put(reply)
                made = reply.get()
                if isinstance(made, BaseException):
                    raise made
                self._pool = made
                self._finalizers.append(weakref.finalize(self, stop_pool, made))
            return self._pool

    def broken(self, pool: ProcessPoolExecutor) -> None:
        """A worker of ``pool`` died: stop it; the next ``executor()`` starts a fresh one."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        stop_pool(pool, cancel=False)  # other batches' queued files fail over to their own recovery

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._pool = None
            finalizers, self._finalizers = self._finalizers, []
        for fin in finalizers:  # stops the pools (again: harmless) and the forking thread
            fin()


class _Runner(pools.ChunkRunner):
    """A batch of returns on a pool of its own, or on the server's long-lived ``WorkerPool``."""

    def __init__(
        self, sources: list[Source], opts: CheckOptions, workers: int, shared: WorkerPool | None = None, keep: bool = False
    ):
        self.sources, self.opts, self.shared, self.keep = sources, opts, shared, keep
        if shared is not None:  # the server's workers: as many as asked (a unit's upload: one), one chunk each in
            workers = min(workers, shared.workers)  # flight, so that other units' uploads are next in the pool's queue
            self.depth = 1
        super().__init__(len(sources), workers, max(1, min(32, len(sources) // (workers * 8))))

    def start(self) -> ProcessPoolExecutor:
        return self.shared.executor() if self.shared is not None else _new_pool(self.workers, self.opts)

    def submit(self, pool: ProcessPoolExecutor, lo: int, hi: int) -> Future:
        if self.shared is not None:  # its workers serve every batch: the options travel with the files
            return pool.submit(_worker_run_with, self.opts, self.sources[lo:hi], self.keep)
        return pool.submit(_worker_run, self.sources[lo:hi], self.keep)

    def drop(self, pool: ProcessPoolExecutor, broken: bool) -> None:
        if self.shared is None:
            stop_pool(pool)
        elif broken:
            self.shared.broken(pool)

    def alone(self, i: int) -> tuple[ProcessPoolExecutor, Callable[..., list[Report] | list[Kept]], tuple]:
        return _new_pool(1, self.opts), _worker_run, ([self.sources[i]], self.keep)

    def failed(self, i: int, detail: str) -> Report | Kept:
        report = unreadable(self.sources[i], "file-unreadable", detail)
        return Kept(report) if self.keep else report


def iter_checked(
    paths: Iterable[Path], opts: CheckOptions, progress: Callable[[int], Any] | None = None, workers: int | None = None
) -> Iterator[Report]:
    """Check every return under ``paths`` and yield complete reports in input order.

    Files are read in worker processes (all cores for large batches, one otherwise), so one bad
    file never stops the batch. Closing the iterator (or Ctrl-C) stops the workers at once.
    """
    yield from iter_sources(list(collect(list(paths))), opts, progress, workers)


def iter_sources(
    sources: list[Source],
    opts: CheckOptions,
    progress: Callable[[int], Any] | None = None,
    workers: int | None = None,
    pool: WorkerPool | None = None,
) -> Iterator[Report]:
    """``iter_checked`` on sources already collected (the archive keeps their bytes); ``pool``: run
    in those long-lived workers instead of starting a pool for this batch."""
    yield from _checked(sources, opts, progress, workers, pool, keep=False)


def iter_kept(
    sources: list[Source],
    opts: CheckOptions,
    progress: Callable[[int], Any] | None = None,
    workers: int | None = None,
    pool: WorkerPool | None = None,
) -> Iterator[Kept]:
    """``iter_sources`` for the archive: each report with the bytes that were checked (``Kept``)."""
    yield from _checked(sources, opts, progress, workers, pool, keep=True)


def _checked(
    sources: list[Source],
    opts: CheckOptions,
    progress: Callable[[int], Any] | None,
    workers: int | None,
    pool: WorkerPool | None,
    keep: bool,
) -> Iterator[Any]:
    """The workers' results in input order, each as soon as it is the next one due. All cores (or as
    many workers as asked), but no more than one worker per 20 files."""
    if progress:
        progress(len(sources))
    if not sources:
        return
    workers = max(1, min(workers if workers is not None else (os.cpu_count() or 1), (len(sources) + 19) // 20))
    ready: dict[int, Any] = {}
    following = 0
    with pools.fewer_collections():  # also while the consumer stores what is yielded (receive)
        for i, report in _Runner(sources, opts, workers, pool, keep).run():
            ready[i] = report
            if progress:
                progress(-1)
            while following in ready:
                yield ready.pop(following)
                following += 1


def check_paths(
    paths: Iterable[Path], opts: CheckOptions, progress: Callable[[int], Any] | None = None, workers: int | None = None
) -> BatchResult:
    """Check every return under ``paths``: complete reports plus the findings about the batch."""
    reports = list(iter_checked(paths, opts, progress, workers))
    return BatchResult(reports, batch_findings(reports, opts))


# ---------------------------------------------------------------- the batch as a whole


def others_named(report: Report, reps: list[Report]) -> str:
    """A few of the other files of the same unit, and how many there are (``few_names``)."""
    others = [r.provenance.name for r in reps[: NAMED + 1] if r is not report][:NAMED]
    return few_names(others, len(reps) - 1)


def batch_findings(reports: list[Report], opts: CheckOptions) -> list[Finding]:
    """What only the whole batch shows: units of the roster that sent nothing, units that sent
    several files, and (without --year) files of different years side by side."""
    out: list[Finding] = []
    readable = [r for r in reports if r.readable and r.level == "填报单位"]
    by_unit: dict[str, list[Report]] = {}
    for r in readable:
        if r.unit_code:
            by_unit.setdefault(r.unit_code, []).append(r)
    for code, reps in by_unit.items():
        if len(reps) > 1:
            for r in reps:
                f = make(
                    "unit-duplicate-in-batch",
                    file=r.provenance.name,
                    unit_code=code,
                    unit_name=r.unit_name,
                    count=len(reps),
                    detail=others_named(r, reps),
                ).finish(r.year)
                r.findings.append(f)
    if opts.roster is not None and len(by_unit) > 1:  # a batch, not one unit's file checked on its own
        seen = {r.unit_code for r in reports if r.readable}
        for u in opts.roster.units:
            if u.code not in seen:
                out.append(make("unit-missing", unit_code=u.code, unit_name=u.name).finish(opts.year))
    if opts.year is None:
        years: dict[Any, int] = {}
        for r in readable:
            years[r.year or "未知"] = years.get(r.year or "未知", 0) + 1
        if len(years) > 1:
            detail = "，".join(
                f"{y}年度{n}份" if y != "未知" else f"年度未知{n}份" for y, n in sorted(years.items(), key=lambda kv: str(kv[0]))
            )
            out.append(make("year-mixed", detail=detail).finish())
    return out
