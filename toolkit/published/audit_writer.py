"""The audit workbook (审计.xlsx): 总览 (one row per report), 问题 (every finding, filterable),
跨年 (when the batch holds several years of a unit), 文字与表格 (figures in the prose that
contradict the tables) and 跳过 (when files were not read: each with why). Written with XlsxWriter in memory, then atomically.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

from .. import __version__
from ..fileio import atomic_write_bytes
from ..findings import fmt_num, sort_key
from ..report import Report
from ..spec import formats
from .audit import (
    AuditResult,
    continuity,
    continuity_rules,
    cross_year_codes,
    not_read,
    severity_counts,
    visible_cells,
    worst,
)

SUBJECT = "nianbao audit"  # marks the workbook as nianbao's own (outputs.regenerable)
MAX_CELL_CHARS = 32_000  # Excel's limit is 32,767 characters per cell


def _text(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    s = str(v)
    return s if len(s) <= MAX_CELL_CHARS else s[:MAX_CELL_CHARS] + "…"


def _format_name(rep: Report) -> str:
    fmt = formats().get(rep.format_id)
    if fmt is None or not rep.readable:
        return "—"
    return "2021年格式（30号文）" if fmt.status == "current" else f"{fmt.title}（旧格式）"


class _Book:
    def __init__(self) -> None:
        import xlsxwriter

        self.buf = io.BytesIO()
        self.wb = xlsxwriter.Workbook(
            self.buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
        )
        base = {"font_name": "宋体", "font_size": 11, "valign": "top"}
        self.head = self.wb.add_format({**base, "bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
        self.cell = self.wb.add_format({**base, "text_wrap": True})
        self.sev = {
            "错误": self.wb.add_format({**base, "bold": True, "font_color": "#9C0006", "bg_color": "#FFC7CE"}),
            "警告": self.wb.add_format({**base, "font_color": "#9C5700", "bg_color": "#FFEB9C"}),
            "提示": self.wb.add_format({**base, "font_color": "#1F4E78"}),
        }
        self.bad = self.wb.add_format({**base, "bold": True, "font_color": "#9C0006"})

    def table(self, name: str, columns: list[tuple[str, int]], rows: list[list[Any]], sev_col: int | None = None) -> Any:
        ws = self.wb.add_worksheet(name)
        for c, (title, width) in enumerate(columns):
            ws.set_column(c, c, width)
            ws.write_string(0, c, title, self.head)
        for r, row in enumerate(rows, start=1):
            for c, v in enumerate(row):
                style = self.sev.get(v, self.cell) if c == sev_col else self.cell
                v = _text(v)
                if isinstance(v, str):
                    ws.write_string(r, c, v, style)
                else:
                    ws.write_number(r, c, v, style)
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(1, len(rows)), len(columns) - 1)
        return ws

    def close(self) -> bytes:
        self.wb.close()
        return self.buf.getvalue()


def _overview(book: _Book, result: AuditResult) -> None:
    rows = []
    for r in result.reports:
        read, unknown = visible_cells(r)
        c = severity_counts(r)
        w = worst(r)
        rows.append(
            [
                r.provenance.name,
                r.unit_name or "（未识别）",
                r.unit_type or "",
                r.year if r.year else "",
                _format_name(r),
                "是" if r.readable else "否",
                read,
                unknown,
                c["错误"],
                c["警告"],
                c["提示"],
                w.severity if w else "",
                f"{w.title}：{w.message}" if w else "未发现问题",
            ]
        )
    cols = [
        ("文件", 36),
        ("单位", 28),
        ("层级", 10),
        ("年度", 7),
        ("格式", 22),
        ("读出表格", 8),
        ("读出单元格", 10),
        ("未知单元格", 10),
        ("错误", 6),
        ("警告", 6),
        ("提示", 6),
        ("最严重级别", 8),
        ("最严重的问题", 80),
    ]
    ws = book.table("总览", cols, rows, sev_col=11)
    total = {k: sum(severity_counts(r)[k] for r in result.reports) for k in ("错误", "警告", "提示")}
    note = (
        f"共 {len(result.reports)} 份年报：错误 {total['错误']} 个，警告 {total['警告']} 个，提示 {total['提示']} 个。"
        f"由 nianbao {__version__} 于 {dt.datetime.now().astimezone().isoformat(timespec='seconds')} 生成。"
    )
    skipped = not_read(result)
    if skipped:
        note += f"另有 {len(skipped)} 个文件没有审计，每个文件及原因见“跳过”表。"
    ws.write_string(len(rows) + 2, 0, note)


def _skipped(book: _Book, result: AuditResult) -> None:
    """Every file the audit did not read, and why: a .docx beside the PDFs is never silently passed over."""
    rows = [[s.name, s.reason] for s in not_read(result)]
    if rows:
        book.table("跳过", [("文件", 40), ("没有审计的原因", 100)], rows)


def _problems(book: _Book, result: AuditResult) -> None:
    rows = []
    by_file = {r.provenance.name: r for r in result.reports}
    for f in sorted(result.findings, key=lambda f: (f.file, *sort_key(f))):
        rep = by_file.get(f.file)
        rows.append(
            [
                f.file or "（整批）",
                f.unit_name or (rep.unit_name if rep else ""),
                (rep.year or "") if rep else "",
                f.severity,
                f.code,
                f.title,
                f.locate() or "整个文件",
                f.message,
                f.instruction,
                fmt_num(f.found) if f.found is not None else "",
                fmt_num(f.expected) if f.expected is not None else "",
            ]
        )
    cols = [
        ("文件", 30),
        ("单位", 24),
        ("年度", 7),
        ("级别", 6),
        ("代码", 18),
        ("问题", 22),
        ("位置", 30),
        ("说明", 70),
        ("处理建议", 50),
        ("原文值", 10),
        ("应为", 10),
    ]
    book.table("问题", cols, rows, sev_col=3)


def _cross_year(book: _Book, result: AuditResult) -> None:
    rows = []
    for r in sorted(result.pairs(), key=lambda r: (r.unit_name, r.year or 0)):
        prev = r.previous
        assert prev is not None
        pair = [r.unit_name, prev.year, r.year, prev.provenance.name, r.provenance.name]
        for c in continuity(r):
            rows.append([*pair, c.item, c.previous, c.current, c.expected, c.verdict])
        fmt = formats().get(r.format_id)
        others = cross_year_codes(fmt) - {rule.code for rule in continuity_rules(fmt)} if fmt else frozenset()
        for f in r.findings:
            if f.code in others:  # the jumps year on year: findings only
                rows.append([*pair, f"{f.title}：{f.locate()}", "", "", "", f.message])
    cols = [
        ("单位", 26),
        ("上年度", 8),
        ("本年度", 8),
        ("上年文件", 30),
        ("本年文件", 30),
        ("核对项目", 44),
        ("上年数", 10),
        ("本年数", 10),
        ("应为", 10),
        ("结果", 40),
    ]
    ws = book.table("跨年", cols, rows)
    for i, row in enumerate(rows, start=1):
        if row[-1] == "不一致":
            ws.write_string(i, len(cols) - 1, "不一致", book.bad)


def _narrative(book: _Book, result: AuditResult) -> None:
    rows = []
    for r in result.reports:
        fmt = formats().get(r.format_id)
        for f in r.findings:
            if f.code != "narrative-mismatch":
                continue
            cell = fmt.cells.get(f.cell_id) if fmt else None
            where = f"{cell.sheet_name} {cell.row_label} × {cell.col_label}" if cell else f.cell_id
            rows.append([r.provenance.name, r.unit_name, r.year or "", where, f.found, f.expected, f.message])
    cols = [
        ("文件", 30),
        ("单位", 24),
        ("年度", 7),
        ("表格单元格", 40),
        ("正文数字", 10),
        ("表格数字", 10),
        ("说明（含原句）", 90),
    ]
    ws = book.table("文字与表格", cols, rows)
    if not rows:
        ws.write_string(2, 0, "没有发现正文数字与表格不一致的年报。")


def audit_workbook(result: AuditResult) -> bytes:
    """The workbook as bytes."""
    book = _Book()
    book.wb.set_properties(
        {"title": "政府信息公开工作年度报告审计", "subject": SUBJECT, "author": "nianbao", "comments": __version__}
    )
    _overview(book, result)
    _problems(book, result)
    if result.pairs():
        _cross_year(book, result)
    _narrative(book, result)
    _skipped(book, result)
    return book.close()


def write_audit(result: AuditResult, path: Path) -> Path:
    """Write the workbook atomically (the old file, or the complete new one)."""
    path = Path(path)
    atomic_write_bytes(path, audit_workbook(result))
    return path


def is_audit_workbook(path: Path) -> bool:
    """A workbook this module wrote (its core properties carry SUBJECT)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            core = zf.read("docProps/core.xml")[:20_000].decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile, ValueError):
        return False
    return f"<dc:subject>{SUBJECT}</dc:subject>" in core
