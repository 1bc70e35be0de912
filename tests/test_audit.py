"""Issue 18: `nianbao audit` — the whole corpus of published reports plus hostile files in one
batch, through the worker pool, into one workbook (总览, 问题, 跨年, 文字与表格, and 跳过 for the
files not read, issue 28)."""

from __future__ import annotations

import shutil
import tomllib
import zipfile

import pytest
from conftest import ROOT
from test_import_broken_inputs import entity_bomb, nested_tables, not_a_pdf

from toolkit.api import audit, write_audit
from toolkit.published.audit_writer import is_audit_workbook
from toolkit.spec import current_format, formats

PUBLISHED = ROOT / "tests" / "published"
CORPUS = sorted(PUBLISHED.glob("*.source.txt"))
PAIR = ("34_liansheng_xiang_2024.source.txt", "49_liansheng_xiang_2025.source.txt")  # 连生乡, two years


def big_text(p):
    """50 MB of text: refused by size before it is read (no need to write real report text)."""
    with open(p, "wb") as fh:
        fh.truncate(50 * 1024 * 1024)
        fh.seek(0)
        fh.write("某镇2023年政府信息公开工作年度报告\n".encode())


HOSTILE = {"bomb.html": entity_bomb, "nested.html": nested_tables, "big.txt": big_text, "fake.pdf": not_a_pdf}


def sheet_rows(path, name):
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = list(wb[name].iter_rows(values_only=True))
    finally:
        wb.close()
    head = rows[0]
    body = [r for r in rows[1:] if r and r[0] and not str(r[0]).startswith("共 ")]  # the closing tally line
    return [dict(zip(head, r, strict=False)) for r in body]


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit")
    hostile = tmp / "恶意文件"
    hostile.mkdir()
    for name, make in HOSTILE.items():
        make(hostile / name)
    # hostile files in the middle of the batch: the reports after them must still be read
    result = audit([PUBLISHED, hostile], workers=2)
    out = write_audit(result, tmp / "审计.xlsx", inputs=[PUBLISHED, hostile])
    return result, out


def test_every_report_is_a_row_of_the_overview(audited):
    result, out = audited
    assert len(result.reports) == len(CORPUS) + len(HOSTILE)
    rows = sheet_rows(out, "总览")
    assert [r["文件"] for r in rows] == [r.provenance.name for r in result.reports]
    by_file = {r["文件"].rsplit("/", 1)[-1]: r for r in rows}
    sizes = {0} | {sum(1 for c in f.cells.values() if f.sheet(c.sheet_id).published) for f in formats().values()}
    for spec in CORPUS:
        row = by_file[spec.name]
        exp = tomllib.loads(spec.with_name(spec.name.replace(".source.txt", ".toml")).read_text(encoding="utf-8"))
        assert row["年度"] == exp["year"], spec.name
        assert row["读出表格"] in ("是", "否") and row["读出单元格"] + row["未知单元格"] in sizes, row
        rep = next(r for r in result.reports if r.provenance.name == row["文件"])
        assert row["未知单元格"] == len([c for c in rep.unknown if c.split(".")[0] in ("t2", "t3", "t4")]), row
    assert by_file["27_xiliu_zhen_2023.source.txt"]["单位"] == "西柳镇人民政府"
    assert by_file["01_baoligen_sumu_2023.source.txt"]["最严重级别"] == "提示"


def test_hostile_files_one_finding_each_and_the_batch_goes_on(audited):
    result, out = audited
    for name in HOSTILE:
        (rep,) = [r for r in result.reports if r.provenance.name.endswith(name)]
        assert not rep.readable and len(rep.findings) == 1, (name, rep.findings)
        assert rep.findings[0].code in ("table-unreadable", "import-too-large")
    readable = [r for r in result.reports if r.provenance.name.endswith(".source.txt") and r.readable]
    assert len(readable) >= len(CORPUS) - 3  # 39 and 48 print no table; nothing else lost
    problems = sheet_rows(out, "问题")
    assert len(problems) == len(result.findings)
    for name in HOSTILE:
        assert sum(1 for p in problems if p["文件"].endswith(name)) == 1


def test_every_known_defect_of_the_corpus_is_in_the_problems_sheet(audited):
    """Every declared defect that the text alone shows (I10 needs the unit's type: a roster's business)."""
    _, out = audited
    by_type = {r.code for r in current_format().rules if r.unit_types}
    problems = sheet_rows(out, "问题")
    codes: dict[str, set[str]] = {}
    for p in problems:
        codes.setdefault(p["文件"].rsplit("/", 1)[-1], set()).add(p["代码"])
    for spec in CORPUS:
        exp = tomllib.loads(spec.with_name(spec.name.replace(".source.txt", ".toml")).read_text(encoding="utf-8"))
        for d in exp.get("defects", []):
            if d["rule"] not in by_type:
                assert d["rule"] in codes.get(spec.name, set()), (spec.name, d["rule"])


def test_two_years_of_a_unit_in_the_cross_year_sheet(audited):
    result, out = audited
    (pair,) = result.pairs()
    assert pair.provenance.name.endswith(PAIR[1]) and pair.previous.provenance.name.endswith(PAIR[0])
    rows = sheet_rows(out, "跨年")
    assert {(r["单位"], r["上年度"], r["本年度"]) for r in rows} == {("连生乡人民政府", 2024, 2025)}
    reg = next(r for r in rows if r["核对项目"].startswith("规章"))
    assert (reg["上年数"], reg["本年数"], reg["应为"], reg["结果"]) == (0, 0, 0, "一致")


def test_narrative_contradictions_sheet(audited):
    _, out = audited
    rows = sheet_rows(out, "文字与表格")
    got = {(r["文件"].rsplit("/", 1)[-1], r["正文数字"], r["表格数字"]) for r in rows}
    assert ("27_xiliu_zhen_2023.source.txt", 0, 32) in got  # 现行有效的规范性文件0件 vs 32
    assert ("44_changchun_ju_2023.source.txt", 2, 3) in got  # 受理申请2件 vs 3
    assert all("：“" in r["说明（含原句）"] for r in rows)  # the sentence is quoted


def test_zip_archive_of_two_years_without_cross_year_sheet_when_single(tmp_path):
    z = tmp_path / "年报.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for name in PAIR:
            zf.write(PUBLISHED / name, f"连生乡/{name}")
        zf.writestr("说明.docx", b"not a report")  # ignored: not a report format
    result = audit([z], workers=0)
    assert [r.provenance.name for r in result.reports] == [f"年报.zip/连生乡/{n}" for n in PAIR]
    assert len(result.pairs()) == 1
    out = write_audit(result, tmp_path / "审计.xlsx")
    assert sheet_rows(out, "跨年")
    single = write_audit(audit([PUBLISHED / PAIR[0]], workers=0), tmp_path / "单份.xlsx")
    import openpyxl

    assert openpyxl.load_workbook(single, read_only=True).sheetnames == ["总览", "问题", "文字与表格"]


def test_cli_exit_codes_and_output_guard(tmp_path, cli):
    src = tmp_path / "年报"
    src.mkdir()
    shutil.copy(ROOT / "samples" / "published" / "宝力根苏木2023年政府信息公开工作年度报告.txt", src)
    out = tmp_path / "审计.xlsx"
    r = cli("audit", src, "--out", out)
    assert r.returncode == 0, r.stderr
    assert is_audit_workbook(out) and "共 1 份年报" in r.stderr
    assert cli("audit", src, "--out", out).returncode == 0  # its own earlier workbook is replaced
    shutil.copy(PUBLISHED / "45_qu_tjj_2023.source.txt", src)  # cut off inside 表三: 错误 table-unreadable
    assert cli("audit", src, "--out", out).returncode == 1
    foreign = tmp_path / "别人的.xlsx"
    import xlsxwriter

    wb = xlsxwriter.Workbook(foreign)
    wb.add_worksheet("总览").write(0, 0, "某人填写的内容")
    wb.close()
    r = cli("audit", src, "--out", foreign)
    assert r.returncode == 2 and "没有覆盖" in r.stderr
    given = tmp_path / "年报文本.xlsx"  # a file named explicitly is read whatever its extension
    shutil.copy(src / "宝力根苏木2023年政府信息公开工作年度报告.txt", given)
    r = cli("audit", given, "--out", given)  # the output would replace the input
    assert r.returncode == 2 and "是输入文件之一" in r.stderr and given.read_bytes()[:3] != b"PK\x03"
    empty = tmp_path / "空"
    empty.mkdir()
    r = cli("audit", empty, "--out", tmp_path / "x.xlsx")
    assert r.returncode == 2 and "没有找到年报文件" in r.stderr
    assert cli("audit", tmp_path / "不存在", "--out", tmp_path / "x.xlsx").returncode == 2
    assert "Traceback" not in r.stderr


def test_audit_reads_only_regular_files_inside_the_folder(tmp_path):
    """Reports are found as returns are: a link leading out of the folder and a pipe are named and
    skipped (nothing outside is read, nothing hangs); the genuine report is still audited."""
    import os

    folder = tmp_path / "年报"
    folder.mkdir()
    shutil.copy(ROOT / "samples" / "published" / "宝力根苏木2023年政府信息公开工作年度报告.txt", folder / "a.txt")
    secret = tmp_path / "外面.txt"
    secret.write_text("不应被读取的文件", encoding="utf-8")
    (folder / "link.txt").symlink_to(secret)
    os.mkfifo(folder / "pipe.txt")
    result = audit([folder], workers=0)
    by_name = {r.provenance.name: r for r in result.reports}
    assert by_name["年报/a.txt"].readable
    for name in ("年报/link.txt", "年报/pipe.txt"):
        assert [f.code for f in by_name[name].findings] == ["path-skipped"], name


def test_every_file_skipped_is_named_with_why(tmp_path, cli):
    """Issue 28: a .docx beside the PDFs, a file of an unknown kind, an Office lock file and a file too
    large are each named with the reason — on the console and in the workbook's 跳过 sheet."""
    folder = tmp_path / "年报"
    folder.mkdir()
    shutil.copy(ROOT / "samples" / "published" / "宝力根苏木2023年政府信息公开工作年度报告.txt", folder / "a.txt")
    (folder / "宝力根苏木2023年报.docx").write_bytes(b"PK\x03\x04 not really")
    (folder / "说明.md").write_text("不是年报", encoding="utf-8")
    (folder / "~$宝力根苏木2023年报.docx").write_bytes(b"x")
    (folder / "汇总表.xlsx").write_bytes(b"PK")
    big_text(folder / "big.txt")
    out = tmp_path / "审计.xlsx"
    r = cli("audit", folder, "--out", out)
    assert r.returncode == 1, r.stderr  # big.txt: 文件超出导入上限 (错误)
    rows = {row["文件"]: row["没有审计的原因"] for row in sheet_rows(out, "跳过")}
    assert set(rows) == {
        f"年报/{n}" for n in ("宝力根苏木2023年报.docx", "说明.md", "~$宝力根苏木2023年报.docx", "汇总表.xlsx", "big.txt")
    }
    assert "Word文档" in rows["年报/宝力根苏木2023年报.docx"] and "另存为PDF" in rows["年报/宝力根苏木2023年报.docx"]
    assert "“.md”" in rows["年报/说明.md"] and "临时文件" in rows["年报/~$宝力根苏木2023年报.docx"]
    assert "nianbao check" in rows["年报/汇总表.xlsx"] and "上限" in rows["年报/big.txt"]
    for name in rows:
        assert f"已跳过 {name}" in r.stderr
    overview = openpyxl_rows(out, "总览")
    assert any("另有 5 个文件没有审计" in str(row[0]) for row in overview)
    result = audit([folder / "a.txt"], workers=0)  # a file named explicitly: nothing else looked at
    assert result.skipped == [] and result.reports[0].readable


def openpyxl_rows(path, name):
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return list(wb[name].iter_rows(values_only=True))
    finally:
        wb.close()


def test_cross_year_items_are_the_format_cross_year_equalities():
    """The 跨年 sheet's items come from the format definition's cross-year equalities (上年结转 at its
    summary column, 现行有效 per row), each evaluated as its rule is: a real return of the sample
    county as this year and as last year, then with figures changed."""
    import copy

    from toolkit.check import CheckOptions, check_paths
    from toolkit.published.audit import continuity

    (last,) = check_paths(
        [ROOT / "samples" / "returns" / "152502303_锡林浩特市司法局_2025年政府信息公开年报.xlsx"], CheckOptions()
    ).reports
    now = copy.deepcopy(last)
    now.previous = last
    items = {c.item.split("：")[0]: c for c in continuity(now)}
    assert set(items) == {"二、上年结转政府信息公开申请数量 总计", "规章 现行有效件数", "行政规范性文件 现行有效件数"}
    carry = items["二、上年结转政府信息公开申请数量 总计"]
    assert (carry.previous, carry.current) == (last.value("t3.r4.tot"), last.value("t3.r2.tot"))
    now.values = {**now.values, "t2.norm.made": (last.values["t2.norm.made"] or 0) + 2}  # two more made
    norm = next(c for c in continuity(now) if c.item.startswith("行政规范性文件"))
    want = last.values["t2.norm.valid"] + now.values["t2.norm.made"] - last.values["t2.norm.repealed"]
    assert (norm.previous, norm.current, norm.expected) == (last.values["t2.norm.valid"], last.values["t2.norm.valid"], want)
    assert norm.verdict == "不一致"
