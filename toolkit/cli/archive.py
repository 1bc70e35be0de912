"""Commands of the archive (the year's collection as a workspace): roster load, receive, status,
accept, reject, history, export, verify, backup. Thin: parse, call toolkit.archive, render."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from .app import EXIT_OK, EXIT_PROBLEMS, MAX_ROWS, PLANNED, Ticker, app, check_year, clean, err, fail, plausible_year, say

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="档案库：SQLite 文件路径或 postgresql://用户@主机/库名；默认取环境变量 NIANBAO_DB，否则为当前文件夹的 nianbao.db。",
    ),
]
YearOption = Annotated[int, typer.Option("--year", "-y", help="报告年度，例如 2025。", callback=plausible_year)]
NoteOption = Annotated[str, typer.Option("--note", "-n", help="说明或退回原因（必填）。")]
JsonOption = Annotated[bool, typer.Option("--json", help="在标准输出打印 JSON。")]
STYLE = {"未报送": "dim", "退回": "bold red", "待说明": "yellow", "已通过": "green"}

roster_app = typer.Typer(help="名册：每个年度一份（单位每年可能变化），以及报送截止日期。", no_args_is_help=True)
app.add_typer(roster_app, name="roster", rich_help_panel="档案库：一年的回收")


def _open(db: str | None):  # type: ignore[no-untyped-def]
    from ..archive import Archive

    return Archive.open(db)


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise fail(f"截止日期“{text}”应写成 年-月-日，例如 2026-01-15。") from None


@roster_app.command("load", no_args_is_help=True)
def roster_load_cmd(
    roster: Annotated[Path, typer.Argument(help="名册文件（.csv 或 .xlsx），列：单位代码、单位名称、单位类型、上级代码。")],
    year: YearOption,
    deadline: Annotated[
        str | None, typer.Option("--deadline", help="报送截止日期，例如 2026-01-15；晚于它报送的标为逾期。")
    ] = None,
    db: DbOption = None,
) -> None:
    """把一个年度的名册（和报送截止日期）存入档案库；再次导入同一年度时替换旧名册。

    示例：

      nianbao roster load samples/roster.csv --year 2025 --deadline 2026-01-15
    """
    check_year(year, 2000)
    when = _date(deadline)
    with _open(db) as archive:
        ros = archive.load_roster(roster, year, when)
    say("已导入{}年度名册：{} 个单位{}。", year, len(ros.units), f"，截止日期 {when}" if when else "")


def _receive_line(r) -> None:  # type: ignore[no-untyped-def]
    c = r.counts
    unit = f"{r.unit_name}（{r.unit_code}）" if r.unit_code else "—"
    if r.previous_at:
        say("{}：{} 相同文件已于 {} 收到过，未改动。", r.name, unit, r.previous_at[:19].replace("T", " "))
        return
    style = STYLE.get(r.status, "red")
    say(
        "{}：{} " + r.outcome + "，[" + style + "]{}[/]（错误{}个，警告{}个，提示{}个）",
        r.name,
        unit,
        r.status,
        c.get("错误", 0),
        c.get("警告", 0),
        c.get("提示", 0),
    )


@app.command("receive", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def receive_cmd(
    paths: Annotated[list[Path], typer.Argument(help="收到的填报表文件、文件夹或 zip 压缩包，可以有多个。")],
    year: YearOption,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="在标准输出打印 JSON 审核报告（与 check 相同的格式）。")] = False,
) -> None:
    """接收填报表：与 check 完全相同地审核，并存入档案库（原文件原样保存）；同一单位的新文件取代旧文件，
    重复接收相同文件不做任何改动。上年度已通过的填报表在档案库中时，同时做跨年度核对。

    示例：

      nianbao receive 收到的年报/ --year 2025

    退出码：0 没有错误；1 有文件有错误（已存入，状态为退回）；2 无法运行。
    """
    from ..jsonout import dumps, result_json

    check_year(year, 2000)
    PLANNED.append("存入档案库（每个文件要么完整存入，要么没有存入）")
    with _open(db) as archive, Ticker("接收") as tick:
        got = archive.receive(paths, year, progress=tick)
    if not got:
        raise fail("在给出的路径中没有找到任何填报表（.xlsx/.xlsm/.ods/.xls/.et 或 zip）。")
    shown = got
    if len(got) > MAX_ROWS:  # a city or province: the files that need attention
        shown = [r for r in got if r.status != "已通过" and not r.previous_at][:MAX_ROWS]
        say("共 {} 个文件，下面只列出未通过的前 {} 个；完整结果请用 --json 或 nianbao status。", len(got), len(shown))
    for r in shown:
        _receive_line(r)
    new = [r for r in got if not r.previous_at]
    say("共 {} 个文件：新存入 {} 个，重复 {} 个。", len(got), len(new), len(got) - len(new))
    if as_json:
        print(dumps(result_json("receive", [r.report for r in got if r.report], year=year)))
    raise typer.Exit(EXIT_PROBLEMS if any(r.counts.get("错误") for r in new) else EXIT_OK)


def _status_table(states, year: int, missing: bool) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table
    from rich.text import Text

    title = f"{year}年度报送情况" + ("（需催报）" if missing else "")
    table = Table(title=title, header_style="bold")
    for col in ("单位代码", "单位名称", "状态", "填报人", "联系电话", "最后收到", "错误", "警告", "逾期", "备注"):
        table.add_column(col, overflow="fold")
    shown = states
    if len(states) > MAX_ROWS:  # a city or province: the units that need attention first
        shown = sorted(states, key=lambda s: s.status == "已通过")[:MAX_ROWS]
        table.caption = f"共 {len(states)} 个单位，只列出前 {MAX_ROWS} 个（先列未通过的）；完整结果请用 --json。"
    for s in shown:
        table.add_row(
            s.code,
            Text(clean(s.name)),
            Text(s.status, style=STYLE.get(s.status, "")),
            Text(clean(s.filler)),
            Text(clean(s.phone)),
            s.last_received[:16].replace("T", " "),
            str(s.errors) if s.submission_id else "",
            str(s.warnings) if s.submission_id else "",
            Text("逾期", style="bold red") if s.late else "",
            Text(clean(s.note)),
        )
    err.print(table)


def _tally(states) -> str:  # type: ignore[no-untyped-def]
    from ..archive.core import STATUSES

    parts = [f"{st} {sum(1 for s in states if s.status == st)} 个" for st in STATUSES]
    late = sum(1 for s in states if s.late)
    return f"应报 {len(states)} 个：" + "，".join(parts) + (f"；逾期 {late} 个" if late else "") + "。"


@app.command("status", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def status_cmd(
    year: YearOption,
    missing: Annotated[bool, typer.Option("--missing", help="只列出需要催报的单位（未报送、退回、待说明）。")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """报送情况：名册中每个单位是 未报送 / 退回 / 待说明 / 已通过，填报人、联系电话、最后收到时间、是否逾期。

    示例：

      nianbao status --year 2025

      nianbao status --year 2025 --missing
    """
    from ..archive.status import chase_list
    from ..jsonout import dumps

    with _open(db) as archive:
        states = archive.status(year)
        if missing:
            states = chase_list(archive, states, year)
    _status_table(states, year, missing)
    say(_tally(archive.status(year) if missing else states))
    if as_json:
        print(dumps({"schema": "nianbao.status", "schema_version": 1, "year": year, "units": [s.row() for s in states]}))


@app.command("accept", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def accept_cmd(
    unit: Annotated[str, typer.Argument(help="单位代码或名称。")], year: YearOption, note: NoteOption, db: DbOption = None
) -> None:
    """强制上报：接受该单位当前填报表的警告，并记录书面说明。说明与这些警告绑定：重新报送后警告不变则仍有效，
    出现新的警告需要新的说明。

    示例：

      nianbao accept 152502101 --year 2025 --note "本年新设机构，现行有效件数按新口径统计"
    """
    with _open(db) as archive:
        s = archive.accept(unit, year, note)
    say("{}（{}）：已接受{}个警告，状态：{}。", s.name, s.code, s.warnings, s.status)


@app.command("reject", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def reject_cmd(
    unit: Annotated[str, typer.Argument(help="单位代码或名称。")],
    year: YearOption,
    note: NoteOption,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="审核意见副本保存到此文件夹。")] = Path("退回"),
    db: DbOption = None,
) -> None:
    """退回：记录退回原因，并生成审核意见副本（问题单元格标红并附批注）发给填报单位。

    示例：

      nianbao reject 152502003 --year 2025 --note "表三自然人列不平，请更正后重新报送" --out 输出/退回
    """
    from ..api import write_annotated

    with _open(db) as archive:
        s, report = archive.reject(unit, year, note)
    say("{}（{}）：已退回（{}）。", s.name, s.code, note)
    done = write_annotated([report], out_dir, year=year)
    for _, path in done.written:
        say("审核意见副本：{}", path)
    for _, why in done.skipped:
        say("未生成审核意见副本：{}", why, style="yellow")


@app.command("history", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def history_cmd(
    unit: Annotated[str, typer.Argument(help="单位代码或名称。")],
    year: Annotated[int | None, typer.Option("--year", "-y", help="只看这一年度。", callback=plausible_year)] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """一个单位的全部记录：收到的每个文件、退回和说明，按时间顺序。

    示例：

      nianbao history 152502101 --year 2025
    """
    from rich.table import Table
    from rich.text import Text

    with _open(db) as archive:
        items = archive.history(unit, year)
    table = Table(title=f"{unit} 的记录", header_style="bold")
    for col in ("时间", "年度", "事项", "内容"):
        table.add_column(col, overflow="fold")
    for i in items:
        table.add_row(i.at[:19].replace("T", " "), str(i.year), i.kind, Text(clean(i.text)))
    err.print(table)
    if not items:
        say("没有任何记录。")
    if as_json:
        from dataclasses import asdict

        from ..jsonout import dumps

        print(dumps({"schema": "nianbao.history", "schema_version": 1, "unit": unit, "items": [asdict(i) for i in items]}))


@app.command("export", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def export_cmd(
    year: YearOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="导出文件：.csv、.xlsx 或 .parquet（需要 pyarrow）。")],
    wide: Annotated[bool, typer.Option("--wide", help="每个单位一行（默认每个单元格一行）。")] = False,
    db: DbOption = None,
) -> None:
    """导出明细（pandas）：默认每个单位每个单元格一行（年度、单位、状态、表、行、列、单元格编号、数值）。

    示例：

      nianbao export --year 2025 --out 输出/明细.csv

      nianbao export --year 2025 --out 输出/明细.xlsx --wide
    """
    from ..archive.export import write_frame

    if out.suffix.lower() not in (".csv", ".xlsx", ".parquet"):
        raise fail(f"导出文件名应以 .csv、.xlsx 或 .parquet 结尾：{out}")
    PLANNED.append(f"导出文件 {out}")
    with _open(db) as archive:
        frame = archive.export_frame(year, wide=wide)
    write_frame(frame, out)
    say("已导出 {} 行，保存在：{}", len(frame), out)


@app.command("verify", rich_help_panel="档案库：一年的回收")
def verify_cmd(db: DbOption = None) -> None:
    """核对档案库：重新计算每个保存的原文件的 sha256，以及每条存档审核结果（数字、问题清单、状态）的校验值，
    与收到时比较；不一致的写明单位、年度和单元格。

    退出码：0 全部一致；1 有不一致；2 无法运行。
    """
    with _open(db) as archive, Ticker("核对") as tick:
        problems = archive.verify(progress=tick)
    for p in problems:
        say("[bold red]不一致：[/]{}", p)
    if problems:
        raise fail(f"档案库中有 {len(problems)} 处与收到时不一致。", EXIT_PROBLEMS)
    say("档案库中的全部原文件和存档审核结果与收到时一致。")


@app.command("backup", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def backup_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="备份文件（不会覆盖已有文件）。")], db: DbOption = None
) -> None:
    """备份档案库：使用中也能得到一致的副本（SQLite）；PostgreSQL 档案库给出 pg_dump 命令。

    示例：

      nianbao backup --out 备份/nianbao-2026-01-20.db
    """
    with _open(db) as archive:
        say("{}", archive.backup(out))
