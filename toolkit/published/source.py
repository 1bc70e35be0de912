"""A published report file → its text and raw cells, within safe limits.

Everything here must decide quickly on hostile input: an oversized file is refused before it
is read, an HTML page is parsed without expanding entities or fetching anything, a PDF is
handed to ``pdftotext`` with a time limit, and every failure becomes a NianbaoError with a
Chinese message (the caller turns it into a finding, the batch goes on).
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import NianbaoError
from ..textnum import legacy_encoding
from .tokens import text_cells

# A real report is a few hundred kB of text; a PDF with scanned seals a few MB.
MAX_TEXT_BYTES = 5 * 1024 * 1024
MAX_HTML_BYTES = 10 * 1024 * 1024
MAX_PDF_BYTES = 60 * 1024 * 1024
MAX_CHARS = 1_000_000  # extracted text (after HTML or PDF): a long report has 100,000 characters
MAX_CELLS = 60_000  # lines and '|' cells: a report has a few thousand
MAX_HTML_DEPTH = 200
PDF_TIMEOUT = 60


class TooLarge(NianbaoError):
    """The file exceeds a safety limit (reported as file-too-large)."""


@dataclass
class Source:
    data: bytes
    text: str  # the report as plain text (for identity, narrative and section checks)
    cells: list[tuple[str, int]]  # (cell text, line) in reading order
    shape: str  # text | html | pdf
    traditional: bool = False
    stray: int = 0  # '?' marks removed before numbers ('? 0')


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def read_source(path: Path) -> Source:
    """Read, decode and cut one file into cells. Raises NianbaoError (TooLarge for size limits)."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a pipe or device would hang the read or never end
            raise NianbaoError(f"{path.name} 不是普通文件（可能是管道或设备），已跳过")
        size = st.st_size
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as e:
        raise NianbaoError(f"文件 {path.name} 无法读取（{e.strerror or e}），可能在导入过程中被移走或删除") from e
    suffix = path.suffix.lower()
    if suffix == ".pdf" or head.startswith(b"%PDF-"):
        _limit(path, size, MAX_PDF_BYTES, "PDF")
        data = _read(path)
        text = clean_pdf_text(pdf_text(path))
        src = Source(data, text, [], "pdf")
    elif suffix in (".html", ".htm", ".shtml", ".xhtml") or _looks_html(head):
        _limit(path, size, MAX_HTML_BYTES, "网页")
        data = _read(path)
        src = Source(data, html_text(data, path.name), [], "html")
    else:
        _limit(path, size, MAX_TEXT_BYTES, "文本")
        data = _read(path)
        src = Source(data, decode_text(data, path.name), [], "text")
    if len(src.text) > MAX_CHARS:
        raise TooLarge(f"{path.name} 提取出的文字有{len(src.text)}个字符，超过导入上限{MAX_CHARS}个；正常的年报不超过10万字")
    cells = src.text.count("\n") + src.text.count("|")
    if cells > MAX_CELLS:
        raise TooLarge(f"{path.name} 有{cells}行或单元格，超过导入上限{MAX_CELLS}个；正常的年报只有几千个")
    src.text, src.stray = stray_marks(clean_text(src.text))
    src.traditional = is_traditional(src.text)
    if src.traditional:
        src.text = to_simplified(src.text)
    src.cells = text_cells(src.text)
    return src


def _limit(path: Path, size: int, limit: int, what: str) -> None:
    if size > limit:
        raise TooLarge(f"{what}文件 {path.name} 有 {_mb(size)}，超过导入上限 {_mb(limit)}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise NianbaoError(f"文件 {path.name} 无法读取（{e.strerror or e}），可能在导入过程中被移走或删除") from e


def _looks_html(head: bytes) -> bool:
    h = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return h.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<table", b"<meta"))


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 or Big5; NUL bytes mean binary."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise NianbaoError(f"{name} 不是文本、网页或PDF文件") from e
    if b"\x00" in data[:65536]:
        raise NianbaoError(f"{name} 不是文本、网页或PDF文件（含有二进制内容）")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    enc = legacy_encoding(data)
    try:
        return data.decode(enc)
    except UnicodeDecodeError as e:
        raise NianbaoError(f"{name} 不是文本、网页或PDF文件") from e


# ---------------------------------------------------------------- cleaning


# mirror sites print pinyin after characters: 政(zheng)府(fu)
_PINYIN = re.compile(
    r"(?<=[\u4e00-\u9fff])\((?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?"
    r"[aoeiuvüāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ]{1,4}(?:ng|n|r)?\)"
)
_INVISIBLE = re.compile(r"[\u200b-\u200f\u2060\ufeff\u00ad]")


# a '?' where a copy lost a no-break space before a number, at the start of a cell: '? 0'
_STRAY = re.compile(r"(?m)(?:^|(?<=[\s|\d]))[?？\ufffd][ \t]*(?=\d)")


def clean_text(text: str) -> str:
    """Remove what web copies add inside words: zero-width characters, soft hyphens, pinyin."""
    text = _INVISIBLE.sub("", text).replace("\u3000", " ").replace("\xa0", " ").replace("\r\n", "\n")
    return _PINYIN.sub("", text)


def stray_marks(text: str) -> tuple[str, int]:
    """'? 0' → '0': a '?' (a character lost in the copy) before the number of a cell; and how many."""
    return _STRAY.subn("", text)


# ---------------------------------------------------------------- traditional characters

# characters that exist only in traditional writing and are common in these reports
_TRAD = set("開資訊報請區縣務處審結轉續辦與個機關單規範復議訴訟總計權衛體經濟關於發佈實現對應進學會議")


def is_traditional(text: str) -> bool:
    sample = text[:200_000]
    hits = sum(1 for ch in sample if ch in _TRAD)
    return hits >= 10 and hits * 50 >= sum(1 for ch in sample if "\u4e00" <= ch <= "\u9fff")


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese with OpenCC. Mirror sites convert mainland pages character
    by character (t2s); only a text in Taiwan phrasing (資訊 for 信息) gets the phrase conversion
    (tw2sp), which on a mainland text would turn 文件 into 文档."""
    import opencc

    return _converter(opencc, "tw2sp" if "資訊" in text else "t2s").convert(text)


_CONVERTERS: dict = {}


def _converter(opencc, config: str):  # type: ignore[no-untyped-def]
    if config not in _CONVERTERS:
        _CONVERTERS[config] = opencc.OpenCC(config)
    return _CONVERTERS[config]


# ---------------------------------------------------------------- HTML


def html_text(data: bytes, name: str) -> str:
    """A web page as plain text in the shape of the other inputs: one table row per line with
    ' | ' after each cell, one block per line. Entities are not expanded beyond the HTML ones,
    nothing is fetched, and nesting deeper than any real page is refused."""
    from lxml import etree
    from lxml import html as lhtml

    try:
        root = lhtml.fromstring(
            data, parser=lhtml.HTMLParser(encoding=_html_encoding(data), no_network=True, remove_comments=True, huge_tree=False)
        )
    except (etree.ParserError, etree.XMLSyntaxError, LookupError, ValueError) as e:
        raise NianbaoError(f"网页 {name} 无法解析：{e}") from e
    out: list[str] = []
    depth = cell = 0
    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        brk = " " if cell else "\n"  # inside a table cell, blocks and nested rows stay on the row's line
        if event == "start":
            depth += 1
            if depth > MAX_HTML_DEPTH:
                raise NianbaoError(f"网页 {name} 的标签嵌套超过{MAX_HTML_DEPTH}层，不像正常的年报网页，已拒绝读取")
            cell += tag in ("td", "th")
            if tag in _BLOCKS or tag == "br":
                out.append(brk)
            if el.text and tag not in _SKIP:
                out.append(_flat(el.text, cell))
            continue
        depth -= 1
        if tag in ("td", "th"):
            cell -= 1
            out.append(" | ")
        elif tag in _BLOCKS:
            out.append(brk)
        parent = el.getparent()
        ptag = parent.tag.lower() if parent is not None and isinstance(parent.tag, str) else ""
        if el.tail and ptag not in _SKIP:
            out.append(_flat(el.tail, cell))
    return "".join(out)


def _html_encoding(data: bytes) -> str:
    """The declared charset; without one, Chinese sites use UTF-8 or GBK."""
    declared = re.search(rb"""<meta[^>]+charset=["']?([\w-]+)""", data[:4096], re.IGNORECASE)
    if declared:
        return declared.group(1).decode("ascii", "replace")
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return legacy_encoding(data)


_BLOCKS = {
    "p",
    "div",
    "table",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "pre",
    "section",
    "article",
    "title",
    "body",
    "header",
    "footer",
    "blockquote",
}
_SKIP = {"script", "style", "noscript", "template"}


def _flat(text: str, in_cell: int) -> str:
    """Whitespace inside HTML text is one space; a '|' inside a table cell must not split it
    (outside tables it may be a flattened table pasted into the page)."""
    text = re.sub(r"\s+", " ", text)
    return text.replace("|", "/") if in_cell else text


# ---------------------------------------------------------------- PDF


def pdf_text(path: Path) -> str:
    exe = shutil.which("pdftotext")
    if not exe:
        raise NianbaoError("读取PDF需要 pdftotext（poppler-utils）。请安装：apt-get install poppler-utils")
    try:
        r = subprocess.run([exe, "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True, timeout=PDF_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise NianbaoError(f"PDF文件 {path.name} 在{PDF_TIMEOUT}秒内没有读完，可能已损坏或过于复杂") from e
    if r.returncode != 0:
        msg = r.stderr.decode("utf-8", "replace").strip().splitlines()
        raise NianbaoError(f"PDF文件 {path.name} 无法读取，可能不是真正的PDF或已损坏（{(msg or ['pdftotext 出错'])[-1][:120]}）")
    return r.stdout.decode("utf-8", "replace")


_PAGE_NO = re.compile(
    r"^\s*(?:[-—–]\s*\d{1,4}\s*[-—–]|第\s*\d{1,4}\s*页(?:\s*[,，、]?\s*共\s*\d{1,4}\s*页)?"
    r"|\d{1,4}\s*/\s*\d{1,4}|\d{1,4}|page\s*\d+(?:\s*of\s*\d+)?)\s*$",
    re.IGNORECASE,
)


def clean_pdf_text(text: str) -> str:
    """Drop page numbers and running headers/footers so a table split across pages reads as one."""
    pages = text.split("\f")
    if len(pages) < 2:
        return text
    marks: dict[str, int] = {}
    for page in pages:  # a line repeated at the top or bottom of most pages (digits ignored) is a running title
        lines = [ln for ln in page.splitlines() if ln.strip()]
        for ln in lines[:2] + lines[-2:]:
            key = re.sub(r"\d+", "#", re.sub(r"\s+", "", ln))
            marks[key] = marks.get(key, 0) + 1
    running = {
        k for k, n in marks.items() if n >= max(2, (len(pages) - 1) * 0.6) and "#" in k or (n >= max(3, (len(pages) - 1) * 0.8))
    }
    out = []
    for n, page in enumerate(pages):
        lines = page.splitlines()
        body = [i for i, ln in enumerate(lines) if ln.strip()]
        edge = set(body[:2] + body[-2:])
        keep = []
        for i, ln in enumerate(lines):
            key = re.sub(r"\d+", "#", re.sub(r"\s+", "", ln))
            if i in edge and (_PAGE_NO.match(ln) or (key in running and n > 0)):  # the title stays once
                continue
            keep.append(_strip_page_suffix(ln) if i in edge else ln)
        out.append("\n".join(keep))
    return "\n".join(out)


def _strip_page_suffix(line: str) -> str:
    """'某局      第 1 页，共 5 页' → '某局' (a footer that did not repeat often enough)."""
    return re.sub(r"\s{2,}第\s*\d+\s*页(?:\s*[,，]?\s*共\s*\d+\s*页)?\s*$", "", line)
