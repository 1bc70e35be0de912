"""Long random secrets (a unit's private link, the admin key), stored only as sha256 digests:
a copy of the archive does not give anyone a working link."""

from __future__ import annotations

import hashlib
import secrets as _random
from dataclasses import dataclass

from ..archive import Archive, ArchiveError
from ..archive import schema as T
from ..archive.core import now


def new_secret() -> str:
    return _random.token_urlsafe(24)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass
class Link:
    unit_code: str
    unit_name: str
    token: str  # only known at the moment it is made


def _revoke(conn, kind: str, year: int, code: str) -> None:
    q = T.secrets.update().where(
        T.secrets.c.kind == kind, T.secrets.c.year == year, T.secrets.c.unit_code == code, T.secrets.c.revoked_at.is_(None)
    )
    conn.execute(q.values(revoked_at=now()))


def _add(conn, kind: str, year: int, code: str) -> str:
    token = new_secret()
    conn.execute(T.secrets.insert().values(kind=kind, year=year, unit_code=code, digest=digest(token), created_at=now()))
    return token


def _live(archive: Archive, kind: str, secret: str):
    """The live row of a secret of this kind, or None (anything too long is not one of ours)."""
    if not secret or len(secret) > 200:
        return None
    live = T.secrets.c.revoked_at.is_(None)
    q = T.secrets.select().where(T.secrets.c.kind == kind, T.secrets.c.digest == digest(secret), live)
    with archive.engine.connect() as conn:
        return conn.execute(q).first()


def issue_links(archive: Archive, year: int, rotate: str | None = None) -> tuple[list[Link], list[str]]:
    """New links for the roster units that have none (or a new one for ``rotate``, whose old link stops
    working at once); returns (links made, names of units that keep their existing link)."""
    ros = archive.need_roster(year)
    if rotate:
        units, kept = [ros.get(archive.unit_code(rotate, year))], []
    else:
        with archive.engine.connect() as conn:
            q = T.secrets.select().where(T.secrets.c.kind == "link", T.secrets.c.year == year, T.secrets.c.revoked_at.is_(None))
            have = {r.unit_code for r in conn.execute(q)}
        units = [u for u in ros.units if u.code not in have]
        kept = [u.name for u in ros.units if u.code in have]
    made = []
    with archive.engine.begin() as conn:
        for u in units:
            _revoke(conn, "link", year, u.code)
            made.append(Link(u.code, u.name, _add(conn, "link", year, u.code)))
    return made, kept


def unit_of(archive: Archive, token: str) -> tuple[int, str] | None:
    """(year, unit code) of a live link, or None."""
    row = _live(archive, "link", token)
    return (row.year, row.unit_code) if row else None


def set_admin_key(archive: Archive, key: str | None = None) -> str:
    """Replace the admin key (a new random one unless given); the old one stops working."""
    key = key or new_secret()
    if len(key) < 16:
        raise ArchiveError("管理密钥太短：至少16个字符。")
    with archive.engine.begin() as conn:
        _revoke(conn, "admin", 0, "")
        conn.execute(T.secrets.insert().values(kind="admin", year=0, unit_code="", digest=digest(key), created_at=now()))
    return key


def is_admin_key(archive: Archive, key: str) -> bool:
    return _live(archive, "admin", key) is not None
