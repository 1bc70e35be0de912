"""`nianbao draft --db`: the report written from the archive — a unit's current return, or the
summary of the whole roster — with last year's archived figures for the year-on-year sentences."""

from __future__ import annotations

import re

import pytest
from conftest import SAMPLES

import nianbao
from toolkit.archive import Archive
from toolkit.template import ReturnContent, write_return

ROSTER = SAMPLES / "roster.csv"
BAOLIGEN = "152502201"


@pytest.fixture(scope="module")
def archive_db(tmp_path_factory):
    """2025: the samples. 2024: the same units, 行政许可 one fewer for 宝力根苏木."""
    tmp = tmp_path_factory.mktemp("draftdb")
    db = tmp / "nianbao.db"
    fmt = nianbao.current_format()
    last_year = tmp / "2024"
    last_year.mkdir()
    roster = nianbao.load_roster(ROSTER)
    for r in nianbao.check([SAMPLES / "returns"], roster=ROSTER, year=2025):
        values = dict(r.values)
        if r.unit_code == BAOLIGEN:
            values["t2.license.n"] = values["t2.license.n"] - 1
        content = ReturnContent(unit=roster.get(r.unit_code), year=2024, values=values, cover=dict(r.cover))
        write_return(last_year / f"{r.unit_code}.xlsx", fmt, content)
    with Archive.open(str(db)) as a:
        a.load_roster(ROSTER, 2024, auto_approve=True)  # the clean returns count at once
        a.load_roster(ROSTER, 2025, auto_approve=True)
        a.receive([SAMPLES / "returns"], 2025)
        a.receive([last_year], 2024)
    return db


def _text(html_path) -> str:
    return re.sub(r"<[^>]+>", "", html_path.read_text(encoding="utf-8"))


def _tables(html_path) -> list[str]:
    return re.findall(r"<table.*?</table>", html_path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.slow
def test_unit_draft_from_the_archive_compares_with_last_year(cli, archive_db, tmp_path):
    out = tmp_path / "宝力根苏木.docx"
    r = cli("draft", "--db", archive_db, "--year", "2025", "--unit", BAOLIGEN, "--out", out, "--html", tmp_path / "b.html")
    assert r.returncode == 0, r.stderr
    text = _text(tmp_path / "b.html")
    assert "宝力根苏木2025年政府信息公开工作年度报告" in text and "比上年增加1件" in text
    from_file = tmp_path / "f.html"
    source = next((SAMPLES / "returns").glob(f"{BAOLIGEN}_*.xlsx"))
    assert cli("draft", source, "--out", tmp_path / "f.docx", "--html", from_file).returncode == 0
    assert _tables(from_file) == _tables(tmp_path / "b.html")  # the same figures as from the file


@pytest.mark.slow
def test_county_draft_from_the_archive_equals_the_consolidated_file(cli, archive_db, tmp_path):
    summary = tmp_path / "汇总.xlsx"
    args = ("--roster", ROSTER, "--year", "2025", "--out", summary)
    assert cli("consolidate", SAMPLES / "returns", *args).returncode == 0
    assert cli("draft", summary, "--out", tmp_path / "f.docx", "--html", tmp_path / "f.html").returncode == 0
    r = cli("draft", "--db", archive_db, "--year", "2025", "--out", tmp_path / "a.docx", "--html", tmp_path / "a.html")
    assert r.returncode == 0, r.stderr
    assert _tables(tmp_path / "a.html") == _tables(tmp_path / "f.html")
    assert "锡林浩特市2025年政府信息公开工作年度报告" in _text(tmp_path / "a.html")
    assert "与上年持平" in _text(tmp_path / "a.html") or "比上年" in _text(tmp_path / "a.html")
    assert "汇总包含22个单位的数据，" in r.stderr and "明细" not in r.stderr  # no workbook, no 明细 sheet to point to


def test_draft_db_without_a_return_or_year_says_why(cli, archive_db, tmp_path):
    r = cli("draft", "--db", archive_db, "--out", tmp_path / "x.docx")
    assert r.returncode == 2 and "--year" in r.stderr
    r = cli("draft", "--db", archive_db, "--year", "2024", "--unit", "不存在的单位", "--out", tmp_path / "x.docx")
    assert r.returncode == 2 and "名册中没有单位" in r.stderr and "Traceback" not in r.stderr
