"""Commands of the collection: templates out, returns checked, the summary made."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import EXIT_OK, EXIT_PROBLEMS, PLANNED, Ticker, UnderOption, app, check_year, fail, say
from .batch_view import ACTION_ROWS, MORE, VerboseOption, compact, show_findings


@app.command("template", no_args_is_help=True, rich_help_panel="填报、审核与汇总")
def template_cmd(
    year: Annotated[int, typer.Option("--year", "-y", help="报告年度，例如 2025。")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="输出文件夹（不存在时自动创建）。")],
    roster: Annotated[
        Path | None,
        typer.Option("--roster", "-r", help="名册文件（.csv 或 .xlsx），列：单位代码、单位名称、单位类型、上级代码。"),
    ] = None,
    unit_code: Annotated[str | None, typer.Option("--unit-code", help="只为一个单位生成：单位代码。")] = None,
    unit_name: Annotated[str | None, typer.Option("--unit-name", help="只为一个单位生成：单位名称。")] = None,
    unit_type: Annotated[str, typer.Option("--unit-type", help="只为一个单位生成：单位类型。")] = "乡镇",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="输出文件夹中已有填写过数据的同名文件时也覆盖。")] = False,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="档案库：按上年已通过的填报表预填“上年结转”（附批注）；不给 --roster 时用档案库中该年度的名册。"
        ),
    ] = None,
    under: UnderOption = None,
) -> None:
    """生成锁定的填报模板：每个单位一个 .xlsx 文件。

    示例：

      nianbao template --roster samples/roster.csv --year 2025 --out 模板

      nianbao template --unit-code 152502201 --unit-name 宝力根苏木 --unit-type 苏木 --year 2025 --out 模板

      nianbao template --db nianbao.db --year 2026 --out 模板2026

      nianbao template --db nianbao.db --year 2026 --under 152502 --out 模板2026（只为一个县的单位生成）
    """
    from ..api import current_format, load_roster, validate_single_unit, write_template

    check_year(year, current_format().valid_from_year)
    if roster and (unit_code or unit_name):
        raise fail("--roster 与 --unit-code/--unit-name 只能选一种。")
    prefill, archived = _carryover(db, year)
    if roster:
        units = _subtree(list(load_roster(roster).units), under, year)
    elif archived is not None and not (unit_code or unit_name):
        units = _subtree(list(archived.units), under, year)
    elif unit_code and unit_name:
        units = [validate_single_unit(unit_code, unit_name, unit_type)]
    else:
        raise fail("请用 --roster 指定名册，或用 --unit-code 和 --unit-name 指定一个单位。")
    PLANNED.append(f"{len(units)}个模板（{out_dir}）")
    with Ticker("生成模板") as tick:
        paths = write_template(units, year, out_dir, overwrite=overwrite, progress=tick, prefill=prefill)
    say("已生成 {} 个{}年度填报模板，保存在：{}", len(paths), year, out_dir)
    if db is not None:
        n = sum(1 for u in units if u.code in prefill)
        say("其中 {} 个单位的“上年结转”已按{}年度档案中的“结转下年度继续办理”预填（单元格附批注）。", n, year - 1)
    for p in paths[:5]:
        say("  {}", p.name)
    if len(paths) > 5:
        say("  ……共 {} 个", len(paths))


@app.command("check", no_args_is_help=True, rich_help_panel="填报、审核与汇总")
def check_cmd(
    paths: Annotated[list[Path], typer.Argument(help="填报表文件、文件夹或 zip 压缩包，可以有多个。")],
    roster: Annotated[
        Path | None, typer.Option("--roster", "-r", help="名册：核对单位代码和名称，指出未报送和重复报送的单位。")
    ] = None,
    year: Annotated[int | None, typer.Option("--year", "-y", help="报告年度：核对是否误发往年文件。")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="在标准输出打印 JSON 审核报告（格式见 README）。")] = False,
    annotate_dir: Annotated[
        Path | None,
        typer.Option("--annotate", help="为有错误或警告的填报表生成“审核意见”副本（问题单元格标红并附批注），保存到此文件夹。"),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="审核意见副本的文件名已被其他文件占用时也覆盖。")] = False,
    db: Annotated[
        str | None,
        typer.Option("--db", help="档案库：与上年已通过的填报表做跨年度核对（上年结转、现行有效、大幅变化）；需要 --year。"),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """审核交回的填报表：勾稽关系、数值、表格是否被改动、单位和年度，以及整批的未报送、重复报送。

    示例：

      nianbao check samples/returns --roster samples/roster.csv --year 2025

      nianbao check samples/faulty --roster samples/roster.csv --year 2025 --annotate 输出/退回

      nianbao check 收到的年报.zip --json > 审核结果.json

    退出码：0 没有错误；1 有错误；2 无法运行。
    """
    from ..api import check_batch, load_roster, write_annotated, write_result

    if year is not None:
        check_year(year, 2000)
    ros = load_roster(roster) if roster else None
    if annotate_dir:
        PLANNED.append(f"审核意见副本（{annotate_dir}）")
    with Ticker("审核") as tick:
        result = check_batch(paths, ros, year, progress=tick)
    _cross_year(db, year, result.reports)
    if not result.reports:
        raise fail("在给出的路径中没有找到任何填报表（.xlsx/.xlsm/.ods/.xls/.et 或 zip）。")
    show_findings(result, verbose)
    if annotate_dir:
        done = write_annotated(result.reports, annotate_dir, year=year, inputs=_input_files(paths), overwrite=overwrite)
        say("已生成 {} 份审核意见副本（只为有错误或警告的填报表生成），保存在：{}", len(done.written), annotate_dir)
        for rep, why in done.skipped:
            say("  未生成 {}：{}", rep.provenance.name, why, style="yellow")
    if as_json:
        write_result("check", result.reports, year=year, batch=result.batch)
    raise typer.Exit(EXIT_PROBLEMS if result.has_errors else EXIT_OK)


def _subtree(units: list, under: str | None, year: int) -> list:
    """The roster's units below ``--under`` (itself included; a code or a name), or all of them."""
    if not under:
        return units
    from ..api import Roster

    code = next((u.code for u in units if under.strip() in (u.code, u.name)), under.strip())
    below = {u.code for u in Roster(tuple(units), "").subtree(code)}
    if not below:
        raise fail(
            f"--under “{under}”：{year}年度名册中没有这个单位，也没有以它为上级代码的单位。请写名册中的单位代码或名称；"
            "没有生成任何模板。"
        )
    say("范围：{}及其下级单位，共 {} 个（--under）。", code, len(below))
    return [u for u in units if u.code in below]


def _cross_year(db: str | None, year: int | None, reports) -> None:  # type: ignore[no-untyped-def]
    """With --db: the cross-year rules against last year's accepted returns in the archive."""
    if db is None:
        return
    if year is None:
        raise fail("用 --db 做跨年度核对时需要 --year（本年度）。")
    from ..api import Archive

    with Archive.open(db) as archive:
        archive.add_cross_year(reports, year)


def _carryover(db: str | None, year: int):  # type: ignore[no-untyped-def]
    """(unit code → pre-filled 上年结转, the year's roster in the archive or None)."""
    if db is None:
        return {}, None
    from ..api import Archive

    with Archive.open(db) as archive:
        return archive.carryover(year), archive.roster(year)


def _input_files(paths: list[Path]) -> list[str]:
    from ..api import input_files

    return input_files(paths)


def _split(v: str | None) -> list[str]:
    return [x.strip() for x in (v or "").replace("，", ",").split(",") if x.strip()]


@app.command("consolidate", no_args_is_help=True, rich_help_panel="填报、审核与汇总")
def consolidate_cmd(
    year: Annotated[int, typer.Option("--year", "-y", help="报告年度。")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="汇总表文件名（.xlsx），旁边另写 .manifest.json。")],
    units: Annotated[str | None, typer.Option("--units", help="选择汇总：只汇总这些单位代码，用逗号分隔。")] = None,
    exclude: Annotated[str | None, typer.Option("--exclude", help="不汇总这些单位代码，用逗号分隔。")] = None,
    under: UnderOption = None,
    summary_name: Annotated[
        str | None,
        typer.Option("--summary-name", help="名册中没有汇总单位本身一行时，汇总单位的名称，例如“锡林浩特市人民政府”。"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="有错误的填报表也纳入汇总（汇总说明中醒目标注），退出码仍为1。")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="同一单位报送多份时视为错误，不汇总。")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="输出位置已有不是本单位汇总表的文件时也覆盖（输入文件永远不会被覆盖）。")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="在标准输出打印 JSON 结果（与 check 相同的格式，另有 summary）。")
    ] = False,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="填报表文件、文件夹或 zip 压缩包，可以有多个（用 --db 时不需要）。")
    ] = None,
    roster: Annotated[
        Path | None, typer.Option("--roster", "-r", help="名册（应报单位）；用 --db 时取档案库中该年度的名册。")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="从档案库汇总各单位当前的填报表（不重新读取文件）；SQLite 文件路径或 postgresql:// 地址。"),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """汇总：审核全部填报表，生成汇总表（本身也是一份合格的填报表，可再向上级汇总）。

    示例：

      nianbao consolidate samples/returns --roster samples/roster.csv --year 2025 --out 输出/锡林浩特市汇总.xlsx

      nianbao consolidate samples/returns -r samples/roster.csv -y 2025 --exclude 152502311 -o 输出/汇总.xlsx

      nianbao consolidate --db nianbao.db --year 2025 --out 输出/汇总.xlsx

      nianbao consolidate --db nianbao.db --year 2025 --under 152502 --out 输出/锡林浩特市汇总.xlsx（节点汇总：一个县）

    退出码：0 已汇总且汇总范围内没有错误；1 汇总范围内有文件有错误（纳入汇总的有错误时不汇总；加 --force
    仍生成汇总表）；2 无法运行。
    """
    from ..api import (
        BatchResult,
        ConsolidateOptions,
        Refused,
        current_format,
        dumps,
        load_roster,
        result_json,
        totals_json,
        write_summary,
    )

    check_year(year, current_format().valid_from_year)
    if out_path.suffix.lower() != ".xlsx":
        raise fail(f"汇总表文件名应以 .xlsx 结尾：{out_path}")
    paths = paths or []
    archive = _archive(db, paths, roster)
    ros = archive.need_roster(year) if archive else load_roster(roster)
    under = _node_code(archive, year, under)
    inputs = _input_files(paths)
    from ..api import OutputGuard

    OutputGuard(inputs, overwrite).check(out_path, "summary", _guess_top(ros, under), year)  # fail before the work
    PLANNED.append(f"汇总表 {out_path} 及其清单")
    opts = ConsolidateOptions(tuple(_split(units)), tuple(_split(exclude)), under, strict, force, summary_name)
    with Ticker("审核") as tick:
        try:
            summary = _summarise(archive, paths, ros, year, tick, opts)
        except Refused as e:
            show_findings(BatchResult(e.reports), verbose)
            if as_json:
                print(
                    dumps(
                        result_json(
                            "consolidate",
                            e.reports,
                            year=year,
                            refused={"reason": str(e)},
                            summary={"units": [s.row() for s in e.statuses]},
                        )
                    )
                )
            raise fail(str(e), EXIT_PROBLEMS) from None
    options = {"year": year, "roster": str(roster) if roster else f"档案库 {db}", **opts.manifest()}
    write_summary(summary, out_path, inputs=inputs, overwrite=overwrite, options=options)
    _report_summary(summary, out_path, verbose)
    if as_json:
        reports = [r for s in summary.statuses if s.report for r in (s.report, *s.duplicates)]
        listed = {id(f) for r in reports for f in r.findings}
        print(
            dumps(
                result_json(
                    "consolidate",
                    reports,
                    year=year,
                    summary=totals_json(summary),
                    batch=[f for f in summary.findings if id(f) not in listed],
                    ok=not summary.has_errors,
                )
            )
        )
    raise typer.Exit(EXIT_PROBLEMS if summary.has_errors else EXIT_OK)


def _archive(db: str | None, paths: list[Path], roster: Path | None):  # type: ignore[no-untyped-def]
    """The archive to consolidate from (--db), or None for files; refuse a mix."""
    if db is None:
        if not paths or roster is None:
            raise fail("请给出填报表文件或文件夹和 --roster 名册；或用 --db 从档案库汇总。")
        return None
    if paths:
        raise fail("用 --db 从档案库汇总时不需要也不能再给出文件（档案库中已有各单位当前的填报表）。")
    from ..api import Archive

    return Archive.open(db)


def _node_code(archive, year: int, under: str | None) -> str | None:  # type: ignore[no-untyped-def]
    """--under from the archive: a code or a name of the year's roster, said and resolved to its code
    (from files, the roster file's codes as before)."""
    if archive is None or not under:
        return under
    from .archive import scope_of_under

    return scope_of_under(archive, year, under).root


def _summarise(archive, paths: list[Path], ros, year: int, tick, opts):  # type: ignore[no-untyped-def]
    from ..api import consolidate

    if archive is not None:
        with archive:
            return archive.consolidate(year, opts)
    return consolidate(paths, ros, year, opts, progress=tick)


def _guess_top(ros, under: str | None) -> str:
    root = ros.get(under) if under else ros.root()
    return root.code if root else (under or "")


_LEFT_OUT = {
    "不在名册": "单位不在名册中",
    "无法读取": "文件无法读取",
    "汇总表（已忽略）": "这是本单位以前的汇总表，纳入会重复计数",
}


def _unit_lines(summary, verbose: bool) -> None:  # type: ignore[no-untyped-def]
    """One line per unit that sent several files, then the files left out and why: at hundreds of
    files (and without --verbose) at most ACTION_ROWS of those, with a line saying how many more."""
    for s in summary.statuses:
        if s.duplicates:
            say("重复报送：{}（{}份），采用 {}", s.name, len(s.duplicates) + 1, s.report.provenance.name)
    left = [s for s in summary.statuses if not s.duplicates and s.status in _LEFT_OUT]
    limit = ACTION_ROWS if compact(len(summary.statuses), verbose) else len(left)
    for s in left[:limit]:
        say("未纳入汇总：{}（{}）", s.report.provenance.name if s.report else s.name, _LEFT_OUT[s.status], style="yellow")
    if len(left) > limit:
        say(MORE, len(left) - limit)


def _report_summary(summary, out_path: Path, verbose: bool = False) -> None:
    """What a reviewer must know after consolidating: what went in, what did not, and why."""
    rep, tally = summary.report, summary.tally()
    say("已汇总 {} 个单位（{}，{}），保存在：{}", len(summary.included), rep.unit_name, rep.level, out_path)
    say("应报 {} 个，已报送 {} 个，未报送 {} 个。", tally["应报"], tally["已报送"], tally["未报送"])
    if summary.scope.note():
        say("汇总范围：{}。", summary.scope.note(), style="bold yellow")
    missing = [s.name for s in summary.statuses if s.status == "未报送"]
    if missing:
        say("未报送：{}", "、".join(missing))
    _unit_lines(summary, verbose)
    if summary.outside:
        bad = sum(1 for r in summary.outside if any(f.severity == "错误" for f in r.findings))
        say("另有 {} 个文件属于本次汇总范围以外的单位，未纳入，也不影响退出码（其中 {} 个有错误）。", len(summary.outside), bad)
    if not summary.scope.top_in_roster:
        say(
            "名册中没有汇总单位本身一行，汇总单位名称为“{}”；可以用 --summary-name 指定，或在名册中加上这一行。",
            rep.unit_name,
            style="yellow",
        )
    if summary.forced:
        say("[bold red]注意：[/]有错误的填报表已按 --force 纳入汇总，见汇总说明。")
