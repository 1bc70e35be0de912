"""Issue 31, the web half: one server for a city — reviewers sign in with keys scoped to their county,
every admin route keeps them inside it (tried one by one against a real running `nianbao serve`), the
city's county-by-county overview with 上报, 通过 and 退回, and the races E left (a decision or an automatic
通过 slipping in after a county submitted) closed. SQLite always, PostgreSQL with $NIANBAO_TEST_PG."""

from __future__ import annotations

import contextlib
import io
import os
import re
import urllib.parse
import zipfile
from pathlib import Path

import httpx
import pytest
from archive_util import write_return
from conftest import ROOT
from test_city import CITY, ROSTER, UNITS_A, UNITS_B, YEAR, A, B, _city
from web_util import Served, page_csrf, web_client

from toolkit.archive import Archive
from toolkit.archive.db import ArchiveError
from toolkit.web import WebConfig, create_app

A1, B1 = UNITS_A[1], UNITS_B[1]  # 希日塔拉街道 (county A), 别力古台镇 (county B)
HOST = "nianbao.test"  # a name the server answers for (--allow-host) that is not loopback: sign-in required


def _roster(tmp_path: Path) -> Path:
    path = tmp_path / "名册.csv"
    path.write_text(ROSTER, encoding="utf-8")
    return path


def _new_version(archive: Archive, tmp_path: Path, code: str, n: int = 7) -> Path:
    """A new version of a unit (its figures changed): it awaits its county's review."""
    path = write_return(tmp_path / f"{code}_v{n}.xlsx", code, YEAR, {"t2.penalty.n": n}, roster=_roster(tmp_path))
    archive.receive([path], YEAR, workers=1)
    return path


def _sign_in(client, key: str):
    page = client.get("/login")
    res = client.post("/login", data={"key": key, "csrf": page_csrf(page.text)})
    assert res.status_code == 303, res.text
    return client


# ---------------------------------------------------------------- sessions carry the key's scope


def test_a_reviewer_key_signs_in_to_its_county_and_revoking_it_ends_the_session(tmp_path, db):
    archive = _city(tmp_path, db)
    try:
        key_id, key_a = archive.add_key(A, "锡林浩特市政务公开办")
        admin = archive.set_admin_key()
        app = create_app(WebConfig(db=db, year=YEAR, open_admin=False))
        with web_client(app, follow_redirects=False) as a, web_client(app, follow_redirects=False) as whole:
            _sign_in(a, key_a)
            page = a.get("/")
            assert page.status_code == 200 and "希日塔拉街道" in page.text and "别力古台镇" not in page.text
            assert a.get(f"/unit/{B1}").status_code == 404
            _sign_in(whole, admin)  # the admin key keeps working: the whole archive
            assert "阿巴嘎旗人民政府" in whole.get("/").text and whole.get(f"/unit/{B1}").status_code == 200
            archive.revoke_key(key_id)
            assert a.get("/").status_code == 303  # revoked: the session stops at once
            again = a.post("/login", data={"key": key_a, "csrf": page_csrf(a.get("/login").text)})
            assert again.status_code == 403 and "密钥" in again.text
    finally:
        archive.close()


def test_a_county_reviewer_audits_and_keeps_only_its_own_units_published_reports(tmp_path, db):
    """审计 through the page with a county's key: the published report of 宝力根苏木 (county A) is
    matched and kept as its 2023 figures by A's reviewer, and neither matched nor kept by B's."""
    archive = _city(tmp_path, db)
    try:
        archive.load_roster(_roster(tmp_path), 2023)  # the year the report was published for
        keys = {"b": archive.add_key(B)[1], "a": archive.add_key(A)[1]}
        published = ROOT / "tests" / "published" / "01_baoligen_sumu_2023.source.txt"
        app = create_app(WebConfig(db=db, year=YEAR, open_admin=False))
        kept = {}
        for county in ("b", "a"):
            with web_client(app, follow_redirects=False) as client:
                _sign_in(client, keys[county])
                form = {"csrf": page_csrf(client.get("/").text), "store": "1"}
                res = client.post("/audit", data=form, files=[("files", (published.name, published.read_bytes()))])
                assert res.status_code == 200, res.text
            kept[county] = archive.state("152502201", 2023).submission_id
        assert kept["b"] is None and kept["a"] is not None
    finally:
        archive.close()


# ---------------------------------------------------------------- the scoping matrix, on a real server


@pytest.fixture
def served_city(tmp_path, db):
    """A real server over the city's archive; a unit of each county has a new version (待审核)."""
    archive = _city(tmp_path, db)
    _new_version(archive, tmp_path, A1)
    b_file = _new_version(archive, tmp_path, B1)
    keys = {"a": archive.add_key(A)[1], "city": archive.add_key(CITY)[1]}
    server = Served(db, "--allow-host", HOST, log=tmp_path / "serve.log").wait_ready()
    yield archive, server, keys, b_file
    server.stop()
    archive.close()


def _browser(server: Served, key: str) -> httpx.Client:
    """A signed-in browser on a name other than loopback (loopback's open admin does not apply)."""
    origin = f"http://{HOST}:{server.port}"
    client = httpx.Client(base_url=server.base, headers={"host": f"{HOST}:{server.port}", "origin": origin}, timeout=60)
    page = client.get("/login")
    res = client.post("/login", data={"key": key, "csrf": page_csrf(page.text)})
    assert res.status_code == 303, res.text
    return client


def _csrf(client: httpx.Client) -> str:
    return page_csrf(client.get("/").text)


def test_county_a_cannot_read_or_change_county_b_each_route_tried(served_city, tmp_path):
    archive, server, keys, b_file = served_city
    before = {code: archive.state(code, YEAR) for code in UNITS_B}
    links_before = archive.links(UNITS_B)
    sid = before[B1].submission_id
    with contextlib.closing(_browser(server, keys["a"])) as a:
        csrf = _csrf(a)
        tries = {
            "page": a.get(f"/unit/{B1}"),
            "online form": a.get(f"/unit/{B1}/form"),
            "template": a.get(f"/template/{B1}"),
            "original": a.get(f"/submission/{sid}/original"),
            "annotated": a.get(f"/submission/{sid}/annotated"),
            "county page": a.get(f"/county/{B}"),
            "county summary": a.get(f"/county/{B}/summary.xlsx"),
            "accept": a.post(f"/unit/{B1}/accept", data={"csrf": csrf, "submission_id": sid}),
            "reject": a.post(f"/unit/{B1}/reject", data={"csrf": csrf, "note": "不对"}),
            "reopen": a.post(f"/unit/{B}/reopen", data={"csrf": csrf, "note": "撤销"}),
            "new link": a.post(f"/unit/{B1}/link", data={"csrf": csrf}),
            "form submit": a.post(f"/unit/{B1}/form/submit", data={"csrf": csrf}),
            "form check": a.post(f"/unit/{B1}/form/check", json={}, headers={"x-csrf-token": csrf}),
            "county submit": a.post(f"/county/{B}/submit", data={"csrf": csrf}),
            "county approve": a.post(f"/county/{B}/approve", data={"csrf": csrf}),
            "county return": a.post(f"/county/{B}/return", data={"csrf": csrf, "note": "退回"}),
        }
        for what, res in tries.items():
            assert res.status_code == 404, (what, res.status_code, res.text[:300])
            assert "别力古台镇" not in res.text and "阿巴嘎旗" not in res.text, what
        # its own county's summary is decided one level up, not by itself
        own = a.post(f"/county/{A}/approve", data={"csrf": csrf})
        assert own.status_code == 409 and "不能审核" in own.text
        # lists and downloads hold its own units only
        home = a.get("/").text
        assert "希日塔拉街道" in home and not any(code in home for code in UNITS_B) and "counties-table" not in home
        links = a.get("/links").text
        assert A1 in links and not any(code in links for code in UNITS_B)
        names = zipfile.ZipFile(io.BytesIO(a.get("/templates.zip").content)).namelist()
        assert len(names) == len(UNITS_A) and not any(code in n for n in names for code in UNITS_B)
        for kind in ("csv", "csv?form=wide"):
            table = a.get(f"/export.{kind}").content.decode("utf-8-sig")
            assert A1 in table and not any(code in table for code in UNITS_B), kind
        summary = a.post("/consolidate", data={"csrf": csrf})
        assert summary.status_code == 200 and "锡林浩特市" in urllib.parse.unquote(summary.headers["content-disposition"])
        # an upload of county B's return is refused, with the reason in Chinese
        with b_file.open("rb") as f:
            up = a.post("/upload", data={"csrf": csrf}, files={"files": (b_file.name, f.read())})
        assert up.status_code == 200 and "不在您管理的单位范围内" in up.text
    after = {code: archive.state(code, YEAR) for code in UNITS_B}
    assert [(s.status, s.submission_id, s.approved_id) for s in after.values()] == [
        (s.status, s.submission_id, s.approved_id) for s in before.values()
    ]
    assert archive.links(UNITS_B) == links_before and archive.summary_flow(B, YEAR).status == "未报送"
    # the city's key sees both counties, and each county's units
    with contextlib.closing(_browser(server, keys["city"])) as city:
        home = city.get("/").text
        assert "counties-table" in home and "锡林浩特市人民政府" in home and "阿巴嘎旗人民政府" in home
        assert city.get(f"/unit/{B1}").status_code == 200 and city.get(f"/unit/{A1}").status_code == 200
        county = city.get(f"/county/{B}").text
        assert "别力古台镇" in county and "希日塔拉街道" not in county


def test_submit_return_and_the_reason_on_the_county_page(tmp_path):
    db = str(tmp_path / "nianbao.db")
    archive = _city(tmp_path, db)
    try:
        _new_version(archive, tmp_path, A1)
        app = create_app(WebConfig(db=db, year=YEAR, open_admin=False))
        with (
            web_client(app, follow_redirects=False) as a,
            web_client(app, follow_redirects=False) as city,
        ):
            _sign_in(a, archive.add_key(A)[1])
            _sign_in(city, archive.add_key(CITY)[1])
            csrf = page_csrf(a.get("/").text)
            refused = a.post(f"/county/{A}/submit", data={"csrf": csrf})
            assert refused.status_code == 409 and "希日塔拉街道" in refused.text and "待审核" in refused.text
            sid = archive.state(A1, YEAR).submission_id
            ok = a.post(f"/unit/{A1}/accept", data={"csrf": csrf, "submission_id": sid, "note": "已电话核实，数字属实"})
            assert ok.status_code == 303, ok.text
            assert a.post(f"/county/{A}/submit", data={"csrf": csrf, "note": "全部单位已审核"}).status_code == 303
            assert archive.summary_flow(A, YEAR).status == "待审核"
            locked = a.post(f"/unit/{A1}/reopen", data={"csrf": csrf, "note": "再看看"})
            assert locked.status_code == 409  # the county's units are locked once it has submitted
            assert "已锁定" in a.get(f"/unit/{UNITS_A[2]}").text  # and every unit's page says so
            page = city.get("/").text
            assert re.search(r'id="county-' + A + r'".*?待审核', page, re.S)
            c_csrf = page_csrf(page)
            empty = city.post(f"/county/{A}/return", data={"csrf": c_csrf, "note": " "})
            assert empty.status_code == 400 and "退回原因" in empty.text
            reason = "杭盖街道表三与台账不符，请核实后重报"
            back = city.post(f"/county/{A}/return", data={"csrf": c_csrf, "note": reason, "back": "overview"})
            assert back.status_code == 303 and back.headers["location"] == "/"
            mine = a.get("/").text
            assert "上级退回的原因" in mine and reason in mine and 'action="/county/' + A + '/submit"' in mine
            assert city.get("/city/summary.xlsx").status_code == 200
    finally:
        archive.close()


# ---------------------------------------------------------------- the races closed (E's report)


def test_a_decision_rechecks_the_county_lock_inside_its_transaction(tmp_path):
    """status.decide, asked with tree.check_open, refuses once the county has submitted — even when the
    caller's own look (check_unit_open) came before the 上报."""
    from toolkit.archive.status import decide
    from toolkit.archive.tree import check_open

    archive = _city(tmp_path, str(tmp_path / "nianbao.db"))
    try:
        archive.submit_summary(A, YEAR)
        ros = archive.need_roster(YEAR)
        sid = archive.state(A1, YEAR).approved_id
        with pytest.raises(ArchiveError, match="锁定|已上报|上报"):
            decide(
                archive.engine,
                A1,
                YEAR,
                "希日塔拉街道",
                "撤销",
                "撤销通过",
                sid,
                "管理页面",
                lambda c: check_open(c, ros, A1, YEAR),
            )
        assert archive.state(A1, YEAR).status == "已通过"
    finally:
        archive.close()


def _clean(tmp_path: Path, code: str) -> Path:
    """A return without 错误 or 警告 (every figure 0), dated after the city's returns."""
    from toolkit.spec import current_format

    values = {c.id: 0 for c in current_format().inputs}
    return write_return(tmp_path / f"{code}_clean.xlsx", code, YEAR, values, _roster(tmp_path), {"date": f"{YEAR + 1}-03-01"})


def test_no_automatic_approval_in_a_county_that_has_submitted(tmp_path):
    """A clean version is approved at receipt (the year approves clean versions automatically) —
    but not in a county that has submitted: it is stored and waits, the county's summary stands."""
    archive = _city(tmp_path, str(tmp_path / "nianbao.db"))
    try:
        archive.load_roster(_roster(tmp_path), YEAR, auto_approve=True)
        (before,) = archive.receive([_clean(tmp_path, A1)], YEAR, workers=1)
        assert before.auto == "通过"
        archive.submit_summary(A, YEAR)
        (after,) = archive.receive([_clean(tmp_path, UNITS_A[2])], YEAR, workers=1)
        state = archive.state(UNITS_A[2], YEAR)
        assert after.auto != "通过" and state.status == "待审核" and state.submission_id != state.approved_id
        assert archive.summary_flow(A, YEAR).status == "待审核"
    finally:
        archive.close()


# ---------------------------------------------------------------- in Chromium


CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.mark.skipif(not (CHROMIUM.exists() and DRIVER.exists()), reason="需要 Debian 的 chromium 和 chromium-driver")
def test_city_overview_and_county_page_in_chromium(tmp_path):
    from selenium.webdriver.common.by import By
    from test_web_browser import _chromium, _click_and_wait

    db = tmp_path / "nianbao.db"
    archive = _city(tmp_path, str(db))
    _new_version(archive, tmp_path, B1)
    archive.submit_summary(A, YEAR, "全部单位已审核")
    keys = {"a": archive.add_key(A)[1], "city": archive.add_key(CITY)[1]}
    archive.close()
    folder = ROOT / "docs" / "img" if os.environ.get("NIANBAO_SCREENSHOTS") else tmp_path
    with Served(db, "--allow-host", HOST) as server:
        driver = _chromium(tmp_path, f"--host-resolver-rules=MAP {HOST} 127.0.0.1")
        try:
            base = f"http://{HOST}:{server.port}"

            def sign_in(key: str) -> None:
                driver.get(f"{base}/login")
                driver.find_element(By.NAME, "key").send_keys(key)
                _click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))

            sign_in(keys["city"])
            table = driver.find_element(By.CSS_SELECTOR, "table.counties-table").text
            assert "锡林浩特市人民政府" in table and "阿巴嘎旗人民政府" in table and "待审核" in table
            driver.save_screenshot(str(folder / "web-city.png"))
            row = driver.find_element(By.ID, f"county-{A}")
            row.find_element(By.NAME, "note").send_keys("杭盖街道表三与台账不符，请核实后重报")
            _click_and_wait(driver, row.find_element(By.CSS_SELECTOR, "form.level-return button"))
            assert "退回" in driver.find_element(By.ID, f"county-{A}").text
            driver.delete_all_cookies()
            sign_in(keys["a"])
            state = driver.find_element(By.ID, "county-state").text
            assert "退回" in state and "杭盖街道表三与台账不符" in state and "别力古台镇" not in driver.page_source
            driver.save_screenshot(str(folder / "web-county.png"))
        finally:
            driver.quit()
