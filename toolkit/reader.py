"""Returned workbook (.xlsx/.xlsm/.ods bytes) → `Report`, with reading findings.

Cells are located through the format definition only. Identity and integrity
(properties, protection, formulas still in place) come from the bounded zip/XML
probe; values from the probe's own pass over each sheet when the workbook has the
shape Excel, WPS, LibreOffice and this tool write (``toolkit/xlsx``), else from
python-calamine (also .ods). The file is read from disk once; the bytes serve both.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from typing import Any

from .findings import make
from .layout import Alignment, align, unlabelled_rows_in_place
from .report import Number, Provenance, Report, derive_totals, mark_unknown
from .spec import Cell, Format, Sheet, a1, col_letter, conventions, formats
from .textnum import as_text_if_not_finite, parse_number
from .xlsx import Book, Probe, ProbeProblem, formula_risk, open_workbook, typed_text

MAX_ABS = 1e12


def _prop(name: str) -> str:
    """The custom document property ``name`` as nianbao writes it (prefix from templates/workbook.toml)."""
    return conventions().prefix + name


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:  # 1e308 is '1e+308', not 309 digits
        return str(int(v))
    return str(v).strip()


def shown_text(raw: Any, limit: int = 60) -> str:
    """A cell's content as a finding quotes it: at most ``limit`` characters (a 100,000-digit
    number is quoted by its start and length, not whole in every message)."""
    text = _text(raw)
    return text if len(text) <= limit else f"{text[:limit]}…（共{len(text)}个字符）"


def _as_typed(raw: Any, info: Any, addr: str) -> Any:
    """A value that is no finite number as the clerk typed it (1e309; 100,000 nines by their start and
    length), else INF or NaN: what findings quote and annotated copies write as the cell's text."""
    if not (isinstance(raw, float) and not math.isfinite(raw)):
        return raw
    typed = typed_text(info, addr)
    return as_text_if_not_finite(raw) if typed is None else shown_text(typed, 40)


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
        parsed = parse_number(raw)
        if parsed is None:
            return None, "not-a-number", None
        num, note = float(parsed), "number-as-text"
    elif isinstance(raw, (int, float)):
        try:
            num = float(raw)
        except OverflowError:  # an integer beyond any float
            return None, "value-not-finite", None
    else:
        return None, "not-a-number", None
    if not math.isfinite(num):  # INF, NaN, 1e309, 400 digits: unreadable, never summed
        return None, "value-not-finite", None
    if abs(num) > MAX_ABS:
        return None, "value-too-large", None
    value: Number = int(num) if num.is_integer() else num
    if num < 0:
        return value, "negative", None
    if integer and not num.is_integer():
        return value, "not-integer", None
    return value, note, value


def _at(grid: list[list[Any]], row: int, col: int) -> Any:
    if row - 1 < len(grid) and col - 1 < len(grid[row - 1]):
        v = grid[row - 1][col - 1]
        return None if v == "" else v
    return None


def identify(pr: Probe, wb: Book) -> tuple[Format | None, str]:
    """Which format definition this workbook claims (properties) or resembles (labels)."""
    known = formats()
    fid = pr.properties.get(_prop("format_id"), "")
    if fid:
        return known.get(fid), fid
    best, best_score = None, 0.0
    for fmt in known.values():
        hits = total = 0
        for sheet in fmt.sheets:
            if sheet.name not in wb.sheet_names:
                total += len(sheet.labels)
                continue
            grid = wb.grid(sheet.name)
            for lb in sheet.labels:
                total += 1
                hits += _text(_at(grid, lb.row, lb.col)) == lb.text
        score = hits / max(total, 1)
        if score > best_score:
            best, best_score = fmt, score
    return (best, best.id) if best and best_score >= 0.9 else (None, "")


def _locate_table(report: Report, sheet: Sheet, grid: list[list[Any]], name: str) -> Alignment | None:
    """Where the table's cells are; None when that cannot be known (the table is then unread).

    Labels in place: read in place. Labels moved because rows or columns were inserted or
    deleted: re-align by the labels and read every number where it went (with an 错误, since the
    form was altered). No certain alignment: refuse the table — never read it as zeros.
    """
    if _labels_in_place(sheet, grid) and unlabelled_rows_in_place(sheet, grid):
        return Alignment()
    al = align(sheet, grid)
    if not al.certain:
        report.findings.append(make("table-not-read", file=name, sheet=sheet.name, cell=sheet.cells[0].a1))
        return None
    if not al.identity:
        report.findings.append(_shift_finding(sheet, grid, al, name))
        if al.stray:
            shown = "、".join(f"{addr}={_text(v)}" for addr, v in al.stray[:8]) + ("等" if len(al.stray) > 8 else "")
            report.findings.append(make("content-outside-table", file=name, sheet=sheet.name, cell=al.stray[0][0], detail=shown))
    still_wrong = []
    for lb in sheet.labels:
        pos = al.where(lb.row, lb.col)  # None: its row or column was deleted, said above
        if pos is not None and (found := _text(_at(grid, *pos))) != lb.text:
            still_wrong.append((lb, found))
    for lb, found in still_wrong[:10]:
        report.findings.append(
            make("label-changed", file=name, sheet=sheet.name, cell=lb.a1, expected=lb.text, found=found or "（空）")
        )
    return al


def _labels_in_place(sheet: Sheet, grid: list[list[Any]]) -> bool:
    """Every label where the format puts it (compared as text, as a clerk reads it). The label
    positions are listed once per sheet; a label cell usually holds exactly the label's text."""
    nrows = len(grid)
    # a cell equal to the label passes at once only if the label has no edge spaces (_text strips)
    for r, c, text, stripped in sheet.label_spots:
        v = grid[r][c] if r < nrows and c < len(grid[r]) else None
        if not (v == text and stripped) and _text(None if v == "" else v) != text:
            return False
    return True


def _shift_finding(sheet: Sheet, grid: list[list[Any]], al: Alignment, name: str):
    """One finding for a moved grid: which rows/columns went where, said the way a clerk sees it."""
    changes = []
    if al.inserted_rows:
        changes.append("插入了第" + "、".join(map(str, al.inserted_rows[:6])) + "行")
    gone = [r for r, a in al.rows.items() if a is None]
    if gone:
        names = [lb.text for lb in sheet.labels if lb.row in gone][:3]
        changes.append("删除了" + ("“" + "”“".join(names) + "”所在的行" if names else f"{len(gone)}行"))
    if al.inserted_cols:
        changes.append("插入了第" + "、".join(col_letter(c) for c in al.inserted_cols[:6]) + "列")
    gone_cols = [c for c, a in al.cols.items() if a is None]
    if gone_cols:
        changes.append(f"删除了{len(gone_cols)}列")
    moved = [(x.row, x.col, x.text, x.a1) for x in sheet.labels] + [
        (c.row, c.col, f"{c.col_label.split(' ')[-1]}栏的数字", c.a1) for c in sheet.cells
    ]
    row, col, text, addr = next(m for m in moved if al.where(m[0], m[1]) not in (None, (m[0], m[1])))
    r, c = al.where(row, col)  # type: ignore[misc]
    dr, dc = r - row, c - col
    how = (f"下移了{dr}行" if dr > 0 else f"上移了{-dr}行") if dr else (f"右移了{dc}列" if dc > 0 else f"左移了{-dc}列")
    return make(
        "layout-shifted",
        file=name,
        sheet=sheet.name,
        cell=addr,
        expected=text,
        found=f"在{a1(r, c)}（{how}）",
        detail="，".join(changes) or "行列位置改变",
    )


def _places(sheet: Sheet, al: Alignment) -> list[tuple[Cell, Any, Any, Any, bool]]:
    """(cell, row, column, A1, is an input) where each cell of the sheet is read; row None when its
    row or column was deleted. In place (the usual case) the sheet's own list (``Sheet.places``)."""
    if al.identity:
        return sheet.places  # type: ignore[return-value]
    out: list[tuple[Cell, Any, Any, Any, bool]] = []
    for c in sheet.cells:
        pos = al.where(c.row, c.col)
        out.append((c, None, None, None, False) if pos is None else (c, pos[0], pos[1], a1(*pos), not c.is_total))
    return out


def _read_cell(report: Report, fmt: Format, cell: Cell, addr: str, raw: Any, info: Any, name: str) -> bool:
    """One cell the careful way (True: it is blank)."""
    formulas = info.formulas if info else {}
    if cell.is_total:
        v, code, _ = normalize_number(raw, False)
        report.cached[cell.id] = v if code in (None, "number-as-text") else None
        if addr not in formulas:
            report.raw[cell.id] = _as_typed(raw, info, addr)  # reported once totals are recomputed (_overwritten)
        return False
    kind = fmt.kinds[cell.kind]
    if info and addr in info.errors:  # #DIV/0!, #REF!…: not a number, never counted as 0
        report.values[cell.id] = None
        report.unknown.add(cell.id)
        report.findings.append(make("value-error", where=cell, file=name, found=info.errors[addr]))
        return False
    value, code, shown = normalize_number(raw, kind.integer)
    report.values[cell.id] = value
    if addr in formulas:
        report.findings.append(make("formula-in-input", where=cell, file=name, found=formulas[addr]))
        return False
    if code == "blank":
        return True
    if code:
        raw = _as_typed(raw, info, addr)
        if code != "number-as-text" or isinstance(raw, str):
            report.raw[cell.id] = raw
        found = raw.isoformat() if isinstance(raw, (dt.date, dt.datetime, dt.time)) else shown_text(raw)
        report.findings.append(make(code, where=cell, file=name, found=found, expected=shown))
    return False


def _read_cells(report: Report, fmt: Format, sheet: Sheet, grid: list[list[Any]], pr: Probe, name: str, al: Alignment) -> None:
    info = pr.sheets.get(sheet.name)
    fast = not pr.careful
    formulas = info.formulas if info else {}
    errors = info.errors if info else {}
    values, cached, nrows = report.values, report.cached, len(grid)
    blanks: list[Cell] = []
    for cell, row, col, addr, is_input in _places(sheet, al):
        if row is None:  # its row or column was deleted
            report.unknown.add(cell.id)
            continue
        line = grid[row - 1] if row <= nrows else ()
        raw = line[col - 1] if col <= len(line) else None
        raw = None if raw == "" else raw
        # A plain whole number in an input cell, or a total's formula and its cached number: what
        # normalize_number says, without asking it.
        if fast and type(raw) is float and 0 <= raw <= MAX_ABS and (addr in formulas) != is_input:
            if not is_input:
                cached[cell.id] = int(raw) if raw.is_integer() else raw
                continue
            if raw.is_integer() and addr not in errors:
                values[cell.id] = int(raw)
                continue
        if _read_cell(report, fmt, cell, addr, raw, info, name):
            blanks.append(cell)
    if blanks:
        cells = "、".join(c.a1 for c in blanks[:8]) + ("等" if len(blanks) > 8 else "")
        report.findings.append(
            make("value-blank", file=name, sheet=sheet.name, cell=blanks[0].a1, count=len(blanks), cells=cells)
        )


def _cover_text(v: Any, kind: str) -> str:
    if isinstance(v, (dt.datetime, dt.date)):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, float) and kind == "date" and 30000 < v < 80000:  # an Excel serial date
        return (dt.date(1899, 12, 30) + dt.timedelta(days=int(v))).isoformat()
    return _text(v)


def _cover(report: Report, fmt: Format, wb: Book, name: str) -> None:
    """The cover's fields; a changed label, or an identity that contradicts the properties, is reported."""
    if fmt.cover.sheet_name not in wb.sheet_names:
        report.findings.append(make("sheet-missing", file=name, expected=fmt.cover.sheet_name))
        return
    grid, conv, sheet = wb.grid(fmt.cover.sheet_name), conventions(), fmt.cover.sheet_name
    claims = {"unit_name": report.unit_name, "unit_code": report.unit_code, "year": str(report.year or "")}
    for f in fmt.cover.fields:
        text = report.cover[f.id] = _cover_text(_at(grid, f.row, conv.cover_value_col), f.kind)
        label = _text(_at(grid, f.row, conv.cover_label_col))
        if label != f.label:
            report.findings.append(
                make(
                    "label-changed",
                    file=name,
                    sheet=sheet,
                    cell=a1(f.row, conv.cover_label_col),
                    expected=f.label,
                    found=label or "（空）",
                )
            )
        claimed = claims.get(f.source, "")
        if claimed and text != claimed:
            report.findings.append(
                make(
                    "label-changed",
                    file=name,
                    sheet=sheet,
                    cell=a1(f.row, conv.cover_value_col),
                    expected=claimed,
                    found=text or "（空）",
                )
            )


def read_bytes(data: bytes, name: str, path: str = "", mtime: float = 0.0, careful: bool = False) -> Report:
    """Read one return from its bytes. Never raises for a bad file: problems become findings.
    ``careful``: the XML parser and calamine only, cell by cell — the reference the fast reading is
    proven equal to (tests/test_read_paths.py); the reports are the same either way."""
    report = Report(
        provenance=Provenance(path=path or name, name=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data), mtime=mtime)
    )
    try:
        _read(report, data, name, careful)
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


def _identity(report: Report, fmt: Format, pr: Probe, wb: Book) -> None:
    """Who and what the file says it is: its properties, else (re-saved elsewhere) its cover."""
    props = pr.properties
    report.format_id, report.format_version = fmt.id, props.get(_prop("format_version"), fmt.version)
    report.template_version = props.get(_prop("template_version"), "")
    report.unit_code = props.get(_prop("unit_code"), "")
    report.unit_name = props.get(_prop("unit_name"), "")
    report.unit_type = props.get(_prop("unit_type"), "")
    report.level = props.get(_prop("level"), "填报单位") or "填报单位"
    report.scope, report.scope_note = props.get(_prop("scope"), ""), props.get(_prop("scope_note"), "")
    report.extra_sheets = tuple(filter(None, props.get(_prop("extra_sheets"), "").split("|")))
    try:
        report.year = int(float(props.get(_prop("year"), "")))
    except (ValueError, OverflowError):  # not a number, NaN; INF or 1e309
        report.year = None
    if not report.unit_code and fmt.cover.sheet_name in wb.sheet_names:
        grid = wb.grid(fmt.cover.sheet_name)
        cover = {f.source: _text(_at(grid, f.row, conventions().cover_value_col)) for f in fmt.cover.fields if f.source}
        report.unit_code, report.unit_name = cover.get("unit_code", ""), cover.get("unit_name", "")
        year = cover.get("year", "")
        report.year = int(year) if year.isdecimal() and len(year) <= 9 else report.year  # not '²', not 5,000 digits


def _unidentified(report: Report, wb: Book, claimed: str, name: str) -> None:
    if claimed:
        report.findings.append(make("format-unknown", file=name, found=claimed))
    else:
        report.findings.append(make("not-our-template", file=name, detail="工作表为：" + "、".join(wb.sheet_names[:8])))
    report.readable = False


def _read(report: Report, data: bytes, name: str, careful: bool = False) -> None:
    pr, wb = open_workbook(data, careful)
    report.provenance.application = pr.application
    fmt, claimed = identify(pr, wb)
    if fmt is None:
        _unidentified(report, wb, claimed, name)
        return
    _identity(report, fmt, pr, wb)
    _hidden_content(report, pr, name)
    _integrity(report, fmt, pr, wb, name)
    _cover(report, fmt, wb, name)
    _read_tables(report, fmt, pr, wb, name)
    ids = fmt.input_ids
    report.values = derive_totals(fmt, dict(zip(ids, map(report.values.get, ids), strict=True)))
    mark_unknown(fmt, report)
    for c in fmt.totals:
        if c.id in report.raw:
            report.findings.append(
                make(
                    "formula-overwritten",
                    where=c,
                    file=name,
                    found=shown_text(report.raw[c.id]) or "（空）",
                    expected=report.values.get(c.id),
                )
            )
    _completeness(report, fmt, name)
    if report.level != "填报单位":
        _verify_summary(report, fmt, wb, name)


def _joined(items: list[str]) -> str:
    return "；".join(items[:5]) + (f"等{len(items)}处" if len(items) > 5 else "")


def _hidden_content(report: Report, pr: Probe, name: str) -> None:
    """Macros, links, objects: anything a workbook could run or fetch when opened elsewhere."""
    if pr.macros and not pr.macros_hidden:
        report.findings.append(make("macros-present", file=name))
    if pr.macros_hidden:
        report.findings.append(make("macros-hidden", file=name, detail=_joined(pr.macros_hidden)))
    for link in pr.external_links:
        report.findings.append(make("external-link", file=name, detail=link))
    if pr.dde_links:
        report.findings.append(make("dde-link", file=name, detail=_joined(pr.dde_links)))
    if pr.ole_objects:
        report.findings.append(make("ole-object", file=name, detail=_joined(pr.ole_objects)))
    if pr.large_parts:
        report.findings.append(make("unexpected-large-part", file=name, detail="、".join(pr.large_parts)))
    for text in pr.unsafe_names[:5]:
        report.findings.append(make("formula-unexpected", file=name, found=text.split("：", 1)[-1], detail="定义的名称"))


def _formula_findings(report: Report, fmt: Format, pr: Probe, name: str, in_place: set[str]) -> None:
    """Formulas the template did not write: in the cover, on labels or beside the table (sheets read
    in place), or calling anything beyond the template's SUM/IF/ABS — DDE, other files, WEBSERVICE."""
    allowed = fmt.formula_cells
    cover = fmt.cover.sheet_name
    found = []
    for sname, info in pr.sheets.items():
        if sname != cover and sname in in_place and _template_formulas(info.formulas, allowed.get(sname, frozenset())):
            continue
        inputs = fmt.input_cells.get(sname, frozenset())
        for addr, text in info.formulas.items():
            risk = formula_risk(text)
            if sname == cover:
                found.append((sname, addr, text, risk or "封面中不应有公式"))
            elif risk and not (sname in in_place and addr in inputs):  # inputs: formula-in-input says it
                found.append((sname, addr, text, risk))
            elif sname in in_place and addr not in allowed.get(sname, ()) and addr not in inputs:
                found.append((sname, addr, text, "标签或表格以外的单元格中不应有公式"))
    for sname, addr, text, why in found[:10]:
        report.findings.append(make("formula-unexpected", file=name, sheet=sname, cell=addr, found=text[:120], detail=why))


def _template_formulas(formulas: dict[str, str], allowed: frozenset[str]) -> bool:
    """Only formulas where the template writes them, each calling nothing but its SUM/IF/ABS: a
    sheet read in place with these has nothing for ``_formula_findings`` to say (found in a few
    C-level calls; the template's 60-odd formulas are in every return)."""
    return formulas.keys() <= allowed and not any(map(formula_risk, formulas.values()))


def _verify_summary(report: Report, fmt: Format, wb: Book, name: str) -> None:
    """A file that claims to be a summary must prove it with its 明细: parent = Σ children for every
    cell, and children that are other units than itself. Otherwise it is an ordinary return (its
    mismatches still reported), so an edited property cannot make a copy beat the genuine return."""
    sheet = conventions().detail_sheet
    before = len(report.findings)
    if sheet in wb.sheet_names:
        _children(report, fmt, wb.grid(sheet), name)
    mismatched = any(f.code == "summary-mismatch" for f in report.findings[before:])
    others = any(c.get("unit_code") and c.get("unit_code") != report.unit_code for c in report.children)
    if not report.children or mismatched or not others:
        report.findings.append(make("summary-unverified", file=name, found=report.level))
        report.level = "填报单位"
        report.children = []
        _completeness(report, fmt, name)


def _read_tables(report: Report, fmt: Format, pr: Probe, wb: Book, name: str) -> None:
    in_place = set()
    for sheet in fmt.sheets:
        grid = wb.grid(sheet.name) if sheet.name in wb.sheet_names else None
        al = _locate_table(report, sheet, grid, name) if grid is not None else None
        if al is None:  # missing (sheet-missing was reported) or unreadable: unknown, never 0
            report.unknown.update(c.id for c in sheet.cells)
            continue
        if al.identity:
            in_place.add(sheet.name)
        _read_cells(report, fmt, sheet, grid, pr, name, al)  # type: ignore[arg-type]
    _formula_findings(report, fmt, pr, name, in_place)


def _children(report: Report, fmt: Format, grid: list[list[Any]], name: str) -> None:
    """A summary carries its 明细: check ★ parent = Σ children for every input cell."""
    conv = conventions()
    id_row = conv.detail_id_row - 1
    if len(grid) <= id_row:
        return
    ids = [_text(v) for v in grid[id_row]]
    fixed = [k for k, _ in conv.detail_fixed]
    sums: dict[str, float] = {c.id: 0.0 for c in fmt.inputs}
    for row in grid[id_row + 1 :]:
        if not row or _text(row[0]) == conv.detail_total_label:
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
            report.findings.append(
                make(
                    "summary-mismatch",
                    where=c,
                    file=name,
                    found=parent,
                    expected=total,
                    delta=int(delta) if float(delta).is_integer() else round(delta, 6),
                )
            )


def _integrity(report: Report, fmt: Format, pr: Probe, wb: Book, name: str) -> None:
    expected = [fmt.cover.sheet_name] + [s.name for s in fmt.sheets]
    tool_sheets = set(filter(None, pr.properties.get(_prop("extra_sheets"), "").split("|")))
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
            report.findings.append(make("structure-unprotected-lo", file=name, detail=application_label(pr.application)))
        else:
            report.findings.append(make("structure-unprotected", file=name))


def application_label(raw: str) -> str:
    """'LibreOffice/7.4.7.2$Linux_X86_64 LibreOffice_project/…' → 'LibreOffice 7.4': for people."""
    m = re.match(r"\s*(LibreOffice|OpenOffice|WPS[ A-Za-z]*|Microsoft Excel|Kingsoft[ A-Za-z]*)[/ ]?(\d+(?:\.\d+)?)?", raw or "")
    if not m:
        return "LibreOffice" if not raw else raw.split("$")[0].split("/")[0].strip()[:40] or "LibreOffice"
    return f"{m.group(1).strip()} {m.group(2)}" if m.group(2) else m.group(1).strip()


def _completeness(report: Report, fmt: Format, name: str) -> None:
    if report.level != "填报单位":
        return
    for f in fmt.cover.fields:
        if f.required and not report.cover.get(f.id):
            report.findings.append(
                make(
                    "cover-field-empty",
                    file=name,
                    sheet=fmt.cover.sheet_name,
                    cell=a1(f.row, conventions().cover_value_col),
                    expected=f.label,
                )
            )
    note = next((f.id for f in fmt.cover.fields if f.kind == "longtext"), "")
    if all(not report.values.get(c.id) for c in fmt.inputs) and not report.cover.get(note):
        report.findings.append(make("empty-return", file=name))
