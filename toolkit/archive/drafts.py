"""Drafts of the 在线填写 form (issue 30): what a clerk or the county's reviewer typed and has not
submitted, one per year, unit and author, kept so that a reload, another browser or another day
loses nothing. Bounded (``MAX_BYTES``); the form's own checks of what a draft may hold are in
toolkit/online.py. Dropped when the figures are stored as a submission."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select

from . import schema as T
from .db import ArchiveError
from .records import now

MAX_BYTES = 256 * 1024
AUTHORS = ("链接", "审核人")  # the unit's clerk through its link; the county's reviewer


def _check(author: str, body: dict[str, Any]) -> None:
    if author not in AUTHORS:
        raise ArchiveError(f"草稿的填写人“{author}”无效（应为{'或'.join(AUTHORS)}）。")
    if len(json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")) > MAX_BYTES:
        raise ArchiveError(f"草稿超过 {MAX_BYTES // 1024} KB 的上限，没有保存。请删去过长的文字后重试。")


def save(engine: Any, year: int, unit: str, author: str, body: dict[str, Any]) -> str:
    """Insert or replace the draft; returns when it was saved (ISO time)."""
    _check(author, body)
    at = now()
    row = dict(year=year, unit_code=unit, author=author, body=body, updated_at=at)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(T.drafts).values(**row)
        keys = [T.drafts.c.year, T.drafts.c.unit_code, T.drafts.c.author]
        conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_={"body": body, "updated_at": at}))
    return at


def load(conn: Any, year: int, unit: str, author: str) -> tuple[dict[str, Any], str] | None:
    D = T.drafts
    row = conn.execute(
        select(D.c.body, D.c.updated_at).where(D.c.year == year, D.c.unit_code == unit, D.c.author == author)
    ).first()
    return (dict(row.body or {}), row.updated_at) if row else None


def drop(engine: Any, year: int, unit: str, author: str | None = None) -> None:
    """The unit's draft of ``author`` (every author's with None)."""
    D = T.drafts
    where = [D.c.year == year, D.c.unit_code == unit] + ([D.c.author == author] if author is not None else [])
    with engine.begin() as conn:
        conn.execute(delete(D).where(*where))
