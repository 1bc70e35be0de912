"""A Report and its findings as JSON, both ways, in one place.

Two forms, each field list written once:
- the public form of a file (``file_json``: what `--json` prints for every command, with the JSON
  Schema generated from the same table, ``file_schema``), and of a finding (``finding_json``);
- the stored form (``to_stored``/``from_stored``: a checked Report kept by the archive, so that status,
  consolidation and export never read the file again; values sparse, findings apart).

The fields come from the dataclasses: a Report's scalars are its fields with a scalar default, a
finding's fields are the Finding dataclass's (``code``, ``severity`` and ``kind`` first)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from .findings import Finding, counts
from .report import CellValues, Provenance, Report
from .spec import KINDS, formats

# ---------------------------------------------------------------- findings

_FIRST = ("code", "severity", "kind")
FINDING_FIELDS = (*_FIRST, *(f.name for f in dataclasses.fields(Finding) if f.name not in _FIRST))
_STORED_FINDING = tuple(f.name for f in dataclasses.fields(Finding))
_FINDING_TYPES: dict[str, Any] = {
    "code": {"type": "string"},
    "severity": {"enum": ["错误", "警告", "提示"]},
    "kind": {"enum": list(KINDS)},
    "fingerprint": {"type": "string", "minLength": 12},
}


def finding_json(f: Finding) -> dict[str, Any]:
    """The public form (fingerprint computed if it was not)."""
    if not f.fingerprint:
        f.finish()
    return {k: getattr(f, k) for k in FINDING_FIELDS}


def findings_data(findings: list[Finding]) -> list[dict[str, Any]]:
    """The stored form: every field as it is (the fingerprint too, bound to accepted 说明)."""
    return [{k: getattr(f, k) for k in _STORED_FINDING} for f in findings]


def finding_schema() -> dict[str, Any]:
    return {"type": "object", "required": list(FINDING_FIELDS), "properties": dict(_FINDING_TYPES)}


# ---------------------------------------------------------------- a file, as `--json` prints it


def shown_values(report: Report) -> dict[str, Any]:
    """Every cell as the source shows it: a total keeps the figure the file or page printed;
    where that differs from the sum of its parts, the difference is in the findings. A published
    report's blank total stays blank; a workbook without a stored total shows the computed one."""
    published = report.provenance.application.startswith("published")
    out = dict(report.values)
    for cid, v in report.cached.items():
        if cid in report.unknown:
            out[cid] = None
        elif v is not None or published:
            out[cid] = v
    return out


Getter = Callable[[Report, dict[str, Any]], Any]  # (report, its shown values) → the field
_STR, _OBJ = {"type": "string"}, {"type": "object"}

# (name, how it is read, its JSON Schema): the order is the order of the keys in the output
_FILE: tuple[tuple[str, Getter, dict[str, Any]], ...] = (
    ("file", lambda r, s: r.provenance.name, _STR),
    ("path", lambda r, s: r.provenance.path, _STR),
    ("sha256", lambda r, s: r.provenance.sha256, _STR),
    ("size", lambda r, s: r.provenance.size, {"type": "integer"}),
    ("readable", lambda r, s: r.readable, {"type": "boolean"}),
    ("format_id", lambda r, s: r.format_id, _STR),
    ("format_version", lambda r, s: r.format_version, _STR),
    ("template_version", lambda r, s: r.template_version, _STR),
    ("year", lambda r, s: r.year, {"type": ["integer", "null"]}),
    ("unit_code", lambda r, s: r.unit_code, _STR),
    ("unit_name", lambda r, s: r.unit_name, _STR),
    ("unit_type", lambda r, s: r.unit_type, _STR),
    ("level", lambda r, s: r.level, _STR),
    ("scope", lambda r, s: r.scope, _STR),
    ("application", lambda r, s: r.provenance.application, _STR),
    ("counts", lambda r, s: counts(r.findings), {"type": "object", "required": ["错误", "警告", "提示"]}),
    ("cover", lambda r, s: dict(r.cover), _OBJ),
    ("values", lambda r, s: s if r.readable else {}, _OBJ),
    ("totals_recomputed", lambda r, s: {cid: v for cid, v in r.values.items() if s.get(cid) != v}, _OBJ),
    ("unknown", lambda r, s: sorted(r.unknown), {"type": "array"}),
    ("findings", lambda r, s: [finding_json(f) for f in r.findings], {"type": "array", "items": finding_schema()}),
)
FILE_FIELDS = tuple(name for name, _, _ in _FILE)


def file_json(r: Report) -> dict[str, Any]:
    shown = shown_values(r)
    return {name: get(r, shown) for name, get, _ in _FILE}


def file_schema() -> dict[str, Any]:
    return {"type": "object", "required": list(FILE_FIELDS), "properties": {name: s for name, _, s in _FILE}}


# ---------------------------------------------------------------- the archive's stored form

# A Report's scalar fields (``previous`` is last year's report, linked while checking, never stored)
REPORT_SCALARS = tuple(
    f.name
    for f in dataclasses.fields(Report)
    if f.name != "previous" and (f.default is None or isinstance(f.default, (str, int, bool)))
)


def to_stored(r: Report) -> dict[str, Any]:
    """Everything of a Report but its findings (stored apart) and last year's link; values sparse."""
    nonzero, blank = _sparse(r.values)
    return {
        **{k: getattr(r, k) for k in REPORT_SCALARS},
        "values": nonzero,
        "blank": blank,
        "cached": dict(r.cached),
        "raw": {k: v for k, v in r.raw.items() if isinstance(v, (str, int, float, bool)) or v is None},
        "cover": dict(r.cover),
        "provenance": dict(vars(r.provenance)),  # flat scalars: asdict's deep copy costs 50 µs a file
        "children": r.children,
        "unknown": sorted(r.unknown),
        "extra_sheets": list(r.extra_sheets),
    }


def _sparse(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(non-zero values, blank cell ids): what CellValues holds already, or computed from a dict."""
    if isinstance(values, CellValues):
        return dict(values.nonzero), sorted(values.blank)
    return {k: v for k, v in values.items() if v}, sorted(k for k, v in values.items() if v is None)


def from_stored(data: dict[str, Any], findings: list[dict[str, Any]]) -> Report:
    """The Report as the checker made it (values, cover, provenance and findings)."""
    r = Report(**{k: data[k] for k in REPORT_SCALARS})
    if r.format_id in formats():
        r.values = CellValues.sparse(r.format_id, dict(data["values"]), data["blank"])
    elif r.format_id:
        r.values = dict(data["values"])
    r.cached = dict(data["cached"])
    r.raw = dict(data["raw"])
    r.cover = dict(data["cover"])
    r.provenance = Provenance(**data["provenance"])
    r.children = list(data["children"])
    r.unknown = set(data["unknown"])
    r.extra_sheets = tuple(data["extra_sheets"])
    r.findings = [Finding(**f) for f in findings]
    return r
