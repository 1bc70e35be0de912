"""审计: import every published report under the given paths (files, folders, zip archives of
text, HTML and PDF), in worker processes, and gather what an evaluation team looks at: one line
per report, every finding, the year-to-year continuity of each unit, and the figures in the
prose that contradict the tables.

Each report goes through the same pipeline as ``nianbao import`` (`importer.import_one`); the
years of each unit are paired afterwards (`importer.pair_years`). A worker that dies on a
hostile file takes only that file down: it becomes a report with one finding, the batch goes on.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import inputs
from .. import pool as pools
from ..check import BatchResult, CheckOptions
from ..fileio import safe_filename
from ..findings import Finding, counts, make, sort_key
from ..inputs import Source
from ..pool import new_pool
from ..report import Provenance, Report
from ..roster import Roster
from ..spec import formats
from .importer import REPORT_SUFFIXES, import_one, pair_years


@dataclass
class AuditResult(BatchResult):
    """The audited reports (a batch like check's, with years paired)."""

    def pairs(self) -> list[Report]:
        """Reports whose unit also has last year's report in the batch."""
        return [r for r in self.reports if r.previous is not None]


# ---------------------------------------------------------------- what to read


def collect(paths: Iterable[Path]) -> list[Source]:
    """Every published report under the paths, found as returns are (toolkit.inputs: regular files
    only, links out of a folder skipped, one budget for a tree of zip archives, members read one at
    a time in the worker): .txt .htm .html .shtml .pdf, and any file named explicitly."""
    return list(inputs.collect([Path(p) for p in paths], suffixes=frozenset(REPORT_SUFFIXES)))


# ---------------------------------------------------------------- one report (in a worker)


def _failed(src: Source, detail: str, code: str = "table-unreadable") -> Report:
    rep = Report(provenance=Provenance(path=src.path, name=src.name), readable=False)
    rep.findings.append(make(code, file=src.name, detail=detail).finish())
    return rep


def audit_one(src: Source, opts: CheckOptions) -> Report:
    """Import and check one report; never raises for a bad file."""
    if src.member:
        src = inputs.load(src)
    if src.problem:
        return _failed(src, src.problem.detail, src.problem.code)
    kw: dict[str, Any] = {"roster": opts.roster, "year": opts.year}
    if not src.member:  # a file on disk: the importer reads it within its own limits
        rep = import_one(Path(src.path), **kw)
    else:  # a zip member: the importer reads files (pdftotext needs one), so give it a private copy
        with tempfile.TemporaryDirectory(prefix="nianbao-audit-") as tmp:
            copy = Path(tmp) / (safe_filename(Path(src.name).name) or "report.txt")
            copy.write_bytes(src.data or b"")
            src.data = None
            rep = import_one(copy, **kw)
    rep.provenance.name, rep.provenance.path = src.name, src.path
    for f in rep.findings:
        f.file = src.name
    return rep.compact()


_OPTS: dict[str, CheckOptions] = {}


def _init(opts: CheckOptions) -> None:
    _OPTS["opts"] = opts


def _run(chunk: list[Source]) -> list[Report]:
    return [audit_one(s, _OPTS["opts"]) for s in chunk]


class _Runner(pools.ChunkRunner):
    """Published reports on a pool of their own."""

    def __init__(self, sources: list[Source], opts: CheckOptions, workers: int):
        self.sources, self.opts = sources, opts
        super().__init__(len(sources), workers, max(1, min(16, len(sources) // (workers * 6))))

    def start(self) -> ProcessPoolExecutor:
        return new_pool(self.workers, _init, (self.opts,))

    def submit(self, pool: ProcessPoolExecutor, lo: int, hi: int) -> Future:
        return pool.submit(_run, self.sources[lo:hi])

    def alone(self, i: int) -> tuple[ProcessPoolExecutor, Callable[..., list[Report]], tuple]:
        return new_pool(1, _init, (self.opts,)), _run, ([self.sources[i]],)

    def failed(self, i: int, detail: str) -> Report:
        return _failed(self.sources[i], detail)


def audit(
    paths: Iterable[Path | str],
    *,
    roster: Roster | None = None,
    year: int | None = None,
    progress: Callable[[int], Any] | None = None,
    workers: int | None = None,
) -> AuditResult:
    """Import and check every published report under ``paths`` and pair the years of each unit.
    Reports are read in worker processes (a few files: one), so a file that crashes or hangs its
    reader is a finding and the rest goes on; ``workers=0`` reads in this process (no pool)."""
    sources = collect(Path(p) for p in paths)
    opts = CheckOptions(roster=roster, year=year)
    if progress:
        progress(len(sources))
    n = len(sources)
    workers = min(max(1, min(os.cpu_count() or 1, (n + 9) // 10)) if workers is None else workers, n)
    reports: list[Report | None] = [None] * n
    if workers <= 0:
        for i, src in enumerate(sources):
            reports[i] = audit_one(src, opts)
            if progress:
                progress(-1)
    else:
        for i, rep in _Runner(sources, opts, workers).run():
            reports[i] = rep
            if progress:
                progress(-1)
    done = [r for r in reports if r is not None]
    pair_years(done)
    for r in done:
        r.findings.sort(key=sort_key)
    return AuditResult(done)


# ---------------------------------------------------------------- what the workbook shows


def visible_cells(rep: Report) -> tuple[int, int]:
    """(cells read, cells unknown) over the tables a published report prints."""
    fmt = formats().get(rep.format_id)
    if fmt is None or not rep.readable:
        return 0, 0
    ids = [c.id for c in fmt.cells.values() if fmt.sheet(c.sheet_id).published]
    unknown = sum(1 for cid in ids if cid in rep.unknown)
    return len(ids) - unknown, unknown


def worst(rep: Report) -> Finding | None:
    return min(rep.findings, key=sort_key) if rep.findings else None


def severity_counts(rep: Report) -> dict[str, int]:
    return counts(rep.findings)


@dataclass
class Continuity:
    """One cross-year comparison of a unit: this year's figure against what last year implies."""

    item: str
    previous: Any
    current: Any
    expected: Any
    verdict: str  # 一致 | 不一致 | 无法比较


def _val(rep: Report, cid: str, printed: bool = False) -> Any:
    if cid in rep.unknown:
        return None
    if printed and rep.cached.get(cid) is not None:
        return rep.cached.get(cid)
    return rep.values.get(cid)


def continuity(rep: Report) -> list[Continuity]:
    """上年结转 = last year's 结转下年度; 现行有效 = last year's + 本年制发 − 本年废止 (规章, 行政规范性文件)."""
    prev = rep.previous
    if prev is None or rep.format_id != prev.format_id or rep.format_id not in formats():
        return []
    fmt = formats()[rep.format_id]
    out = []
    if "t3.r2.tot" in fmt.cells and "t3.r4.tot" in fmt.cells:
        last, now = _val(prev, "t3.r4.tot", True), _val(rep, "t3.r2.tot", True)
        out.append(Continuity("上年结转申请数（总计）＝上年报告的结转下年度继续办理", last, now, last, _verdict(now, last)))
    for row, name in (("reg", "规章"), ("norm", "行政规范性文件")):
        ids = [f"t2.{row}.{c}" for c in ("valid", "made", "repealed")]
        if not all(i in fmt.cells for i in ids):
            continue
        last = _val(prev, ids[0])
        valid, made, repealed = (_val(rep, i) for i in ids)
        expected = None if None in (last, made, repealed) else last + made - repealed
        out.append(
            Continuity(f"{name}现行有效件数＝上年现行有效＋本年制发－本年废止", last, valid, expected, _verdict(valid, expected))
        )
    return out


def _verdict(got: Any, expected: Any) -> str:
    if got is None or expected is None:
        return "无法比较"
    return "一致" if abs(got - expected) < 1e-9 else "不一致"


CROSS_YEAR_CODES = frozenset({"carryover-mismatch", "valid-continuity", "jump-up", "jump-down"})
