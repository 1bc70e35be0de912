"""在线填写 (issue 30) in a real browser: Debian's Chromium driven by Selenium, against a real
`nianbao serve` (one server and one browser for the module; each test works on its own unit).

A clerk fills a whole return by keyboard (Tab, Enter, arrows) and by pasting a block copied from a
spreadsheet (a real Ctrl+V from the clipboard, so the browser's own paste event reaches form.js), sees
an unbalanced 表三 column as "不符" before submitting, keeps the draft over a reload, and submits: the
workbook downloaded from the clerk's page gives the findings the form showed, as `nianbao check`
reports them. The county's reviewer enters a unit's figures and `nianbao history` says so.
The screenshot docs/img/web-form.png is taken when NIANBAO_SCREENSHOTS=1."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from conftest import run_inprocess
from test_web_browser import CHROMIUM, DRIVER, _click_and_wait, _shot
from web_util import ROSTER, YEAR, Served, new_archive, sample

pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and DRIVER.exists()), reason="需要 Debian 的 chromium 和 chromium-driver")
ZIYUAN, ARSHAN, BAOLIGEN, HANGAI = "152502306", "152502101", "152502201", "152502003"  # 自然资源局 (busy), towns
RED = "rgba(176, 0, 32, 1)"  # app.css's error colour, as Chromium reports it


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    db = tmp_path_factory.mktemp("site") / "nianbao.db"
    tokens = new_archive(db)
    with Served(db) as server:
        yield server.base, tokens, db


@pytest.fixture(scope="module")
def browser(tmp_path_factory, site):
    driver = _chromium(tmp_path_factory.mktemp("chromium"))
    driver.command_executor._client_config.timeout = 90  # a stuck command fails the test, not the whole run
    perms = ["clipboardReadWrite", "clipboardSanitizedWrite"]  # what a clerk's Ctrl+C in Excel gives: a clipboard
    driver.execute_cdp_cmd("Browser.grantPermissions", {"permissions": perms, "origin": site[0]})
    yield driver
    driver.quit()


# ---------------------------------------------------------------- helpers


def _chromium(folder: Path):
    """Chromium as tests/test_web_browser.py starts it, but not waiting inside chromedriver for pages
    to load (page load strategy "none"): on a busy machine chromedriver's own wait after a form POST
    now and then never returned. Every navigation here waits for the new page itself instead."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    opts.page_load_strategy = "none"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1366,768", "--lang=zh-CN"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(str(DRIVER)), options=opts)


def _go(driver, url: str | None = None) -> None:
    """Open ``url`` (None: reload) and wait until the new page is there (see _click_and_wait)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("window.__nianbaoOldPage = true;")
    if url is None:
        driver.refresh()
    else:
        driver.get(url)
    WebDriverWait(driver, 60, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script("return document.readyState === 'complete' && !window.__nianbaoOldPage;")
    )


def _find(driver, css: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def _keys(driver, expect: str, *keys: str) -> None:
    """Type into the field that has the caret, after checking it is the one expected (the keyboard
    brought it there)."""
    el = driver.switch_to.active_element
    assert (el.get_attribute("data-cell") or el.get_attribute("name")) == expect
    el.send_keys(*keys)


def _settled(driver, timeout: float = 60) -> str:
    """Wait until form.js has the server's answer to the last change: "saved" or "error"."""
    from selenium.webdriver.support.ui import WebDriverWait

    state = "return document.getElementById('nb-form').getAttribute('data-nb-state');"
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(state) in ("saved", "error"))
    return driver.execute_script(state)


def _paste(driver, text: str) -> None:
    """Ctrl+V of ``text`` into the field with the caret, through the real clipboard; where the
    clipboard is refused to the page, the same paste event with the text (what Ctrl+V would send)."""
    from selenium.webdriver.common.keys import Keys

    put = (
        "var done = arguments[1];"
        "navigator.clipboard.writeText(arguments[0]).then(function () { done('ok'); }, function (e) { done(String(e)); });"
    )
    if driver.execute_async_script(put, text) == "ok":
        driver.switch_to.active_element.send_keys(Keys.CONTROL, "v")
        return
    driver.execute_script(
        "var d = new DataTransfer(); d.setData('text/plain', arguments[0]);"
        "document.activeElement.dispatchEvent(new ClipboardEvent('paste', {clipboardData: d, bubbles: true, cancelable: true}));",
        text,
    )


@contextlib.contextmanager
def _screen(driver, width: int, height: int, mobile: bool = False):
    """The page laid out for another screen, by Chromium's device emulation (resizing a headless
    window can leave chromedriver waiting for the next page load for ever)."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        yield
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _form_values(driver) -> dict[str, str]:
    return driver.execute_script(
        "var o = {}; document.querySelectorAll('.nb-in').forEach(function (e) { o[e.dataset.cell] = e.value; }); return o;"
    )


def _findings(driver) -> list[tuple[str, str]]:
    """The form's findings list as (level, text)."""
    return [(li.get_attribute("data-level"), li.text) for li in driver.find_elements("css selector", "#nb-findings li.nb-level")]


def _text(v) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _block(values: dict[str, str], fmt, sheet_id: str, totals: dict) -> str:
    """表三 as copied from the official workbook: every row and column of figures, totals included,
    rows by CR LF and cells by tabs, as Excel puts it on the clipboard."""
    sheet = fmt.sheet(sheet_id)
    rows = sorted({c.row for c in sheet.cells})
    cols = sorted({c.col for c in sheet.cells})
    at = {(c.row, c.col): c.id for c in sheet.cells}
    lines = ["\t".join(values.get(at[r, c]) or _text(totals[at[r, c]]) for c in cols) for r in rows]
    return "\r\n".join(lines) + "\r\n"


# ---------------------------------------------------------------- the clerk


def test_clerk_fills_a_whole_return_by_keyboard_and_paste_and_submits(site, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    import nianbao
    from toolkit.spec import current_format

    base, tokens, db = site
    fmt = current_format()
    want = nianbao.check([sample(ZIYUAN)], roster=ROSTER, year=YEAR)[0]  # the figures 自然资源局 sends
    values = {cid: _text(want.values[cid]) for cid in fmt.input_ids}
    values["t2.fees.amt"] = "35000"  # 元 typed where 万元 is asked: a warning, in the form and in check
    _go(browser, f"{base}/u/{tokens[ZIYUAN]}")
    _click_and_wait(browser, browser.find_element(By.LINK_TEXT, "在线填写"))

    # the cover: Enter moves on (it must not send the form)
    browser.find_element(By.NAME, "cover:filler").click()
    _keys(browser, "cover:filler", "王敏", Keys.ENTER)
    _keys(browser, "cover:phone", "0479-8221234", Keys.ENTER)
    _keys(browser, "cover:reviewer", "李强", Keys.ENTER)
    browser.execute_script(  # a date field takes keys in the order of the PC's locale: set as a date picker does
        "var e = document.activeElement; e.value = '2026-01-15'; e.dispatchEvent(new Event('input', {bubbles: true}));"
    )
    _keys(browser, "cover:date", Keys.ENTER)
    _keys(browser, "cover:note", "本年度收到申请均已办结。", Keys.TAB)

    # 表二 by keyboard: Tab along a row, Enter down, Home + ← to the cell on the left, ↓ to the next block
    v = values
    _keys(browser, "t2.reg.made", v["t2.reg.made"], Keys.TAB)
    _keys(browser, "t2.reg.repealed", v["t2.reg.repealed"], Keys.TAB)
    _keys(browser, "t2.reg.valid", v["t2.reg.valid"], Keys.ENTER)
    _keys(browser, "t2.norm.valid", v["t2.norm.valid"], Keys.HOME, Keys.ARROW_LEFT)
    _keys(browser, "t2.norm.repealed", v["t2.norm.repealed"], Keys.HOME, Keys.ARROW_LEFT)
    _keys(browser, "t2.norm.made", v["t2.norm.made"], Keys.ARROW_DOWN)
    _keys(browser, "t2.license.n", v["t2.license.n"], Keys.ENTER)
    _keys(browser, "t2.penalty.n", v["t2.penalty.n"], Keys.ENTER)
    _keys(browser, "t2.coercion.n", v["t2.coercion.n"], Keys.ENTER)
    _keys(browser, "t2.fees.amt", v["t2.fees.amt"], Keys.ARROW_DOWN)  # past the last row: the next table

    # 表三 pasted: the whole block copied from a workbook, totals included (they are skipped)
    _keys(browser, "t3.r1.np")
    _paste(browser, _block(values, fmt, "t3", want.values))
    assert _settled(browser) == "saved"
    assert "落在总计" in _find(browser, "#nb-status").text  # the totals of the block were not typed over
    _keys(browser, "t3.r1.np", Keys.ARROW_DOWN * 24)  # 24 input rows ((七)总计 has none): ↓ past the last one

    # 表四 and 信息处理费: Enter only (one row: Enter goes along it, then on to the next table)
    for cid in [c.id for c in fmt.sheet("t4").cells if not c.is_total] + [c.id for c in fmt.sheet("t6").cells]:
        _keys(browser, cid, v[cid], Keys.ENTER)
    assert browser.switch_to.active_element.get_attribute("id") == "nb-submit"
    assert _settled(browser) == "saved" and "已保存" in _find(browser, "#nb-status").text

    assert _form_values(browser) == values  # every figure of the return is where it belongs
    for cid in ("t3.r3_7.tot", "t3.r1.tot", "t4.r1.rv_tot"):
        assert _find(browser, f'output.nb-total[data-cell="{cid}"]').text == _text(want.values[cid])
    assert {e.text for e in browser.find_elements(By.CSS_SELECTOR, "output.nb-self")} == {"相符"}
    hint = _find(browser, '.nb-hint[data-for="t2.fees.amt"]')
    assert hint.text and hint.value_of_css_property("color") == RED
    shown = _findings(browser)
    assert any(level == "警告" and "35000" in text for level, text in shown)
    with _screen(browser, 1366, 1200):  # 表二 with its warning and the head of 表三
        browser.execute_script("document.querySelector('table[data-sheet=\"表二\"]').scrollIntoView(); window.scrollBy(0, -70);")
        _shot(browser, "form", tmp_path)

    # 提交: stored as the unit's version, "在线填写"; the clerk downloads the workbook
    _click_and_wait(browser, _find(browser, "#nb-submit"))
    assert "第1版" in browser.find_element(By.TAG_NAME, "body").text
    link = browser.find_element(By.PARTIAL_LINK_TEXT, "最新一版填报表").get_attribute("href")
    path = _download(link, tmp_path)
    r = run_inprocess("check", path, "--roster", ROSTER, "--year", str(YEAR), "--json")
    assert r.returncode in (0, 1), r.stderr
    got = json.loads(r.stdout)["files"][0]
    assert got["unit_code"] == ZIYUAN and got["cover"]["filler"] == "王敏"
    assert {cid: _text(got["values"][cid]) for cid in fmt.input_ids} == values
    checked = sorted((f["severity"], f["message"]) for f in got["findings"])
    assert len(checked) == len(shown) and checked
    for level, message in checked:  # the form showed, before 提交, what check finds in the file
        assert any(lv == level and message in text for lv, text in shown), message
    history = run_inprocess("history", ZIYUAN, "--year", str(YEAR), "--db", str(db))
    assert history.returncode == 0 and "在线填写" in history.stdout + history.stderr


def _download(url: str, folder: Path) -> Path:
    """The clerk's link 下载本单位最新一版填报表, fetched as the browser would (a click that starts a
    download can leave chromedriver waiting on a navigation that never ends, headless)."""
    import httpx

    r = httpx.get(url, timeout=60)
    assert r.status_code == 200 and r.content[:2] == b"PK"
    path = folder / "下载的填报表.xlsx"
    path.write_bytes(r.content)
    return path


def test_unbalanced_column_shows_bu_fu_and_the_draft_survives_a_reload(site, browser, tmp_path):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    base, tokens, _ = site
    _go(browser, f"{base}/u/{tokens[ARSHAN]}/form")
    _find(browser, 'input[data-cell="t3.r1.np"]').click()
    _keys(browser, "t3.r1.np", "3")
    assert _settled(browser) == "saved"
    verdict = _find(browser, 'output.nb-self[data-cell="t3.r3_7.np"]')
    assert verdict.text == "不符，差3" and verdict.value_of_css_property("color") == RED
    assert _find(browser, 'output.nb-self[data-cell="t3.r3_7.biz"]').text == "相符"
    _find(browser, 'input[data-cell="t2.reg.made"]').click()
    _keys(browser, "t2.reg.made", "5件")  # text in a count cell: the template's own message beside it
    assert _settled(browser) == "saved"
    hint = _find(browser, '.nb-hint[data-for="t2.reg.made"]').text
    assert "只能填写0或正整数" in hint
    _find(browser, 'li.nb-level[data-cells="t2.reg.made"]').click()  # a finding takes the caret to its cell
    assert browser.switch_to.active_element.get_attribute("data-cell") == "t2.reg.made"

    _go(browser)  # the draft is the archive's: the figures, the verdict and the hint are back
    assert _find(browser, 'input[data-cell="t3.r1.np"]').get_attribute("value") == "3"
    assert _find(browser, 'input[data-cell="t2.reg.made"]').get_attribute("value") == "5件"
    assert _find(browser, 'output.nb-self[data-cell="t3.r3_7.np"]').text == "不符，差3"
    assert "只能填写0或正整数" in _find(browser, '.nb-hint[data-for="t2.reg.made"]').text

    _find(browser, 'input[data-cell="t3.r3_1.np"]').click()  # balanced: 3 new requests, 3 made public
    _keys(browser, "t3.r3_1.np", "3")
    assert _settled(browser) == "saved"
    assert _find(browser, 'output.nb-self[data-cell="t3.r3_7.np"]').text == "相符"

    # the server refuses (a stale page's token) or cannot be reached: said in Chinese, and saved later
    token = "var c = document.querySelector('#nb-form input[name=csrf]');"
    browser.execute_script(token + "c.dataset.real = c.value; c.value = 'stale';")
    _keys(browser, "t3.r3_1.np", "0")
    assert _settled(browser) == "error"
    status = _find(browser, "#nb-status")
    assert "草稿没有保存" in status.text and status.value_of_css_property("color") == RED
    browser.execute_script(token + "c.value = c.dataset.real;")
    browser.execute_cdp_cmd("Network.enable", {})
    offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", offline)
    _keys(browser, "t3.r3_1.np", Keys.BACKSPACE)
    assert _settled(browser) == "error" and "连不上服务器" in _find(browser, "#nb-status").text
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {**offline, "offline": False})
    WebDriverWait(browser, 30).until(lambda d: "已保存" in _find(d, "#nb-status").text)  # retried by itself
    _go(browser)
    assert _find(browser, 'input[data-cell="t3.r3_1.np"]').get_attribute("value") == "3"


def test_phone_width_scrolls_each_table_in_its_box(site, browser, tmp_path):
    base, tokens, _ = site
    with _screen(browser, 360, 740, mobile=True):
        _go(browser, f"{base}/u/{tokens[BAOLIGEN]}/form")
        wide = browser.execute_script(
            "var b = document.querySelector('table[data-sheet=\"表三\"]').parentNode;"
            "return [b.className, b.scrollWidth, b.clientWidth, document.documentElement.scrollWidth, window.innerWidth];"
        )
        box, inner, shown, page, window = wide
        assert box == "nb-scroll" and inner > shown  # the table scrolls sideways inside its box …
        assert page <= window + 1  # … and the page itself does not
        cell = _find(browser, 'input[data-cell="t3.r1.oth"]')
        browser.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'});", cell)
        cell.click()
        _keys(browser, "t3.r1.oth", "1")
        assert _settled(browser) == "saved"
        assert _find(browser, 'output.nb-self[data-cell="t3.r3_7.oth"]').text == "不符，差1"
        _shot(browser, "form-phone", tmp_path, docs=False)


# ---------------------------------------------------------------- the county's reviewer


def test_reviewer_enters_a_units_figures_and_history_says_so(site, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from toolkit.online import REVIEWER_SOURCE

    base, _, db = site
    _go(browser, f"{base}/unit/{BAOLIGEN}")  # loopback: the county's own machine, no key set
    _click_and_wait(browser, browser.find_element(By.PARTIAL_LINK_TEXT, "在线填写"))
    assert "审核人" in _find(browser, ".nb-who").text
    browser.find_element(By.NAME, "cover:filler").click()
    _keys(browser, "cover:filler", "乌云（纸质表）", Keys.ENTER)
    _keys(browser, "cover:phone", "0479-8220000", Keys.ENTER)
    _find(browser, 'input[data-cell="t2.reg.made"]').click()
    _paste(browser, "0\t0\t0\n0\t1\t4\n")  # 规章 and 行政规范性文件, as on the paper form
    assert _settled(browser) == "saved"
    assert _find(browser, 'input[data-cell="t2.norm.valid"]').get_attribute("value") == "4"
    _click_and_wait(browser, _find(browser, "#nb-submit"))
    assert f"/unit/{BAOLIGEN}" in browser.current_url
    history = run_inprocess("history", BAOLIGEN, "--year", str(YEAR), "--db", str(db))
    assert history.returncode == 0 and REVIEWER_SOURCE in history.stdout + history.stderr, history.stderr
