"""The 年度工作流程 of README.md runs as written: every command in order in one folder (exit 0, or 1
where the line says 退出码 1), then the Python example on the archive it made."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## 年度工作流程", 1)[1].split("\n## ", 1)[0]
BLOCKS = re.findall(r"```(bash|python)\n(.*?)```", SECTION, re.S)


def _script(lines: list[str]) -> str:
    """Each command, then its exit code and what it was expected to be, into rc.log."""
    out = [f'nianbao() {{ "{sys.executable}" -m toolkit.cli "$@"; }}']
    for n, line in enumerate(lines):
        if line.startswith("nianbao "):
            want = 1 if "退出码 1" in line else 0
            out += [line, f'echo "{n} $? {want}" >> rc.log']
        elif line.startswith("export "):
            out.append(line)
    return "\n".join(out) + "\n"


@pytest.mark.slow
def test_workflow_section_runs(tmp_path):
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    (tmp_path / "输出").mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    env.pop("NIANBAO_DB", None)
    commands = [b for kind, b in BLOCKS if kind == "bash"]
    assert len(commands) == 2 and sum(c.count("\nnianbao ") for c in commands) >= 15
    for block in commands:
        lines = block.strip().splitlines()
        r = subprocess.run(["bash", "-c", _script(lines)], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
        assert "Traceback" not in r.stderr, r.stderr[-2000:]
        for entry in (tmp_path / "rc.log").read_text().split("\n")[:-1]:
            n, got, want = entry.split()
            assert got == want, f"{lines[int(n)]}\n{r.stderr[-3000:]}"
        (tmp_path / "rc.log").unlink()
    (python,) = [b for kind, b in BLOCKS if kind == "python"]
    r = subprocess.run([sys.executable, "-c", python], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "街道" in r.stdout or "镇" in r.stdout
    assert (tmp_path / "输出" / "锡林浩特市汇总.xlsx").exists() and list((tmp_path / "输出" / "模板2026").glob("*.xlsx"))
