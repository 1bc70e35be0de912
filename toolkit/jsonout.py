"""One JSON shape for every command that reports on files (check, consolidate, import):
the same file and finding fields everywhere, a schema version, and the batch's own findings.
The schema is documented in README (「JSON 输出」) and in ``SCHEMA`` below, which a test uses.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from . import __version__
from .codec import FILE_FIELDS as FILE_FIELDS  # re-exported: callers name them jsonout.*
from .codec import FINDING_FIELDS as FINDING_FIELDS
from .codec import file_json, file_schema, finding_json, finding_schema
from .codec import shown_values as shown_values
from .findings import Finding, counts, fmt_num
from .report import Report

SCHEMA_ID = "nianbao.result"
SCHEMA_VERSION = 1


def result_json(
    command: str,
    reports: Iterable[Report],
    *,
    year: int | None = None,
    batch: Iterable[Finding] = (),
    summary: dict[str, Any] | None = None,
    refused: dict[str, Any] | None = None,
    ok: bool | None = None,
) -> dict[str, Any]:
    reports = list(reports)
    out = _result(command, reports, year=year, batch=list(batch), summary=summary, refused=refused, ok=ok)
    out["files"] = [file_json(r) for r in reports]
    return out


def _result(
    command: str,
    reports: list[Report],
    *,
    year: int | None,
    batch: list[Finding],
    summary: dict[str, Any] | None,
    refused: dict[str, Any] | None,
    ok: bool | None,
) -> dict[str, Any]:
    """Everything of ``result_json`` but the files (an empty list in their place)."""
    everything = [f for r in reports for f in r.findings] + batch
    return {
        "schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "tool": "nianbao",
        "tool_version": __version__,
        "command": command,
        "year": year,
        "ok": (not any(f.severity == "错误" for f in everything) and refused is None) if ok is None else ok,
        "counts": counts(everything),
        "files": [],
        "findings": [finding_json(f) for f in batch],
        "summary": summary,
        "refused": refused,
    }


_FILES = '\n  "files": [],\n'


def write_result(
    command: str,
    reports: Iterable[Report],
    *,
    stream: TextIO | None = None,
    year: int | None = None,
    batch: Iterable[Finding] = (),
    summary: dict[str, Any] | None = None,
    refused: dict[str, Any] | None = None,
    ok: bool | None = None,
) -> None:
    """``print(dumps(result_json(...)), file=stream)`` (default stdout), the same text, written one file at a time: the
    JSON of 10,000 returns is ~70 MB, and built whole (dicts, then one string) it took ~700 MB. Each
    file is dumped on its own and indented as json.dumps indents it inside the list."""
    stream = stream if stream is not None else sys.stdout  # looked up now: the CLI's tests swap it
    reports = list(reports)
    head = dumps(_result(command, reports, year=year, batch=list(batch), summary=summary, refused=refused, ok=ok))
    cut = head.index(_FILES)  # the top level's key (a nested one is indented deeper)
    stream.write(head[:cut] + '\n  "files": ')
    if not reports:
        stream.write("[]")
    for i, r in enumerate(reports):
        body = dumps(file_json(r)).replace("\n", "\n    ")
        stream.write(("[\n    " if i == 0 else ",\n    ") + body)
    if reports:
        stream.write("\n  ]")
    stream.write(head[cut + len(_FILES) - 2 :] + "\n")


def dumps(data: Any) -> str:
    """The JSON text; never the NaN/Infinity that JSON does not have (a reader of the output would
    choke on them): such a number, should one ever reach here, is written as its text."""
    try:
        return json.dumps(data, ensure_ascii=False, indent=2, default=fmt_num, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(data), ensure_ascii=False, indent=2, default=fmt_num, allow_nan=False)


def _finite(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return str(data)
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


# The documented shape, as a JSON Schema (draft 2020-12), its files and findings from toolkit/codec.py;
# tests validate every command's output.
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "nianbao result",
    "type": "object",
    "required": [
        "schema",
        "schema_version",
        "tool",
        "tool_version",
        "command",
        "year",
        "ok",
        "counts",
        "files",
        "findings",
        "summary",
        "refused",
    ],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "schema_version": {"const": SCHEMA_VERSION},
        "command": {"enum": ["check", "consolidate", "import", "receive", "audit"]},
        "ok": {"type": "boolean"},
        "counts": {"type": "object", "required": ["错误", "警告", "提示"]},
        "files": {"type": "array", "items": file_schema()},
        "findings": {"type": "array", "items": finding_schema()},
        "summary": {"type": ["object", "null"]},
        "refused": {"type": ["object", "null"], "required": ["reason"]},
    },
}
