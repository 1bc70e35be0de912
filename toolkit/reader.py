"""Returned workbook (.xlsx/.xlsm/.ods bytes) → `Report`, with reading findings.

Cells are located through the format definition only. Values come from
python-calamine (fast, also .ods); identity and integrity (properties,
protection, formulas still in place) from the bounded zip/XML probe. The file is
read from disk once; the bytes serve both.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
import re
import unicodedata
from typing import Any

from python_calamine import CalamineWorkbook

from .consolidate import DETAIL_FIXED, DETAIL_SHEET, ID_ROW, TOTAL_LABEL
from .findings import make
from .probe import Probe, ProbeProblem, probe
from .report import Number, Provenance, Report, derive_totals
from .spec import Cell, Format, Sheet, a1, formats

PROP = "nianbao_"
NOT_A_NUMBER_WORDS = {"-", "--", "—", "——", "－", "/", "无", "空", "没有", "n/a", "na", "null", "none", "×", "x"}
_NUM = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
MAX_ABS = 1e12
SHIFT_SEARCH = 6


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def normalize_number(raw: Any, integer: bool) -> tuple[Number | None, str | None, Any]:
    """What the clerk typed → (value, finding code or None, value to show as 'expected').

    Blank → (None, 'blank'). Text that is clearly a number (full-width digits, thousands
    separators, spaces, a leading apostrophe) is read, with a 'number-as-text' warning.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, "blank", None
    if isinstance(raw, bool):
        return None, "not-a-number", None
    if isinstance(raw, (dt.datetime, dt.date, dt.time, dt.timedelta)):
        return None, "date-in-number", None
    note = None
    if isinstance(raw, str):
        s = unicodedata.normalize("NFKC", raw).strip().lstrip("'").replace(" ", "").replace("\u3000", "")
        if s.lower() in NOT_A_NUMBER_WORDS:
            return None, "not-a-number", None
        if _THOUSANDS.fullmatch(s):
            s = s.replace(",", "")
        if not _NUM.fullmatch(s):
            return None, "not-a-number", None
        try:
            num = float(s)
        except ValueError:
            return None, "not-a-number", None
        note = "number-as-text"
    elif isinstance(raw, (int, float)):
        num = float(raw)
    else:
        return None, "not-a-number", None
    if math.isnan(num) or math.isinf(num) or abs(num) > MAX_ABS:
        return None, "value-too-large", None
    value: Number = int(num) if num.is_integer() else num
    if num < 0:
        return value, "negative", None
    if integer and not num.is_integer():
        return value, "not-integer", None
    return value, note, value


def _grid(wb: CalamineWorkbook, name: str) -> list[list[Any]]:
    sheet = wb.get_sheet_by_name(name)
    rows = sheet.to_python(skip_empty_area=False)
    return rows


def _at(grid: list[list[Any]], row: int, col: int) -> Any:
    if row - 1 < len(grid) and col - 1 < len(grid[row - 1]):
        v = grid[row - 1][col - 1]
        return None if v == "" else v
    return None


def identify(pr: Probe, wb: CalamineWorkbook) -> tuple[Format | None, str]:
    """Which format definition this workbook claims (properties) or resembles (labels)."""
    known = formats()
    fid = pr.properties.get(PROP + "format_id", "")
    if fid:
        return known.get(fid), fid
    best, best_score = None, 0.0
    for fmt in known.values():
        hits = total = 0
        for sheet in fmt.sheets:
            if sheet.name not in wb.sheet_names:
                total += len(sheet.labels)
                continue
            grid = _grid(wb, sheet.name)
            for lb in sheet.labels:
                total += 1
                hits += _text(_at(grid, lb.row, lb.col)) == lb.text
        score = hits / max(total, 1)
        if score > best_score:
            best, best_score = fmt, score
    return (best, best.id) if best and best_score >= 0.9 else (None, "")


def _shift_of(grid: list[list[Any]], row: int, col: int, text: str) -> tuple[int, int] | None:
    for d in range(1, SHIFT_SEARCH + 1):
        for dr, dc in ((d, 0), (-d, 0), (0, d), (0, -d)):
            if row + dr >= 1 and col + dc >= 1 and _text(_at(grid, row + dr, col + dc)) == text:
                return dr, dc
    return None


def _check_labels(report: Report, sheet: Sheet, grid: list[list[Any]], name: str) -> bool:
    """Compare every label; returns False when rows/columns were inserted or deleted."""
    wrong = [(lb, _text(_at(grid, lb.row, lb.col))) for lb in sheet.labels]
    wrong = [(lb, found) for lb, found in wrong if found != lb.text]
    for lb, _ in wrong:  # a moved label means the grid moved: one finding says it all
        shift = _shift_of(grid, lb.row, lb.col, lb.text)
        if shift:
            dr, dc = shift
            moved = (f"下移了{dr}行" if dr > 0 else f"上移了{-dr}行") if dr else (
                f"右移了{dc}列" if dc > 0 else f"左移了{-dc}列")
            report.findings.append(make(
                "layout-shifted", file=name, sheet=sheet.name, cell=lb.a1, expected=lb.text,
                found=f"在{a1(lb.row + dr, lb.col + dc)}（{moved}）",
            ))
            return False
    for lb, found in wrong[:10]:
        report.findings.append(make("label-changed", file=name, sheet=sheet.name, cell=lb.a1,
                                    expected=lb.text, found=found or "（空）"))
    return True


def _read_cells(report: Report, fmt: Format, sheet: Sheet, grid: list[list[Any]], pr: Probe, name: str) -> None:
    info = pr.sheets.get(sheet.name)
    formulas = info.formulas if info else {}
    blanks: list[Cell] = []
    for cell in sheet.cells:
        raw = _at(grid, cell.row, cell.col)
        if cell.is_total:
            v, code, _ = normalize_number(raw, False)
            report.cached[cell.id] = v if code in (None, "number-as-text") else None
            if cell.a1 not in formulas:
                report.raw[cell.id] = raw  # reported once totals are recomputed (_overwritten)
            continue
        kind = fmt.kinds[cell.kind]
        value, code, shown = normalize_number(raw, kind.integer)
        report.values[cell.id] = value
        if cell.a1 in formulas:
            report.findings.append(make("formula-in-input", where=cell, file=name, found=formulas[cell.a1]))
            continue
        if code == "blank":
            blanks.append(cell)
            continue
        if code:
            if code != "number-as-text" or isinstance(raw, str):
                report.raw[cell.id] = raw
            found = raw.isoformat() if isinstance(raw, (dt.date, dt.datetime, dt.time)) else _text(raw)
            report.findings.append(make(code, where=cell, file=name, found=found, expected=shown))
    if blanks:
        cells = "、".join(c.a1 for c in blanks[:8]) + ("等" if len(blanks) > 8 else "")
        report.findings.append(make("value-blank", file=name, sheet=sheet.name, cell=blanks[0].a1,
                                    count=len(blanks), cells=cells))


def _cover(report: Report, fmt: Format, wb: CalamineWorkbook, name: str) -> None:
    if fmt.cover.sheet_name not in wb.sheet_names:
        report.findings.append(make("sheet-missing", file=name, expected=fmt.cover.sheet_name))
        return
    grid = _grid(wb, fmt.cover.sheet_name)
    for f in fmt.cover.fields:
        v = _at(grid, f.row, 2)
        if isinstance(v, (dt.datetime, dt.date)):
            text = v.strftime("%Y-%m-%d")
        elif isinstance(v, float) and f.kind == "date" and 30000 < v < 80000:  # an Excel serial date
            text = (dt.date(1899, 12, 30) + dt.timedelta(days=int(v))).isoformat()
        else:
            text = _text(v)
        report.cover[f.id] = text
        label = _text(_at(grid, f.row, 1))
        if label != f.label:
            report.findings.append(make("label-changed", file=name, sheet=fmt.cover.sheet_name,
                                        cell=a1(f.row, 1), expected=f.label, found=label or "（空）"))
        if f.source:
            claimed = {"unit_name": report.unit_name, "unit_code": report.unit_code,
                       "year": str(report.year or "")}[f.source]
            if claimed and text != claimed:
                report.findings.append(make("label-changed", file=name, sheet=fmt.cover.sheet_name,
                                            cell=a1(f.row, 2), expected=claimed, found=text or "（空）"))


def read_bytes(data: bytes, name: str, path: str = "", mtime: float = 0.0) -> Report:
    """Read one return from its bytes. Never raises for a bad file: problems become findings."""
    report = Report(provenance=Provenance(path=path or name, name=name, sha256=hashlib.sha256(data).hexdigest(),
                                          size=len(data), mtime=mtime))
    try:
        _read(report, data, name)
    except ProbeProblem as p:
        report.readable = False
        report.findings.append(make(p.code, file=name, detail=p.detail))
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as e:  # noqa: BLE001 - calamine's Rust panics arrive as BaseException
        report.readable = False
        report.findings.append(make("file-unreadable", file=name, detail=f"{type(e).__name__}: {e}"[:300]))
    for f in report.findings:
        f.file = name
        f.unit_code, f.unit_name = report.unit_code, report.unit_name
        f.finish(report.year)
    return report


def _read(report: Report, data: bytes, name: str) -> None:
    pr, _zf = probe(data)
    report.provenance.application = pr.application
    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - includes pyo3 PanicException
        raise ProbeProblem("file-unreadable", f"{type(e).__name__}: {e}"[:300]) from e
    props = pr.properties
    fmt, claimed = identify(pr, wb)
    if fmt is None:
        if claimed:
            report.findings.append(make("format-unknown", file=name, found=claimed))
        else:
            report.findings.append(make("not-our-template", file=name,
                                        detail="工作表为：" + "、".join(wb.sheet_names[:8])))
        report.readable = False
        return
    report.format_id, report.format_version = fmt.id, props.get(PROP + "format_version", fmt.version)
    report.template_version = props.get(PROP + "template_version", "")
    report.unit_code = props.get(PROP + "unit_code", "")
    report.unit_name = props.get(PROP + "unit_name", "")
    report.unit_type = props.get(PROP + "unit_type", "")
    report.level = props.get(PROP + "level", "填报单位") or "填报单位"
    try:
        report.year = int(float(props.get(PROP + "year", "")))
    except ValueError:
        report.year = None
    if not report.unit_code:  # our properties lost (re-saved elsewhere): fall back to the cover
        grid = _grid(wb, fmt.cover.sheet_name) if fmt.cover.sheet_name in wb.sheet_names else []
        for f in fmt.cover.fields:
            if f.source and grid:
                v = _text(_at(grid, f.row, 2))
                if f.source == "unit_code":
                    report.unit_code = v
                elif f.source == "unit_name":
                    report.unit_name = v
                elif f.source == "year" and v.isdigit():
                    report.year = int(v)
    if pr.macros:
        report.findings.append(make("macros-present", file=name))
    for link in pr.external_links:
        report.findings.append(make("external-link", file=name, detail=link))
    _integrity(report, fmt, pr, wb, name)
    _cover(report, fmt, wb, name)
    for sheet in fmt.sheets:
        if sheet.name not in wb.sheet_names:
            continue  # its inputs stay missing; sheet-missing was reported
        grid = _grid(wb, sheet.name)
        if _check_labels(report, sheet, grid, name):
            _read_cells(report, fmt, sheet, grid, pr, name)
        else:
            for c in sheet.cells:
                if not c.is_total:
                    report.values[c.id] = None
    report.values = derive_totals(fmt, {c.id: report.values.get(c.id) for c in fmt.inputs})
    for c in fmt.totals:
        if c.id in report.raw:
            report.findings.append(make("formula-overwritten", where=c, file=name,
                                        found=_text(report.raw[c.id]) or "（空）", expected=report.values.get(c.id)))
    _completeness(report, fmt, name)
    if report.level != "填报单位" and DETAIL_SHEET in wb.sheet_names:
        _children(report, fmt, _grid(wb, DETAIL_SHEET), name)


def _children(report: Report, fmt: Format, grid: list[list[Any]], name: str) -> None:
    """A summary carries its 明细: check ★ parent = Σ children for every input cell."""
    if len(grid) <= ID_ROW:
        return
    ids = [_text(v) for v in grid[ID_ROW]]
    fixed = [k for k, _ in DETAIL_FIXED]
    sums: dict[str, float] = {c.id: 0.0 for c in fmt.inputs}
    for row in grid[ID_ROW + 1:]:
        if not row or _text(row[0]) == TOTAL_LABEL:
            break
        child: dict[str, Any] = {"values": {}}
        for key, v in zip(ids, row, strict=False):
            if key in fixed:
                child[key] = _text(v)
            elif key in sums:
                num, code, _ = normalize_number(v, False)
                child["values"][key] = num
                sums[key] += num or 0
        report.children.append(child)
    for c in fmt.inputs:
        if c.id not in ids:
            continue
        parent, total = report.value(c.id), round(sums[c.id], 6)
        if abs(parent - total) > 1e-6:
            delta = parent - total
            report.findings.append(make("summary-mismatch", where=c, file=name, found=parent, expected=total,
                                        delta=int(delta) if float(delta).is_integer() else round(delta, 6)))


def _integrity(report: Report, fmt: Format, pr: Probe, wb: CalamineWorkbook, name: str) -> None:
    expected = [fmt.cover.sheet_name] + [s.name for s in fmt.sheets]
    tool_sheets = set(filter(None, pr.properties.get(PROP + "extra_sheets", "").split("|")))
    for sname in expected:
        if sname not in wb.sheet_names:
            report.findings.append(make("sheet-missing", file=name, expected=sname))
        elif not pr.sheets.get(sname) or not pr.sheets[sname].protected:
            report.findings.append(make("protection-removed", file=name, sheet=sname))
    for sname in wb.sheet_names:
        if sname not in expected and sname not in tool_sheets:
            report.findings.append(make("sheet-extra", file=name, found=sname))
    if not pr.structure_locked:
        if "libreoffice" in pr.application.lower() or pr.kind == "ods":
            report.findings.append(make("structure-unprotected-lo", file=name, detail=pr.application or "LibreOffice"))
        else:
            report.findings.append(make("structure-unprotected", file=name))


def _completeness(report: Report, fmt: Format, name: str) -> None:
    if report.level != "填报单位":
        return
    for f in fmt.cover.fields:
        if f.required and not report.cover.get(f.id):
            report.findings.append(make("cover-field-empty", file=name, sheet=fmt.cover.sheet_name,
                                        cell=a1(f.row, 2), expected=f.label))
    note = next((f.id for f in fmt.cover.fields if f.kind == "longtext"), "")
    if all(not report.values.get(c.id) for c in fmt.inputs) and not report.cover.get(note):
        report.findings.append(make("empty-return", file=name))

