"""One pass over a worksheet part in the shape Excel, WPS, LibreOffice and this tool write.

Reading 10,000 returns, every part used to be read twice: the probe scanned it for protection,
formulas and extent, then python-calamine decompressed and parsed it again for the values. Here
one regular-expression pass over the part gives both: the integrity facts the probe needs and the
grid of values exactly as ``CalamineWorkbook…to_python(skip_empty_area=False)`` returns it.

Only shapes whose meaning is certain are read this way. Anything else — another spelling, a date
that is not a whole day, a number format we cannot classify, a string with escapes whose reading
we have not pinned to calamine's — gives ``None`` and the careful path (XML parser, calamine)
reads the file instead. ``tests/test_read_paths.py`` compares the grids with calamine's, cell by
cell and type by type, on real returns and on parts rewritten at random.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

from ..spec import picker
from .guard import _CELL_TAG, Filled, ProbeProblem, _check_extent, _derived, declares_markup, parse_xml, read_member, xml_text
from .parts import SheetInfo

# A cell, as one match: its reference (r= first, double-quoted), its other attributes, then either
# "/>" (an empty, styled cell: most of a sheet), the common "<v>…</v>" content read directly, or
# any other content (formulas, inline strings), read by _CONTENT below.
# The content stops at the next cell's start: a cell left open never makes the search run on to
# the end of the part (that would be quadratic in a crafted part's size).
_CELL = re.compile(
    rb'<c r="([A-Z]{1,3})([1-9]\d{0,6})"((?:\s+[a-qs-zA-Z][\w.:-]*="[^"<>]*")*)\s*'
    rb"(?:(/)>|>(?:<v>([^<]*)</v>|((?:[^<]|<(?!c[\s/>]|/c>))*))</c>)"
)
_ANY_FORMULA = re.compile(rb"<f[\s/>]")
_CONTENT = re.compile(
    rb"\s*(?:<f(?:\s[^<>]*?)?(?:/>|>([^<]*)</f>)\s*)?"  # a formula, then its value or an inline string
    rb'(?:(?:<v>([^<]*)</v>|<v/>|<is>\s*<t(?: xml:space="preserve")?>([^<]*)</t>\s*</is>)\s*)?'
)
_ATTR = re.compile(rb'\s+([\w.:-]+)="([^"]*)"')
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_EXCEL_EPOCH = dt.date(1899, 12, 30)
FIRST_TRUE_DAY, LAST_DAY = 61, 2958465  # below 61 Excel counts its phantom 1900-02-29; above is year 9999

_COLUMNS: dict[bytes, int] = {}  # at most 18,278 (three letters)


def column_number(letters: bytes) -> int:
    """b'AB' → 28, remembered (a return uses a dozen columns)."""
    n = _COLUMNS.get(letters)
    if n is None:
        n = 0
        for ch in letters:
            n = n * 26 + ch - 64
        _COLUMNS[letters] = n
    return n


# ---------------------------------------------------------------- what the values need from the book


@dataclass
class Workbook:
    """What a cell's value needs beyond its own part: the shared strings and, per cell style, whether
    a number in it is plain ('n'), a date ('d') or something calamine may read otherwise ('?')."""

    strings: list[str] | None
    styles: tuple[str, ...] | None


_SI_PLAIN = re.compile(rb'<t( xml:space="preserve")?>([^<]*)</t>|<t/>')
_SI_RICH = re.compile(  # runs of rich text: <r>, its optional run properties, its <t>
    rb'(?:<r>(?:<rPr>(?:<[^<>]*/>|<[^<>/]*>[^<]*</[^<>]*>)*</rPr>)?<t(?: xml:space="preserve")?>[^<]*</t></r>)+'
)
_T = re.compile(rb"<t( xml:space=\"preserve\")?>([^<]*)</t>")
# The table's start (an optional declaration, then <sst> with plain attributes) and its end.
_SST_HEAD = re.compile(rb'(?:\xef\xbb\xbf)?(?:<\?xml[^<>]*\?>\s*)?<sst(?:\s+[\w.:-]+="[^"<>]*")*\s*>')
_SST_END = re.compile(rb"</sst>\s*")
# In an entry: another entry's start, a prefixed entry or text, phonetic runs, a DTD, comment or CDATA.
_ENTRY_DOUBT = (b"<si", b"</si", b":si", b":t>", b":t ", b"<rPh", b"<!")
_EDGE_SPACE = b" \t\r\n\x0b\x0c"


def _trimmed_by_calamine(preserve: bytes | None, text: bytes) -> bool:
    """Text calamine would trim: edge whitespace in a <t> without xml:space="preserve"."""
    return not preserve and bool(text) and (text[0] in _EDGE_SPACE or text[-1] in _EDGE_SPACE)


def shared_strings(data: bytes) -> list[str] | None:
    """The shared string table, when it is exactly <sst>, then <si>…</si> entries side by side, then
    </sst>, and every entry is plain text or plain rich-text runs (``_entry``); None otherwise.

    Cut with one C-level split at "<si>": everything between the head and the end is then in some
    entry (a piece holds no "<si>" and ends at its one "</si>"), so what the XML parser could see as
    another entry, a prefix or a DTD is in an entry, where ``_entry`` declines it. Entries repeat
    from return to return (the labels of a template, saved by LibreOffice as rich-text runs): each
    distinct entry is read once per process."""
    head = _SST_HEAD.match(data)
    if head is None:
        return None
    pieces = data[head.end() :].split(b"<si>")
    last = pieces.pop()
    end = last.find(b"</si>") + 5
    if pieces == [] or pieces[0] or end < 5 or not _SST_END.fullmatch(last, end):
        return [] if pieces == [] and _SST_END.fullmatch(last) else None
    out = [*map(_entry, pieces[1:]), _entry(last[:end])]
    return None if None in out else out


@functools.lru_cache(maxsize=8192)
def _entry(piece: bytes) -> str | None:
    """One shared-string entry (its body and "</si>") as calamine reads it; None when in doubt."""
    body = piece[:-5]
    if not piece.endswith(b"</si>") or any(doubt in body for doubt in _ENTRY_DOUBT):
        return None
    if body and not (_SI_PLAIN.fullmatch(body) or _SI_RICH.fullmatch(body)):
        return None
    runs = _T.findall(body)  # (xml:space="preserve" or b"", text) of each <t>…</t>; none for <t/>
    if any(_trimmed_by_calamine(p, t) for p, t in runs):
        return None
    return xml_text(b"".join(t for _, t in runs))


# Built-in number formats whose numbers calamine gives as numbers, and those it gives as dates.
_PLAIN_BUILTIN = frozenset(range(0, 14)) | frozenset(range(37, 45)) | {48, 49}
_DATE_BUILTIN = frozenset(range(14, 23))
_PLAIN_CHARS = frozenset("0#?,.%+-_ ()@;*/E")
_DATE_CHARS = frozenset("yYmMdD/-. 年月日")


def format_kind(code: str) -> str:
    """A custom number format: 'n' (plain number), 'd' (a date with no time of day) or '?'."""
    if any("\\" in q or "_" in q for q in re.findall(r'"[^"]*"', code)):
        return "?"  # calamine lets \ and _ escape the next character even inside quotes
    body = re.sub(r'"[^"]*"|\\.|\[\$-[0-9A-Fa-f]{1,8}\]', "", code)
    if body.strip().lower() == "general":  # LibreOffice writes General as a custom format
        return "n"
    chars = set(body)
    if chars <= _PLAIN_CHARS:
        return "n"
    if chars <= _DATE_CHARS and chars & set("yYdD"):
        return "d"
    return "?"


def _style_kinds(data: bytes) -> tuple[str, ...]:
    """Per cellXfs index of a styles part: how a number in a cell of that style reads."""
    custom = {}
    xfs: list[str] = []
    for el in parse_xml(data, "xl/styles.xml").iter():
        tag = el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
        if tag == "numFmt":
            custom[el.get("numFmtId", "")] = el.get("formatCode", "")
        elif tag == "cellXfs":
            xfs = [_xf_kind(xf, custom) for xf in el if isinstance(xf.tag, str) and xf.tag.endswith("xf")]
    return tuple(xfs)


def _xf_kind(xf, custom: dict[str, str]) -> str:
    raw = xf.get("numFmtId") or "0"
    if not raw.isdigit() or (raw != "0" and raw.startswith("0")) or not raw.isascii():
        return "?"  # calamine matches the id as written: only canonical digits are certain
    if raw in custom:
        return format_kind(custom[raw])
    fid = int(raw)
    return "n" if fid in _PLAIN_BUILTIN else "d" if fid in _DATE_BUILTIN else "?"


# ---------------------------------------------------------------- one worksheet part


@dataclass
class Cells:
    """What one pass over a worksheet part learned."""

    formulas: dict[str, str] = field(default_factory=dict)  # A1 → "=…"
    max_row: int = 0  # of the cells that are not self-closed (the extent the probe bounds)
    max_col: int = 0
    values: list[tuple[int, int, Any]] | None = None  # (row, column, value), or [] with ``slots``; None: calamine reads them
    filled: int = 0  # cells that are not self-closed (what the probe counts against its limit)
    elements: int = 0  # every cell tag, self-closed (styled, empty) or not: the probe's work bound
    slots: tuple[_Plan, list[Any]] | None = field(default=None, repr=False)  # a known skeleton's values, in its plan's order

    def grid(self) -> list[list[Any]]:
        """The values as calamine's ``to_python(skip_empty_area=False)`` gives them: rows from the
        first to the last with a value, each as wide as the widest. Built only when asked, after
        the probe has bounded the extent."""
        if self.slots is not None:
            return self.slots[0].grid(self.slots[1])
        if not self.values:
            return []
        width, height = max(c for _, c, _ in self.values), self.values[-1][0]  # rows in order (``full_scan``)
        grid = [[""] * width for _ in range(height)]
        for row, col, value in self.values:
            grid[row - 1][col - 1] = value
        return grid


# How a cell's value is read, from its attributes other than r= (given the book's styles):
# "f" a plain number, "d" a date, "s" a shared string, "str" a formula's text, "b" a boolean,
# "i" an inline string, "?" in doubt (calamine reads the workbook).
_CODES: dict[tuple[str, ...], dict[bytes, str]] = {}

_TYPES = frozenset({b"n", b"s", b"str", b"b", b"inlineStr"})


def _plain_type(attrs: bytes) -> bool:
    """No cell type, or one this pass reads, spelled as such. The XML parser decodes and strips a
    type (t=" e", t="&#101;" are error values to it): any other spelling is left to it. A part read
    from a skeleton has the attributes of a part that passed this, byte for byte."""
    return b"t=" not in attrs or all(v in _TYPES for k, v in _ATTR.findall(attrs) if k == b"t")


def _code(attrs: bytes, styles: tuple[str, ...]) -> str:
    pairs = _ATTR.findall(attrs)
    names = [k for k, _ in pairs]
    if len(set(names)) != len(names) or any(k not in (b"s", b"t") for k in names):
        return "?"
    d = dict(pairs)
    s, typ = d.get(b"s", b"0"), d.get(b"t", b"n")
    if not s.isdigit() or len(s) > 8:
        return "?"
    if typ == b"n":
        kind = styles[int(s)] if int(s) < len(styles) else "?"
        return {"n": "f", "d": "d"}.get(kind, "?")
    return {b"s": "s", b"str": "str", b"b": "b", b"inlineStr": "i"}.get(typ, "?")


def _codes(styles: tuple[str, ...]) -> dict[bytes, str]:
    """The attribute → code table of one styles part (most returns share theirs)."""
    table = _CODES.get(styles)
    if table is None:
        if len(_CODES) > 64:
            _CODES.clear()
        table = _CODES[styles] = {}
    return table


MAX_SKELETONS = 64
_V_SLOT = re.compile(rb"<v>([^<]*)</v>")
_CELL_START = re.compile(rb'<c r="([A-Z]{1,3})([1-9]\d{0,6})"((?:\s+[a-qs-zA-Z][\w.:-]*="[^"<>]*")*)\s*>')


@dataclass
class Skeleton:
    """A worksheet part with its values taken out, as the full pass read it once: the facts that do
    not depend on the values (formulas, extent), and where each value sits."""

    cells: Cells
    places: list[tuple[int, int]]  # (row, column) of each <v>…</v>, in order
    attrs: list[bytes]  # the attributes of its cell
    quiet: bool = False  # no markup the integrity checks look for (``Split.quiet``)
    plans: dict[tuple[str, ...], _Plan] = field(default_factory=dict)  # per styles part


@dataclass
class _Plan:
    """How a skeleton's values are converted under one styles part: the plain numbers together, the
    shared strings together (each group checked and converted by C-level calls), then the rest."""

    numbers: Any
    strings: Any
    others: list[tuple[int, str]]
    at: list[int]  # where each value goes in the grid laid out flat, in the order numbers, strings, others
    height: int
    width: int

    @classmethod
    def of(cls, known: Skeleton, styles: tuple[str, ...]) -> _Plan:
        table = _codes(styles)
        codes = [table.get(a) or table.setdefault(a, _code(a, styles)) for a in known.attrs]
        numbers = [k for k, c in enumerate(codes) if c == "f"]
        strings = [k for k, c in enumerate(codes) if c == "s"]
        others = [(k, c) for k, c in enumerate(codes) if c not in ("f", "s")]
        order = numbers + strings + [k for k, _ in others]
        height, width = max((r for r, _ in known.places), default=0), max((c for _, c in known.places), default=0)
        at = [(known.places[k][0] - 1) * width + known.places[k][1] - 1 for k in order]
        return cls(picker(numbers), picker(strings), others, at, height, width)

    def grid(self, values: list[Any]) -> list[list[Any]]:
        """The grid of a part with this skeleton: every slot holds a value, so its size is the
        skeleton's, and the values are put in place by C-level calls."""
        flat: list[Any] = [""] * (self.height * self.width)
        list(map(flat.__setitem__, self.at, values))
        return [flat[i : i + self.width] for i in range(0, len(flat), self.width or 1)]


_SKELETONS: dict[tuple[bytes, ...], Skeleton] = {}


@dataclass
class Split:
    """A worksheet part cut at its <v>…</v> values: the bytes between them (the skeleton's key),
    the values' texts, where the tail after the sheet data starts, and the skeleton read before
    with the same key, if any."""

    key: tuple[bytes, ...]
    texts: list[bytes]
    end: int
    known: Skeleton | None

    @property
    def quiet(self) -> bool:
        """A skeleton whose bytes hold no markup the integrity checks look for (``_MARKUP``): the
        same bytes in this part hold none either, and a value's text holds no '<' at all, so those
        checks need to look at the tail only. (A match cannot straddle a value: each pattern
        starts with the only '<' it contains, or has none, and a value is cut out with its tags.)"""
        return self.known is not None and self.known.quiet


def split(data: bytes) -> Split | None:
    """The part cut at its values; None when its sheet data is not followed by a tail that is
    certainly free of cells (then only the full pass reads it)."""
    end = data.rfind(b"</sheetData>")
    if end < 0 or _TAIL_DOUBT.search(data, end):
        return None
    pieces = _V_SLOT.split(data[:end])
    key = tuple(pieces[0::2])
    return Split(key, pieces[1::2], end, _SKELETONS.get(key))


def scan(data: bytes, book: Workbook | None, cut: Split | None = None) -> Cells | None:
    """``full_scan``, or the same answer from a part already read with the same bytes outside its
    <v>…</v> values. Returns of one template differ only in their values (and the footer after the
    sheet data, which names the unit): the sheet data is split at its values (one C-level pass), and
    when everything else is byte for byte a part read before, the formulas and extent are that
    part's and only the values are converted. The skeleton is the exact bytes (a tuple of every
    piece between the values), so no other part can pass for it; the caller still checks the part
    (encoding, prefixes, error values, protection) as for any other. ``cut``: ``split(data)``,
    when the caller has it already."""
    if book is None:
        return full_scan(data, book)
    cut = cut or split(data)
    if cut is None:
        return full_scan(data, book)
    known = cut.known
    if known is not None:
        slots = _slot_values(known, cut.texts, book)
        if slots is not None:
            c = known.cells
            return Cells(dict(c.formulas), c.max_row, c.max_col, [], c.filled, c.elements, slots)
    out = full_scan(data, book)
    if known is None and out is not None and out.values is not None:
        _remember(cut.key, out)
    return out


# After </sheetData> (page setup, the footer that names the unit, protection): nothing a cell, a
# formula or the sheet data could start or end with, so the part's cells are all in the skeleton.
_TAIL_DOUBT = re.compile(rb"<c[\s/>]|</c>|<f[\s/>]|<sheetData|<v[\s/>]")
# What the integrity checks of a worksheet part look for, more broadly: a DTD, comment or CDATA, any
# prefixed element, protection, an error type however spelled. A skeleton free of all of them is
# ``quiet``: the checks of a part with its bytes need to look only after its sheet data.
_MARKUP = re.compile(rb"<!|<[A-Za-z_][\w.-]*:|<sheetProtection|t\s*=\s*[\"']e")


def _remember(key: tuple[bytes, ...], out: Cells) -> None:
    """Keep the part's skeleton when every value the full pass read sits in one <v> of its own cell
    (no inline strings), in order: then the values alone tell a later part's grid."""
    places, attrs = [], []
    for piece in key[:-1]:
        start = piece.rfind(b"<c ")
        m = _CELL_START.match(piece, start) if start >= 0 else None
        if m is None:
            return
        places.append((int(m.group(2)), column_number(m.group(1))))
        attrs.append(m.group(3))
    if places != [(r, c) for r, c, _ in out.values or ()]:
        return
    if len(_SKELETONS) >= MAX_SKELETONS:
        _SKELETONS.clear()
    cells = Cells(formulas=dict(out.formulas), max_row=out.max_row, max_col=out.max_col, filled=out.filled, elements=out.elements)
    quiet = not any(_MARKUP.search(piece) for piece in key)
    _SKELETONS[key] = Skeleton(cells, places, attrs, quiet)


def _doubtful(values: list[Any]) -> bool:
    """Any value in doubt, or empty (then the full pass reads the part)."""
    return any(v is _UNSURE or v is _EMPTY for v in values)


def _slot_values(known: Skeleton, texts: list[bytes], book: Workbook) -> tuple[_Plan, list[Any]] | None:
    """The values of a part with a known skeleton, converted as the full pass converts them, in
    the order of the plan that places them (``_Plan.grid``); None when one is in doubt or missing."""
    plan = known.plans.get(book.styles)
    if plan is None:
        if len(known.plans) >= 8:
            known.plans.clear()
        plan = known.plans[book.styles] = _Plan.of(known, book.styles)
    numbers = plan.numbers(texts)
    if all(numbers) and b"".join(numbers).isdigit():  # whole numbers, the usual case
        values = _whole_numbers(numbers)
    else:
        values = [_value("f", v, None) for v in numbers]
        if _doubtful(values):
            return None
    indices = plan.strings(texts)
    table = book.strings
    if all(indices) and b"".join(indices).isdigit() and (not indices or max(map(int, indices)) < len(table)):
        values += map(table.__getitem__, map(int, indices))
    elif indices:
        return None  # an index that is not one: the full pass says so
    others = [_value(code, texts[k], None) for k, code in plan.others]
    if _doubtful(others):
        return None
    return plan, values + others


def _whole_numbers(digits: tuple[bytes, ...]) -> list[float]:
    """``[float(d) for d in digits]`` for texts of ASCII digits only, through int (parsing a whole
    number is several times cheaper than parsing a float, and an int is converted to the nearest
    float exactly as its text is); beyond the range of int() or of a float, float() itself."""
    try:
        return list(map(float, map(int, digits)))
    except (OverflowError, ValueError):  # over 308 digits (float() gives inf), over 4,300 (int() refuses)
        return list(map(float, digits))


def full_scan(data: bytes, book: Workbook | None) -> Cells | None:
    """The part's cells, formulas and (with ``book``) values; None when it is not in the canonical
    shape (every cell and formula tag read whole by these patterns). The caller has already
    refused DTDs and checked the encoding, prefixes, CDATA and error values.

    This loop runs for every filled cell of every return, hence written flat: the usual cell (a
    whole number in a plain style, or a shared string) costs a few dictionary look-ups."""
    cells = _CELL.findall(data)
    if len(cells) != len(_CELL_TAG.findall(data)) or not all(map(_plain_type, {c[2] for c in cells})):
        return None
    out = Cells()
    values: list[tuple[int, int, Any]] | None = [] if book is not None else None
    add = values.append if values is not None else None
    codes = _codes(book.styles) if book is not None else {}
    strings = book.strings if book is not None else []
    columns = _COLUMNS
    last = max_row = max_col = filled = 0
    for letters, row_text, attrs, closed, v, other in cells:
        if closed:
            continue
        filled += 1
        row, col = int(row_text), columns.get(letters) or column_number(letters)
        max_row, max_col = max(max_row, row), max(max_col, col)
        if other:
            found = _content(other, letters + row_text, out.formulas)
            if found is None:
                return None
            v, inline = found
        else:
            inline = None
        if add is None:
            continue
        key = row * 65536 + col
        if key <= last:  # out of order or repeated: calamine's reading decides
            add = values = None
            continue
        last = key
        code = codes.get(attrs) or codes.setdefault(attrs, _code(attrs, book.styles))  # type: ignore[union-attr]
        value = _value(code, v, inline, strings)
        if value is _UNSURE:
            add = values = None
        elif value is not _EMPTY:
            add((row, col, value))
    if len(out.formulas) != len(_ANY_FORMULA.findall(data)):
        return None
    out.max_row, out.max_col, out.filled, out.elements = max_row, max_col, filled, len(cells)
    if values is not None and _in_sheet_data(data):
        out.values = values
    return out


def _content(other: bytes, ref: bytes, formulas: dict[str, str]) -> tuple[bytes | None, bytes | None] | None:
    """A cell's content other than a bare <v>: its formula (into ``formulas``), then (value text,
    inline string); None when it is not one of the canonical shapes."""
    m = _CONTENT.fullmatch(other)
    if m is None:
        return None
    formula, text, inline = m.groups()
    if formula is not None or b"<f" in other:
        formulas[ref.decode()] = "=" + html.unescape((formula or b"").decode("utf-8", "replace"))
    return text, inline


def _in_sheet_data(data: bytes) -> bool:
    """Every cell inside the one sheetData (where calamine looks for them)."""
    if data.count(b"<sheetData") != 1:
        return False
    start, end = data.find(b"<sheetData"), data.rfind(b"</sheetData>")
    first, last = data.find(b"<c "), data.rfind(b"<c ")
    return first < 0 or (start < first and last < end)


_EMPTY, _UNSURE = object(), object()


def _value(code: str, text: bytes | None, inline: bytes | None, strings: list[str] | tuple[()] = ()) -> Any:
    """A cell's value: the usual whole number in a plain style or shared string at once, then the
    rest; _EMPTY when it has none, _UNSURE in doubt."""
    if code == "f" and text and text.isdigit():
        return float(text)
    if code == "s" and text and text.isdigit() and int(text) < len(strings):
        return strings[int(text)]
    if code == "?":
        return _UNSURE
    if inline is not None:
        out = xml_text(inline) if code == "i" and inline and not _trimmed_by_calamine(None, inline) else None
        return _UNSURE if out is None else out
    if text is None:  # no <v> (a formula not yet calculated, <v/>)
        return _EMPTY if code != "i" else _UNSURE
    if not text:
        return _UNSURE
    if code == "f":
        return float(text) if _NUMBER.fullmatch(text) else _UNSURE
    if code == "d":
        whole_day = text.isdigit() and FIRST_TRUE_DAY <= int(text) <= LAST_DAY
        return _EXCEL_EPOCH + dt.timedelta(days=int(text)) if whole_day else _UNSURE
    if code == "str":
        out = xml_text(text)
        return _UNSURE if out is None else out
    if code == "b":
        return True if text == b"1" else False if text == b"0" else _UNSURE
    return _UNSURE


# ---------------------------------------------------------------- the fast scan of a part, and the book it needs

FAST_SCAN_BYTES = 4 * 1024 * 1024

_PROT = re.compile(rb"<sheetProtection\s([^<>]*)/?>")

_SHEET_ATTR = re.compile(rb'\ssheet="(1|true)"')

_DECL = re.compile(
    rb"(?:\xef\xbb\xbf)?(?:<\?xml[^>]*?encoding\s*=\s*[\"']utf-?8[\"']|<\?xml(?![^>]*encoding)|<(?!\?xml))", re.IGNORECASE
)

# After a namespace prefix: the colon, the local name of an element or attribute and what ends it (found
# from the colon, a literal: formulas' B5:B9 and URLs' "http://" are not followed by a name and a tag's
# end or "="); a declared prefix; the root element's start tag (after the declaration, if any).
_PREFIXED_NAME = re.compile(rb":([A-Za-z_][\w.-]*)(\s*=|[\s/>])")
_PREFIX = re.compile(rb"[A-Za-z_][\w.-]*")
_PREFIX_DECLARED = re.compile(rb"\sxmlns:([A-Za-z_][\w.-]*)\s*=")
_ROOT_TAG = re.compile(rb"(?:\xef\xbb\xbf)?(?:<\?xml[^<>]*\?>\s*)?<[A-Za-z_][^<>]*>")
_SHEET_TAGS = frozenset({b"c", b"row", b"f", b"v", b"is", b"sheetData", b"sheetProtection"})


def _odd(data: bytes, region: bytes) -> bool:
    """Markup in ``region`` the patterns would misread, so the part is left to the XML parser: CDATA,
    an error value spelled t="e as the fast scan's cells spell attributes (other spellings of it
    fail ``_plain_type``), a prefixed cell, row, formula, value or sheet element, or a prefix the
    part's root element does not declare. The XML parser refuses an unbound prefix
    (``<xm:macrosheet/>``, ``<row foo:x="1">``), the patterns would read it; a prefix declared deeper
    than the root (Excel's x14 extensions) is left to the parser too. (A quiet skeleton's bytes hold
    no prefixed element, and their attributes were looked at when it was first read: ``region`` is
    then the tail.)"""
    if (b"!" in region and b"<![CDATA[" in region) or b't="e' in region:  # "!": one memchr
        return True
    declared: set[bytes] | None = None
    for m in _PREFIXED_NAME.finditer(region):
        start = m.start()
        while start and region[start - 1 : start] not in b"<>/ \t\r\n\"'=":
            start -= 1
        before, prefix, attribute = region[start - 1 : start], region[start : m.start()], m.group(2).endswith(b"=")
        if before == b"<" and m.group(1) in _SHEET_TAGS and m.group(2)[:1] != b"=":
            return True
        if prefix in (b"xmlns", b"xml") or not (before in (b"<", b"/") or attribute):
            continue  # an attribute's value (B10:D10 in sqref), or a declaration
        if declared is None:
            root = _ROOT_TAG.match(data)
            declared = set(_PREFIX_DECLARED.findall(root.group())) if root else set()
        if prefix not in declared or not _PREFIX.fullmatch(prefix):
            return True
    return False


def _markup_region(data: bytes, cut: Split | None) -> bytes:
    """Where a part's markup checks look: after the sheet data when the part has a quiet skeleton
    (``Split.quiet`` says why that finds the same), else the whole part."""
    return data[cut.end :] if cut is not None and cut.quiet else data


def _fast_scan(
    data: bytes,
    info: SheetInfo,
    book: Workbook | None = None,
    cut: Split | None = None,
    filled: Filled | None = None,
) -> bool:
    """The canonical shape, or False. Accepted only when every tag start of a cell and of a
    formula is one the patterns read whole (``scan``): UTF-8, no namespace prefixes on
    the elements that matter, every cell's r= first and double-quoted, no second r=, formulas
    plain text, no error values (those go the careful way), at most one sheetProtection in the
    plain form. With ``book``, the same pass also reads the values (``info.read``). With ``cut``
    (``split(data)``) of a quiet skeleton, the markup is looked for after the sheet data
    only (``Split.quiet`` says why that finds the same)."""
    region = _markup_region(data, cut)
    if not _DECL.match(data) or _odd(data, region):
        return False
    protections = region.count(b"<sheetProtection")
    if protections > 1 or (protections and protections > len(_PROT.findall(region))):
        return False
    if filled is not None and (cut is None or cut.known is None):  # a known skeleton's cells were bounded when first read
        filled.over(info.name, data)
    cells = scan(data, book, cut)
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


_BOOK_PARTS = {"sharedStrings": "xl/sharedStrings.xml", "styles": "xl/styles.xml"}


def _fast_book(
    zf: zipfile.ZipFile, names: set[str], rels: dict[str, str], types: dict[str, str], clean: set[str]
) -> Workbook | None:
    """What the one pass needs to read values (shared strings, the kind of each cell style); None
    when anything about the workbook leaves calamine's reading in doubt: repeated member names,
    shared strings or styles elsewhere than where calamine reads them, parts it may read otherwise.
    The parts read here and found free of DTDs are added to ``clean`` (not read again for that)."""
    if len(names) != len(zf.infolist()) or "xl/styles.xml" not in names:
        return None
    for kind, path in _BOOK_PARTS.items():
        targets = [rels[i] for i, t in types.items() if t == kind]
        if targets != ([path] if path in names else []):
            return None
    try:
        strings: list[str] | None = []
        if "xl/sharedStrings.xml" in names:
            data = read_member(zf, "xl/sharedStrings.xml") or b""
            clean.update(() if declares_markup(data) else ("xl/sharedStrings.xml",))
            strings = shared_strings(data) if _DECL.match(data) else None
        data = read_member(zf, "xl/styles.xml") or b""
        clean.update(() if declares_markup(data) else ("xl/styles.xml",))
        styles = _derived("styles", data, _style_kinds)
    except ProbeProblem:
        return None
    return Workbook(strings, styles) if strings is not None else None
