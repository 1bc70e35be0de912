"""Render report text the way government websites publish it, for import tests:
the seed's flattened shape (one cell per line, '|' after each cell) and HTML tables with
rowspan/colspan. Labels and layout come from the format definition; the surrounding
prose imitates the seed report (shared/seeds/)."""

from __future__ import annotations

import html

from toolkit.spec import Format

INTRO = (
    "{unit}严格按照市政府统一安排部署，认真贯彻各项要求，扎实推进政府信息公开工作。现将{year}年政府信息公开工作情况报告如下：\n"
)
BODY = (
    "一、总体情况\n（一）主动公开信息情况\n全年通过公示栏、微信公众平台发布政务信息187条。\n"
    "（二）依申请公开情况\n{year}年我单位收到和处理政府信息公开申请{received}件。\n"
)
TAIL = (
    "五、存在的主要问题及改进情况\n一是公开内容比较简单。二是信息质量有待提高。\n"
    "六、其他需要报告的事项\n本年度未收取政府信息公开信息处理费，无其他说明事项。\n"
)
SECTION = {
    "t2": "二、主动公开政府信息情况",
    "t3": "三、收到和处理政府信息公开申请情况",
    "t4": "四、政府信息公开行政复议、行政诉讼情况",
}


def _num(v) -> str:
    if v is None:
        return ""
    return str(int(v)) if float(v).is_integer() else str(v)


def flat_text(fmt: Format, values: dict, unit: str = "宝力根苏木", year: int = 2023, received: int | None = None) -> str:
    """The seed's shape: each cell on its own line followed by ' |'."""
    rec = values.get("t3.r1.tot", 0) if received is None else received
    out = [INTRO.format(unit=unit, year=year), BODY.format(year=year, received=rec)]
    for sheet in fmt.sheets:
        if not sheet.published:
            continue
        out.append(SECTION[sheet.id] + "\n")
        out.append(f"（数据核定时间点为{year}年1月1日—{year}年12月31日）\n")
        items: list[tuple[int, int, str]] = [(lb.row, lb.col, lb.text + " |") for lb in sheet.labels]
        items += [(c.row, c.col, _num(values.get(c.id, 0)) + " |") for c in sheet.cells]
        prev_row = None
        for row, _col, text in sorted(items):
            if prev_row is not None and row != prev_row:
                out.append("||\n")
            out.append(text + "\n")
            prev_row = row
    out.append(TAIL)
    return "".join(out)


def html_page(fmt: Format, values: dict, unit: str = "宝力根苏木", year: int = 2023) -> str:
    """A web page with real <table> markup, rowspan and colspan as in published HTML copies."""
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{unit}{year}年政府信息公开工作年度报告</title></head><body>",
        f"<h1>{unit}{year}年政府信息公开工作年度报告</h1>",
    ]
    parts += [
        f"<p>{html.escape(line)}</p>"
        for line in (INTRO + BODY).format(unit=unit, year=year, received=values.get("t3.r1.tot", 0)).splitlines()
        if line
    ]
    for sheet in fmt.sheets:
        if not sheet.published:
            continue
        parts.append(f"<p><strong>{SECTION[sheet.id]}</strong></p><table border='1'>")
        cells: dict[int, list[tuple[int, str]]] = {}
        for lb in sheet.labels:
            attrs = (f" rowspan='{lb.rowspan}'" if lb.rowspan > 1 else "") + (
                f" colspan='{lb.colspan}'" if lb.colspan > 1 else ""
            )
            cells.setdefault(lb.row, []).append((lb.col, f"<td{attrs}>{html.escape(lb.text)}</td>"))
        for c in sheet.cells:
            attrs = f" colspan='{c.colspan}'" if c.colspan > 1 else ""
            cells.setdefault(c.row, []).append((c.col, f"<td{attrs}>{_num(values.get(c.id, 0))}</td>"))
        for row in sorted(cells):
            parts.append("<tr>" + "".join(t for _, t in sorted(cells[row])) + "</tr>")
        parts.append("</table>")
    parts += [f"<p>{html.escape(line)}</p>" for line in TAIL.splitlines()]
    parts.append("</body></html>")
    return "\n".join(parts)
