"""Issue 7: hostile and broken input — nothing crashes, nothing is lost, nothing gets in.

Every kind of tests/corpus_broken_files.py goes through the real CLI in a subprocess.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import corpus_broken_files
import pytest
from conftest import ROOT, SAMPLES, SUMMARY_TABLES, run_cli, sha256
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.check import CheckOptions, check_report
from toolkit.reader import read_bytes

ROSTER = SAMPLES / "roster.csv"
FUZZ_EXAMPLES = int(os.environ.get("NIANBAO_FUZZ_EXAMPLES", "150"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile") / "corpus"
    kinds = corpus_broken_files.build(d)
    return d, kinds


def _codes(file_entry: dict) -> set[str]:
    return {f["code"] for f in file_entry["findings"]}


@pytest.mark.slow
def test_every_kind_through_the_cli(corpus, cli):
    """Each kind alone through the command line in this process (the same code after start-up, with
    its exit code and messages; a subprocess per kind cost half a minute); the whole corpus goes
    through a real `nianbao` process in one batch in the next test."""
    d, kinds = corpus
    assert len(kinds) >= 40
    results = [(kind, cli("check", d / kind.file, "--roster", ROSTER, "--year", "2025", "--json")) for kind in kinds]
    table, failures = [f"{'kind':<34} {'codes':<40} exit"], []
    for kind, r in results:
        ok = "Traceback" not in r.stderr + r.stdout and r.returncode == kind.exit
        files = json.loads(r.stdout)["files"] if r.stdout.strip() else []
        got = set().union(*(_codes(f) for f in files)) if files else set()
        errors = {f["code"] for x in files for f in x["findings"] if f["severity"] == "错误"}
        ok = ok and kind.codes <= got and not (errors - kind.codes) and files
        for x in files:
            for f in x["findings"]:
                ok = ok and bool(f["message"]) and re.search(r"[\u4e00-\u9fff]", f["message"])
        table.append(f"{kind.name:<34} {','.join(sorted(got)) or '—':<40} {r.returncode}")
        if not ok:
            failures.append(
                f"{kind.name}: expected {sorted(kind.codes)} exit {kind.exit}, got {sorted(got)} "
                f"exit {r.returncode}\n{r.stderr[-800:]}"
            )
    SUMMARY_TABLES.append((f"hostile corpus: {len(kinds)} kinds → code → exit code", table))
    assert not failures, "\n".join(failures)


def test_whole_corpus_in_one_batch_inputs_untouched(corpus):
    d, kinds = corpus
    before = {p: sha256(p) for p in d.rglob("*") if p.is_file()}
    r = run_cli("check", d, "--roster", ROSTER, "--year", "2025", "--json", timeout=180)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    names = {f["file"].split("/")[1] for f in json.loads(r.stdout)["files"]}
    assert {k.file for k in kinds} <= names  # every file got its own entry; the batch went on
    assert {p: sha256(p) for p in before} == before


_SAFE_FORMULA = re.compile(
    r'(?:[A-Z]{1,3}\$?\d+|\$|SUM|IF|ISERROR|ABS|[-+=<>&(),:!]|"(?:相符|不符，差|有文字，请改为数字)"|\d+)+'
)


def _formulas(xlsx: Path) -> list[str]:
    out = []
    with zipfile.ZipFile(xlsx) as z:
        for n in z.namelist():
            if n.startswith("xl/worksheets/sheet"):
                out += re.findall(r"<f>([^<]*)</f>", z.read(n).decode("utf-8"))
    return out


def test_no_formula_injection_and_safe_names(corpus, tmp_path):
    d, _ = corpus
    annotated = tmp_path / "退回"
    r = run_cli("check", d, "--roster", ROSTER, "--year", "2025", "--annotate", annotated, timeout=180)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    summary = tmp_path / "汇总.xlsx"
    r = run_cli("consolidate", d, "--roster", ROSTER, "--year", "2025", "--out", summary, "--force", timeout=180)
    assert summary.exists(), r.stderr
    outputs = list(annotated.iterdir()) + [summary]
    assert len(outputs) > 20
    for out in outputs:
        assert ".." not in out.name  # the names come from hostile file names
        assert out.parent == annotated or out == summary
        assert out.name.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL"}
        for f in _formulas(out):
            f = f.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            assert _SAFE_FORMULA.fullmatch(f), (out.name, f)
    text = "".join(
        zipfile.ZipFile(summary).read(n).decode("utf-8", "replace")
        for n in zipfile.ZipFile(summary).namelist()
        if n.endswith(".xml")
    )
    assert "HYPERLINK" in text  # the hostile name is there, as text…
    assert not re.search(r"<f>[^<]*HYPERLINK", text)  # …never as a formula


@pytest.mark.parametrize(
    "file", ["zipbomb_ratio.xlsx", "xml_bomb.xlsx", "zipbomb_members.xlsx", "nested_bomb.zip", "million_rows.xlsx"]
)
def test_bombs_are_cheap(corpus, file):
    d, _ = corpus
    probe = (
        "import resource,subprocess,sys,time;t=time.time();"
        "r=subprocess.run([sys.executable,'-m','toolkit.cli','check',sys.argv[1]],capture_output=True);"
        "print(time.time()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(d / file)], capture_output=True, text=True, cwd=ROOT, timeout=60
    ).stdout.split()
    seconds, rss_kb, code = float(out[0]), int(out[1]), int(out[2])
    SUMMARY_TABLES.append((f"bomb {file}", [f"{seconds:.2f} s, peak RSS {rss_kb / 1024:.0f} MB, exit {code}"]))
    assert code == 1 and seconds < 5 and rss_kb < 200 * 1024


def _kill_during(args: list, out: Path, delays: list[float]) -> list[str]:
    """Run the CLI, SIGKILL it after each delay; the output is the previous file or a complete new one."""
    seen = []
    for delay in delays:
        before = out.read_bytes() if out.exists() else None
        p = subprocess.Popen(
            [sys.executable, "-m", "toolkit.cli", *map(str, args)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(delay)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        if out.exists():
            data = out.read_bytes()
            if before is not None and data == before:
                seen.append("previous")
            else:
                zipfile.ZipFile(io.BytesIO(data)).testzip()  # complete and valid
                seen.append("new")
        else:
            assert before is None
            seen.append("none")
    return seen


@pytest.mark.slow
def test_sigkill_leaves_previous_or_complete_output(tmp_path):
    many = tmp_path / "many"
    many.mkdir()
    for i in range(8):
        for p in (SAMPLES / "returns").iterdir():
            shutil.copy(p, many / f"{i}_{p.name}")
    out = tmp_path / "汇总.xlsx"
    args = ["consolidate", many, "--roster", ROSTER, "--year", "2025", "--out", out]
    seen = _kill_during(args, out, [0.3, 0.8])
    t = time.time()
    assert run_cli(*args).returncode == 0  # a previous file now exists
    full = time.time() - t
    previous = sha256(out)
    rng = random.Random(5)
    # kill late in the run, when the summary is being written and renamed
    seen += _kill_during(args, out, [full * f for f in (0.6, 0.8, 0.9, 0.95, 0.98, rng.uniform(0.85, 1.0))])
    assert out.exists() and (sha256(out) == previous or zipfile.ZipFile(out).testzip() is None)
    ann = tmp_path / "ann"
    seen += _kill_during(["check", SAMPLES / "faulty", "--annotate", ann], ann / "x.xlsx", [0.4, 0.9])
    for p in ann.glob("*.xlsx") if ann.exists() else []:
        assert zipfile.ZipFile(p).testzip() is None
    SUMMARY_TABLES.append(("SIGKILL during consolidate/annotate", [f"full run {full:.2f} s; outcomes: {', '.join(seen)}"]))


# ---------------------------------------------------------------- fuzzing

_GOOD = (SAMPLES / "returns" / "152502301_锡林浩特市公安局_2025年政府信息公开年报.xlsx").read_bytes()
_PARTS = {n: zipfile.ZipFile(io.BytesIO(_GOOD)).read(n) for n in zipfile.ZipFile(io.BytesIO(_GOOD)).namelist()}


def _zip(parts: dict[str, bytes]) -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for n, body in parts.items():
            z.writestr(n, body)
    return b.getvalue()


def _survives(data: bytes) -> None:
    rep = read_bytes(data, "fuzz.xlsx")
    check_report(rep, CheckOptions(year=2025))
    for f in rep.findings:
        assert f.code and f.message and f.severity in ("错误", "警告", "提示")


FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(_GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=20))
def test_fuzz_zip_bytes(flips):
    data = bytearray(_GOOD)
    for pos, val in flips:
        data[pos] = val
    _survives(bytes(data))


@FUZZ
@given(
    st.sampled_from(sorted(n for n in _PARTS if n.endswith(".xml"))),
    st.integers(0, 10**6),
    st.binary(min_size=0, max_size=40),
    st.integers(0, 200),
)
def test_fuzz_xml_text(part, at, insert, cut):
    body = _PARTS[part]
    pos = at % (len(body) + 1)
    parts = dict(_PARTS)
    parts[part] = body[:pos] + insert + body[pos + cut :]
    _survives(_zip(parts))


_CELL_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["=1+2", "１２", "1,200", "-", "无", "NaN", "1e308", "-0", '=HYPERLINK("x")', "  7 ", "0x1F", "٣"]),
)


@pytest.mark.slow
@FUZZ
@given(st.dictionaries(st.sampled_from(["D7", "E7", "D9", "J7", "D30", "B10"]), _CELL_TEXT, min_size=1, max_size=4))
def test_fuzz_cell_values(cells):
    import html

    body = _PARTS["xl/worksheets/sheet3.xml"].decode("utf-8")
    for ref, text in cells.items():
        safe = html.escape("".join(ch for ch in text if ch.isprintable()), quote=False)
        cell = f'<c r="{ref}" t="inlineStr"><is><t>{safe}</t></is></c>'
        body = re.sub(rf'<c r="{ref}"[^>]*?(/>|>.*?</c>)', lambda _m, cell=cell: cell, body, count=1)
    parts = dict(_PARTS)
    parts["xl/worksheets/sheet3.xml"] = body.encode("utf-8")
    _survives(_zip(parts))


def test_fuzz_budget_is_recorded():
    SUMMARY_TABLES.append(
        (
            "fuzzing",
            [f"{FUZZ_EXAMPLES} examples per fuzz test (NIANBAO_FUZZ_EXAMPLES to change)", hashlib.sha256(_GOOD).hexdigest()[:12]],
        )
    )
