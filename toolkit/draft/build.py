"""`build_document`: a checked `Report` (a return, a summary, later a row of the archive)
→ the published report as a `Document` model, which the Word and HTML writers render.

The tables are the format definition's sheets filled with the report's values — labels,
merges and column order are never typed here — and every figure in the prose is taken
from the same values, so the text and the tables cannot disagree.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import NianbaoError
from ..report import Report
from ..spec import Format, Sheet
from . import sentences as S
from .model import DATE, REF, WARNING, Document, Paragraph, Run, Table, TableCell

WORDING = Path(__file__).with_name("wording.toml")
MAX_LISTED_ERRORS = 10


@dataclass(frozen=True)
class DraftOptions:
    """What the office may set; everything else comes from the report."""

    name: str | None = None  # the body as named in the title and text (default: from the report)
    site: str | None = None  # where the electronic version is published (default: a placeholder)
    errors: tuple[str, ...] = ()  # 错误 of the source: a forced draft prints them on its first page


@cache
def wording(format_id: str) -> dict[str, Any]:
    """The prose of one format (wording.toml); a format without wording cannot be drafted."""
    try:
        data = tomllib.loads(WORDING.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise NianbaoError(f"无法读取年报文字模板 {WORDING.name}：{e}") from e
    if format_id not in data:
        raise NianbaoError(f"没有“{format_id}”格式的年报文字模板，无法生成年报文稿（可用：{'、'.join(data)}）。")
    return data[format_id]


def default_name(report: Report) -> str:
    """A summary is published in the area's name (锡林浩特市), a unit's report in its own."""
    name = report.unit_name.strip()
    if report.level != "填报单位":
        return name.removesuffix("人民政府") or name
    return name


_FIELD = re.compile(r"\{(\?[^}]*|\w+)\}")


def expand(template: str, fields: dict[str, list[Run]]) -> list[Run]:
    """'…{name}…{?邮政编码}…' → runs; {?…} is a placeholder, other fields come from ``fields``."""
    out: list[Run] = []
    pos = 0
    for m in _FIELD.finditer(template):
        if m.start() > pos:
            out.append(Run(template[pos : m.start()]))
        key = m.group(1)
        if key.startswith("?"):
            out.append(S.placeholder(key[1:]))
        elif key in fields:
            out.extend(fields[key])
        else:
            raise NianbaoError(f"年报文字模板 {WORDING.name} 中的“{{{key}}}”无法填写")
        pos = m.end()
    if pos < len(template):
        out.append(Run(template[pos:]))
    return out


# ---------------------------------------------------------------- tables


def value_text(report: Report, cid: str) -> str:
    """What the table cell shows: the value exactly (a blank cell of the source shows 0, see _notes)."""
    return S.number_text(report.value(cid))


def table_of(fmt: Format, sheet: Sheet, report: Report) -> Table:
    """The sheet's labels and cells, re-based to the table's own 1-based grid."""
    r0, c0 = sheet.first_row, sheet.first_col
    data_rows = {c.row for c in sheet.cells}
    first_data_col = {row: min(c.col for c in sheet.cells if c.row == row) for row in data_rows}
    cells = []
    for lb in sheet.labels:
        rows = range(lb.row, lb.row + lb.rowspan)
        is_rowhead = any(r in data_rows and lb.col < first_data_col[r] for r in rows)
        cells.append(
            TableCell(lb.row - r0 + 1, lb.col - c0 + 1, lb.rowspan, lb.colspan, lb.text, "rowhead" if is_rowhead else "header")
        )
    for c in sheet.cells:
        cells.append(TableCell(c.row - r0 + 1, c.col - c0 + 1, 1, c.colspan, value_text(report, c.id), "value", c.id))
    cells.sort(key=lambda x: (x.row, x.col))
    widths = sheet.col_widths or tuple(1.0 for _ in range(sheet.last_col - c0 + 1))
    return Table(
        sheet.id,
        sheet.title,
        sheet.last_row - r0 + 1,
        sheet.last_col - c0 + 1,
        sheet.header_rows,
        tuple(widths),
        sheet.landscape,
        tuple(cells),
    )


# ---------------------------------------------------------------- the document


def _is_government(report: Report, words: dict[str, Any]) -> bool:
    types = set(words.get("government_types", ()))
    return report.unit_type in types or report.level in types


def _part(ctx: S.Ctx, part: dict[str, Any], government: bool, style: str) -> list[Paragraph]:
    out = [Paragraph((Run(part["heading"]),), style)] if part.get("heading") else []
    if part.get("facts"):
        builder = S.BUILDERS.get(part["facts"])
        if builder is None:
            raise NianbaoError(f"年报文字模板 {WORDING.name} 中的事实类型“{part['facts']}”不存在")
        out.extend(builder(ctx))
    guidance = part.get("guidance_government") if government and part.get("guidance_government") else part.get("guidance")
    if guidance:
        out.append(Paragraph((S.placeholder(guidance),)))
    return out


def _warning(errors: tuple[str, ...]) -> list[Paragraph]:
    head = (
        "【警告：本稿依据的数据有错误尚未更正（按 --force 生成），表格和文字中的数字可能不正确，不得发布。"
        "请更正填报表、重新审核后再生成年报文稿。】"
    )
    out = [Paragraph((Run(head, WARNING),), "warning")]
    for msg in errors[:MAX_LISTED_ERRORS]:
        out.append(Paragraph((Run(f"【警告：{msg}】", WARNING),), "warning"))
    if len(errors) > MAX_LISTED_ERRORS:
        out.append(
            Paragraph(
                (Run(f"【警告：另有{len(errors) - MAX_LISTED_ERRORS}个错误，见 nianbao check 的结果。】", WARNING),), "warning"
            )
        )
    return out


def _check_inputs(report: Report, fmt: Format, previous: Report | None) -> None:
    if report.format_id != fmt.id:
        raise NianbaoError(f"数据的格式（{report.format_id or '未知'}）与所用格式定义（{fmt.id}）不一致。")
    if not report.year:
        raise NianbaoError("无法确定报告年度，不能生成年报文稿。")
    if previous is not None and previous.year != report.year - 1:
        raise NianbaoError(
            f"上年数据是{previous.year or '年度未知'}的，本报告是{report.year}年度，应提供{report.year - 1}年度的数据。"
        )


def _notes(report: Report, fmt: Format, previous: Report | None) -> list[str]:
    notes = []
    if report.level != "填报单位":
        where = "（见汇总表“明细”）" if "明细" in report.extra_sheets else ""  # none from the archive
        notes.append(f"本汇总包含{len(report.children)}个单位的数据{where}，文稿开头写明数据由汇总形成。")
    blank = [c for c in fmt.inputs if fmt.sheet(c.sheet_id).published and report.values.get(c.id) is None]
    if blank:
        notes.append(f"数据中有{len(blank)}个空白单元格（如{blank[0].where}），表格中按0填写。")
    if previous is not None:
        a, b = previous.unit_name.strip(), report.unit_name.strip()
        if a and b and a not in b and b not in a:
            notes.append(f"上年数据的单位是“{a}”，本报告是“{b}”，请确认用的是本单位的上年数据。")
        unknown = [c for c in fmt.inputs if c.id in previous.unknown]
        if unknown:
            notes.append(f"上年数据中有{len(unknown)}个单元格无法读出，这些项目不作同比。")
    return notes


def build_document(report: Report, fmt: Format, previous: Report | None = None, options: DraftOptions | None = None) -> Document:
    """The published report of ``report`` (a checked return or summary) in the order and with the
    headings of the format; ``previous`` (last year's figures, from any source) adds 同比."""
    _check_inputs(report, fmt, previous)
    options = options or DraftOptions()
    words = wording(fmt.id)
    year = int(report.year or 0)
    name = (options.name or "").strip() or default_name(report)
    subject, agencies = S.subject_of(name, report.unit_type, report.level, words["self"])
    ctx = S.Ctx(fmt, report, previous, year, subject, agencies, words)
    site = [Run(options.site.strip())] if options.site and options.site.strip() else [S.placeholder(words["site_placeholder"])]
    fields = {
        "name": [Run(name)] if name else [S.placeholder("单位名称")],
        "year": [Run(str(year), DATE, value=year)],
        "start": [Run(f"{year}年1月1日", DATE, value=year)],
        "end": [Run(f"{year}年12月31日", DATE, value=year)],
        "basis": [Run(fmt.basis, REF)],
        "basis_title": [Run(words["basis_title"])],
        "site": site,
    }
    title = expand(words["title"], fields)
    doc = Document(
        title="".join(r.text for r in title),
        unit_name=name,
        year=year,
        format_id=fmt.id,
        forced=bool(options.errors),
        notes=_notes(report, fmt, previous),
    )
    doc.blocks.append(Paragraph(tuple(title), "title"))
    if options.errors:
        doc.blocks.extend(_warning(options.errors))
    opening = [r for sentence in words["opening"] for r in expand(sentence, fields)]
    if report.level != "填报单位":
        opening += expand(words["summary_scope"], fields)
    doc.blocks.append(S.para(opening))
    government = _is_government(report, words)
    for section in words["sections"]:
        if "sheet" in section:
            sheet = fmt.sheet(section["sheet"])
            doc.blocks.append(Paragraph((Run(sheet.title),), "heading1"))
            doc.blocks.append(table_of(fmt, sheet, report))
            continue
        heading = fmt.sections[section["section"] - 1] if "section" in section else section.get("heading", "")
        doc.blocks.extend(_part(ctx, {**section, "heading": heading}, government, "heading1"))
        for part in section.get("parts", ()):
            doc.blocks.extend(_part(ctx, part, government, "heading2"))
    doc.blocks.extend(Paragraph(tuple(expand(line, fields)), "signoff") for line in words.get("signoff", ()))
    return doc
