"""Load on the web page, loopback only: C clients each upload R returns through their units' private
links at the same time (default 20 × 10 = 200). Prints p50/p95/max seconds from upload to findings
shown, and checks that every return was stored exactly once.

    python benchmarks/bench_web.py                 # 20 clients × 10 returns
    python benchmarks/bench_web.py --clients 4 --per-client 5
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_county(folder: Path, n: int) -> tuple[Path, Path]:
    """A roster of n towns and one filled return each (the tool's own writer, realistic values)."""
    from toolkit.roster import Unit
    from toolkit.spec import current_format
    from toolkit.synth import random_values
    from toolkit.template import ReturnContent, write_return

    fmt = current_format()
    rng = random.Random(7)
    roster = folder / "roster.csv"
    units = [Unit("152599", "测试县人民政府", "县级政府", "152500")] + [
        Unit(f"152599{i:03d}", f"测试县第{i}镇", "镇", "152599") for i in range(1, n + 1)
    ]
    with roster.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["单位代码", "单位名称", "单位类型", "上级代码"])
        for u in units:
            w.writerow([u.code, u.name, u.type, u.parent])
    returns = folder / "returns"
    returns.mkdir()
    for u in units[1:]:
        cover = {"filler": "王敏", "phone": "0479-0000000", "date": "2026-01-10"}
        content = ReturnContent(unit=u, year=2025, values=random_values(fmt, rng), cover=cover)
        write_return(returns / f"{u.code}.xlsx", fmt, content)
    return roster, returns


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--per-client", type=int, default=10)
    args = ap.parse_args()
    print("one clerk at a time (the latency a clerk sees on a quiet server):")
    run(1, 20)
    print(f"\n{args.clients} clerks at once (the busiest hour before the deadline):")
    run(args.clients, args.per_client)


def run(clients: int, per_client: int) -> None:
    import httpx

    from toolkit.archive import Archive
    from toolkit.web.keys import issue_links

    n = clients * per_client
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        roster, returns = _make_county(tmp, n)
        db = tmp / "nianbao.db"
        with Archive.open(str(db)) as a:
            a.load_roster(roster, 2025)
            links = {x.unit_code: x.token for x in issue_links(a, 2025)[0]}
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "toolkit.cli", "serve", "--year", "2025", "--port", str(port), "--db", str(db)],
            cwd=ROOT,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        files = sorted(returns.glob("*.xlsx"))

        def client(batch: list[Path]) -> list[float]:
            times = []
            with httpx.Client(base_url=base, timeout=60, headers={"origin": base}) as c:  # a browser sends Origin
                for path in batch:
                    link = f"/u/{links[path.stem]}"
                    page = c.get(link)
                    t = time.perf_counter()
                    form = {"csrf": re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)}
                    r = c.post(link + "/upload", data=form, files={"files": (path.name, path.read_bytes())})
                    times.append(time.perf_counter() - t)
                    assert r.status_code == 200 and "刚才上传的文件" in r.text, r.text[-500:]
            return times

        batches = [files[i::clients] for i in range(clients)]
        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(clients) as pool:
            times = [t for ts in pool.map(client, batches) for t in ts]
        wall = time.perf_counter() - t0
        server.terminate()
        server.wait(10)
        with Archive.open(str(db)) as a:
            states = a.status(2025)
            stored = sum(1 for s in states if s.submission_id)
            problems = a.verify()
        times.sort()
        p = lambda q: times[min(len(times) - 1, int(q * len(times)))]  # noqa: E731
        print(f"{clients} clients × {per_client} returns = {n} uploads in {wall:.1f} s")
        print(f"upload → findings shown: p50 {statistics.median(times):.3f} s, p95 {p(0.95):.3f} s, max {times[-1]:.3f} s")
        print(f"stored: {stored} of {n} units (exactly once each: {stored == n}); verify: {problems or 'all bytes as received'}")
        print(f"target p95 ≤ 0.5 s: {'met' if p(0.95) <= 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
