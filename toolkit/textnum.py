"""Text and numbers as people write them: the one number parser and the one decoder of
Chinese text files, shared by the workbook reader, the roster and the published-report importer."""

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


def parse_number(text: str, *, strict_zeros: bool = False) -> Number | None:
    """'146', '86.35', '1,472', '１２' → a number; anything else → None. ``strict_zeros`` refuses
    a leading zero ('00', '0000000'): in a published table that is digits run together."""
    s = number_text(text)
    if s is None:
        return None
    body = s.lstrip("+-")
    if strict_zeros and len(body.split(".")[0]) > 1 and body[0] == "0":
        return None
    try:
        f = float(s)
    except ValueError:
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
