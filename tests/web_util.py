"""Shared setup of the web tests: an archive with the samples' roster and one private link per unit."""

from __future__ import annotations

import socket
from pathlib import Path

from conftest import SAMPLES

from toolkit.archive import Archive
from toolkit.web.keys import issue_links

YEAR = 2025
ROSTER = SAMPLES / "roster.csv"
FAULTY = SAMPLES / "faulty"
RETURNS = SAMPLES / "returns"


def sample(code: str, folder: Path = RETURNS) -> Path:
    return next(folder.glob(f"{code}_*.xlsx"))


def new_archive(db: Path, roster: Path = ROSTER) -> dict[str, str]:
    """An archive at ``db`` with the year's roster; returns unit code → private link token."""
    with Archive.open(str(db)) as archive:
        archive.load_roster(roster, YEAR)
        made, _ = issue_links(archive, YEAR)
    return {link.unit_code: link.token for link in made}


def page_csrf(html: str) -> str:
    """The CSRF token of a page's forms (the hidden input a browser sends back)."""
    import re

    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "page has no form token"
    return found.group(1)


def web_client(app, **kw):
    """Starlette's test client as a browser on this machine: a loopback Host (the client's default
    "testserver" is refused) and the page's own Origin on every request."""
    import warnings

    with warnings.catch_warnings():  # Starlette would rather have httpx2
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    return TestClient(app, base_url="http://127.0.0.1", headers={"origin": "http://127.0.0.1"}, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A real `nianbao serve` in its own process on 127.0.0.1 (what the attack tests go against).

    ``log``: the server's standard error, written to a file so a test can measure how much it grew.
    The port is picked free before the server binds it, so another process may take it in between
    (a busy CI machine): ``wait_ready`` then starts the server again on a new port, up to 3 times."""

    TRIES = 3

    def __init__(self, db: Path, *args: str, log: Path | None = None, preexec_fn=None, env: dict | None = None):
        self.db, self.args, self.preexec_fn, self.env = db, args, preexec_fn, env
        self.given_log = log
        self._start()

    def _start(self) -> None:
        import os
        import subprocess
        import sys

        from conftest import ROOT

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = self.given_log or Path(self.db).with_name(f"serve-{self.port}.log")
        cmd = [sys.executable, "-m", "toolkit.cli", "serve", "--year", str(YEAR), "--port", str(self.port), "--db", str(self.db)]
        self._err = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*cmd, *self.args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            preexec_fn=self.preexec_fn,
            env={**os.environ, "PYTHONIOENCODING": "utf-8", **(self.env or {})},
        )

    def _port_taken(self) -> bool:
        """The server exited because its port was taken after free_port() chose it: by serve's own
        check (exit 2, Chinese) or, a moment later, at uvicorn's bind (exit 3)."""
        text = self.log.read_text("utf-8", "replace")
        return (self.proc.returncode == 2 and "已被其他程序占用" in text) or (
            self.proc.returncode == 3 and "address already in use" in text.lower()
        )

    def wait_ready(self, timeout: float = 60.0, scheme: str = "http") -> Served:
        for attempt in range(self.TRIES):
            if self._wait(timeout, scheme):
                return self
            self._err.close()
            if attempt + 1 < self.TRIES:
                self._start()
        raise RuntimeError(f"nianbao serve found its port taken {self.TRIES} times: {self.log.read_text('utf-8', 'replace')}")

    def _wait(self, timeout: float, scheme: str) -> bool:
        """True once the server answers; False when it exited because its port was taken."""
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if self._port_taken():
                    return False
                raise RuntimeError(f"nianbao serve exited {self.proc.returncode}: {self.log.read_text('utf-8', 'replace')}")
            try:
                httpx.get(f"{scheme}://127.0.0.1:{self.port}/static/app.css", timeout=1, verify=False)
                return True
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nianbao serve did not answer within {timeout} s: {self.log.read_text('utf-8', 'replace')}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except Exception:
                self.proc.kill()
                self.proc.wait(15)
        self._err.close()

    def __enter__(self) -> Served:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
