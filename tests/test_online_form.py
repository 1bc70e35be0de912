"""在线填写 (issue 30), the server side: the form is generated from the format definition, its live
check gives exactly the findings `nianbao check` gives for the workbook the values make, drafts live
in the archive, 提交 stores the template's own locked workbook through the upload path, the reviewer's
entry is recorded as such, and the guards hold (CSRF and Origin, one unit's link, approval locks).

In-process (Starlette's test client on a loopback Host) with one archive and app for the module;
the browser side is tests/test_online_browser.py."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, run_inprocess
from web_util import ROSTER, YEAR, new_archive, page_csrf, web_client

from toolkit import api
from toolkit.archive import Archive, ArchiveError
from toolkit.roster import load_roster
from toolkit.spec import current_format, load_format, templates_dir
from toolkit.web.app import WebConfig, create_app

CLEAN = {"t3.r1.np": "5", "t3.r3_1.np": "4", "t3.r4.np": "1", "t2.norm.valid": "3"}
COVER = {"filler": "王敏", "phone": "0479-0000101", "date": "2026-01-15"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One archive (the samples' roster, a link per unit), its app and a client, for the module."""
    db = tmp_path_factory.mktemp("online") / "archive.db"
    tokens = new_archive(db)
    app = create_app(WebConfig(db=str(db), year=YEAR))
    with web_client(app) as client:
        yield {"db": db, "tokens": tokens, "app": app, "client": client}


def _page(client, url: str) -> tuple[str, str]:
    r = client.get(url)
    assert r.status_code == 200, r.text[:300]
    return r.text, page_csrf(r.text)


def _check(client, url: str, csrf: str, values: dict, cover: dict | None = None, **kw):
    return client.post(f"{url}/check", json={"cover": cover or {}, "values": values}, headers={"x-csrf-token": csrf}, **kw)


def _submit_form(csrf: str, values: dict, cover: dict) -> dict:
    return {"csrf": csrf} | {f"cover:{k}": v for k, v in cover.items()} | {f"v:{k}": v for k, v in values.items()}


def _unit(code: str):
    return load_roster(ROSTER).get(code)


def _key(f) -> tuple:
    g = (lambda k: f.get(k)) if isinstance(f, dict) else (lambda k: getattr(f, k))
    return (g("code"), g("severity"), g("sheet"), g("cell"), g("cell_id"), g("message"), g("fingerprint"))


# ---------------------------------------------------------------- generated from the format


def test_form_shows_every_label_and_cell_of_the_format(site):
    fmt = current_format()
    text, _ = _page(site["client"], f"/u/{site['tokens']['152502001']}/form")
    for sheet in fmt.sheets:
        assert f'data-sheet="{sheet.name}"' in text
        for lb in sheet.labels:
            assert html.escape(lb.text, quote=False) in text, lb.text
    for f in fmt.cover.fields:
        assert html.escape(f.label, quote=False) in text
    assert len(re.findall(r'<input class="nb-in" name="v:', text)) == len(fmt.inputs)
    assert len(re.findall(r'<output class="nb-total" ', text)) == len(fmt.totals)
    assert set(re.findall(r'name="v:([^"]+)"', text)) == set(fmt.input_ids)  # inputs exactly where the template unlocks
    assert len(re.findall(r'<output class="nb-self[ "]', text)) == 7  # 表三's self-check row, one per column
    assert 'id="nb-form"' in text and 'id="nb-findings"' in text and 'id="nb-submit"' in text
    assert 'src="/static/form.js"' in text and 'href="/static/form.css"' in text


def test_a_label_changed_in_a_copy_of_the_format_file_shows_in_the_form(site, tmp_path):
    source = templates_dir() / "zfxxgk-2021.toml"
    old = "一、本年新收政府信息公开申请数量"
    copy = tmp_path / source.name
    shutil.copy(source, copy)
    copy.write_text(
        copy.read_text(encoding="utf-8").replace(f'"{old}"', '"一、本年新收的申请（改过的标签）"', 1), encoding="utf-8"
    )
    changed = load_format(copy)
    app = site["app"]
    app.state.form_model = api.form_model(changed)
    try:
        text, _ = _page(site["client"], f"/u/{site['tokens']['152502001']}/form")
    finally:
        app.state.form_model = None
    assert "一、本年新收的申请（改过的标签）" in text and old not in text


# ---------------------------------------------------------------- checked as they type


def test_check_answers_json_saves_the_draft_and_a_reload_restores_it(site):
    token = site["tokens"]["152502002"]
    url = f"/u/{token}/form"
    _, csrf = _page(site["client"], url)
    values = {"t3.r1.np": "5", "t3.r3_1.np": "3", "t2.reg.made": "5件", "t2.fees.amt": "35000"}
    r = _check(site["client"], url, csrf, values, {"filler": "草稿里的名字"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) >= {"saved_at", "totals", "selfcheck", "hints", "findings"}
    assert re.fullmatch(r"\d\d:\d\d:\d\d", got["saved_at"])
    assert got["selfcheck"]["t3.r3_7.np"] == "不符，差2" and got["selfcheck"]["t3.r3_7.biz"] == "相符"
    assert got["totals"]["t3.r1.tot"] == 5 and got["totals"]["t3.r3_7.np"] == 3
    fmt = current_format()
    assert got["hints"]["t2.reg.made"] == fmt.kinds[fmt.cells["t2.reg.made"].kind].error_message  # the template's validation text
    codes = {(f["level"], tuple(f["cells"])) for f in got["findings"]}
    assert ("错误", ("t2.reg.made",)) in codes and ("错误", ("t3.r3_7.np",)) in codes
    assert any("万元" in f["message"] and f["cells"] == ["t2.fees.amt"] for f in got["findings"])
    assert any(f["cells"] == ["cover:phone"] for f in got["findings"])  # 联系电话 required, said on the cover field
    text, _ = _page(site["client"], url)
    assert 'value="5件"' in text and "草稿里的名字" in text and "草稿已于" in text
    assert "不符，差2" in text  # the page renders the check before any script runs
    # a workbook uploaded after the draft was saved is what the form then starts from
    with Archive.open(str(site["db"])) as archive:
        path = api.write_form_return(api.form_model(), _unit("152502002"), YEAR, CLEAN, COVER, site["db"].parent / "upload")
        assert archive.receive([path], YEAR, workers=1)[0].submission_id
    text, _ = _page(site["client"], url)
    assert "草稿里的名字" not in text and COVER["filler"] in text and re.search(r'name="v:t3.r3_1.np"[^>]*value="4"', text)


VALUE_SETS = {
    "152502003": (CLEAN, COVER),  # clean
    "152502004": ({"t3.r1.np": "5", "t3.r3_1.np": "3", "t3.r1.biz": "2"}, COVER),  # 表三 unbalanced
    "152502005": (
        {
            "t2.reg.made": "无",
            "t2.norm.made": "5件",
            "t2.reg.valid": "-1",
            "t3.r1.np": "1.5",
            "t3.r1.res": "十二",
            "t3.r1.law": "１２",
        },
        {},
    ),
    "152502006": ({"t2.fees.amt": "35000", "t3.r1.np": "1,000", "t3.r3_1.np": "1000"}, COVER | {"date": "2026年1月5日"}),
}


def test_live_findings_equal_nianbao_check_of_the_workbook(tmp_path):
    """For several value sets, evaluate() gives what `nianbao check --json` gives for the workbook
    the same values make (codes, cells, messages, fingerprints), and the self-check texts."""
    model, roster = api.form_model(), load_roster(ROSTER)
    live = {}
    for code, (values, cover) in VALUE_SETS.items():
        unit = roster.get(code)
        live[code] = api.evaluate_form(model, unit, YEAR, values, cover, roster)
        api.write_form_return(model, unit, YEAR, values, cover, tmp_path / code)
    done = run_inprocess("check", tmp_path, "--json", "--roster", ROSTER, "--year", str(YEAR))
    assert done.returncode in (0, 1), done.stderr
    checked = {f["unit_code"]: f for f in json.loads(done.stdout)["files"]}
    assert set(checked) == set(VALUE_SETS)
    for code, ev in live.items():
        assert sorted(map(_key, ev.report.findings)) == sorted(map(_key, checked[code]["findings"])), code
        assert {k: v for k, v in ev.report.values.items()} == checked[code]["values"] | checked[code].get("totals_recomputed", {})
    assert not checked["152502003"]["findings"]
    assert live["152502004"].selfcheck["t3.r3_7.np"] == "不符，差2"
    assert live["152502005"].selfcheck["t3.r3_7.res"] == "有文字，请改为数字"  # the template's #VALUE!
    assert live["152502005"].selfcheck["t3.r3_7.np"] == "不符，差1.5"
    assert live["152502005"].report.values["t3.r1.law"] == 12  # full-width digits typed are digits
    assert {f["code"] for f in checked["152502005"]["findings"]} >= {"not-a-number", "negative", "not-integer"}
    assert any(f["cell_id"] == "t2.fees.amt" for f in checked["152502006"]["findings"])


# ---------------------------------------------------------------- 提交


def _compare_workbooks(a: Path, b: Path) -> None:
    """Cell for cell (value, lock, number format), merges, sheet protection, structure lock, identity."""
    import openpyxl

    wa, wb = openpyxl.load_workbook(a), openpyxl.load_workbook(b)
    assert wa.sheetnames == wb.sheetnames
    assert wa.security.lockStructure and wb.security.lockStructure
    props = lambda w: {p.name: p.value for p in w.custom_doc_props.props}  # noqa: E731
    assert props(wa) == props(wb) and props(wa)["nianbao_unit_code"]
    for name in wa.sheetnames:
        sa, sb = wa[name], wb[name]
        assert sa.protection.sheet and sb.protection.sheet, name
        assert sorted(map(str, sa.merged_cells.ranges)) == sorted(map(str, sb.merged_cells.ranges)), name
        assert len(sa.data_validations.dataValidation) == len(sb.data_validations.dataValidation), name
        assert sa.max_row == sb.max_row and sa.max_column == sb.max_column, name
        for ra, rb in zip(sa.iter_rows(), sb.iter_rows(), strict=True):
            for ca, cb in zip(ra, rb, strict=True):
                assert (ca.value, ca.protection.locked, ca.number_format) == (cb.value, cb.protection.locked, cb.number_format), (
                    name,
                    ca.coordinate,
                )


def test_submit_stores_the_template_workbook_as_an_upload_with_the_same_findings(site, tmp_path):
    from toolkit.template import ReturnContent, write_return

    code = "152502101"
    token, client = site["tokens"][code], site["client"]
    url = f"/u/{token}/form"
    _, csrf = _page(client, url)
    values = {"t3.r1.np": "5", "t3.r3_1.np": "3", "t2.norm.valid": "2"}  # unbalanced: stored with its 错误
    assert _check(client, url, csrf, values, COVER).status_code == 200
    r = client.post(f"{url}/submit", data=_submit_form(csrf, values, COVER), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/u/{token}#received"
    with Archive.open(str(site["db"])) as archive:
        (version,) = archive.versions(code, YEAR)
        assert version.source == "在线填写"
        assert archive.draft(code, YEAR, "链接") is None  # dropped once stored
        stored = archive.report(version.id)
    got = client.get(f"/u/{token}/original")
    assert got.status_code == 200
    downloaded = tmp_path / "downloaded.xlsx"
    downloaded.write_bytes(got.content)
    # the same file a template filled with these values is
    fmt = current_format()
    numbers = {c: 0 for c in fmt.input_ids} | {k: int(v) for k, v in values.items()}
    cover = {"filler": COVER["filler"], "phone": COVER["phone"], "date": dt.date(2026, 1, 15)}
    expected = write_return(
        tmp_path / "expected.xlsx", fmt, ReturnContent(unit=_unit(code), year=YEAR, values=numbers, cover=cover)
    )
    _compare_workbooks(downloaded, expected)
    # findings: what `check` gives for the downloaded workbook, what the form showed live
    (checked,) = api.check([downloaded], ROSTER, YEAR)
    live = api.evaluate_form(api.form_model(), _unit(code), YEAR, values, COVER, load_roster(ROSTER))
    assert sorted(map(_key, stored.findings)) == sorted(map(_key, checked.findings)) == sorted(map(_key, live.report.findings))
    assert any(f.code == "O1" for f in stored.findings)
    page = client.get(f"/u/{token}").text
    assert "第1版" in page and "下载本单位最新一版填报表" in page and "在线填写" in page


def test_the_reviewer_enters_a_units_figures_and_history_says_so(site):
    code, client = "152502201", site["client"]
    url = f"/unit/{code}/form"
    text, csrf = _page(client, url)  # loopback's open admin is the county's reviewer
    assert "审核人" in text
    assert _check(client, url, csrf, CLEAN, COVER).status_code == 200
    with Archive.open(str(site["db"])) as archive:
        assert archive.draft(code, YEAR, "审核人") is not None and archive.draft(code, YEAR, "链接") is None
    r = client.post(f"{url}/submit", data=_submit_form(csrf, CLEAN, COVER), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/unit/{code}#received"
    done = run_inprocess("history", code, "--year", str(YEAR), "--db", str(site["db"]))
    assert done.returncode == 0 and "审核人在线录入" in done.stdout + done.stderr
    assert "审核人在线录入" in client.get(f"/unit/{code}").text


# ---------------------------------------------------------------- guards


def test_posts_need_the_csrf_token_and_the_pages_origin(site):
    token, client = site["tokens"]["152502202"], site["client"]
    url = f"/u/{token}/form"
    _, csrf = _page(client, url)
    r = client.post(f"{url}/check", json={"values": {}})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    assert _check(client, url, "forged", {}).status_code == 403
    foreign = {"origin": "http://evil.example", "x-csrf-token": csrf}
    assert client.post(f"{url}/check", json={"values": {}}, headers=foreign).status_code == 403
    r = client.post(f"{url}/submit", data=_submit_form("", CLEAN, COVER), follow_redirects=False)
    assert r.status_code == 403
    r = client.post(f"{url}/submit", data=_submit_form(csrf, CLEAN, COVER), headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    with Archive.open(str(site["db"])) as archive:
        assert archive.versions("152502202", YEAR) == [] and archive.draft("152502202", YEAR, "链接") is None


def test_bounded_and_only_the_formats_cells(site):
    token, client = site["tokens"]["152502202"], site["client"]
    url = f"/u/{token}/form"
    _, csrf = _page(client, url)
    r = _check(client, url, csrf, {"t9.nope.x": "1"})
    assert r.status_code == 400 and "t9.nope.x" in r.json()["error"]
    r = _check(client, url, csrf, {}, {"note": "长" * 300_000})
    assert r.status_code == 413 and "KB" in r.json()["error"]
    for hostile in (b"{not json", b"[" * 100_000, b'{"values": {"t3.r1.np": ' + b"9" * 5000 + b"}}"):
        r = client.post(f"{url}/check", content=hostile, headers={"x-csrf-token": csrf, "content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]  # a JSON answer in Chinese, not a 500 page
    assert client.get("/u/not-a-live-link/form").status_code == 404
    assert client.post("/u/not-a-live-link/form/check", json={}, headers={"x-csrf-token": csrf}).status_code == 404


def test_another_units_link_cannot_read_or_write_this_units_draft(site):
    a, b, client = site["tokens"]["152502301"], site["tokens"]["152502302"], site["client"]
    _, csrf = _page(client, f"/u/{a}/form")
    assert _check(client, f"/u/{a}/form", csrf, {"t3.r1.np": "7"}, {"filler": "甲单位的填报人"}).status_code == 200
    text, _ = _page(client, f"/u/{b}/form")
    assert "甲单位的填报人" not in text
    assert _check(client, f"/u/{b}/form", csrf, {"t3.r1.np": "9"}, {"filler": "乙"}).status_code == 200
    with Archive.open(str(site["db"])) as archive:
        body, _ = archive.draft("152502301", YEAR, "链接")
        assert body == {"cover": {"filler": "甲单位的填报人"}, "values": {"t3.r1.np": "7"}}
        assert archive.draft("152502302", YEAR, "链接")[0]["cover"] == {"filler": "乙"}


def test_an_approved_unit_is_read_only(site):
    code, client = "152502303", site["client"]
    token = site["tokens"][code]
    url = f"/u/{token}/form"
    _, csrf = _page(client, url)
    assert client.post(f"{url}/submit", data=_submit_form(csrf, CLEAN, COVER), follow_redirects=False).status_code == 303
    with Archive.open(str(site["db"])) as archive:
        archive.approve(code, YEAR, "")
    for page in (url, f"/unit/{code}/form"):
        text, _ = _page(client, page)
        assert 'class="nb-locked"' in text and 'id="nb-submit"' not in text
        assert re.search(r'name="v:t3.r1.np"[^>]*disabled', text) and 'value="5"' in text  # the approved figures
    r = _check(client, url, csrf, CLEAN, COVER)
    assert r.status_code == 409 and "审核通过" in r.json()["error"]
    r = client.post(f"{url}/submit", data=_submit_form(csrf, CLEAN | {"t3.r1.np": "6"}, COVER))
    assert r.status_code == 409 and "nb-locked" in r.text
    with Archive.open(str(site["db"])) as archive:
        assert len(archive.versions(code, YEAR)) == 1


# ---------------------------------------------------------------- year 2


def test_year_two_starts_from_last_years_carry_over(tmp_path):
    db = tmp_path / "archive.db"
    code = "152502001"
    with Archive.open(str(db)) as archive:
        archive.load_roster(ROSTER, YEAR - 1)
        unit = archive.roster(YEAR - 1).get(code)
        last = {"t3.r1.np": "4", "t3.r3_1.np": "1", "t3.r4.np": "3", "t3.r1.biz": "2", "t3.r4.biz": "2"}
        path = api.write_form_return(api.form_model(), unit, YEAR - 1, last, COVER, tmp_path)
        (got,) = archive.receive([path], YEAR - 1)
        archive.approve(code, YEAR - 1, "")
    tokens = new_archive(db)
    with web_client(create_app(WebConfig(db=str(db), year=YEAR))) as client:
        text, csrf = _page(client, f"/u/{tokens[code]}/form")
        assert re.search(r'name="v:t3.r2.np"[^>]*value="3"', text) and re.search(r'name="v:t3.r2.biz"[^>]*value="2"', text)
        # the cross-year rule runs live too: 上年结转 changed from last year's 结转下年度
        r = _check(client, f"/u/{tokens[code]}/form", csrf, {"t3.r2.np": "1"}, COVER)
        assert any(f["cells"] == ["t3.r2.np"] and f["level"] in ("错误", "警告") for f in r.json()["findings"])


# ---------------------------------------------------------------- drafts in the archive


def test_drafts_on_each_backend(db):
    with Archive.open(db) as archive:
        archive.load_roster(ROSTER, YEAR)
        assert archive.draft("152502001", YEAR, "链接") is None
        archive.save_draft("152502001", YEAR, "链接", {"cover": {}, "values": {"t3.r1.np": "1"}})
        archive.save_draft("152502001", YEAR, "链接", {"cover": {"filler": "王敏"}, "values": {"t3.r1.np": "2"}})
        archive.save_draft("152502001", YEAR, "审核人", {"cover": {}, "values": {"t3.r1.np": "9"}})
        body, at = archive.draft("152502001", YEAR, "链接")
        assert body == {"cover": {"filler": "王敏"}, "values": {"t3.r1.np": "2"}} and at.startswith(str(dt.date.today().year)[:2])
        with pytest.raises(ArchiveError, match="KB"):
            archive.save_draft("152502001", YEAR, "链接", {"cover": {"note": "长" * 200_000}, "values": {}})
        with pytest.raises(ArchiveError):
            archive.save_draft("152502001", YEAR, "别人", {})
        archive.drop_draft("152502001", YEAR, "链接")
        assert archive.draft("152502001", YEAR, "链接") is None
        assert archive.draft("152502001", YEAR, "审核人")[0]["values"] == {"t3.r1.np": "9"}


def test_a_stored_file_with_a_chinese_extension_still_downloads(site, tmp_path):
    """The download's plain-ASCII file name cannot hold "年报.表格"'s extension: the UTF-8 name still does."""
    token, client = site["tokens"]["152502310"], site["client"]
    page = client.get(f"/u/{token}")
    source = sorted((ROOT / "samples" / "returns").glob("152502310*.xlsx"))[0]
    r = client.post(
        f"/u/{token}/upload", data={"csrf": page_csrf(page.text)}, files={"files": ("年报.表格", source.read_bytes())}
    )
    assert r.status_code == 200
    got = client.get(f"/u/{token}/original")
    assert got.status_code == 200 and got.content == source.read_bytes()
    disposition = got.headers["content-disposition"]
    assert 'filename="download.xlsx"' in disposition and "%E5%B9%B4%E6%8A%A5" in disposition
