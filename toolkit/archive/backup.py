"""A consistent copy of a SQLite archive while others use it (the online backup API)."""

from __future__ import annotations

import shlex
import sqlite3
from pathlib import Path

from ..fileio import create_owner_only
from .db import ArchiveError


def backup(url: str, out: Path) -> str:
    """Copy the archive at ``url`` to ``out`` (SQLite), or say the pg_dump command (PostgreSQL)."""
    if not url.startswith("sqlite:///"):
        from sqlalchemy.engine import make_url

        u = make_url(url)
        parts = ["pg_dump", "-Fc", "-f", str(out), "-h", u.host or "localhost", "-p", str(u.port or 5432)]
        parts += ["-U", u.username or "postgres", u.database or ""]
        return "PostgreSQL 档案库请用 pg_dump 备份：" + " ".join(shlex.quote(p) for p in parts)
    if out.exists():
        raise ArchiveError(f"备份文件已存在：{out}。请换一个文件名（不会覆盖已有文件）。")
    out.parent.mkdir(parents=True, exist_ok=True)  # like every other output: its folder is made
    tmp = out.with_name(out.name + ".part")
    tmp.unlink(missing_ok=True)  # left by a backup that was killed
    try:
        create_owner_only(tmp)  # a copy of the archive is as private as the archive
        src = sqlite3.connect(url.removeprefix("sqlite:///"))
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        tmp.replace(out)
    except BaseException:  # interrupted or failed: no half copy left beside the backups
        tmp.unlink(missing_ok=True)
        raise
    return f"已备份到：{out}"
