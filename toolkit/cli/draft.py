"""`nianbao draft`: the published report written from a checked return or summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import EXIT_PROBLEMS, MAX_ROWS, PLANNED, UnderOption, app, check_year, fail, say
from .archive import DbOption


@app.command("draft", no_args_is_help=True, rich_help_panel="填报、审核与汇总")
def draft_cmd(
    source: Annotated[
        Path | None, typer.Argument(help="本年的填报表或汇总表（nianbao 生成的 .xlsx，或另存的 .ods）；用 --db 时不给。")
    ] = None,
    *,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="年报文稿（Word，.docx）。")],
    html_path: Annotated[Path | None, typer.Option("--html", help="同时生成网页版（.html），可粘贴到网站系统。")] = None,
    prev: Annotated[
        Path | None,
        typer.Option("--prev", help="上年数据，用于同比：上年的填报表或汇总表，或已发布的上年年报（.txt/.html/.pdf）。"),
    ] = None,
    site: Annotated[str | None, typer.Option("--site", help="电子版发布的网站名称及网址；不给时文中留待填写。")] = None,
    name: Annotated[str | None, typer.Option("--name", help="标题和正文中的单位名称（默认取自数据；汇总表为地区名）。")] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="数据有错误时仍生成（首页印有醒目警告，不得发布；退出码为1）；文稿已被编辑过时也覆盖（先备份）。"
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="文稿已被编辑过（或不是本工具生成的）也覆盖；原文件先备份为“文件名.bak-时间”。")
    ] = False,
    db: DbOption = None,
    year: Annotated[int | None, typer.Option("--year", "-y", help="用档案库时：报告年度。")] = None,
    unit: Annotated[
        str | None, typer.Option("--unit", help="用档案库时：单位代码或名称；不给时为全部单位的汇总（县里的年报）。")
    ] = None,
    under: UnderOption = None,
) -> None:
    """生成年报文稿：由填报表或汇总表写出 Word 和网页版年报，表格与数据完全一致，正文数字和同比自动填写。

    示例：

      nianbao draft samples/seed-2023/152502201_宝力根苏木_2023年政府信息公开年报.xlsx --out 输出/年报.docx

      nianbao draft 输出/汇总.xlsx --prev 上年汇总.xlsx --out 输出/年报.docx --html 输出/年报.html

      nianbao draft --db nianbao.db --year 2025 --unit 152502201 --out 输出/年报.docx

      nianbao draft --db 市档案库.db --year 2025 --under 152502 --out 输出/锡林浩特市年报.docx（市的档案库中一个县的年报）

    用 --db 时数据取自档案库：--unit 给出的单位当前的填报表，或（不给 --unit 时）由档案库汇总的全部单位
    （有 --under 时为该县及其下级单位的汇总）；
    档案库中有上一年度时，自动用上一年度的数据写同比。

    文中【请填写：…】是只有本机关知道的内容，发布前必须全部替换；命令结束时会列出。

    已有的文稿只有与本工具当初写出的完全相同时才会被替换；有人编辑过（Word、WPS、LibreOffice 保存过，网页中填了电话等）
    就不覆盖（退出码2），加 --overwrite 或 --force 才覆盖，原文件先备份为“文件名.bak-时间.docx”。

    退出码：0 已生成；1 数据有错误，未生成（加 --force 时仍生成，退出码仍为1）；2 无法运行（不是填报表、文件无法读取、
    文稿已被编辑过等）。
    """
    from ..api import DraftOptions, OutputGuard, build_document, formats, write_docx, write_html

    if out_path.suffix.lower() != ".docx":
        raise fail(f"--out 应为 .docx 文件：{out_path}")
    if html_path is not None and html_path.suffix.lower() not in (".html", ".htm"):
        raise fail(f"--html 应为 .html 文件：{html_path}")
    targets = [p for p in (out_path, html_path) if p is not None]
    guard = OutputGuard([p for p in (source, prev) if p is not None], overwrite=True)  # inputs and folders only:
    for path, kind in zip(targets, ("draft-docx", "draft-html"), strict=False):  # whether a draft was edited is
        guard.check(path, kind)  # decided by what it records of itself (draft.written)
    backups = _edited(targets, overwrite or force)
    report, previous = _sources(source, prev, db, year, unit, under)
    errors = _show_findings(report, source.name if source else "档案库中的数据", force)
    options = DraftOptions(
        name=name, site=site, errors=tuple(f"{f.locate() + '：' if f.locate() else ''}{f.message}" for f in errors)
    )
    doc = build_document(report, formats()[report.format_id], previous, options)
    PLANNED.append(f"年报文稿 {out_path}")
    _keep_backups(backups)
    write_docx(doc, out_path)
    written = [out_path]
    if html_path is not None:
        write_html(doc, html_path)
        written.append(html_path)
    say("已生成{}年度年报文稿（{}）：{}", report.year, doc.unit_name, "、".join(str(p) for p in written))
    _after(doc, report, previous)
    if errors:
        say("[bold red]警告：[/]数据有{}个错误，本稿已按 --force 生成，首页印有警告，不得发布。", len(errors))
        raise typer.Exit(EXIT_PROBLEMS)


def _edited(targets: list[Path], replace: bool) -> list[Path]:
    """The existing drafts that differ from what nianbao wrote: refused (exit 2) unless ``replace``,
    then returned, to be backed up just before they are replaced."""
    from ..api import written

    changed = [p for p in targets if written.state(p) in (written.EDITED, written.FOREIGN)]
    if changed and not replace:
        p = changed[0]
        why = "生成后已被编辑过" if written.state(p) == written.EDITED else "不是本工具生成的文稿（或已被其他软件另存过）"
        raise fail(
            f"{p} 已存在，{why}，与本工具写出的内容不同。为免丢失其中填写的内容，没有覆盖它（文件未改动）。"
            f"请另给一个文件名（--out/--html）；确认要重新生成时加 --overwrite，原文件会先备份为"
            f"“{written.backup_name(p).name}”。"
        )
    return changed


def _keep_backups(paths: list[Path]) -> None:
    from ..api import written

    for p in paths:
        if p.exists():
            say("原文稿已备份为：{}", written.keep_backup(p))


def _sources(source: Path | None, prev: Path | None, db: str | None, year: int | None, unit: str | None, under: str | None):
    """(this year's report, last year's or None): from files, or from the archive with --year."""
    from ..api import read_source

    if source is not None:
        if year is not None or unit is not None:  # --under (or NIANBAO_UNDER) says nothing of a file
            raise fail("给出了文件时不用 --year/--unit；要取档案库中的数据，请不给文件、用 --db --year。")
        report = read_source(source)
        return report, _previous(prev, report)
    if year is None:
        raise fail("请给出填报表或汇总表文件；或用 --db 和 --year 取档案库中的数据。")
    check_year(year, 2000)
    from ..api import Archive, previous_report, year_report

    with Archive.open(db) as archive:
        unit, node = _scoped(archive, year, unit, under)
        report = year_report(archive, year, unit, node)
        previous = _previous(prev, report) if prev is not None else previous_report(archive, year, unit, node)
    return report, previous


def _scoped(archive, year: int, unit: str | None, under: str | None) -> tuple[str | None, str | None]:  # type: ignore[no-untyped-def]
    """(unit, node) of a draft from a city's archive with --under: one of the county's units (--unit,
    checked to be in it), else the county's own report — the summary of its subtree; a unit with no
    units below it is that unit's own report, as its clerk expects."""
    if not under:
        return unit, None
    from .archive import check_within, scope_of_under

    if unit is not None:
        check_within(archive, unit, year, under, "没有生成文稿")
        return unit, None
    scope = scope_of_under(archive, year, under)
    return (scope.root, None) if len(scope.codes) == 1 else (None, scope.root)


def _show_findings(report, source: str, force: bool) -> list:
    """Print what is wrong with the source; refuse (exit 1) when it has 错误 and --force is not given."""
    errors = [f for f in report.findings if f.severity == "错误"]
    for f in [f for f in report.findings if f.severity != "提示"][:MAX_ROWS]:
        where = f.locate()
        say(
            f"[{'bold red' if f.severity == '错误' else 'yellow'}]{{}}[/] {{}}{{}}",
            f.severity,
            where + "：" if where else "",
            f.message,
        )
    if errors and not force:
        raise fail(
            f"{source} 有{len(errors)}个错误，未生成年报文稿。请先更正（nianbao check 可生成审核意见副本），"
            "或加 --force 生成带警告的草稿。",
            EXIT_PROBLEMS,
        )
    return errors


def _previous(prev: Path | None, report):
    from ..api import read_previous

    previous = read_previous(prev) if prev is not None else None
    if previous is not None and previous.year is None and report.year:
        previous.year = report.year - 1  # a published text that never states its year
        say("[yellow]注意：[/]{} 中没有读到年度，按{}年度的数据使用。", prev.name, previous.year)
    return previous


def _after(doc, report, previous) -> None:
    """Notes for the person who publishes: year-on-year checks and every placeholder left to fill."""
    from ..api import carryover_notes, placeholders

    for note in doc.notes:
        say("[yellow]注意：[/]{}", note)
    if previous is not None:
        for f in carryover_notes(report, previous):
            say("[yellow]与上年核对：[/]{}{}", f.locate() + "：" if f.locate() else "", f.message)
    pending = [p for p in placeholders(doc) if p.kind == "请填写"]
    if pending:
        say("文稿中还有{}处【请填写：…】（黄色标出），发布前必须替换：", len(pending))
        for p in pending:
            say("  {}", p.short())
