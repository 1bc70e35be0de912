"""The archive's secrets and settings: the SQL behind a unit's private link, the admin key, an
admin's signed-in sessions and the settings table (nianbao_meta). The admin key and the sessions are
stored only as sha256 digests: a copy of the archive does not give anyone a working key or session.

A unit's link is one for every year: the server's year decides which roster and returns it sees. Its
token is HMAC(the archive's link key, "unit code:generation"), the generation being the id of the
link's row in ``secrets`` (year 0), which also keeps the token's digest for the lookup. So every
current link can be written out again (`nianbao links`, the admin page) — the price: a copy of the
archive (a file only its owner may read) can reproduce the links, as it holds every return anyway.
Links made by nianbao before this (year-bound rows with a random token) keep working, in every year,
but cannot be shown again. What the web makes of them (cookies, CSRF tokens) is toolkit/web/keys.py."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets as _random
from dataclasses import dataclass
from typing import Any

from . import schema as T
from .db import ArchiveError
from .records import now

LINK_KEY_SETTING = "link_hmac_key"
SESSION_HOURS = 12


def new_secret() -> str:
    return _random.token_urlsafe(24)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass
class Link:
    unit_code: str
    unit_name: str
    token: str
    made: bool = False  # made (or re-issued) just now


# ---------------------------------------------------------------- settings


def setting(conn: Any, key: str) -> str | None:
    return conn.execute(T.meta.select().with_only_columns(T.meta.c.value).where(T.meta.c.key == key)).scalar()


def set_setting(engine: Any, key: str, value: str, keep: bool = False) -> str:
    """Store a setting; with ``keep`` a value already there wins, so several servers starting at
    once agree on one. Returns the value now stored."""
    from sqlalchemy.exc import IntegrityError

    where = T.meta.c.key == key
    try:
        with engine.begin() as conn:
            old = setting(conn, key)
            if old is None:
                conn.execute(T.meta.insert().values(key=key, value=value))
            elif keep:
                return old
            elif old != value:
                conn.execute(T.meta.update().where(where).values(value=value))
    except IntegrityError:  # another process inserted it first (PostgreSQL)
        if keep:
            with engine.connect() as conn:
                return setting(conn, key) or value
        return set_setting(engine, key, value)
    return value


def link_key(engine: Any) -> bytes:
    """The archive's key of the units' links, made by the first process that needs it."""
    return set_setting(engine, LINK_KEY_SETTING, _random.token_hex(32), keep=True).encode("ascii")


# ---------------------------------------------------------------- links


def _revoke(conn: Any, kind: str, year: int, code: str) -> None:
    q = T.secrets.update().where(
        T.secrets.c.kind == kind, T.secrets.c.year == year, T.secrets.c.unit_code == code, T.secrets.c.revoked_at.is_(None)
    )
    conn.execute(q.values(revoked_at=now()))


def live(engine: Any, kind: str, secret: str) -> Any:
    """The live row of a secret of this kind, or None (anything too long is not one of ours)."""
    if not secret or len(secret) > 200:
        return None
    alive = T.secrets.c.revoked_at.is_(None)
    q = T.secrets.select().where(T.secrets.c.kind == kind, T.secrets.c.digest == digest(secret), alive)
    with engine.connect() as conn:
        return conn.execute(q).first()


def _derive(key: bytes, code: str, generation: int) -> str:
    mac = hmac.new(key, f"{code}:{generation}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode("ascii")  # 32 characters, as token_urlsafe(24)


def _live_links(conn: Any, codes: list[str] | None = None) -> list[Any]:
    q = T.secrets.select().where(T.secrets.c.kind == "link", T.secrets.c.revoked_at.is_(None))
    if codes is not None:
        q = q.where(T.secrets.c.unit_code.in_(codes))
    return conn.execute(q.order_by(T.secrets.c.id)).all()


def _shown(key: bytes, rows: list[Any]) -> dict[str, str | None]:
    """code → the token of its newest live link, None when every live link of the unit is one that
    cannot be shown (made by an older nianbao, or under another link key)."""
    out: dict[str, str | None] = {}
    for row in rows:
        token = _derive(key, row.unit_code, row.id) if row.year == 0 else None
        if token is not None and digest(token) == row.digest:
            out[row.unit_code] = token
        else:
            out.setdefault(row.unit_code, None)
    return out


def links_of(engine: Any, codes: list[str] | None = None) -> dict[str, str | None]:
    """The units' live links: code → token; None for a live link that cannot be shown again; a unit
    without a live link is absent. Makes nothing."""
    key = link_key(engine)
    with engine.connect() as conn:
        return _shown(key, _live_links(conn, codes))


def _make_link(conn: Any, key: bytes, code: str) -> str:
    """A new link for the unit (its other live links stop working at once)."""
    q = T.secrets.update().where(T.secrets.c.kind == "link", T.secrets.c.unit_code == code, T.secrets.c.revoked_at.is_(None))
    conn.execute(q.values(revoked_at=now()))
    row = T.secrets.insert().values(kind="link", year=0, unit_code=code, digest="pending:" + new_secret(), created_at=now())
    generation = conn.execute(row).inserted_primary_key[0]
    token = _derive(key, code, generation)
    conn.execute(T.secrets.update().where(T.secrets.c.id == generation).values(digest=digest(token)))
    return token


def issue_links(engine: Any, units: list[Any], rotate: list[str] | tuple[str, ...] = ()) -> tuple[list[Link], list[Any]]:
    """Every unit's current link, in the order given: made now for a unit that has none and for the
    codes in ``rotate`` (whose old links stop working at once), the others as they are. Second: the
    units whose working link was made by an older nianbao and cannot be shown (not rotated)."""
    key = link_key(engine)
    with engine.begin() as conn:
        have = _shown(key, _live_links(conn, [u.code for u in units]))
        made = {}
        for u in units:
            if u.code in rotate or u.code not in have:
                made[u.code] = _make_link(conn, key, u.code)
    links, hidden = [], []
    for u in units:
        token = made.get(u.code) or have.get(u.code)
        if token:
            links.append(Link(u.code, u.name, token, u.code in made))
        else:
            hidden.append(u)
    return links, hidden


def rotate_link(engine: Any, code: str) -> str:
    """A new link for one unit; the old one stops working at once."""
    key = link_key(engine)
    with engine.begin() as conn:
        return _make_link(conn, key, code)


# ---------------------------------------------------------------- the admin key and sessions


def set_admin_key(engine: Any, key: str | None = None) -> str:
    """Replace the admin key (a new random one unless given): the old key and every session signed in
    with it stop working. The same key again (a server restarted with its key file) changes nothing."""
    key = key or new_secret()
    if len(key) < 16:
        raise ArchiveError("管理密钥太短：至少16个字符。")
    alive = T.secrets.c.revoked_at.is_(None)
    with engine.begin() as conn:
        same = T.secrets.select().where(T.secrets.c.kind == "admin", T.secrets.c.digest == digest(key), alive)
        if conn.execute(same).first() is not None:
            return key
        _revoke(conn, "admin", 0, "")
        _revoke(conn, "session", 0, "")
        conn.execute(T.secrets.delete().where(T.secrets.c.digest == digest(key)))  # an old, revoked row of this key
        conn.execute(T.secrets.insert().values(kind="admin", year=0, unit_code="", digest=digest(key), created_at=now()))
    return key


def admin_key_since(engine: Any) -> str | None:
    """When the live admin key was set (None: the archive has none yet). The key itself is not kept."""
    q = T.secrets.select().where(T.secrets.c.kind == "admin", T.secrets.c.revoked_at.is_(None)).order_by(T.secrets.c.id.desc())
    with engine.connect() as conn:
        row = conn.execute(q).first()
    return row.created_at if row else None


def new_session(engine: Any, root: str = "", key_id: int | None = None) -> str:
    """A signed-in admin's session: a random id (the cookie), stored as its digest; sessions ended or
    expired are deleted so the table stays small. Signed in with a reviewer's key (issue 31), the row
    records its scope: ``unit_code`` the key's unit, ``label`` the key's id (``session_row`` checks the
    key is still live on every request, so revoking it ends its sessions at once)."""
    token = new_secret()
    cutoff = (dt.datetime.now().astimezone() - dt.timedelta(hours=SESSION_HOURS)).isoformat(timespec="microseconds")
    old = T.secrets.c.kind == "session", (T.secrets.c.revoked_at.is_not(None)) | (T.secrets.c.created_at < cutoff)
    with engine.begin() as conn:
        conn.execute(T.secrets.delete().where(*old))
        values = dict(kind="session", year=0, unit_code=root, digest=digest(token), created_at=now())
        conn.execute(T.secrets.insert().values(**values, label="" if key_id is None else str(key_id)))
    return token


def is_session(engine: Any, token: str) -> bool:
    """A live session signed in within the last SESSION_HOURS hours."""
    return session_row(engine, token) is not None


def session_row(engine: Any, token: str) -> Any:
    """The row of a live session signed in within the last SESSION_HOURS hours — with a reviewer's
    key still live, when it was signed in with one — or None."""
    row = live(engine, "session", token)
    if row is None:
        return None
    age = dt.datetime.now().astimezone() - dt.datetime.fromisoformat(row.created_at)
    if not dt.timedelta(0) <= age < dt.timedelta(hours=SESSION_HOURS):
        return None
    if row.label:  # signed in with a reviewer's key: it must still be live
        alive = T.secrets.c.revoked_at.is_(None)
        q = T.secrets.select().where(T.secrets.c.kind == KEY, T.secrets.c.id == int(row.label), alive)
        with engine.connect() as conn:
            if conn.execute(q).first() is None:
                return None
    return row


def end_session(engine: Any, token: str) -> None:
    """退出: the session stops working at once, in every server process."""
    if not token or len(token) > 200:
        return
    q = T.secrets.update().where(T.secrets.c.kind == "session", T.secrets.c.digest == digest(token))
    with engine.begin() as conn:
        conn.execute(q.values(revoked_at=now()))


# ---------------------------------------------------------------- reviewers' keys per level (issue 31)
# A key of kind "key" gives its holder the subtree of one roster unit (``unit_code``: a county for the
# county's reviewer, a city for the city's). Stored as its digest like the admin key, shown once when
# made, revocable; ``label`` says who holds it, ``used_at`` when it last signed in.
KEY = "key"
USED_EVERY_S = 60  # how often a key's "last used" is written (a busy page must not write on every request)


def add_key(engine: Any, root: str, label: str = "") -> tuple[int, str]:
    """A new reviewer's key for the subtree of ``root``: (its id, the key — the only time it is seen)."""
    key = new_secret()
    with engine.begin() as conn:
        row = T.secrets.insert().values(kind=KEY, year=0, unit_code=root, digest=digest(key), created_at=now(), label=label)
        return conn.execute(row).inserted_primary_key[0], key


def keys(engine: Any) -> list[Any]:
    """Every reviewer's key ever made (revoked ones too), oldest first — never the key itself."""
    q = T.secrets.select().where(T.secrets.c.kind == KEY).order_by(T.secrets.c.id)
    with engine.connect() as conn:
        return conn.execute(q).all()


def revoke_key(engine: Any, key_id: int) -> Any:
    """Revoke a reviewer's key: it stops working at once, in every server process. The row after it."""
    where = T.secrets.c.kind == KEY, T.secrets.c.id == key_id
    with engine.begin() as conn:
        row = conn.execute(T.secrets.select().where(*where)).first()
        if row is None:
            raise ArchiveError(f"没有编号为 {key_id} 的审核密钥（用 nianbao keys list 查看编号）。")
        if row.revoked_at is None:
            conn.execute(T.secrets.update().where(*where).values(revoked_at=now()))
        return conn.execute(T.secrets.select().where(*where)).one()


def key_row(engine: Any, key: str) -> Any:
    """The live row of a reviewer's key, or None; notes when it was used (at most once a minute)."""
    row = live(engine, KEY, key)
    if row is None:
        return None
    stamp = now()
    last = dt.datetime.fromisoformat(row.used_at) if row.used_at else None
    if last is None or (dt.datetime.fromisoformat(stamp) - last).total_seconds() >= USED_EVERY_S:
        with engine.begin() as conn:
            conn.execute(T.secrets.update().where(T.secrets.c.id == row.id).values(used_at=stamp))
    return row
