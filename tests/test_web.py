"""The web page in-process (Starlette's test client, the real archive on SQLite): the clerk's and the
county's flows, and what a unit's link must never reach."""

from __future__ import annotations

import io
import re
import shutil

import openpyxl
import pytest
from web_util import FAULTY, RETURNS, ROSTER, YEAR, new_archive, page_csrf, sample, web_client

from toolkit.archive import Archive
from toolkit.web import WebConfig, create_app

pytest.importorskip("httpx")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HANGAI, ARSHAN, BAOLIGEN = "152502003", "152502101", "152502201"


@pytest.fixture
def site(tmp_path):
    db = tmp_path / "nianbao.db"
    tokens = new_archive(db)
    client = web_client(create_app(WebConfig(db=str(db), year=YEAR)))
    client.get("/")  # the visitor's signed id, as a browser gets it with the first page
    return client, tokens, db


def _csrf(client) -> str:
    """The token of the forms on a page (any page: it is bound to the visitor, not to the page)."""
    return page_csrf(client.get("/login").text)


def _upload(client, url: str, *paths, name: str | None = None):
    files = [("files", (name or p.name, p.read_bytes())) for p in paths]
    return client.post(url, data={"csrf": _csrf(client)}, files=files)


def _state(db, code: str):
    with Archive.open(str(db)) as a:
        return a.state(code, YEAR)


def test_clerk_fixes_a_faulty_return_through_the_link(site):
    client, tokens, db = site
    link = f"/u/{tokens[HANGAI]}"
    page = client.get(link)
    assert page.status_code == 200 and "杭盖街道" in page.text and "未报送" in page.text
    faulty = _upload(client, link + "/upload", sample(HANGAI, FAULTY))
    assert faulty.status_code == 200
    assert "D30" in faulty.text and "错误" in faulty.text and "退回" in faulty.text  # the cell and what to change
    assert _state(db, HANGAI).status == "退回"
    annotated = client.get(link + "/annotated")
    assert annotated.status_code == 200 and openpyxl.load_workbook(io.BytesIO(annotated.content))
    fixed = _upload(client, link + "/upload", sample(HANGAI))
    assert "第2版" in fixed.text and "等待县里审核" in fixed.text and _state(db, HANGAI).status == "待审核"
    assert fixed.text.count("D30") == 1  # only in the record of the automatic 退回, not as the new version's finding
    sid = _state(db, HANGAI).submission_id
    approved = client.post(f"/unit/{HANGAI}/accept", data={"csrf": _csrf(client), "submission_id": str(sid)})
    assert approved.status_code == 200 and _state(db, HANGAI).status == "已通过"
    assert "县里已审核通过本单位的第2版" in client.get(link).text
    template = client.get(link + "/template")
    assert template.status_code == 200 and "filename*=UTF-8''" in template.headers["content-disposition"]


def test_county_collects_accepts_and_consolidates(site, tmp_path):
    client, tokens, db = site
    files = [p for p in sorted(RETURNS.glob("*.xlsx")) if not p.name.startswith((BAOLIGEN, ARSHAN))]
    got = _upload(client, "/upload", *files, sample(ARSHAN, FAULTY))
    assert got.status_code == 200 and got.text.count("新收") == 21
    page = client.get("/?status=未报送")
    assert "宝力根苏木" in page.text and page.text.count("/unit/") == 1
    assert client.get("/?status=待审核").text.count("/unit/") == 21  # nothing is approved automatically by default
    sid = _state(db, ARSHAN).submission_id
    form = {"csrf": _csrf(client), "submission_id": str(sid)}
    refused = client.post(f"/unit/{ARSHAN}/accept", data=form)  # a warning needs a 说明
    assert refused.status_code == 409 and "说明" in refused.text and _state(db, ARSHAN).status == "待审核"
    r = client.post(f"/unit/{ARSHAN}/accept", data=form | {"note": "新制定2件、修改1件，已核实。"})
    assert r.status_code == 200 and _state(db, ARSHAN).status == "已通过"
    assert "已核实" in client.get(f"/unit/{ARSHAN}").text
    with Archive.open(str(db)) as a:
        assert len(a.approve_clean(YEAR)) == 20
    summary = client.post("/consolidate", data={"csrf": _csrf(client)})
    assert summary.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(summary.content), data_only=True)
    # the independent sum: the same returns read by the library, added here
    import nianbao

    reports = nianbao.check(files + [sample(ARSHAN, FAULTY)], roster=ROSTER, year=YEAR)
    expected = sum(r.value("t2.license.n") for r in reports)
    with Archive.open(str(db)) as a:
        stored = a.consolidate(YEAR).report.values["t2.license.n"]
    assert stored == expected
    assert str(int(expected)) in {str(c.value) for row in wb["表二"].iter_rows() for c in row if c.value is not None}
    export = client.get("/export.csv")
    assert export.status_code == 200 and export.content.startswith(b"\xef\xbb\xbf")


def test_a_link_sees_and_changes_only_its_own_unit(site):
    client, tokens, db = site
    mine, other = f"/u/{tokens[HANGAI]}", "152502202"  # 朝克乌拉苏木's faulty return: a 警告 at B17
    r = _upload(client, mine + "/upload", sample(other, FAULTY))
    assert "非本单位" in r.text and "这不是杭盖街道的填报表" in r.text
    assert "B17" not in r.text and "朝克乌拉苏木" not in r.text.replace(sample(other, FAULTY).name, "")
    assert _state(db, other).status == "未报送"
    with Archive.open(str(db)) as a:
        assert a.history(other, YEAR) == []
    assert client.get(f"/u/{tokens[HANGAI]}x").status_code == 404
    assert client.get("/u/" + "A" * 32).status_code == 404
    for path in (f"{mine}/../unit/{other}", f"{mine}/{other}", f"{mine}/upload/../../unit/{other}"):
        r = client.get(path)
        assert r.status_code in (404, 405) or other not in r.text


def test_admin_pages_need_the_key_off_loopback(tmp_path):
    db = tmp_path / "nianbao.db"
    tokens = new_archive(db)
    from toolkit.web.keys import set_admin_key

    with Archive.open(str(db)) as a:
        key = set_admin_key(a)
    client = web_client(create_app(WebConfig(db=str(db), year=YEAR, open_admin=False)), follow_redirects=False)
    clerk = client.get(f"/u/{tokens[HANGAI]}")
    assert clerk.status_code == 200
    csrf = page_csrf(clerk.text)
    for url in ("/", f"/unit/{HANGAI}", "/templates.zip", "/export.csv", "/submission/1/original"):
        assert client.get(url).status_code == 303, url
    for url in ("/upload", "/consolidate", f"/unit/{HANGAI}/accept", f"/unit/{HANGAI}/reject"):
        assert client.post(url, data={"csrf": csrf, "note": "x"}).status_code == 403, url
    assert client.post("/login", data={"csrf": csrf, "key": "wrong" * 5}).status_code == 403
    signed_in = client.post("/login", data={"csrf": csrf, "key": key})
    assert signed_in.status_code == 303 and key not in str(signed_in.headers)  # a session id, never the key
    assert client.get("/").status_code == 200


def test_every_form_needs_its_csrf_token(site):
    client, tokens, db = site
    link = f"/u/{tokens[HANGAI]}"
    for url in (link + "/upload", "/upload"):
        r = client.post(url, data={"csrf": "forged"}, files=[("files", ("a.xlsx", sample(HANGAI).read_bytes()))])
        assert r.status_code == 403 and "CSRF" in r.text
    for url in ("/consolidate", f"/unit/{HANGAI}/accept", f"/unit/{HANGAI}/reject", "/login"):
        assert client.post(url, data={"note": "x", "key": "y"}).status_code == 403, url
    assert _state(db, HANGAI).status == "未报送"


def test_user_text_is_shown_as_text(tmp_path):
    roster = tmp_path / "roster.csv"
    text = ROSTER.read_text(encoding="utf-8-sig").replace("宝力根苏木", "宝力根苏木&lt;b&gt;")  # the roster refuses < >
    roster.write_text(text, encoding="utf-8")
    db = tmp_path / "nianbao.db"
    tokens = new_archive(db, roster)
    client = web_client(create_app(WebConfig(db=str(db), year=YEAR)))
    client.get("/")
    page = client.get("/")
    assert "<b>" not in page.text and "宝力根苏木&amp;lt;b&amp;gt;" in page.text
    got = _upload(client, f"/u/{tokens[HANGAI]}/upload", sample(HANGAI, FAULTY), name="<script>x</script>.xlsx")
    assert "<script>x" not in got.text
    client.post(f"/unit/{HANGAI}/reject", data={"csrf": _csrf(client), "note": "<img src=x onerror=alert(1)>"})
    unit = client.get(f"/unit/{HANGAI}").text
    assert "<img src=x" not in unit and "&lt;img src=x onerror=alert(1)&gt;" in unit
    # no inline script anywhere; the policy forbids it
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_oversized_upload_is_refused_and_the_server_goes_on(tmp_path):
    db = tmp_path / "nianbao.db"
    tokens = new_archive(db)
    client = web_client(create_app(WebConfig(db=str(db), year=YEAR, max_upload=50_000)))
    client.get("/")
    big = tmp_path / "大文件.xlsx"
    big.write_bytes(b"PK" + b"\0" * 80_000)
    r = _upload(client, f"/u/{tokens[HANGAI]}/upload", big)
    assert r.status_code == 413 and "上限" in r.text
    assert _upload(client, f"/u/{tokens[HANGAI]}/upload", sample(HANGAI)).status_code == 200
    assert _state(db, HANGAI).status == "待审核" and _state(db, HANGAI).version == 1


def test_hostile_files_get_the_same_findings_as_check(site, tmp_path):
    import corpus_broken_files

    import nianbao

    client, tokens, db = site
    corpus = tmp_path / "hostile"
    corpus.mkdir()
    kinds = corpus_broken_files.build(corpus)
    paths = sorted(p for p in corpus.rglob("*") if p.is_file() and p.stat().st_size < 15_000_000)[:40]
    r = _upload(client, "/upload", *paths)
    assert r.status_code == 200 and "Traceback" not in r.text
    from markupsafe import escape

    for rep in nianbao.check(paths, year=YEAR):
        for f in rep.findings:
            if f.severity != "提示" and f.code not in ("unit-duplicate-in-batch", "unit-missing", "year-mixed"):
                assert str(escape(f.message)) in r.text, (rep.provenance.name, f.code)
    assert client.get("/").status_code == 200  # still serving
    assert kinds


def test_downloads_stay_inside_the_archive(site):
    client, tokens, db = site
    for url in ("/static/../nianbao.db", "/static/%2e%2e/%2e%2e/pyproject.toml", "/submission/999/original", "/export.db"):
        r = client.get(url)
        assert r.status_code == 404, url
    r = _upload(client, "/upload", sample(HANGAI), name="../../../../tmp/越界.xlsx")
    assert r.status_code == 200
    assert not shutil.os.path.exists("/tmp/越界.xlsx")
    original = client.get("/submission/1/original")
    assert original.status_code == 200 and original.content == sample(HANGAI).read_bytes()


def test_published_reports_are_audited_from_the_page(site):
    client, tokens, db = site
    from conftest import ROOT

    corpus = sorted((ROOT / "tests" / "published").glob("*.source.*"))[:6]
    r = client.post(
        "/audit",
        data={"csrf": _csrf(client)},
        files=[("files", (p.name, p.read_bytes())) for p in corpus],
    )
    assert r.status_code == 200 and "已发布年报的审计：6 份" in r.text
    book = client.post(
        "/audit", data={"csrf": _csrf(client), "download": "1"}, files=[("files", (p.name, p.read_bytes())) for p in corpus]
    )
    wb = openpyxl.load_workbook(io.BytesIO(book.content))
    assert "总览" in wb.sheetnames and wb["总览"].max_row >= 7


def test_second_year_upload_is_checked_against_last_year(tmp_path):
    """Through a unit's link in the second year, the cross-year rules run against that unit's
    accepted return of last year (and only that unit's is read)."""
    import nianbao
    from toolkit.template import ReturnContent, write_return

    db = tmp_path / "nianbao.db"
    roster = nianbao.load_roster(ROSTER)
    (last,) = nianbao.check([sample(HANGAI)], roster=ROSTER, year=YEAR)
    values = dict(last.values)
    values["t3.r1.np"] = (values.get("t3.r1.np") or 0) + 5  # five more applications, all carried over
    values["t3.r4.np"] = (values.get("t3.r4.np") or 0) + 5
    old = tmp_path / "2024.xlsx"
    content = ReturnContent(unit=roster.get(HANGAI), year=YEAR - 1, values=values, cover=dict(last.cover))
    write_return(old, nianbao.current_format(), content)
    with Archive.open(str(db)) as a:
        a.load_roster(ROSTER, YEAR - 1)
        assert [r.status for r in a.receive([old], YEAR - 1)] == ["待审核"]
        a.approve(HANGAI, YEAR - 1)
    tokens = new_archive(db)
    client = web_client(create_app(WebConfig(db=str(db), year=YEAR)))
    client.get("/")
    page = _upload(client, f"/u/{tokens[HANGAI]}/upload", sample(HANGAI))
    assert "2024" in page.text and "2025" in page.text and "上年结转" in page.text and "核实性" in page.text
    assert _state(db, HANGAI).status == "待审核"  # a carry-over difference may be explained: it waits for the county


def test_links_command_and_rotation(cli, tmp_path):
    """`nianbao links` writes one private link per roster unit (CSV that Excel opens); running it
    again writes the same links; --rotate replaces one unit's link and the old one stops working."""
    import csv

    db = tmp_path / "nianbao.db"
    with Archive.open(str(db)) as a:
        a.load_roster(ROSTER, YEAR)
    out = tmp_path / "链接.csv"
    base = ("links", "--year", str(YEAR), "--base-url", "http://10.1.2.3:8000", "--db", db)
    assert cli(*base, "--out", out).returncode == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(out.read_text(encoding="utf-8-sig").splitlines()))[1:]
    assert len(rows) == 22 and all(url.startswith("http://10.1.2.3:8000/u/") for _, _, url in rows)
    again = cli(*base)  # every current link again, none new (tests/test_links.py: the file stays complete)
    assert again.returncode == 0 and sorted(again.stdout.split()) == sorted(x for row in rows for x in row)
    old = dict((code, url.rsplit("/", 1)[1]) for code, _, url in rows)[HANGAI]
    rotated = cli(*base, "--rotate", "杭盖街道")
    assert rotated.returncode == 0
    new = next(line for line in rotated.stdout.splitlines() if line.startswith(HANGAI)).rsplit("/", 1)[1]
    client = web_client(create_app(WebConfig(db=str(db), year=YEAR)))
    assert client.get(f"/u/{old}").status_code == 404
    assert client.get(f"/u/{new}").status_code == 200
    bad = cli("links", "--year", str(YEAR), "--base-url", "ftp://x", "--db", db)
    assert bad.returncode == 2 and "http://" in bad.stderr


def test_unreadable_files_through_a_link_are_explained_and_recorded(site):
    """An .xls or .et sent through a unit's link gets the admin page's precise message (save as .xlsx),
    never "非本单位"; the failed attempt is recorded for the county."""
    client, tokens, db = site
    old_excel = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600  # an OLE2 (.xls/.et) header
    for name in ("年报.xls", "年报.et"):
        r = client.post(f"/u/{tokens[HANGAI]}/upload", data={"csrf": _csrf(client)}, files=[("files", (name, old_excel))])
        assert r.status_code == 200 and "另存为" in r.text and "xlsx" in r.text and "非本单位" not in r.text, name
    admin = client.post("/upload", data={"csrf": _csrf(client)}, files=[("files", ("年报.xls", old_excel))])
    assert "另存为" in admin.text
    assert _state(db, HANGAI).status == "未报送"
    with Archive.open(str(db)) as a:
        refused = [h for h in a.history(HANGAI, YEAR) if h.kind == "拒收"]
    assert [h.text.split("：")[0] for h in refused] == ["年报.xls", "年报.et"]
    assert "年报.xls" in client.get(f"/unit/{HANGAI}").text  # the county sees the attempts


def test_the_reviewer_decides_on_the_version_seen(site, tmp_path):
    """The unit page's forms carry the version's id: a decision on a version that is no longer the
    newest gives the page again with the archive's refusal naming both; 撤销通过 takes the figures out."""
    client, tokens, db = site
    link = f"/u/{tokens[ARSHAN]}/upload"
    _upload(client, link, sample(ARSHAN))
    first = _state(db, ARSHAN).submission_id
    page = client.get(f"/unit/{ARSHAN}").text
    assert f'name="submission_id" value="{first}"' in page and "第1版" in page
    _upload(client, link, sample(ARSHAN, FAULTY))
    stale = client.post(f"/unit/{ARSHAN}/accept", data={"csrf": _csrf(client), "submission_id": str(first), "note": "已核实"})
    assert stale.status_code == 409 and "第1版" in stale.text and "已不是最新，最新的是第2版" in stale.text
    assert _state(db, ARSHAN).approved_id is None
    newest = _state(db, ARSHAN).submission_id
    ok = client.post(f"/unit/{ARSHAN}/accept", data={"csrf": _csrf(client), "submission_id": str(newest), "note": "已核实"})
    assert ok.status_code == 200 and _state(db, ARSHAN).approved_id == newest
    page = client.get(f"/unit/{ARSHAN}").text
    assert "已通过的第2版" in page and "第2版与第1版相比的变化" in page
    back = client.post(f"/unit/{ARSHAN}/reopen", data={"csrf": _csrf(client), "submission_id": str(newest), "note": "数字待核"})
    assert back.status_code == 200 and _state(db, ARSHAN).approved_id is None
    assert "数字待核" in client.get(f"/unit/{ARSHAN}").text
