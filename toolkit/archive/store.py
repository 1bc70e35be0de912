"""A checked Report as JSON and back: the archive keeps what the checker made of a file, so
status, consolidation and export never read the file again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..findings import Finding
from ..report import CellValues, Provenance, Report, _rebuild_values
from ..spec import formats

SCALARS = (
    "format_id",
    "format_version",
    "template_version",
    "year",
    "unit_code",
    "unit_name",
    "unit_type",
    "level",
    "readable",
    "scope",
    "scope_note",
)


def report_json(r: Report) -> dict[str, Any]:
    """Everything of a Report but its findings (stored apart) and last year's link; values sparse."""
    nonzero, blank = _sparse(r.values)
    return {
        **{k: getattr(r, k) for k in SCALARS},
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


def _sparse(values: Any) -> tuple[dict[str, Any], list[str]]:
    """(non-zero values, blank cell ids): what CellValues holds already, or computed from a dict."""
    if isinstance(values, CellValues):
        return dict(values._nonzero), sorted(values._missing)
    return {k: v for k, v in values.items() if v}, sorted(k for k, v in values.items() if v is None)


# The columns of a stored receipt that its digest covers: everything the checker made of the file and
# everything status, export, consolidation and the pages read (all but the row's id and the digest).
DIGESTED = (
    "year",
    "unit_code",
    "unit_name",
    "received_at",
    "name",
    "sha256",
    "status",
    "errors",
    "warnings",
    "hints",
    "filler",
    "phone",
    "warning_fps",
    "report",
    "findings",
)


def canonical(obj: Any) -> bytes:
    """JSON with sorted keys and no spaces: the same bytes for a value and for what SQLite or
    PostgreSQL give back of it (tuples come back as lists, key order is not kept everywhere)."""
    kw: dict[str, Any] = dict(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    try:
        text = json.dumps(obj, **kw)
    except TypeError:  # keys of several types cannot be sorted: digest what the database gives back
        text = json.dumps(json.loads(json.dumps(obj, ensure_ascii=False, default=str)), **kw)
    return text.encode("utf-8", "surrogatepass")


def row_digest(row: Mapping[str, Any]) -> str:
    """sha256 of a stored receipt (``DIGESTED``), kept beside it when it is stored; ``verify``
    computes it again, as it does the sha256 of the file's bytes."""
    return hashlib.sha256(canonical({k: row[k] for k in DIGESTED})).hexdigest()


def findings_json(findings: list[Finding]) -> list[dict[str, Any]]:
    names = tuple(Finding.__dataclass_fields__)
    return [{k: getattr(f, k) for k in names} for f in findings]


def _values(fmt_id: str, data: dict[str, Any]) -> Any:
    if fmt_id not in formats():
        return dict(data["values"])
    return _rebuild_values(fmt_id, dict(data["values"]), tuple(data["blank"]))


def rebuild(data: dict[str, Any], findings: list[dict[str, Any]]) -> Report:
    """The Report as the checker made it (values, cover, provenance and findings)."""
    r = Report(**{k: data[k] for k in SCALARS})
    r.values = _values(r.format_id, data) if r.format_id else {}
    r.cached = dict(data["cached"])
    r.raw = dict(data["raw"])
    r.cover = dict(data["cover"])
    r.provenance = Provenance(**data["provenance"])
    r.children = list(data["children"])
    r.unknown = set(data["unknown"])
    r.extra_sheets = tuple(data["extra_sheets"])
    r.findings = [Finding(**f) for f in findings]
    return r
