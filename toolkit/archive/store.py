"""The digest of a stored receipt: what the archive keeps of a checked file (its Report in
toolkit/codec.py's stored form, its findings, status and counts) is hashed when stored, and
``verify`` hashes it again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

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
