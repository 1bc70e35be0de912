"""Commands on published reports: import them, audit them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import EXIT_OK, EXIT_PROBLEMS, Ticker, app, fail, plausible_year, print_findings, say

StoreOption = Annotated[
    str | None,
    typer.Option("--db", help="存入档案库，作为该年度的报告（例如上年已发布的年报，供今年跨年度核对）；需先导入该年度名册。"),
]


@app.command("import", no_args_is_help=True, rich_help_panel="已发布的年报")
def import_cmd(
    files: Annotated[
        list[Path], typer.Argument(help="已发布的年报：网页复制的文本（.txt）、网页（.html）或 PDF，也可以是文件夹。")
    ],
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="输出文件夹：每份年报一个填报表 .xlsx 和一个 .json。")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="在标准输出打印读出的数据和审核结果（JSON）。")] = False,
    roster: Annotated[
        Path | None,
        typer.Option(
            "--roster",
            "-r",
            help="名册：按单位名称（全称、简称、带不带“人民政府”或县市名）找到单位代码和类型，导入结果可直接用 check -r 审核。",
        ),
    ] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="单位名称（原文标题中没有时）。")] = None,
    unit_code: Annotated[str | None, typer.Option("--unit-code", help="单位代码（不用名册时指定）。")] = None,
    year: Annotated[int | None, typer.Option("--year", "-y", help="报告年度（原文中没有时）。", callback=plausible_year)] = None,
    unit_type: Annotated[str | None, typer.Option("--unit-type", help="单位类型，如 乡镇、县级部门。")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="允许覆盖输出文件夹中已有的同名文件（默认另起新名）。")] = False,
    db: StoreOption = None,
) -> None:
    """导入并审核已发布的年报：读出表格数据，套用同样的审核规则，核对正文与表格、上下年衔接。

    示例：

      nianbao import samples/published/宝力根苏木2023年政府信息公开工作年度报告.txt --out 输出/导入

      nianbao import 2023年报.html 2024年报.pdf -r samples/roster.csv --json > 输出/审计.json

      nianbao import 2024年报/ --db nianbao.db -r samples/roster.csv

    退出码：0 没有错误；1 发现错误；2 无法运行。
    """
    from ..api import BatchResult, OutputNames, dumps, import_published, load_roster, published_files, result_json, write_imported

    paths = published_files(files)
    if not any(p.is_file() for p in paths):
        raise fail("找不到文件：" + "、".join(str(p) for p in paths[:5]))
    ros = load_roster(roster) if roster else None
    with Ticker("导入") as tick:
        reports = import_published(
            paths, roster=ros, unit=unit, unit_code=unit_code, year=year, unit_type=unit_type, progress=tick
        )
    result = BatchResult(reports)
    _store(db, reports)
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


SHOW_SKIPPED = 30  # files passed over, named one by one on the console (all of them in the workbook)


@app.command("audit", no_args_is_help=True, rich_help_panel="已发布的年报")
def audit_cmd(
    paths: Annotated[
        list[Path],
        typer.Argument(help="已发布的年报：文本（.txt）、网页（.html）、PDF，或包含它们的文件夹、zip 压缩包，可给多个。"),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="审计结果工作簿（.xlsx）：总览、问题、跨年、文字与表格。")],
    roster: Annotated[
        Path | None, typer.Option("--roster", "-r", help="名册：按单位名称找到单位代码和类型（同一单位的不同年度据此配对）。")
    ] = None,
    year: Annotated[
        int | None, typer.Option("--year", "-y", help="只审计这一年度：其他年度的年报会报“年度不符”。", callback=plausible_year)
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="并行读取的进程数（默认按CPU核数；0 表示不另起进程，在本进程中读取）。")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="允许覆盖已有的同名文件。")] = False,
    db: StoreOption = None,
) -> None:
    """审计成批的已发布年报：逐份导入并审核，核对正文与表格、上下年衔接，写出一个审计工作簿。

    示例：

      nianbao audit tests/published --out 输出/审计.xlsx

      nianbao audit 2023年报.zip 2024年报/ -r samples/roster.csv --out 输出/审计.xlsx

    加 --db 时，读出的年报作为各年度已公布的数字存入档案库，下一年度审核时用于上下年核对。

    退出码：0 没有错误；1 发现错误；2 无法运行。
    """
    from ..api import audit, counts, load_roster, not_read, write_audit

    ros = load_roster(roster) if roster else None
    with Ticker("审计") as tick:
        result = audit(paths, ros, year, progress=tick, workers=workers)
    skipped = not_read(result)
    for s in skipped[:SHOW_SKIPPED]:
        say("已跳过 {}：{}", s.name, s.reason)
    if len(skipped) > SHOW_SKIPPED:
        say("……另有 {} 个文件已跳过（审计工作簿的“跳过”表列出全部）。", len(skipped) - SHOW_SKIPPED)
    if not result.reports:
        raise fail("没有找到年报文件（.txt .htm .html .shtml .pdf，或含有它们的 .zip）：" + "、".join(str(p) for p in paths[:5]))
    written = write_audit(result, out, inputs=paths, overwrite=overwrite)
    _store(db, [r for r in result.reports if r.readable])
    total = counts(result.findings)
    say(
        "共 {} 份年报，{} 份读不出表格；错误 {} 个，警告 {} 个，提示 {} 个；{} 个单位有上下年可核对。",
        len(result.reports),
        sum(1 for r in result.reports if not r.readable),
        total["错误"],
        total["警告"],
        total["提示"],
        len(result.pairs()),
    )
    if skipped:
        say("另有 {} 个文件没有审计（见上，并列在审计工作簿的“跳过”表中）。", len(skipped))
    say("审计结果已写出：{}", written)
    raise typer.Exit(EXIT_PROBLEMS if result.has_errors else EXIT_OK)


def _store(db: str | None, reports) -> None:  # type: ignore[no-untyped-def]
    """With --db: keep the imported reports in the archive, each under its own year."""
    if db is None:
        return
    from ..api import Archive

    with Archive.open(db) as archive:
        got = archive.store_imported(reports)
    new = [r for r in got if not r.previous_at]
    say("已存入档案库 {} 份（另有 {} 份以前已存入，未改动）。", len(new), len(got) - len(new))
