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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import inputs
from .. import pool as pools
from ..check import BatchResult, CheckOptions
from ..expr import evaluate_terms
from ..fileio import safe_filename
from ..findings import Finding, counts, make, sort_key
from ..inputs import Source
from ..pool import new_pool
from ..report import Provenance, Report
from ..roster import Roster
from ..spec import Format, Rule, formats
from .importer import REPORT_SUFFIXES, import_one, pair_years


@dataclass(frozen=True)
class Skipped:
    """A file under the given folders that was not audited, and why (said to the user, never silent)."""

    name: str  # as shown: relative to the folder given
    reason: str


@dataclass
class AuditResult(BatchResult):
    """The audited reports (a batch like check's, with years paired), and the files passed over."""

    skipped: list[Skipped] = field(default_factory=list)

    def pairs(self) -> list[Report]:
        """Reports whose unit also has last year's report in the batch."""
        return [r for r in self.reports if r.previous is not None]


# ---------------------------------------------------------------- what to read


def collect(paths: Iterable[Path]) -> list[Source]:
    """Every published report under the paths, found as returns are (toolkit.inputs: regular files
    only, links out of a folder skipped, one budget for a tree of zip archives, members read one at
    a time in the worker): .txt .htm .html .shtml .pdf, and any file named explicitly."""
    return list(inputs.collect([Path(p) for p in paths], suffixes=frozenset(REPORT_SUFFIXES)))


_KINDS = {
    ".docx": "Word文档",
    ".doc": "Word文档",
    ".wps": "WPS文档",
    ".rtf": "RTF文档",
    ".odt": "OpenDocument文档",
}
_WORKBOOKS = (".xlsx", ".xlsm", ".xls", ".et", ".ods")
_WANTED = "、".join(REPORT_SUFFIXES)


def skip_reason(name: str) -> str | None:
    """Why a file in a folder is not read as a published report; None when it is read."""
    base = name.rsplit("/", 1)[-1]
    suffix = os.path.splitext(base)[1].lower()
    if base.startswith(("~$", ".~lock", "._")):
        return "是办公软件打开文件时留下的临时文件，不是年报"
    if suffix in REPORT_SUFFIXES or suffix == ".zip":
        return None
    if suffix in _KINDS:
        return f"是{_KINDS[suffix]}，审计只读已发布的文本、网页和PDF：请另存为PDF（或网页）后放入文件夹再审计"
    if suffix in _WORKBOOKS:
        return "是电子表格，不是已发布的年报：填报表请用 nianbao check 审核"
    if base.startswith("."):
        return "是隐藏文件或系统文件，不是年报"
    kind = f"扩展名“{suffix}”" if suffix else "没有扩展名"
    return f"{kind}不是年报的格式（可读：{_WANTED}，或含有它们的 .zip 压缩包）；如确是年报，请改为相应扩展名"


def skipped_files(paths: Iterable[Path]) -> list[Skipped]:
    """Every file in the given folders that ``collect`` passes over for its kind, with the reason
    (a file named explicitly is always read, so only folders are looked at)."""
    out: list[Skipped] = []
    for p in map(Path, paths):
        if not p.is_dir():
            continue
        for _folder, _parts, label, entries in inputs.folders(p):
            for e in entries:
                reason = skip_reason(e.name)
                if reason is not None and _is_file(e):
                    out.append(Skipped(os.path.join(label, e.name) if label else e.name, reason))
    return sorted(out, key=lambda s: s.name)


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


_NOT_READ = ("path-skipped", "import-too-large")


def not_read(result: AuditResult) -> list[Skipped]:
    """The files skipped for their kind, and those found but not read (too large, not a regular
    file, a link out of the folder): everything the audit did not read, each with why."""
    out = list(result.skipped)
    for r in result.reports:
        f = next((f for f in r.findings if f.code in _NOT_READ), None)
        if f is not None:
            out.append(Skipped(r.provenance.name, f.message))
    return out


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


class _Worker:
    """A worker process's batch options, set once by the pool's initializer (a roster travels to each
    worker once, not with every chunk). Per-process state, not format data."""

    opts: CheckOptions

    @classmethod
    def init(cls, opts: CheckOptions) -> None:
        cls.opts = opts

    @classmethod
    def run(cls, chunk: list[Source]) -> list[Report]:
        return [audit_one(s, cls.opts) for s in chunk]


class _Runner(pools.ChunkRunner):
    """Published reports on a pool of their own."""

    def __init__(self, sources: list[Source], opts: CheckOptions, workers: int):
        self.sources, self.opts = sources, opts
        super().__init__(len(sources), workers, max(1, min(16, len(sources) // (workers * 6))))

    def start(self) -> ProcessPoolExecutor:
        return new_pool(self.workers, _Worker.init, (self.opts,))

    def submit(self, pool: ProcessPoolExecutor, lo: int, hi: int) -> Future:
        return pool.submit(_Worker.run, self.sources[lo:hi])

    def alone(self, i: int) -> tuple[ProcessPoolExecutor, Callable[..., list[Report]], tuple]:
        return new_pool(1, _Worker.init, (self.opts,)), _Worker.run, ([self.sources[i]],)

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
    paths = [Path(p) for p in paths]
    sources = collect(paths)
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
    return AuditResult(done, skipped=skipped_files(Path(p) for p in paths))


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


def _side(terms: list, rep: Report) -> Any:
    side = evaluate_terms(terms, rep)
    return None if side.unknown or side.missing else side.value


def continuity(rep: Report) -> list[Continuity]:
    """Each cross-year equality of the format (上年结转 = last year's 结转下年度, shown for its summary
    column; 现行有效 = last year's + 本年制发 − 本年废止, per row), evaluated on this pair whether it
    holds or not — the findings say only where it fails."""
    prev = rep.previous
    if prev is None or rep.format_id != prev.format_id or rep.format_id not in formats():
        return []
    fmt = formats()[rep.format_id]
    out = []
    for rule in continuity_rules(fmt):
        for inst in fmt.compiled[rule.code].instances:
            if rule.summary_member and inst.member != rule.summary_member:
                continue
            cell = fmt.cells[inst.at]
            last_ids = [ids[0] for _, source, ids in inst.left + inst.right if source == "p"]
            last = None if not last_ids or last_ids[0] in prev.unknown else prev.values.get(last_ids[0])
            now, expected = _side(inst.left, rep), _side(inst.right, rep)
            item = f"{cell.row_label} {cell.col_label.split(' ')[-1]}：{rule.basis.split('：', 1)[-1]}"
            out.append(Continuity(item, last, now, expected, _verdict(now, expected)))
    return out


def continuity_rules(fmt: Format) -> list[Rule]:
    """The format's cross-year equalities: the 跨年 sheet shows each of them for every pair."""
    return [r for r in fmt.rules if r.cross_year and r.operator == "=="]


def cross_year_codes(fmt: Format) -> frozenset[str]:
    return frozenset(r.code for r in fmt.rules if r.cross_year)


def _verdict(got: Any, expected: Any) -> str:
    if got is None or expected is None:
        return "无法比较"
    return "一致" if abs(got - expected) < 1e-9 else "不一致"
