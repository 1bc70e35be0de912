"""The command line starts quickly: importing it (what `nianbao --help` and `--version` pay) loads
none of the heavy libraries, whichever command is asked for later. A module-import check, not a timing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

HEAVY = (
    "openpyxl",
    "pandas",
    "numpy",
    "sqlalchemy",
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "xlsxwriter",
    "python_calamine",
    "docx",
    "opencc",
    "lxml",
)


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(set(sys.modules))))"
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return {m.split(".")[0] for m in json.loads(r.stdout.splitlines()[-1])}


@pytest.mark.parametrize(
    "code,allowed",
    [
        ("import toolkit.cli", set()),
        ("import toolkit.entry", set()),
        ("import nianbao", {"python_calamine"}),  # the library reads workbooks; calamine costs under 1 ms
    ],
)
def test_importing_loads_no_heavy_library(code, allowed):
    heavy = _loaded_after(code) & (set(HEAVY) - allowed)
    assert not heavy, sorted(heavy)


def test_help_and_version_load_no_heavy_library():
    code = (
        "from toolkit.cli import run\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert run(['--version']) == 0 and run(['--help']) == 0 and run(['check', '--help']) == 0\n"
    )
    loaded = _loaded_after(code)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
