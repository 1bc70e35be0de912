"""The web page in a real browser: Debian's Chromium driven by Selenium through chromedriver, the
server started as a user starts it (`nianbao serve`). Screenshots go to docs/img when
NIANBAO_SCREENSHOTS=1 (that is how the README's pictures are made)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openpyxl
import pytest
from conftest import ROOT
from web_util import FAULTY, RETURNS, ROSTER, YEAR, free_port, new_archive, sample

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and DRIVER.exists()), reason="需要 Debian 的 chromium 和 chromium-driver")
HANGAI, ARSHAN, BAOLIGEN = "152502003", "152502101", "152502201"


@pytest.fixture
def server(tmp_path):
    db = tmp_path / "nianbao.db"
    tokens = new_archive(db)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit.cli", "serve", "--year", str(YEAR), "--port", str(port), "--db", str(db)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("服务没有启动：" + proc.stderr.read().decode("utf-8", "replace"))
    yield base, tokens, db
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def browser(tmp_path):
    driver = _chromium(tmp_path)
    yield driver
    driver.quit()


def _chromium(tmp_path: Path, *args: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1366,768", "--lang=zh-CN", *args):
        opts.add_argument(arg)
    downloads = tmp_path / "下载"
    downloads.mkdir()
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=opts)
    driver.downloads = downloads
    return driver


def _shot(driver, name: str, tmp: Path, docs: bool = True) -> None:
    """``docs``: this picture is the one docs/web.md shows (tests/test_web_season.py takes those now)."""
    folder = ROOT / "docs" / "img" if docs and os.environ.get("NIANBAO_SCREENSHOTS") else tmp
    driver.save_screenshot(str(folder / f"web-{name}.png"))


def _click_and_wait(driver, element) -> None:
    """Click what loads a new page and wait until it has: a mark set on the old page's window is
    gone once the new page is there (more robust than waiting for an element to go stale)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("window.__nianbaoOldPage = true;")
    element.click()
    WebDriverWait(driver, 60, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script("return document.readyState === 'complete' && !window.__nianbaoOldPage;")
    )


def _upload(driver, *paths: Path, form: str = "form.upload") -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, f"{form} input[type=file]")
    box.send_keys("\n".join(str(p) for p in paths))
    _click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, f"{form} button[type=submit]"))


def test_clerk_uploads_fixes_and_passes(server, browser, tmp_path):
    base, tokens, _ = server
    browser.get(f"{base}/u/{tokens[HANGAI]}")
    assert "杭盖街道" in browser.page_source and "未报送" in browser.page_source
    _upload(browser, sample(HANGAI, FAULTY))
    text = browser.find_element("tag name", "body").text
    assert "D30" in text and "错误" in text and "退回" in text
    _shot(browser, "clerk", tmp_path, docs=False)
    _upload(browser, sample(HANGAI))
    text = browser.find_element("tag name", "body").text
    assert "第2版" in text and "等待县里审核" in text  # stored as a new version, for the county to review
    browser.get(f"{base}/u/{tokens[BAOLIGEN]}")
    assert "杭盖街道" not in browser.page_source  # another unit's page knows nothing of it


def test_county_collects_accepts_and_downloads_the_summary(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    base, _, db = server
    browser.get(base + "/")
    files = [p for p in sorted(RETURNS.glob("*.xlsx")) if not p.name.startswith((BAOLIGEN, ARSHAN))]
    _upload(browser, *files, sample(ARSHAN, FAULTY))
    assert browser.find_element(By.TAG_NAME, "body").text.count("新收") == 21
    browser.get(base + "/")
    rows = {
        r.find_elements(By.TAG_NAME, "td")[1].text: r.text
        for r in browser.find_elements(By.CSS_SELECTOR, "table.status tbody tr")
    }
    assert "未报送" in rows["宝力根苏木"] and "待审核" in rows["阿尔善宝拉格镇"]
    _shot(browser, "overview", tmp_path, docs=False)
    _click_and_wait(browser, browser.find_element(By.LINK_TEXT, "阿尔善宝拉格镇"))
    browser.find_element(By.CSS_SELECTOR, "form[action$='/accept'] textarea").send_keys("本年新制定规范性文件2件，已核实。")
    _shot(browser, "unit", tmp_path, docs=False)
    _click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form[action$='/accept'] button"))
    assert "已通过" in browser.find_element(By.CSS_SELECTOR, ".state").text
    from toolkit.archive import Archive

    with Archive.open(str(db)) as a:  # the clean versions, as `nianbao accept --all-clean` approves them
        assert len(a.approve_clean(YEAR)) == 20
    browser.get(base + "/")
    browser.find_element(By.CSS_SELECTOR, "form[action='/consolidate'] button").click()
    for _ in range(100):
        done = [p for p in browser.downloads.glob("*.xlsx")]
        if done:
            break
        time.sleep(0.1)
    assert done, "汇总表没有下载"
    import nianbao

    reports = nianbao.check(files + [sample(ARSHAN, FAULTY)], roster=ROSTER, year=YEAR)
    wb = openpyxl.load_workbook(done[0])
    detail = wb["明细"]
    heads = [c.value for c in next(detail.iter_rows(min_row=1, max_row=1))]
    assert heads and len(reports) == 21
    summed = sum(r.value("t3.r1.tot") for r in reports)
    summary = nianbao.check([done[0]], year=YEAR)[0]
    assert summary.value("t3.r1.tot") == summed and summary.level != "填报单位"


@pytest.mark.slow
def test_a_rebound_name_gets_nothing_and_the_county_signs_in_and_out(tmp_path):
    """Chromium told that attacker.example and county.example are this machine (what DNS rebinding
    and a LAN name do): the foreign name gets the refusal page; on the allowed name the county signs in
    with the key and 退出 ends the session."""
    from selenium.webdriver.common.by import By
    from web_util import Served

    from toolkit.archive import Archive
    from toolkit.web.keys import set_admin_key

    db = tmp_path / "nianbao.db"
    new_archive(db)
    key = "县里的管理密钥-0123456789abcdef"
    with Archive.open(str(db)) as a:
        set_admin_key(a, key)
    rules = "--host-resolver-rules=MAP attacker.example 127.0.0.1, MAP county.example 127.0.0.1"
    with Served(db, "--allow-host", "county.example") as s:
        driver = _chromium(tmp_path, rules)
        try:
            driver.get(f"http://attacker.example:{s.port}/")
            assert "这台服务器不为这个地址提供服务" in driver.find_element(By.TAG_NAME, "body").text
            driver.get(f"http://county.example:{s.port}/")
            assert driver.current_url.endswith("/login")  # not loopback: the key is needed
            driver.find_element(By.NAME, "key").send_keys(key)
            _click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button"))
            assert "报送情况" in driver.find_element(By.TAG_NAME, "h1").text
            assert key not in str(driver.get_cookies())
            _click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form.logout button"))
            assert driver.current_url.endswith("/login")
            driver.get(f"http://county.example:{s.port}/")
            assert driver.current_url.endswith("/login")
        finally:
            driver.quit()
