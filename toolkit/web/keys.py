"""Long random secrets (a unit's private link, the admin key, an admin's signed-in session), stored
only as sha256 digests: a copy of the archive does not give anyone a working link or session.

Every visitor also gets a signed visitor id (a cookie, not stored): the CSRF token of its forms is an
HMAC of that id under the archive's web key, so a token is never a value the client chose, and the
several server processes of one archive accept each other's tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
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
    """Replace the admin key (a new random one unless given): the old key and every session signed in
    with it stop working. The same key again (a server restarted with its key file) changes nothing."""
    key = key or new_secret()
    if len(key) < 16:
        raise ArchiveError("管理密钥太短：至少16个字符。")
    live = T.secrets.c.revoked_at.is_(None)
    with archive.engine.begin() as conn:
        same = T.secrets.select().where(T.secrets.c.kind == "admin", T.secrets.c.digest == digest(key), live)
        if conn.execute(same).first() is not None:
            return key
        _revoke(conn, "admin", 0, "")
        _revoke(conn, "session", 0, "")
        conn.execute(T.secrets.delete().where(T.secrets.c.digest == digest(key)))  # an old, revoked row of this key
        conn.execute(T.secrets.insert().values(kind="admin", year=0, unit_code="", digest=digest(key), created_at=now()))
    return key


def is_admin_key(archive: Archive, key: str) -> bool:
    return _live(archive, "admin", key) is not None


# ---------------------------------------------------------------- admin sessions

SESSION_HOURS = 12


def new_session(archive: Archive) -> str:
    """A signed-in admin's session: a random id (the cookie), stored as its digest; sessions ended or
    expired are deleted so the table stays small."""
    token = new_secret()
    cutoff = (dt.datetime.now().astimezone() - dt.timedelta(hours=SESSION_HOURS)).isoformat(timespec="microseconds")
    old = T.secrets.c.kind == "session", (T.secrets.c.revoked_at.is_not(None)) | (T.secrets.c.created_at < cutoff)
    with archive.engine.begin() as conn:
        conn.execute(T.secrets.delete().where(*old))
        conn.execute(T.secrets.insert().values(kind="session", year=0, unit_code="", digest=digest(token), created_at=now()))
    return token


def is_session(archive: Archive, token: str) -> bool:
    """A live session signed in within the last SESSION_HOURS hours."""
    row = _live(archive, "session", token)
    if row is None:
        return False
    age = dt.datetime.now().astimezone() - dt.datetime.fromisoformat(row.created_at)
    return dt.timedelta(0) <= age < dt.timedelta(hours=SESSION_HOURS)


def end_session(archive: Archive, token: str) -> None:
    """退出: the session stops working at once, in every server process."""
    if not token or len(token) > 200:
        return
    q = T.secrets.update().where(T.secrets.c.kind == "session", T.secrets.c.digest == digest(token))
    with archive.engine.begin() as conn:
        conn.execute(q.values(revoked_at=now()))


# ---------------------------------------------------------------- visitors and CSRF tokens


def web_key(archive: Archive) -> bytes:
    """The archive's HMAC key for visitor ids and CSRF tokens, made by the first server that needs it."""
    return archive.set_setting("web_hmac_key", _random.token_hex(32), keep=True).encode("ascii")


def _sign(key: bytes, purpose: str, value: str) -> str:
    return hmac.new(key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()


def new_visitor(key: bytes) -> tuple[str, str]:
    """(visitor id, its cookie value: the id and its signature)."""
    vid = new_secret()
    return vid, f"{vid}.{_sign(key, 'visitor', vid)}"


def visitor_of(key: bytes, cookie: str) -> str | None:
    """The visitor id of a cookie this archive's server signed, or None."""
    vid, _, sig = (cookie or "")[:200].partition(".")
    return vid if vid and _same(sig, _sign(key, "visitor", vid)) else None


def csrf_token(key: bytes, visitor: str) -> str:
    return _sign(key, "csrf", visitor)


def csrf_ok(key: bytes, visitor: str | None, token: str) -> bool:
    return bool(visitor) and _same(token[:200], csrf_token(key, visitor or ""))


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison (bytes: a non-ASCII value from a client is just unequal)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("ascii"))
