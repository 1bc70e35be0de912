"""The zip guard: what the bytes are, the limits enforced before anything is inflated, members
inflated within their declared size, XML parsed or streamed with DTDs and entities refused, and the
work bounds of a sheet (``Filled``). A zip bomb or an XML bomb is a finding, never a hang."""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
from collections.abc import Iterator
from typing import Any

from defusedxml import ElementTree as DET

from ..spec import conventions

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
    "cp": "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties",
    "ep": "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0",
}

_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)


def declares_markup(data: bytes) -> bool:
    """A DTD or entity declaration in an XML part ("!" first: one memchr, far faster than "<!")."""
    return b"!" in data and b"<!" in data and _DTD.search(data) is not None


class ProbeProblem(Exception):
    """The file cannot be read as a workbook; ``code`` is a catalogue code."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(detail)
        self.code = code
        self.detail = detail


class XMLInvalid(ProbeProblem):
    """A part that is no well-formed XML (as the streaming parser found): ``file-unreadable``."""


class Filled:
    """Filled cells counted over the sheets people fill (``MAX_FILLED``): past the limit the file is
    not read on. The sheets this tool writes into a summary (明细 of 14,000 units…) are not counted."""

    def __init__(self, free: frozenset[str] = frozenset()):
        self.free, self.count, self.elements = free, 0, 0

    def add(self, sheet: str, n: int) -> None:
        if n and sheet not in self.free:
            self.count += n
            if self.count > MAX_FILLED:
                raise ProbeProblem("cells-outside-tables", f"工作表“{sheet}”等处填了内容的单元格超过{MAX_FILLED:,}个")

    def touch(self, sheet: str, n: int) -> None:
        """``n`` cell elements seen, filled or empty: the work bound (``MAX_CELL_ELEMENTS``)."""
        if n and sheet not in self.free:
            self.elements += n
            if self.elements > MAX_CELL_ELEMENTS:
                raise ProbeProblem(
                    "cells-outside-tables",
                    f"工作表“{sheet}”等处的单元格超过{MAX_CELL_ELEMENTS:,}个，多是只设了边框或底色的空单元格；"
                    "请选中表格下方和右侧多余的行、列，右键“删除”（不是只清除内容）",
                )

    def over(self, sheet: str, data: bytes) -> None:
        """The work bound checked on a whole part before it is scanned: a cheap count of ``<c`` (also
        ``<col``, ``<cfRule``…) and, only when that alone is over the bound, the exact count of cell tags."""
        if sheet in self.free or self.elements + data.count(b"<c") <= MAX_CELL_ELEMENTS:
            return
        exact = len(_CELL_TAG.findall(data))
        if self.elements + exact > MAX_CELL_ELEMENTS:
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


# Zips that are other documents: a part that tells which, and what to call it.
_OTHER_ZIPS = {
    "word/document.xml": "Word文档（.docx）",
    "ppt/presentation.xml": "PowerPoint演示文稿",
    "xl/workbook.bin": "Excel二进制工作簿（.xlsb），请另存为 .xlsx",
}


def _describe_zip(names: set[str]) -> str:
    return next((what for part, what in _OTHER_ZIPS.items() if part in names), "其他压缩文件")


def open_zip(
    data: bytes | str | os.PathLike,
    *,
    max_members: int = MAX_MEMBERS,
    max_total: int = MAX_UNCOMPRESSED,
    per_member: bool = True,
    what: str = "文件",
    careful: bool = False,
) -> zipfile.ZipFile:
    """Open a zip (bytes, or a path: then nothing is read until asked) and enforce the limits before
    anything is decompressed. An archive of returns passes per_member=False: its members are
    bounded one by one, so one bomb does not sink the rest. ``careful``: members are read through
    zipfile's own file objects, never inflated straight from the bytes (``_inflate``)."""
    try:
        if isinstance(data, bytes):
            zf = zipfile.ZipFile(io.BytesIO(data)) if careful else _BytesZip(data)
        else:
            zf = zipfile.ZipFile(data)
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
    if data is None or info.flag_bits & 0x61 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
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
    shared = info.compress_size <= 4096 and info.orig_filename in _TEMPLATE_PARTS
    key = (info.compress_type, info.CRC, info.file_size, data[start:end]) if shared else None
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
# content types, styles and theme are the same in every return of a template): the same bytes inflate
# to the same part, which passed its CRC check when first read. Only the parts a template repeats
# are remembered: the sheets, shared strings and docProps name the unit, and keeping them would only
# push the shared parts out.
_INFLATED: dict[tuple[int, int, int, bytes], bytes] = {}
_TEMPLATE_PARTS = frozenset(
    {
        "[Content_Types].xml",
        "_rels/.rels",
        "xl/workbook.xml",
        "xl/_rels/workbook.xml.rels",
        "xl/styles.xml",
        "xl/theme/theme1.xml",
    }
)


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


def _derived(kind: str, data: bytes, fn, memo: bool = True):
    """``fn(data)`` for a part most returns share, remembered by its exact bytes (a bounded memo;
    ``memo`` False: computed again, as the careful reading does)."""
    if not memo or len(data) > 65536:
        return fn(data)
    key = (kind, data)
    out = _DERIVED.get(key)
    if out is None:
        out = fn(data)
        if len(_DERIVED) >= 128:
            _DERIVED.clear()
        _DERIVED[key] = out
    return out


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
        raise XMLInvalid("file-unreadable", f"部件 {name} 的XML无效（{e}）") from e
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
        raise ProbeProblem("file-unreadable", f"部件 {name} 已损坏（{e}）") from e


def _drop_previous(el) -> None:
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]


def _check_extent(sheet: str, rows: int, cols: int) -> None:
    """Refuse a sheet whose used range would make a dense reader allocate millions of cells."""
    if cols > MAX_COLS or rows > MAX_ROWS or rows * cols > MAX_CELLS:
        raise ProbeProblem(
            "file-too-large",
            f"工作表“{sheet}”的范围过大（{rows}行×{cols}列），上限{MAX_ROWS}行、{MAX_COLS}列、共{MAX_CELLS}个单元格",
        )


_ENTITY = re.compile(r"&(?:(amp|lt|gt|quot|apos)|#(\d{1,7})|#x([0-9a-fA-F]{1,6}));")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 does not allow
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def xml_text(raw: bytes) -> str | None:
    """Element text as an XML parser gives it; None when the bytes hold anything whose reading is
    not certain here (an unknown entity, a carriage return, an _xHHHH_ escape, invalid UTF-8)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\r" in text or "_x" in text or _NOT_XML.search(text):
        return None
    if "&" not in text:
        return text
    out, pos = [], 0
    for m in _ENTITY.finditer(text):
        out.append(text[pos : m.start()])
        name, dec, hexa = m.groups()
        if name:
            out.append(_NAMED[name])
        else:
            code = int(dec) if dec else int(hexa, 16)
            if not (0x20 <= code <= 0x10FFFF or code in (0x9, 0xA)) or 0xD800 <= code <= 0xDFFF:
                return None
            out.append(chr(code))
        pos = m.end()
    rest = text[pos:]
    if "&" in rest or any("&" in piece for piece in out[::2]):
        return None
    out.append(rest)
    return "".join(out)
