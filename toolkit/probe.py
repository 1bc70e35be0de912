"""Look inside a workbook's zip without trusting it: what kind of file it is, its
identity properties, protection, formulas, sheet states — parsed with defusedxml
and bounded in size, so a zip bomb or an XML bomb is a finding, never a hang.
"""

from __future__ import annotations

import html
import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field

from defusedxml import ElementTree as DET

from .spec import a1

MAX_FILE_BYTES = 20 * 1024 * 1024  # a return is ~20 KB; 20 MB is generous
MAX_MEMBERS = 300
MAX_UNCOMPRESSED = 60 * 1024 * 1024  # all members together
MAX_MEMBER = 30 * 1024 * 1024
MAX_RATIO = 200  # compressed → uncompressed, for members above 1 MB
MAX_COLS = 300  # per sheet; a return uses 15, a summary's 明细 about 210
MAX_CELLS = 3_000_000  # rows × columns of a sheet's used range (a 明细 of ~14,000 units)
MAX_ROWS = MAX_CELLS // 10

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


class ProbeProblem(Exception):
    """The file cannot be read as a workbook; ``code`` is a catalogue code."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass
class SheetInfo:
    name: str
    state: str = "visible"  # visible | hidden | veryHidden
    protected: bool = False
    formulas: dict[str, str] = field(default_factory=dict)  # A1 → formula text


@dataclass
class Probe:
    kind: str  # xlsx | xlsm | ods
    application: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    sheets: dict[str, SheetInfo] = field(default_factory=dict)
    structure_locked: bool = False
    macros: bool = False
    external_links: list[str] = field(default_factory=list)


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
    data: bytes, *, max_members: int = MAX_MEMBERS, max_total: int = MAX_UNCOMPRESSED, per_member: bool = True, what: str = "文件"
) -> zipfile.ZipFile:
    """Open a zip and enforce the limits before anything is decompressed. An archive of returns
    passes per_member=False: its members are bounded one by one, so one bomb does not sink the rest."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
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


def read_member(zf: zipfile.ZipFile, name: str) -> bytes | None:
    """A member's bytes, reading at most its declared size (a lying header cannot inflate more)."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    try:
        with zf.open(info) as fh:
            data = fh.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
        raise ProbeProblem("file-unreadable", f"部件 {name} 已损坏（{e}）") from e
    if len(data) > info.file_size:
        raise ProbeProblem("file-too-large", f"部件 {name} 实际大小超过声明")
    return data


def parse_xml(data: bytes, name: str):
    try:
        return DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DET.ParseError as e:
        raise ProbeProblem("file-unreadable", f"部件 {name} 的XML无效（{e}）") from e
    except Exception as e:  # defusedxml raises DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
        raise ProbeProblem("file-malicious", f"部件 {name} 含有DTD、实体或外部引用（{type(e).__name__}）") from e


def _custom_props(zf: zipfile.ZipFile) -> dict[str, str]:
    data = read_member(zf, "docProps/custom.xml")
    if not data:
        return {}
    root = parse_xml(data, "docProps/custom.xml")
    out = {}
    for prop in root.findall("cp:property", NS):
        name = prop.get("name", "")
        val = next(iter(prop), None)
        if name and val is not None:
            text = (val.text or "").strip()
            if val.tag.endswith(("}r8", "}r4", "}decimal")):  # LibreOffice turns i4 into r8: 2025 → 2025.0
                try:
                    f = float(text)
                    text = str(int(f)) if f.is_integer() else text
                except ValueError:
                    pass
            out[name] = text
    return out


def _app(zf: zipfile.ZipFile) -> str:
    data = read_member(zf, "docProps/app.xml")
    if not data:
        return ""
    root = parse_xml(data, "docProps/app.xml")
    app = root.findtext("ep:Application", default="", namespaces=NS).strip()
    ver = root.findtext("ep:AppVersion", default="", namespaces=NS).strip()
    return f"{app} {ver}".strip()


_TAG = re.compile(rb"<(?:\w+:)?(row|c|sheetProtection)\b([^>]*?)(/?)>")
_ATTR_R = re.compile(rb'\br="\$?([A-Za-z]*)\$?(\d*)"')
_CELL_END = re.compile(rb"</(?:\w+:)?c>")
_FORMULA = re.compile(rb"<(?:\w+:)?f\b[^>]*?(?:/>|>([^<]*)</(?:\w+:)?f>)")
_SHEET_ATTR = re.compile(rb'\bsheet="(1|true)"')


def _sheet_xml(zf: zipfile.ZipFile, name: str, info: SheetInfo) -> None:
    """Protection, extent and formula cells of a worksheet part.

    The part is scanned with linear regular expressions instead of being parsed into a tree:
    a return's sheet has ~1,500 elements and this is the hot path of reading 10,000 returns.
    No entity is ever expanded here; a DTD is refused outright, and calamine (Rust, quick-xml,
    no entity expansion) is what reads the values.
    """
    data = read_member(zf, name)
    if data is None:
        return
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        data = data.decode("utf-16").encode("utf-8")
    if re.search(rb"<!(?:DOCTYPE|ENTITY)", data, re.IGNORECASE):
        raise ProbeProblem("file-malicious", f"部件 {name} 含有DTD或实体声明")
    if not _fast_scan(data, info):
        _slow_scan(data, info)


_CELLS = re.compile(rb'<c r="([A-Z]{1,3})(\d{1,7})"[^>]*?(/?)>')
_PROT = re.compile(rb"<sheetProtection\b([^>]*)>")


def _fast_scan(data: bytes, info: SheetInfo) -> bool:
    """The common shape (every cell has r=, no namespace prefixes): a few C-level regex passes."""
    cells = _CELLS.findall(data)
    if len(cells) != data.count(b"<c ") + data.count(b"<c>") or re.search(rb"<\w+:(?:c|row|f)\b", data):
        return False
    prot = _PROT.search(data)
    info.protected = bool(prot and _SHEET_ATTR.search(prot.group(1)))
    full = [(c, r) for c, r, empty in cells if not empty]
    if full:
        max_row = max(int(r) for _, r in full)
        letters = max((c for c, _ in full), key=lambda c: (len(c), c))
        _check_extent(info.name, max_row, _rowcol(letters.decode() + "1")[1])
    pos = 0
    while (f := data.find(b"<f", pos)) >= 0:
        pos = f + 2
        if data[pos : pos + 1] not in (b">", b" ", b"/"):
            continue
        start = data.rfind(b"<c ", 0, f)
        m = _CELLS.match(data, start)
        fm = _FORMULA.match(data, f)
        if m and fm:
            info.formulas[(m.group(1) + m.group(2)).decode()] = "=" + html.unescape(
                (fm.group(1) or b"").decode("utf-8", "replace")
            )
    return True


def _slow_scan(data: bytes, info: SheetInfo) -> None:
    """Any valid shape: cells without r=, prefixed tags; a linear state machine."""
    row = col = max_row = max_col = 0
    pos = 0
    while m := _TAG.search(data, pos):
        tag, attrs, empty = m.group(1), m.group(2), m.group(3)
        pos = m.end()
        if tag == b"sheetProtection":
            info.protected = bool(_SHEET_ATTR.search(attrs))
        elif tag == b"row":
            r = re.search(rb'\br="(\d+)"', attrs)
            row, col = (int(r.group(1)) if r else row + 1), 0
        else:  # a cell
            r = _ATTR_R.search(attrs)
            if r and r.group(1):
                rr, col = _rowcol(r.group(1).decode() + (r.group(2).decode() or str(row)))
                row = rr or row
            else:
                col += 1
            if not empty:  # only cells with content count for the extent (LibreOffice writes empty styled rows far down)
                max_row, max_col = max(max_row, row), max(max_col, col)
                if max_col > MAX_COLS or max_row > MAX_ROWS:
                    _check_extent(info.name, max_row, max_col)
                end = _CELL_END.search(data, pos)
                if end is None:
                    break
                f = _FORMULA.search(data, pos, end.start())
                if f is not None:
                    info.formulas[a1(row, col)] = "=" + html.unescape((f.group(1) or b"").decode("utf-8", "replace"))
                pos = end.end()
    _check_extent(info.name, max_row, max_col)


def _rowcol(ref: str) -> tuple[int, int]:
    ref = ref.replace("$", "").upper()
    letters = ref.rstrip("0123456789")
    digits = ref[len(letters) :]
    col = 0
    for ch in letters:
        if "A" <= ch <= "Z":
            col = col * 26 + (ord(ch) - 64)
    return (int(digits) if digits.isdigit() else 0), col


def _check_extent(sheet: str, rows: int, cols: int) -> None:
    """Refuse a sheet whose used range would make a dense reader allocate millions of cells."""
    if cols > MAX_COLS or rows > MAX_ROWS or rows * cols > MAX_CELLS:
        raise ProbeProblem(
            "file-too-large", f"工作表“{sheet}”的范围过大（{rows}行×{cols}列），上限{MAX_COLS}列、{MAX_CELLS}个单元格"
        )


def probe_xlsx(zf: zipfile.ZipFile) -> Probe:
    names = set(zf.namelist())
    kind = "xlsm" if "xl/vbaProject.bin" in names else "xlsx"
    probe = Probe(kind=kind, macros="xl/vbaProject.bin" in names)
    probe.properties = _custom_props(zf)
    probe.application = _app(zf)
    wb_xml = read_member(zf, "xl/workbook.xml")
    if wb_xml is None:
        raise ProbeProblem("file-not-workbook", _describe_zip(names))
    wb = parse_xml(wb_xml, "xl/workbook.xml")
    prot = wb.find("m:workbookProtection", NS)
    if prot is not None:
        probe.structure_locked = prot.get("lockStructure", "0").lower() in ("1", "true")
    rels: dict[str, str] = {}
    rel_xml = read_member(zf, "xl/_rels/workbook.xml.rels")
    if rel_xml:
        for rel in parse_xml(rel_xml, "xl/_rels/workbook.xml.rels").findall("rel:Relationship", NS):
            target = rel.get("Target", "")
            target = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
            rels[rel.get("Id", "")] = target
            if rel.get("Type", "").endswith("/externalLink"):
                probe.external_links.append(target)
    for sh in wb.iterfind("m:sheets/m:sheet", NS):
        name = sh.get("name", "")
        info = SheetInfo(name=name, state=sh.get("state", "visible"))
        target = rels.get(sh.get(f"{{{NS['r']}}}id", ""), "")
        if target:
            _sheet_xml(zf, target, info)
        probe.sheets[name] = info
    return probe


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
    content = read_member(zf, "content.xml")
    if content is None:
        raise ProbeProblem("file-unreadable", "缺少 content.xml")
    root = parse_xml(content, "content.xml")
    t = NS["table"]
    body = root.find(f".//{{{NS['office']}}}spreadsheet")
    if body is not None:
        prot = body.get(f"{{{t}}}structure-protected", "false")
        probe.structure_locked = prot == "true"
    for table in root.iter(f"{{{t}}}table"):
        name = table.get(f"{{{t}}}name", "")
        info = SheetInfo(name=name, protected=table.get(f"{{{t}}}protected", "false") == "true")
        row = 0
        for tr in table.iter(f"{{{t}}}table-row"):
            rrep = min(int(tr.get(f"{{{t}}}number-rows-repeated", "1")), 1_048_576)
            col = 0
            for tc in tr:
                if not tc.tag.endswith(("}table-cell", "}covered-table-cell")):
                    continue
                crep = min(int(tc.get(f"{{{t}}}number-columns-repeated", "1")), 16384)
                formula = tc.get(f"{{{t}}}formula")
                if (formula or tc.get(f"{{{NS['office']}}}value-type") or len(tc)) and (
                    row >= MAX_ROWS or col + crep > MAX_COLS or rrep > MAX_ROWS
                ):
                    raise ProbeProblem("file-too-large", f"工作表“{name}”的范围过大，上限{MAX_ROWS}行、{MAX_COLS}列")
                if formula and row < 2000 and col < 200:
                    for k in range(min(crep, 200)):
                        info.formulas[a1(row + 1, col + k + 1)] = formula
                col += crep
            row += rrep
        probe.sheets[name] = info
    return probe


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
