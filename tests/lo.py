"""One LibreOffice per test session, driven by tests/lo_driver.py under /usr/bin/python3.

Locally, a machine without LibreOffice skips these tests with the reason; under
CI (CI=true) a missing LibreOffice is a failure, because .ci/run installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

import pytest

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"
JOB_TIMEOUT = 120


def missing_reason() -> str | None:
    if not shutil.which("soffice"):
        return "没有安装 LibreOffice（soffice），跳过真实客户端测试；.ci/run 会自动安装"
    if not Path(SYSTEM_PYTHON).exists():
        return f"没有 {SYSTEM_PYTHON}"
    ok = subprocess.run([SYSTEM_PYTHON, "-c", "import uno"], capture_output=True).returncode == 0
    return None if ok else "python3-uno 未安装，跳过 LibreOffice 测试"


def require_libreoffice() -> None:
    reason = missing_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail("CI 中必须有 LibreOffice：" + reason)
        pytest.skip(reason)


class Office:
    """A soffice process with its own profile and process group."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.pipe = ""
        self.starts = 0

    def start(self) -> None:
        self.stop()
        self.starts += 1
        self.pipe = f"nianbao_{os.getpid()}_{self.starts}"
        profile = self.workdir / f"profile{self.starts}"
        with open(self.workdir / f"soffice{self.starts}.log", "wb") as log:
            self.proc = self._spawn(profile, log)
        r = subprocess.run(
            [SYSTEM_PYTHON, str(HERE / "lo_driver.py"), "--pipe", self.pipe, "--ping"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if r.returncode != 0:
            self.stop()
            raise RuntimeError("LibreOffice 未能启动：" + r.stderr[-500:] + self.said())

    def _spawn(self, profile: Path, log: IO[bytes]) -> subprocess.Popen:
        return subprocess.Popen(
            [
                "soffice",
                "--headless",
                "--invisible",
                "--nologo",
                "--norestore",
                "--nodefault",
                "--nolockcheck",
                f"-env:UserInstallation={profile.as_uri()}",
                f"--accept=pipe,name={self.pipe};urp;StarOffice.ComponentContext",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )

    def said(self) -> str:
        """soffice's own messages (kept in its work folder): when it dies mid-job, as seen on a very
        busy machine, the failure shows what it said last, and the exit status it died with."""
        log = self.workdir / f"soffice{self.starts}.log"
        text = log.read_text("utf-8", "replace")[-500:] if log.exists() else ""
        status = self.proc.poll() if self.proc is not None else None
        return f"；soffice 退出码 {status}，输出：{text.strip() or '无'}"

    def stop(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc = None

    def run(self, path: Path, steps: list[dict], retry: bool = True) -> list[dict]:
        """Run one job on a fresh load of ``path``; restart soffice once if it died."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
            json.dump({"open": str(path), "steps": steps}, fh, ensure_ascii=False)
            job = fh.name
        try:
            r = subprocess.run(
                [SYSTEM_PYTHON, str(HERE / "lo_driver.py"), "--pipe", self.pipe, "--job", job],
                capture_output=True,
                text=True,
                timeout=JOB_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            r = None
        finally:
            os.unlink(job)
        if r is None or r.returncode != 0:
            if retry:
                time.sleep(1)
                self.start()
                return self.run(path, steps, retry=False)
            raise RuntimeError("LibreOffice 作业失败：" + ("超时" if r is None else r.stderr[-1500:]) + self.said())
        return json.loads(r.stdout.strip().splitlines()[-1])
