"""在线填写 under load, loopback only: C clerks (default 20, each through their own unit's link) type a
return into the online form at once, every keystroke a change the page sends to the server's check
(as static/form.js does: a pause of 60 ms, one request in flight, the latest state sent when the
answer comes). A clerk types 3–5 characters a second with jitter, for D seconds (default 30).

Prints, for the check requests: p50/p95/p99/max seconds of the server's answer, and of a keystroke
until an answer that includes it is back (what the clerk waits for, pause included); requests a
second; the server's CPU (share of one core, its whole process tree) and peak RSS.

    python benchmarks/bench_form.py                      # 20 clerks, 30 s
    python benchmarks/bench_form.py --clerks 5 --seconds 10
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

YEAR = 2025
PAUSE = 0.060  # form.js waits this long after a keystroke before it sends (DEBOUNCE_MS)
TARGET_P95 = 0.3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _roster(folder: Path, n: int) -> Path:
    roster = folder / "roster.csv"
    with roster.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["单位代码", "单位名称", "单位类型", "上级代码"])
        w.writerow(["152599", "测试县人民政府", "县级政府", "152500"])
        for i in range(1, n + 1):
            w.writerow([f"152599{i:03d}", f"测试县第{i}镇", "镇", "152599"])
    return roster


def _keystrokes(rng: random.Random) -> list[tuple[str, str]]:
    """What one clerk types, key by key: (field, its text after the key), the cover first, then every
    input of the return in the form's order, with a mistake typed and corrected now and then."""
    from toolkit.spec import current_format
    from toolkit.synth import random_values

    fmt = current_format()
    keys: list[tuple[str, str]] = []
    for fid, text in (("cover:filler", "王敏"), ("cover:phone", "0479-8221234"), ("cover:date", "2026-01-15")):
        keys += [(fid, text[: i + 1]) for i in range(len(text))]
    values = random_values(fmt, rng)
    for cell in fmt.inputs:
        text = str(values.get(cell.id, 0))
        if rng.random() < 0.05:  # a slip: "5件", then the 件 deleted
            keys += [(cell.id, text + "件"), (cell.id, text)]
        keys += [(cell.id, text[: i + 1]) for i in range(len(text))]
    return keys


@dataclass
class Clerk:
    """One browser tab running form.js, in a thread: keystrokes at a typing cadence, checks sent as
    the script sends them."""

    base: str
    link: str
    seconds: float
    rng: random.Random
    answers: list[float] = field(default_factory=list)  # request → answer
    waits: list[float] = field(default_factory=list)  # keystroke → an answer that includes it
    errors: list[str] = field(default_factory=list)

    def run(self, start: float) -> None:
        import httpx

        with httpx.Client(base_url=self.base, timeout=30, headers={"origin": self.base}) as c:
            page = c.get(self.link + "/form")
            if page.status_code != 200:
                self.errors.append(f"form page {page.status_code}")
                return
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            self._type(c, csrf, start)

    def _type(self, c, csrf: str, start: float) -> None:
        """Keys come at their own times whatever the server does; a check goes once a pause of
        PAUSE follows the last key and no request is in flight, with every key typed until then."""
        cover: dict[str, str] = {}
        values: dict[str, str] = {}
        keys = _keystrokes(self.rng)
        when, t = [], start + self.rng.uniform(0, 0.5)
        for _ in keys:
            when.append(t)
            t += self.rng.uniform(0.2, 0.333)  # 3–5 keys a second, with jitter
        end = start + self.seconds
        n = sum(1 for w in when if w < end)
        i, pending = 0, []
        while i < n or pending:
            now = time.perf_counter()
            while i < n and when[i] <= now:
                fid, text = keys[i]
                (cover if fid.startswith("cover:") else values)[fid.removeprefix("cover:")] = text
                pending.append(when[i])
                i += 1
            if not pending:
                _sleep_until(when[i])
                continue
            send_at, next_key = pending[-1] + PAUSE, when[i] if i < n else float("inf")
            if next_key < send_at:  # the next key comes within the pause: form.js waits on
                _sleep_until(next_key)
                continue
            _sleep_until(send_at)
            self._send(c, csrf, cover, values, pending)
            pending = []

    def _send(self, c, csrf: str, cover: dict, values: dict, typed: list[float]) -> None:
        t = time.perf_counter()
        r = c.post(self.link + "/form/check", json={"cover": cover, "values": values}, headers={"x-csrf-token": csrf})
        done = time.perf_counter()
        if r.status_code != 200:
            self.errors.append(f"{r.status_code} {r.text[:200]}")
            return
        self.answers.append(done - t)
        self.waits += [done - k for k in typed]


def _sleep_until(t: float) -> None:
    delay = t - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def _tree(pid: int) -> list[int]:
    """The server and its descendants (a checker pool, if any)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class Sampler(threading.Thread):
    """The server tree's RSS every 0.2 s; the peak is kept."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, _rss_mb(_tree(self.pid)))
            self.stop.wait(0.2)


def _serve(db: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "toolkit.cli", "serve", "--year", str(YEAR), "--port", str(port), "--db", str(db)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(base + "/static/app.css", timeout=1)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("nianbao serve did not start")


def _q(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def run(clerks: int, seconds: float) -> dict:
    from toolkit.archive import Archive
    from toolkit.web.keys import issue_links

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "nianbao.db"
        with Archive.open(str(db)) as a:
            a.load_roster(_roster(Path(tmp), clerks), YEAR)
            links = sorted(f"/u/{x.token}" for x in issue_links(a, YEAR)[0])[:clerks]
        proc, base = _serve(db)
        try:
            people = [Clerk(base, link, seconds, random.Random(i)) for i, link in enumerate(links)]
            pids = _tree(proc.pid)
            cpu0, sampler = _cpu_seconds(pids), Sampler(proc.pid)
            sampler.start()
            mine0 = time.process_time()  # this script's CPU: the 20 clerks' side of the load
            load0 = os.getloadavg()[0]
            start = time.perf_counter() + 0.5
            threads = [threading.Thread(target=p.run, args=(start,)) for p in people]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
            cpu = _cpu_seconds(_tree(proc.pid)) - cpu0
            mine, load = time.process_time() - mine0, max(load0, os.getloadavg()[0])
            sampler.stop.set()
            sampler.join()
        finally:
            proc.terminate()
            proc.wait(15)
    answers = [x for p in people for x in p.answers]
    waits = [x for p in people for x in p.waits]
    errors = [e for p in people for e in p.errors]
    return {
        "clerks": clerks,
        "seconds": wall,
        "requests": len(answers),
        "per_second": len(answers) / wall if wall else 0.0,
        "answer": [_q(answers, q) for q in (0.5, 0.95, 0.99, 1.0)],
        "wait": [_q(waits, q) for q in (0.5, 0.95, 0.99, 1.0)],
        "cpu": cpu / wall if wall else 0.0,
        "rss": sampler.peak,
        "clients_cpu": mine / wall if wall else 0.0,
        "load": load,
        "errors": errors,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clerks", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    r = run(args.clerks, args.seconds)
    print(f"{r['clerks']} clerks typing for {r['seconds']:.0f} s: {r['requests']} checks, {r['per_second']:.1f} a second")
    print("| measure | p50 s | p95 s | p99 s | max s |")
    print("|---|---:|---:|---:|---:|")
    for name, key in (
        ("check request → answer", "answer"),
        (f"keystroke → answer shown ({PAUSE * 1000:.0f} ms pause included)", "wait"),
    ):
        print(f"| {name} | " + " | ".join(f"{x:.3f}" for x in r[key]) + " |")
    print(f"server (whole process tree): CPU {r['cpu'] * 100:.0f} % of one core, peak RSS {r['rss']:.0f} MB")
    print(f"the simulated clerks (this script): CPU {r['clients_cpu'] * 100:.0f} % of one core; load average {r['load']:.1f}")
    if r["errors"]:
        print(f"{len(r['errors'])} requests failed, e.g. {r['errors'][0]}")
    met = r["answer"][1] <= TARGET_P95 and not r["errors"]
    print(f"target p95 ≤ {TARGET_P95} s (check answer): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
