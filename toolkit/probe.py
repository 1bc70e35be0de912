"""Look inside a workbook's zip without trusting it: what kind of file it is, its
identity properties, protection, formulas, sheet states — parsed with defusedxml
and bounded in size, so a zip bomb or an XML bomb is a finding, never a hang.
"""

from __future__ import annotations

import functools
import io
import math
import os
import posixpath
import re
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from defusedxml import ElementTree as DET

from . import xlsx_fast
from .spec import a1, conventions

MAX_FILE_BYTES = 20 * 1024 * 1024  # a return is ~20 KB; 20 MB is generous
MAX_MEMBERS = 300
MAX_UNCOMPRESSED = 60 * 1024 * 1024  # all members together
MAX_MEMBER = 30 * 1024 * 1024
MAX_RATIO = 200  # compressed → uncompressed, for members above 1 MB
MAX_COLS = 300  # per sheet; a return uses 15, a summary's 明细 about 210
MAX_CELLS = 3_000_000  # rows × columns of a sheet's used range (a 明细 of ~14,000 units)
MAX_ROWS = MAX_CELLS // 10
MAX_BOOK_CELLS = MAX_CELLS + 500_000  # all sheets of a workbook: a summary's 明细 plus its small tables
CHUNK = 64 * 1024  # bytes of a zip member handed to the XML parser at a time
# The parts a return does not need (theme, pictures, embedded objects, printer settings…), all
# together: a return is ~20 KB zipped, its theme ~7 KB, LibreOffice's extra parts ~10 KB; a logo or
# a small screenshot still passes, a 19.5 MB picture (a link holder filling the county's disk) does not.
MAX_EXTRA_PARTS = 512 * 1024
# Filled cells of the sheets people fill (not the 明细 or 报送情况 this tool writes into a summary):
# a return has ~570 with its labels, so 10,000 leaves room for notes beside the tables, while
# 850,000 numbers below the tables (12 s of reading, no finding) stop after the first 10,000.
MAX_FILLED = 10_000
# Cell elements of those sheets, filled or only styled (borders, fills on empty cells): each costs the
# scan and the reader a little, so 200,000 styled empty rows × 12 columns (a 0.6 MB file, 3.7 s of
# reading) are a finding. Returns hold ~570 (Excel, WPS and LibreOffice saves alike; measured on the
# samples and their LibreOffice round trip); 100,000 still lets someone format A1:O6000 of a sheet.
MAX_CELL_ELEMENTS = 100_000

NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
    "cp": "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties",
    "vt": "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes",
    "ep": "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0",
}


_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)


class ProbeProblem(Exception):
    """The file cannot be read as a workbook; ``code`` is a catalogue code."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(detail)
        self.code = code
        self.detail = detail


class Filled:
    """Filled cells counted over the sheets people fill (``MAX_FILLED``): past the limit the file is
    not read on. The sheets this tool writes into a summary (明细 of 14,000 units…) are not counted."""

    def __init__(self, free: frozenset[str] = frozenset(), limit: int | None = None, elements: int | None = None):
        self.free, self.limit, self.count = free, MAX_FILLED if limit is None else limit, 0
        self.element_limit, self.elements = MAX_CELL_ELEMENTS if elements is None else elements, 0

    def add(self, sheet: str, n: int) -> None:
        if n and sheet not in self.free:
            self.count += n
            if self.count > self.limit:
                raise ProbeProblem("cells-outside-tables", f"工作表“{sheet}”等处填了内容的单元格超过{self.limit:,}个")

    def touch(self, sheet: str, n: int) -> None:
        """``n`` cell elements seen, filled or empty: the work bound (``MAX_CELL_ELEMENTS``)."""
        if n and sheet not in self.free:
            self.elements += n
            if self.elements > self.element_limit:
                raise ProbeProblem(
                    "cells-outside-tables",
                    f"工作表“{sheet}”等处的单元格超过{self.element_limit:,}个，多是只设了边框或底色的空单元格；"
                    "请选中表格下方和右侧多余的行、列，右键“删除”（不是只清除内容）",
                )

    def over(self, sheet: str, data: bytes) -> None:
        """The work bound checked on a whole part before it is scanned: a cheap count of ``<c`` (also
        ``<col``, ``<cfRule``…) and, only when that alone is over the bound, the exact count of cell tags."""
        if sheet in self.free or self.elements + data.count(b"<c") <= self.element_limit:
            return
        exact = len(_CELL_TAG.findall(data))
        if self.elements + exact > self.element_limit:
            self.touch(sheet, exact)  # raises; below the bound the scan's own count is added instead


_CELL_TAG = re.compile(rb"<c[\s/>]")


def tool_sheets(properties: dict[str, str] | None = None) -> frozenset[str]:
    """Sheets this tool writes beside the tables of a summary (明细 of thousands of units, 报送情况…),
    not counted by ``Filled`` — for a file that claims to be a summary (``properties``; None: any file).
    An ordinary return has none of them large, so a sheet named 明细 there is counted like any other."""
    conv = conventions()
    if properties is not None and properties.get(conv.prefix + "level", "填报单位") in ("", "填报单位"):
        return frozenset()
    return frozenset({*conv.summary_names.values(), conv.detail_sheet, conv.findings_sheet})


@dataclass
class SheetInfo:
    name: str
    state: str = "visible"  # visible | hidden | veryHidden
    protected: bool = False
    formulas: dict[str, str] = field(default_factory=dict)  # A1 → formula text
    errors: dict[str, str] = field(default_factory=dict)  # A1 → error value (#DIV/0! …)
    cells: int = 0  # rows × columns of the used range (what a dense reader allocates)
    read: xlsx_fast.Cells | None = field(default=None, compare=False, repr=False)  # values of the one pass
    # A1 → the text as typed of a number cell that is no finite number (1e309, 100,000 nines): found in
    # one more pass over ``part`` of ``source`` when first asked (``typed_text``); an .ods fills it as it is read.
    typed: dict[str, str] | None = field(default=None, compare=False, repr=False)
    part: str = field(default="", compare=False, repr=False)
    source: zipfile.ZipFile | None = field(default=None, compare=False, repr=False)


@dataclass
class Probe:
    kind: str  # xlsx | xlsm | ods
    application: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    sheets: dict[str, SheetInfo] = field(default_factory=dict)
    structure_locked: bool = False
    macros: bool = False
    external_links: list[str] = field(default_factory=list)
    macros_hidden: list[str] = field(default_factory=list)  # VBA or XLM macros where a reader does not look for them
    ole_objects: list[str] = field(default_factory=list)  # embedded objects, ActiveX controls
    dde_links: list[str] = field(default_factory=list)  # DDE in defined names or external link parts
    unsafe_names: list[str] = field(default_factory=list)  # defined names that call functions or other files
    large_parts: list[str] = field(default_factory=list)  # parts the format does not need, when too large together
    # Every sheet's values read in the probe's one pass (xlsx_fast), in workbook order; None: calamine reads them.
    values: dict[str, xlsx_fast.Cells] | None = field(default=None, compare=False, repr=False)


def sniff(data: bytes) -> str:
    """What the bytes are, whatever the file name says."""
    if not data:
        return "empty"
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        # OLE2: an encrypted OOXML workbook or a legacy .xls/.et
        return "encrypted" if "EncryptionInfo".encode("utf-16-le") in data else "ole2"
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        return "zip"
    if data[:5] == b"%PDF-":
        return "pdf"
    if data[:5].lower() in (b"<?xml", b"<html") or data[:9].lower() == b"<!doctype":
        return "markup"
    return "other"


def _describe_zip(names: set[str]) -> str:
    if "word/document.xml" in names:
        return "Word文档（.docx）"
    if "ppt/presentation.xml" in names:
        return "PowerPoint演示文稿"
    if "xl/workbook.bin" in names:
        return "Excel二进制工作簿（.xlsb），请另存为 .xlsx"
    return "其他压缩文件"


def open_zip(
    data: bytes | str | os.PathLike,
    *,
    max_members: int = MAX_MEMBERS,
    max_total: int = MAX_UNCOMPRESSED,
    per_member: bool = True,
    what: str = "文件",
) -> zipfile.ZipFile:
    """Open a zip (bytes, or a path: then nothing is read until asked) and enforce the limits before
    anything is decompressed. An archive of returns passes per_member=False: its members are
    bounded one by one, so one bomb does not sink the rest."""
    try:
        zf = _BytesZip(data) if isinstance(data, bytes) else zipfile.ZipFile(data)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise ProbeProblem("file-unreadable", f"{what}已损坏（压缩结构无效：{e}）") from e
    infos = zf.infolist()
    if len(infos) > max_members:
        raise ProbeProblem("file-too-large", f"{what}内有{len(infos)}个部件，上限{max_members}")
    total = 0
    for info in infos:
        total += info.file_size
        if per_member and info.file_size > MAX_MEMBER:
            raise ProbeProblem("file-too-large", f"部件 {info.filename} 解压后{info.file_size // 1048576}MB")
        if per_member and info.file_size > 1_048_576 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ProbeProblem("file-too-large", f"部件 {info.filename} 压缩比异常")
    if total > max_total:
        raise ProbeProblem("file-too-large", f"{what}解压后共{total // 1048576}MB")
    return zf


class _BytesZip(zipfile.ZipFile):
    """A zip held in memory: ``read_member`` can inflate its members straight from the bytes."""

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data))
        self.source = data


RAW = True  # False: every member read through zipfile's file objects (tests compare both)

try:  # zlib-ng inflates ~1.5× and checks CRCs ~3× faster than zlib, to the same bytes
    from zlib_ng import zlib_ng as _zlib
except ImportError:  # pragma: no cover - a platform without its wheel
    import zlib as _zlib


def _inflate(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | None:
    """A member inflated straight from the bytes of a zip in memory, skipping zipfile's file objects
    (a return has a dozen small members, and their set-up cost as much as inflating them). Only the
    plain case: a local header that agrees with the directory, deflate or stored, the declared size
    and CRC exactly. Anything else gives None, and zipfile reads the member (and says what is wrong)."""
    data = getattr(zf, "source", None)
    if data is None or not RAW or info.flag_bits & 0x61 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return None
    off = info.header_offset
    if data[off : off + 4] != b"PK\x03\x04" or off + 30 > len(data):
        return None
    (flags,) = struct.unpack_from("<H", data, off + 6)
    name_len, extra_len = struct.unpack_from("<HH", data, off + 26)
    try:
        local = data[off + 30 : off + 30 + name_len].decode("utf-8" if flags & 0x800 else "cp437")
    except UnicodeDecodeError:
        return None
    start = off + 30 + name_len + extra_len
    end = start + info.compress_size
    limit = getattr(info, "_end_offset", None)  # newer Pythons refuse overlapping members
    if local != info.orig_filename or end > len(data) or (limit is not None and end > limit):
        return None
    key = (info.compress_type, info.CRC, info.file_size, data[start:end]) if info.compress_size <= 4096 and MEMO else None
    if key is not None and key in _INFLATED:  # the same compressed bytes as a member read before
        return _INFLATED[key]
    if info.compress_type == zipfile.ZIP_STORED:
        out = data[start:end]
    else:
        inflater = _zlib.decompressobj(-15)
        try:
            out = inflater.decompress(memoryview(data)[start:end], info.file_size + 1)
        except _zlib.error:
            return None
        if not inflater.eof:
            return None
    if len(out) != info.file_size or _zlib.crc32(out) != info.CRC:
        return None
    if key is not None:
        if len(_INFLATED) >= 256:
            _INFLATED.clear()
        _INFLATED[key] = out
    return out


# Small members inflated before, by their compressed bytes (workbook.xml, its relationships, the
# content types and styles are the same in every return of a template): the same bytes inflate to
# the same part, which passed its CRC check when first read.
_INFLATED: dict[tuple[int, int, int, bytes], bytes] = {}


def read_member(zf: zipfile.ZipFile, name: str | zipfile.ZipInfo) -> bytes | None:
    """A member's bytes (by name, or by its entry when names repeat), reading at most its declared
    size (a lying header cannot inflate more)."""
    try:
        info = name if isinstance(name, zipfile.ZipInfo) else zf.getinfo(name)
    except KeyError:
        return None
    if info.flag_bits & 0x1:
        raise ProbeProblem("file-encrypted", f"部件 {info.filename} 设置了密码")
    inflated = _inflate(zf, info)
    if inflated is not None:
        return inflated
    try:
        with zf.open(info) as fh:
            data = fh.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
        raise ProbeProblem("file-unreadable", f"部件 {info.filename} 已损坏（{e}）") from e
    if len(data) > info.file_size:
        raise ProbeProblem("file-too-large", f"部件 {info.filename} 实际大小超过声明")
    return data


def parse_xml(data: bytes, name: str):
    try:
        return DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DET.ParseError as e:
        raise ProbeProblem("file-unreadable", f"部件 {name} 的XML无效（{e}）") from e
    except Exception as e:  # defusedxml raises DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
        raise ProbeProblem("file-malicious", f"部件 {name} 含有DTD、实体或外部引用（{type(e).__name__}）") from e


# Parts that are byte-for-byte the same in every return of a template (workbook, its relationships,
# content types; not app.xml, which names the unit): parsed once per process. The results are only
# read, never changed; a part that fails to parse is not remembered (it fails again, with the same message).
_DERIVED: dict[tuple[str, bytes], Any] = {}
MEMO = True  # False: every part parsed again (tests compare both)


def _derived(kind: str, data: bytes, fn):
    """``fn(data)`` for a part most returns share, remembered by its exact bytes (a bounded memo)."""
    if not MEMO or len(data) > 65536:
        return fn(data)
    key = (kind, data)
    out = _DERIVED.get(key)
    if out is None:
        out = fn(data)
        if len(_DERIVED) >= 128:
            _DERIVED.clear()
        _DERIVED[key] = out
    return out


def parse_shared(data: bytes, name: str):
    """``parse_xml`` for a part most returns share."""
    return _derived("xml:" + name, data, lambda d: parse_xml(d, name))


# docProps in the exact shape Excel, LibreOffice and XlsxWriter write them, as a whole-document
# grammar: a match is well-formed XML whose elements are all accounted for, so reading it with
# these patterns gives what the XML parser gives. Anything else is parsed (DOCPROPS False: always).
DOCPROPS = True
_STD_DECL = rb'<\?xml version="1\.0" encoding="UTF-8" standalone="yes"\?>\r?\n'
_VT = rb'xmlns:vt="http://schemas\.openxmlformats\.org/officeDocument/2006/docPropsVTypes"'
_CUSTOM_DOC = re.compile(
    _STD_DECL + rb'<Properties xmlns="http://schemas\.openxmlformats\.org/officeDocument/2006/custom-properties" ' + _VT + rb">"
    rb'((?:<property fmtid="[^"<>&]*" pid="\d{1,9}" name="[^"<>&\t\n\r]*">'  # no tab or line break: the parser makes them spaces
    rb"<vt:(\w{1,20})>[^<]*</vt:\2></property>)*)</Properties>\s*"
)
_PROPERTY = re.compile(rb'<property fmtid="[^"]*" pid="\d+" name="([^"]*)"><vt:(\w+)>([^<]*)</vt:\w+></property>')
_APP_DOC = re.compile(
    _STD_DECL + rb'<Properties xmlns="http://schemas\.openxmlformats\.org/officeDocument/2006/extended-properties" ' + _VT + rb">"
    rb"(?:<(\w{1,40})>[^<]*</\1>|<\w{1,40}/>|<(\w{1,40})><vt:vector size=\"\d{1,6}\" baseType=\"\w{1,20}\">"
    rb"(?:<vt:variant><vt:(\w{1,20})>[^<]*</vt:\3></vt:variant>|<vt:(\w{1,20})>[^<]*</vt:\4>)*</vt:vector></\2>)*"
    rb"</Properties>\s*"
)


def _property_text(kind: str, text: str) -> str:
    text = text.strip()
    if kind in ("r8", "r4", "decimal"):  # LibreOffice turns i4 into r8: 2025 → 2025.0
        try:
            f = float(text)
            text = str(int(f)) if f.is_integer() else text
        except ValueError:
            pass
    return text


def _custom_props(zf: zipfile.ZipFile) -> dict[str, str]:
    data = read_member(zf, "docProps/custom.xml")
    if not data:
        return {}
    fast = _custom_props_fast(data) if DOCPROPS else None
    if fast is not None:
        return fast
    root = parse_xml(data, "docProps/custom.xml")
    out = {}
    for prop in root.findall("cp:property", NS):
        name = prop.get("name", "")
        val = next(iter(prop), None)
        if name and val is not None:
            out[name] = _property_text(_local(val.tag) if "}" in str(val.tag) else "", val.text or "")
    return out


def _custom_props_fast(data: bytes) -> dict[str, str] | None:
    m = _CUSTOM_DOC.fullmatch(data) if b"]]>" not in data else None  # the XML parser refuses ]]> in text
    if m is None:
        return None
    out = {}
    for raw_name, kind, raw_text in _PROPERTY.findall(m.group(1)):
        name, text = xlsx_fast.xml_text(raw_name), xlsx_fast.xml_text(raw_text)
        if name is None or text is None:
            return None
        if name:
            out[name] = _property_text(kind.decode(), text)
    return out


def claimed_properties(path: str | os.PathLike) -> dict[str, str]:
    """The custom properties a workbook claims (docProps/custom.xml alone); {} when it has none or is
    not a readable zip. Nothing else is decompressed: the output guard asks this of a 10,000-unit
    summary before replacing it, where reading the whole workbook would take seconds."""
    try:
        with open_zip(path) as zf:
            return _custom_props(zf)
    except (ProbeProblem, OSError):
        return {}


_APPLICATION = re.compile(rb"<Application>([^<]*)</Application>")
_APP_VERSION = re.compile(rb"<AppVersion>([^<]*)</AppVersion>")


def _app_fast(data: bytes) -> str | None:
    if b"]]>" in data or not _APP_DOC.fullmatch(data):
        return None
    parts = []
    for rx in (_APPLICATION, _APP_VERSION):
        m = rx.search(data)
        text = xlsx_fast.xml_text(m.group(1)) if m else ""
        if text is None:
            return None
        parts.append(text.strip())
    return f"{parts[0]} {parts[1]}".strip()


def _app(zf: zipfile.ZipFile) -> str:
    data = read_member(zf, "docProps/app.xml")
    if not data:
        return ""
    fast = _app_fast(data) if DOCPROPS else None
    if fast is not None:
        return fast
    root = parse_xml(data, "docProps/app.xml")
    app = root.findtext("ep:Application", default="", namespaces=NS).strip()
    ver = root.findtext("ep:AppVersion", default="", namespaces=NS).strip()
    return f"{app} {ver}".strip()


def _local(tag) -> str:
    """The local name of an element, whatever its namespace or prefix ('' for comments and PIs)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _pull_parser(tags: tuple[str, ...], events: tuple[str, ...] = ("end",)):
    from lxml import etree

    return etree.XMLPullParser(
        events=events, tag=tags, resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, remove_comments=True
    )


def stream_events(zf: zipfile.ZipFile, name: str, parser) -> Iterator[tuple[str, Any]]:
    """Feed a zip member to an lxml pull parser in bounded chunks and yield its events.

    The member is never held in memory whole; a DTD (entity declarations) is refused before any
    element is handed on; malformed XML is a finding. zipfile stops at the declared size.
    """
    from lxml import etree

    try:
        info = zf.getinfo(name)
    except KeyError:
        return
    checked = False
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(CHUNK):
                parser.feed(chunk)
                for ev, el in parser.read_events():
                    if not checked:
                        checked = True
                        doc = el.getroottree().docinfo
                        if doc.doctype or doc.internalDTD is not None:
                            raise ProbeProblem("file-malicious", f"部件 {name} 含有DTD或实体声明")
                    yield ev, el
            parser.close()
            yield from parser.read_events()
    except etree.XMLSyntaxError as e:
        raise ProbeProblem("file-unreadable", f"部件 {name} 的XML无效（{e}）") from e
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
        raise ProbeProblem("file-unreadable", f"部件 {name} 已损坏（{e}）") from e


@functools.lru_cache(maxsize=65536)
def _ref(ref: str | None) -> tuple[int, int]:
    """'XFD1048576' → (1048576, 16384); (0, 0) when there is no usable reference."""
    if not ref:
        return 0, 0
    m = _REF.fullmatch(ref)
    if not m:
        return 0, 0
    return _rowcol(m.group(1) + m.group(2))


_REF = re.compile(r"\s*\$?([A-Za-z]{1,3})\$?(\d{1,7})\s*")


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
        _drop_previous(el)

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
            if self.max_col > MAX_COLS or self.max_row > MAX_ROWS or self.max_row * self.max_col > MAX_CELLS:
                _check_extent(self.info.name, self.max_row, self.max_col)
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
            scan = _SheetScan(SheetInfo(name=info.name), None, info.typed)
            try:
                for _ev, el in stream_events(info.source, info.part, _pull_parser(("{*}row", "{*}sheetData"))):
                    (scan.row_end if _local(el.tag) == "row" else scan.cells)(el)
            except ProbeProblem:
                pass
    return info.typed.get(addr)


def _drop_previous(el) -> None:
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]


def _sheet_xml(
    zf: zipfile.ZipFile, name: str, info: SheetInfo, book: xlsx_fast.Workbook | None = None, filled: Filled | None = None
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
        cut = xlsx_fast.split(data) if book is not None else None
        region = _markup_region(data, cut)
        if b"!" in region and b"<!" in region and _DTD.search(region):
            raise ProbeProblem("file-malicious", f"部件 {name} 含有DTD或实体声明")
        if _fast_scan(data, info, book, cut, filled):
            return
        info.protected, info.formulas, info.errors, info.read = False, {}, {}, None
    _stream_scan(zf, name, info, filled)


def _stream_scan(zf: zipfile.ZipFile, name: str, info: SheetInfo, filled: Filled | None = None) -> None:
    scan = _SheetScan(info, filled)
    parser = _pull_parser(("{*}row", "{*}sheetData", "{*}sheetProtection"))
    for _ev, el in stream_events(zf, name, parser):
        tag = _local(el.tag)
        if tag == "row":
            scan.row_end(el)
        elif tag == "sheetData":  # cells written outside any row
            scan.cells(el)
        elif tag == "sheetProtection":
            info.protected = (el.get("sheet") or "").strip().lower() in ("1", "true")
    _check_extent(info.name, scan.max_row, scan.max_col)
    info.cells = scan.max_row * scan.max_col


FAST_SCAN_BYTES = 4 * 1024 * 1024
_PROT = re.compile(rb"<sheetProtection\s([^<>]*)/?>")
_SHEET_ATTR = re.compile(rb'\ssheet="(1|true)"')
_ODD = re.compile(rb"<[A-Za-z_][\w.-]*:(?:c|row|f|v|is|sheetData|sheetProtection)[\s/>]|<!\[CDATA\[|\st\s*=\s*[\"']e")
# What _odd looks for, in cheaper passes (a literal is found with a C loop): a prefixed element,
# CDATA, and an error value spelled t="e as the fast scan's cells spell their attributes.
_ODD_PREFIXED = re.compile(rb"<[A-Za-z_][\w.-]*:(?:c|row|f|v|is|sheetData|sheetProtection)[\s/>]")


_ODD_SUFFIX = re.compile(rb":(?:c|row|f|v|is|sheetData|sheetProtection)[\s/>]")


def _prefixed(data: bytes) -> bool:
    """``_ODD_PREFIXED.search(data) is not None``, searching from the colons (a literal, found fast)
    rather than from every '<': a prefixed name's '<' is the last one before its colon, and after
    the colon of the previous match (a name holds no colon) — so each byte is looked at once."""
    after = -1
    for m in _ODD_SUFFIX.finditer(data):
        lt = data.rfind(b"<", after + 1, m.start())
        if lt >= 0 and _ODD_PREFIXED.match(data, lt):
            return True
        after = m.start()
    return False


def _odd(data: bytes) -> bool:
    """A part the fast scan leaves to the XML parser: prefixed elements, CDATA, or error values.

    ``_ODD`` (the careful definition, kept for the tests) also finds an error type spelled with
    spaces or single quotes (t = 'e'). Looking for those costs more than the rest of this test, and
    they need no looking for: the fast scan reads a cell only when its attributes are spelled
    name="value" and its type is one it reads, spelled plainly (``xlsx_fast._plain_type``: not
    t=" e" or t="&#101;", which the XML parser reads as errors), so any other spelling in a cell
    sends the whole part to the XML parser anyway; outside a cell an error type means nothing."""
    return (b"!" in data and b"<![CDATA[" in data) or b't="e' in data or _prefixed(data)  # "!": one memchr


_DECL = re.compile(
    rb"(?:\xef\xbb\xbf)?(?:<\?xml[^>]*?encoding\s*=\s*[\"']utf-?8[\"']|<\?xml(?![^>]*encoding)|<(?!\?xml))", re.IGNORECASE
)


def _markup_region(data: bytes, cut: xlsx_fast.Split | None) -> bytes:
    """Where a part's markup checks look: after the sheet data when the part has a quiet skeleton
    (``Split.quiet`` says why that finds the same), else the whole part."""
    return data[cut.end :] if cut is not None and cut.quiet else data


def _fast_scan(
    data: bytes,
    info: SheetInfo,
    book: xlsx_fast.Workbook | None = None,
    cut: xlsx_fast.Split | None = None,
    filled: Filled | None = None,
) -> bool:
    """The canonical shape, or False. Accepted only when every tag start of a cell and of a
    formula is one the patterns read whole (``xlsx_fast.scan``): UTF-8, no namespace prefixes on
    the elements that matter, every cell's r= first and double-quoted, no second r=, formulas
    plain text, no error values (those go the careful way), at most one sheetProtection in the
    plain form. With ``book``, the same pass also reads the values (``info.read``). With ``cut``
    (``xlsx_fast.split(data)``) of a quiet skeleton, the markup is looked for after the sheet data
    only (``Split.quiet`` says why that finds the same)."""
    region = _markup_region(data, cut)
    if not _DECL.match(data) or _odd(region):
        return False
    protections = region.count(b"<sheetProtection")
    if protections > 1 or (protections and protections > len(_PROT.findall(region))):
        return False
    if filled is not None:
        filled.over(info.name, data)
    cells = xlsx_fast.scan(data, book, cut)
    if cells is None:
        return False
    if filled is not None:
        filled.touch(info.name, cells.elements)
    prot = _PROT.search(region)
    info.protected = bool(prot and _SHEET_ATTR.search(b" " + prot.group(1)))
    if cells.max_row:
        _check_extent(info.name, cells.max_row, cells.max_col)
        info.cells = cells.max_row * cells.max_col
    if filled is not None:
        filled.add(info.name, cells.filled)
    info.formulas.update(cells.formulas)
    info.read = cells if cells.values is not None else None
    return True


def _rowcol(ref: str) -> tuple[int, int]:
    ref = ref.replace("$", "").upper()
    letters = ref.rstrip("0123456789")
    digits = ref[len(letters) :]
    col = 0
    for ch in letters:
        if "A" <= ch <= "Z":
            col = col * 26 + (ord(ch) - 64)
    return (int(digits) if digits.isdigit() else 0), col


def _check_book(probe: Probe) -> None:
    """All sheets together: a reader may hold every sheet's grid at once."""
    total = sum(s.cells for s in probe.sheets.values())
    if total > MAX_BOOK_CELLS:
        raise ProbeProblem("file-too-large", f"各工作表合计{total}个单元格，上限{MAX_BOOK_CELLS}个")


def _check_extent(sheet: str, rows: int, cols: int) -> None:
    """Refuse a sheet whose used range would make a dense reader allocate millions of cells."""
    if cols > MAX_COLS or rows > MAX_ROWS or rows * cols > MAX_CELLS:
        raise ProbeProblem(
            "file-too-large",
            f"工作表“{sheet}”的范围过大（{rows}行×{cols}列），上限{MAX_ROWS}行、{MAX_COLS}列、共{MAX_CELLS}个单元格",
        )


def _attr(el, local: str) -> str:
    """An attribute by local name, whatever namespace prefix it was written with."""
    for k, v in el.attrib.items():
        if _local(k) == local:
            return v
    return ""


def _workbook_rels(zf: zipfile.ZipFile, probe: Probe) -> tuple[dict[str, str], dict[str, str]]:
    """The workbook's relationships: id → part, and id → type (the last segment of its Type)."""
    rel_xml = read_member(zf, "xl/_rels/workbook.xml.rels")
    if not rel_xml:
        return {}, {}
    rels, external, types = _derived("rels", rel_xml, _rels_of)
    probe.external_links.extend(external)
    return dict(rels), types


def _rels_of(rel_xml: bytes) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """The workbook's relationships: id → part, the external links in their order, id → type."""
    rels: dict[str, str] = {}
    types: dict[str, str] = {}
    external: list[str] = []
    for rel in parse_shared(rel_xml, "xl/_rels/workbook.xml.rels").iter():
        if _local(rel.tag) != "Relationship":
            continue
        target = rel.get("Target", "").replace("\\", "/")
        if rel.get("TargetMode", "") == "External":
            external.append(target)
            continue
        target = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
        rels[rel.get("Id", "")] = target
        types[rel.get("Id", "")] = rel.get("Type", "").rsplit("/", 1)[-1]
        if rel.get("Type", "").endswith("/externalLink"):
            external.append(target)
    return rels, external, types


VALUES = True  # False: values always read by calamine (tests compare both)
_BOOK_PARTS = {"sharedStrings": "xl/sharedStrings.xml", "styles": "xl/styles.xml"}


def _fast_book(zf: zipfile.ZipFile, names: set[str], rels: dict[str, str], types: dict[str, str]) -> xlsx_fast.Workbook | None:
    """What the one pass needs to read values (shared strings, the kind of each cell style); None
    when anything about the workbook leaves calamine's reading in doubt: repeated member names,
    shared strings or styles elsewhere than where calamine reads them, parts it may read otherwise."""
    if not VALUES or len(names) != len(zf.infolist()) or "xl/styles.xml" not in names:
        return None
    for kind, path in _BOOK_PARTS.items():
        targets = [rels[i] for i, t in types.items() if t == kind]
        if targets != ([path] if path in names else []):
            return None
    try:
        strings: list[str] | None = []
        if "xl/sharedStrings.xml" in names:
            data = read_member(zf, "xl/sharedStrings.xml") or b""
            strings = xlsx_fast.shared_strings(data) if _DECL.match(data) else None
        styles = _derived("styles", read_member(zf, "xl/styles.xml") or b"", _style_kinds)
    except ProbeProblem:
        return None
    return xlsx_fast.Workbook(strings, styles) if strings is not None else None


def _style_kinds(data: bytes) -> tuple[str, ...]:
    return xlsx_fast.style_kinds(parse_xml(data, "xl/styles.xml"))


_SHEET_TAG = re.compile(rb"<sheet\s[^<]*")  # up to the next tag: a '>' inside a name does not end it


def _plain_sheet_names(wb_xml: bytes) -> bool:
    """No entity, tab or line break in a sheet element: its name reads the same to every parser."""
    return not any(ch in tag for tag in _SHEET_TAG.findall(wb_xml) for ch in (b"&", b"\t", b"\n", b"\r"))


def _sheet_parts(zf: zipfile.ZipFile, target: str) -> str:
    """The member a sheet's relationship points at, as leniently as a reader would find it."""
    names = zf.namelist()
    if target in names:
        return target
    lower = {n.lower(): n for n in names}
    return lower.get(target.lower(), "")


# Functions a template's own formulas use; anything else in a formula is someone else's doing.
SAFE_FUNCTIONS = frozenset({"SUM", "IF", "ISERROR", "ABS", "OF:SUM", "OF:IF", "OF:ISERROR", "OF:ABS"})
_FUNC = re.compile(r"([A-Za-z_][A-Za-z0-9_.:]*)\s*\(")
_EXTERNAL = re.compile(r"\[\s*\d+\s*\]|'[^']*\[|\[[^\]]*\.xls|file:|https?:|\\\\|#\$", re.IGNORECASE)


def formula_risk(text: str) -> str:
    """``_formula_risk``, remembered for the short formulas every return repeats."""
    return _formula_risk_memo(text) if len(text) <= 256 else _formula_risk(text)


def _formula_risk(text: str) -> str:
    """Why a formula is not one a template writes ('' when it could be): a DDE call, a reference to
    another file, or a function outside the few the template uses (WEBSERVICE, HYPERLINK, CALL…)."""
    body = re.sub(r'"[^"]*"', '""', text)  # string literals say nothing
    if "|" in body:
        return "DDE调用"
    if _EXTERNAL.search(body):
        return "引用其他文件"
    funcs = {f.upper() for f in _FUNC.findall(body)} - SAFE_FUNCTIONS
    funcs = {f.removeprefix("_XLFN.").removeprefix("_XLWS.").removeprefix("OF:") for f in funcs}
    return f"函数{'、'.join(sorted(funcs))}" if funcs else ""


_formula_risk_memo = functools.lru_cache(maxsize=4096)(_formula_risk)


def _defined_name(name: str, text: str, probe: Probe) -> None:
    risk = formula_risk(text)
    if risk == "DDE调用":
        probe.dde_links.append(f"名称 {name}：{text[:80]}")
    elif risk:
        probe.unsafe_names.append(f"名称 {name}：{text[:80]}（{risk}）")


_MACRO_TYPES = ("vbaproject", "macroenabled", "macrosheet", "vbadata", "ms-excel.intlmacrosheet", "ms-excel.dialogsheet")


def _hidden_parts(zf: zipfile.ZipFile, names: set[str], probe: Probe) -> None:
    """Macros, embedded objects and DDE links wherever they were put, not only where Excel puts them."""
    for n in sorted(names):
        low = n.lower()
        if low.endswith("vbaproject.bin") and n != "xl/vbaProject.bin" or "/macrosheets/" in low or "/dialogsheets/" in low:
            probe.macros_hidden.append(n)
        elif "/embeddings/" in low or "/activex/" in low:
            probe.ole_objects.append(n)
        elif low.startswith("xl/externallinks/") and low.endswith(".xml"):
            _external_part(zf, n, probe)
        elif low.endswith(".bin") and not low.startswith("xl/printersettings/") and n != "xl/vbaProject.bin":
            if (read_member(zf, n) or b"")[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":  # an OLE2 store: VBA or an object
                probe.macros_hidden.append(n)
    _content_types(zf, probe)


def _external_part(zf: zipfile.ZipFile, name: str, probe: Probe) -> None:
    body = read_member(zf, name) or b""
    if re.search(rb"<(?:\w+:)?ddeLink\b", body):
        probe.dde_links.append(name)
    elif re.search(rb"<(?:\w+:)?oleLink\b", body):
        probe.ole_objects.append(name)
    elif name not in probe.external_links:
        probe.external_links.append(name)


def _content_types(zf: zipfile.ZipFile, probe: Probe) -> None:
    types = read_member(zf, "[Content_Types].xml") or b""
    if not types:
        return
    macros, ole = _derived("types", types, _types_of)
    if macros:
        probe.macros = True
    probe.ole_objects.extend(ole)


def _types_of(types: bytes) -> tuple[bool, list[str]]:
    """Whether the content types declare a macro workbook, and the parts declared as objects."""
    macros, ole = False, []
    for el in parse_shared(types, "[Content_Types].xml").iter():
        ctype = (el.get("ContentType") or "").lower()
        part = el.get("PartName") or el.get("Extension") or ""
        if any(t in ctype for t in _MACRO_TYPES):  # declared as a macro workbook: said as such even without a VBA part
            macros = True
        if "oleobject" in ctype or "activex" in ctype:
            ole.append(f"内容类型 {part}")
    return macros, ole


def _workbook_facts(wb_xml: bytes) -> tuple[bool | None, list[tuple[str, str]], list[tuple[str, str, str]], bool]:
    """What workbook.xml says, read once per distinct part (most returns share theirs): whether the
    structure is locked (the last workbookProtection; None without one), the defined names (name,
    formula) and the sheets (name, state, relationship id), each in document order; and whether its
    dates count from anything but 1900 (date1904: then calamine converts the dates)."""
    locked: bool | None = None
    other_epoch = False
    defined: list[tuple[str, str]] = []
    sheets: list[tuple[str, str, str]] = []
    for el in parse_xml(wb_xml, "xl/workbook.xml").iter():
        tag = _local(el.tag)
        if tag == "workbookProtection":
            locked = el.get("lockStructure", "0").strip().lower() in ("1", "true")
        elif tag == "definedName":
            defined.append((el.get("name", ""), el.text or ""))
        elif tag == "sheet":
            sheets.append((el.get("name", ""), el.get("state", "visible"), _attr(el, "id")))
        elif tag == "workbookPr" and _attr(el, "date1904") not in ("", "0", "false"):  # LibreOffice writes "false"
            other_epoch = True
    return locked, defined, sheets, other_epoch


def probe_xlsx(zf: zipfile.ZipFile) -> Probe:
    names = set(zf.namelist())
    kind = "xlsm" if "xl/vbaProject.bin" in names else "xlsx"
    probe = Probe(kind=kind, macros="xl/vbaProject.bin" in names)
    probe.properties = _custom_props(zf)
    probe.application = _app(zf)
    wb_xml = read_member(zf, "xl/workbook.xml")
    if wb_xml is None:
        raise ProbeProblem("file-not-workbook", _describe_zip(names))
    locked, defined, sheets, other_epoch = _derived("workbook", wb_xml, _workbook_facts)
    rels, types = _workbook_rels(zf, probe)
    _hidden_parts(zf, names, probe)
    one_pass = _derived("names", wb_xml, _plain_sheet_names) and not other_epoch
    book = _fast_book(zf, names, rels, types) if one_pass else None
    if locked is not None:
        probe.structure_locked = locked
    for name, text in defined:
        _defined_name(name, text, probe)
    filled = Filled(tool_sheets(probe.properties))
    scanned, checked = _scan_sheets(zf, probe, sheets, rels, types, book, filled)
    _declared_markup(zf, checked | _PARSED if len(names) == len(zf.infolist()) else set())  # a repeated name: look at each
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
    book: xlsx_fast.Workbook | None,
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
            _sheet_xml(zf, part, info, book if exact else None, filled)
            scanned.add(part)
            _check_book(probe)
    checked = set(scanned)
    for part in sorted(set(zf.namelist()) - scanned):  # worksheet parts no relationship we understood points at: bound them too
        if part.lower().endswith(".xml") and "sheet" in part.lower() and part.lower().startswith("xl/"):
            _sheet_xml(zf, part, SheetInfo(name=part), None, filled)
            checked.add(part)
    _check_book(probe)
    return scanned, checked


# Parts of a workbook the reader needs whatever their size (with the worksheets the workbook lists):
# a summary's shared strings and a workbook's styles can be large and still be what they say.
_XLSX_NEEDED = frozenset(
    {
        "[Content_Types].xml",
        "_rels/.rels",
        "docProps/app.xml",
        "docProps/core.xml",
        "docProps/custom.xml",
        "xl/workbook.xml",
        "xl/_rels/workbook.xml.rels",
        "xl/sharedStrings.xml",
        "xl/styles.xml",
    }
)
_ODS_NEEDED = frozenset({"mimetype", "content.xml", "styles.xml", "meta.xml", "settings.xml", "META-INF/manifest.xml"})
_XML_PART = (".xml", ".rels", ".vml", ".rdf")
# Parts always read with a parser that refuses a DTD (``parse_xml``) or with a grammar that has no room
# for one (the docProps patterns), whenever present: their markup needs no second look.
_PARSED = frozenset(
    {"xl/workbook.xml", "xl/_rels/workbook.xml.rels", "[Content_Types].xml", "docProps/custom.xml", "docProps/app.xml"}
)


def _declared_markup(zf: zipfile.ZipFile, checked: set[str]) -> None:
    """Every XML part refuses a DTD or entity declaration, as the worksheets do (``checked``: parts
    whose markup was looked at already): styles, shared strings, theme, drawings — whoever may parse them."""
    for info in zf.infolist():
        if info.filename in checked or not info.filename.lower().endswith(_XML_PART):
            continue
        data = read_member(zf, info) or b""
        if b"!" in data and b"<!" in data and _DTD.search(data):  # "!": one memchr, far faster than "<!"
            raise ProbeProblem("file-malicious", f"部件 {info.filename} 含有DTD或实体声明")


def _large_parts(zf: zipfile.ZipFile, needed: frozenset[str] | set[str]) -> list[str]:
    """The largest parts the format does not need, when together they exceed ``MAX_EXTRA_PARTS``."""
    extra = [i for i in zf.infolist() if i.filename not in needed and not i.is_dir()]
    total = sum(i.file_size for i in extra)
    if total <= MAX_EXTRA_PARTS:
        return []
    extra.sort(key=lambda i: -i.file_size)
    big = [i for i in extra[:3] if i.file_size >= 65536] or extra[:3]  # the theme's 7 KB is not worth naming
    named = [f"{i.filename}（{_size(i.file_size)}）" for i in big]
    if len(extra) > len(big):
        named[-1] += f"，连同其他部件共{_size(total)}"
    return named


def _size(n: int) -> str:
    return f"{n / 1048576:.1f}MB" if n >= 1048576 else f"{max(1, n // 1024)}KB"


def probe_ods(zf: zipfile.ZipFile) -> Probe:
    """OpenDocument spreadsheet (LibreOffice's own format): the same facts from content.xml/meta.xml."""
    probe = Probe(kind="ods", structure_locked=False)
    meta = read_member(zf, "meta.xml")
    if meta:
        root = parse_xml(meta, "meta.xml")
        for ud in root.iter(f"{{{NS['meta']}}}user-defined"):
            name = ud.get(f"{{{NS['meta']}}}name", "")
            text = (ud.text or "").strip()
            if ud.get(f"{{{NS['meta']}}}value-type") == "float":
                try:
                    f = float(text)
                    text = str(int(f)) if f.is_integer() else text
                except ValueError:
                    pass
            probe.properties[name] = text
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
        self.filled = Filled(tool_sheets(probe.properties))

    def table(self, el) -> None:
        t = NS["table"]
        self.info = SheetInfo(name=el.get(f"{{{t}}}name", ""), protected=el.get(f"{{{t}}}protected", "false") == "true")
        self.probe.sheets[self.info.name] = self.info
        self.row = self.max_row = self.max_col = 0

    def row_start(self, el) -> None:
        self.rrep, self.col = _repeat(el, "number-rows-repeated", 1_048_576), 0

    def row_end(self, el) -> None:
        self.row += self.rrep
        el.clear()
        _drop_previous(el)

    def cell(self, el) -> None:
        if self.info is None:
            return
        self.filled.touch(self.info.name, 1)  # the work is per element, a repeat count costs nothing
        crep = _repeat(el, "number-columns-repeated", 16384)
        formula = el.get(f"{{{NS['table']}}}formula")
        if formula or el.get(f"{{{NS['office']}}}value-type") or len(el) or (el.text or "").strip():
            self.max_row = max(self.max_row, self.row + self.rrep)
            self.max_col = max(self.max_col, self.col + crep)
            _check_extent(self.info.name, self.max_row, self.max_col)
            self.info.cells = self.max_row * self.max_col
            _check_book(self.probe)
            self.filled.add(self.info.name, crep * self.rrep)
            self._typed(el)
            if formula and self.row < 2000 and self.col < 200:
                for k in range(min(crep, 200)):
                    self.info.formulas[a1(self.row + 1, self.col + k + 1)] = formula
        self.col += crep
        el.clear()

    def _typed(self, el) -> None:
        """An ``office:value`` that is no finite number, as typed (``SheetInfo.typed``)."""
        assert self.info is not None
        if self.info.typed is None:
            self.info.typed = {}
        value = el.get(f"{{{NS['office']}}}value")
        if value and not_finite(value) and self.row < 2000 and self.col < 200:
            self.info.typed[a1(self.row + 1, self.col + 1)] = value.strip()


def _ods_content(zf: zipfile.ZipFile, probe: Probe) -> None:
    t, o = NS["table"], NS["office"]
    tags = (f"{{{o}}}spreadsheet", f"{{{t}}}table", f"{{{t}}}table-row", f"{{{t}}}table-cell", f"{{{t}}}covered-table-cell")
    scan = _OdsScan(probe)
    for ev, el in stream_events(zf, "content.xml", _pull_parser(tags, ("start", "end"))):
        tag = _local(el.tag)
        if tag == "spreadsheet" and ev == "start":
            probe.structure_locked = el.get(f"{{{t}}}structure-protected", "false") == "true"
        elif tag == "table" and ev == "start":
            scan.table(el)
        elif tag == "table-row":
            (scan.row_start if ev == "start" else scan.row_end)(el)
        elif ev == "end" and tag in ("table-cell", "covered-table-cell"):
            scan.cell(el)


def probe(data: bytes) -> tuple[Probe, zipfile.ZipFile]:
    """Classify and probe; raises ProbeProblem with a catalogue code when it is not a usable workbook."""
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
    zf = open_zip(data)
    names = set(zf.namelist())
    if "xl/workbook.xml" in names:
        return probe_xlsx(zf), zf
    mimetype = read_member(zf, "mimetype")
    if mimetype and mimetype.strip() == b"application/vnd.oasis.opendocument.spreadsheet":
        return probe_ods(zf), zf
    raise ProbeProblem("file-not-workbook", _describe_zip(names))
