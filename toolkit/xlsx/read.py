"""The reading entry: ``probe`` (the facts of a workbook, its values when the fast reader could read
them) and ``open_workbook`` (those facts and a ``Book`` of every sheet's values: the fast reader's, or
python-calamine's). One read mode: ``careful=True`` is the reference the tests compare with."""

from __future__ import annotations

import io
import zipfile

from . import fast
from .fast import FAST_SCAN_BYTES, _fast_book, _fast_scan, _markup_region
from .guard import (
    _CELL_TAG,
    MAX_FILE_BYTES,
    Filled,
    ProbeProblem,
    XMLInvalid,
    _describe_zip,
    declares_markup,
    open_zip,
    read_member,
    sniff,
    tool_sheets,
)
from .parts import (
    _PARSED,
    _XLSX_NEEDED,
    Probe,
    SheetInfo,
    _app,
    _check_book,
    _custom_props,
    _declared_markup,
    _defined_name,
    _derived,
    _hidden_parts,
    _large_parts,
    _plain_sheet_names,
    _sheet_parts,
    _workbook_facts,
    _workbook_rels,
)
from .scan import _stream_scan, probe_ods


def _sheet_xml(
    zf: zipfile.ZipFile,
    name: str,
    info: SheetInfo,
    book: fast.Workbook | None = None,
    filled: Filled | None = None,
    careful: bool = False,
) -> None:
    """Protection, extent, formula and error cells of a worksheet part.

    A part in the exact shape this tool, Excel and LibreOffice write (checked by counting every
    tag start, not by trusting one spelling) is scanned with a few linear regular expressions: it
    is the hot path of reading 10,000 returns. Anything else — other whitespace, quoting, namespace
    prefixes, cells without r=, entities, another encoding — is parsed as XML and streamed. Either
    way the used range is bounded before any reader allocates a grid for it.
    """
    try:
        size = zf.getinfo(name).file_size
    except KeyError:
        return
    if size <= FAST_SCAN_BYTES:
        data = read_member(zf, name) or b""
        cut = fast.split(data) if book is not None else None
        region = _markup_region(data, cut)
        if declares_markup(region):
            raise ProbeProblem("file-malicious", f"部件 {name} 含有DTD或实体声明")
        if not careful and _fast_scan(data, info, book, cut, filled):
            return
        info.protected, info.formulas, info.errors, info.read = False, {}, {}, None
    _stream_scan(zf, name, info, filled)


def probe_xlsx(zf: zipfile.ZipFile, careful: bool = False) -> Probe:
    names = set(zf.namelist())
    kind = "xlsm" if "xl/vbaProject.bin" in names else "xlsx"
    probe = Probe(kind=kind, macros="xl/vbaProject.bin" in names, careful=careful)
    probe.properties = _custom_props(zf, careful)
    probe.application = _app(zf, careful)
    wb_xml = read_member(zf, "xl/workbook.xml")
    if wb_xml is None:
        raise ProbeProblem("file-not-workbook", _describe_zip(names))
    locked, defined, sheets, other_epoch = _derived("workbook", wb_xml, _workbook_facts, not careful)
    rels, types = _workbook_rels(zf, probe)
    _hidden_parts(zf, names, probe)
    one_pass = not careful and _derived("names", wb_xml, _plain_sheet_names) and not other_epoch
    clean: set[str] = set()  # parts the one pass read and found free of DTDs
    book = _fast_book(zf, names, rels, types, clean) if one_pass else None
    if locked is not None:
        probe.structure_locked = locked
    for name, text in defined:
        _defined_name(name, text, probe)
    filled = Filled(tool_sheets(probe.properties))
    scanned, checked = _scan_sheets(zf, probe, sheets, rels, types, book, filled)
    _declared_markup(zf, checked | clean | _PARSED if len(names) == len(zf.infolist()) else set())  # a repeated name: each
    probe.large_parts = _large_parts(zf, _XLSX_NEEDED | scanned)
    if book is not None and len(sheets) == len(probe.sheets) and all(i.read is not None for i in probe.sheets.values()):
        probe.values = {n: i.read for n, i in probe.sheets.items() if i.read is not None}
    return probe


def _scan_sheets(
    zf: zipfile.ZipFile,
    probe: Probe,
    sheets: list[tuple[str, str, str]],
    rels: dict[str, str],
    types: dict[str, str],
    book: fast.Workbook | None,
    filled: Filled,
) -> tuple[set[str], set[str]]:
    """Every worksheet part, bounded: those the workbook lists (returned first) and any other part that
    looks like one (returned second, with the first: every part whose markup has been checked)."""
    scanned: set[str] = set()
    for name, state, rid in sheets:
        part = _sheet_parts(zf, rels.get(rid, ""))
        info = SheetInfo(name=name, state=state, part=part, source=zf)
        probe.sheets[name] = info
        if part:
            exact = part == rels.get(rid) and types.get(rid) == "worksheet"
            _sheet_xml(zf, part, info, book if exact else None, filled, probe.careful)
            scanned.add(part)
            _check_book(probe)
    checked = set(scanned)
    for part in sorted(set(zf.namelist()) - scanned):  # worksheet parts no relationship we understood points at: bound them too
        if part.lower().endswith(".xml") and "sheet" in part.lower() and part.lower().startswith("xl/"):
            _bound_unread(zf, part, filled, probe.careful)
            checked.add(part)
    _check_book(probe)
    return scanned, checked


def _bound_unread(zf: zipfile.ZipFile, part: str, filled: Filled, careful: bool) -> None:
    """A worksheet-like part no relationship points at: no reader reads it, so it is only bounded —
    by the scan, or, when the XML parser finds it is no well-formed XML (an unbound prefix, as in
    ``<xm:macrosheet/>``, which the fast scan leaves to the parser), by counting its cell tags. Such
    a part does not make the workbook unreadable (its report says what it hides: macros-hidden)."""
    try:
        _sheet_xml(zf, part, SheetInfo(name=part), None, filled, careful)
    except XMLInvalid:
        data = read_member(zf, part) or b""
        if declares_markup(data):
            raise ProbeProblem("file-malicious", f"部件 {part} 含有DTD或实体声明") from None
        filled.touch(part, len(_CELL_TAG.findall(data)))


def probe(data: bytes, careful: bool = False) -> tuple[Probe, zipfile.ZipFile]:
    """Classify and probe; raises ProbeProblem with a catalogue code when it is not a usable workbook.
    ``careful``: the XML parser only, nothing remembered between files, values left to calamine —
    the reference the fast reading is proven equal to; the result is the same either way."""
    if len(data) > MAX_FILE_BYTES:
        raise ProbeProblem("file-too-large", f"文件{len(data) // 1048576}MB，上限{MAX_FILE_BYTES // 1048576}MB")
    kind = sniff(data)
    if kind == "empty":
        raise ProbeProblem("file-empty")
    if kind == "ole2":
        raise ProbeProblem("file-xls")
    if kind == "encrypted":
        raise ProbeProblem("file-encrypted")
    if kind == "pdf":
        raise ProbeProblem("file-not-workbook", "PDF文件")
    if kind == "markup":
        raise ProbeProblem("file-not-workbook", "网页或XML文本")
    if kind == "other":
        head = data[:2048]
        try:
            head.decode("utf-8")
            what = "文本文件（可能是CSV）"
        except UnicodeDecodeError:
            try:
                head.decode("gb18030")
                what = "文本文件（可能是CSV）"
            except UnicodeDecodeError:
                what = "无法识别的二进制数据"
        raise ProbeProblem("file-not-workbook", what)
    zf = open_zip(data, careful=careful)
    names = set(zf.namelist())
    if "xl/workbook.xml" in names:
        return probe_xlsx(zf, careful), zf
    mimetype = read_member(zf, "mimetype")
    if mimetype and mimetype.strip() == b"application/vnd.oasis.opendocument.spreadsheet":
        return probe_ods(zf), zf
    raise ProbeProblem("file-not-workbook", _describe_zip(names))


def open_workbook(data: bytes, careful: bool = False) -> tuple[Probe, fast.Book]:
    """The facts of a workbook and a ``Book`` of its values: the fast reader's grids when it read
    every sheet (``Probe.values``), else python-calamine's (also for .ods). Raises ``ProbeProblem``."""
    pr, _zf = probe(data, careful=careful)
    if pr.values is not None:
        return pr, fast.FastBook(pr.values)
    from python_calamine import CalamineWorkbook

    try:
        return pr, fast.CalamineBook(CalamineWorkbook.from_filelike(io.BytesIO(data)))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - includes pyo3 PanicException
        raise ProbeProblem("file-unreadable", f"{type(e).__name__}: {e}"[:300]) from e
