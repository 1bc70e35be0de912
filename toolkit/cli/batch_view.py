"""The console view of a large batch: counts, the files that need action, duplicates one line per unit.

At a city or a province (hundreds or thousands of files) one row per file is thousands of lines that
nobody reads and that take seconds to render; the reviewer needs what to do next. Small batches (at
most ``THRESHOLD`` files) and ``--verbose`` keep the full view of ``app.print_findings``; ``--json``
always has everything.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

import typer

from .app import clean, err, print_findings, say, unit_label

THRESHOLD = 50  # files: above this the console shows the compact view
ACTION_ROWS = 30  # rows of the compact table of files that need action
DUPLICATE = "unit-duplicate-in-batch"
MORE = "另有 {} 个需要处理的文件未列出；全部列出请加 --verbose，完整结果请用 --json。"
# check, consolidate and receive: the one --verbose option
VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help=f"文件很多时也逐个列出全部文件和全部问题（默认超过{THRESHOLD}个文件时只列出数量和需要处理的文件）。",
    ),
]


def compact(n_files: int, verbose: bool) -> bool:
    """Whether a batch of ``n_files`` gets the compact view."""
    return not verbose and n_files > THRESHOLD


def show_findings(result, verbose: bool = False) -> None:  # type: ignore[no-untyped-def]
    """``check`` and a refused ``consolidate``: the full view for small batches or --verbose, else compact."""
    if not compact(len(result.reports), verbose):
        print_findings(result)
        return
    from ..api import counts

    reports = result.reports
    action = sorted((r for r in reports if _needs_action(r)), key=_urgency)
    say(_counts_line(reports))
    if action:
        _action_table(action[:ACTION_ROWS])
        if len(action) > ACTION_ROWS:
            say(MORE, len(action) - ACTION_ROWS)
    _duplicate_lines(reports)
    _batch_lines(result.batch)
    total = counts(result.findings)
    say("共 {} 个文件：错误 {} 个，警告 {} 个，提示 {} 个。", len(reports), total["错误"], total["警告"], total["提示"])


def severities(report) -> set[str]:  # type: ignore[no-untyped-def]
    """Severities of a file's findings, the duplicate warning left out (it is summarised per unit)."""
    return {f.severity for f in report.findings if f.code != DUPLICATE}


def _needs_action(report) -> bool:  # type: ignore[no-untyped-def]
    return not report.readable or bool(severities(report) & {"错误", "警告"})


def _urgency(report) -> tuple[int, int, str]:  # type: ignore[no-untyped-def]
    """Errors (and unreadable files) first, then warnings; most findings first; then by name."""
    sev = severities(report)
    rank = 0 if ("错误" in sev or not report.readable) else 1
    return rank, -len(report.findings), report.provenance.name


def _counts_line(reports) -> str:  # type: ignore[no-untyped-def]
    """One line of counts: files, passed, with errors/warnings/hints, unreadable, duplicates."""
    tally = dict.fromkeys(("通过", "有错误", "有警告", "只有提示", "无法读取", "仅因重复报送需确认"), 0)
    units, dups = set(), 0
    for r in reports:
        dup = any(f.code == DUPLICATE for f in r.findings)
        if dup:
            units.add(r.unit_code)
            dups += 1
        tally[_kind(r, dup)] += 1
    parts = "，".join(f"{k} {v} 个" for k, v in tally.items() if v or k in ("通过", "有错误", "有警告"))
    tail = f"；{len(units)} 个单位重复报送，共 {dups} 份文件" if units else ""
    return f"共 {len(reports)} 个文件：{parts}{tail}。"


def _kind(report, dup: bool) -> str:  # type: ignore[no-untyped-def]
    """The one count a file adds to: the worst of its findings; the duplicate warning counted apart."""
    sev = severities(report)
    if not report.readable:
        return "无法读取"
    if "错误" in sev or "警告" in sev:
        return "有错误" if "错误" in sev else "有警告"
    if dup:
        return "仅因重复报送需确认"
    return "只有提示" if "提示" in sev else "通过"


def _action_table(shown) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table
    from rich.text import Text

    from ..api import counts

    table = Table(title="需要处理的文件", header_style="bold")
    for col in ("文件", "单位", "错误", "警告", "主要问题"):
        table.add_column(col, overflow="fold")
    for r in shown:
        c = counts(r.findings)
        first = next((f for f in r.findings if f.severity == "错误"), None) or next(
            (f for f in r.findings if f.severity == "警告" and f.code != DUPLICATE), None
        )
        unit = unit_label(r)
        table.add_row(
            Text(clean(r.provenance.name)),
            Text(clean(unit)),
            Text(str(c["错误"]), style="bold red" if c["错误"] else ""),
            str(c["警告"]),
            Text(clean(first.title if first else "")),
        )
    err.print(table)


def _duplicate_lines(reports) -> None:  # type: ignore[no-untyped-def]
    """One line per unit that sent several files: how many, and whether their contents are the same."""
    units: dict[str, list] = defaultdict(list)
    for r in reports:
        if any(f.code == DUPLICATE for f in r.findings):
            units[r.unit_code].append(r)
    for code, files in sorted(units.items()):
        distinct = len({r.provenance.sha256 or r.provenance.name for r in files})
        what = "相同的文件" if distinct == 1 else f"文件（{distinct}种不同内容）"
        say("重复报送：{} {}：{}份" + what + "。", code, files[0].unit_name, len(files))
    if units:
        say("同一单位有多份文件时，汇总采用填报日期（其次为文件时间）最新的一份；请确认最终版，删除其余文件。")


def _batch_lines(batch) -> None:  # type: ignore[no-untyped-def]
    """Findings about the whole batch (missing units, mixed years), at most ACTION_ROWS lines."""
    for f in batch[:ACTION_ROWS]:
        say("{}：{}", f.severity, f.message)
    if len(batch) > ACTION_ROWS:
        say("关于整批的问题另有 {} 条未列出；全部列出请加 --verbose，完整结果请用 --json。", len(batch) - ACTION_ROWS)
