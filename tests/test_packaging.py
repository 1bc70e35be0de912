"""The installed package (not only a source checkout) finds its format definitions."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel pip builds from this checkout, built once for the module's tests (a build takes seconds)."""
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {r.stderr[-300:]}")
    (built,) = out.glob("*.whl")
    return built


@pytest.mark.slow
def test_wheel_contains_templates_and_finds_them(wheel, tmp_path):
    names = zipfile.ZipFile(wheel).namelist()
    assert {"toolkit/formats/zfxxgk-2021.toml", "toolkit/formats/zfxxgk-2019.toml", "toolkit/formats/checks.toml"} <= set(names)
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    probe = "from toolkit.spec import formats, templates_dir; print(templates_dir().name, sorted(formats()))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(target)}, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["formats", "['zfxxgk-2019',", "'zfxxgk-2021']"], out.stderr


@pytest.mark.slow
def test_wheel_carries_the_archive_migrations(wheel, tmp_path):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"toolkit/archive/migrations/env.py", "toolkit/archive/migrations/versions/0001_initial.py"} <= names
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    probe = f"import toolkit.archive as a; db = a.Archive.open('x.db'); print(a.__file__.startswith({str(target)!r}), db.years())"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(target)}, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["True", "[]"], out.stderr
