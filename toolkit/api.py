"""The public seam of the library: what a notebook (``import nianbao``), the web page and the `nianbao`
command line call — and the only module of the library they import (tests/test_architecture.py).

The functions below are the library's operations on files. Everything else the command line and
the web page use (the archive, JSON output, the catalogue, drafts …) is named in ``PUBLIC`` at the
end and loaded on first use, so that ``nianbao --help`` imports none of it.

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
from typing import TYPE_CHECKING, Any

from .errors import NianbaoError

if TYPE_CHECKING:  # loaded on first use (PUBLIC below): `nianbao --help` imports none of the library
    from .check import BatchResult, CheckOptions
    from .consolidate import ConsolidateOptions
    from .pool import Progress
    from .report import Report
    from .roster import Roster, Unit

PathLike = str | Path


def as_roster(roster: Roster | PathLike | None) -> Roster | None:
    """A Roster, or the roster file to load."""
    from .roster import Roster, load_roster

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
    from .check import BatchResult, CheckOptions, batch_findings, iter_checked

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
    from .check import CheckOptions
    from .consolidate import ConsolidateOptions
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
    from .check import iter_checked
    from .report import Report

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
    from .roster import Roster
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


# ---------------------------------------------------------------- 在线填写 (issue 30, toolkit/online.py)
# One block (helper D1): what the web form calls. Lazy imports; the web imports nothing else of it.

ONLINE_CLERK = ("在线填写", "链接")  # (source of the stored version, author of the draft) of a unit's clerk
ONLINE_REVIEWER = ("审核人在线录入", "审核人")  # … of the county's reviewer entering a unit's figures


def form_model(fmt: Any = None) -> Any:
    """The online form of ``fmt`` (default: the current format definition): its cover fields and each
    table as a grid of labels, inputs, totals and self-check cells (``online.FormModel``)."""
    from .online import FormModel
    from .spec import current_format

    return FormModel(fmt or current_format())


def evaluate_form(
    model: Any, unit: Unit, year: int, values: dict[str, str], cover: dict[str, str], roster: Any = None, previous: Any = None
) -> Any:
    """The findings ``check`` gives for the workbook these typed values make, with totals, the
    self-check texts and per-cell hints (``online.Evaluation``); ``previous``: last year's approved
    Report of the unit (cross-year rules)."""
    from .online import evaluate

    cross_year = None
    if previous is not None:
        from .archive.receive import add_cross_year

        cross_year = lambda report: add_cross_year(report, {unit.code: previous})  # noqa: E731 - as receive adds them
    return evaluate(model, unit, year, values, cover, roster, cross_year)


def form_draft(model: Any, body: Any) -> dict[str, dict[str, str]]:
    """A posted form as a draft of known cells only, bounded; ``NianbaoError`` in Chinese otherwise."""
    from .online import clean_draft

    return clean_draft(model, body)


def form_start(model: Any, report: Report | None = None, carried: dict[str, Any] | None = None) -> dict[str, dict[str, str]]:
    """The form's starting texts: a stored return's (``report``), else last year's carry-over."""
    from .online import from_carryover, from_report

    return from_report(model, report) if report is not None else from_carryover(model, carried)


def form_findings(model: Any, findings: Iterable[Any]) -> list[dict[str, Any]]:
    """Findings as the form lists them (level, message, where, the form cells they concern)."""
    from .online import finding_json

    return [finding_json(f, model) for f in findings]


def write_form_return(model: Any, unit: Unit, year: int, values: dict[str, str], cover: dict[str, str], folder: PathLike) -> Path:
    """The filled form as the return workbook ``template`` writes (identity, cover, protection)."""
    from .online import write_form_return as write

    return write(model, unit, year, values, cover, Path(folder))


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


# ---------------------------------------------------------------- the rest of the public names
# Name → the toolkit module that defines it ("module", or "module:attribute" where two modules use one
# name; a name that is a submodule is that module). Loaded on first use (PEP 562 ``__getattr__``);
# tests/test_architecture.py counts each entry as an import of this module, so the layers still hold.

PUBLIC: dict[str, str] = {
    # the model, the format definition and the catalogue of checks
    "Report": "report",
    "Roster": "roster",
    "Unit": "roster",
    "load_roster": "roster",
    "Progress": "pool",
    "Finding": "findings",
    "counts": "findings",
    "is_invented_code": "roster",
    "validate_single_unit": "roster",
    "current_format": "spec",
    "formats": "spec",
    "KIND_MEANING": "catalogue",
    "explain_text": "catalogue",
    "catalogue_entries": "catalogue:entries",
    "find_check": "catalogue:find",
    "shown_value": "diff:shown",
    # batches, consolidation and what they write
    "BatchResult": "check",
    "CheckOptions": "check",
    "WorkerPool": "check",
    "ConsolidateOptions": "consolidate",
    "Refused": "consolidate",
    "Summary": "consolidate",
    "totals_json": "consolidate",
    "dumps": "jsonout",
    "result_json": "jsonout",
    "write_result": "jsonout",
    "OutputGuard": "outputs",
    "OutputRefused": "outputs",
    "input_files": "outputs",
    "annotated_names": "annotate",
    "write_annotated_copy": "annotate:write_annotated",
    # files: atomic writes and the staging folders an interrupted command removes
    "WRITTEN": "fileio",
    "OWNER_ONLY": "fileio",
    "atomic_write_bytes": "fileio",
    "remove_staging": "fileio",
    "safe_filename": "fileio",
    # published reports: import, audit
    "import_published": "published.importer",
    "published_files": "published.importer",
    "OutputNames": "published.writer",
    "write_imported": "published.writer",
    "not_read": "published.audit",
    # the year's published report drafted (``written``: what a draft records of itself)
    "DraftOptions": "draft",
    "build_document": "draft",
    "write_docx": "draft",
    "write_html": "draft",
    "read_source": "draft",
    "read_previous": "draft",
    "carryover_notes": "draft",
    "placeholders": "draft",
    "written": "draft",
    # the archive across years
    "Archive": "archive",
    "ArchiveError": "archive",
    "resolve_url": "archive",
    "shown_url": "archive.db:shown",
    "STATUSES": "archive.workflow",
    "mandatory_errors": "archive.workflow",
    "explainable_errors": "archive.workflow",
    "write_frame": "archive.export",
    "Link": "archive.secrets",
    "SESSION_HOURS": "archive.secrets",
    "new_secret": "archive.secrets",
    "secret_digest": "archive.secrets:digest",
    "year_report": "archive.sources",
    "previous_report": "archive.sources",
    # one archive for a city or a province (issue 31): scopes of reviewers' keys, approval up the tree
    "Scope": "archive.tree",
    "scope_of": "archive.tree",
    "KeyInfo": "archive.tree",
    "NodeState": "archive.tree",
    "LevelFlow": "archive.workflow",
}


def __getattr__(name: str) -> Any:
    """A name of ``PUBLIC``, imported on first use and kept as this module's attribute."""
    import importlib

    where = PUBLIC.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attr = where.partition(":")
    mod = importlib.import_module(f"toolkit.{module}")
    attr = attr or name
    value = getattr(mod, attr) if hasattr(mod, attr) else importlib.import_module(f"toolkit.{module}.{attr}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(PUBLIC))
