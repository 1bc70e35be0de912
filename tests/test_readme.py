"""Every `nianbao …` example in README.md runs as documented (exit 0, or 1 where the
example is meant to find problems), and the two fresh-machine commands are there."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLES = [line.strip() for line in README.splitlines() if line.startswith("    nianbao ")]


def test_two_fresh_machine_commands_at_the_top():
    top = README.split("## ", 1)[0]
    cmds = [line.strip() for line in top.splitlines() if line.startswith("    ")]
    assert len(cmds) == 2
    assert "pip install -e ." in cmds[0] and "nianbao consolidate samples/returns" in cmds[0]
    assert 'pip install -e ".[test]"' in cmds[1] and "python -m pytest" in cmds[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest" in ci and "README.md" in ci


@pytest.mark.parametrize("example", EXAMPLES)
def test_readme_example_runs(example, tmp_path):
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    (tmp_path / "输出").mkdir()
    cmd = re.sub(r"^nianbao ", f"{sys.executable} -m toolkit.cli ", example)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    r = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=180)
    expected = 1 if "faulty" in example else 0
    assert r.returncode == expected, f"{example}\n{r.stderr[-2000:]}"
    assert "Traceback" not in r.stderr
