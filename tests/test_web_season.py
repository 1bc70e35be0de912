"""Issue 27's season through the real page: `nianbao serve` in its own process, the reviewer in
Chromium, the units' clerks through their links (a second client), on SQLite and — with
$NIANBAO_TEST_PG — PostgreSQL. The county decides what counts: every upload is a version, the reviewer
approves a version, approval locks the county's figures, and a decision names the version it was
made on. Screenshots go to docs/img when NIANBAO_SCREENSHOTS=1."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import httpx
import pytest
from archive_util import BACKENDS, new_db
from test_web_browser import CHROMIUM, DRIVER, _chromium, _click_and_wait, _shot
from web_util import FAULTY, ROSTER, YEAR, Served, new_archive, page_csrf, sample

import nianbao
from toolkit.archive import Archive

pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and DRIVER.exists()), reason="需要 Debian 的 chromium 和 chromium-driver")

COUNTY, XIRI, BAOLI, HANGAI, ARSHAN, SUMU = "152502", "152502001", "152502002", "152502003", "152502101", "152502201"
TOTAL = "t3.r1.tot"  # 一、本年新收政府信息公开申请数量 (合计)


@pytest.fixture(params=BACKENDS)
def season(request, tmp_path):
    url, cleanup = new_db(request.param, tmp_path)
    tokens = new_archive(url)
    with Archive.open(url) as a:  # the deadline was yesterday: 逾期 = not yet approved
        a.load_roster(ROSTER, YEAR, deadline=dt.date.today() - dt.timedelta(days=1))
    _last_year(url, tmp_path)
    served = Served(url, log=tmp_path / "serve.log").wait_ready()
    driver = _chromium(tmp_path)
    try:
        yield url, tokens, served.base, driver
    finally:
        driver.quit()
        served.stop()
        cleanup()


def _return(
    path: Path, code: str, *, values: dict | None = None, cover: dict | None = None, zeros: bool = False, year: int = YEAR
) -> Path:
    """A unit's sample return with some figures or cover fields changed (written by the tool's writer)."""
    from toolkit.template import ReturnContent, write_return

    fmt = nianbao.current_format()
    (rep,) = nianbao.check([sample(code)], roster=ROSTER, year=YEAR)
    figures = {c.id: 0 for c in fmt.inputs} if zeros else dict(rep.values)
    unit = nianbao.load_roster(ROSTER).get(code)
    content = ReturnContent(unit=unit, year=year, values=figures | (values or {}), cover=dict(rep.cover) | (cover or {}))
    write_return(path, fmt, content)
    return path


def _last_year(db: str, tmp_path: Path) -> None:
    """宝力根苏木's approved return of last year: 2 applications carried over into this year."""
    (rep,) = nianbao.check([sample(SUMU)], roster=ROSTER, year=YEAR)
    more = {k: (rep.values.get(k) or 0) + 2 for k in ("t3.r1.np", "t3.r4.np")}
    old = _return(tmp_path / f"宝力根苏木-{YEAR - 1}.xlsx", SUMU, values=more, cover={"date": f"{YEAR}-01-10"}, year=YEAR - 1)
    with Archive.open(db) as a:
        a.load_roster(ROSTER, YEAR - 1)
        (got,) = a.receive([old], YEAR - 1)
        a.approve(SUMU, YEAR - 1, submission_id=got.submission_id)


def _clerk(base: str, token: str, path: Path) -> str:
    """A clerk's upload through the unit's link, from another client than the reviewer's browser."""
    with httpx.Client(base_url=base, timeout=120, headers={"origin": base}) as c:
        page = c.get(f"/u/{token}")
        r = c.post(f"/u/{token}/upload", data={"csrf": page_csrf(page.text)}, files={"files": (path.name, path.read_bytes())})
    assert r.status_code == 200, r.text
    return r.text


def _text(driver) -> str:
    return driver.find_element("tag name", "body").text


def _decide(driver, form: str, note: str = "") -> None:
    from selenium.webdriver.common.by import By

    if note:
        driver.find_element(By.CSS_SELECTOR, f"form.{form} textarea").send_keys(note)
    _click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, f"form.{form} button"))


def _total(db: str) -> float:
    with Archive.open(db) as a:
        return a.consolidate(YEAR, force=True).report.values[TOTAL]


def _state(db: str, code: str):
    with Archive.open(db) as a:
        return a.state(code, YEAR)


def test_a_season_through_the_page(season, tmp_path, cli):
    db, tokens, base, driver = season
    _older_draft_waits_and_is_flagged(db, tokens, base, driver, tmp_path)
    _v1_v2_v1_makes_v1_pending(db, tokens, base, tmp_path)
    _o1_is_not_approved_and_a_manual_return_stays(db, tokens, base, driver, tmp_path, cli)
    _a_decision_on_a_superseded_version_is_refused(db, tokens, base, driver)
    _the_county_link_refuses_a_summary(db, tokens, base, tmp_path)
    _carryover_is_accepted_with_a_note(db, tokens, base, driver)
    driver.get(base + "/")
    text = _text(driver)
    assert "逾期 20 个单位" in text  # 22 units, 2 approved (希日塔拉街道, 宝力根苏木)
    _shot(driver, "overview", tmp_path)
    _click_and_wait(driver, driver.find_element("css selector", "form[action='/consolidate'] button"))
    text = _text(driver)  # 宝力根苏木's approved version has an (explained) error
    assert "勾选“有错误时也汇总”" in text and "--force" not in text, text


def _older_draft_waits_and_is_flagged(db, tokens, base, driver, tmp_path):
    """希日塔拉街道's return of 01-08 is approved; its draft of 01-05 arrives later: it waits, flagged,
    and the county's total stays until the reviewer approves it."""
    newer = _return(tmp_path / "希日塔拉-新.xlsx", XIRI)
    note = "本年度未收到政府信息公开申请（草稿）。"
    draft = _return(tmp_path / "希日塔拉-草稿.xlsx", XIRI, zeros=True, cover={"date": "2026-01-05", "note": note})
    assert "第1版" in _clerk(base, tokens[XIRI], newer)
    driver.get(f"{base}/unit/{XIRI}")
    _decide(driver, "approve", "已核实。")
    assert "已通过" in driver.find_element("css selector", ".state").text
    before = _total(db)
    page = _clerk(base, tokens[XIRI], draft)
    assert "填报日期早于之前收到的版本" in page
    assert _total(db) == before  # locked: the draft does not count yet
    st = _state(db, XIRI)
    assert st.status == "待审核" and st.approved_version == 1 and st.version == 2 and st.older_date
    driver.get(f"{base}/unit/{XIRI}")
    text = _text(driver)
    assert "填报日期早于当前版本" in text and "已通过的第1版" in text and "待审核的：第2版" in text
    assert note in text  # the clerk's 情况说明, for the reviewer
    with Archive.open(db) as a:
        change = next(c for c in a.diff(XIRI, YEAR) if c.cell_id == TOTAL)
    rows = [r.text for r in driver.find_elements("css selector", "table.changes tr")]
    assert any(change.row_label in r and "1 → 0" in r for r in rows), rows
    _shot(driver, "unit", tmp_path)
    _decide(driver, "approve", "草稿是后来补传的，核实后以草稿为准。")
    assert _total(db) == before - 1  # approved: now it counts


def _v1_v2_v1_makes_v1_pending(db, tokens, base, tmp_path):
    v1 = sample(BAOLI)
    v2 = _return(tmp_path / "宝力根街道-改.xlsx", BAOLI, cover={"phone": "0479-0000999"})
    for path in (v1, v2):
        _clerk(base, tokens[BAOLI], path)
    assert "是本单位的第3版" in _clerk(base, tokens[BAOLI], v1)
    with Archive.open(db) as a:
        versions = a.versions(BAOLI, YEAR)
        received = [h for h in a.history(BAOLI, YEAR) if h.kind == "收到"]
    assert len(received) == 3 and [v.number for v in versions] == [1, 2, 3]
    assert versions[0].name == versions[2].name and versions[2].newest and not versions[2].approved
    st = _state(db, BAOLI)
    assert st.status == "待审核" and st.pending_id == versions[2].id


def _o1_is_not_approved_and_a_manual_return_stays(db, tokens, base, driver, tmp_path, cli):
    """杭盖街道: an O1 error is sent back at once and cannot be approved (page and command line); the
    reviewer's 退回 of the corrected version stays when the same figures come again with a new date."""
    page = _clerk(base, tokens[HANGAI], sample(HANGAI, FAULTY))
    assert "D30" in page and _state(db, HANGAI).status == "退回"
    driver.get(f"{base}/unit/{HANGAI}")
    text = _text(driver)
    assert "强制性错误" in text and "不能通过" in text and not driver.find_elements("css selector", "form.approve")
    refused = cli("accept", HANGAI, "--year", YEAR, "--note", "已核实", "--db", db)
    assert refused.returncode != 0 and "强制性" in refused.stderr and _state(db, HANGAI).status == "退回"
    _clerk(base, tokens[HANGAI], sample(HANGAI))
    reason = "行政许可300件与政务服务网公布的312件不一致"
    driver.get(f"{base}/unit/{HANGAI}")
    _decide(driver, "reject", reason)
    assert _state(db, HANGAI).status == "退回"
    again = _return(tmp_path / "杭盖-改日期.xlsx", HANGAI, cover={"date": "2026-01-15"})
    _clerk(base, tokens[HANGAI], again)
    st = _state(db, HANGAI)
    assert st.status != "已通过" and st.reason == reason and st.approved_id is None
    driver.get(f"{base}/u/{tokens[HANGAI]}")
    story = driver.find_element("css selector", ".story").text
    assert reason in story and "已通过" not in story and "已超过截止日期 1 天" in story and "请对方" not in _text(driver)
    _shot(driver, "clerk", tmp_path)


def _a_decision_on_a_superseded_version_is_refused(db, tokens, base, driver):
    _clerk(base, tokens[ARSHAN], sample(ARSHAN))
    driver.get(f"{base}/unit/{ARSHAN}")  # the reviewer looks at 第1版 …
    _clerk(base, tokens[ARSHAN], sample(ARSHAN, FAULTY))  # … while the clerk sends 第2版
    _decide(driver, "approve", "已核实。")
    refusal = driver.find_element("css selector", ".refusal").text
    assert re.search(r"第1版（编号\d+）已不是最新，最新的是第2版", refusal), refusal
    assert _state(db, ARSHAN).approved_id is None and _state(db, ARSHAN).status == "待审核"


def _the_county_link_refuses_a_summary(db, tokens, base, tmp_path):
    from toolkit.api import write_summary

    returns = [sample(code) for code in (XIRI, BAOLI, HANGAI)]
    summary = nianbao.consolidate(returns, ROSTER, YEAR)
    book, _ = write_summary(summary, tmp_path / "县级汇总.xlsx")
    page = _clerk(base, tokens[COUNTY], book)
    assert "拒收（汇总表）" in page and "没有接收" in page
    assert _state(db, COUNTY).status == "未报送"
    with Archive.open(db) as a:
        assert [h.kind for h in a.history(COUNTY, YEAR)] == ["拒收"]  # the attempt, for the county


def _carryover_is_accepted_with_a_note(db, tokens, base, driver):
    """宝力根苏木: last year carried 2 applications over, this year's return says 0 — a 核实性 error
    the reviewer may accept with a 说明; the year-2 template from its link holds the 2."""
    from toolkit.reader import read_bytes

    with httpx.Client(base_url=base, timeout=60) as c:
        template = c.get(f"/u/{tokens[SUMU]}/template")
    assert read_bytes(template.content, "模板.xlsx").values.get("t3.r2.np") == 2
    page = _clerk(base, tokens[SUMU], sample(SUMU))
    assert "核实性" in page and _state(db, SUMU).status == "待审核"
    driver.get(f"{base}/unit/{SUMU}")
    assert "核实性错误" in _text(driver)
    _decide(driver, "approve", "上年结转的2件已于上年底办结，结转数据有误，已核实。")
    st = _state(db, SUMU)
    assert st.status == "已通过" and st.approved_version == 1
    with Archive.open(db) as a:
        assert any("已核实" in note for _, note in a.notes(YEAR))
