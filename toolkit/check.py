"""审核: read every return, check identity against the roster and year, run the
rules, and (optionally) write the annotated copy that goes back to the clerk."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .fileio import atomic_write_text, safe_filename
from .findings import Finding, counts, fmt_num, make, sort_key
from .inputs import Source, collect, load
from .reader import read_bytes
from .report import Provenance, Report
from .roster import Roster, Unit
from .rules import run_rules
from .spec import Format, current_format, formats

# Findings that an annotated copy repairs by being rebuilt from the template.
REPAIRED_BY_REBUILD = {
    "label-changed", "layout-shifted", "protection-removed", "structure-unprotected", "structure-unprotected-lo",
    "sheet-extra", "sheet-missing", "formula-in-input", "macros-present", "external-link",
}


@dataclass
class CheckOptions:
    year: int | None = None
    roster: Roster | None = None


@dataclass
class BatchResult:
    reports: list[Report] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.reports for f in r.findings]

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "错误" for f in self.findings)


def check_identity(report: Report, fmt: Format, opts: CheckOptions) -> list[Finding]:
    """Format, year and roster: is this the return we asked for, from whom it says?"""
    out: list[Finding] = []
    current = current_format()
    name = report.provenance.name
    if fmt.status != "current" and (report.year is None or report.year >= current.valid_from_year):
        out.append(make("format-outdated", file=name, found=fmt.title, expected=current.title,
                        year=report.year or ""))
    if opts.year and report.year != opts.year:
        out.append(make("year-mismatch", file=name, found=report.year or "未知", expected=opts.year))
    if _version(report.template_version) < _version(fmt.template_version):
        out.append(make("template-outdated", file=name, found=report.template_version,
                        expected=fmt.template_version))
    if opts.roster is not None:
        unit = opts.roster.get(report.unit_code)
        if unit is None:
            out.append(make("unit-not-in-roster", file=name, found=report.unit_code or "（无）",
                            unit_name=report.unit_name or "未知单位"))
        else:
            if unit.name != report.unit_name:
                out.append(make("unit-name-mismatch", file=name, unit_code=report.unit_code,
                                found=report.unit_name, expected=unit.name))
            report.unit_type = unit.type  # the roster is authoritative for rules such as I10
    return out


def _version(v: str) -> tuple[int, ...]:
    """'1.10' > '1.9': compare template versions as numbers; unknown counts as current."""
    try:
        return tuple(int(x) for x in str(v).split(".")) if v else (10**9,)
    except ValueError:
        return (10**9,)


def check_report(report: Report, opts: CheckOptions) -> Report:
    """Add identity and rule findings to a report the reader produced."""
    fmt = formats().get(report.format_id)
    if report.readable and fmt is not None:
        extra = check_identity(report, fmt, opts) + run_rules(fmt, report)
        for f in extra:
            f.file = report.provenance.name
            f.unit_code = f.unit_code or report.unit_code
            f.unit_name = f.unit_name or report.unit_name
            f.finish(report.year)
        report.findings.extend(extra)
    report.findings.sort(key=sort_key)
    return report


def check_source(src: Source, opts: CheckOptions) -> Report:
    src = load(src)
    if src.problem is not None:
        rep = Report(provenance=Provenance(path=src.path, name=src.name), readable=False)
        rep.findings.append(make(src.problem.code, file=src.name, detail=src.problem.detail).finish())
        return rep
    return check_report(read_bytes(src.data or b"", src.name, src.path, src.mtime), opts)


# ---------------------------------------------------------------- batches (optionally in a process pool)

POOL_THRESHOLD = 40  # below this, starting worker processes costs more than it saves
_WORKER: dict[str, Any] = {}


def _worker_init(opts: CheckOptions, annotate_dir: str | None) -> None:
    _WORKER["opts"], _WORKER["annotate"] = opts, annotate_dir


def _worker_run(task: tuple[Source, str]) -> tuple[Report, str | None]:
    src, ann_name = task
    return _finish_one(check_source(src, _WORKER["opts"]), _WORKER["annotate"], ann_name)


def _finish_one(report: Report, annotate_dir: str | None, ann_name: str) -> tuple[Report, str | None]:
    """Annotate where the full report is at hand, then slim it for the trip back: only the
    non-zero inputs travel (consolidation treats absent as 0), so 10,000 reports stay small."""
    written = None
    if annotate_dir:
        path = annotate(report, Path(annotate_dir), ann_name)
        written = str(path) if path else None
    fmt = formats().get(report.format_id)
    if fmt is not None:
        report.values = {c.id: report.values[c.id] for c in fmt.inputs if report.values.get(c.id)}
    report.cached, report.raw = {}, {}
    return report, written


def iter_checked(paths: Iterable[Path], opts: CheckOptions, progress: Callable[[int], Any] | None = None,
                 annotate_dir: Path | None = None, workers: int | None = None) -> Iterator[tuple[Report, str | None]]:
    """Check every return under ``paths``, in input order, using all cores for large batches.

    Yields (slim report, path of its annotated copy or None). One bad file never stops the batch.
    """
    sources = list(collect(list(paths)))
    if progress:
        progress(len(sources))
    workers = workers if workers is not None else (os.cpu_count() or 1)
    ann = str(annotate_dir) if annotate_dir else None
    tasks = list(zip(sources, annotated_names([s.name for s in sources]), strict=True))
    if workers > 1 and len(sources) >= POOL_THRESHOLD:
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(opts, ann)) as pool:
            for item in pool.map(_worker_run, tasks, chunksize=max(1, min(64, len(tasks) // (workers * 8)))):
                if progress:
                    progress(-1)
                yield item
        return
    for src, ann_name in tasks:
        item = _finish_one(check_source(src, opts), ann, ann_name)
        if progress:
            progress(-1)
        yield item


def check_paths(paths: Iterable[Path], opts: CheckOptions,
                progress: Callable[[int], Any] | None = None) -> BatchResult:
    """Check every return found under ``paths`` and keep the full reports (library use, tests)."""
    sources = list(collect(list(paths)))
    if progress:
        progress(len(sources))
    result = BatchResult()
    for src in sources:
        result.reports.append(check_source(src, opts))
        if progress:
            progress(-1)
    return result


# ---------------------------------------------------------------- annotated copy


def _marks(report: Report) -> dict[tuple[str, str], str]:
    marks: dict[tuple[str, str], list[str]] = {}
    for f in report.findings:
        if f.sheet and f.cell:
            marks.setdefault((f.sheet, f.cell), []).append(f"【{f.severity}】{f.message}\n处理：{f.instruction}")
    return {k: "\n\n".join(v) for k, v in marks.items()}


def annotated_names(names: list[str]) -> list[str]:
    """File names of the annotated copies, safe and unique, decided before any worker runs."""
    out, taken = [], set()
    for name in names:
        stem = safe_filename(Path(name).stem, 80)
        candidate, n = f"{stem}_审核意见.xlsx", 2
        while candidate in taken:
            candidate, n = f"{stem}_审核意见({n}).xlsx", n + 1
        taken.add(candidate)
        out.append(candidate)
    return out


def annotate(report: Report, out_dir: Path, name: str | None = None) -> Path | None:
    """Write the copy sent back to the clerk: rebuilt from the template with the clerk's values,
    still locked and fillable, faulty cells red with a comment, and a 问题清单 sheet."""
    from .template import ReturnContent, findings_sheet, write_return

    fmt = formats().get(report.format_id)
    if fmt is None or not report.readable or not report.findings:
        return None
    unit = Unit(report.unit_code, report.unit_name, report.unit_type)
    content = ReturnContent(
        unit=unit, year=report.year or 0, values={c.id: report.values.get(c.id) for c in fmt.inputs},
        raw={k: v for k, v in report.raw.items() if v is not None}, cover=dict(report.cover),
        level=report.level, marks=_marks(report),
    )
    path = Path(out_dir) / (name or annotated_names([report.provenance.name])[0])
    write_return(path, fmt, content, extra=[findings_sheet(report.findings)], extra_sheets=("问题清单",))
    return path


# ---------------------------------------------------------------- JSON


def to_json(result: BatchResult, opts: CheckOptions) -> dict[str, Any]:
    """The machine-readable report (schema documented in README: 'check --json')."""
    files = []
    for r in result.reports:
        files.append({
            "file": r.provenance.name, "path": r.provenance.path, "sha256": r.provenance.sha256,
            "readable": r.readable, "format_id": r.format_id, "format_version": r.format_version,
            "year": r.year, "unit_code": r.unit_code, "unit_name": r.unit_name, "unit_type": r.unit_type,
            "level": r.level, "application": r.provenance.application, "counts": counts(r.findings),
            "findings": [f.to_dict() for f in r.findings],
        })
    return {
        "tool": "nianbao", "tool_version": __version__, "year": opts.year,
        "files": files, "counts": counts(result.findings),
        "ok": not result.has_errors,
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    import json

    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=2, default=fmt_num))
