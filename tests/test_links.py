"""The units' private links and the admin key as a county manages them over a season and into the
next year: `nianbao links` run again never loses a link, --rotate takes lists and 全部, the admin
page shows and re-issues a link, a link serves its unit in the next year, the admin key survives a
restart of the real server, and the templates behind a link are prefilled like `template --db`."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import httpx
import openpyxl
import pytest
from web_util import ROSTER, YEAR, Served, page_csrf, web_client

from toolkit.archive import Archive
from toolkit.web import WebConfig, create_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HANGAI, BAOLIGEN = "152502003", "152502201"
LAN = "http://10.1.2.3:8000"
GONE = "链接无效或已更换"


def _roster(db, year: int = YEAR, roster=ROSTER) -> None:
    with Archive.open(str(db)) as a:
        a.load_roster(roster, year)


def _rows(path) -> dict[str, str]:
    """unit code → link token of a links CSV (checking the header and the address of every row)."""
    rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0] == ["单位代码", "单位名称", "链接"]
    return {code: url.rsplit("/u/", 1)[1] for code, _, url in rows[1:]}


def _links(cli, db, *args):
    res = cli("links", "--year", str(YEAR), "--db", db, *args)
    assert res.returncode == 0, res.stderr
    return res


def _client(db, year: int = YEAR, **kw):
    return web_client(create_app(WebConfig(db=str(db), year=year)), **kw)


def test_links_run_again_rotated_and_never_lost(cli, tmp_path):
    """The clerk's season: links first written for 127.0.0.1, written again for the LAN address (the
    same links, the file complete), then re-issued for two units and for all; the file always holds
    every unit's working link, the old links stop and the others keep working."""
    db, out = tmp_path / "nianbao.db", tmp_path / "链接.csv"
    _roster(db)
    _links(cli, db, "--base-url", "http://127.0.0.1:8000", "--out", out)
    first = _rows(out)
    assert len(first) == 22
    again = _links(cli, db, "--base-url", LAN, "--out", out)
    assert _rows(out) == first and "新生成" not in again.stderr
    assert all(url.startswith(LAN + "/u/") for *_, url in csv.reader(out.read_text(encoding="utf-8-sig").splitlines()[1:]))
    printed = _links(cli, db)  # no --out: every link on standard output, the stored address reused
    assert len(printed.stdout.splitlines()) == 22 and f"{LAN}/u/{first[HANGAI]}" in printed.stdout

    two = _links(cli, db, "--rotate", f"杭盖街道，{BAOLIGEN}", "--out", out)
    second = _rows(out)
    assert len(second) == 22 and "2 个单位换了新链接" in two.stderr
    assert {c for c in first if first[c] != second[c]} == {HANGAI, BAOLIGEN}
    client = _client(db)
    assert GONE in client.get(f"/u/{first[HANGAI]}").text and client.get(f"/u/{first[HANGAI]}").status_code == 404
    assert client.get(f"/u/{second[HANGAI]}").status_code == 200
    assert client.get(f"/u/{first['152502001']}").status_code == 200  # not rotated: still works

    _links(cli, db, "--rotate", "全部", "--out", out)
    third = _rows(out)
    assert len(third) == 22 and not set(third.values()) & set(second.values())
    assert all(client.get(f"/u/{t}").status_code == 404 for t in list(second.values())[:3])
    assert all(client.get(f"/u/{t}").status_code == 200 for t in list(third.values())[:3])

    unknown = cli("links", "--year", str(YEAR), "--db", db, "--rotate", "杭盖街道,不存在的单位", "--out", out)
    assert unknown.returncode == 2 and "不存在的单位" in unknown.stderr and "没有更换任何链接" in unknown.stderr
    assert _rows(out) == third  # nothing changed, the file kept
    other = tmp_path / "汇总.csv"
    other.write_text("单位,数字\n", encoding="utf-8")
    refused = cli("links", "--year", str(YEAR), "--db", db, "--out", other)
    assert refused.returncode == 2 and "不是 nianbao links 写出的链接表" in refused.stderr
    assert other.read_text(encoding="utf-8") == "单位,数字\n"


def test_links_of_an_older_nianbao_keep_working_and_stay_in_the_file(cli, tmp_path):
    """Links made before links could be shown again (a random token, its digest bound to a year): they
    still open the unit's page, a second `links` keeps them in the file it replaces, and without that
    file the county is told which units' links cannot be shown and how to re-issue them."""
    from toolkit.archive import schema as T
    from toolkit.archive.core import now
    from toolkit.web.keys import digest, new_secret

    db, out = tmp_path / "nianbao.db", tmp_path / "链接.csv"
    _roster(db)
    old = new_secret()
    with Archive.open(str(db)) as a, a.engine.begin() as conn:
        conn.execute(T.secrets.insert().values(kind="link", year=YEAR, unit_code=HANGAI, digest=digest(old), created_at=now()))
    out.write_text(f"\ufeff单位代码,单位名称,链接\n{HANGAI},杭盖街道,http://127.0.0.1:8000/u/{old}\n", encoding="utf-8")
    _links(cli, db, "--base-url", LAN, "--out", out)
    rows = _rows(out)
    assert len(rows) == 22 and rows[HANGAI] == old
    elsewhere = _links(cli, db, "--out", tmp_path / "另一份.csv")
    assert len(_rows(tmp_path / "另一份.csv")) == 21 and "旧版本" in elsewhere.stderr and "杭盖街道" in elsewhere.stderr
    assert _client(db).get(f"/u/{old}").status_code == 200
    _links(cli, db, "--rotate", HANGAI, "--out", out)
    assert _rows(out)[HANGAI] != old and _client(db).get(f"/u/{old}").status_code == 404


def test_a_link_serves_its_unit_in_the_next_year(cli, tmp_path):
    """2026's server answers 2025's links; a unit no longer in 2026's roster gets the 404 of an
    invalid link, and a unit new in 2026 gets its link from the next `links` run."""
    db, out = tmp_path / "nianbao.db", tmp_path / "链接.csv"
    _roster(db)
    _links(cli, db, "--base-url", LAN, "--out", out)
    links = _rows(out)
    lines = ROSTER.read_text(encoding="utf-8-sig").splitlines()
    header, rest = lines[0], [line for line in lines[1:] if HANGAI not in line]
    roster26 = tmp_path / "名册2026.csv"
    roster26.write_text("\n".join([header, *rest, "152502999,新设街道,街道,152502"]) + "\n", encoding="utf-8")
    _roster(db, 2026, roster26)
    client = _client(db, 2026)
    page = client.get(f"/u/{links[BAOLIGEN]}")
    assert page.status_code == 200 and "宝力根苏木" in page.text and "2026" in page.text
    gone = client.get(f"/u/{links[HANGAI]}")
    assert gone.status_code == 404 and GONE in gone.text
    res = cli("links", "--year", "2026", "--db", db, "--out", out)
    assert res.returncode == 0 and "新设街道" in res.stderr
    year2 = _rows(out)
    assert year2[BAOLIGEN] == links[BAOLIGEN] and year2[HANGAI] == links[HANGAI]  # kept: it still works in 2025
    assert "152502999" in year2 and client.get(f"/u/{year2['152502999']}").status_code == 200


def test_the_admin_page_shows_each_link_and_reissues_it(cli, tmp_path):
    db = tmp_path / "nianbao.db"
    _roster(db)
    _links(cli, db, "--base-url", LAN, "--out", tmp_path / "链接.csv")
    token = _rows(tmp_path / "链接.csv")[HANGAI]
    client = _client(db, follow_redirects=False)
    page = client.get(f"/unit/{HANGAI}")
    assert page.status_code == 200 and f'value="{LAN}/u/{token}"' in page.text
    assert 'class="copy"' in page.text and "/static/links.js" in page.text and "<script>" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "navigator.clipboard" in client.get("/static/links.js").text
    listing = client.get("/links")
    assert listing.status_code == 200 and listing.text.count('class="copy"') == 22 and "data-confirm=" in listing.text

    csrf = page_csrf(page.text)
    assert client.post(f"/unit/{HANGAI}/link", data={}).status_code == 403  # no CSRF token
    assert client.get(f"/u/{token}").status_code == 200
    done = client.post(f"/unit/{HANGAI}/link", data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["location"].startswith(f"/unit/{HANGAI}")
    assert client.get(f"/u/{token}").status_code == 404
    new = re.search(rf'value="{re.escape(LAN)}/u/([^"]+)"', client.get(f"/unit/{HANGAI}").text).group(1)
    assert new != token and client.get(f"/u/{new}").status_code == 200
    back = client.post(f"/unit/{BAOLIGEN}/link", data={"csrf": csrf, "back": "links"})
    assert back.headers["location"].startswith("/links")
    res = _links(cli, db, "--out", tmp_path / "链接.csv")  # the command line writes the page's links
    assert _rows(tmp_path / "链接.csv")[HANGAI] == new and "新生成" not in res.stderr


def test_year_two_templates_hold_last_years_carryover(cli, tmp_path):
    """A unit's 2025 return (结转下年度 2) approved; its 2026 template from its link, from the unit
    page and in the zip carries the 2 into 上年结转, as `template --db` does."""
    from archive_util import write_return

    from toolkit.spec import current_format

    db = tmp_path / "nianbao.db"
    _roster(db)
    fmt = current_format()
    zero = {c.id: 0 for c in fmt.inputs if c.sheet_id == "t3"}
    path = write_return(tmp_path / f"{BAOLIGEN}.xlsx", BAOLIGEN, YEAR, zero | {"t3.r4.np": 2, "t3.r1.np": 2})
    assert cli("receive", path, "--year", str(YEAR), "--db", db).returncode == 0
    cli("accept", BAOLIGEN, "--year", str(YEAR), "--note", "已核实", "--db", db)  # approves where review is needed
    _roster(db, 2026)
    _links(cli, db, "--base-url", LAN)
    with Archive.open(str(db)) as a:
        assert a.carryover(2026) == {BAOLIGEN: {"t3.r2.np": 2}}
    cell = fmt.cells["t3.r2.np"]
    printed = _links(cli, db).stdout
    token = next(line.split("/u/")[1] for line in printed.splitlines() if line.startswith(BAOLIGEN))
    client = _client(db, 2026)

    def carried(data: bytes):
        return openpyxl.load_workbook(io.BytesIO(data))[cell.sheet_name][cell.a1].value

    assert carried(client.get(f"/u/{token}/template").content) == 2
    assert carried(client.get(f"/template/{BAOLIGEN}").content) == 2
    with zipfile.ZipFile(io.BytesIO(client.get("/templates.zip").content)) as z:
        (name,) = [n for n in z.namelist() if n.startswith(BAOLIGEN)]
        other = next(n for n in z.namelist() if n.startswith(HANGAI))
        assert carried(z.read(name)) == 2 and carried(z.read(other)) in (None, 0)


def _key_in(log) -> str:
    found = re.findall(r"管理密钥（[^）]*）：(\S+)", log.read_text("utf-8"))
    assert len(found) == 1, log.read_text("utf-8")
    return found[0]


def _signs_in(base: str, key: str) -> bool:
    with httpx.Client(base_url=base, timeout=30, headers={"origin": base}) as c:
        csrf = page_csrf(c.get("/login").text)
        return c.post("/login", data={"csrf": csrf, "key": key}).status_code == 303


@pytest.mark.slow
def test_the_admin_key_survives_a_restart_and_is_replaced_on_request(cli, tmp_path):
    """A real `serve --host 0.0.0.0` three times: the first makes the key and shows it once, the second
    says it was set earlier (the same key signs in), `--new-admin-key` shows a new one and the old one
    stops. Each start lists this machine's addresses and warns that the links point at 127.0.0.1."""
    from toolkit.cli.web import lan_addresses

    db = tmp_path / "nianbao.db"
    _roster(db)
    _links(cli, db, "--base-url", "http://127.0.0.1:8000")
    with Served(db, "--host", "0.0.0.0", log=tmp_path / "1.log") as s:
        key = _key_in(s.log)
        assert _signs_in(s.base, key) and not _signs_in(s.base, key + "x")
    first = (tmp_path / "1.log").read_text("utf-8")
    assert "只显示这一次" in first and "请妥善保存" not in first
    assert "只有本机能打开" in first and "--base-url" in first
    for address in lan_addresses():
        assert f"http://{address}:{s.port}/" in first
    with Served(db, "--host", "0.0.0.0", log=tmp_path / "2.log") as s:
        assert _signs_in(s.base, key)
    second = (tmp_path / "2.log").read_text("utf-8")
    assert key not in second and "管理密钥已于" in second and "--new-admin-key" in second
    with Served(db, "--host", "0.0.0.0", "--new-admin-key", log=tmp_path / "3.log") as s:
        new = _key_in(s.log)
        assert new != key and _signs_in(s.base, new) and not _signs_in(s.base, key)
    assert "旧的管理密钥和所有已登录的会话已作废" in (tmp_path / "3.log").read_text("utf-8")


def test_the_base_url_is_compared_with_this_machines_addresses():
    from toolkit.cli.web import base_url_problem

    assert "只有本机能打开" in base_url_problem("http://127.0.0.1:8000", ["10.1.2.3"], 8000)
    assert "不是本机现在的地址" in base_url_problem("http://10.9.9.9:8000", ["10.1.2.3"], 8000)
    assert "端口" in base_url_problem("http://10.1.2.3:8001", ["10.1.2.3"], 8000)
    assert "还没有生成" in base_url_problem(None, ["10.1.2.3"], 8000)
    assert base_url_problem("https://10.1.2.3:8000/", ["10.1.2.3"], 8000) == ""
    assert base_url_problem("https://nianbao.county.gov.cn", ["10.1.2.3"], 8000) == ""  # a name: not resolved


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_links_in_the_archive(backend, tmp_path):
    """The links' life in the archive itself, on SQLite and PostgreSQL: made once, the same on every
    reading, re-issued (the old one found no more), one per unit for every year."""
    from archive_util import new_db

    from toolkit.archive import ArchiveError
    from toolkit.web import keys

    url, drop = new_db(backend, tmp_path)
    try:
        with Archive.open(url) as a:
            a.load_roster(ROSTER, YEAR)
            a.load_roster(ROSTER, 2026)
            links, hidden = keys.issue_links(a, YEAR)
            assert len(links) == 22 and not hidden and all(x.made for x in links)
            tokens = {x.unit_code: x.token for x in links}
            again, _ = keys.issue_links(a, 2026)
            assert {x.unit_code: x.token for x in again} == tokens and not any(x.made for x in again)
            assert keys.links_of(a) == tokens and keys.unit_of(a, tokens[HANGAI]) == HANGAI
            assert keys.rotate_codes(a, YEAR, "杭盖街道、152502201") == [HANGAI, BAOLIGEN]
            assert len(keys.rotate_codes(a, YEAR, keys.ALL_UNITS)) == 22
            with pytest.raises(ArchiveError, match="没有更换任何链接"):
                keys.rotate_codes(a, YEAR, "杭盖街道,无此单位")
            rotated, _ = keys.issue_links(a, YEAR, [HANGAI])
            new = {x.unit_code: x.token for x in rotated}
            assert [x.unit_code for x in rotated if x.made] == [HANGAI] and new[HANGAI] != tokens[HANGAI]
            assert keys.unit_of(a, tokens[HANGAI]) is None and keys.unit_of(a, new[HANGAI]) == HANGAI
            assert keys.rotate_link(a, HANGAI) == keys.links_of(a, [HANGAI])[HANGAI] != new[HANGAI]
    finally:
        drop()
