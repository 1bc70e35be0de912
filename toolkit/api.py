"""The library under the command line: what a notebook, the web page and `nianbao` call.

Every function takes plain arguments (paths, a Roster or a roster file, a year) and returns
complete, plain objects: a ``Report`` holds every cell id of its format with its value (blank
and unknown kept distinct) and all its findings. Writers never overwrite an input, nor a file
someone filled in, unless told to (``overwrite=True``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .check import BatchResult, CheckOptions, batch_findings, iter_checked
from .consolidate import ConsolidateOptions
from .errors import NianbaoError
from .pool import Progress
from .report import Report
from .roster import Roster, Unit, load_roster

PathLike = str | Path


def as_roster(roster: Roster | PathLike | None) -> Roster | None:
    """A Roster, or the roster file to load."""
    if roster is None or isinstance(roster, Roster):
        return roster
    return load_roster(roster)


def _paths(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    return [Path(p) for p in paths]


# ---------------------------------------------------------------- check


def check(
    paths: PathLike | Iterable[PathLike],
    roster: Roster | PathLike | None = None,
    year: int | None = None,
    *,
    progress: Progress = None,
    workers: int | None = None,
) -> list[Report]:
    """Read and check every return under ``paths`` (files, folders, zip archives)."""
    return check_batch(paths, roster, year, progress=progress, workers=workers).reports


def check_batch(
    paths: PathLike | Iterable[PathLike],
    roster: Roster | PathLike | None = None,
    year: int | None = None,
    *,
    progress: Progress = None,
    workers: int | None = None,
) -> BatchResult:
    """``check``, plus what only the whole batch shows (units missing, duplicates, mixed years)."""
    opts = CheckOptions(year=year, roster=as_roster(roster))
    reports = list(iter_checked(_paths(paths), opts, progress, workers))
    return BatchResult(reports, batch_findings(reports, opts))


@dataclass
class Annotated:
    written: list[tuple[Report, Path]] = field(default_factory=list)
    skipped: list[tuple[Report, str]] = field(default_factory=list)  # (report, why not), only those with a reason


def write_annotated(
    reports: Sequence[Report],
    out_dir: PathLike,
    *,
    year: int | None = None,
    inputs: Iterable[PathLike] = (),
    overwrite: bool = False,
) -> Annotated:
    """The 审核意见 copies of the returns that need one, all written or none (a staging folder)."""
    from .annotate import annotated_names, decide
    from .annotate import write_annotated as write_one
    from .fileio import Staging
    from .outputs import OutputGuard

    out_dir = Path(out_dir)
    result = Annotated()
    wanted = []
    for r in reports:
        d = decide(r)
        if d.write:
            wanted.append(r)
        elif d.reason:
            result.skipped.append((r, d.reason))
    names = annotated_names([r.provenance.name for r in wanted])
    guard = OutputGuard(inputs, overwrite)
    for name in names:
        guard.check(out_dir / name, "annotated")
    if not wanted:
        return result
    with Staging(out_dir) as stage:
        for r, name in zip(wanted, names, strict=True):
            write_one(r, stage.path(name), year=year)
        stage.commit()
    result.written = [(r, out_dir / n) for r, n in zip(wanted, names, strict=True)]
    return result


# ---------------------------------------------------------------- consolidate


def consolidate(
    reports_or_paths: Sequence[Report] | PathLike | Iterable[PathLike],
    roster: Roster | PathLike,
    year: int,
    options: ConsolidateOptions | None = None,
    *,
    progress: Progress = None,
    **choices: Any,
):
    """Sum the returns of the roster's units into a Summary (raises ``Refused`` when it must not);
    what to sum: ``options`` (a ConsolidateOptions), or its fields as keywords (``force=True`` …)."""
    from .consolidate import consolidate as run
    from .spec import current_format

    ros = as_roster(roster)
    if ros is None:
        raise NianbaoError("汇总需要名册。")
    reports = _reports(reports_or_paths, CheckOptions(year=year, roster=ros), progress)
    if not reports:
        raise NianbaoError("在给出的路径中没有找到任何填报表（.xlsx/.xlsm/.ods/.xls/.et 或 zip），未生成汇总表。")
    return run(
        current_format(),
        reports,
        ros,
        year,
        ConsolidateOptions.of(options, **choices),
    )


def _reports(given: Any, opts: CheckOptions, progress: Progress) -> list[Report]:
    items = [given] if isinstance(given, (str, Path)) else list(given)
    if items and all(isinstance(x, Report) for x in items):
        return items
    return list(iter_checked(_paths(items), opts, progress))


def write_summary(
    summary: Any,
    path: PathLike,
    *,
    inputs: Iterable[PathLike] = (),
    overwrite: bool = False,
    options: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """The summary workbook and its manifest, both or neither (a staging folder)."""
    from .fileio import Staging
    from .outputs import OutputGuard
    from .summary_writer import write_with_manifest

    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise NianbaoError(f"汇总表文件名应以 .xlsx 结尾：{path}")
    manifest = path.with_name(path.stem + ".manifest.json")
    guard = OutputGuard(inputs, overwrite)
    guard.check(path, "summary", summary.report.unit_code, summary.report.year)
    guard.check(manifest, "manifest")
    created = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    with Staging(path.parent) as stage:
        write_with_manifest(stage.path(path.name), summary, created, options or {})
        stage.path(manifest.name)
        stage.commit()
    return path, manifest


# ---------------------------------------------------------------- templates


def write_template(
    units: Roster | PathLike | Iterable[Unit],
    year: int,
    out_dir: PathLike,
    *,
    overwrite: bool = False,
    progress: Progress = None,
    prefill: dict[str, dict[str, Any]] | None = None,
) -> list[Path]:
    """One locked template per unit; refuses before writing anything if a target holds data.
    ``prefill``: unit code → input values to write beforehand (``Archive.carryover``)."""
    from .outputs import OutputGuard
    from .spec import current_format
    from .template import file_name, generate_templates

    fmt = current_format()
    if isinstance(units, (str, Path, Roster)):
        units = list(as_roster(units).units)  # type: ignore[union-attr]
    units = list(units)
    out_dir = Path(out_dir)
    guard = OutputGuard((), overwrite)
    refused = []
    for u in units:
        try:
            guard.check(out_dir / file_name(u, year), "template")
        except NianbaoError:
            refused.append(file_name(u, year))
    if refused:
        from .outputs import OutputRefused

        shown = "、".join(refused[:5]) + (f"等{len(refused)}个" if len(refused) > 5 else "")
        raise OutputRefused(
            f"{out_dir} 中已有同名文件且其中有填写过的数据：{shown}。为防止丢失数据，没有生成任何模板。"
            "请换一个输出文件夹；确认可以覆盖时加 --overwrite。"
        )
    return generate_templates(fmt, units, year, out_dir, progress=progress, prefill=prefill)


# ---------------------------------------------------------------- tables for analysts


# ---------------------------------------------------------------- audit of published reports


def audit(
    paths: PathLike | Iterable[PathLike],
    roster: Roster | PathLike | None = None,
    year: int | None = None,
    *,
    progress: Progress = None,
    workers: int | None = None,
):
    """Import and check every published report (text, HTML, PDF; files, folders, zip archives) in
    worker processes, and pair the years of each unit. Returns an ``AuditResult``."""
    from .published.audit import audit as run_audit

    return run_audit(_paths(paths), roster=as_roster(roster), year=year, progress=progress, workers=workers)


def write_audit(result: Any, path: PathLike, *, inputs: Iterable[PathLike] = (), overwrite: bool = False) -> Path:
    """The audit workbook (总览, 问题, 跨年, 文字与表格), written atomically. Refuses to replace an
    input or a workbook nianbao did not write as an audit (unless ``overwrite``)."""
    from .outputs import OutputGuard
    from .published.audit_writer import write_audit as write

    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise NianbaoError(f"审计结果文件名应以 .xlsx 结尾：{path}")
    OutputGuard(inputs, overwrite).check(path, "audit")
    path.parent.mkdir(parents=True, exist_ok=True)
    return write(result, path)


def to_dataframe(reports: Iterable[Report]):
    """One tidy row per report and cell (see ``Report.to_rows``), as a pandas DataFrame."""
    import pandas as pd

    rows = [row for r in reports for row in r.to_rows()]
    return pd.DataFrame(rows, columns=ROW_COLUMNS)


ROW_COLUMNS = (
    "year",
    "unit_code",
    "unit_name",
    "unit_type",
    "level",
    "format_id",
    "sheet",
    "cell_id",
    "row_label",
    "col_label",
    "value",
    "status",
    "source_sha256",
    "source_file",
)
