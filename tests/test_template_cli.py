"""Issue 3: `nianbao template` from the command line, and what it does with bad rosters."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from conftest import SAMPLES

from toolkit.errors import SpecError
from toolkit.roster import load_roster
from toolkit.spec import load_format, templates_dir

HEADER = "单位代码,单位名称,单位类型,上级代码\n"


def test_template_for_sample_roster(cli, tmp_path):
    out = tmp_path / "模板"
    r = cli("template", "--roster", SAMPLES / "roster.csv", "--year", "2025", "--out", out)
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in out.iterdir())
    roster = load_roster(SAMPLES / "roster.csv")
    assert len(files) == len(roster.units) >= 20
    assert "152502201_宝力根苏木_2025年政府信息公开年报.xlsx" in files
    assert "已生成 22 个" in r.stderr
    wb = openpyxl.load_workbook(out / "152502201_宝力根苏木_2025年政府信息公开年报.xlsx")
    props = {p.name: p.value for p in wb.custom_doc_props}
    assert props["nianbao_unit_type"] == "苏木"
    assert not [p for p in out.iterdir() if p.name.startswith(".~nianbao")]


def test_template_for_one_unit(cli, tmp_path):
    r = cli(
        "template",
        "--unit-code",
        "152502202",
        "--unit-name",
        "朝克乌拉苏木",
        "--unit-type",
        "苏木",
        "--year",
        "2025",
        "--out",
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["152502202_朝克乌拉苏木_2025年政府信息公开年报.xlsx"]


@pytest.mark.parametrize(
    "body,needle",
    [
        ("单位代码,单位名称,单位类型\n1,甲镇,镇\n", "第1行（表头）缺少列：上级代码"),
        (HEADER + "1,甲镇,镇,\n1,乙镇,镇,\n", "第3行：单位代码“1”与第2行重复"),
        (HEADER + "1,甲镇,镇,\n2,,镇,\n", "第3行：单位名称为空"),
        (HEADER + "1,甲镇,镇,\n2,a/b镇,镇,\n", "第3行：单位名称“a/b镇”含有不能用于文件名的字符"),
        (HEADER + "1,甲镇,镇,\n2,..镇,镇,\n", "第3行：单位名称“..镇”含有不能用于文件名的字符"),
        (HEADER + "1,甲镇,镇,\n2,乙镇,村委会,\n", "第3行：单位类型“村委会”无法识别"),
        (HEADER + ",甲镇,镇,\n", "第2行：单位代码为空"),
        (HEADER + '1,=HYPERLINK("x"),镇,\n', "第2行：单位名称"),
        (HEADER, "只有表头"),
        ("", "是空的"),
    ],
)
def test_bad_roster_is_refused_naming_the_line(cli, tmp_path, body, needle):
    roster = tmp_path / "名册.csv"
    roster.write_text(body, encoding="utf-8")
    out = tmp_path / "out"
    r = cli("template", "--roster", roster, "--year", "2025", "--out", out)
    assert r.returncode == 2
    assert needle in r.stderr.replace("\n", "")
    assert "Traceback" not in r.stderr + r.stdout
    assert not out.exists() or not any(out.iterdir())


def test_unknown_encoding_is_refused(cli, tmp_path):
    roster = tmp_path / "名册.csv"
    roster.write_bytes(HEADER.encode("utf-8") + b"1,\xff\xfe\xfa\xfb\x80,\xc0\x00,\n")
    r = cli("template", "--roster", roster, "--year", "2025", "--out", tmp_path / "o")
    assert r.returncode == 2
    assert "编码" in r.stderr or "CSV" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_roster_encodings(tmp_path, encoding):
    p = tmp_path / "r.csv"
    p.write_text(HEADER + "152502201,宝力根苏木,苏木,152502\n", encoding=encoding)
    units = load_roster(p).units
    assert units[0].name == "宝力根苏木" and units[0].type == "苏木" and units[0].line == 2


def test_roster_xlsx(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["单位代码", "单位名称", "单位类型", "上级代码"])
    ws.append([152502201, "宝力根苏木", "苏木", 152502])
    ws.append([152502201, "重复", "苏木", 152502])
    p = tmp_path / "r.xlsx"
    wb.save(p)
    with pytest.raises(Exception, match="第3行：单位代码“152502201”与第2行重复"):
        load_roster(p)


def test_bad_year_and_missing_options(cli, tmp_path):
    r = cli("template", "--roster", SAMPLES / "roster.csv", "--year", "1999", "--out", tmp_path)
    assert r.returncode == 2 and "不合理" in r.stderr
    r = cli("template", "--year", "2025", "--out", tmp_path)
    assert r.returncode == 2 and "--roster" in r.stderr
    r = cli("template", "--roster", tmp_path / "nope.csv", "--year", "2025", "--out", tmp_path)
    assert r.returncode == 2 and "找不到名册文件" in r.stderr


def test_help_is_chinese_with_examples(cli):
    r = cli("--help")
    assert r.returncode == 0 and "生成锁定的填报模板" in r.stdout and "示例" in r.stdout
    r = cli("template", "--help")
    assert r.returncode == 0
    assert "示例" in r.stdout and "nianbao template --roster" in r.stdout and "显示本帮助后退出" in r.stdout
    assert "Show this message" not in r.stdout


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = (templates_dir() / "zfxxgk-2021.toml").read_text(encoding="utf-8")
    assert old in text
    p = tmp_path / "broken.toml"
    p.write_text(text.replace(old, new, 1), encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "old,new,needle",
    [
        ('{ id = "r3_7", r = 27, sum = ["r3_1"', '{ id = "r3_7", r = 27, sum = ["r3_9"', "合计项“r3_9”不存在"),
        ('left = "t3.r1.{col} + t3.r2.{col}"', 'left = "t3.r1.{col} + t3.r9.{col}"', "不存在"),
        ('{ r = 3, c = 5, text = "商业企业" }', '{ r = 3, c = 4, text = "商业企业" }', "重叠"),
        ('severity = "错误"', 'severity = "严重"', "“severity”为“严重”，应为 错误/警告/提示 之一"),
        ('kind = "amount_wan"', 'kind = "money"', "类型“money”未在"),
        ("[format]", "[format", "语法错误"),
    ],
)
def test_broken_format_definition_fails_at_load(tmp_path, old, new, needle):
    with pytest.raises(SpecError, match=needle):
        load_format(_broken(tmp_path, old, new))


def test_unwritable_output_is_a_chinese_error(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = cli("template", "--roster", SAMPLES / "roster.csv", "--year", "2025", "--out", blocker / "sub")
    assert r.returncode == 2 and "无法读写文件" in r.stderr and "Traceback" not in r.stderr
    r = cli("consolidate", SAMPLES / "returns", "--roster", SAMPLES / "roster.csv", "--year", "2025", "--out", blocker / "s.xlsx")
    assert r.returncode == 2 and "无法读写文件" in r.stderr
