"""Issue 12.6, 12.7, 12.12: what reaches a clerk and a reviewer reads right — the right year's
form goes back, numbers stay numbers, printed pages are legible, and nothing is cut or raw."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import openpyxl
from conftest import ROOT, SAMPLES

from toolkit.reader import read_bytes
from toolkit.roster import load_roster
from toolkit.template import ReturnContent, file_name, write_return

ROSTER = SAMPLES / "roster.csv"
COVER = {"filler": "王敏", "phone": "0479-0000101", "date": "2025-01-08"}


def test_last_years_file_goes_back_as_this_years_template(cli, fmt, tmp_path):
    unit = load_roster(ROSTER).get("152502201")
    old = tmp_path / file_name(unit, 2024)
    write_return(
        old,
        fmt,
        ReturnContent(unit=unit, year=2024, values={c.id: 0 for c in fmt.inputs} | {"t2.license.n": 99}, cover=dict(COVER)),
    )
    r = cli("check", old, "--year", "2025", "--annotate", tmp_path / "退回")
    assert r.returncode == 1
    (copy,) = (tmp_path / "退回").glob("*.xlsx")
    back = read_bytes(copy.read_bytes(), copy.name)
    assert back.year == 2025 and back.values["t2.license.n"] == 0  # a blank 2025 form, not last year's figures
    wb = openpyxl.load_workbook(copy)
    listing = " ".join(str(c.value) for row in wb["问题清单"].iter_rows() for c in row if c.value)
    assert "文件是2024年度的模板" in listing and "2025年度" in listing


def test_negative_number_goes_back_as_a_number(cli, fmt, tmp_path):
    unit = load_roster(ROSTER).get("152502101")
    path = tmp_path / file_name(unit, 2025)
    write_return(
        path,
        fmt,
        ReturnContent(unit=unit, year=2025, values={c.id: 0 for c in fmt.inputs} | {"t4.r1.rv_main": -1}, cover=dict(COVER)),
    )
    r = cli("check", path, "--year", "2025", "--annotate", tmp_path / "退回")
    assert r.returncode == 1
    (copy,) = (tmp_path / "退回").glob("*.xlsx")
    cell = openpyxl.load_workbook(copy)["表四"][fmt.cells["t4.r1.rv_main"].a1]
    assert cell.value == -1 and cell.comment is not None  # not the text "-1.0"


def test_printed_findings_leave_codes_and_fingerprints_out(cli, tmp_path):
    r = cli("check", SAMPLES / "faulty", "--year", "2025", "--annotate", tmp_path / "退回")
    assert r.returncode == 1
    copy = next((tmp_path / "退回").glob("*杭盖*"))
    ws = openpyxl.load_workbook(copy)["问题清单"]
    heads = [c.value for c in ws[1]]
    area = ws.print_area[0] if isinstance(ws.print_area, list) else ws.print_area
    last_col = area.split(":")[-1].lstrip("$").split("$")[0]
    printed = heads[: openpyxl.utils.column_index_from_string(last_col)]
    assert printed == ["级别", "单位", "位置", "问题", "处理办法"]
    assert "代码" in heads and "指纹" in heads  # still there, for filtering


def test_chart_data_is_beside_the_charts_not_behind_them(cli, tmp_path):
    out = tmp_path / "汇总.xlsx"
    cli("consolidate", SAMPLES / "returns", "--roster", ROSTER, "--year", "2025", "--out", out)
    ws = openpyxl.load_workbook(out)["图表"]
    used = [c.column for row in ws.iter_rows() for c in row if c.value is not None]
    assert used and min(used) >= 14  # column N onwards; the charts are 720 px (about 11 columns) wide


def test_explain_reads_as_a_sentence(cli):
    r = cli("explain", "layout-shifted")
    assert r.returncode == 0 and "{" not in r.stdout and "〈应为〉" in r.stdout


def _run(*args, columns="80"):
    env = {**os.environ, "COLUMNS": columns, "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "toolkit.cli", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )


def test_output_to_a_file_is_not_cut_mid_sentence(tmp_path):
    r = _run("consolidate", SAMPLES / "returns", "--roster", ROSTER, "--year", "2025", "--out", tmp_path / "a.xlsx", columns="")
    line = next(x for x in r.stderr.splitlines() if x.startswith("已汇总"))
    assert line.endswith("a.xlsx")  # one sentence, one line


def test_help_is_folded_not_cut():
    for cmd in ("check", "consolidate", "template", "import"):
        r = _run(cmd, "--help")
        assert r.returncode == 0 and "…" not in r.stdout, cmd


def test_findings_pin_the_numbers_a_clerk_sees(cli):
    r = cli("check", SAMPLES / "faulty" / "152502003_杭盖街道_2025年政府信息公开年报_有误.xlsx", "--json")
    f = json.loads(r.stdout)["files"][0]["findings"][0]
    values = json.loads(r.stdout)["files"][0]["values"]
    assert f["code"] == "O1" and f["found"] == values[f["cell_id"]]  # 实为 is what D30 shows
