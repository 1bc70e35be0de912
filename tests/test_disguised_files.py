"""Issue 13: hostile input, second round. One small file never crashes a batch, exhausts memory,
hangs, or slips a formula past the checks; the good returns beside it are still checked."""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import signal
import zipfile
from pathlib import Path

import corpus_disguised_files as disguised
import pytest
from conftest import SAMPLES, SUMMARY_TABLES, run_cli

from toolkit import check as check_mod
from toolkit.check import CheckOptions, iter_checked
from toolkit.reader import read_bytes
from toolkit.xlsx import fast as xlsx_fast
from toolkit.xlsx import guard, parts, scan

ROSTER = SAMPLES / "roster.csv"
GOOD = sorted((SAMPLES / "returns").glob("*.xlsx"))
SEVERE = {"错误", "警告"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus_disguised_files")
    bad = d / "bad"
    kinds = disguised.build(bad)
    return d, bad, kinds


def test_corpus_with_the_good_returns_in_one_batch(corpus):
    d, bad, kinds = corpus
    good = d / "good"
    good.mkdir(exist_ok=True)
    for p in GOOD:
        shutil.copy(p, good / p.name)
    r = run_cli("check", good, bad, "--roster", ROSTER, "--year", "2025", "--json", timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "内部错误" not in r.stderr, r.stderr[-2000:]
    files = {f["file"]: f for f in json.loads(r.stdout)["files"]}
    table, failures = [], []
    for k in kinds:
        entry = next((v for name, v in files.items() if name == f"bad/{k.file}" or name.startswith(f"bad/{k.file}/")), None)
        got = [f for f in (entry or {}).get("findings", []) if f["code"] in k.codes]
        table.append(f"{k.name:<44} {','.join(sorted({f['code'] for f in got})) or '—'}")
        ok = bool(got) and all(f["severity"] in SEVERE and re.search(r"[\u4e00-\u9fff]", f["message"]) for f in got)
        if not ok:
            failures.append(
                f"{k.name}: expected one of {sorted(k.codes)}, got {entry and [f['code'] for f in entry['findings']]}"
            )
    for p in GOOD:  # every good return checked and clean
        entry = files[f"good/{p.name}"]
        assert not [f for f in entry["findings"] if f["severity"] == "错误"], entry
    SUMMARY_TABLES.append((f"hostile corpus 2: {len(kinds)} kinds with {len(GOOD)} good returns", table))
    assert not failures, "\n".join(failures)


def _abort_on_boom(data, name, path="", mtime=0.0, careful=False):
    if "boom" in name:
        os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer or a Rust abort does to the process
    return read_bytes(data, name, path, mtime, careful)


def test_a_dead_worker_becomes_a_finding_and_the_batch_goes_on(tmp_path, monkeypatch):
    for p in GOOD[:5]:
        shutil.copy(p, tmp_path / p.name)
    shutil.copy(GOOD[5], tmp_path / "boom.xlsx")
    monkeypatch.setattr(check_mod, "read_bytes", _abort_on_boom)  # workers are forked: they inherit it
    reports = list(iter_checked([tmp_path], CheckOptions(year=2025), workers=2))
    by_name = {r.provenance.name: r for r in reports}
    assert len(reports) == 6
    assert [f.code for f in by_name[f"{tmp_path.name}/boom.xlsx"].findings] == ["file-unreadable"]
    assert "崩溃" in by_name[f"{tmp_path.name}/boom.xlsx"].findings[0].message
    assert all(r.readable for n, r in by_name.items() if "boom" not in n)


# ---------------------------------------------------------------- XML fuzzer (fixed seed)

FUZZ_SEED = 20260113
FUZZ_ROUNDS = int(os.environ.get("NIANBAO_FUZZ_XML", "40"))


def test_xml_fuzzer_over_real_returns():
    """Rewrites the worksheet XML of real returns the way other writers (or attackers) spell it;
    the careful parser and the fast scan agree whenever the fast scan accepts, and reading never
    raises, whatever comes out."""
    rng = random.Random(FUZZ_SEED)
    accepted = refused = 0
    for i in range(FUZZ_ROUNDS):
        data, mutations = disguised.mutate_return(rng, GOOD[i % len(GOOD)])
        z = zipfile.ZipFile(io.BytesIO(data))
        for name in z.namelist():
            if not name.startswith("xl/worksheets/"):
                continue
            body = z.read(name)
            fast = parts.SheetInfo(name="x")
            slow = parts.SheetInfo(name="x")
            try:
                took_fast = xlsx_fast._fast_scan(body, fast)
            except guard.ProbeProblem:
                took_fast = "refused"
            try:
                scan._stream_scan(z, name, slow)
            except guard.ProbeProblem:
                slow = "refused"
            if took_fast is True:
                assert (fast.protected, fast.formulas) == (slow.protected, slow.formulas), mutations
                accepted += 1
            elif took_fast == "refused":
                assert slow == "refused", mutations
                refused += 1
        rep = read_bytes(data, "fuzz.xlsx")
        assert all(f.code and f.message for f in rep.findings)
    SUMMARY_TABLES.append(("XML fuzzer", [f"{FUZZ_ROUNDS} rounds, seed {FUZZ_SEED}: fast scan took {accepted} parts"]))


def test_archive_members_with_one_name_are_each_read_once(tmp_path):
    import warnings

    a, b = GOOD[0].read_bytes(), GOOD[1].read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (tmp_path / "dup.zip").write_bytes(disguised.pack([("年报.xlsx", a), ("年报.xlsx", b), ("年报.xlsx", a)]))
    reports = list(iter_checked([tmp_path / "dup.zip"], CheckOptions(year=2025), workers=1))
    names = [r.provenance.name for r in reports]
    assert names == ["dup.zip/年报.xlsx", "dup.zip/年报.xlsx（同名文件第2个）", "dup.zip/年报.xlsx（同名文件第3个）"]
    assert [r.unit_code for r in reports] == [GOOD[0].name.split("_")[0], GOOD[1].name.split("_")[0], GOOD[0].name.split("_")[0]]


def test_archive_listing_holds_no_member_in_memory(tmp_path):
    """Sources from an archive carry where they are, not their bytes: a batch of archives costs
    the memory of one return at a time."""
    from toolkit.inputs import collect

    (tmp_path / "many.zip").write_bytes(disguised.pack([(f"{i}.xlsx", GOOD[i % len(GOOD)].read_bytes()) for i in range(60)]))
    sources = list(collect([tmp_path]))
    assert len(sources) == 60 and all(s.data is None and s.member for s in sources)


# ---------------------------------------------------------------- 3. paths


@pytest.fixture
def odd_folder(tmp_path):
    d = tmp_path / "收件"
    d.mkdir()
    shutil.copy(GOOD[0], d / "good.xlsx")
    os.mkfifo(d / "pipe.xlsx")
    os.symlink("/etc/passwd", d / "outside.xlsx")
    os.symlink(d / "good.xlsx", d / "inside_link.xlsx")
    os.symlink("/etc", d / "etc_dir")
    (d / ".~nianbao-stage-abc").mkdir()
    shutil.copy(GOOD[1], d / ".~nianbao-stage-abc" / "half_written.xlsx")
    raw = os.fsencode(d)
    for name in (b"gbk_\xc4\xea\xb1\xa8.xlsx", b"bad_\xff\xfe.xlsx", b"esc_\x1b[2J\x07.xlsx"):
        shutil.copy(GOOD[2], raw + b"/" + name)
    return d


def test_odd_paths_are_named_and_skipped_never_read(odd_folder, tmp_path):
    r = run_cli("check", odd_folder, "--json", timeout=30)
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr and "内部错误" not in r.stderr, r.stderr[-2000:]
    files = {f["file"]: f for f in json.loads(r.stdout)["files"]}
    codes = {name.split("/", 1)[1]: [f["code"] for f in f["findings"]] for name, f in files.items()}
    assert codes["pipe.xlsx"] == ["path-skipped"] and codes["outside.xlsx"] == ["path-skipped"]
    assert "命名管道" in files["收件/pipe.xlsx"]["findings"][0]["message"]
    assert "half_written.xlsx" not in str(codes) and "passwd" not in r.stdout
    assert {"good.xlsx", "inside_link.xlsx", "gbk_年报.xlsx", "esc_\\x1b[2J\\x07.xlsx"} <= set(codes)
    assert not any("\x1b" in name for name in files) and any(name.startswith("收件/bad_") for name in files)


def test_a_pipe_or_device_given_as_a_path_never_hangs(odd_folder):
    for path in (odd_folder / "pipe.xlsx", Path("/dev/zero")):
        r = run_cli("check", path, "--json", timeout=20)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert [f["code"] for f in json.loads(r.stdout)["files"][0]["findings"]] == ["path-skipped"]


def test_names_that_are_not_utf8_through_consolidate_and_annotate(odd_folder, tmp_path):
    out, ann = tmp_path / "汇总.xlsx", tmp_path / "退回"
    r = run_cli("consolidate", odd_folder, "--roster", ROSTER, "--year", "2025", "--out", out, "--force", timeout=60)
    assert out.exists() and "Traceback" not in r.stderr and "内部错误" not in r.stderr, r.stderr[-2000:]
    r = run_cli("check", odd_folder, "--roster", ROSTER, "--year", "2025", "--annotate", ann, timeout=60)
    assert "Traceback" not in r.stderr and "内部错误" not in r.stderr, r.stderr[-2000:]
    assert "\x1b" not in r.stdout + r.stderr
    names = sorted(p.name for p in ann.iterdir())
    assert "gbk_年报_审核意见.xlsx" in names and all("\x1b" not in n for n in names)


# ---------------------------------------------------------------- 5. rosters


@pytest.mark.parametrize("file", sorted(disguised.roster_kinds()))
def test_hostile_rosters_get_a_chinese_message_naming_the_roster(file, tmp_path, cli):
    body, expected = disguised.roster_kinds()[file]
    roster = tmp_path / file
    roster.write_bytes(body)
    r = cli("check", GOOD[7], "--roster", roster)
    assert r.returncode == expected, r.stdout + r.stderr
    if expected == 2:
        assert file in r.stderr and "名册" in r.stderr and "内部错误" not in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------- 6. trust


def test_a_copy_claiming_to_be_a_summary_does_not_beat_the_genuine_return(tmp_path, cli):
    rep = read_bytes(disguised.with_level("县级汇总", value=999), "copy.xlsx")
    assert rep.level == "填报单位" and "summary-unverified" in {f.code for f in rep.findings}
    d = tmp_path / "returns"
    shutil.copytree(SAMPLES / "returns", d)
    (d / "0_copy.xlsx").write_bytes(disguised.with_level("县级汇总", value=999))  # same 填报日期, newer file
    r = cli("consolidate", d, "--roster", ROSTER, "--year", "2025", "--out", tmp_path / "s.xlsx", "--force", "--json")
    unit = next(u for u in json.loads(r.stdout)["summary"]["units"] if u["unit_code"] == disguised.GOOD.name.split("_")[0])
    assert unit["file"] == f"returns/{disguised.GOOD.name}" and unit["duplicates"] == ["returns/0_copy.xlsx"]


def test_import_of_a_pipe_is_a_finding_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")
    shutil.copy(next((SAMPLES / "published").glob("*.txt")), tmp_path / "report.txt")
    r = run_cli("import", tmp_path, "--json", timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "pipe.txt 不是普通文件" in r.stdout and len(json.loads(r.stdout)["files"]) == 2


def test_control_characters_in_cell_text_never_reach_the_terminal(tmp_path):
    from toolkit.spec import current_format

    label = current_format().sheets[0].labels[0]
    cell = f'<c r="{label.a1}" t="inlineStr"><is><t>x_x001B_[2J_x0007_y</t></is></c>'.encode()
    (tmp_path / "ctl.xlsx").write_bytes(disguised.pack(disguised.set_cell(disguised.T2, label.a1, cell)))
    r = run_cli("check", tmp_path / "ctl.xlsx", timeout=30)
    assert r.returncode == 1 and "\x1b" not in r.stdout + r.stderr and "\x07" not in r.stdout + r.stderr
    r = run_cli("check", tmp_path / "ctl.xlsx", "--json", timeout=30)
    assert "x\\\\x1b[2J\\\\x07y" in r.stdout
