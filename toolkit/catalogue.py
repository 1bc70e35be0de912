"""The catalogue of every finding code — rules of the format definition and the
reading/integrity checks — as text for `nianbao explain` and as the table of docs/rules.md.

    python -m toolkit.catalogue docs/rules.md    # rewrite the table in place
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .spec import checks, current_format

START, END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"

# What each placeholder of a message template stands for, so a template reads as a sentence.
PLACEHOLDERS = {
    "expected": "应为",
    "found": "实为",
    "delta": "差额",
    "cell": "单元格",
    "sheet": "工作表",
    "detail": "具体情况",
    "unit_code": "单位代码",
    "unit_name": "单位名称",
    "year": "年度",
    "prev_year": "上一年度",
    "count": "个数",
    "cells": "单元格",
    "quote": "原文句子",
    "left": "左边合计",
    "right": "右边合计",
    "left_yuan": "折合元数",
    "likely": "可能应填的数",
    "col_label": "列名",
    "row_label": "行名",
    "unit_type": "单位类型",
    "col": "列",
    "row": "行",
    "cell_id": "单元格编号",
}


# What each kind of finding lets the county reviewer do (spec.KINDS), as `explain` and README say it.
KIND_MEANING = {
    "强制性": "必须更正后重新报送；写说明也不能通过。",
    "核实性": "请核实；数字确实无误的，在封面“情况说明”中写明原因，县里审核后可以通过。",
}


def humanize(template: str) -> str:
    """'标签应为“{expected}”' → '标签应为“〈应为〉”': a message template as a user reads it."""
    return re.sub(r"\{(\w+)\}", lambda m: f"〈{PLACEHOLDERS.get(m.group(1), m.group(1))}〉", template)


@dataclass(frozen=True)
class Entry:
    code: str
    severity: str
    title: str
    meaning: str
    example: str
    fix: str
    group: str
    kind: str = "强制性"


def entries() -> list[Entry]:
    fmt = current_format()
    out = []
    for r in fmt.rules:
        meaning = f"{r.left} {r.operator} {r.right}"
        if r.unit_types:
            meaning += f"（适用于：{'、'.join(r.unit_types)}）"
        out.append(
            Entry(
                r.code,
                r.severity,
                r.title,
                humanize(f"{r.basis}。检查：{meaning}".lstrip("。")),
                r.example,
                humanize(r.instruction),
                "审核规则",
                r.kind,
            )
        )
    for ct in checks().values():
        group = "读取与完整性检查"
        out.append(Entry(ct.code, ct.severity, ct.title, humanize(ct.message), "", humanize(ct.instruction), group, ct.kind))
    return out


def find(code: str) -> Entry | None:
    code = code.strip()
    for e in entries():
        if e.code.lower() == code.lower():
            return e
    return None


def explain_text(e: Entry) -> str:
    lines = [
        f"{e.code}  {e.title}",
        f"严重程度：{e.severity}（{e.group}）",
        f"类别：{e.kind}——{KIND_MEANING.get(e.kind, '')}",
        f"含义：{e.meaning}",
    ]
    if e.example:
        lines.append(f"示例：{e.example}")
    lines.append(f"处理办法：{e.fix}")
    return "\n".join(lines)


def markdown() -> str:
    rows = ["| 代码 | 严重程度 | 类别 | 名称 | 含义 | 处理办法 |", "|---|---|---|---|---|---|"]
    for e in entries():
        cells = [f"`{e.code}`", e.severity, e.kind, e.title, e.meaning, e.fix]
        rows.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(rows)


def update_readme(path: Path) -> bool:
    """Rewrite the table between the markers of ``path`` (docs/rules.md); True when it changed."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{markdown()}\n{END}{tail}"
    changed = new != text
    if changed:
        path.write_text(new, encoding="utf-8")
    return changed


if __name__ == "__main__":  # pragma: no cover
    print("已更新" if update_readme(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/rules.md")) else "无变化")
