"""Where the figures of a draft come from, and what a written draft still lacks.

This year's figures: a return or a summary workbook, read and checked exactly as
`nianbao check` does (so a draft is refused for the same 错误). Last year's: a workbook, or
a published report (text, web page, PDF) read by `nianbao import`'s reader.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..check import CheckOptions, check_paths, check_report
from ..errors import NianbaoError
from ..findings import Finding
from ..inputs import WORKBOOK_SUFFIXES
from ..report import Report
from .model import Pending, pending_in_lines

PUBLISHED_SUFFIXES = {".txt", ".html", ".htm", ".pdf"}


def _unreadable(report: Report, path: Path) -> NianbaoError:
    why = "；".join(f.message for f in report.findings if f.severity == "错误") or "无法读取"
    return NianbaoError(f"{path.name} 不是可用的填报表或汇总表：{why}")


def _workbook(path: Path) -> Report:
    if not path.is_file():
        raise NianbaoError(f"找不到文件：{path}")
    if path.suffix.lower() not in WORKBOOK_SUFFIXES:
        raise NianbaoError(f"{path.name} 不是填报表或汇总表：应为 nianbao 生成的 .xlsx（或另存的 .ods）文件。")
    (report,) = check_paths([path], CheckOptions()).reports
    if not report.readable or not report.format_id:
        raise _unreadable(report, path)
    return report


def read_source(path: Path) -> Report:
    """This year's return or summary, with every finding `nianbao check` would report."""
    return _workbook(Path(path))


def read_previous(path: Path) -> Report:
    """Last year's figures from a workbook or from a published report (text, HTML, PDF)."""
    from ..published.importer import read_published

    path = Path(path)
    if path.suffix.lower() in WORKBOOK_SUFFIXES:
        return _workbook(path)
    if not path.is_file():
        raise NianbaoError(f"找不到上年数据文件：{path}")
    if path.suffix.lower() not in PUBLISHED_SUFFIXES:
        raise NianbaoError(
            f"{path.name} 不能作为上年数据：应为上年的填报表、汇总表（.xlsx/.ods）或已发布的上年年报（.txt/.html/.pdf）。"
        )
    report = read_published(path)
    if not report.readable:
        raise NianbaoError(f"上年年报 {path.name} 中没有读到表格数据：" + "；".join(f.message for f in report.findings))
    return check_report(report, CheckOptions())


def carryover_notes(report: Report, previous: Report) -> list[Finding]:
    """I6 and 现行有效 continuity between last year and this year (importer.cross_year),
    whatever the two sources call the unit."""
    from ..published.importer import cross_year

    same = dataclasses.replace(previous, unit_name=report.unit_name, findings=[])
    this = dataclasses.replace(report, findings=[])
    return cross_year([same, this])


def pending_in_file(path: Path) -> list[Pending]:
    """The 【请填写：…】 and 【警告：…】 still in a written draft (.docx or .html), e.g. after
    the office has edited it: a report must not be published while this list is not empty."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".docx":
        from docx import Document as open_document

        d = open_document(str(path))
        lines = [(_style_of(p.style.name if p.style is not None else ""), p.text) for p in d.paragraphs]
        seen: dict[int, object] = {}  # a merged cell is listed once per grid position it covers
        for t in d.tables:
            for row in t.rows:
                for cell in row.cells:
                    if id(cell._tc) not in seen:
                        seen[id(cell._tc)] = cell._tc  # kept alive, so ids stay unique
                        lines.append(("body", cell.text))
        return pending_in_lines(lines)
    if suffix in (".html", ".htm"):
        from lxml import html as lhtml

        root = lhtml.fromstring(path.read_bytes())
        tags = {"h1": "title", "h2": "heading1", "h3": "heading2"}
        lines = [(tags.get(el.tag, "body"), el.text_content()) for el in root.iter("h1", "h2", "h3", "p", "td", "th", "li")]
        return pending_in_lines(lines)
    raise NianbaoError(f"{path.name}：只能检查 .docx 或 .html 文稿")


def _style_of(name: str) -> str:
    return {"年报标题": "title", "Heading 1": "heading1", "Heading 2": "heading2"}.get(name, "body")
