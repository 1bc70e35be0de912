"""`nianbao explain`: the catalogue of rules and checks, for people."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app, fail, out


@app.command("explain", rich_help_panel="帮助")
def explain_cmd(
    code: Annotated[str | None, typer.Argument(help="规则或检查代码，例如 O1、I10、formula-overwritten。")] = None,
) -> None:
    """解释一个审核规则或检查：严重程度、类别（强制性/核实性）、含义、示例和处理办法。不带代码时列出全部。

    强制性：必须更正后重新报送；核实性：数字确实无误的，写明说明后县里可以通过。

    示例：

      nianbao explain O1

      nianbao explain formula-overwritten
    """
    from rich.table import Table

    from ..api import KIND_MEANING, catalogue_entries, explain_text, find_check

    if code is None:
        table = Table(title="审核规则与检查目录", header_style="bold")
        for col in ("代码", "严重程度", "类别", "名称"):
            table.add_column(col)
        for e in catalogue_entries():
            table.add_row(e.code, e.severity, e.kind, e.title)
        out.print(table)
        out.print("\n".join(f"{k}：{v}" for k, v in KIND_MEANING.items()), highlight=False)
        return
    entry = find_check(code)
    if entry is None:
        raise fail(f"没有代码为“{code}”的规则或检查。用 nianbao explain 查看全部代码。")
    out.print(explain_text(entry), highlight=False)
