"""The reading entry: ``probe`` (the facts of a workbook, its values when the fast reader could read
them) and ``open_workbook`` (those facts and a ``Book`` of every sheet's values: the fast reader's, or
python-calamine's). One read mode: ``careful=True`` is the reference the tests compare with."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from . import fast, guard, parts
from .guard import MAX_FILE_BYTES, Filled, ProbeProblem, XMLInvalid, declares_markup, read_member
from .parts import Probe, SheetInfo
from .scan import _stream_scan, probe_ods


def probe_xlsx(zf: zipfile.ZipFile, careful: bool = False) -> Probe:
    names = set(zf.namelist())
    kind = "xlsm" if "xl/vbaProject.bin" in names else "xlsx"
    probe = Probe(kind=kind, macros="xl/vbaProject.bin" in names, careful=careful)
    probe.properties = parts._custom_props(zf, careful)
    probe.application = parts._app(zf, careful)
    wb_xml = read_member(zf, "xl/workbook.xml")
    if wb_xml is None:
        raise ProbeProblem("file-not-workbook", guard._describe_zip(names))
    locked, defined, sheets, other_epoch = guard._derived("workbook", wb_xml, parts._workbook_facts, not careful)
    rels, types = parts._workbook_rels(zf, probe)
    parts._hidden_parts(zf, names, probe)
    one_pass = not careful and guard._derived("names", wb_xml, parts._plain_sheet_names) and not other_epoch
    clean: set[str] = set()  # parts the one pass read and found free of DTDs
    book = fast._fast_book(zf, names, rels, types, clean) if one_pass else None
    if locked is not None:
        probe.structure_locked = locked
    for name, text in defined:
        parts._defined_name(name, text, probe)
    scanned, checked = _Sheets(zf, probe, book, Filled(guard.tool_sheets(probe.properties))).scan(sheets, rels, types)
    unique = len(names) == len(zf.infolist())  # a name repeated: every entry of it is looked at
    parts._declared_markup(zf, checked | clean | parts._PARSED if unique else set())
    probe.large_parts = parts._large_parts(zf, parts._XLSX_NEEDED | scanned)
    if book is not None and len(sheets) == len(probe.sheets) and all(i.read is not None for i in probe.sheets.values()):
        probe.values = {n: i.read for n, i in probe.sheets.items() if i.read is not None}
    return probe


@dataclass
class _Sheets:
    """The worksheet parts of one workbook being probed, and what scanning each needs besides the
    part: the fast reader's book (None: values left to calamine) and the filled-cell bounds."""

    zf: zipfile.ZipFile
    probe: Probe
    book: fast.Workbook | None
    filled: Filled

    def scan(self, sheets: list[tuple[str, str, str]], rels: dict[str, str], types: dict[str, str]) -> tuple[set[str], set[str]]:
        """Every worksheet part, bounded: those the workbook lists (returned first) and any other part
        that looks like one (returned second, with the first: every part whose markup has been checked)."""
        zf, probe, scanned = self.zf, self.probe, set()
        for name, state, rid in sheets:
            part = parts._sheet_parts(zf, rels.get(rid, ""))
            info = probe.sheets[name] = SheetInfo(name=name, state=state, part=part, source=zf)
            if part:
                exact = part == rels.get(rid) and types.get(rid) == "worksheet"
                self.part(part, info, self.book if exact else None)
                scanned.add(part)
                parts._check_book(probe)
        checked = set(scanned)
        for part in sorted(
            set(zf.namelist()) - scanned
        ):  # worksheet parts no relationship we understood points at: bound them too
            if part.lower().endswith(".xml") and "sheet" in part.lower() and part.lower().startswith("xl/"):
                self.unread(part)
                checked.add(part)
        parts._check_book(probe)
        return scanned, checked

    def part(self, name: str, info: SheetInfo, book: fast.Workbook | None) -> None:
        """Protection, extent, formula and error cells of a worksheet part (with ``book``, its values).

        A part in the exact shape this tool, Excel and LibreOffice write (checked by counting every
        tag start, not by trusting one spelling) is scanned with a few linear regular expressions: it
        is the hot path of reading 10,000 returns. Anything else — other whitespace, quoting, namespace
        prefixes, cells without r=, entities, another encoding — is parsed as XML and streamed. Either
        way the used range is bounded before any reader allocates a grid for it.
        """
        try:
            size = self.zf.getinfo(name).file_size
        except KeyError:
            return
        if size <= fast.FAST_SCAN_BYTES:
            data = read_member(self.zf, name) or b""
            cut = fast.split(data) if book is not None else None
            if declares_markup(fast._markup_region(data, cut)):
                raise ProbeProblem("file-malicious", f"部件 {name} 含有DTD或实体声明")
            if not self.probe.careful and fast._fast_scan(data, info, book, cut, self.filled):
                return
            info.protected, info.formulas, info.errors, info.read = False, {}, {}, None
        _stream_scan(self.zf, name, info, self.filled)

    def unread(self, part: str) -> None:
        """A worksheet-like part no relationship points at: no reader reads it, so it is only bounded —
        by the scan, or, when the XML parser finds it is no well-formed XML (an unbound prefix, as in
        ``<xm:macrosheet/>``, which the fast scan leaves to the parser), by counting its cell tags. Such
        a part does not make the workbook unreadable (its report says what it hides: macros-hidden)."""
        try:
            self.part(part, SheetInfo(name=part), None)
        except XMLInvalid:
            data = read_member(self.zf, part) or b""
            if declares_markup(data):
                raise ProbeProblem("file-malicious", f"部件 {part} 含有DTD或实体声明") from None
            self.filled.touch(part, len(guard._CELL_TAG.findall(data)))


# What the first bytes tell of a file that is no zip: its catalogue code and what it is.
_NOT_ZIP = {
    "empty": ("file-empty", ""),
    "ole2": ("file-xls", ""),
    "encrypted": ("file-encrypted", ""),
    "pdf": ("file-not-workbook", "PDF文件"),
    "markup": ("file-not-workbook", "网页或XML文本"),
}


def _is_text(head: bytes) -> bool:
    """Text in an encoding a clerk's CSV comes in (UTF-8 or GB18030)."""
    for encoding in ("utf-8", "gb18030"):
        try:
            head.decode(encoding)
            return True
        except UnicodeDecodeError:
            pass
    return False


def probe(data: bytes, careful: bool = False) -> tuple[Probe, zipfile.ZipFile]:
    """Classify and probe; raises ProbeProblem with a catalogue code when it is not a usable workbook.
    ``careful``: the XML parser only, nothing remembered between files, values left to calamine —
    the reference the fast reading is proven equal to; the result is the same either way."""
    if len(data) > MAX_FILE_BYTES:
        raise ProbeProblem("file-too-large", f"文件{len(data) // 1048576}MB，上限{MAX_FILE_BYTES // 1048576}MB")
    kind = guard.sniff(data)
    if kind in _NOT_ZIP:
        raise ProbeProblem(*_NOT_ZIP[kind])
    if kind == "other":
        raise ProbeProblem("file-not-workbook", "文本文件（可能是CSV）" if _is_text(data[:2048]) else "无法识别的二进制数据")
    zf = guard.open_zip(data, careful=careful)
    names = set(zf.namelist())
    if "xl/workbook.xml" in names:
        return probe_xlsx(zf, careful), zf
    mimetype = read_member(zf, "mimetype")
    if mimetype and mimetype.strip() == b"application/vnd.oasis.opendocument.spreadsheet":
        return probe_ods(zf), zf
    raise ProbeProblem("file-not-workbook", guard._describe_zip(names))


class Book:
    """A workbook as the reader sees it: sheet names in order, and each sheet's grid of values (the
    one pass's or python-calamine's ``to_python(skip_empty_area=False)``), built once when first asked."""

    def __init__(self, sheet_names: Iterable[str], grid_of: Callable[[str], list[list[Any]]]):
        self.sheet_names = list(sheet_names)
        self._grid_of = grid_of
        self._grids: dict[str, list[list[Any]]] = {}

    def grid(self, name: str) -> list[list[Any]]:
        if name not in self._grids:
            self._grids[name] = self._grid_of(name)
        return self._grids[name]


def open_workbook(data: bytes, careful: bool = False) -> tuple[Probe, Book]:
    """The facts of a workbook and a ``Book`` of its values: the fast reader's grids when it read
    every sheet (``Probe.values``), else python-calamine's (also for .ods). Raises ``ProbeProblem``."""
    pr, _zf = probe(data, careful=careful)
    if (read := pr.values) is not None:
        return pr, Book(read, lambda name: read[name].grid())
    from python_calamine import CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - includes pyo3 PanicException
        raise ProbeProblem("file-unreadable", f"{type(e).__name__}: {e}"[:300]) from e
    return pr, Book(wb.sheet_names, lambda name: wb.get_sheet_by_name(name).to_python(skip_empty_area=False))
