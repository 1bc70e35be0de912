"""The package parts around the sheets: docProps (identity properties, application), the workbook
(sheets, states, protection, defined names), its relationships, content types, and parts hidden where
a reader does not look (macros, objects, DDE, external links) — and the ``Probe`` that holds them."""

from __future__ import annotations

import functools
import os
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import guard
from .guard import NS, ProbeProblem, _local, parse_xml, read_member, xml_text

if TYPE_CHECKING:
    from . import fast


@dataclass
class SheetInfo:
    name: str
    state: str = "visible"  # visible | hidden | veryHidden
    protected: bool = False
    formulas: dict[str, str] = field(default_factory=dict)  # A1 → formula text
    errors: dict[str, str] = field(default_factory=dict)  # A1 → error value (#DIV/0! …)
    cells: int = 0  # rows × columns of the used range (what a dense reader allocates)
    read: fast.Cells | None = field(default=None, compare=False, repr=False)  # values of the one pass
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
    # Every sheet's values read in the probe's one pass (fast.py), in workbook order; None: calamine reads them.
    values: dict[str, fast.Cells] | None = field(default=None, compare=False, repr=False)
    # Read the careful way only (``probe(careful=True)``): XML parser and calamine, nothing remembered.
    careful: bool = field(default=False, compare=False, repr=False)


# docProps in the exact shape Excel, LibreOffice and XlsxWriter write them, as a whole-document
# grammar: a match is well-formed XML whose elements are all accounted for, so reading it with
# these patterns gives what the XML parser gives. Anything else is parsed (and always, read carefully).
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


def _custom_props(zf: zipfile.ZipFile, careful: bool = False) -> dict[str, str]:
    data = read_member(zf, "docProps/custom.xml")
    if not data:
        return {}
    fast = None if careful else _custom_props_fast(data)
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
        name, text = xml_text(raw_name), xml_text(raw_text)
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
        with guard.open_zip(path) as zf:
            return _custom_props(zf)
    except (ProbeProblem, OSError):
        return {}


_APP_FIELD = re.compile(rb"<(Application|AppVersion)>([^<]*)</\1>")


def _app_fast(data: bytes) -> str | None:
    if b"]]>" in data or not _APP_DOC.fullmatch(data):
        return None
    found: dict[bytes, str | None] = {}
    for tag, raw in _APP_FIELD.findall(data):
        found.setdefault(tag, xml_text(raw))  # the first of each, as the XML parser's findtext
    app, version = found.get(b"Application", ""), found.get(b"AppVersion", "")
    return None if app is None or version is None else f"{app.strip()} {version.strip()}".strip()


def _app(zf: zipfile.ZipFile, careful: bool = False) -> str:
    data = read_member(zf, "docProps/app.xml")
    if not data:
        return ""
    fast = None if careful else _app_fast(data)
    if fast is not None:
        return fast
    root = parse_xml(data, "docProps/app.xml")
    app = root.findtext("ep:Application", default="", namespaces=NS).strip()
    ver = root.findtext("ep:AppVersion", default="", namespaces=NS).strip()
    return f"{app} {ver}".strip()


def _check_book(probe: Probe) -> None:
    """All sheets together: a reader may hold every sheet's grid at once."""
    total = sum(s.cells for s in probe.sheets.values())
    if total > guard.MAX_BOOK_CELLS:
        raise ProbeProblem("file-too-large", f"各工作表合计{total}个单元格，上限{guard.MAX_BOOK_CELLS}个")


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
    rels, external, types = guard._derived("rels", rel_xml, _rels_of, not probe.careful)
    probe.external_links.extend(external)
    return dict(rels), types


def _rels_of(rel_xml: bytes) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """The workbook's relationships: id → part, the external links in their order, id → type."""
    rels: dict[str, str] = {}
    types: dict[str, str] = {}
    external: list[str] = []
    for rel in parse_xml(rel_xml, "xl/_rels/workbook.xml.rels").iter():
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
    macros, ole = guard._derived("types", types, _types_of, not probe.careful)
    if macros:
        probe.macros = True
    probe.ole_objects.extend(ole)


def _types_of(types: bytes) -> tuple[bool, list[str]]:
    """Whether the content types declare a macro workbook, and the parts declared as objects."""
    macros, ole = False, []
    for el in parse_xml(types, "[Content_Types].xml").iter():
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


# Parts always read with a parser that refuses a DTD (``parse_xml``) or with a grammar that has no room
# for one (the docProps patterns), whenever present: their markup needs no second look.
_PARSED = frozenset(
    {"xl/workbook.xml", "xl/_rels/workbook.xml.rels", "[Content_Types].xml", "docProps/custom.xml", "docProps/app.xml"}
)

# Parts of a workbook the reader needs whatever their size (with the worksheets the workbook lists):
# a summary's shared strings and a workbook's styles can be large and still be what they say.
_XLSX_NEEDED = _PARSED | {"_rels/.rels", "docProps/core.xml", "xl/sharedStrings.xml", "xl/styles.xml"}

_ODS_NEEDED = frozenset({"mimetype", "content.xml", "styles.xml", "meta.xml", "settings.xml", "META-INF/manifest.xml"})

_XML_PART = (".xml", ".rels", ".vml", ".rdf")


def _declared_markup(zf: zipfile.ZipFile, checked: set[str]) -> None:
    """Every XML part refuses a DTD or entity declaration, as the worksheets do (``checked``: parts
    whose markup was looked at already): styles, shared strings, theme, drawings — whoever may parse them."""
    for info in zf.infolist():
        if info.filename in checked or not info.filename.lower().endswith(_XML_PART):
            continue
        data = read_member(zf, info) or b""
        if guard.declares_markup(data):
            raise ProbeProblem("file-malicious", f"部件 {info.filename} 含有DTD或实体声明")


def _large_parts(zf: zipfile.ZipFile, needed: frozenset[str] | set[str]) -> list[str]:
    """The largest parts the format does not need, when together they exceed ``guard.MAX_EXTRA_PARTS``."""
    extra = [i for i in zf.infolist() if i.filename not in needed and not i.is_dir()]
    total = sum(i.file_size for i in extra)
    if total <= guard.MAX_EXTRA_PARTS:
        return []
    extra.sort(key=lambda i: -i.file_size)
    big = [i for i in extra[:3] if i.file_size >= 65536] or extra[:3]  # the theme's 7 KB is not worth naming
    named = [f"{i.filename}（{_size(i.file_size)}）" for i in big]
    if len(extra) > len(big):
        named[-1] += f"，连同其他部件共{_size(total)}"
    return named


def _size(n: int) -> str:
    return f"{n / 1048576:.1f}MB" if n >= 1048576 else f"{max(1, n // 1024)}KB"
