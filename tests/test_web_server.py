"""The real server (`nianbao serve` in its own process) killed in the middle of uploads: what it
acknowledged is in the archive, nothing is half-stored, the stored bytes are as uploaded."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from conftest import ROOT
from web_util import RETURNS, YEAR, free_port, new_archive, page_csrf

from toolkit.archive import Archive


def _start(db, port):
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit.cli", "serve", "--year", str(YEAR), "--port", str(port), "--db", str(db)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail(proc.stderr.read().decode("utf-8", "replace"))


def test_kill_during_uploads_loses_nothing_acknowledged(tmp_path):
    db = tmp_path / "nianbao.db"
    tokens = new_archive(db)
    port = free_port()
    proc = _start(db, port)
    files = sorted(RETURNS.glob("*.xlsx"))
    acknowledged: list[str] = []

    def clerks():
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30, headers={"origin": base}) as c:
            for path in files:
                code = path.name.split("_")[0]
                try:
                    page = c.get(f"/u/{tokens[code]}")
                    r = c.post(
                        f"/u/{tokens[code]}/upload",
                        data={"csrf": page_csrf(page.text)},
                        files={"files": (path.name, path.read_bytes())},
                    )
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    acknowledged.append(code)

    worker = threading.Thread(target=clerks)
    worker.start()
    while len(acknowledged) < 8 and worker.is_alive():
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    worker.join(30)
    assert 8 <= len(acknowledged) < len(files), "the kill must land mid-run"
    with Archive.open(str(db)) as archive:
        assert archive.verify() == []  # every stored file intact
        states = {s.code: s for s in archive.status(YEAR)}
        for code in acknowledged:
            # acknowledged = stored as the unit's first version, waiting for the county's review
            assert states[code].status == "待审核" and states[code].version == 1, code
            original = next(RETURNS.glob(f"{code}_*.xlsx")).read_bytes()
            report = archive.report(states[code].submission_id)
            assert archive.file_bytes(report.provenance.sha256) == original
        stored = [c for c, s in states.items() if s.submission_id]
        assert set(acknowledged) <= set(stored) and len(stored) <= len(acknowledged) + 1  # at most the one in flight
    # and the archive opens again for a new server
    proc = _start(db, port)
    proc.terminate()
    proc.wait(10)
