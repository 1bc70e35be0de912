"""The web page's secrets. The admin key and an admin's signed-in sessions are long random strings
stored only as sha256 digests: a copy of the archive does not give anyone a working key or session.
A unit's private link is derived from a key kept in the archive, so every current link can be written
out again (see ``Link`` below); the archive is readable by its owner only.

Every visitor also gets a signed visitor id (a cookie, not stored): the CSRF token of its forms is an
HMAC of that id under the archive's web key, so a token is never a value the client chose, and the
several server processes of one archive accept each other's tokens. A signed-in admin's token is the
HMAC of the session instead (``session_csrf_token``)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets as _random
from dataclasses import dataclass

from ..archive import Archive, ArchiveError
from ..archive import schema as T
from ..archive.core import now
from ..roster import Unit


def new_secret() -> str:
    return _random.token_urlsafe(24)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _revoke(conn, kind: str, year: int, code: str) -> None:
    q = T.secrets.update().where(
        T.secrets.c.kind == kind, T.secrets.c.year == year, T.secrets.c.unit_code == code, T.secrets.c.revoked_at.is_(None)
    )
    conn.execute(q.values(revoked_at=now()))


def _live(archive: Archive, kind: str, secret: str):
    """The live row of a secret of this kind, or None (anything too long is not one of ours)."""
    if not secret or len(secret) > 200:
        return None
    live = T.secrets.c.revoked_at.is_(None)
    q = T.secrets.select().where(T.secrets.c.kind == kind, T.secrets.c.digest == digest(secret), live)
    with archive.engine.connect() as conn:
        return conn.execute(q).first()


@dataclass
class Link:
    unit_code: str
    unit_name: str
    token: str
    made: bool = False  # made (or re-issued) just now


# A unit's link is one for every year: the server's year decides which roster and returns it sees. Its
# token is HMAC(the archive's link key, "unit code:generation"), the generation being the id of the
# link's row in ``secrets`` (year 0), which also keeps the token's digest for the lookup. So every
# current link can be written out again (`nianbao links`, the admin page) — the price: a copy of the
# archive (a file only its owner may read) can reproduce the links, as it holds every return anyway.
# The admin key and the sessions stay digests only. Links made by nianbao before this (year-bound rows
# with a random token) keep working, in every year, but cannot be shown again.
LINK_KEY_SETTING = "link_hmac_key"
BASE_URL_SETTING = "links_base_url"  # nianbao_meta: the --base-url `nianbao links` last used
ALL_UNITS = "全部"


def _link_key(archive: Archive) -> bytes:
    return archive.set_setting(LINK_KEY_SETTING, _random.token_hex(32), keep=True).encode("ascii")


def _derive(key: bytes, code: str, generation: int) -> str:
    mac = hmac.new(key, f"{code}:{generation}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode("ascii")  # 32 characters, as token_urlsafe(24)


def _live_links(conn, codes: list[str] | None = None):
    q = T.secrets.select().where(T.secrets.c.kind == "link", T.secrets.c.revoked_at.is_(None))
    if codes is not None:
        q = q.where(T.secrets.c.unit_code.in_(codes))
    return conn.execute(q.order_by(T.secrets.c.id)).all()


def _shown(key: bytes, rows) -> dict[str, str | None]:
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


def links_of(archive: Archive, codes: list[str] | None = None) -> dict[str, str | None]:
    """The units' live links: code → token; None for a live link that cannot be shown again; a unit
    without a live link is absent. Makes nothing."""
    key = _link_key(archive)
    with archive.engine.connect() as conn:
        return _shown(key, _live_links(conn, codes))


def _make_link(conn, key: bytes, code: str) -> str:
    """A new link for the unit (its other live links stop working at once)."""
    q = T.secrets.update().where(T.secrets.c.kind == "link", T.secrets.c.unit_code == code, T.secrets.c.revoked_at.is_(None))
    conn.execute(q.values(revoked_at=now()))
    row = T.secrets.insert().values(kind="link", year=0, unit_code=code, digest="pending:" + new_secret(), created_at=now())
    generation = conn.execute(row).inserted_primary_key[0]
    token = _derive(key, code, generation)
    conn.execute(T.secrets.update().where(T.secrets.c.id == generation).values(digest=digest(token)))
    return token


def rotate_codes(archive: Archive, year: int, spec: str) -> list[str]:
    """The codes named by ``--rotate``: 全部, or codes / names separated by commas (，、 too); every
    name that is not in the year's roster is refused at once, before any link changes."""
    ros = archive.need_roster(year)
    names = [n.strip() for n in spec.replace("，", ",").replace("、", ",").split(",") if n.strip()]
    if not names:
        raise ArchiveError("--rotate 后面要写单位代码或名称（多个用逗号分隔），或写“全部”。")
    if ALL_UNITS in names:
        return [u.code for u in ros.units]
    codes, unknown = [], []
    for name in names:
        u = ros.get(name) or next((x for x in ros.units if x.name == name), None)
        if u is None:
            unknown.append(name)
        elif u.code not in codes:
            codes.append(u.code)
    if unknown:
        raise ArchiveError(
            f"{year}年度名册中没有单位“{'”“'.join(unknown)}”（请用单位代码或名册中的单位名称，多个用逗号分隔，"
            f"或写“{ALL_UNITS}”）。没有更换任何链接。"
        )
    return codes


def issue_links(archive: Archive, year: int, rotate: list[str] | tuple[str, ...] = ()) -> tuple[list[Link], list[Unit]]:
    """Every roster unit's current link, in roster order: made now for a unit that has none and for
    the codes in ``rotate`` (whose old links stop working at once), the others as they are. Second:
    the units whose working link was made by an older nianbao and cannot be shown (not rotated)."""
    ros = archive.need_roster(year)
    key = _link_key(archive)
    with archive.engine.begin() as conn:
        have = _shown(key, _live_links(conn, [u.code for u in ros.units]))
        made = {}
        for u in ros.units:
            if u.code in rotate or u.code not in have:
                made[u.code] = _make_link(conn, key, u.code)
    links, hidden = [], []
    for u in ros.units:
        token = made.get(u.code) or have.get(u.code)
        if token:
            links.append(Link(u.code, u.name, token, u.code in made))
        else:
            hidden.append(u)
    return links, hidden


def rotate_link(archive: Archive, code: str) -> str:
    """A new link for one unit (the admin page's 重新生成); the old one stops working at once."""
    key = _link_key(archive)
    with archive.engine.begin() as conn:
        return _make_link(conn, key, code)


def unit_of(archive: Archive, token: str) -> str | None:
    """The unit code of a live link (one made for any year), or None."""
    row = _live(archive, "link", token)
    return row.unit_code if row else None


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


def admin_key_since(archive: Archive) -> str | None:
    """When the live admin key was set (None: the archive has none yet). The key itself is not kept:
    a restarted server keeps using it, and only its holder can sign in."""
    q = T.secrets.select().where(T.secrets.c.kind == "admin", T.secrets.c.revoked_at.is_(None)).order_by(T.secrets.c.id.desc())
    with archive.engine.connect() as conn:
        row = conn.execute(q).first()
    return row.created_at if row else None


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


def session_csrf_token(key: bytes, session: str) -> str:
    """A signed-in admin's forms carry this one, bound to the session: a visitor cookie planted from
    another port of the same host (cookies ignore ports), with its valid token, does not ride the
    admin's session cookie."""
    return _sign(key, "session-csrf", session)


def token_ok(given: str, expected: str | None) -> bool:
    return bool(expected) and _same(given[:200], expected or "")


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison (bytes: a non-ASCII value from a client is just unequal)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("ascii"))
