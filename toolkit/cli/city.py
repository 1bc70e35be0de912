"""Commands of one archive for a city or a province (issue 31): reviewers' keys per level (keys add,
list, revoke) and approval up the tree (county submit, approve, return, status, history, summary).
Thin: parse, call toolkit.archive (tree.py), render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import EXIT_OK, EXIT_PROBLEMS, PLANNED, app, clean, err, fail, say
from .archive import STYLE, DbOption, JsonOption, YearOption, _open

PANEL = "档案库：逐级审核（市、省）"
keys_app = typer.Typer(
    help="审核密钥：市（盟）为每个县（旗、区）的审核人生成一把，只能查看和审核该县及其下级单位；密钥只显示一次。",
    no_args_is_help=True,
)
county_app = typer.Typer(
    help="逐级上报：县（旗、区）的单位全部通过后，把本县汇总上报给市（盟）；市里通过或退回（写明原因）。",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys", rich_help_panel=PANEL)
app.add_typer(county_app, name="county", rich_help_panel=PANEL)
CodeArgument = Annotated[str, typer.Argument(help="县（旗、区）或市的单位代码或名称。")]


def _when(at: str) -> str:
    return at[:16].replace("T", " ") if at else ""


# ---------------------------------------------------------------- keys


@keys_app.command("add")
def keys_add_cmd(
    under: Annotated[str, typer.Option("--under", help="密钥可以查看和审核的单位（及其全部下级），单位代码或名称。")],
    label: Annotated[str, typer.Option("--label", help="持有人，例如“阿巴嘎旗政务公开办 张三”（便于日后辨认和撤销）。")] = "",
    year: Annotated[int | None, typer.Option("--year", "-y", help="按哪一年度的名册（默认最新年度）。")] = None,
    db: DbOption = None,
) -> None:
    """生成一把审核密钥：持有人在网页上用它登录，只能看到和审核 --under 单位及其下级单位。密钥只显示这一次，
    档案库中只保存其校验值；丢失时撤销后重新生成。

    示例：

      nianbao keys add --under 152522 --label "阿巴嘎旗政务公开办"
    """
    with _open(db) as archive:
        key_id, key = archive.add_key(under, label, year)
        info = next(k for k in archive.keys() if k.id == key_id)
    say("已为{}（{}）生成审核密钥（编号 {}）。密钥只显示这一次，请妥善转交持有人：", info.name, info.code, key_id)
    print(key)


@keys_app.command("list")
def keys_list_cmd(db: DbOption = None, as_json: JsonOption = False) -> None:
    """列出全部审核密钥：编号、单位、持有人、生成时间、最近使用时间、是否已撤销（不显示密钥本身）。"""
    from rich.table import Table
    from rich.text import Text

    with _open(db) as archive:
        keys = archive.keys()
    table = Table(title="审核密钥", header_style="bold")
    for col in ("编号", "单位代码", "单位名称", "持有人", "生成时间", "最近使用", "状态"):
        table.add_column(col, overflow="fold")
    for k in keys:
        state = Text(f"已撤销（{_when(k.revoked_at)}）", style="dim") if k.revoked_at else Text("有效", style="green")
        table.add_row(str(k.id), k.code, Text(clean(k.name)), Text(clean(k.label)), _when(k.created_at), _when(k.used_at), state)
    err.print(table)
    say("共 {} 把密钥，有效 {} 把。", len(keys), sum(1 for k in keys if not k.revoked_at))
    if as_json:
        from ..api import dumps

        print(dumps({"schema": "nianbao.keys", "schema_version": 1, "keys": [k.row() for k in keys]}))


@keys_app.command("revoke", no_args_is_help=True)
def keys_revoke_cmd(
    key_id: Annotated[int, typer.Argument(help="密钥编号（nianbao keys list 中的“编号”）。")], db: DbOption = None
) -> None:
    """撤销一把审核密钥：立即失效（所有服务器进程）。"""
    with _open(db) as archive:
        k = archive.revoke_key(key_id)
    say("审核密钥 {}（{} {}）已撤销，时间 {}。", k.id, k.name, k.code, _when(k.revoked_at))


# ---------------------------------------------------------------- county


def _excluded(items: list[str] | None) -> dict[str, str]:
    """--exclude 代码:说明 (either colon) → {code: 说明}; a missing 说明 is refused by the archive."""
    out = {}
    for item in items or []:
        code, _, why = item.replace("：", ":").partition(":")
        out[code.strip()] = why.strip()
    return out


def _line(s) -> None:  # type: ignore[no-untyped-def]
    extra = f"，退回原因：{s.reason}" if s.status == "退回" and s.reason else ""
    say("{}（{}）{}年度：{}（第{}次上报）{}。", s.name, s.code, s.year, s.status, s.version, extra)


@county_app.command("submit", no_args_is_help=True)
def county_submit_cmd(
    code: CodeArgument,
    year: YearOption,
    note: Annotated[str, typer.Option("--note", "-n", help="上报说明（可选）。")] = "",
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="不纳入汇总的单位及说明，写成 代码:说明，例如 152502003:该街道已撤并；可写多次。"),
    ] = None,
    db: DbOption = None,
) -> None:
    """上报：把本县（旗、区）的汇总（全部已通过单位之和）上报给上级，存为本县的一个版本。只有全部单位都已通过
    （或写明说明不纳入）时才能上报；上报后本县各单位的审核结果锁定，直到上级退回。

    示例：

      nianbao county submit 152502 --year 2025 --note "全部单位已审核"
    """
    with _open(db) as archive:
        s = archive.submit_summary(code, year, note, _excluded(exclude))
    _line(s)
    for unit, why in s.excluded.items():
        say("未纳入：{}（{}）", unit, why)


@county_app.command("approve", no_args_is_help=True)
def county_approve_cmd(
    code: CodeArgument,
    year: YearOption,
    note: Annotated[str, typer.Option("--note", "-n", help="审核意见（可选）。")] = "",
    db: DbOption = None,
) -> None:
    """通过（上级）：该县上报的汇总计入本级汇总；该县各单位保持锁定。

    示例：

      nianbao county approve 152502 --year 2025
    """
    with _open(db) as archive:
        s = archive.approve_summary(code, year, note)
    _line(s)


@county_app.command("return", no_args_is_help=True)
def county_return_cmd(
    code: CodeArgument,
    year: YearOption,
    note: Annotated[str, typer.Option("--note", "-n", help="退回原因（必填）。")],
    db: DbOption = None,
) -> None:
    """退回（上级）：写明原因；该县重新开放，其审核人可以重新审核（撤销通过、退回）本县单位后再次上报。已通过的
    县也可以退回（撤销通过）。

    示例：

      nianbao county return 152522 --year 2025 --note "别力古台镇表三申请数与上年差异过大，请核实"
    """
    with _open(db) as archive:
        s = archive.return_summary(code, year, note)
    _line(s)


def _counts(s) -> str:  # type: ignore[no-untyped-def]
    return " ".join(f"{k}{v}" for k, v in s.counts.items() if v) or "—"


@county_app.command("status", no_args_is_help=True)
def county_status_cmd(
    year: YearOption,
    under: Annotated[str | None, typer.Option("--under", help="看哪一级的下级（默认名册最上级，如市、盟）。")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """逐县进度：每个县（旗、区）的单位 未报送/待审核/退回/已通过 各几个、逾期几个，以及本县汇总的上报状态
    （未报送、待审核、退回、已通过）。

    示例：

      nianbao county status --year 2025
    """
    from rich.table import Table
    from rich.text import Text

    with _open(db) as archive:
        rows = archive.summary_states(year, under)
        own = archive.own_states(year, under)
    table = Table(title=f"{year}年度逐县进度", header_style="bold")
    for col in ("单位代码", "名称", "单位数", "单位进度", "逾期", "上报状态", "上报时间", "说明或退回原因"):
        table.add_column(col, overflow="fold")
    for s in rows:
        status = s.status + ("（可上报）" if s.ready else "")
        table.add_row(
            s.code,
            Text(clean(s.name)),
            str(s.units),
            _counts(s),
            Text(str(s.late), style="bold red") if s.late else "",
            Text(status, style=STYLE.get(s.status, "")),
            _when(s.submitted_at),
            Text(clean(s.reason if s.status == "退回" else s.note)),
        )
    err.print(table)
    tally = {st: sum(1 for s in rows if s.status == st) for st in ("未报送", "待审核", "退回", "已通过")}
    say("共 {} 个县：{}。", len(rows), "，".join(f"{k} {v} 个" for k, v in tally.items()))
    if own:
        mine = {st: sum(1 for s in own if s.status == st) for st in tally}
        late = sum(1 for s in own if s.late)
        say(
            "本级直属单位 {} 个：{}{}（nianbao status 查看明细）。",
            len(own),
            "，".join(f"{k} {v} 个" for k, v in mine.items()),
            f"；逾期 {late} 个" if late else "",
        )
    if as_json:
        from ..api import dumps

        print(
            dumps(
                {
                    "schema": "nianbao.levels",
                    "schema_version": 1,
                    "year": year,
                    "nodes": [s.row() for s in rows],
                    "own": [s.row() for s in own],
                }
            )
        )


@county_app.command("history", no_args_is_help=True)
def county_history_cmd(code: CodeArgument, year: YearOption, db: DbOption = None) -> None:
    """一个县的上报记录：每次上报、上级的每次通过和退回，谁、何时、原因。"""
    from rich.table import Table
    from rich.text import Text

    with _open(db) as archive:
        items = archive.summary_history(code, year)
    table = Table(title=f"{code} {year}年度上报记录", header_style="bold")
    for col in ("时间", "事项", "经办", "内容"):
        table.add_column(col, overflow="fold")
    for i in items:
        table.add_row(_when(i.at), i.kind, Text(clean(i.actor)), Text(clean(i.text)))
    err.print(table)
    if not items:
        say("没有任何上报记录。")


@county_app.command("summary", no_args_is_help=True)
def county_summary_cmd(
    year: YearOption,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="汇总表文件名（.xlsx），旁边另写 .manifest.json。")],
    under: Annotated[str | None, typer.Option("--under", help="哪一级的汇总（默认名册最上级，如市、盟）。")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="输出位置已有其他文件时也覆盖。")] = False,
    db: DbOption = None,
) -> None:
    """本级汇总：由已通过的各县汇总和本级直属单位已通过的填报表汇总而成（未通过的县按未报送计）；与直接汇总
    全部已通过单位逐个单元格相同。

    示例：

      nianbao county summary --year 2025 --out 输出/锡林郭勒盟汇总.xlsx
    """
    from ..api import write_summary

    if out_path.suffix.lower() != ".xlsx":
        raise fail(f"汇总表文件名应以 .xlsx 结尾：{out_path}")
    PLANNED.append(f"汇总表 {out_path} 及其清单")
    with _open(db) as archive:
        summary = archive.node_summary(year, under)
    write_summary(summary, out_path, overwrite=overwrite, options={"year": year, "under": under, "source": "逐级汇总"})
    tally = summary.tally()
    say("已生成汇总表：{}（纳入 {} 个，未报送 {} 个）。", out_path, tally["纳入汇总"], tally["未报送"])
    raise typer.Exit(EXIT_PROBLEMS if summary.has_errors else EXIT_OK)
