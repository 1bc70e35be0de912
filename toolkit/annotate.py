"""The copy sent back to a clerk (审核意见): this year's template rebuilt with the clerk's own
figures, still locked and fillable, every faulty cell red with a comment, and a 问题清单 sheet.

A writer beside the summary writer: it takes a checked, complete Report and writes a file. It
writes nothing rather than something wrong: a return whose tables could not be read is never
sent back with those tables empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .fileio import safe_filename
from .findings import Finding
from .report import Report
from .roster import Unit
from .spec import Format, conventions, formats
from .textnum import as_text_if_not_finite

SUFFIX = "_审核意见"


@dataclass(frozen=True)
class Decision:
    write: bool
    reason: str = ""  # why not, in Chinese, when write is False


def decide(report: Report) -> Decision:
    """Only returns with 错误 or 警告 go back; never one whose tables were not read."""
    fmt = formats().get(report.format_id)
    if fmt is None or not report.readable:
        return Decision(False, "文件无法读取，无法生成审核意见副本；请对方用原模板重新填写")
    if not any(f.severity in ("错误", "警告") for f in report.findings):
        return Decision(False, "")
    if report.unknown:
        return Decision(False, "有表格未能读取，不生成审核意见副本（否则这些表会是空的）；请把当年的空白模板发给对方重新填写")
    return Decision(True)


def annotated_names(names: list[str]) -> list[str]:
    """File names of the annotated copies: safe, unique, and short enough for any file system."""
    out, taken = [], set()
    for name in names:
        stem = safe_filename(Path(name).stem, max_bytes=180)
        candidate, n = f"{stem}{SUFFIX}.xlsx", 2
        while candidate in taken:
            candidate, n = f"{stem}{SUFFIX}({n}).xlsx", n + 1
        taken.add(candidate)
        out.append(candidate)
    return out


def _marks(findings: list[Finding]) -> dict[tuple[str, str], str]:
    marks: dict[tuple[str, str], list[str]] = {}
    for f in findings:
        if f.sheet and f.cell:
            marks.setdefault((f.sheet, f.cell), []).append(f"【{f.severity}】{f.message}\n处理：{f.instruction}")
    return {k: "\n\n".join(v) for k, v in marks.items()}


def write_annotated(report: Report, path: Path, year: int | None = None) -> Path | None:
    """Write the annotated copy to ``path``; None when ``decide`` says no. A file of another year
    goes back as this year's blank template (its figures belong to that year), with the finding."""
    from .template import ReturnContent, findings_sheet, write_return

    if not decide(report).write:
        return None
    fmt: Format = formats()[report.format_id]
    listed = [f for f in report.findings if not f.county_only]  # the clerk's copy: no notes meant for the county
    other_year = year is not None and report.year != year
    unit = Unit(report.unit_code, report.unit_name, report.unit_type)
    content = ReturnContent(
        unit=unit,
        year=year if other_year else (report.year or 0),
        values=None if other_year else {c.id: report.values.get(c.id) for c in fmt.inputs},
        raw={} if other_year else {k: as_text_if_not_finite(v) for k, v in report.raw.items() if v is not None},
        cover={} if other_year else dict(report.cover),
        level=report.level,
        marks={} if other_year else _marks(listed),
    )
    sheet = conventions().findings_sheet
    write_return(Path(path), fmt, content, extra=[findings_sheet(listed, sheet)], extra_sheets=(sheet,))
    return Path(path)
