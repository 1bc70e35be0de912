"""Commands of the archive (the year's collection as a workspace): roster load, receive, status,
accept, reject, reopen, history, diff, export, verify, backup. Thin: parse, call toolkit.archive, render."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from .app import (
    DONE,
    EXIT_OK,
    EXIT_PROBLEMS,
    MAX_ROWS,
    PLANNED,
    Ticker,
    UnderOption,
    app,
    check_year,
    clean,
    err,
    fail,
    plausible_year,
    say,
)
from .batch_view import ACTION_ROWS, MORE, VerboseOption, compact, severities

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
STYLE = {"未报送": "dim", "退回": "bold red", "待审核": "yellow", "已通过": "green"}
SubmissionOption = Annotated[
    int | None,
    typer.Option("--submission", "-s", help="版本编号（status/history 中的“编号”）；不写则为最新版本。决定只能针对最新版本。"),
]

roster_app = typer.Typer(help="名册：每个年度一份（单位每年可能变化），以及报送截止日期。", no_args_is_help=True)
app.add_typer(roster_app, name="roster", rich_help_panel="档案库：一年的回收")


def _decide(call, *args):  # type: ignore[no-untyped-def]
    """A reviewer's decision through the archive; a refusal for want of a written note says how to give
    it on the command line (the archive's own message serves the web page too)."""
    from ..api import ArchiveError

    try:
        return call(*args)
    except ArchiveError as e:
        if "请写明" not in str(e):
            raise
        raise fail(f'{e}（命令行中用 --note "…" 写明。）') from None


def _open(db: str | None, create: bool = False):  # type: ignore[no-untyped-def]
    """The archive; a command that only reads or decides never creates one (``create``: roster load, receive)."""
    from ..api import Archive, resolve_url, shown_url

    url = resolve_url(db)
    if not create and url.startswith("sqlite:///") and not Path(shown_url(url)).exists():
        if not Path(shown_url(url)).parent.is_dir():
            raise fail(f"档案库所在的文件夹不存在：{Path(shown_url(url)).parent}")
        raise fail(
            f"这里没有档案库：{shown_url(url)} 不存在。请先在存放档案库的文件夹中运行，或用 --db 指定档案库"
            "（新的一年从 nianbao roster load 名册.csv --year 年度 开始）。"
        )
    return Archive.open(db)


def scope_of_under(archive, year: int, under: str | None):  # type: ignore[no-untyped-def]
    """The subtree ``--under`` names in the year's roster (None: the whole year), said once on stderr
    so that a county's listing is never taken for the whole archive; a unit not in the roster is
    refused (exit 2) with its code, before anything is read or changed."""
    if not under:
        return None
    from ..api import ArchiveError

    archive.need_roster(year)  # no roster for the year: the archive's own message
    try:
        scope = archive.scope(year, under)
    except ArchiveError:
        raise fail(
            f"--under “{under}”：{year}年度名册中没有这个单位，也没有以它为上级代码的单位。请写名册中的单位代码或名称"
            f"（全部单位见 nianbao status --year {year}）；没有读取或改动任何数据。"
        ) from None
    if len(scope.codes) == 1:
        say("范围：只限{}（{}）这一个单位（--under）。", scope.name, scope.root)
    else:
        say("范围：{}（{}）及其下级单位，共 {} 个（--under）。", scope.name, scope.root, len(scope.codes))
    return scope


def check_within(archive, unit: str, year: int, under: str | None, what: str) -> None:  # type: ignore[no-untyped-def]
    """A command on one unit with ``--under``: the unit must be in that subtree (a county's clerk never
    decides on another county's unit by a mistyped code)."""
    scope = scope_of_under(archive, year, under)
    if scope is None:
        return
    code = archive.unit_code(unit, year)
    if not scope.can_see(code):
        raise fail(
            f"单位“{unit}”（{code}）不在 --under 指定的{scope.name}（{scope.root}）及其下级单位中，{what}。"
            "请核对单位代码，或改写 --under（环境变量 NIANBAO_UNDER）为该单位所属的县。"
        )


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
        str | None, typer.Option("--deadline", help="报送截止日期，例如 2026-01-15；过了截止日期仍未通过的标为逾期。")
    ] = None,
    auto_approve: Annotated[
        bool | None,
        typer.Option(
            "--auto-approve/--no-auto-approve",
            help="没有错误和警告的版本收到即自动通过（默认不自动：每个版本由县里审核）。不写则保持原设置。",
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """把一个年度的名册（和报送截止日期）存入档案库；再次导入同一年度时替换旧名册，截止日期和自动通过的设置
    没有写明时保持不变。

    示例：

      nianbao roster load samples/roster.csv --year 2025 --deadline 2026-01-15
    """
    check_year(year, 2000)
    when = _date(deadline)
    with _open(db, create=True) as archive:
        ros = archive.load_roster(roster, year, when, auto_approve)
        when, auto = archive.deadline(year), archive.auto_approve(year)
    extra = (f"，截止日期 {when}" if when else "，未设截止日期") + (
        "，没有问题的版本自动通过" if auto else "，每个版本由县里审核"
    )
    say("已导入{}年度名册：{} 个单位{}。", year, len(ros.units), extra)


def _receive_line(r) -> None:  # type: ignore[no-untyped-def]
    c = r.counts
    unit = f"{r.unit_name}（{r.unit_code}）" if r.unit_code else "—"
    if r.previous_at:
        when = r.previous_at[:19].replace("T", " ")
        say("{}：{} 与最新版本（第{}版，{} 收到）相同，已记录，未存为新版本。", r.name, unit, r.version, when)
        return
    if r.submission_id is None:  # refused: nothing stored
        say("{}：{} [bold red]" + r.outcome + "[/]{}", r.name, unit, f"：{r.reason}" if r.reason else "")
        return
    style = STYLE.get(r.status, "red")
    ver = f"第{r.version}版" if r.version else ""
    flag = "，[bold yellow]填报日期早于当前版本[/]" if r.older_date else ""
    say(
        "{}：{} " + r.outcome + "{}，[" + style + "]{}[/]（错误{}个，警告{}个，提示{}个）" + flag,
        r.name,
        unit,
        f"（{ver}）" if ver else "",
        r.status,
        c.get("错误", 0),
        c.get("警告", 0),
        c.get("提示", 0),
    )


def _has_errors(r) -> bool:  # type: ignore[no-untyped-def]
    """As ``check`` exits 1: the file has 错误 or cannot be read — received before or not."""
    return bool(r.counts.get("错误")) or r.outcome == "无法读取"


def _needs_action(r) -> bool:  # type: ignore[no-untyped-def]
    """Refused, unreadable, or with errors or warnings (the duplicate-in-batch warning is summarised per unit)."""
    if r.submission_id is None and not r.previous_at:
        return True
    return _has_errors(r) or (r.report is not None and bool(severities(r.report) & {"错误", "警告"}))


def _receive_compact(got) -> None:  # type: ignore[no-untyped-def]
    """Receive at hundreds of files: one line of counts, the files that need action (errors first,
    at most ACTION_ROWS), files the archive already had summarised one line per unit."""
    action = sorted((r for r in got if _needs_action(r)), key=lambda r: (not _has_errors(r), r.name))
    errors = sum(1 for r in got if _has_errors(r))
    again: dict[tuple[str, str], int] = {}
    for r in got:
        if r.previous_at:
            again[(r.unit_code, r.unit_name)] = again.get((r.unit_code, r.unit_name), 0) + 1
    say(
        "共 {} 个文件：需要处理 {} 个（其中有错误或无法读取 {} 个），与最新版本相同 {} 个。",
        len(got),
        len(action),
        errors,
        sum(again.values()),
    )
    for r in action[:ACTION_ROWS]:
        _receive_line(r)
    if len(action) > ACTION_ROWS:
        say(MORE, len(action) - ACTION_ROWS)
    for (code, name), n in sorted(again.items()):
        say("与最新版本相同：{} {}：{}份相同的文件，已记录，未存为新版本。", code, name, n)


@app.command("receive", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def receive_cmd(
    paths: Annotated[list[Path], typer.Argument(help="收到的填报表文件、文件夹或 zip 压缩包，可以有多个。")],
    year: YearOption,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="在标准输出打印 JSON 审核报告（与 check 相同的格式）。")] = False,
    verbose: VerboseOption = False,
) -> None:
    """接收填报表：与 check 完全相同地审核，并存入档案库（原文件原样保存）。每个文件是该单位的一个新版本
    （第1版、第2版……），等待县里审核（nianbao accept / reject）；已通过的版本在新版本通过之前仍然计入汇总。
    与该单位最新版本完全相同的文件只记录一次“重复收到”。有强制性错误或无法读取的版本自动退回。
    上年度已通过的填报表在档案库中时，同时做跨年度核对。

    示例：

      nianbao receive 收到的年报/ --year 2025

    退出码：0 没有错误；1 有文件有错误（与 check 相同，包括以前收到过的文件）；2 无法运行；130 中断（已存入的文件完整保留）。
    """
    from ..api import dumps, result_json

    check_year(year, 2000)
    stored = [0]

    def count(n: int) -> None:
        stored[0] = n

    with _open(db, create=True) as archive, Ticker("接收") as tick:
        try:
            got = archive.receive(paths, year, progress=tick, stored=count)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: what is stored stays, each file whole
            DONE.append(f"已完整存入档案库 {stored[0]} 个文件（每个文件要么完整存入，要么没有存入）；再次运行同一命令即可继续。")
            raise
    if not got:
        raise fail("在给出的路径中没有找到任何填报表（.xlsx/.xlsm/.ods/.xls/.et 或 zip）。")
    if compact(len(got), verbose):  # a city or province: counts and the files that need action
        _receive_compact(got)
    else:
        for r in got:
            _receive_line(r)
    new = sum(1 for r in got if r.submission_id is not None and not r.previous_at)
    again = sum(1 for r in got if r.previous_at)
    refused = len(got) - new - again
    say("共 {} 个文件：新存入 {} 个，与最新版本相同 {} 个{}。", len(got), new, again, f"，未接收 {refused} 个" if refused else "")
    pending = sum(1 for r in got if r.status == "待审核" and r.submission_id is not None and not r.previous_at)
    if pending:
        say(
            "有 {} 个版本待审核：nianbao status --year {}，然后 nianbao accept / reject（没有问题的可用 accept --all-clean）。",
            pending,
            year,
        )
    if as_json:
        print(dumps(result_json("receive", [r.report for r in got if r.report], year=year)))
    raise typer.Exit(EXIT_PROBLEMS if any(_has_errors(r) for r in got) else EXIT_OK)


def _version_text(s) -> str:  # type: ignore[no-untyped-def]
    """第N版, and the approved one when another version awaits review (its figures count meanwhile)."""
    if not s.submission_id:
        return ""
    text = f"第{s.version}版"
    if s.pending_id and s.approved_id:
        text += f"（计入汇总：第{s.approved_version}版）"
    elif s.pending_id and s.version > 1:
        text += "（尚无已通过版本）"
    return text + ("，填报日期早于当前版本" if s.older_date else "")


def _status_table(states, year: int, missing: bool) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table
    from rich.text import Text

    title = f"{year}年度报送情况" + ("（需催报）" if missing else "")
    table = Table(title=title, header_style="bold")
    for col in ("单位代码", "单位名称", "状态", "版本", "填报人", "联系电话", "最后收到", "错误", "警告", "逾期", "备注"):
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
            Text(_version_text(s), style="yellow" if s.older_date else ""),
            Text(clean(s.filler)),
            Text(clean(s.phone)),
            s.last_received[:16].replace("T", " "),
            str(s.errors) if s.submission_id else "",
            str(s.warnings) if s.submission_id else "",
            Text("逾期", style="bold red") if s.late else "",
            Text(clean(s.note or s.reason)),
        )
    err.print(table)


def _tally(states) -> str:  # type: ignore[no-untyped-def]
    from ..api import STATUSES

    parts = [f"{st} {sum(1 for s in states if s.status == st)} 个" for st in STATUSES]
    late = sum(1 for s in states if s.late)
    return f"应报 {len(states)} 个：" + "，".join(parts) + (f"；逾期（过了截止日期仍未通过）{late} 个" if late else "") + "。"


@app.command("status", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def status_cmd(
    year: YearOption,
    missing: Annotated[bool, typer.Option("--missing", help="只列出需要催报的单位（未报送、退回）。")] = False,
    under: UnderOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """报送情况：名册中每个单位是 未报送 / 待审核 / 退回 / 已通过，第几版（另有版本待审核时，计入汇总的是
    哪一版），填报人、联系电话、最后收到时间、是否逾期（过了截止日期仍未通过）。

    示例：

      nianbao status --year 2025

      nianbao status --year 2025 --missing

      nianbao status --year 2025 --under 152502（一个市的档案库中只看一个县）
    """
    from ..api import dumps

    with _open(db) as archive:
        scope = scope_of_under(archive, year, under)
        every = archive.status(year, under=scope and scope.root)
        states = archive.chase_list(year, every) if missing else every
        _warn_large_wal(archive)
    _status_table(states, year, missing)
    say(_tally(every))
    if as_json:
        print(dumps({"schema": "nianbao.status", "schema_version": 2, "year": year, "units": [s.row() for s in states]}))


WAL_WARN_BYTES = 64 << 20  # a write-ahead log this large means a copy of the archive file alone is far behind


def _warn_large_wal(archive) -> None:
    wal = archive.wal_file()
    size = wal.stat().st_size if wal is not None and wal.exists() else 0
    if size >= WAL_WARN_BYTES:
        say(
            "注意：档案库的预写日志 {} 有 {} MB，最近收到的数据还在其中、尚未写入档案库文件。"
            "复制档案库请用 nianbao backup --out 备份文件（运行中也能得到完整的一份），不要直接复制档案库文件。",
            wal,
            size >> 20,
            style="yellow",
        )


def _accept_clean(db: str | None, year: int, under: str | None) -> None:
    with _open(db) as archive:
        scope = scope_of_under(archive, year, under)
        done = archive.approve_clean(year, under=scope and scope.root)
    for s in done:
        say("{}（{}）：第{}版已通过。", s.name, s.code, s.approved_version)
    say("共通过 {} 个没有错误和警告的版本；其余待审核的请逐个查看（nianbao diff、nianbao accept --note）。", len(done))


@app.command("accept", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def accept_cmd(
    year: YearOption,
    unit: Annotated[str | None, typer.Argument(help="单位代码或名称。")] = None,
    note: Annotated[str, typer.Option("--note", "-n", help="说明：有警告或需核实的错误时必填，写明为什么接受。")] = "",
    submission: SubmissionOption = None,
    all_clean: Annotated[
        bool, typer.Option("--all-clean", help="通过全部待审核、没有错误和警告的版本（一批收完后使用）。")
    ] = False,
    under: UnderOption = None,
    db: DbOption = None,
) -> None:
    """通过：该单位的最新版本计入汇总（锁定：以后收到的新版本在通过之前不改变汇总数）。有警告或“核实性”错误
    （如与上年结转不符）时须用 --note 写明说明；有“强制性”错误（如表三勾稽关系不平）的版本不能通过，请退回。

    示例：

      nianbao accept 152502101 --year 2025 --note "规章一栏为转发的上级规章，已核实，同意上报"

      nianbao accept --all-clean --year 2025

      nianbao accept --all-clean --year 2025 --under 152502（只通过一个县的）
    """
    if all_clean:
        if unit:
            raise fail("--all-clean 不能与单位同时使用。")
        return _accept_clean(db, year, under)
    if not unit:
        raise fail("请写明单位代码或名称，或用 --all-clean 通过全部没有问题的版本。")
    with _open(db) as archive:
        check_within(archive, unit, year, under, "没有通过")
        s = _decide(archive.approve, unit, year, note, submission)
    what = f"，已接受{s.warnings}个警告" if s.warnings else ""
    say("{}（{}）：第{}版（编号{}）已通过{}，计入汇总。", s.name, s.code, s.approved_version, s.approved_id, what)


@app.command("reject", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def reject_cmd(
    unit: Annotated[str, typer.Argument(help="单位代码或名称。")],
    year: YearOption,
    note: NoteOption,
    submission: SubmissionOption = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="审核意见副本保存到此文件夹。")] = Path("退回"),
    under: UnderOption = None,
    db: DbOption = None,
) -> None:
    """退回：记录退回原因，并生成审核意见副本（问题单元格标红并附批注）发给填报单位。退回一直有效，直到县里
    对新版本作出决定（新版本不会自动通过）。

    示例：

      nianbao reject 152502003 --year 2025 --note "表三自然人列不平，请更正后重新报送" --out 输出/退回
    """
    from ..api import write_annotated

    with _open(db) as archive:
        check_within(archive, unit, year, under, "没有退回")
        s, report = _decide(archive.reject, unit, year, note, submission)
    say("{}（{}）：第{}版已退回（{}）。", s.name, s.code, s.version, note)
    if s.approved_id:
        say("计入汇总的仍是已通过的第{}版；如它也不应计入，请用 nianbao reopen 撤销通过。", s.approved_version)
    done = write_annotated([report], out_dir, year=year)
    for _, path in done.written:
        say("审核意见副本：{}", path)
    for _, why in done.skipped:
        say("未生成审核意见副本：{}", why, style="yellow")


@app.command("reopen", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def reopen_cmd(
    unit: Annotated[str, typer.Argument(help="单位代码或名称。")],
    year: YearOption,
    note: NoteOption,
    under: UnderOption = None,
    db: DbOption = None,
) -> None:
    """撤销通过：该单位已通过的版本不再计入汇总（汇总中为未报送），状态为退回，直到县里通过一个版本。

    示例：

      nianbao reopen 152502001 --year 2025 --note "发现表三数字与台账不符，请核实后重新报送"
    """
    with _open(db) as archive:
        check_within(archive, unit, year, under, "没有撤销通过")
        before = archive.state(unit, year)
        s = _decide(archive.reopen, unit, year, note)
    say("{}（{}）：已撤销第{}版的通过（{}），状态：{}。", s.name, s.code, before.approved_version, note, s.status)


@app.command("history", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def history_cmd(
    unit: Annotated[str, typer.Argument(help="单位代码或名称。")],
    year: Annotated[int | None, typer.Option("--year", "-y", help="只看这一年度。", callback=plausible_year)] = None,
    cells: Annotated[bool, typer.Option("--cells", help="另列每个版本与上一版本不同的单元格（需要 --year）。")] = False,
    under: UnderOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """一个单位的全部记录，按时间顺序：收到的每个版本（编号、第几版、谁报送的）、重复收到、未接收的上传、
    通过、退回和撤销通过（谁决定的）。

    示例：

      nianbao history 152502101 --year 2025
    """
    from rich.table import Table
    from rich.text import Text

    if cells and not year:
        raise fail("--cells 需要同时写明 --year。")
    with _open(db) as archive:
        if under:
            check_within(archive, unit, year or _latest(archive), under, "不列出它的记录")
        items = archive.history(unit, year)
        steps = _version_steps(archive, unit, year) if cells else []
    table = Table(title=f"{unit} 的记录", header_style="bold")
    for col in ("时间", "年度", "事项", "编号", "经办", "内容"):
        table.add_column(col, overflow="fold")
    for i in items:
        sid = str(i.submission_id) if i.submission_id else ""
        table.add_row(i.at[:19].replace("T", " "), str(i.year), i.kind, sid, i.actor, Text(clean(i.text)))
    err.print(table)
    if not items:
        say("没有任何记录。")
    for title, changes in steps:
        _changes_table(title, changes)
    if as_json:
        from dataclasses import asdict

        from ..api import dumps

        print(dumps({"schema": "nianbao.history", "schema_version": 2, "unit": unit, "items": [asdict(i) for i in items]}))


def _latest(archive) -> int:  # type: ignore[no-untyped-def]
    """The newest year with a roster (history without --year, checked against --under)."""
    years = archive.years()
    if not years:
        raise fail("档案库中还没有名册。请先运行：nianbao roster load 名册.csv --year 年度")
    return years[-1]


def _version_steps(archive, unit: str, year: int | None) -> list:  # type: ignore[no-untyped-def]
    """(title, changes) of each version against the one before it."""
    versions = archive.versions(unit, year)
    return [
        (f"第{b.number}版（编号{b.id}）与第{a.number}版（编号{a.id}）相比", archive.diff(unit, year, a.id, b.id))  # type: ignore[arg-type]
        for a, b in zip(versions, versions[1:], strict=False)
    ]


def _changes_table(title: str, changes) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table
    from rich.text import Text

    from ..api import shown_value

    if not changes:
        say("{}：数字和封面完全相同。", title)
        return
    table = Table(title=f"{title}：{len(changes)} 处不同", header_style="bold")
    for col in ("表", "行", "列", "单元格", "原值", "新值"):
        table.add_column(col, overflow="fold")
    for c in changes:
        table.add_row(
            c.sheet,
            Text(clean(c.row_label)),
            Text(clean(c.col_label)),
            c.ref,
            Text(clean(shown_value(c.old))),
            Text(clean(shown_value(c.new))),
        )
    err.print(table)


@app.command("diff", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def diff_cmd(
    unit: Annotated[str, typer.Argument(help="单位代码或名称。")],
    year: YearOption,
    from_id: Annotated[int | None, typer.Option("--from", help="原版本编号（默认：已通过的版本）。")] = None,
    to_id: Annotated[int | None, typer.Option("--to", help="新版本编号（默认：最新版本）。")] = None,
    last_year: Annotated[bool, typer.Option("--last-year", help="与上年已通过的填报表对比。")] = False,
    under: UnderOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """逐个单元格对比一个单位的两个版本（默认：已通过的版本 → 最新版本），或与上年对比：表、行、列、单元格、原值 → 新值。

    示例：

      nianbao diff 152502001 --year 2025

      nianbao diff 152502001 --year 2025 --last-year
    """
    with _open(db) as archive:
        check_within(archive, unit, year, under, "没有对比")
        code = archive.unit_code(unit, year)
        changes = archive.diff_last_year(code, year, to_id) if last_year else archive.diff(code, year, from_id, to_id)
    _changes_table(f"{unit} {year}年度" + ("与上年相比" if last_year else "两个版本相比"), changes)
    if as_json:
        from dataclasses import asdict

        from ..api import dumps

        data = {
            "schema": "nianbao.diff",
            "schema_version": 1,
            "unit": code,
            "year": year,
            "changes": [asdict(c) for c in changes],
        }
        print(dumps(data))


@app.command("export", no_args_is_help=True, rich_help_panel="档案库：一年的回收")
def export_cmd(
    year: YearOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="导出文件：.csv、.xlsx 或 .parquet（需要 pyarrow）。")],
    wide: Annotated[
        bool,
        typer.Option(
            "--wide",
            help="宽表：每个单位一行，与汇总表“明细”工作表相同（第一行为表、行、列名称，第二行为单元格编号），另有情况说明。",
        ),
    ] = False,
    under: UnderOption = None,
    db: DbOption = None,
) -> None:
    """导出计入汇总的数字（各单位已通过的版本）：默认每个单位每个单元格一行（年度、单位代码、单位名称、单位类型、报送状态、上级代码、
    表、行、列、单元格编号、数值）；--wide 每个单位一行。件数为整数，金额（万元）保留小数。

    示例：

      nianbao export --year 2025 --out 输出/明细.csv

      nianbao export --year 2025 --out 输出/明细.xlsx --wide

      nianbao export --year 2025 --under 152502 --out 输出/锡林浩特市明细.csv（只导出一个县的）
    """
    from ..api import write_frame

    if out.suffix.lower() not in (".csv", ".xlsx", ".parquet"):
        raise fail(f"导出文件名应以 .csv、.xlsx 或 .parquet 结尾：{out}")
    PLANNED.append(f"导出文件 {out}")
    with _open(db) as archive:
        scope = scope_of_under(archive, year, under)
        frame = archive.export_frame(year, wide=wide, under=scope and scope.root)
    write_frame(frame, out)
    say("已导出 {} 行（{}），保存在：{}", len(frame), "每个单位一行" if wide else "每个单位每个单元格一行", out)


@app.command("verify", rich_help_panel="档案库：一年的回收")
def verify_cmd(db: DbOption = None) -> None:
    """核对档案库：重新计算每个保存的原文件的 sha256，以及每条存档审核结果（数字、问题清单、状态）的校验值，
    与收到时比较；不一致的写明单位、年度和单元格。

    示例：

      nianbao verify --db 输出/nianbao.db

      nianbao verify（档案库为当前文件夹的 nianbao.db，或环境变量 NIANBAO_DB 指定的）

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
    out: Annotated[Path, typer.Option("--out", "-o", help="备份文件（不会覆盖已有文件；文件夹不存在时自动创建）。")],
    db: DbOption = None,
) -> None:
    """备份档案库：使用中也能得到一致的副本（SQLite）；PostgreSQL 档案库给出 pg_dump 命令。

    示例：

      nianbao backup --out 备份/nianbao-2026-01-20.db

      nianbao backup --db 输出/nianbao.db --out 输出/nianbao-备份.db
    """
    with _open(db) as archive:
        say("{}", archive.backup(out))
