"""Text and numbers as people write them: the one number parser, the one decoder of Chinese text
files, the comparison form of a label and of a unit's name — shared by the workbook reader, the
roster, the cross-year rules, the label aliases and the published-report importer (the lowest layer:
it imports nothing of the toolkit)."""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

Number = int | float

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")


def number_text(text: str) -> str | None:
    """The digits of a number written as text — full-width digits, spaces (also ideographic), a
    leading apostrophe and thousands separators removed — or None when it is not a number."""
    s = unicodedata.normalize("NFKC", text).strip().lstrip("'").replace(" ", "").replace("\u3000", "")
    if _GROUPED.fullmatch(s):
        s = s.replace(",", "")
    return s if _NUMBER.fullmatch(s) else None


def as_text_if_not_finite(raw: Any) -> Any:
    """INF, -INF or NaN as text: what the clerk's cell held, kept in the Report as plain data that every
    output can take (XlsxWriter refuses such a number, JSON has none, PostgreSQL's json neither)."""
    if isinstance(raw, float) and not math.isfinite(raw):
        return "NaN" if raw != raw else ("INF" if raw > 0 else "-INF")
    return raw


_PLAIN = re.compile(r"[+-]?\d+(?:\.\d+)?")
_PLAIN_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _plain_text(text: str) -> str | None:
    s = unicodedata.normalize("NFKC", text).strip().replace(" ", "")
    if _PLAIN_GROUPED.fullmatch(s):
        s = s.replace(",", "")
    return s if _PLAIN.fullmatch(s) else None


def parse_number(text: str, *, plain: bool = False) -> Number | None:
    """'146', '86.35', '1,472', '１２' → a number; anything else → None.

    A workbook cell's text (the default) may be written as a spreadsheet takes it: a leading
    apostrophe, '.5', '1e3'. ``plain``: a figure in a published report's text, where only digits
    with an optional sign, decimals and thousands separators are a figure — and a leading zero
    ('00', '0000000') is digits run together, and 400 digits in a row are no figure (float() would
    make them inf)."""
    s = _plain_text(text) if plain else number_text(text)
    if s is None:
        return None
    body = s.lstrip("+-")
    if plain and len(body.split(".")[0]) > 1 and body[0] == "0":
        return None
    try:
        f = float(s)
    except ValueError:
        return None
    if plain and not math.isfinite(f):
        return None
    return int(f) if f.is_integer() and "." not in s and "e" not in s.lower() else f


# characters every report has, in simplified and in traditional writing
_COMMON = set("政府信息公开申请年度报告工作情况主动处理结果行政复议诉讼规章件数单位名称代码类型上级") | set(
    "資訊公開申請報告處理結果規復議訴訟數"
)


def legacy_encoding(data: bytes) -> str:
    """Not UTF-8: GBK/GB18030 (mainland) or Big5 (Taiwan, Hong Kong) — whichever decodes into
    more of the characters our texts contain."""
    sample = data[:200_000]
    best, score = "gb18030", None
    for enc in ("gb18030", "big5"):
        text = sample.decode(enc, errors="replace")
        hits = sum(ch in _COMMON for ch in text) - 5 * text.count("\ufffd")
        if score is None or hits > score:
            best, score = enc, hits
    return best


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM, also a BOM followed by GBK bytes), UTF-16 with BOM, else GB18030
    or Big5. Raises UnicodeDecodeError when none fits and ValueError for binary data (NUL bytes)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:65536]:
        raise ValueError("binary data")
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode(legacy_encoding(body))


# ---------------------------------------------------------------- labels and names

PUNCT = str.maketrans(
    {
        "，": ",",
        "、": ",",
        "“": '"',
        "”": '"',
        "「": '"',
        "」": '"',
        "『": '"',
        "』": '"',
        "：": ":",
        "．": ".",
        "—": "-",
        "－": "-",
    }
)


def norm(text: str) -> str:
    """Label comparison form: NFKC (（）→()), no spaces, unified punctuation and quotes."""
    t = unicodedata.normalize("NFKC", text)
    t = re.sub(r"\s+", "", t)
    return t.translate(PUNCT)


_SUFFIXES = ("人民政府办事处", "人民政府", "办事处")
_AREA = re.compile(r"^[\u4e00-\u9fff]{1,12}?(?:自治区|自治州|自治县|自治旗|特别行政区|省|市|盟|州|地区|县|区|旗)")


def canonical_name(name: str) -> str:
    """The name without spaces, 人民政府 or 办事处: '宝力根苏木人民政府' and '宝力根苏木' are one unit."""
    variants = name_variants(name)
    n = re.sub(r"\s+", "", unicodedata.normalize("NFKC", name))
    return variants[1] if len(variants) > 1 and n.endswith(_SUFFIXES) else variants[0]


def name_variants(name: str) -> list[str]:
    """A unit name from most to least specific: as written, without 人民政府/办事处, then without
    each leading administrative area ('锡林浩特市宝力根苏木' → '宝力根苏木'), and a short form's
    leading '市'/'县'/'区'/'旗' ('市自然资源局' → '自然资源局')."""
    n = re.sub(r"\s+", "", unicodedata.normalize("NFKC", name))
    n = re.sub(r"^(中共|关于)", "", n)
    out = [n]
    for suf in _SUFFIXES:
        if n.endswith(suf) and len(n) > len(suf) + 1:
            n = n[: -len(suf)]
            out.append(n)
            break
    while (m := _AREA.match(n)) and len(n) - m.end() >= 2:
        n = n[m.end() :]
        out.append(n)
    if n[:1] in "市县区旗" and len(n) >= 4:
        out.append(n[1:])
    return list(dict.fromkeys(out))
