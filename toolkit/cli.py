"""`nianbao` command line: parse options, call the library, print. Nothing else.

Exit codes: 0 fine; 1 problems (错误) found in the inputs; 2 could not run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

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
except (ImportError, AttributeError):  # pragma: no cover - layout of typer changed
    pass

err = Console(stderr=True)
out = Console()

app = typer.Typer(
    name="nianbao",
    help=(
        "政府信息公开工作年度报告（国办公开办函〔2021〕30号格式）：生成锁定的填报模板、审核回收的填报表、汇总。\n\n"
        "示例：\n\n"
        "  nianbao template --roster samples/roster.csv --year 2025 --out 输出/模板\n\n"
        "  nianbao check samples/faulty --roster samples/roster.csv --year 2025 --annotate 输出/退回\n\n"
        "  nianbao consolidate samples/returns --roster samples/roster.csv --year 2025 --out 输出/汇总.xlsx\n\n"
        "  nianbao import samples/published/宝力根苏木2023年政府信息公开工作年度报告.txt\n\n"
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
    err.print(f"[bold red]错误：[/]{message}", highlight=False)
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
) -> None:
    """生成锁定的填报模板：每个单位一个 .xlsx 文件。

    示例：

      nianbao template --roster samples/roster.csv --year 2025 --out 模板

      nianbao template --unit-code 152502201 --unit-name 宝力根苏木 --unit-type 苏木 --year 2025 --out 模板
    """
    from .roster import load_roster, validate_single_unit
    from .spec import current_format
    from .template import generate_templates

    fmt = current_format()
    check_year(year, fmt.valid_from_year)
    if roster and (unit_code or unit_name):
        raise fail("--roster 与 --unit-code/--unit-name 只能选一种。")
    if roster:
        units = list(load_roster(roster).units)
    elif unit_code and unit_name:
        units = [validate_single_unit(unit_code, unit_name, unit_type)]
    else:
        raise fail("请用 --roster 指定名册，或用 --unit-code 和 --unit-name 指定一个单位。")
    with progress_bar(len(units), "生成模板") as bar:
        task = bar.add_task("", total=len(units))
        paths = generate_templates(fmt, units, year, out_dir, progress=lambda: bar.advance(task))
    err.print(f"已生成 {len(paths)} 个{year}年度填报模板，保存在：{out_dir}", highlight=False)
    for p in paths[:5]:
        err.print(f"  {p.name}", highlight=False)
    if len(paths) > 5:
        err.print(f"  ……共 {len(paths)} 个", highlight=False)


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


def print_findings(result) -> None:
    """The reviewer's view: one line per file, then every finding with its location."""
    from rich.table import Table

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
        verdict = "[red]退回[/]" if c["错误"] else ("[yellow]需说明[/]" if c["警告"] else "[green]通过[/]")
        unit = f"{r.unit_name}（{r.unit_code}）" if r.unit_code else "—"
        files.add_row(r.provenance.name, unit, str(c["错误"]), str(c["警告"]), str(c["提示"]), verdict)
    err.print(files)
    rows = [f for r in result.reports for f in r.findings]
    if len(rows) > MAX_ROWS:
        err.print(f"问题共 {len(rows)} 条，下面只列出前 {MAX_ROWS} 条，完整清单请用 --json 或 --annotate。")
    if rows:
        table = Table(title="问题清单", show_lines=True, header_style="bold")
        for col, ratio in (("级别", 1), ("文件", 3), ("位置", 4), ("问题", 6)):
            table.add_column(col, ratio=ratio, overflow="fold")
        style = {"错误": "bold red", "警告": "yellow", "提示": "cyan"}
        for f in rows[:MAX_ROWS]:
            table.add_row(f"[{style.get(f.severity, '')}]{f.severity}[/]", f.file, f.locate() or "整个文件",
                          f"{f.message}\n[dim]{f.instruction}[/]")
        err.print(table)
    total = counts(rows)
    err.print(f"共 {len(result.reports)} 个文件：错误 {total['错误']} 个，警告 {total['警告']} 个，提示 {total['提示']} 个。",
              highlight=False)


@app.command("check", no_args_is_help=True)
def check_cmd(
    paths: Annotated[list[Path], typer.Argument(help="填报表文件、文件夹或 zip 压缩包，可以有多个。")],
    roster: Annotated[Path | None, typer.Option("--roster", "-r", help="名册：核对单位代码和名称。")] = None,
    year: Annotated[int | None, typer.Option("--year", "-y", help="报告年度：核对是否误发往年文件。")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="在标准输出打印 JSON 审核报告（格式见 README）。")] = False,
    annotate_dir: Annotated[Path | None, typer.Option("--annotate", help="为有问题的填报表生成“审核意见”副本"
                                                       "（问题单元格标红并附批注），保存到此文件夹。")] = None,
) -> None:
    """审核交回的填报表：勾稽关系、数值、表格是否被改动、单位和年度。

    示例：

      nianbao check samples/returns --roster samples/roster.csv --year 2025

      nianbao check samples/faulty --roster samples/roster.csv --year 2025 --annotate 输出/退回

      nianbao check 收到的年报.zip --json > 审核结果.json

    退出码：0 没有错误；1 有错误；2 无法运行。
    """
    import json

    from .check import BatchResult, CheckOptions, iter_checked, to_json
    from .findings import fmt_num
    from .roster import load_roster

    opts = CheckOptions(year=year, roster=load_roster(roster) if roster else None)
    if year is not None:
        check_year(year, 2000)
    result, written = BatchResult(), []
    with Ticker("审核") as tick:
        for report, annotated in iter_checked(paths, opts, progress=tick, annotate_dir=annotate_dir):
            result.reports.append(report)
            if annotated:
                written.append(annotated)
    if not result.reports:
        raise fail("在给出的路径中没有找到任何填报表（.xlsx/.xlsm/.ods/.xls/.et 或 zip）。")
    print_findings(result)
    if annotate_dir:
        err.print(f"已生成 {len(written)} 份审核意见副本，保存在：{annotate_dir}", highlight=False)
    if as_json:
        print(json.dumps(to_json(result, opts), ensure_ascii=False, indent=2, default=fmt_num))
    raise typer.Exit(EXIT_PROBLEMS if result.has_errors else EXIT_OK)


@app.command("consolidate", no_args_is_help=True)
def consolidate_cmd(
    paths: Annotated[list[Path], typer.Argument(help="填报表文件、文件夹或 zip 压缩包，可以有多个。")],
    roster: Annotated[Path, typer.Option("--roster", "-r", help="名册（应报单位）。")],
    year: Annotated[int, typer.Option("--year", "-y", help="报告年度。")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="汇总表文件名（.xlsx），旁边另写 .manifest.json。")],
    units: Annotated[str | None, typer.Option("--units", help="选择汇总：只汇总这些单位代码，用逗号分隔。")] = None,
    exclude: Annotated[str | None, typer.Option("--exclude", help="不汇总这些单位代码，用逗号分隔。")] = None,
    under: Annotated[str | None, typer.Option("--under", help="节点汇总：只汇总该单位及其下级。")] = None,
    force: Annotated[bool, typer.Option("--force", help="有错误的填报表也纳入汇总（汇总说明中醒目标注），退出码仍为1。")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="同一单位报送多份时视为错误，不汇总。")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="在标准输出打印汇总数和报送情况（JSON）。")] = False,
) -> None:
    """汇总：审核全部填报表，生成汇总表（本身也是一份合格的填报表，可再向上级汇总）。

    示例：

      nianbao consolidate samples/returns --roster samples/roster.csv --year 2025 --out 输出/锡林浩特市汇总.xlsx

      nianbao consolidate samples/returns -r samples/roster.csv -y 2025 --exclude 152502311 -o 输出/汇总.xlsx

    退出码：0 已汇总且没有错误；1 有文件有错误（纳入汇总的有错误时不汇总；加 --force，
    或有错误的文件未纳入时，仍生成汇总表）；2 无法运行。
    """
    import datetime as dt
    import json

    from .check import BatchResult, CheckOptions, iter_checked
    from .consolidate import Refused, consolidate, totals_json
    from .findings import fmt_num
    from .roster import load_roster
    from .spec import current_format
    from .summary_writer import manifest, write_manifest, write_summary

    fmt = current_format()
    check_year(year, fmt.valid_from_year)
    if out_path.suffix.lower() != ".xlsx":
        raise fail(f"汇总表文件名应以 .xlsx 结尾：{out_path}")
    ros = load_roster(roster)
    opts = CheckOptions(year=year, roster=ros)
    with Ticker("审核") as tick:
        result = BatchResult([report for report, _ in iter_checked(paths, opts, progress=tick)])
    if not result.reports:
        raise fail("在给出的路径中没有找到任何填报表（.xlsx/.xlsm/.ods/.xls/.et 或 zip），未生成汇总表。")

    def split(v: str | None) -> list[str]:
        return [x.strip() for x in (v or "").replace("，", ",").split(",") if x.strip()]

    try:
        summary = consolidate(fmt, result.reports, ros, year, units=split(units), exclude=split(exclude),
                              under=under, strict=strict, force=force)
    except Refused as e:
        print_findings(result)
        raise fail(str(e), EXIT_PROBLEMS) from None
    created = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    write_summary(out_path, summary, created)
    man_path = out_path.with_name(out_path.stem + ".manifest.json")
    options = {"year": year, "roster": str(roster), "units": split(units), "exclude": split(exclude),
               "under": under, "strict": strict, "force": force}
    write_manifest(man_path, manifest(summary, created, options))
    rep = summary.report
    err.print(f"已汇总 {len(summary.included)} 个单位（{rep.unit_name}，{rep.level}），保存在：{out_path}", highlight=False)
    missing = [s.name for s in summary.statuses if s.status == "未报送"]
    if missing:
        err.print(f"未报送：{'、'.join(missing)}", highlight=False)
    for s in summary.statuses:
        if s.duplicates:
            err.print(f"重复报送：{s.name}，采用 {s.report.provenance.name}", highlight=False)  # type: ignore[union-attr]
    if summary.forced:
        err.print("[bold red]注意：[/]有错误的填报表已按 --force 纳入汇总，见汇总说明。", highlight=False)
    if as_json:
        print(json.dumps(totals_json(summary), ensure_ascii=False, indent=2, default=fmt_num))
    if result.has_errors and not summary.forced:
        err.print("注意：有的文件有错误但未纳入汇总（无法读取、不在名册等），见“报送情况”和“问题清单”。", highlight=False)
    raise typer.Exit(EXIT_PROBLEMS if result.has_errors else EXIT_OK)


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
    import json

    from .check import BatchResult
    from .findings import fmt_num
    from .importer import import_published, published_files, report_json
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
        err.print(f"已写出 {len(written)} 份填报表和 JSON：{out_dir}", highlight=False)
        for p in written[:5]:
            err.print(f"  {p.name}", highlight=False)
    if as_json:
        print(json.dumps([report_json(r) for r in reports], ensure_ascii=False, indent=2, default=fmt_num))
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


def main() -> None:
    """Console entry point: Chinese messages and documented exit codes, never a traceback."""
    try:
        rv = app(standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except NianbaoError as e:
        err.print(f"[bold red]错误：[/]{e}", highlight=False)
        code = EXIT_CANNOT_RUN
    except typer.Exit as e:
        code = e.exit_code
    except typer.Abort:
        err.print("已取消。")
        code = EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        err.print("已中断。")
        code = 130
    except OSError as e:  # a folder that cannot be written, a full disk, a vanished file
        where = f"：{e.filename}" if getattr(e, "filename", None) else ""
        err.print(f"[bold red]错误：[/]无法读写文件{where}（{e.strerror or e}）。请检查路径、权限和磁盘空间。", highlight=False)
        code = EXIT_CANNOT_RUN
    except Exception as e:  # usage errors of the vendored Click, and anything unexpected
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):
            ctx = getattr(e, "ctx", None)
            hint = f"（用 {ctx.command_path} --help 查看用法）" if ctx is not None else ""
            err.print(f"[bold red]参数有误：[/]{_zh_usage(e.format_message())}{hint}", highlight=False)
            code = EXIT_CANNOT_RUN
        else:
            if os.environ.get("NIANBAO_DEBUG"):
                raise
            err.print(f"[bold red]内部错误：[/]{type(e).__name__}: {e}。请把命令和输入文件反馈给开发者。",
                      highlight=False)
            code = EXIT_CANNOT_RUN
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
