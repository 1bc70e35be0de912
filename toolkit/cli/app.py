"""The `nianbao` application: the typer app, Chinese help, the consoles and the helpers every
command uses (messages, progress, tables of findings), and the entry point with its exit codes.

Exit codes: 0 fine; 1 problems (错误) found in the inputs; 2 could not run; 130 interrupted (Ctrl-C),
143 stopped by SIGTERM.
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import __version__
from ..errors import NianbaoError

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
# What the running command has done for good besides files (e.g. files stored in the archive), for Ctrl-C.
DONE: list[str] = []
_CONTROL = dict.fromkeys([*range(0, 9), *range(11, 32), 127, *range(0x80, 0xA0)], None)
_CONTROL_CHARS = re.compile("[" + "".join(f"\\x{c:02x}" for c in _CONTROL) + "]")  # any one of them, found in C


def clean(text: object) -> str:
    """Text from files (names, cells, published pages) made safe for a terminal: control and
    escape characters are shown as their codes, never executed (a name with ESC[2J)."""
    s = str(text)
    if not _CONTROL_CHARS.search(s):
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
        "政府信息公开工作年度报告（国办公开办函〔2021〕30号格式）：生成锁定的填报模板、审核回收的填报表、汇总，"
        "档案库记住一年的回收和上一年的数字，报送网页供各单位上传，写出年报文稿，审计已发布的年报。\n\n"
        "示例：\n\n"
        "  nianbao template --roster samples/roster.csv --year 2025 --out 输出/模板\n\n"
        "  nianbao check samples/faulty --roster samples/roster.csv --year 2025 --annotate 输出/退回\n\n"
        "  nianbao consolidate samples/returns --roster samples/roster.csv --year 2025 --out 输出/汇总.xlsx\n\n"
        "  nianbao receive 收到的年报 --year 2025（存入档案库；另见 roster load、status、accept、reject）\n\n"
        "  nianbao import samples/published/宝力根苏木2023年政府信息公开工作年度报告.txt\n\n"
        "  nianbao draft 输出/汇总.xlsx --out 输出/年报.docx --html 输出/年报.html\n\n"
        "  nianbao serve --year 2025（报送网页；各单位的专用链接用 nianbao links 生成）\n\n"
        "  nianbao audit tests/published --out 输出/审计.xlsx\n\n"
        "  nianbao explain O1\n\n"
        "退出码：0 正常；1 发现错误；2 无法运行（参数错误、文件无法读取等）；130 被 Ctrl-C 中断；143 被终止（SIGTERM）。"
    ),
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def progress_bar(total: int, label: str) -> Progress:
    """A rich progress bar on stderr; invisible when there is little to do or no terminal."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=total < 5,
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
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="显示版本号后退出。")] = False,
) -> None:
    """政府信息公开工作年度报告工具。"""


class Ticker:
    """Progress adapter for library calls: they report the total first, then -1 per finished item."""

    def __init__(self, label: str):
        self.label = label
        self.bar: Progress | None = None
        self.task = None
        self._done = 0  # finished items not yet shown
        self._shown_at = 0.0

    def __call__(self, n: int) -> None:
        if n >= 0:
            self.close()
            self.bar = progress_bar(n, self.label)
            self.bar.start()
            self.task = self.bar.add_task("", total=n)
            self._shown_at = time.monotonic()
        elif self.bar is not None and self.task is not None:
            # shown at most 20 times a second (the bar redraws 10): 10,000 returns are 10,000 calls
            self._done += 1
            if time.monotonic() - self._shown_at >= 0.05:
                self._flush()

    def _flush(self) -> None:
        if self.bar is not None and self.task is not None and self._done:
            self.bar.advance(self.task, self._done)
        self._done, self._shown_at = 0, time.monotonic()

    def close(self) -> None:
        if self.bar is not None:
            self._flush()
            self.bar.stop()
            self.bar = None

    def __enter__(self) -> Ticker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _verdict(findings) -> str:
    from ..api import counts

    c = counts(findings)
    return "[red]退回[/]" if c["错误"] else ("[yellow]需说明[/]" if c["警告"] else "[green]通过[/]")


def unit_label(r) -> str:
    """A report's unit as people know it: name and code (never a key invented for a published report)."""
    from ..api import is_invented_code

    return f"{r.unit_name}（{r.unit_code}）" if r.unit_code and not is_invented_code(r.unit_code) else r.unit_name or "—"


def print_findings(result) -> None:
    """The reviewer's view: one line per file, then every finding with its location."""
    from rich.table import Table
    from rich.text import Text

    from ..api import counts

    files = Table(title="审核结果", show_lines=False, header_style="bold")
    for col in ("文件", "单位", "错误", "警告", "提示", "结论"):
        files.add_column(col, overflow="fold")
    shown = result.reports
    if len(shown) > MAX_ROWS:  # a city or province: list the files that need attention
        shown = [r for r in shown if any(f.severity != "提示" for f in r.findings)][:MAX_ROWS]
        files.caption = f"共 {len(result.reports)} 个文件，只列出有错误或警告的前 {len(shown)} 个；完整结果请用 --json。"
    for r in shown:
        c = counts(r.findings)
        unit = unit_label(r)
        files.add_row(
            Text(clean(r.provenance.name)),
            Text(clean(unit)),
            str(c["错误"]),
            str(c["警告"]),
            str(c["提示"]),
            _verdict(r.findings),
        )
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
            table.add_row(
                Text(f.severity, style=style.get(f.severity, "")),
                Text(clean(f.file or "（整批）")),
                Text(clean(f.locate() or "整个文件")),
                problem,
            )
        err.print(table)
    total = counts(rows)
    say("共 {} 个文件：错误 {} 个，警告 {} 个，提示 {} 个。", len(result.reports), total["错误"], total["警告"], total["提示"])


def check_year(year: int, valid_from: int) -> None:
    if not 2000 <= year <= 2100:
        raise fail(f"报告年度 {year} 不合理，请填写四位年份，例如 2025。")
    if year < valid_from:
        raise fail(f"{year}年度早于本格式的适用年度（{valid_from}年起）。")


def plausible_year(year: int | None) -> int | None:
    """Callback of a ``--year`` option: a year no archive can hold (99999999999999999999, -5) is
    refused while parsing, in Chinese with exit code 2, before any database is asked about it."""
    if year is not None:
        check_year(year, 2000)
    return year


# Every command that reads or changes a whole year of the archive (status, accept --all-clean, export, links,
# consolidate, draft, template …) limits itself to one county with the one --under option (issue 31); a
# county's clerk on a city's archive can set NIANBAO_UNDER once instead of writing it every time.
UNDER_ENV = "NIANBAO_UNDER"
UnderOption = Annotated[
    str | None,
    typer.Option(
        "--under",
        envvar=UNDER_ENV,
        show_envvar=False,
        help=(
            "只对该单位及其下级单位（一个档案库有多个县时只管一个县，例如 --under 152502；也可写名册中的单位名称；"
            f"写一个没有下级的单位时只对这一个单位）。不写时取环境变量 {UNDER_ENV}，否则为全部单位。"
        ),
    ),
]


# ---------------------------------------------------------------- draft (issue 17)


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


def _on_stop(signum: int, frame: object) -> None:
    """Ctrl-C or SIGTERM. The first stops the command; any more while it cleans up (workers killed,
    staging folders removed, the message printed) are absorbed, so that the cleanup is never cut
    short and the traceback of a second KeyboardInterrupt never shows."""
    import signal

    if _SIGNALLED:
        return
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


def _stop_swallowed(unraisable: Any) -> None:
    """``sys.unraisablehook``: a stop that landed inside code Python cannot interrupt (a weakref
    callback of the import machinery, a finaliser) was swallowed there, traceback printed and the
    command going on. It is sent again a moment later, to land in the command's own code; anything
    else goes to Python's own hook."""
    import threading

    if not (isinstance(unraisable.exc_value, KeyboardInterrupt) and _SIGNALLED):
        sys.__unraisablehook__(unraisable)
        return
    signum = _SIGNALLED.pop()  # the next delivery raises again
    threading.Timer(0.01, os.kill, (os.getpid(), signum)).start()


def _stop_code(e: BaseException | None = None) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (the first signal decides)."""
    import signal

    if isinstance(e, Terminated) or (_SIGNALLED and _SIGNALLED[0] != signal.SIGINT):
        return 143
    return 130


def _interrupted(code: int) -> int:
    from ..api import WRITTEN, remove_staging

    remove_staging()
    written = [p for p in WRITTEN]
    head = "已中断" if code == 130 else "已终止"
    if written:
        shown = "、".join(str(p) for p in written[:5]) + (f"等{len(written)}个" if len(written) > 5 else "")
        say(head + "。已完整写出：{}。", shown)
    elif not DONE:
        say(head + "。没有写出任何文件。")
    for done in DONE:
        say(head + "。{}", done)
    if PLANNED:
        say("未完成：{}（没有留下写了一半的文件）。", "；".join(PLANNED))
    return code


def run(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code; every failure becomes a Chinese message and a
    documented code, never a traceback. The tests call this in-process; ``main`` adds the process part."""
    from ..api import WRITTEN, remove_staging

    PLANNED.clear()
    DONE.clear()
    WRITTEN.clear()
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="nianbao")
        code = rv if isinstance(rv, int) else 0
        if code == 130:  # typer turns KeyboardInterrupt (Ctrl-C, or our SIGTERM handler) into exit 130
            code = _interrupted(_stop_code())
    except NianbaoError as e:
        say("[bold red]错误：[/]{}", e)
        code = EXIT_CANNOT_RUN
    except typer.Exit as e:
        code = e.exit_code
    except typer.Abort:
        say("已取消。")
        code = EXIT_CANNOT_RUN
    except KeyboardInterrupt as e:  # Terminated included
        code = _interrupted(_stop_code(e))
    except OSError as e:  # a folder that cannot be written, a full disk, a vanished file
        where = f"：{e.filename}" if getattr(e, "filename", None) else ""
        say("[bold red]错误：[/]无法读写文件{}（{}）。请检查路径、权限和磁盘空间。", where, e.strerror or e)
        code = EXIT_CANNOT_RUN
    except Exception as e:  # usage errors of the vendored Click, and anything unexpected
        code = _unexpected(e)
    finally:
        remove_staging()  # a staging folder a signal left where no `with` covered it yet
    return code


def main() -> None:
    """Console entry point: Ctrl-C and SIGTERM stop cleanly at any moment, then the exit code of
    ``run``. Until here ``toolkit.entry`` handled them (nothing could have been written yet)."""
    import signal

    code = EXIT_CANNOT_RUN
    try:
        _SIGNALLED.clear()
        sys.unraisablehook = _stop_swallowed
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _on_stop)
        code = run()
    except KeyboardInterrupt as e:  # landed before run's own `try`, or while it returned
        code = _interrupted(_stop_code(e))
    except SystemExit as e:  # serve: uvicorn could not start after all (exit 3, as uvicorn.run)
        code = e.code if isinstance(e.code, int) else EXIT_OK if e.code is None else EXIT_CANNOT_RUN
    finally:
        # Done: every output is whole and the workers are gone. End now, ignoring Ctrl-C and SIGTERM
        # (process-wide: a signal may land on another thread), so that one arriving during the last
        # flush cannot raise here or turn the exit code into -2.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe: the exit code still tells
            pass
        os._exit(code)


def _missing(ctx) -> str:  # type: ignore[no-untyped-def]
    """What a command run without arguments lacks, from its own help: 'check' → '要处理的填报表文件、
    文件夹或 zip 压缩包'; options by name ('--year（报告年度）')."""
    parts = []
    for p in ctx.command.params if ctx is not None else ():
        if not p.required:
            continue
        first = re.split(r"[，。：（(]", getattr(p, "help", None) or "", maxsplit=1)[0].strip()
        if getattr(p, "param_type_name", "") == "argument":
            parts.append(first or p.human_readable_name)
        else:
            parts.append(f"{p.opts[0]}（{first}）" if first else p.opts[0])
    return "；".join(parts)


def _unexpected(e: Exception) -> int:
    if type(e).__name__ == "NoArgsIsHelpError":  # typer has shown the help (with its examples) above
        ctx = getattr(e, "ctx", None)
        if ctx is not None and hasattr(ctx.command, "commands"):
            first = next(iter(ctx.command.commands), "")
            say("[bold red]缺少命令：[/]请从上面列出的命令中选一个，例如 {} {} --help。", ctx.command_path, first)
        else:
            say("[bold red]缺少参数：[/]{}。请按上面的用法和示例给出。", _missing(ctx) or "没有给出要处理的内容")
        return EXIT_CANNOT_RUN
    if hasattr(e, "format_message") and hasattr(e, "exit_code"):
        ctx = getattr(e, "ctx", None)
        hint = f"（用 {ctx.command_path} --help 查看用法）" if ctx is not None else ""
        say("[bold red]参数有误：[/]{}{}", _zh_usage(e.format_message()), hint)
        return EXIT_CANNOT_RUN
    if os.environ.get("NIANBAO_DEBUG"):
        raise e
    if type(e).__module__.startswith("sqlalchemy"):  # the archive's server went away, or stayed busy too long
        detail = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        say("[bold red]错误：[/]档案库操作失败（{}）。已完成的部分已保存，没有完成的部分没有写入；请稍后重试。", detail)
        return EXIT_CANNOT_RUN
    say("[bold red]内部错误：[/]{}: {}。请把命令和输入文件反馈给开发者。", type(e).__name__, e)
    return EXIT_CANNOT_RUN
