"""Shared fixtures: run the real CLI in a subprocess, hash files, build returns."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from archive_util import BACKENDS, new_db

ROOT = Path(__file__).resolve().parent.parent
# In-process commands draw their tables as wide as the console they think they have: the same width
# for every test, whether pytest runs alone, under pytest-xdist or in a terminal.
os.environ["COLUMNS"] = "200"
SAMPLES = ROOT / "samples"


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("NIANBAO_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "toolkit.cli", *map(str, args)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd or ROOT,
        env=env,
        timeout=timeout,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_inprocess(*args: str | Path, cwd: Path | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """The command line in this process (fast): same code path as `nianbao` after start-up,
    same exit codes and messages; stdout and stderr captured."""
    import contextlib
    import io

    from toolkit.cli import run

    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run([str(a) for a in args])
    finally:
        os.chdir(old)
    return subprocess.CompletedProcess(["nianbao", *map(str, args)], code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    """Most CLI tests run in-process; `run_cli` (a real subprocess) is kept for end-to-end ones."""
    return run_inprocess


@pytest.fixture(scope="session")
def fmt():
    from toolkit.spec import current_format

    return current_format()


# Tables that tests want in the CI log (e.g. the hostile corpus: kind → code → exit code).
SUMMARY_TABLES: list[tuple[str, list[str]]] = []


def pytest_runtest_makereport(item, call):
    """Under pytest-xdist the tables are filled in a worker: they ride to the controller on the
    test's report (its user_properties), where pytest_runtest_logreport puts them back."""
    if call.when == "teardown" and SUMMARY_TABLES and os.environ.get("PYTEST_XDIST_WORKER"):
        item.user_properties.extend(("nianbao-summary", table) for table in SUMMARY_TABLES)
        SUMMARY_TABLES.clear()


def pytest_runtest_logreport(report):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        SUMMARY_TABLES.extend(tuple(value) for name, value in report.user_properties if name == "nianbao-summary")


def pytest_terminal_summary(terminalreporter):
    for title, lines in SUMMARY_TABLES:
        terminalreporter.section(title)
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path):
    """An empty archive location on each backend: a SQLite file, or a fresh database on the server
    named by $NIANBAO_TEST_PG (skipped without it)."""
    url, cleanup = new_db(request.param, tmp_path)
    yield url
    cleanup()


# Test files that start LibreOffice. Two soffice processes at once (each with its own profile) now and
# then abort one of them on a busy machine ("Binary URP bridge disposed"): under pytest-xdist, where
# two files run at once, these files take turns (a lock held while the file runs); alone, the lock is
# always free.
LIBREOFFICE_FILES = {
    "test_libreoffice",
    "test_layout",
    "test_draft_render",
    "test_draft_publish",
    "test_import",
    "test_import_pdf",
    "test_import_printed",
}


@pytest.fixture(scope="module", autouse=True)
def _one_libreoffice_at_a_time(request, tmp_path_factory):
    if request.module.__name__.rpartition(".")[2] not in LIBREOFFICE_FILES:
        yield
        return
    import fcntl

    shared = tmp_path_factory.getbasetemp().parent  # the same folder for every xdist worker of this run
    with open(shared / "libreoffice.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
