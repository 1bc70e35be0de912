"""Issue 26 (1, 2, 9, 10): the attacks on `nianbao serve`, against a real server on 127.0.0.1 — DNS
rebinding (a foreign Host), cross-site forms (a foreign or missing Origin), forged CSRF tokens,
the admin's session, error pages, TLS, a full database and a PostgreSQL server that stops for a moment."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from web_util import FAULTY, RETURNS, ROSTER, YEAR, Served, new_archive, page_csrf, sample, web_client

from toolkit.archive import Archive
from toolkit.archive import schema as T
from toolkit.web import WebConfig, create_app
from toolkit.web.keys import set_admin_key

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
HANGAI, BAOLIGEN = "152502003", "152502201"
KEY = "县里的管理密钥-0123456789abcdef"


def _history(db, code: str) -> list[tuple[str, str]]:
    with Archive.open(str(db)) as a:
        return [(h.kind, h.text) for h in a.history(code, YEAR)]


def _chinese_page(r: httpx.Response, status: int) -> str:
    """An error answered as a Chinese page with the security headers; returns its message."""
    assert r.status_code == status, (r.status_code, r.text[-300:])
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"
    assert "无法完成" in r.text and "Internal Server Error" not in r.text and "Not Found" not in r.text
    return r.text.split('class="error">', 1)[1].split("<", 1)[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One server for the attacks that do not change what the others see: BAOLIGEN has a return
    (so a 退回 would be recorded), and an admin key is set for the allowed name county.example."""
    tmp = tmp_path_factory.mktemp("served")
    db = tmp / "nianbao.db"
    tokens = new_archive(db)
    with Archive.open(str(db)) as a:
        a.receive([sample(BAOLIGEN)], YEAR)
        set_admin_key(a, KEY)
    with Served(db, "--allow-host", "county.example") as s:
        yield s, tokens, db


def _visitor(base: str) -> tuple[str, str]:
    """(the signed visitor id cookie, the token of its forms) that a page hands a new visitor."""
    page = httpx.get(base + "/login", timeout=30)
    cookie = next(v for v in page.headers.get_list("set-cookie") if v.startswith("nb_session="))
    return cookie.split(";")[0], page_csrf(page.text)


def _browser(base: str, host: str | None = None) -> httpx.Client:
    """A browser on a page of ``host``: it sends that page's Origin with every form."""
    headers = {"origin": f"http://{host}"} if host else {"origin": base}
    if host:
        headers["host"] = host
    return httpx.Client(base_url=base, timeout=30, headers=headers, follow_redirects=False)


# ---------------------------------------------------------------- Host: DNS rebinding


def test_a_foreign_host_is_refused_on_every_route(served):
    s, tokens, db = served
    before = _history(db, BAOLIGEN)
    attacker = f"attacker.example:{s.port}"
    with _browser(s.base, attacker) as evil:
        for url in ("/", f"/unit/{BAOLIGEN}", "/export.csv", "/static/app.css", f"/u/{tokens[BAOLIGEN]}", "/nope"):
            r = evil.get(url)
            assert "这台服务器不为这个地址提供服务" in _chinese_page(r, 400), url
            assert "set-cookie" not in r.headers  # no visitor id, no token for the rebinding page
        # the attack of the review: a valid visitor id and token, the attacker's Host and a matching Origin
        cookie, token = _visitor(s.base)
        r = evil.post(f"/unit/{BAOLIGEN}/reject", data={"csrf": token, "note": "被攻击"}, headers={"cookie": cookie})
        _chinese_page(r, 400)
        upload = {"files": ("a.xlsx", sample(HANGAI).read_bytes())}
        r = evil.post(f"/u/{tokens[HANGAI]}/upload", data={"csrf": token}, files=upload, headers={"cookie": cookie})
        _chinese_page(r, 400)
    assert _history(db, BAOLIGEN) == before and _history(db, HANGAI) == []


def test_loopback_names_and_allowed_hosts_are_served(served):
    s, tokens, _ = served
    for host in ("127.0.0.1", "localhost", "127.0.0.2", "[::1]", "LOCALHOST"):
        with _browser(s.base, f"{host}:{s.port}") as c:
            assert c.get("/").status_code == 200, host  # the loopback user is the county reviewer
    with _browser(s.base, f"county.example:{s.port}") as c:
        assert c.get(f"/u/{tokens[HANGAI]}").status_code == 200
        assert c.get("/").headers["location"] == "/login"  # an allowed name, but not loopback: the key is needed


def test_the_address_of_the_links_is_served(cli, tmp_path):
    """`nianbao links --base-url` is remembered: the server then answers for that name (a LAN name
    the county's IT person set up), without an --allow-host."""
    db = tmp_path / "nianbao.db"
    with Archive.open(str(db)) as a:
        a.load_roster(ROSTER, YEAR)
    made = cli("links", "--year", str(YEAR), "--base-url", "http://nianbao.county.example:8000", "--db", db)
    url = next(line.split("\t")[2] for line in made.stdout.splitlines() if line.startswith(HANGAI))
    path = url.removeprefix("http://nianbao.county.example:8000")
    with Served(db) as s:
        with _browser(s.base, "nianbao.county.example:8000") as c:
            page = c.get(path)
            assert page.status_code == 200 and "杭盖街道" in page.text
            files = {"files": (sample(HANGAI).name, sample(HANGAI).read_bytes())}
            assert c.post(path + "/upload", data={"csrf": page_csrf(page.text)}, files=files).status_code == 200
        with _browser(s.base, "other.county.example:8000") as c:
            _chinese_page(c.get(path), 400)


# ---------------------------------------------------------------- Origin and CSRF


def test_forms_need_the_pages_own_origin(served):
    s, tokens, db = served
    before = _history(db, BAOLIGEN)
    with httpx.Client(base_url=s.base, timeout=30) as c:  # sends no Origin of its own
        cookie, token = _visitor(s.base)
        form = {"csrf": token, "note": "跨站"}
        other_port = f"http://127.0.0.1:{s.port % 60000 + 1}"  # another web page on the same machine
        for origin in ({}, {"origin": "null"}, {"origin": other_port}, {"origin": "http://attacker.example"}):
            r = c.post(f"/unit/{BAOLIGEN}/reject", data=form, headers={"cookie": cookie, **origin})
            assert "来源不是本网页" in _chinese_page(r, 403), origin
        r = c.post(f"/unit/{BAOLIGEN}/reject", data=form, headers={"cookie": cookie, "referer": "http://attacker.example/x"})
        _chinese_page(r, 403)
        assert _history(db, BAOLIGEN) == before
        # no Origin but a same-origin Referer (an older browser) is enough
        same = {"cookie": cookie, "referer": s.base + "/unit/x"}
        r = c.post(f"/unit/{BAOLIGEN}/reject", data={"csrf": token, "note": "本页退回"}, headers=same)
    kind, text = _history(db, BAOLIGEN)[-1]
    assert r.status_code == 303 and kind == "退回" and text.endswith("本页退回")


def test_csrf_tokens_are_signed_and_bound_to_the_visitor(served):
    s, tokens, db = served
    link = f"/u/{tokens[HANGAI]}/upload"
    upload = {"files": ("a.xlsx", sample(HANGAI, FAULTY).read_bytes())}
    with httpx.Client(base_url=s.base, timeout=30, headers={"origin": s.base}) as c:
        cookie_a, token_a = _visitor(s.base)
        cookie_b, _ = _visitor(s.base)
        vid_a = cookie_a.split("=", 1)[1].split(".")[0]
        forged = [
            ("nb_csrf=x", "x"),  # the review's forged double-submit cookie
            (cookie_b, token_a),  # another visitor's token
            ("nb_session=x.y", "x"),  # a visitor id the server never signed
            (f"nb_session={vid_a}.{'0' * 64}", token_a),  # a real id with a made-up signature
            ("", token_a),  # no visitor id at all
        ]
        for cookie, token in forged:
            r = c.post(link, data={"csrf": token}, files=upload, headers={"cookie": cookie} if cookie else {})
            assert "CSRF" in _chinese_page(r, 403), cookie
        assert _history(db, HANGAI) == []
        assert c.post(link, data={"csrf": token_a}, files=upload, headers={"cookie": cookie_a}).status_code == 200
    assert _history(db, HANGAI)[0][0] == "收到"


def test_the_admin_session_is_not_the_key_and_logout_ends_it(served):
    s, _, db = served
    county = f"county.example:{s.port}"
    with _browser(s.base, county) as c:
        token = page_csrf(c.get("/login").text)
        wrong = c.post("/login", data={"csrf": token, "key": "x" * 20})
        assert wrong.status_code == 403 and "管理密钥不正确" in wrong.text
        r = c.post("/login", data={"csrf": token, "key": KEY})
        assert r.status_code == 303
        cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith("nb_admin="))
        session = cookie.split(";")[0].removeprefix("nb_admin=")
        assert KEY not in " ".join(r.headers.get_list("set-cookie")) and len(session) >= 32
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Secure" not in cookie  # plain http
        page = c.get("/")
        assert page.status_code == 200 and "退出" in page.text
        with Archive.open(str(db)) as a, a.engine.connect() as conn:
            rows = conn.execute(T.secrets.select().where(T.secrets.c.kind == "session")).all()
        assert hashlib.sha256(session.encode()).hexdigest() in {r.digest for r in rows}  # stored as a digest only
        assert session not in {r.digest for r in rows}
        out = c.post("/logout", data={"csrf": page_csrf(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
    with _browser(s.base, county) as replay:  # the old session id, replayed after 退出
        assert replay.get("/", headers={"cookie": f"nb_admin={session}"}).status_code == 303


def _sign_in(c: httpx.Client, cookie: str = "nb_admin") -> str:
    """Sign in with the key; the session cookie's ``name=value``."""
    r = c.post("/login", data={"csrf": page_csrf(c.get("/login").text), "key": KEY})
    assert r.status_code == 303, r.text[-300:]
    return next(v for v in r.headers.get_list("set-cookie") if v.startswith(cookie + "=")).split(";")[0]


def test_a_planted_visitor_token_does_not_ride_the_admin_session(served):
    """The review's attack: a page on another port of the county's machine plants its own visitor
    cookie (cookies ignore ports) and posts that visitor's valid token; the browser adds the admin's
    session cookie. A signed-in admin's forms carry a token bound to the session, so this is refused."""
    s, _, db = served
    county = f"county.example:{s.port}"
    with _browser(s.base, county) as c:
        admin = _sign_in(c)
        own = page_csrf(c.get(f"/unit/{BAOLIGEN}").text)
        planted, token = _visitor(s.base)  # the attacker's own visitor id and its token
        assert token != own
        before = _history(db, BAOLIGEN)
        for form_token in (token, "x"):
            attack = {"csrf": form_token, "note": "被代发"}
            r = c.post(f"/unit/{BAOLIGEN}/reject", data=attack, headers={"cookie": f"{planted}; {admin}"})
            assert "CSRF" in _chinese_page(r, 403)
        assert _history(db, BAOLIGEN) == before
        r = c.post(f"/unit/{BAOLIGEN}/reject", data={"csrf": own, "note": "县里退回"}, headers={"cookie": f"{planted}; {admin}"})
        assert r.status_code in (303, 400) and "CSRF" not in r.text  # the page's own form passes (a 400: already 退回)


def test_login_attempts_are_limited(tmp_path):
    """Guessing the admin key from the LAN: after 5 wrong keys from one address in 10 minutes, even the
    right key waits (429 with Retry-After); a successful sign-in starts the count again."""
    db = tmp_path / "nianbao.db"
    new_archive(db)
    with Archive.open(str(db)) as a:
        set_admin_key(a, KEY)
    with Served(db, "--allow-host", "county.example") as s, _browser(s.base, f"county.example:{s.port}") as c:
        token = page_csrf(c.get("/login").text)

        def attempt(key: str) -> httpx.Response:
            return c.post("/login", data={"csrf": token, "key": key})

        assert [attempt("猜" * 20).status_code for _ in range(4)] == [403] * 4
        assert attempt(KEY).status_code == 303  # the right key: the count starts again
        assert [attempt("猜" * 20).status_code for _ in range(5)] == [403] * 5
        locked = attempt(KEY)
        assert "分钟后再试" in _chinese_page(locked, 429) and "--new-admin-key" in locked.text
        assert 0 < int(locked.headers["retry-after"]) <= 600


# ---------------------------------------------------------------- below the page: raw requests


def _raw(port: int, request: bytes) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of a request sent byte for byte, as a tool or an attacker sends it."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body.decode("utf-8", "replace")


def test_malformed_requests_get_a_chinese_page(served):
    """What uvicorn's HTTP parser refuses never reaches the page: it still answers a Chinese page with
    the security headers, not "Invalid HTTP request received." in English."""
    s, _, _ = served
    host = f"Host: 127.0.0.1:{s.port}\r\n".encode()
    for request in (
        b"THIS IS NOT HTTP\r\n\r\n",  # a malformed request line
        b"GET / HTTP/1.1\r\n" + host + b"Content-Length: x\r\n\r\n",  # a bad Content-Length
        b"GET / HTTP/1.1\r\n" + host + host + b"\r\n",  # two Host headers
    ):
        status, headers, body = _raw(s.port, request)
        assert status == 400, request
        assert headers["content-type"].startswith("text/html") and "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and "请求的格式不对" in body and "Invalid" not in body
    # a Host that lists two names is not one of ours, even when the first is
    status, _, body = _raw(
        s.port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{s.port}, evil.example\r\nConnection: close\r\n\r\n".encode()
    )
    assert status == 400 and "这台服务器不为这个地址提供服务" in body
    status, _, _ = _raw(s.port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1 :{s.port}\r\nConnection: close\r\n\r\n".encode())
    assert status == 400


def test_a_post_without_a_length_is_411(served):
    s, _, _ = served
    for path in ("/logout", "/login", f"/unit/{BAOLIGEN}/reject"):
        request = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\nOrigin: {s.base}\r\nConnection: close\r\n\r\n"
        status, headers, body = _raw(s.port, request.encode())
        assert status == 411 and "请求没有注明内容大小" in body and "20 MB" not in body, (path, status)
        assert "script-src 'self'" in headers["content-security-policy"]


# ---------------------------------------------------------------- errors as pages


def test_errors_are_chinese_pages_with_the_security_headers(served):
    s, tokens, _ = served
    with _browser(s.base) as c:
        assert "没有这个页面" in _chinese_page(c.get("/no/such/page"), 404)
        assert "链接无效" in _chinese_page(c.get("/u/" + "A" * 32), 404)
        r = c.get("/upload")
        assert "不接受这种请求" in _chinese_page(r, 405) and r.headers["allow"] == "POST"
        token = page_csrf(c.get("/").text)
        big = b"PK" + os.urandom(21 * 1024 * 1024)
        r = c.post(f"/u/{tokens[HANGAI]}/upload", data={"csrf": token}, files={"files": ("大.xlsx", big)})
        assert "上限" in _chinese_page(r, 413)
        # an error under a unit's link leads back to that unit's page, not to the county's login
        back = f'href="/u/{tokens[HANGAI]}"'
        assert r.text.count(back) == 2 and "返回本单位的报送页面" in r.text
        r = c.get(f"/u/{tokens[HANGAI]}/upload")
        assert _chinese_page(r, 405) and back in r.text
        r = c.get("/u/" + "A" * 32 + "/template")  # not a link: nowhere to go back to but the start
        assert _chinese_page(r, 404) and "返回本单位" not in r.text and 'href="/u/' not in r.text
        assert 'href="/u/' not in c.get("/no/such/page").text
        assert "strict-transport-security" not in r.headers  # HSTS only under TLS
        files = [("files", (f"{n}.xlsx", b"PK")) for n in range(501)]  # more than a form may carry (Starlette's English 400)
        r = c.post(f"/u/{tokens[HANGAI]}/upload", data={"csrf": token}, files=files)
        assert "格式不对" in _chinese_page(r, 400)
        assert c.get("/").status_code == 200  # and the server goes on


def test_an_unexpected_error_and_a_full_disk_are_pages_in_process(tmp_path):
    """A bug (500) and a full disk (ENOSPC, written to /dev/full) reach Starlette's handlers as a
    real exception would; the page is Chinese and has the headers, the traceback goes to the log."""
    from starlette.routing import Route

    db = tmp_path / "nianbao.db"
    new_archive(db)
    app = create_app(WebConfig(db=str(db), year=YEAR))

    async def bug(request):
        raise RuntimeError("a bug")

    async def disk_full(request):
        with open("/dev/full", "wb") as f:
            f.write(b"x" * 65536)
            f.flush()

    app.router.routes[:0] = [Route("/bug", bug), Route("/full", disk_full)]
    client = web_client(app, raise_server_exceptions=False)
    assert "内部出错" in _chinese_page(client.get("/bug"), 500)
    if Path("/dev/full").exists():
        r = client.get("/full")
        assert "磁盘已满" in _chinese_page(r, 507) and r.headers["retry-after"]


def test_a_full_database_gives_507_and_stores_nothing(tmp_path):
    """SQLite's own "database or disk is full" (the database may not grow by one page): the clerk
    gets a Chinese 507 page and nothing of the upload is in the archive; once there is room, the
    same file goes in."""
    from sqlalchemy import event

    db = tmp_path / "nianbao.db"
    tokens = new_archive(db)
    app = create_app(WebConfig(db=str(db), year=YEAR))
    engine = app.state.ctx.archive.engine
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        counts = [conn.execute(T.files.select()).all(), conn.execute(T.submissions.select()).all()]

    def full(dbapi_conn, _record):
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(engine, "connect", full)
    engine.dispose()
    client = web_client(app, raise_server_exceptions=False)
    link = f"/u/{tokens[HANGAI]}"
    token = page_csrf(client.get(link).text)
    r = client.post(link + "/upload", data={"csrf": token}, files={"files": (sample(HANGAI).name, sample(HANGAI).read_bytes())})
    assert "磁盘已满" in _chinese_page(r, 507)
    with Archive.open(str(db)) as a, a.engine.connect() as conn:
        assert [conn.execute(T.files.select()).all(), conn.execute(T.submissions.select()).all()] == counts
        assert a.history(HANGAI, YEAR) == [] and a.verify() == []
    event.remove(engine, "connect", full)
    engine.dispose()
    r = client.post(link + "/upload", data={"csrf": token}, files={"files": (sample(HANGAI).name, sample(HANGAI).read_bytes())})
    assert r.status_code == 200 and "新收" in r.text


# ---------------------------------------------------------------- TLS


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 as a county's IT person makes one (openssl)."""
    if not shutil.which("openssl"):
        pytest.skip("需要 openssl 生成自签名证书")
    certfile, keyfile = folder / "证书.pem", folder / "私钥.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(keyfile), "-out", str(certfile)],
        check=True,
        capture_output=True,
    )
    return certfile, keyfile


def test_https_with_a_self_signed_certificate(tmp_path):
    certfile, keyfile = _self_signed(tmp_path)
    db = tmp_path / "nianbao.db"
    tokens = new_archive(db)
    with Archive.open(str(db)) as a:
        set_admin_key(a, KEY)
    s = Served(db, "--certfile", str(certfile), "--keyfile", str(keyfile), "--allow-host", "county.example")
    try:
        s.wait_ready(scheme="https")
        base = f"https://127.0.0.1:{s.port}"
        with httpx.Client(base_url=base, verify=str(certfile), timeout=30) as c:
            page = c.get(f"/u/{tokens[HANGAI]}")
            assert page.status_code == 200 and "杭盖街道" in page.text
            assert page.headers["strict-transport-security"] == "max-age=604800"  # HSTS, modest, no preload
            visitor = page.headers["set-cookie"]  # a __Host- cookie: Secure, Path=/, no Domain
            assert visitor.startswith("__Host-nb_session=") and "Secure" in visitor and "HttpOnly" in visitor
            assert "Path=/;" in visitor and "domain" not in visitor.lower()
            planted, token = visitor.split(";")[0], page_csrf(page.text)  # the attacker's own visitor id and token
            county = {"host": f"county.example:{s.port}", "origin": f"https://county.example:{s.port}"}
            r = c.post("/login", data={"csrf": token, "key": KEY}, headers=county)
            assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]
            admin = r.headers["set-cookie"].split(";")[0]
            assert admin.startswith("__Host-nb_admin=") and "Path=/;" in r.headers["set-cookie"]
            # the review's repro under TLS: the attacker's visitor cookie and token beside the admin's session
            both = {**county, "cookie": f"{planted}; {admin}"}
            r = c.post(f"/unit/{BAOLIGEN}/accept", data={"csrf": token, "note": "代发"}, headers=both)
            assert "CSRF" in _chinese_page(r, 403)
            own = page_csrf(c.get(f"/unit/{BAOLIGEN}", headers=both).text)
            r = c.post(f"/unit/{BAOLIGEN}/accept", data={"csrf": own, "note": "本页"}, headers=both)
            assert r.status_code != 403 and "CSRF" not in r.text  # the page's own form passes (400: nothing to accept)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{s.port}/", timeout=5)  # nothing in clear text
    finally:
        s.stop()


# ---------------------------------------------------------------- serve's options


def test_a_taken_port_is_tried_again_by_the_tests(tmp_path, monkeypatch):
    """web_util.Served on a busy machine: the port chosen free was taken before the server bound it
    (serve exits 2, 已被其他程序占用): the helper starts the server again on another port."""
    import web_util

    db = tmp_path / "nianbao.db"
    new_archive(db)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports, real = iter([taken]), web_util.free_port
        monkeypatch.setattr(web_util, "free_port", lambda: next(ports, None) or real())
        with Served(db) as s:
            assert s.port != taken and httpx.get(s.base + "/", timeout=30).status_code == 200


def test_serving_the_lan_without_tls_warns(cli, tmp_path, monkeypatch):
    """Links and the admin's session cross the LAN in clear text without --certfile: serve says so.
    (In-process, the listening itself replaced: the tests listen on loopback only.)"""
    import toolkit.cli.web as cli_web
    import toolkit.web.server as server

    db = tmp_path / "nianbao.db"
    new_archive(db)
    monkeypatch.setattr(cli_web, "_try_bind", lambda host, port: None)
    monkeypatch.setattr(server, "run", lambda *a, **kw: None)
    lan = cli("serve", "--year", str(YEAR), "--db", db, "--host", "192.0.2.10", "--port", "8000")
    assert lan.returncode == 0 and "明文传输" in lan.stderr + lan.stdout and "报送网页的安全" in lan.stderr + lan.stdout
    local = cli("serve", "--year", str(YEAR), "--db", db, "--port", "8000")
    assert local.returncode == 0 and "明文传输" not in local.stderr + local.stdout
    # a city's server behind the office's reverse proxy: loopback only, the units' address https — no warning
    monkeypatch.setattr(cli_web, "_workers_check", lambda workers, db: None)  # PostgreSQL's check, not this test's
    monkeypatch.setattr(server, "run_workers", lambda *a, **kw: None)
    for base, warned in (("https://nianbao.example.gov.cn", False), ("http://10.1.2.3:8000", True)):
        proxied = cli("serve", "--year", str(YEAR), "--db", db, "--port", "8000", "--workers", "2", "--base-url", base)
        assert proxied.returncode == 0 and ("明文传输" in proxied.stderr + proxied.stdout) == warned, base


def test_serve_refuses_bad_options_in_chinese(cli, tmp_path):
    db = tmp_path / "nianbao.db"
    new_archive(db)
    serve = ("serve", "--year", str(YEAR), "--db", db)
    binary = tmp_path / "密钥.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        used = busy.getsockname()[1]
        cases = [
            (("--port", "99999"), "端口 99999 不合理"),
            (("--port", "0"), "端口 0 不合理"),
            (("--port", "-1"), "端口 -1 不合理"),
            (("--port", str(used)), "已被其他程序占用"),
            (("--host", "0.0.0.0", "--admin-key-file", binary), "不是文本文件"),
            (("--certfile", tmp_path / "没有.pem"), "要一起给出"),
            (("--certfile", tmp_path / "没有.pem", "--keyfile", binary), "无法使用证书"),
            (("--base-url", "10.1.2.3:8000"), "--base-url"),
        ]
        for args, message in cases:
            r = cli(*serve, *args)
            assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
            assert "Traceback" not in r.stderr and "报送网页已启动" not in r.stderr and "Error" not in r.stderr


# ---------------------------------------------------------------- PostgreSQL stopped for a moment


class _Postgres:
    """A throwaway PostgreSQL server (as .ci/pg makes one) that the test may stop and start."""

    def __init__(self, folder: Path):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not bins or not shutil.which("runuser") and os.geteuid() == 0:
            pytest.skip("需要 PostgreSQL 的程序（/usr/lib/postgresql/*/bin）")
        self.bin, self.dir = bins[-1].parent, folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            try:
                shutil.chown(folder, "postgres")  # initdb refuses root
            except LookupError:
                pytest.skip("需要 postgres 用户来运行 PostgreSQL")
        self._run("initdb", "-D", str(folder / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"), "-w", "-o", opts, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")


@pytest.fixture
def postgres():
    import tempfile

    pytest.importorskip("psycopg")
    folder = Path(tempfile.mkdtemp(prefix="nianbao-pg-"))  # under /tmp: the postgres user can reach it
    server = None
    try:
        server = _Postgres(folder)
        yield server
    finally:
        if server is not None:
            try:
                server.stop("immediate")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(folder, ignore_errors=True)


def _upload_until_acknowledged(c: httpx.Client, token: str, path: Path, answers: list[int]) -> None:
    """What a clerk does: upload, and on a 503 page try the same file again a little later."""
    for _ in range(200):
        try:
            page = c.get(f"/u/{token}")
            answers.append(page.status_code)
            if page.status_code == 200:
                r = c.post(
                    f"/u/{token}/upload", data={"csrf": page_csrf(page.text)}, files={"files": (path.name, path.read_bytes())}
                )
                answers.append(r.status_code)
                if r.status_code == 200:
                    return
                assert r.status_code == 503 and "请稍后重试" in r.text and r.headers["retry-after"], r.text[-300:]
        except httpx.TransportError:
            answers.append(0)
        time.sleep(0.2)
    raise AssertionError(f"{path.name} never acknowledged")


@pytest.mark.slow
def test_postgresql_stopped_for_a_moment_gives_503_and_loses_nothing(postgres, tmp_path):
    tokens = new_archive(postgres.url)
    files = [(p.name.split("_")[0], p) for p in sorted(FAULTY.glob("*.xlsx"))]
    files += [(p.name.split("_")[0], p) for p in sorted(RETURNS.glob("*.xlsx"))][:24]
    answers: list[int] = []
    done: list[Path] = []
    with Served(postgres.url, log=tmp_path / "serve.log") as s, httpx.Client(base_url=s.base, timeout=60) as c:
        c.headers["origin"] = s.base

        def clerks():
            for code, path in files:
                _upload_until_acknowledged(c, tokens[code], path, answers)
                done.append(path)

        worker = threading.Thread(target=clerks)
        worker.start()
        while len(done) < 6 and worker.is_alive():
            time.sleep(0.02)
        cookie, token = _visitor(s.base)  # /login needs no database
        postgres.stop("fast")
        stopped = len(answers)
        link = f"/u/{tokens[BAOLIGEN]}/upload"
        away = c.post(link, data={"csrf": token}, files={"files": ("x.xlsx", b"PK")}, headers={"cookie": cookie})
        assert "档案库暂时无法访问" in _chinese_page(away, 503) and away.headers["retry-after"]
        deadline = time.monotonic() + 60  # the clerks' next request meets the stopped database (however busy the machine)
        while 503 not in answers[stopped:] and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        postgres.start()
        worker.join(120)
        assert not worker.is_alive() and len(done) == len(files)
        during = answers[stopped:]
        assert 503 in during, during  # pages said 请稍后重试 while the database was away
        log = (tmp_path / "serve.log").read_text("utf-8", "replace")
    assert log.count("Traceback") == 0 and "→ 503" in log
    assert not any(token in log for token in tokens.values())  # the log names no unit's private link
    with Archive.open(postgres.url) as a, a.engine.connect() as conn:
        rows = conn.execute(T.submissions.select().with_only_columns(T.submissions.c.unit_code, T.submissions.c.sha256)).all()
        assert a.verify() == []
    stored = sorted((code, sha) for code, sha in rows)
    acknowledged = sorted((code, hashlib.sha256(path.read_bytes()).hexdigest()) for code, path in files)
    assert stored == acknowledged  # every acknowledged file exactly once, nothing unacknowledged
