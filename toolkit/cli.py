"""`nianbao` command line: parse options, call the library, print. Nothing else.

Exit codes: 0 fine; 1 problems (错误) found in the inputs; 2 could not run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

if __name__ == "__main__":  # `python -m toolkit.cli`: a Ctrl-C while importing must not print a traceback
    from toolkit.entry import install as _install

    _install()

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import __version__
from .errors import NianbaoError

EXIT_OK, EXIT_PROBLEMS, EXIT_CANNOT_RUN = 0, 1, 2
MAX_ROWS = 300  # rows of a console table; --json always has everything

# typer's help panels are English by default; our users read Chinese.
try:
    from typer import rich_utils as _ru

    _ru.ARGUMENTS_PANEL_TITLE = "参数"
    _ru.OPTIONS_PANEL_TITLE = "选项"
    _ru.COMMANDS_PANEL_TITLE = "命令"
    _ru.ERRORS_PANEL_TITLE = "错误"
    _ru.REQUIRED_LONG_STRING = "[必填]"
    _ru.DEFAULT_STRING = "[默认：{}]"
    _ru.RICH_HELP = "用 [blue]'{command_path} {help_option}'[/] 查看帮助。"
    from typer import core as _tc

    def _zh_help_option(cls: type) -> None:
        original = cls.get_help_option

        def get_help_option(self, ctx, _original=original):  # type: ignore[no-untyped-def]
            opt = _original(self, ctx)
            if opt is not None:
                opt.help = "显示本帮助后退出。"
            return opt

        cls.get_help_option = get_help_option

    for _cls in (_tc.TyperCommand, _tc.TyperGroup):
        _zh_help_option(_cls)

    from rich.console import Group as _Group

    def _stacked(items, **_kw):  # type: ignore[no-untyped-def]
        """Option help stacked, not in rich Columns: long Chinese text (no spaces to wrap at) is
        folded onto the next line instead of being cut off with '…'."""
        for item in items:
            if hasattr(item, "overflow"):
                item.overflow = "fold"
        return _Group(*items)

    _ru.Columns = _stacked
except (ImportError, AttributeError):  # pragma: no cover - layout of typer changed
    pass

def _console(stderr: bool) -> Console:
    """Wide and unwrapped when not a terminal (a log file, a pipe): no sentence is cut in two."""
    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    width = None if tty else int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(stderr=stderr, width=width, soft_wrap=not tty)


err = _console(True)
out = _console(False)
# What the running command means to write, so Ctrl-C can say what was and was not written.
PLANNED: list[str] = []
_CONTROL = dict.fromkeys([*range(0, 9), *range(11, 32), 127, *range(0x80, 0xA0)], None)


def clean(text: object) -> str:
    """Text from files (names, cells, published pages) made safe for a terminal: control and
    escape characters are shown as their codes, never executed (a name with ESC[2J)."""
    s = str(text)
    if not any(ord(ch) in _CONTROL for ch in s):
        return s
    return "".join(f"\\x{ord(ch):02x}" if ord(ch) in _CONTROL else ch for ch in s)


def say(message: str, *user_text: object, style: str = "") -> None:
    """Print a message on stderr; ``{}`` placeholders take user text, escaped for markup and terminal."""
    from rich.markup import escape

    text = message.format(*(escape(clean(t)) for t in user_text)) if user_text else message
    err.print(f"[{style}]{text}[/]" if style else text, highlight=False)

app = typer.Typer(
    name="nianbao",
    help=(
        "政府信息公开工作年度报告（国办公开办函〔2021〕30号格式）：生成锁定的填报模板、审核回收的填报表、汇总。\n\n"
        "示例：\n\n"
        "  nianbao template --roster samples/roster.csv --year 2025 --out 输出/模板\n\n"
        "  nianbao check samples/faulty --roster samples/roster.csv --year 2025 --annotate 输出/退回\n\n"
        "  nianbao consolidate samples/returns --roster samples/roster.csv --year 2025 --out 输出/汇总.xlsx\n\n"
        "  nianbao import samples/published/宝力根苏木2023年政府信息公开工作年度报告.txt\n\n"
        "  nianbao draft 输出/汇总.xlsx --out 输出/年报.docx --html 输出/年报.html\n\n"
        "  nianbao explain O1\n\n"
        "退出码：0 正常；1 发现错误；2 无法运行（参数错误、文件无法读取等）。"
    ),
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def progress_bar(total: int, label: str) -> Progress:
    """A rich progress bar on stderr; invisible when there is little to do or no terminal."""
    return Progress(
        TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True, disable=total < 5,
    )


def fail(message: str, code: int = EXIT_CANNOT_RUN) -> typer.Exit:
    say("[bold red]错误：[/]{}", message)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        out.print(f"nianbao {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="显示版本号后退出。")] = False,
) -> None:
    """政府信息公开工作年度报告工具。"""


@app.command("template", no_args_is_help=True)
def template_cmd(
    year: Annotated[int, typer.Option("--year", "-y", help="报告年度，例如 2025。")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="输出文件夹（不存在时自动创建）。")],
    roster: Annotated[Path | None, typer.Option("--roster", "-r", help="名册文件（.csv 或 .xlsx），"
                                                 "列：单位代码、单位名称、单位类型、上级代码。")] = None,
    unit_code: Annotated[str | None, typer.Option("--unit-code", help="只为一个单位生成：单位代码。")] = None,
    unit_name: Annotated[str | None, typer.Option("--unit-name", help="只为一个单位生成：单位名称。")] = None,
    unit_type: Annotated[str, typer.Option("--unit-type", help="只为一个单位生成：单位类型。")] = "乡镇",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="输出文件夹中已有填写过数据的同名文件时也覆盖。")] = False,
) -> None:
    """生成锁定的填报模板：每个单位一个 .xlsx 文件。

    示例：

      nianbao template --roster samples/roster.csv --year 2025 --out 模板

      nianbao template --unit-code 152502201 --unit-name 宝力根苏木 --unit-type 苏木 --year 2025 --out 模板
    """
    from .api import write_template
    from .roster import load_roster, validate_single_unit
    from .spec import current_format

    check_year(year, current_format().valid_from_year)
    if roster and (unit_code or unit_name):
        raise fail("--roster 与 --unit-code/--unit-name 只能选一种。")
    if roster:
        units = list(load_roster(roster).units)
    elif unit_code and unit_name:
        units = [validate_single_unit(unit_code, unit_name, unit_type)]
    else:
        raise fail("请用 --roster 指定名册，或用 --unit-code 和 --unit-name 指定一个单位。")
    PLANNED.append(f"{len(units)}个模板（{out_dir}）")
    with progress_bar(len(units), "生成模板") as bar:
        task = bar.add_task("", total=len(units))
        paths = write_template(units, year, out_dir, overwrite=overwrite, progress=lambda: bar.advance(task))
    say("已生成 {} 个{}年度填报模板，保存在：{}", len(paths), year, out_dir)
    for p in paths[:5]:
        say("  {}", p.name)
    if len(paths) > 5:
        say("  ……共 {} 个", len(paths))


class Ticker:
    """Progress adapter for library calls: they report the total first, then -1 per finished item."""

    def __init__(self, label: str):
        self.label = label
        self.bar: Progress | None = None
        self.task = None

    def __call__(self, n: int) -> None:
        if n >= 0:
            self.close()
            self.bar = progress_bar(n, self.label)
            self.bar.start()
            self.task = self.bar.add_task("", total=n)
        elif self.bar is not None and self.task is not None:
            self.bar.advance(self.task)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __enter__(self) -> Ticker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _verdict(findings) -> str:
    from .findings import counts

    c = counts(findings)
    return "[red]退回[/]" if c["错误"] else ("[yellow]需说明[/]" if c["警告"] else "[green]通过[/]")


def print_findings(result) -> None:
    """The reviewer's view: one line per file, then every finding with its location."""
    from rich.table import Table
    from rich.text import Text

    from .findings import counts

    files = Table(title="审核结果", show_lines=False, header_style="bold")
    for col in ("文件", "单位", "错误", "警告", "提示", "结论"):
        files.add_column(col, overflow="fold")
    shown = result.reports
    if len(shown) > MAX_ROWS:  # a city or province: list the files that need attention
        shown = [r for r in shown if any(f.severity != "提示" for f in r.findings)][:MAX_ROWS]
        files.caption = f"共 {len(result.reports)} 个文件，只列出有错误或警告的前 {len(shown)} 个；完整结果请用 --json。"
    for r in shown:
        c = counts(r.findings)
        unit = f"{r.unit_name}（{r.unit_code}）" if r.unit_code else "—"
        files.add_row(Text(clean(r.provenance.name)), Text(clean(unit)), str(c["错误"]), str(c["警告"]), str(c["提示"]),
                      _verdict(r.findings))
    err.print(files)
    rows = result.findings
    if len(rows) > MAX_ROWS:
        say("问题共 {} 条，下面只列出前 {} 条，完整清单请用 --json 或 --annotate。", len(rows), MAX_ROWS)
    if rows:
        table = Table(title="问题清单", show_lines=True, header_style="bold")
        for col, ratio in (("级别", 1), ("文件", 3), ("位置", 4), ("问题", 6)):
            table.add_column(col, ratio=ratio, overflow="fold")
        style = {"错误": "bold red", "警告": "yellow", "提示": "cyan"}
        for f in rows[:MAX_ROWS]:
            problem = Text(clean(f.message))
            problem.append("\n" + clean(f.instruction), style="dim")
            table.add_row(Text(f.severity, style=style.get(f.severity, "")), Text(clean(f.file or "（整批）")),
                          Text(clean(f.locate() or "整个文件")), problem)
        err.print(table)
    total = counts(rows)
    say("共 {} 个文件：错误 {} 个，警告 {} 个，提示 {} 个。", len(result.reports), total["错误"], total["警告"], total["提示"])


@app.command("check", no_args_is_help=True)
def check_cmd(
    paths: Annotated[list[Path], typer.Argument(help="填报表文件、文件夹或 zip 压缩包，可以有多个。")],
    roster: Annotated[Path | None, typer.Option(
        "--roster", "-r", help="名册：核对单位代码和名称，指出未报送和重复报送的单位。")] = None,
    year: Annotated[int | None, typer.Option("--year", "-y", help="报告年度：核对是否误发往年文件。")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="在标准输出打印 JSON 审核报告（格式见 README）。")] = False,
    annotate_dir: Annotated[Path | None, typer.Option("--annotate", help="为有错误或警告的填报表生成“审核意见”副本"
                                                       "（问题单元格标红并附批注），保存到此文件夹。")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="审核意见副本的文件名已被其他文件占用时也覆盖。")] = False,
) -> None:
    """审核交回的填报表：勾稽关系、数值、表格是否被改动、单位和年度，以及整批的未报送、重复报送。

    示例：

      nianbao check samples/returns --roster samples/roster.csv --year 2025

      nianbao check samples/faulty --roster samples/roster.csv --year 2025 --annotate 输出/退回

      nianbao check 收到的年报.zip --json > 审核结果.json

    退出码：0 没有错误；1 有错误；2 无法运行。
    """
    from .api import check_batch, write_annotated
    from .jsonout import dumps, result_json
    from .roster import load_roster

    if year is not None:
        check_year(year, 2000)
    ros = load_roster(roster) if roster else None
    if annotate_dir:
        PLANNED.append(f"审核意见副本（{annotate_dir}）")
    with Ticker("审核") as tick:
        result = check_batch(paths, ros, year, progress=tick)
    if not result.reports:
        raise fail("在给出的路径中没有找到任何填报表（.xlsx/.xlsm/.ods/.xls/.et 或 zip）。")
    print_findings(result)
    if annotate_dir:
        done = write_annotated(result.reports, annotate_dir, year=year, inputs=_input_files(paths), overwrite=overwrite)
        say("已生成 {} 份审核意见副本（只为有错误或警告的填报表生成），保存在：{}", len(done.written), annotate_dir)
        for rep, why in done.skipped:
            say("  未生成 {}：{}", rep.provenance.name, why, style="yellow")
    if as_json:
        print(dumps(result_json("check", result.reports, year=year, batch=result.batch)))
    raise typer.Exit(EXIT_PROBLEMS if result.has_errors else EXIT_OK)


def _input_files(paths: list[Path]) -> list[Path]:
    """Every file under the given paths (inputs that no output may replace)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(f for f in p.rglob("*") if f.is_file())
        elif p.exists():
            out.append(p)
    return out


def _split(v: str | None) -> list[str]:
    return [x.strip() for x in (v or "").replace("，", ",").split(",") if x.strip()]


@app.command("consolidate", no_args_is_help=True)
def consolidate_cmd(
    paths: Annotated[list[Path], typer.Argument(help="填报表文件、文件夹或 zip 压缩包，可以有多个。")],
    roster: Annotated[Path, typer.Option("--roster", "-r", help="名册（应报单位）。")],
    year: Annotated[int, typer.Option("--year", "-y", help="报告年度。")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="汇总表文件名（.xlsx），旁边另写 .manifest.json。")],
    units: Annotated[str | None, typer.Option("--units", help="选择汇总：只汇总这些单位代码，用逗号分隔。")] = None,
    exclude: Annotated[str | None, typer.Option("--exclude", help="不汇总这些单位代码，用逗号分隔。")] = None,
    under: Annotated[str | None, typer.Option("--under", help="节点汇总：只汇总该单位及其下级。")] = None,
    summary_name: Annotated[str | None, typer.Option("--summary-name", help="名册中没有汇总单位本身一行时，"
                                                      "汇总单位的名称，例如“锡林浩特市人民政府”。")] = None,
    force: Annotated[bool, typer.Option("--force", help="有错误的填报表也纳入汇总（汇总说明中醒目标注），退出码仍为1。")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="同一单位报送多份时视为错误，不汇总。")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="输出位置已有不是本单位汇总表的文件时也覆盖（输入文件永远不会被覆盖）。")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="在标准输出打印 JSON 结果（与 check 相同的格式，另有 summary）。")] = False,
) -> None:
    """汇总：审核全部填报表，生成汇总表（本身也是一份合格的填报表，可再向上级汇总）。

    示例：

      nianbao consolidate samples/returns --roster samples/roster.csv --year 2025 --out 输出/锡林浩特市汇总.xlsx

      nianbao consolidate samples/returns -r samples/roster.csv -y 2025 --exclude 152502311 -o 输出/汇总.xlsx

    退出码：0 已汇总且汇总范围内没有错误；1 汇总范围内有文件有错误（纳入汇总的有错误时不汇总；加 --force
    仍生成汇总表）；2 无法运行。
    """
    from .api import consolidate, write_summary
    from .check import BatchResult
    from .consolidate import Refused, totals_json
    from .jsonout import dumps, result_json
    from .roster import load_roster
    from .spec import current_format

    check_year(year, current_format().valid_from_year)
    if out_path.suffix.lower() != ".xlsx":
        raise fail(f"汇总表文件名应以 .xlsx 结尾：{out_path}")
    ros = load_roster(roster)
    inputs = _input_files(paths)
    from .outputs import OutputGuard

    OutputGuard(inputs, overwrite).check(out_path, "summary", _guess_top(ros, under), year)  # fail before the work
    PLANNED.append(f"汇总表 {out_path} 及其清单")
    with Ticker("审核") as tick:
        try:
            summary = consolidate(paths, ros, year, units=_split(units), exclude=_split(exclude), under=under,
                                  strict=strict, force=force, summary_name=summary_name, progress=tick)
        except Refused as e:
            print_findings(BatchResult(e.reports))
            if as_json:
                print(dumps(result_json("consolidate", e.reports, year=year, refused={"reason": str(e)},
                                        summary={"units": [s.row() for s in e.statuses]})))
            raise fail(str(e), EXIT_PROBLEMS) from None
    options = {"year": year, "roster": str(roster), "units": _split(units), "exclude": _split(exclude),
               "under": under, "strict": strict, "force": force}
    write_summary(summary, out_path, inputs=inputs, overwrite=overwrite, options=options)
    _report_summary(summary, out_path)
    if as_json:
        reports = [r for s in summary.statuses if s.report for r in (s.report, *s.duplicates)]
        print(dumps(result_json("consolidate", reports, year=year, summary=totals_json(summary),
                                batch=[f for f in summary.findings if not f.file], ok=not summary.has_errors)))
    raise typer.Exit(EXIT_PROBLEMS if summary.has_errors else EXIT_OK)


def _guess_top(ros, under: str | None) -> str:
    root = ros.get(under) if under else ros.root()
    return root.code if root else (under or "")


def _report_summary(summary, out_path: Path) -> None:
    """What a reviewer must know after consolidating: what went in, what did not, and why."""
    rep, tally = summary.report, summary.tally()
    say("已汇总 {} 个单位（{}，{}），保存在：{}", len(summary.included), rep.unit_name, rep.level, out_path)
    say("应报 {} 个，已报送 {} 个，未报送 {} 个。", tally["应报"], tally["已报送"], tally["未报送"])
    if summary.scope.note():
        say("汇总范围：{}。", summary.scope.note(), style="bold yellow")
    missing = [s.name for s in summary.statuses if s.status == "未报送"]
    if missing:
        say("未报送：{}", "、".join(missing))
    for s in summary.statuses:
        if s.duplicates:
            say("重复报送：{}，采用 {}", s.name, s.report.provenance.name)
        elif s.status in ("不在名册", "无法读取", "汇总表（已忽略）"):
            why = {"不在名册": "单位不在名册中", "无法读取": "文件无法读取",
                   "汇总表（已忽略）": "这是本单位以前的汇总表，纳入会重复计数"}[s.status]
            say("未纳入汇总：{}（{}）", s.report.provenance.name if s.report else s.name, why, style="yellow")
    if summary.outside:
        bad = sum(1 for r in summary.outside if any(f.severity == "错误" for f in r.findings))
        say("另有 {} 个文件属于本次汇总范围以外的单位，未纳入，也不影响退出码（其中 {} 个有错误）。", len(summary.outside), bad)
    if not summary.scope.top_in_roster:
        say("名册中没有汇总单位本身一行，汇总单位名称为“{}”；可以用 --summary-name 指定，或在名册中加上这一行。",
            rep.unit_name, style="yellow")
    if summary.forced:
        say("[bold red]注意：[/]有错误的填报表已按 --force 纳入汇总，见汇总说明。")


@app.command("import", no_args_is_help=True)
def import_cmd(
    files: Annotated[list[Path], typer.Argument(
        help="已发布的年报：网页复制的文本（.txt）、网页（.html）或 PDF，也可以是文件夹。")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o",
                                                 help="输出文件夹：每份年报一个填报表 .xlsx 和一个 .json。")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="在标准输出打印读出的数据和审核结果（JSON）。")] = False,
    roster: Annotated[Path | None, typer.Option("--roster", "-r", help="名册：按单位名称（全称、简称、带不带“人民政府”"
                                                 "或县市名）找到单位代码和类型，导入结果可直接用 check -r 审核。")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="单位名称（原文标题中没有时）。")] = None,
    unit_code: Annotated[str | None, typer.Option("--unit-code", help="单位代码（不用名册时指定）。")] = None,
    year: Annotated[int | None, typer.Option("--year", "-y", help="报告年度（原文中没有时）。")] = None,
    unit_type: Annotated[str | None, typer.Option("--unit-type", help="单位类型，如 乡镇、县级部门。")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="允许覆盖输出文件夹中已有的同名文件（默认另起新名）。")] = False,
) -> None:
    """导入并审核已发布的年报：读出表格数据，套用同样的审核规则，核对正文与表格、上下年衔接。

    示例：

      nianbao import samples/published/宝力根苏木2023年政府信息公开工作年度报告.txt --out 输出/导入

      nianbao import 2023年报.html 2024年报.pdf -r samples/roster.csv --json > 输出/审计.json

    退出码：0 没有错误；1 发现错误；2 无法运行。
    """
    from .check import BatchResult
    from .importer import import_published, published_files
    from .jsonout import dumps, result_json
    from .publish import OutputNames, write_imported
    from .roster import load_roster

    paths = published_files(files)
    if not any(p.is_file() for p in paths):
        raise fail("找不到文件：" + "、".join(str(p) for p in paths[:5]))
    ros = load_roster(roster) if roster else None
    with Ticker("导入") as tick:
        reports = import_published(paths, roster=ros, unit=unit, unit_code=unit_code, year=year,
                                   unit_type=unit_type, progress=tick)
    result = BatchResult(reports)
    print_findings(result)
    if out_dir:
        names = OutputNames(out_dir, paths, overwrite=overwrite)
        written = [write_imported(r, out_dir, names)[0] for r in reports if r.readable]
        say("已写出 {} 份填报表和 JSON：{}", len(written), out_dir)
        for p in written[:5]:
            say("  {}", p.name)
    if as_json:
        print(dumps(result_json("import", reports, year=year)))
    raise typer.Exit(EXIT_PROBLEMS if result.has_errors else EXIT_OK)


@app.command("explain")
def explain_cmd(
    code: Annotated[str | None, typer.Argument(help="规则或检查代码，例如 O1、I10、formula-overwritten。")] = None,
) -> None:
    """解释一个审核规则或检查：含义、示例和处理办法。不带代码时列出全部。

    示例：

      nianbao explain O1

      nianbao explain formula-overwritten
    """
    from rich.table import Table

    from .catalogue import entries, explain_text, find

    if code is None:
        table = Table(title="审核规则与检查目录", header_style="bold")
        for col in ("代码", "严重程度", "名称"):
            table.add_column(col)
        for e in entries():
            table.add_row(e.code, e.severity, e.title)
        out.print(table)
        return
    entry = find(code)
    if entry is None:
        raise fail(f"没有代码为“{code}”的规则或检查。用 nianbao explain 查看全部代码。")
    out.print(explain_text(entry), highlight=False)


def check_year(year: int, valid_from: int) -> None:
    if not 2000 <= year <= 2100:
        raise fail(f"报告年度 {year} 不合理，请填写四位年份，例如 2025。")
    if year < valid_from:
        raise fail(f"{year}年度早于本格式的适用年度（{valid_from}年起）。")


# ---------------------------------------------------------------- draft (issue 17)


@app.command("draft", no_args_is_help=True)
def draft_cmd(
    source: Annotated[Path, typer.Argument(help="本年的填报表或汇总表（nianbao 生成的 .xlsx，或另存的 .ods）。")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="年报文稿（Word，.docx）。")],
    html_path: Annotated[Path | None, typer.Option("--html", help="同时生成网页版（.html），可粘贴到网站系统。")] = None,
    prev: Annotated[
        Path | None,
        typer.Option("--prev", help="上年数据，用于同比：上年的填报表或汇总表，或已发布的上年年报（.txt/.html/.pdf）。"),
    ] = None,
    site: Annotated[str | None, typer.Option("--site", help="电子版发布的网站名称及网址；不给时文中留待填写。")] = None,
    name: Annotated[str | None, typer.Option("--name", help="标题和正文中的单位名称（默认取自数据；汇总表为地区名）。")] = None,
    force: Annotated[bool, typer.Option("--force", help="数据有错误时仍生成：首页印有醒目警告，不得发布；退出码为1。")] = False,
) -> None:
    """生成年报文稿：由填报表或汇总表写出 Word 和网页版年报，表格与数据完全一致，正文数字和同比自动填写。

    示例：

      nianbao draft samples/seed-2023/152502201_宝力根苏木_2023年政府信息公开年报.xlsx --out 输出/年报.docx

      nianbao draft 输出/汇总.xlsx --prev 上年汇总.xlsx --out 输出/年报.docx --html 输出/年报.html

    文中【请填写：…】是只有本机关知道的内容，发布前必须全部替换；命令结束时会列出。

    退出码：0 已生成；1 数据有错误，未生成（加 --force 时仍生成，退出码仍为1）；2 无法运行（不是填报表、文件无法读取等）。
    """
    from .draft import (
        DraftOptions,
        build_document,
        carryover_notes,
        placeholders,
        read_previous,
        read_source,
        write_docx,
        write_html,
    )
    from .findings import counts
    from .spec import formats

    if out_path.suffix.lower() != ".docx":
        raise fail(f"--out 应为 .docx 文件：{out_path}")
    if html_path is not None and html_path.suffix.lower() not in (".html", ".htm"):
        raise fail(f"--html 应为 .html 文件：{html_path}")
    report = read_source(source)
    errors = [f for f in report.findings if f.severity == "错误"]
    shown = [f for f in report.findings if f.severity != "提示"]
    for f in shown[:MAX_ROWS]:
        where = f.locate()
        err.print(
            f"[{'bold red' if f.severity == '错误' else 'yellow'}]{f.severity}[/] {where + '：' if where else ''}{f.message}",
            highlight=False,
        )
    if errors and not force:
        raise fail(
            f"{source.name} 有{len(errors)}个错误，未生成年报文稿。请先更正（nianbao check 可生成审核意见副本），"
            "或加 --force 生成带警告的草稿。",
            EXIT_PROBLEMS,
        )
    previous = read_previous(prev) if prev is not None else None
    if previous is not None and previous.year is None and report.year:
        previous.year = report.year - 1  # a published text that never states its year
        err.print(f"[yellow]注意：[/]{prev.name} 中没有读到年度，按{previous.year}年度的数据使用。", highlight=False)
    options = DraftOptions(
        name=name, site=site, errors=tuple(f"{f.locate() + '：' if f.locate() else ''}{f.message}" for f in errors)
    )
    doc = build_document(report, formats()[report.format_id], previous, options)
    write_docx(doc, out_path)
    written = [out_path]
    if html_path is not None:
        write_html(doc, html_path)
        written.append(html_path)
    err.print(f"已生成{report.year}年度年报文稿（{doc.unit_name}）：{'、'.join(str(p) for p in written)}", highlight=False)
    for note in doc.notes:
        err.print(f"[yellow]注意：[/]{note}", highlight=False)
    if previous is not None:
        for f in carryover_notes(report, previous):
            err.print(f"[yellow]与上年核对：[/]{f.locate() + '：' if f.locate() else ''}{f.message}", highlight=False)
    pending = [p for p in placeholders(doc) if p.kind == "请填写"]
    if pending:
        err.print(f"文稿中还有{len(pending)}处【请填写：…】（黄色标出），发布前必须替换：", highlight=False)
        for p in pending:
            err.print(f"  {p.short()}", highlight=False)
    if errors:
        c = counts(report.findings)
        err.print(f"[bold red]警告：[/]数据有{c['错误']}个错误，本稿已按 --force 生成，首页印有警告，不得发布。", highlight=False)
        raise typer.Exit(EXIT_PROBLEMS)


_USAGE_ZH = (
    ("No such option", "没有这个选项"),
    ("Missing option", "缺少必填选项"),
    ("Missing argument", "缺少必填参数"),
    ("Got unexpected extra argument", "多了参数"),
    ("is not a valid integer", "不是有效的整数"),
    ("Invalid value for", "取值无效"),
    ("Input should be a valid integer, unable to parse string as an integer", "应为整数"),
    ("Input should be a valid integer", "应为整数"),
    ("Possible options", "可用选项"),
    ("Option", "选项"),
    ("requires an argument", "需要一个值"),
    ("does not exist", "不存在"),
    ("No such command", "没有这个命令"),
)


def _zh_usage(message: str) -> str:
    for en, zh in _USAGE_ZH:
        message = message.replace(en, zh)
    return message


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop like Ctrl-C (workers killed, nothing half-written), exit 143."""


_SIGNALLED: list[int] = []


def _on_sigterm(signum: int, frame: object) -> None:
    _SIGNALLED.append(signum)
    raise Terminated()


def _interrupted(code: int) -> int:
    from .fileio import WRITTEN

    written = [p for p in WRITTEN]
    head = "已中断" if code == 130 else "已终止"
    if written:
        shown = "、".join(str(p) for p in written[:5]) + (f"等{len(written)}个" if len(written) > 5 else "")
        say(head + "。已完整写出：{}。", shown)
    else:
        say(head + "。没有写出任何文件。")
    if PLANNED:
        say("未完成：{}（没有留下写了一半的文件）。", "；".join(PLANNED))
    return code


def main() -> None:
    """Console entry point: Chinese messages and documented exit codes, never a traceback."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on, Ctrl-C unwinds cleanly
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        rv = app(standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
        if code == 130:  # typer turns KeyboardInterrupt (Ctrl-C, or our SIGTERM handler) into exit 130
            code = _interrupted(143 if _SIGNALLED else 130)
    except NianbaoError as e:
        say("[bold red]错误：[/]{}", e)
        code = EXIT_CANNOT_RUN
    except typer.Exit as e:
        code = e.exit_code
    except typer.Abort:
        say("已取消。")
        code = EXIT_CANNOT_RUN
    except Terminated:
        code = _interrupted(143)
    except KeyboardInterrupt:
        code = _interrupted(130)
    except OSError as e:  # a folder that cannot be written, a full disk, a vanished file
        where = f"：{e.filename}" if getattr(e, "filename", None) else ""
        say("[bold red]错误：[/]无法读写文件{}（{}）。请检查路径、权限和磁盘空间。", where, e.strerror or e)
        code = EXIT_CANNOT_RUN
    except Exception as e:  # usage errors of the vendored Click, and anything unexpected
        code = _unexpected(e)
    if code in (130, 143):  # interrupted: the workers are gone and every output is whole; end now,
        sys.stdout.flush()  # so that no late signal during interpreter shutdown turns 130 into -2
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _unexpected(e: Exception) -> int:
    if hasattr(e, "format_message") and hasattr(e, "exit_code"):
        ctx = getattr(e, "ctx", None)
        hint = f"（用 {ctx.command_path} --help 查看用法）" if ctx is not None else ""
        say("[bold red]参数有误：[/]{}{}", _zh_usage(e.format_message()), hint)
        return EXIT_CANNOT_RUN
    if os.environ.get("NIANBAO_DEBUG"):
        raise e
    say("[bold red]内部错误：[/]{}: {}。请把命令和输入文件反馈给开发者。", type(e).__name__, e)
    return EXIT_CANNOT_RUN


if __name__ == "__main__":  # pragma: no cover
    main()
