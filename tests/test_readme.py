"""Every example in README.md runs as documented: each section's `nianbao …` lines in order, in one
folder (later lines may use what earlier ones wrote), exit 0 — or 1 where the example is meant to
find problems — and every ```python block runs; the two fresh-machine commands are at the top."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _sections() -> dict[str, list[str]]:
    """README's `nianbao` examples grouped by the heading they stand under, in order."""
    sections: dict[str, list[str]] = {}
    heading = "(开头)"
    for line in README.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("# ").strip()
        elif line.startswith("    nianbao "):
            sections.setdefault(heading, []).append(line.strip())
    return sections


SECTIONS = _sections()
# blocks that open the archive run after the workflow's commands, in tests/test_archive_readme.py
PYTHON_BLOCKS = [b for b in re.findall(r"^```python\n(.*?)^```", README, flags=re.S | re.M) if "Archive.open" not in b]


def _folder(tmp_path):
    """A user's working folder: the bundled samples and the published corpus at hand."""
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    (tmp_path / "输出").mkdir()
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160", "NIANBAO_DB": str(tmp_path / "nianbao.db")}


def test_two_fresh_machine_commands_at_the_top():
    top = README.split("## ", 1)[0]
    cmds = [line.strip() for line in top.splitlines() if line.startswith("    ")]
    assert len(cmds) == 2
    assert "pip install -e ." in cmds[0] and "nianbao consolidate samples/returns" in cmds[0]
    assert 'pip install -e ".[test]"' in cmds[1] and "python -m pytest" in cmds[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest" in ci and "README.md" in ci


def test_readme_has_examples():
    assert sum(len(v) for v in SECTIONS.values()) >= 10 and PYTHON_BLOCKS


@pytest.mark.slow
@pytest.mark.parametrize("section", list(SECTIONS))
def test_readme_examples_run(section, tmp_path):
    env = _folder(tmp_path)
    for example in SECTIONS[section]:
        cmd = re.sub(r"^nianbao ", f"{sys.executable} -m toolkit.cli ", example)
        r = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
        expected = 1 if "faulty" in example else 0
        assert r.returncode == expected, f"{example}\n{r.stderr[-2000:]}"
        assert "Traceback" not in r.stderr


@pytest.mark.parametrize("number", range(len(PYTHON_BLOCKS)))
def test_readme_python_runs(number, tmp_path):
    env = _folder(tmp_path)
    r = subprocess.run(
        [sys.executable, "-c", PYTHON_BLOCKS[number]], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 0, f"{PYTHON_BLOCKS[number]}\n{r.stderr[-3000:]}"
    assert r.stdout.strip(), "the example prints what it shows"
