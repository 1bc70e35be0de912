"""The careful scan: a worksheet part (or an .ods content.xml) streamed through lxml in bounded
chunks, cells placed the way a reader places them. It defines what the fast reader must find."""

from __future__ import annotations

import functools
import math
import re
import zipfile

from ..spec import a1
from . import guard
from .guard import NS, Filled, ProbeProblem, _local, stream_events
from .parts import _ODS_NEEDED, Probe, SheetInfo, _check_book, _declared_markup, _large_parts, _property_text

_REF = re.compile(r"\s*\$?([A-Za-z]{1,3})\$?(\d{1,7})\s*")


@functools.lru_cache(maxsize=65536)
def _ref(ref: str | None) -> tuple[int, int]:
    """'XFD1048576' → (1048576, 16384); (0, 0) when there is no usable reference. The row is the
    trailing ASCII digits (none, as in 'A١': 0, the row being read)."""
    m = _REF.fullmatch(ref or "")
    if not m:
        return 0, 0
    col = 0
    for ch in m.group(1).upper():
        col = col * 26 + ord(ch) - 64
    digits = m.group(2)
    return int(digits[len(digits.rstrip("0123456789")) :] or 0), col


class _SheetScan:
    """Position bookkeeping of a worksheet part, the way a reader places cells: a row without r=
    follows the previous one, a cell without r= follows the previous cell of its row. Cells are
    visited when their row ends (one parser event per row); empty cells (styles only), most of a
    sheet, cost one attribute look-up."""

    def __init__(self, info: SheetInfo, filled: Filled | None = None, typed: dict[str, str] | None = None):
        self.info = info
        self.filled = filled
        self.typed = typed  # not None: collect the typed text of numbers that are not finite
        self.row = self.col = self.max_row = self.max_col = 0
        self.ref: str | None = None  # the last cell's r=, parsed only when needed

    def row_end(self, el) -> None:
        r = (el.get("r") or "").strip()
        self.row = int(r) if r.isdigit() and len(r) <= 8 else self.row + 1
        self.col, self.ref = 0, None
        self.cells(el)
        el.clear()
        guard._drop_previous(el)

    def cells(self, el) -> None:
        n = 0
        for c in el.iter("{*}c"):
            n += 1
            r = c.get("r")
            if not len(c) and not (c.text or "").strip():  # empty: remember where it is, nothing else
                if r is not None and _ref(r)[1]:
                    self.ref = r
                else:
                    self._place(None)
                continue
            self._content(c, *self._place(r))
        if self.filled is not None:
            self.filled.touch(self.info.name, n)

    def _place(self, r: str | None) -> tuple[int, int]:
        if r is not None:
            rr, cc = _ref(r)
            if cc:
                self.ref = None
                self.row, self.col = (rr or self.row), cc
                return self.row, self.col
        if self.ref is not None:
            rr, cc = _ref(self.ref)
            self.row, self.col, self.ref = (rr or self.row), cc, None
        self.col += 1
        return self.row, self.col

    def _content(self, c, row: int, col: int) -> None:
        if self.filled is not None:
            self.filled.add(self.info.name, 1)
        if row > self.max_row or col > self.max_col:
            self.max_row, self.max_col = max(self.max_row, row), max(self.max_col, col)
            guard._check_extent(self.info.name, self.max_row, self.max_col)
        for k in c:
            tag = _local(k.tag)
            if tag == "f":
                self.info.formulas[a1(row, col)] = "=" + (k.text or "")
            elif tag == "v" and (c.get("t") or "").strip() == "e":
                self.info.errors[a1(row, col)] = (k.text or "").strip()
            elif tag == "v" and self.typed is not None and (c.get("t") or "n").strip() == "n" and not_finite(k.text or ""):
                self.typed[a1(row, col)] = (k.text or "").strip()


def not_finite(text: str) -> bool:
    """A number's text that reads as no finite number: INF, NaN, 1e309, 400 digits."""
    try:
        return not math.isfinite(float(text))
    except (ValueError, OverflowError):
        return False


def typed_text(info: SheetInfo | None, addr: str) -> str | None:
    """What the clerk typed in a number cell whose value is not finite (the reader holds only INF or
    NaN for it), or None when it cannot be told. Asked only for such cells, rare, so the worksheet
    part is streamed once more then (the fast and the careful reading find the same text); an unreadable
    part gives None and the caller quotes the value instead."""
    if info is None:
        return None
    if info.typed is None:
        info.typed = {}
        if info.source is not None and info.part:
            try:
                _stream_scan(info.source, info.part, SheetInfo(name=info.name), None, info.typed)
            except ProbeProblem:
                pass
    return info.typed.get(addr)


def _stream_scan(
    zf: zipfile.ZipFile, name: str, info: SheetInfo, filled: Filled | None = None, typed: dict[str, str] | None = None
) -> None:
    scan = _SheetScan(info, filled, typed)
    parser = guard._pull_parser(("{*}row", "{*}sheetData", "{*}sheetProtection"))
    for _ev, el in stream_events(zf, name, parser):
        tag = _local(el.tag)
        if tag == "row":
            scan.row_end(el)
        elif tag == "sheetData":  # cells written outside any row
            scan.cells(el)
        elif tag == "sheetProtection":
            info.protected = (el.get("sheet") or "").strip().lower() in ("1", "true")
    guard._check_extent(info.name, scan.max_row, scan.max_col)
    info.cells = scan.max_row * scan.max_col


def probe_ods(zf: zipfile.ZipFile) -> Probe:
    """OpenDocument spreadsheet (LibreOffice's own format): the same facts from content.xml/meta.xml."""
    probe = Probe(kind="ods", structure_locked=False)
    meta = guard.read_member(zf, "meta.xml")
    if meta:
        root = guard.parse_xml(meta, "meta.xml")
        for ud in root.iter(f"{{{NS['meta']}}}user-defined"):
            name = ud.get(f"{{{NS['meta']}}}name", "")
            probe.properties[name] = _property_text(
                "r8" if ud.get(f"{{{NS['meta']}}}value-type") == "float" else "", ud.text or ""
            )
        gen = root.find(f".//{{{NS['meta']}}}generator")
        probe.application = (gen.text or "").strip() if gen is not None else ""
    if "content.xml" not in zf.namelist():
        raise ProbeProblem("file-unreadable", "缺少 content.xml")
    _ods_content(zf, probe)
    _declared_markup(zf, {"content.xml"})
    probe.large_parts = _large_parts(zf, _ODS_NEEDED)
    return probe


def _repeat(el, attr: str, cap: int) -> int:
    raw = (el.get(f"{{{NS['table']}}}{attr}") or "1").strip()
    return max(1, min(int(raw), cap)) if raw.isdigit() and len(raw) < 12 else 1


class _OdsScan:
    """Rows and cells of content.xml with their repeat counts, never expanded: a row repeated
    299,000 times with 299 repeated columns is 89 million cells to a reader, 2 elements here."""

    def __init__(self, probe: Probe):
        self.probe = probe
        self.info: SheetInfo | None = None
        self.row = self.rrep = self.col = self.max_row = self.max_col = 0
        self.filled = Filled(guard.tool_sheets(probe.properties))

    def table(self, el) -> None:
        t = NS["table"]
        protected = el.get(f"{{{t}}}protected", "false") == "true"
        self.info = SheetInfo(name=el.get(f"{{{t}}}name", ""), protected=protected, typed={})
        self.probe.sheets[self.info.name] = self.info
        self.row = self.max_row = self.max_col = 0

    def row_start(self, el) -> None:
        self.rrep, self.col = _repeat(el, "number-rows-repeated", 1_048_576), 0

    def row_end(self, el) -> None:
        self.row += self.rrep
        el.clear()
        guard._drop_previous(el)

    def cell(self, el) -> None:
        if self.info is None:
            return
        self.filled.touch(self.info.name, 1)  # the work is per element, a repeat count costs nothing
        crep = _repeat(el, "number-columns-repeated", 16384)
        formula = el.get(f"{{{NS['table']}}}formula")
        if formula or el.get(f"{{{NS['office']}}}value-type") or len(el) or (el.text or "").strip():
            self.max_row = max(self.max_row, self.row + self.rrep)
            self.max_col = max(self.max_col, self.col + crep)
            guard._check_extent(self.info.name, self.max_row, self.max_col)
            self.info.cells = self.max_row * self.max_col
            _check_book(self.probe)
            self.filled.add(self.info.name, crep * self.rrep)
            value = el.get(f"{{{NS['office']}}}value")  # a number that is not finite, as typed (``SheetInfo.typed``)
            if value and not_finite(value) and self.row < 2000 and self.col < 200:
                self.info.typed[a1(self.row + 1, self.col + 1)] = value.strip()  # type: ignore[index]
            if formula and self.row < 2000 and self.col < 200:
                for k in range(min(crep, 200)):
                    self.info.formulas[a1(self.row + 1, self.col + k + 1)] = formula
        self.col += crep
        el.clear()


def _ods_content(zf: zipfile.ZipFile, probe: Probe) -> None:
    t, o = NS["table"], NS["office"]
    tags = (f"{{{o}}}spreadsheet", f"{{{t}}}table", f"{{{t}}}table-row", f"{{{t}}}table-cell", f"{{{t}}}covered-table-cell")
    scan = _OdsScan(probe)
    for ev, el in stream_events(zf, "content.xml", guard._pull_parser(tags, ("start", "end"))):
        tag = _local(el.tag)
        if tag == "spreadsheet" and ev == "start":
            probe.structure_locked = el.get(f"{{{t}}}structure-protected", "false") == "true"
        elif tag == "table" and ev == "start":
            scan.table(el)
        elif tag == "table-row":
            (scan.row_start if ev == "start" else scan.row_end)(el)
        elif ev == "end" and tag in ("table-cell", "covered-table-cell"):
            scan.cell(el)
