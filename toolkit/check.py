"""审核: read every return, check identity against the roster and year, run the
rules, and (optionally) write the annotated copy that goes back to the clerk."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .fileio import atomic_write_text, safe_filename
from .findings import Finding, counts, fmt_num, make, sort_key
from .inputs import Source, collect
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
    if report.template_version and report.template_version < fmt.template_version:
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
    if src.problem is not None:
        rep = Report(provenance=Provenance(path=src.path, name=src.name), readable=False)
        rep.findings.append(make(src.problem.code, file=src.name, detail=src.problem.detail).finish())
        return rep
    return check_report(read_bytes(src.data or b"", src.name, src.path, src.mtime), opts)


def check_paths(paths: Iterable[Path], opts: CheckOptions,
                progress: Callable[[int], Any] | None = None) -> BatchResult:
    """Check every return found under ``paths``; one bad file never stops the batch."""
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


def annotate(report: Report, out_dir: Path, taken: set[str] | None = None) -> Path | None:
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
    stem = safe_filename(Path(report.provenance.name).stem, 80)
    name = f"{stem}_审核意见.xlsx"
    taken = taken if taken is not None else set()
    n = 2
    while name in taken:
        name = f"{stem}_审核意见({n}).xlsx"
        n += 1
    taken.add(name)
    path = Path(out_dir) / name
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
