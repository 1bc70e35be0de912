"""The county summary workbook: the official tables with the sums (same writer as the
templates, so it is itself a valid return one level up), plus 汇总说明, 报送情况,
明细 (one row per unit, one column per cell id), 图表 and 问题清单; and the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

from xlsxwriter.utility import xl_rowcol_to_cell
from xlsxwriter.workbook import Workbook

from . import __version__
from .consolidate import FILE_ONLY, SCOPE_SELECTION, SUBMITTED, Summary, totals_json
from .fileio import atomic_write_text
from .findings import few_names, fmt_num, sort_key
from .report import nonzero_totals
from .roster import Unit
from .spec import Cell, conventions
from .template import ReturnContent, Styles, add_return_sheets, findings_sheet, finish, new_workbook
from .xlsx_rows import RowWriter


def _layout() -> tuple[str, int, str, tuple[tuple[str, str], ...]]:
    """(明细 sheet name, 0-based id row, total label, fixed columns) from templates/workbook.toml."""
    conv = conventions()
    return conv.detail_sheet, conv.detail_id_row - 1, conv.detail_total_label, conv.detail_fixed


def detail_heading(cell: Cell) -> str:
    """A cell's column heading in 明细 (row 1; its id is in the id row): also the exports' wide form."""
    return f"{cell.sheet_name} {cell.row_label} {cell.col_label}".strip()


def _explain_sheet(summary: Summary, created: str):
    def add(wb: Workbook, st: Styles) -> None:
        ws = wb.add_worksheet(conventions().summary_names["explain"])
        ws.set_column(0, 0, 22)
        ws.set_column(1, 1, 90)
        rep, fmt = summary.report, summary.fmt
        bold = wb.add_format({"font_name": "宋体", "bold": True, "font_size": 14})
        warn = wb.add_format(
            {
                "font_name": "宋体",
                "bold": True,
                "font_color": "#9C0006",
                "bg_color": "#FFC7CE",
                "text_wrap": True,
                "valign": "top",
                "border": 1,
            }
        )
        ws.merge_range(0, 0, 0, 1, f"{rep.unit_name} {rep.year}年度政府信息公开工作年度报告 汇总说明", bold)
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)
        ws.hide_gridlines(2)
        tally = summary.tally()
        rows: list[tuple[str, str]] = [
            ("汇总单位", f"{rep.unit_name}（{rep.unit_code}），{rep.level}"),
            ("汇总范围", summary.scope.note() or "全部单位"),
            ("报告年度", str(rep.year)),
            ("汇总时间", created),
            ("汇总工具", f"nianbao {__version__}"),
            ("表格格式", f"{fmt.title}（{fmt.id} {fmt.version}）"),
            ("规则版本", f"{fmt.source} sha256:{fmt.digest[:16]}"),
            ("应报单位", f"{tally['应报']}个"),
            ("已报送", f"{tally['已报送']}个（" + "，".join(f"{st_}{tally[st_]}个" for st_ in SUBMITTED if tally[st_]) + "）"),
            ("未报送", f"{tally['未报送']}个"),
            ("纳入汇总", f"{tally['纳入汇总']}个"),
        ]
        rows += [(st_, f"{tally[st_]}个") for st_ in FILE_ONLY if tally[st_]]
        rows += [(f"说明：{unit}", text) for unit, text in summary.notes]
        r = 2
        if summary.scope.note() and summary.scope.kind == SCOPE_SELECTION:
            ws.merge_range(r, 0, r, 1, f"注意：本表为{summary.scope.note()}。", warn)
            ws.set_row(r, 48)
            r += 2
        if summary.forced:
            bad = [
                f"{s.name}（{s.report.provenance.name}）"
                for s in summary.included
                if any(f.severity == "错误" for f in s.report.findings)
            ]  # type: ignore[union-attr]
            ws.merge_range(
                r, 0, r, 1, "注意：以下填报表有错误，按 --force 强制纳入汇总，汇总数据可能不准确：" + "、".join(bad), warn
            )
            ws.set_row(r, 48)
            r += 2
        for label, text in rows:
            ws.write_string(r, 0, label, st.label_left)
            ws.write_string(r, 1, text, st.note)
            ws.set_row(r, max(18, 15 * (1 + len(text) // 45)))
            r += 1
        ws.protect("", {"select_locked_cells": True})
        ws.activate()
        ws.set_first_sheet()

    return add


def _status_sheet(summary: Summary):
    def add(wb: Workbook, st: Styles) -> None:
        wb.constant_memory = True  # one row per unit (10,000 in a province): rows stream to disk, strings inline
        try:
            ws = wb.add_worksheet(conventions().summary_names["status"])
        finally:
            wb.constant_memory = False
        head = [
            "序号",
            "单位代码",
            "单位名称",
            "单位类型",
            "报送状态",
            "文件",
            "填报人",
            "联系电话",
            "填报日期",
            "错误",
            "警告",
            "未采用的重复文件",
            "情况说明",
        ]
        widths = [6, 12, 30, 10, 10, 62, 10, 16, 12, 6, 6, 40, 60]
        colors = {
            "未报送": "#FFC7CE",
            "有错误": "#FFC7CE",
            "重复": "#FFEB9C",
            "有警告": "#FFEB9C",
            "不在名册": "#FFEB9C",
            "无法读取": "#FFC7CE",
            "空表": "#DDEBF7",
            "通过": "#C6EFCE",
        }
        fills = {k: wb.add_format({"font_name": "宋体", "bg_color": v, "border": 1}) for k, v in colors.items()}
        plain = wb.add_format({"font_name": "宋体", "font_size": 10, "border": 1, "valign": "vcenter"})
        top = 0
        if summary.scope.kind == SCOPE_SELECTION:  # a selection must not pass for the whole unit
            warn = wb.add_format({"font_name": "宋体", "bold": True, "font_color": "#9C0006", "bg_color": "#FFC7CE"})
            ws.merge_range(0, 0, 0, len(head) - 1, f"注意：本表为{summary.scope.note()}。", warn)
            top = 1
        for i, (h, w) in enumerate(zip(head, widths, strict=True)):
            ws.set_column(i, i, w)
            ws.write_string(top, i, h, st.label)
        rows = RowWriter(ws)
        for n, s in enumerate(summary.statuses, start=1):
            row = s.row()
            values = [
                n,
                row["unit_code"],
                row["unit_name"],
                row["unit_type"],
                row["status"],
                row["file"],
                row["filler"],
                row["phone"],
                row["date"],
                row["errors"],
                row["warnings"],
                few_names(row["duplicates"]),
                str(s.report.cover.get("note") or "") if s.report is not None else "",  # the clerk's 情况说明, for the reviewer
            ]  # counts as numbers (they sort and sum), empty cells blank but bordered
            status_fill = fills.get(s.status, plain)
            rows.write_row(top + n, [(i, v, status_fill if i == 4 else plain) for i, v in enumerate(values)])
        ws.autofilter(top, 0, top + max(len(summary.statuses), 1), len(head) - 1)
        ws.freeze_panes(top + 1, 3)
        ws.protect("", {"autofilter": True, "sort": True, "select_locked_cells": True})
        ws.set_landscape()
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)
        ws.repeat_rows(top)

    return add


def _detail_sheet(summary: Summary):
    def add(wb: Workbook, st: Styles) -> None:
        fmt = summary.fmt
        DETAIL_SHEET, ID_ROW, TOTAL_LABEL, DETAIL_FIXED = _layout()  # noqa: N806
        # 明细 can hold 10,000 units × 200 cells: only this sheet streams its rows to disk
        # (XlsxWriter's constant_memory is a per-worksheet state set when the sheet is added).
        wb.constant_memory = True
        try:
            ws = wb.add_worksheet(DETAIL_SHEET)
        finally:
            wb.constant_memory = False
        cells = list(fmt.cells.values())
        small = wb.add_format({"font_name": "宋体", "font_size": 8, "font_color": "#808080"})
        num = wb.add_format({"font_name": "宋体"})  # General: 3 and 2.5 (Excel shows "0.##" as "3.")
        bold = wb.add_format({"font_name": "宋体", "bold": True, "top": 1})
        # constant_memory: every row must be complete before the next one is started
        ws.set_row(0, 90)
        base = len(DETAIL_FIXED)
        for i, (_, label) in enumerate(DETAIL_FIXED):
            ws.write_string(0, i, label, st.label)
        for j, c in enumerate(cells):
            ws.write_string(0, base + j, detail_heading(c), st.label)
        for i, (key, _) in enumerate(DETAIL_FIXED):
            ws.write_string(ID_ROW, i, key, small)
        for j, c in enumerate(cells):
            ws.write_string(ID_ROW, base + j, c.id, small)
        ws.set_column(0, 0, 12)
        ws.set_column(1, 1, 26)
        ws.set_column(2, 3, 9)
        ws.set_column(base, base + len(cells) - 1, 10)
        first = ID_ROW + 1
        children = summary.report.children
        column = {c.id: base + j for j, c in enumerate(cells)}
        rows = RowWriter(ws)
        for n, child in enumerate(children):
            vals = child["values"] | nonzero_totals(fmt, child["values"])
            figures = sorted((column[cid], v) for cid, v in vals.items() if v and cid in column)
            rows.write_row(  # blank means 0: non-zero figures stand out, and 10,000 rows stay fast
                first + n,
                [(i, str(child[key]), st.note) for i, (key, _) in enumerate(DETAIL_FIXED)]
                + [(col, v, num) for col, v in figures],
            )
        last = first + len(children)
        ws.write_string(last, 0, TOTAL_LABEL, bold)
        ws.write_string(last, 1, "（明细中空白即为0）", small)
        for j, c in enumerate(cells):
            col = base + j
            rng = f"{xl_rowcol_to_cell(first, col)}:{xl_rowcol_to_cell(max(last - 1, first), col)}"
            ws.write_formula(last, col, f"=SUM({rng})" if children else "=0", bold, summary.report.values.get(c.id) or 0)
        ws.autofilter(0, 0, last - 1 if children else 1, base + len(cells) - 1)
        ws.freeze_panes(ID_ROW + 1, 2)
        ws.set_landscape()
        ws.set_paper(9)
        ws.set_print_scale(70)  # a screen sheet; printed legibly across pages, names and headers repeated
        ws.repeat_rows(0, ID_ROW)
        ws.repeat_columns(0, 1)
        ws.protect("", {"autofilter": True, "sort": True, "select_locked_cells": True})

    return add


def _charts_sheet(summary: Summary):
    def add(wb: Workbook, st: Styles) -> None:
        fmt = summary.fmt
        DETAIL_SHEET, ID_ROW, _, DETAIL_FIXED = _layout()  # noqa: N806
        charts_sheet = conventions().summary_names["charts"]
        ws = wb.add_worksheet(charts_sheet)
        n = len(summary.report.children)
        cells = list(fmt.cells)
        base = len(DETAIL_FIXED)
        first, last = ID_ROW + 1, ID_ROW + n
        row = 0
        table_row = 0
        data_col = 13  # the charts are 720 px (about 11 default columns) wide: the data goes beside them
        ws.set_column(data_col, data_col, 16)
        ws.set_column(data_col + 1, data_col + 1, 10)
        for chart_def in fmt.charts:
            if chart_def.by_unit:
                if n == 0:
                    continue
                chart = wb.add_chart({"type": chart_def.type})
                for cid, name in zip(chart_def.by_unit, chart_def.series_names, strict=True):
                    col = base + cells.index(cid)
                    chart.add_series(
                        {
                            "name": name,
                            "categories": [DETAIL_SHEET, first, 1, last, 1],
                            "values": [DETAIL_SHEET, first, col, last, col],
                        }
                    )
                chart.set_x_axis({"num_font": {"rotation": -45, "name": "宋体"}})
            else:
                chart = wb.add_chart({"type": "pie"})
                ws.write_string(table_row, data_col, f"图表数据：{chart_def.title}", st.note_bold)
                start = table_row + 1
                for k, (ids, label) in enumerate(zip(chart_def.groups, chart_def.labels, strict=True)):
                    ws.write_string(start + k, data_col, label, st.note)
                    ws.write_number(start + k, data_col + 1, sum(summary.report.value(i) for i in ids), st.note)
                end = start + len(chart_def.groups) - 1
                chart.add_series(
                    {
                        "name": chart_def.title,
                        "categories": [charts_sheet, start, data_col, end, data_col],
                        "values": [charts_sheet, start, data_col + 1, end, data_col + 1],
                        "data_labels": {"value": True},
                    }
                )
                table_row = end + 2
            chart.set_title({"name": chart_def.title, "name_font": {"name": "宋体", "size": 12}})
            chart.set_legend({"position": "bottom", "font": {"name": "宋体"}})
            chart.set_size({"width": 720, "height": 340})
            ws.insert_chart(row, 0, chart)
            row += 18
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)
        ws.print_area(0, 0, max(row, table_row, 1), 11)  # the charts; their data beside them is not printed
        ws.protect("", {"select_locked_cells": True, "objects": True})

    return add


def write_summary(path: Path, summary: Summary, created: str) -> str:
    """Write the summary workbook atomically; returns its sha256 (recorded in the manifest)."""
    rep = summary.report
    unit = Unit(rep.unit_code, rep.unit_name, rep.unit_type)
    content = ReturnContent(
        unit=unit,
        year=rep.year or 0,
        values={c.id: rep.values[c.id] for c in summary.fmt.inputs},
        cover=dict(rep.cover),
        level=rep.level,
        locked_inputs=True,
        props={"scope": summary.scope.kind, "scope_note": summary.scope.note()[:250]},
    )
    buf = io.BytesIO()
    wb = new_workbook(buf)
    st = add_return_sheets(wb, summary.fmt, content, conventions().summary_sheets, after_cover=[_explain_sheet(summary, created)])
    findings = sorted((f for f in summary.findings if not f.county_only), key=sort_key)  # notes for the county stay out
    for add in (_status_sheet(summary), _detail_sheet(summary), _charts_sheet(summary), findings_sheet(findings)):
        add(wb, st)
    finish(wb, buf, Path(path))
    return hashlib.sha256(buf.getvalue()).hexdigest()


def write_with_manifest(path: Path, summary: Summary, created: str, options: dict[str, Any]) -> Path:
    """The summary, then its manifest naming the summary's sha256: a crash between the two leaves a
    manifest that visibly belongs to another file (``manifest_matches``), never a wrong pair."""
    digest = write_summary(path, summary, created)
    man = Path(path).with_name(Path(path).stem + ".manifest.json")
    write_manifest(man, manifest(summary, created, options) | {"summary_file": Path(path).name, "summary_sha256": digest})
    return man


def manifest_matches(summary_path: Path, manifest_path: Path) -> bool:
    """True when the manifest was written for exactly this summary file."""
    try:
        text = Path(manifest_path).read_text(encoding="utf-8")
        named = _SUMMARY_SHA256.findall(text[-4096:])  # written last (write_with_manifest)
        if len(named) == 1 and text.count('"summary_sha256"') == 1:
            claimed = named[0]  # what the full parse would find, without parsing 10,000 inputs
        else:
            claimed = json.loads(text).get("summary_sha256")
        return claimed == hashlib.sha256(Path(summary_path).read_bytes()).hexdigest()
    except (OSError, ValueError, AttributeError):
        return False


# The member naming the summary's digest, as manifest_text writes it (the key appears once: inside a
# JSON string a quote is escaped, so '"summary_sha256"' is always a key).
_SUMMARY_SHA256 = re.compile(r'\n  "summary_sha256": "([0-9a-f]{64})"\n\}\n\Z')


def manifest(summary: Summary, created: str, options: dict[str, Any]) -> dict[str, Any]:
    """What went in and what came out: enough to prove the summary later."""
    used = {id(s.report) for s in summary.included}
    status_of = {id(s.report): s.status for s in summary.statuses if s.report is not None}
    status_of |= {id(r): "不在本次汇总范围" for r in summary.outside}
    for s in summary.statuses:
        for d in s.duplicates:
            status_of[id(d)] = "重复（未采用）"
    inputs = sorted(
        (
            {
                "path": r.provenance.path,
                "name": r.provenance.name,
                "sha256": r.provenance.sha256,
                "unit_code": r.unit_code,
                "unit_name": r.unit_name,
                "status": status_of.get(id(r), "无法读取"),
                "used": id(r) in used,
            }
            for r in summary.inputs
        ),
        key=lambda x: (x["name"], x["sha256"]),
    )
    data = totals_json(summary)
    return {
        "tool": "nianbao",
        "tool_version": __version__,
        "created": created,
        "format_id": summary.fmt.id,
        "format_version": summary.fmt.version,
        "rules_version": f"{summary.fmt.source} sha256:{summary.fmt.digest}",
        "scope": data["scope"],
        "scope_note": data["scope_note"],
        "options": options,
        "inputs": inputs,
        "counts": data["counts"],
        "totals": data["totals"],
        "units": data["units"],
        "forced": summary.forced,
    }


def write_manifest(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, manifest_text(data))


def manifest_text(data: dict[str, Any]) -> str:
    """The manifest as JSON, indented, with one line per input and per unit. ``indent=2`` on the
    whole would put 10,000 inputs through Python's own encoder (half a second); each line here is
    written by the C encoder, and the file still reads and diffs line by line."""

    def dump(value: Any, indent: int | None = None) -> str:
        return json.dumps(value, ensure_ascii=False, default=fmt_num, indent=indent)

    members = []
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            text = "[\n" + ",\n".join("    " + dump(v) for v in value) + "\n  ]"
        else:
            text = dump(value, 2).replace("\n", "\n  ")
        members.append(f"  {dump(key)}: {text}")
    return "{\n" + ",\n".join(members) + "\n}\n"
