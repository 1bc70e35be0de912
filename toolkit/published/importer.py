"""Published report (web text, HTML, PDF) → `Report`, so the same rules audit what was published.

The pipeline: read the file within safe limits and turn it into plain text (traditional
characters converted, PDF page furniture removed) — `source`; cut the text into cells
at separators and at the labels of the format — `tokens`; walk the format definition
row by row and settle run-together digits — `walk`; find out who published it and
match a roster — `identity`; compare the prose with the tables — `narrative`.
`import_published` does a whole batch: one bad file becomes a report with a finding, never
the end of the batch.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from ..aliases import aliases
from ..errors import NianbaoError
from ..findings import make
from ..report import Provenance, Report, derive_totals
from ..roster import Roster
from ..spec import Format, current_format, formats
from ..years import cross_year, cross_year_findings, link_years
from .identity import (
    detect_format,
    guess_identity,
    invented_code,
    level_of,
    match_roster,
    own_template_cover,
    unknown_unit,
    year_from_name,
)
from .narrative import audit_text
from .source import Source, TooLarge, read_source
from .tokens import Tok, TooManyCells, lexicon_for, norm, parse_number, tokens
from .walk import Parsed, settle, split_row, walk

__all__ = [
    "Tok",
    "cross_year",
    "detect_format",
    "guess_identity",
    "import_published",
    "level_of",
    "norm",
    "parse_number",
    "read_published",
    "split_row",
]


# ---------------------------------------------------------------- one report


def _tokens(fmt: Format, src: Source, name: str) -> list[Tok]:
    try:
        return tokens(src.cells, lexicon_for(fmt, [a.text for a in aliases(fmt.id)]))
    except TooManyCells as e:
        raise TooLarge(f"{name} 拆分出的单元格超过{e.args[0]}个，不像正常的年报（正常的只有几千个）") from e


def _hybrid(fmt: Format, parsed: Parsed, shape: str) -> bool:
    """A 2021 表二 with a trial-style single-row （六）: suspected from the text, and confirmed
    only when the walk did not find the three （六） sub-item rows."""
    if shape != "hybrid?":
        return False
    six = [f"t3.{c.row_id}" for c in fmt.cells.values() if c.sheet_id == "t3" and c.row_id.startswith("r3_6_")]
    return not any(r in parsed.found for r in set(six))


_CUT_MARK = re.compile(r"(?:…|\.{2,}|。{2,})+$")  # '…' or '...' where an excerpt was cut


def read_published(path: Path, unit: str | None = None, year: int | None = None, unit_type: str | None = None) -> Report:
    """One published report → Report (with reading findings). Raises NianbaoError when it cannot be read at all."""
    path = Path(path)
    src = read_source(path)
    name = path.name
    fmt_id, shape = detect_format(src.text)
    fmt = formats()[fmt_id]
    cover = own_template_cover(src.text)
    g_unit, g_year = (cover.unit, cover.year) if cover else guess_identity(src.text)
    unit = unit or g_unit or unknown_unit(path.stem)
    year = year or g_year or year_from_name(path.stem)
    rep = Report(
        format_id=fmt.id,
        format_version=fmt.version,
        year=year,
        unit_name=unit,
        unit_code=(cover.code if cover and cover.code else invented_code(unit)),
        unit_type=unit_type or level_of(unit),
        level="填报单位",
        provenance=Provenance(
            path=str(path),
            name=name,
            sha256=hashlib.sha256(src.data).hexdigest(),
            size=len(src.data),
            application=f"published {src.shape}",
        ),
    )
    if cover:
        rep.cover = {"source": "本工具模板的封面"}
    # a copied text may stop anywhere (inside a number, too); a PDF or a page ends where its author ended it
    open_end = src.shape == "text" and _CUT_MARK.sub("", src.text.rstrip()).rstrip()[-1:].isdigit()
    parsed = walk(fmt, _tokens(fmt, src, name), name, open_end=open_end)
    settle(fmt, parsed, name)
    rep.findings.extend(parsed.problems)
    if parsed.rows_read == 0:
        return _unreadable(rep, fmt, name)
    _fill(rep, fmt, parsed)
    if src.traditional:
        rep.provenance.application += "（繁体字，已转为简体）"
    if src.stray:
        rep.findings.append(make("text-stray-mark", file=name, found=src.stray))
    if _hybrid(fmt, parsed, shape):
        rep.findings.append(make("format-hybrid", file=name))
    shown = {**rep.values, **{k: v for k, v in rep.cached.items() if v is not None}}
    known = {k: v for k, v in shown.items() if k not in rep.unknown}
    rep.findings.extend(audit_text(src.text, known, name, parsed.candidates))
    for f in rep.findings:
        f.unit_name = unit
    return rep


def _unreadable(rep: Report, fmt: Format, name: str) -> Report:
    rep.readable = False
    rep.findings = [make("table-unreadable", file=name, detail="没有找到任何官方表格中的数字")]
    if fmt.status != "current" and (rep.year is None or rep.year >= current_format().valid_from_year):
        rep.findings.append(
            make("format-outdated", file=name, found=fmt.title, expected=current_format().title, year=rep.year or "")
        )
    for f in rep.findings:
        f.unit_name = rep.unit_name
    return rep


def _fill(rep: Report, fmt: Format, parsed: Parsed) -> None:
    """Inputs as read; totals recomputed (for the rules) and as printed (``cached``). Cells never
    read (cut off, unreadable, or split several ways) are unknown, and so is every total built on them."""
    inputs = {c.id: parsed.values.get(c.id) for c in fmt.inputs}
    rep.values = derive_totals(fmt, inputs)
    rep.cached = {c.id: parsed.values.get(c.id) for c in fmt.totals}
    rep.unknown = {c.id for c in fmt.inputs if c.id not in parsed.values and fmt.sheet(c.sheet_id).published}
    for c in fmt.totals:  # totals come after their parts in the definition order
        if c.id not in parsed.values or any(p in rep.unknown for p in c.parts):
            rep.unknown.add(c.id)


# ---------------------------------------------------------------- a batch


def _failed(path: Path, e: NianbaoError) -> Report:
    rep = Report(provenance=Provenance(path=str(path), name=path.name), readable=False)
    code = "import-too-large" if isinstance(e, TooLarge) else "table-unreadable"
    rep.findings.append(make(code, file=path.name, detail=str(e)).finish())
    return rep


def _identify(rep: Report, roster: Roster | None, unit_code: str | None) -> None:
    """Give the report its roster identity: the unit matched by name (or the code given)."""
    if unit_code:
        unit = roster.get(unit_code) if roster else None
        rep.unit_code = unit_code
        if unit is not None:
            rep.unit_name, rep.unit_type = unit.name, unit.type
        return
    if roster is None:
        return
    if roster.get(rep.unit_code) is not None:  # a code printed on our own template's cover
        return
    unit, candidates = match_roster(rep.unit_name, roster)
    if unit is not None:
        rep.cover["published_name"] = rep.unit_name
        rep.unit_code, rep.unit_name, rep.unit_type = unit.code, unit.name, unit.type
    elif candidates:
        rep.cover["roster_candidates"] = "、".join(f"{u.name}（{u.code}）" for u in candidates)


REPORT_SUFFIXES = (".txt", ".htm", ".html", ".shtml", ".pdf")


def published_files(paths: Iterable[Path]) -> list[Path]:
    """Paths as given; a folder stands for the published reports in it (.txt .htm .html .shtml .pdf)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in REPORT_SUFFIXES))
        else:
            out.append(p)
    return out


def import_one(
    path: Path,
    *,
    roster: Roster | None = None,
    unit: str | None = None,
    unit_code: str | None = None,
    year: int | None = None,
    unit_type: str | None = None,
) -> Report:
    """Read, identify and check one published report; a file that cannot be read is a report with a finding."""
    from ..check import CheckOptions, check_report

    path = Path(path)
    try:
        rep = read_published(path, unit=unit, year=year, unit_type=unit_type)
    except NianbaoError as e:
        return _failed(path, e)
    except OSError as e:  # vanished or unreadable between listing and reading
        return _failed(path, NianbaoError(f"文件 {path.name} 无法读取（{e.strerror or e}）"))
    if rep.readable:
        _identify(rep, roster, unit_code)
        rep = check_report(rep, CheckOptions(year=year, roster=roster))
    return rep


def pair_years(reports: list[Report]) -> None:
    """Link the years of each unit and add the cross-year findings (carry-over, 现行有效 continuity)."""
    link_years(reports)
    for rep in reports:
        for finding in cross_year_findings(rep):
            finding.file = rep.provenance.name
            rep.findings.append(finding)


def import_published(
    paths: Iterable[Path],
    *,
    roster: Roster | None = None,
    unit: str | None = None,
    unit_code: str | None = None,
    year: int | None = None,
    unit_type: str | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[Report]:
    """Read, identify and check every published report; pair the years of each unit.
    One report per path, in order; a file that cannot be read is a report with a finding."""
    paths = list(paths)
    if progress:
        progress(len(paths))
    reports: list[Report] = []
    for path in paths:
        reports.append(import_one(path, roster=roster, unit=unit, unit_code=unit_code, year=year, unit_type=unit_type))
        if progress:
            progress(-1)
    pair_years(reports)
    for rep in reports:
        for finding in rep.findings:  # an unreadable page's findings too: a 说明 binds to them
            if not finding.fingerprint:
                finding.finish(rep.year)
    return reports


# ---------------------------------------------------------------- across years
# The cross-year checks are rules of the format definition (prev(...)); see toolkit/years.py.
