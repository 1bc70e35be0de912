"""Issue 12.2: no command overwrites one of its inputs, or a file someone filled in, without
--overwrite; an input is never overwritten, even with it."""

from __future__ import annotations

import shutil

import pytest
from conftest import SAMPLES, sha256

ROSTER = SAMPLES / "roster.csv"
RETURN = SAMPLES / "returns" / "152502201_宝力根苏木_2025年政府信息公开年报.xlsx"
FAULTY = SAMPLES / "faulty" / "152502003_杭盖街道_2025年政府信息公开年报_有误.xlsx"


@pytest.fixture
def returns(tmp_path):
    d = tmp_path / "returns"
    shutil.copytree(SAMPLES / "returns", d)
    return d


def test_consolidate_refuses_to_write_over_an_input(cli, returns):
    target = returns / RETURN.name
    before = sha256(target)
    for extra in ([], ["--overwrite"]):
        r = cli("consolidate", returns, "--roster", ROSTER, "--year", "2025", "--out", target, *extra)
        assert r.returncode == 2 and "是输入文件之一" in r.stderr
        assert sha256(target) == before


def test_consolidate_refuses_to_replace_a_filled_return_unless_told(cli, returns, tmp_path):
    other = tmp_path / "别的文件.xlsx"
    shutil.copy(FAULTY, other)
    before = sha256(other)
    r = cli("consolidate", returns, "--roster", ROSTER, "--year", "2025", "--out", other)
    assert r.returncode == 2 and "--overwrite" in r.stderr and sha256(other) == before
    r = cli("consolidate", returns, "--roster", ROSTER, "--year", "2025", "--out", other, "--overwrite")
    assert r.returncode == 0 and sha256(other) != before
    # re-running into its own summary is the normal flow: no --overwrite needed
    r = cli("consolidate", returns, "--roster", ROSTER, "--year", "2025", "--out", other)
    assert r.returncode == 0, r.stderr


def test_template_refuses_to_replace_a_filled_return(cli, tmp_path):
    out = tmp_path / "模板"
    r = cli("template", "--roster", ROSTER, "--year", "2025", "--out", out)
    assert r.returncode == 0 and len(list(out.glob("*.xlsx"))) == 22
    r = cli("template", "--roster", ROSTER, "--year", "2025", "--out", out)  # blank templates: fine to redo
    assert r.returncode == 0, r.stderr
    filled = out / RETURN.name
    shutil.copy(RETURN, filled)  # a clerk's return saved under the template's name
    before = {p.name: sha256(p) for p in out.iterdir()}
    r = cli("template", "--roster", ROSTER, "--year", "2025", "--out", out)
    assert r.returncode == 2 and RETURN.name in r.stderr and "没有生成任何模板" in r.stderr
    assert {p.name: sha256(p) for p in out.iterdir()} == before  # nothing at all was rewritten
    r = cli("template", "--roster", ROSTER, "--year", "2025", "--out", out, "--overwrite")
    assert r.returncode == 0 and sha256(filled) != before[RETURN.name]


def test_annotate_never_replaces_an_input_or_a_filled_file(cli, tmp_path):
    d = tmp_path / "收到"
    d.mkdir()
    shutil.copy(FAULTY, d / "杭盖.xlsx")
    shutil.copy(RETURN, d / "杭盖_审核意见.xlsx")  # an input that has the copy's name
    before = {p.name: sha256(p) for p in d.iterdir()}
    r = cli("check", d, "--annotate", d, "--overwrite")
    assert r.returncode == 2 and "是输入文件之一" in r.stderr
    assert {p.name: sha256(p) for p in d.iterdir()} == before
    out = tmp_path / "退回"
    out.mkdir()
    shutil.copy(RETURN, out / "杭盖_审核意见.xlsx")  # not an input, but someone's filled file
    r = cli("check", d / "杭盖.xlsx", "--annotate", out)
    assert r.returncode == 2 and "--overwrite" in r.stderr and sha256(out / "杭盖_审核意见.xlsx") == sha256(RETURN)
    r = cli("check", d / "杭盖.xlsx", "--annotate", out, "--overwrite")
    assert r.returncode == 1 and sha256(out / "杭盖_审核意见.xlsx") != sha256(RETURN)
    r = cli("check", d / "杭盖.xlsx", "--annotate", out)  # our own copy from the last run: replaced quietly
    assert r.returncode == 1 and "已生成 1 份" in r.stderr


@pytest.mark.slow
def test_draft_never_replaces_an_edited_report(cli, tmp_path):
    from docx import Document

    seed = SAMPLES / "seed-2023" / "152502201_宝力根苏木_2023年政府信息公开年报.xlsx"
    out = tmp_path / "年报.docx"
    assert cli("draft", seed, "--out", out).returncode == 0
    assert cli("draft", seed, "--out", out).returncode == 0  # its own untouched draft: redone quietly
    doc = Document(str(out))
    doc.paragraphs[-1].text = "办公室已补充的内容"
    doc.core_properties.last_modified_by, doc.core_properties.revision = "王敏", 2  # what Word or WPS records
    doc.save(str(out))
    before = sha256(out)
    r = cli("draft", seed, "--out", out)
    assert r.returncode == 2 and "--overwrite" in r.stderr and sha256(out) == before
    assert cli("draft", seed, "--out", out, "--overwrite").returncode == 0 and sha256(out) != before


def test_a_full_disk_names_the_file(tmp_path, monkeypatch):
    """ENOSPC while writing says which output could not be written (the error itself names no file)."""
    import errno
    import os

    from toolkit import fileio

    def full(fd):  # a delayed write that finds the disk full surfaces at fsync
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    target = tmp_path / "汇总.xlsx"
    try:
        fileio.atomic_write_bytes(target, b"x" * 10)
    except OSError as e:
        assert e.errno == errno.ENOSPC and e.filename == str(target)
    else:
        raise AssertionError("the write must fail")
    assert not target.exists() and not list(tmp_path.glob(".~nianbao-*"))


def test_a_summary_is_recognised_by_its_properties_alone(cli, returns, tmp_path, monkeypatch):
    """Re-running consolidate over its own summary must not read the whole old summary (a province's
    has 10,000 rows); a summary of another unit or year, or a filled return, is still refused."""
    from toolkit import outputs, reader

    out = tmp_path / "汇总.xlsx"
    assert cli("consolidate", returns, "--roster", ROSTER, "--year", "2025", "--out", out).returncode == 0

    def no_full_read(*args, **kwargs):
        raise AssertionError("the whole workbook was read")

    monkeypatch.setattr(reader, "read_bytes", no_full_read)
    assert outputs.regenerable(out, "summary", "152502", 2025)
    monkeypatch.undo()
    assert not outputs.regenerable(out, "summary", "152502", 2024)  # another year
    assert not outputs.regenerable(out, "summary", "152502201", 2025)  # another unit
    assert not outputs.regenerable(RETURN, "summary", "152502201", 2025)  # a clerk's return


def _edit_a_figure(summary, edited):
    """The summary with one figure of 表二 typed over (in the sheet's XML, properties untouched)."""
    import re
    import zipfile

    with zipfile.ZipFile(summary) as zin, zipfile.ZipFile(edited, "w", zipfile.ZIP_DEFLATED) as zout:
        book = zin.read("xl/workbook.xml").decode()
        rels = zin.read("xl/_rels/workbook.xml.rels").decode()
        rid = re.search(r'<sheet name="表二" sheetId="\d+" r:id="(rId\d+)"', book).group(1)
        part = "xl/" + re.search(rf'Id="{rid}"[^>]*Target="([^"]+)"', rels).group(1).removeprefix("/xl/")
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == part:
                data = re.sub(rb"(<c r=\"[A-Z]+\d+\"[^>]*><v>)(\d+)(</v>)", rb"\g<1>98765\g<3>", data, count=1)
            zout.writestr(item, data)


def test_a_summary_someone_typed_into_is_not_replaced(cli, returns, tmp_path):
    """Its manifest no longer vouches for its bytes: the full read decides, and finds it edited."""
    from toolkit import outputs

    out = tmp_path / "汇总.xlsx"
    assert cli("consolidate", returns, "--roster", ROSTER, "--year", "2025", "--out", out).returncode == 0
    edited = tmp_path / "汇总2.xlsx"
    _edit_a_figure(out, edited)
    shutil.copy(out.with_name("汇总.manifest.json"), tmp_path / "汇总2.manifest.json")
    assert not outputs.regenerable(edited, "summary", "152502", 2025)
    r = cli("consolidate", returns, "--roster", ROSTER, "--year", "2025", "--out", edited)
    assert r.returncode == 2 and "--overwrite" in r.stderr


def test_manifests_are_told_by_their_head_and_last_member(tmp_path):
    """The guard tells a manifest of this tool by its head, and a summary's manifest by its last
    member, without parsing the 10,000 inputs between; anything else gets the full parse."""
    import hashlib
    import json

    from toolkit.outputs import regenerable
    from toolkit.summary_writer import manifest_matches, manifest_text

    man = tmp_path / "汇总.manifest.json"
    summary = tmp_path / "汇总.xlsx"
    summary.write_bytes(b"PK\x03\x04 a summary")
    digest = hashlib.sha256(summary.read_bytes()).hexdigest()
    data = {"tool": "nianbao", "inputs": [{"name": f"{i}.xlsx"} for i in range(3)], "summary_sha256": digest}
    man.write_text(manifest_text(data), encoding="utf-8")
    assert regenerable(man, "manifest") and manifest_matches(summary, man)
    man.write_text(manifest_text(data)[:40], encoding="utf-8")  # our own, cut short by a crash
    assert regenerable(man, "manifest") and not manifest_matches(summary, man)
    moved = {"summary_sha256": digest, "tool": "nianbao", "inputs": []}  # edited by hand: key not last
    man.write_text(json.dumps(moved), encoding="utf-8")
    assert regenerable(man, "manifest") and manifest_matches(summary, man)
    man.write_text(json.dumps({"tool": "nianbao", "summary_sha256": "0" * 64}), encoding="utf-8")
    assert not manifest_matches(summary, man)
    man.write_text(json.dumps({"名单": [1, 2, 3]}, ensure_ascii=False), encoding="utf-8")  # someone's own file
    assert not regenerable(man, "manifest") and not manifest_matches(summary, man)
    man.write_text('{"tool": "nianbao"', encoding="utf-8")  # no comma after: not the head we write
    assert not regenerable(man, "manifest")


def test_a_staging_folder_left_outside_any_with_is_removed_when_the_command_ends(cli, tmp_path):
    """Issue 26.11: a signal may land after a staging folder is made and before its ``with`` block
    is entered; the folder is on record and the command line removes it as the command ends."""
    from toolkit.fileio import STAGING, Staging, remove_staging

    stage = Staging(tmp_path / "out")  # as if Ctrl-C struck before `with` took it over
    (stage.dir / "half.xlsx").write_bytes(b"half")
    assert stage.dir in STAGING
    remove_staging()
    assert list((tmp_path / "out").iterdir()) == [] and stage.dir not in STAGING
    Staging(tmp_path / "out")
    cli("--version")  # every command ends so
    assert list((tmp_path / "out").iterdir()) == []


def test_owner_only_writes(tmp_path):
    import os
    import stat

    from toolkit.fileio import OWNER_ONLY, atomic_write_bytes

    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "links.csv", b"x", OWNER_ONLY)
        atomic_write_bytes(tmp_path / "plain.csv", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "links.csv").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "plain.csv").stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["links.csv", "plain.csv"]
