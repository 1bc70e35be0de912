"""The web page's secrets as the web uses them. What is stored — a unit's private link, the admin key,
an admin's sessions — is the archive's (toolkit/archive/secrets.py, ``Archive.issue_links`` …); the
functions below by the same names are what the pages and commands call.

Every visitor also gets a signed visitor id (a cookie, not stored): the CSRF token of its forms is an
HMAC of that id under the archive's web key, so a token is never a value the client chose, and the
several server processes of one archive accept each other's tokens. A signed-in admin's token is the
HMAC of the session instead (``session_csrf_token``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets as _random

from ..api import SESSION_HOURS as SESSION_HOURS  # re-exported: the pages name them keys.*
from ..api import Archive, ArchiveError, Link, Unit, new_secret
from ..api import secret_digest as digest  # noqa: F401 - re-exported (tests compare stored digests)

BASE_URL_SETTING = "links_base_url"  # nianbao_meta: the --base-url `nianbao links` last used
ALL_UNITS = "全部"


def links_of(archive: Archive, codes: list[str] | None = None) -> dict[str, str | None]:
    """The units' live links (``Archive.links``)."""
    return archive.links(codes)


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
    """Every roster unit's current link (``Archive.issue_links``)."""
    return archive.issue_links(year, rotate)


def rotate_link(archive: Archive, code: str) -> str:
    """A new link for one unit (the admin page's 重新生成)."""
    return archive.rotate_link(code)


def unit_of(archive: Archive, token: str) -> str | None:
    """The unit code of a live link, or None."""
    return archive.link_unit(token)


def set_admin_key(archive: Archive, key: str | None = None) -> str:
    return archive.set_admin_key(key)


def admin_key_since(archive: Archive) -> str | None:
    return archive.admin_key_since()


def is_admin_key(archive: Archive, key: str) -> bool:
    return archive.is_admin_key(key)


def new_session(archive: Archive) -> str:
    return archive.new_session()


def is_session(archive: Archive, token: str) -> bool:
    return archive.is_session(token)


def end_session(archive: Archive, token: str) -> None:
    archive.end_session(token)


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
