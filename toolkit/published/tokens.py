"""Published text → a stream of cells (tokens) in reading order.

A published table reaches us in many shapes: one cell per line ('cell |'), one row per
line, `pdftotext -layout` columns, HTML <td>s, a whole table on one line with single
spaces, or every space removed so that labels and digits run together. All of them are
cut into the same tokens: the raw cells first ('|', two or more spaces, tab), then any
cell that still holds several labels or labels and numbers is cut again at the labels of
the format definition (and their aliases). Digits are kept as written: '0000000' is one
token that a later step may split into several cells.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, cached_property

from ..report import Number
from ..spec import Format
from ..textnum import PUNCT as _PUNCT
from ..textnum import norm as norm  # the label comparison form, used across the importer
from ..textnum import parse_number as _parse_number


@dataclass
class Tok:
    text: str
    line: int
    loose: bool = False  # cut out of a longer cell (labels and digits run together, or prose)

    @cached_property
    def n(self) -> str:
        return norm(self.text)

    @property
    def number(self) -> Number | None:
        """The value of a single number; None for text and for digit runs such as '007'."""
        return parse_number(self.text)

    @property
    def digits(self) -> str | None:
        """The token as a run of digits (maybe several cells run together), else None. A number
        grouped by thousands ('1,888') is its digits too, but always one whole cell (``grouped``)."""
        s = unicodedata.normalize("NFKC", self.text).strip()
        if len(s) <= MAX_RUN and _RUN.fullmatch(s):
            return s
        return s.replace(",", "") if _GROUPED.fullmatch(s) else None

    @property
    def grouped(self) -> bool:
        """'1,888': the commas say where the number begins and ends, so it is never split or joined."""
        return bool(_GROUPED.fullmatch(unicodedata.normalize("NFKC", self.text).strip()))


MAX_RUN = 300  # digits of cells run together: a table row is a few dozen cells of a few digits
_RUN = re.compile(r"\d+(?:\.\d+)?")
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def parse_number(text: str) -> Number | None:
    """'146', '86.35', '1,472' → a number; '', text and leading-zero runs ('00') → None
    (textnum.parse_number's rules for a figure in a published report)."""
    return _parse_number(text, plain=True)


# ---------------------------------------------------------------- raw cells


def cells_of_line(line: str) -> list[str]:
    """One line of plain text → its cells: '|'-separated, or columns two or more spaces apart."""
    stripped = line.strip()
    if not stripped or set(stripped) <= {"|"}:  # '||', '|||': empty merged cells, not cells
        return []
    if "|" in stripped:
        parts = stripped.split("|")
        if stripped.endswith("|"):
            parts = parts[:-1]
        return [p.strip() for p in parts]
    out: list[str] = []
    for c in re.split(r"\s{2,}|\t", stripped):
        if re.fullmatch(r"[\d.,]+(?: [\d.,]+)+", c):  # "0 0 0 0" inside one column run
            out.extend(c.split(" "))
        else:
            out.append(c.strip())
    return out


_CELL_LINE = re.compile(r"\S[^|]*\s\|\s*$")  # 'cell |': one cell per line, each closed by a '|'


def one_cell_per_line(lines: list[str]) -> bool:
    """The 'cell |' shape: most lines holding a '|' are one cell closed by it. There a line that is a
    lone '|' is an empty cell; elsewhere ('0' and '|' on alternate lines) it only separates cells."""
    piped = [ln for ln in lines if "|" in ln]
    closed = sum(1 for ln in piped if _CELL_LINE.match(ln.strip() + " ") and ln.count("|") == 1)
    return bool(piped) and closed * 2 >= len(piped)


def text_cells(text: str) -> list[tuple[str, int]]:
    """Plain text → (cell, line number) pairs."""
    lines = text.splitlines()
    lone_blank = one_cell_per_line(lines)
    out: list[tuple[str, int]] = []
    for n, line in enumerate(lines, start=1):
        if lone_blank and line.strip() == "|":
            out.append(("", n))
        else:
            out.extend((c, n) for c in cells_of_line(line))
    return out


# ---------------------------------------------------------------- cutting long cells at labels


@dataclass(frozen=True)
class Lexicon:
    """The label texts of one format (and their aliases) as one search pattern."""

    pattern: re.Pattern[str] | None
    longest: int


@cache
def lexicon(fmt_id: str, digest: str, extra: tuple[str, ...]) -> Lexicon:
    from ..spec import formats

    fmt = formats()[fmt_id]
    words = {norm(lb.text) for sh in fmt.sheets if sh.published for lb in sh.labels} | {norm(a) for a in extra}
    bare = {_ENUM_START.sub("", w, count=1) for w in words if _ENUM_START.match(w)}  # printed without numbering
    words = {w for w in words if len(w) >= 2} | {w for w in bare if len(w) >= 4}
    if not words:
        return Lexicon(None, 0)
    alternation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return Lexicon(re.compile(alternation), max(map(len, words)))


def lexicon_for(fmt: Format, aliases: Iterable[str]) -> Lexicon:
    return lexicon(fmt.id, fmt.digest, tuple(sorted(set(aliases))))


# a cell printed as '/' or '—' instead of a number: blank (value-missing), not text
_PLACEHOLDER = re.compile(r"[/／\\]|[-—–－―]{1,2}")
_PLACEHOLDERS = re.compile(r"[/／\\]+|[—–－―]{1,2}")  # run together: one blank per slash

# a number glued to a measure word is prose ('收到申请3件'), not a table cell
_MEASURE = "件条项个次人家份户元年月日号页％%.,"
# digits run into a number grouped by thousands, on either side: '89741,888', '1,88800'
_RUN_INTO_GROUP = re.compile(r"\d{4,},\d{3}(?!\d)|\d,\d{3}\d")
_PIECE = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[^\d]+")


def _gap_tokens(gap: str, line: int) -> list[Tok]:
    """Text between two labels → numbers (space-separated or run together) and text. A digit
    glued to '.' and a word is an item number ('…00006.属于…' = run '0000' '0' + item '6.')."""
    out: list[Tok] = []

    def emit(text: str, number: bool) -> None:
        nonlocal buf
        if number:
            if buf:
                out.append(Tok(buf, line, True))
                buf = ""
            out.append(Tok(text, line, True))
        else:
            buf += text

    for word in gap.replace("|", " ").split():
        if _RUN_INTO_GROUP.search(word):  # '89741,888': which digits are the grouped number's is unknowable
            out.append(Tok(word, line, True))  # text, so the row is unread (unknown), never a guess
            continue
        if _PLACEHOLDERS.fullmatch(word):  # '/', '///', '—': blank cells
            out.extend(Tok("", line, True) for _ in range(max(1, word.count("/") + word.count("／") + word.count("\\"))))
            continue
        pieces = _PIECE.findall(word)
        buf = ""
        for i, p in enumerate(pieces):
            kind = _piece_kind(p, pieces[i + 1] if i + 1 < len(pieces) else "", buf)
            if kind == "item":  # an item number: the last digit
                if len(p) > 1:
                    emit(p[:-1], True)
                emit(p[-1], False)
            else:
                emit(p, kind == "number")
        if buf:
            out.append(Tok(buf, line, True))
    return out


def _piece_kind(p: str, nxt: str, before: str) -> str:
    """'number', 'item' (digits whose last one numbers the next label: '…06.属于') or 'text'
    (words, and prose numbers: '3件', '第3页')."""
    if not p[0].isdigit():
        return "text"
    if nxt[:1] in (".", ",") and (len(nxt) > 1 or nxt == "."):  # '…06.属于', or the text cut after '3.'
        return "item"
    if (nxt[:1] and nxt[0] in _MEASURE) or (before and before[-1] in "第共"):
        return "text"
    return "number"


def _compact(text: str) -> tuple[str, list[int]]:
    """``text`` in label comparison form, and for each of its characters the index in ``text``."""
    src = unicodedata.normalize("NFKC", text).translate(_PUNCT)
    chars, where = [], []
    for i, ch in enumerate(src):
        if not ch.isspace() and ch != "|":
            chars.append(ch)
            where.append(i)
    return "".join(chars), where


_ENUM_PREFIX = re.compile(r"(?:\d[.,]|[一二三四五六七八]+,|\([一二三四五六七八]\))$")
_ENUM_START = re.compile(r"\d[.,]|[一二三四五六七八]+,|\([一二三四五六七八]\)")


def segment(cell: str, line: int, lex: Lexicon) -> Iterator[Tok]:
    """Cut one cell at every label it contains. A cell that is one label, a number or prose
    without labels stays whole."""
    if lex.pattern is None or parse_number(cell) is not None or Tok(cell, line).digits is not None:
        yield Tok(cell, line)
        return
    compact, where = _compact(cell)
    hits = (m for m in lex.pattern.finditer(compact) if _significant(m, compact))
    first = next(hits, None)
    second = next(hits, None)
    if first is None or (
        second is None
        and (first.span() == (0, len(compact)) or not re.search(r"\d", compact[: first.start()] + compact[first.end() :]))
    ):
        yield Tok(cell, line)  # one label, perhaps with a few more words (a broken or longer label): whole
        return
    src = unicodedata.normalize("NFKC", cell).translate(_PUNCT)
    prev = 0
    for m in itertools.chain((first, second), hits):
        if m is None:
            continue
        start = m.start()
        lead = _ENUM_PREFIX.search(compact, prev, start)  # '…00002.其他…': an alias without its '2.'
        if lead and not _ENUM_START.match(m.group()):
            start = lead.start()
        if start > prev:
            yield from _gap_tokens(src[where[prev] : where[start]], line)
        yield Tok(compact[start : m.end()], line, True)
        prev = m.end()
    if prev < len(compact):
        yield from _gap_tokens(src[where[prev] :], line)


def _significant(m: re.Match[str], text: str) -> bool:
    """A short label ('规章', '其他', '总计') inside a longer word ('规章制度', '其他法律…') is not a label."""
    if m.end() - m.start() >= 4 or m.end() == len(text):
        return True
    return not ("\u4e00" <= text[m.end()] <= "\u9fff")


class TooManyCells(ValueError):
    """More cells than any report has: refused before the walk (a hostile or wrong file)."""


MAX_TOKENS = 100_000


def tokens(cells: Iterable[tuple[str, int]], lex: Lexicon, limit: int = MAX_TOKENS) -> list[Tok]:
    out: list[Tok] = []
    for cell, line in cells:
        if cell == "" or _PLACEHOLDER.fullmatch(cell.strip()):
            out.append(Tok("", line))
        else:
            for tok in segment(cell, line, lex):
                out.append(tok)
                if len(out) > limit:
                    raise TooManyCells(limit)
    return out
