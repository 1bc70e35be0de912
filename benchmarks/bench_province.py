"""A province on one server (issue 31): 100 counties × 25 units = 2,500 units on one PostgreSQL
archive, served by `nianbao serve --workers 4` on loopback.

    python benchmarks/bench_province.py --pg postgresql://postgres@127.0.0.1:5432/postgres
    python benchmarks/bench_province.py                    # the server in $NIANBAO_TEST_PG
    python benchmarks/bench_province.py --counties 10      # a city: 250 units

Builds a fresh database on the server (dropped at the end), loads the roster (the province, its
counties, their units; clean returns approved at receipt), receives every unit's return but one per
county with `nianbao receive`, re-uploads a few stored returns through their links (each worker's
checker process started, as after the first minutes of a working day), then measures:
  uploads      100 clerks, one per county, have their unit's page open; all send their file at the
               same moment (4 workers), timed from sending to the answer       target p95 < 1 s
  overview     the reviewer's 报送情况 page (signed in), 2,500 units, best of 5 / median      target < 0.5 s
  consolidate  `nianbao consolidate --db --year --force` of the province from the archive     target < 5 s
The returns are written once by the tool's own writer under benchmarks/out/province-N/ and kept.
Besides the times, the CPU the 100 uploads cost per upload, read from /proc: the server's worker
processes, their checking processes, the PostgreSQL server, and this script's clients (plain sockets,
requests built beforehand: they share the two cores with the server). On a machine shared with other
work the times move with its load, the CPU per upload much less; the last line is the least time the
server's CPU allows on this machine's cores.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench import YEAR, compile_bytecode, generate, measure, write_roster  # noqa: E402

CLI = [sys.executable, "-m", "toolkit.cli"]
PER_COUNTY = 25
KEY = "省级审核人的管理密钥-bench-0123456789"


def units(counties: int) -> list:
    """The province, its counties (县级政府) and each county's 25 units (镇 / 县级部门)."""
    from toolkit.roster import Unit

    top = Unit("980000", "测试省人民政府", "省级政府", "")
    out = [top]
    for c in range(1, counties + 1):
        county = Unit(f"98{c:04d}", f"测试省第{c:03d}县人民政府", "县级政府", top.code)
        out.append(county)
        for u in range(1, PER_COUNTY + 1):
            typ = "县级部门" if u % 3 == 0 else "镇"
            out.append(Unit(f"{county.code}{u:03d}", f"第{c:03d}县第{u:02d}单位", typ, county.code))
    return out


def pile(counties: int) -> tuple[Path, Path, list]:
    """(returns folder, roster, units) built once per size under benchmarks/out/."""
    roster_units = units(counties)
    leaves = [u for u in roster_units if len(u.code) == 9]
    out = ROOT / "benchmarks" / "out" / f"province-{counties}"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        generate(out / "returns", leaves)
        write_roster(out / "roster.csv", roster_units)
        (out / ".complete").write_text("ok\n", encoding="utf-8")
    return out / "returns", out / "roster.csv", leaves


def new_pg(server: str) -> tuple[str, object]:
    import psycopg

    name = "nb_province_" + uuid.uuid4().hex[:8]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")

    def drop() -> None:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    return f"{server.rpartition('/')[0]}/{name}", drop


def analyze(db: str) -> None:
    """VACUUM ANALYZE after the bulk load, as PostgreSQL's autovacuum does within a minute of it: the
    uploads are measured on an archive in its working state, not while autovacuum reads it."""
    import psycopg

    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(db: str, work: Path, workers: int) -> tuple[subprocess.Popen, str]:
    import httpx

    keyfile = work / "key.txt"
    keyfile.write_text(KEY, encoding="utf-8")
    port = free_port()
    args = ["serve", "--year", str(YEAR), "--port", str(port), "--db", db, "--workers", str(workers)]
    log = (work / "serve.log").open("wb")
    proc = subprocess.Popen([*CLI, *args, "--admin-key-file", str(keyfile)], cwd=ROOT, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(base + "/static/app.css", timeout=1)
            return proc, base
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise SystemExit((work / "serve.log").read_text("utf-8", "replace")) from None
            time.sleep(0.1)
    raise SystemExit("serve did not start")


class Clerk:
    """One clerk with the unit's page open in the browser (its cookie and form token), about to send
    the file. The clients are plain sockets with the request built beforehand: they run on the same
    two cores as the server, and every millisecond they spend is one the server does not get (httpx
    clients took 30–40 ms of CPU per upload here, more than the server's own work)."""

    def __init__(self, base: str, token: str, path: Path):
        import http.client

        self.port, self.token = int(base.rsplit(":", 1)[1]), token
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        conn.request("GET", f"/u/{token}", headers={"Origin": base})
        page = conn.getresponse()
        text = page.read().decode()
        conn.close()
        cookie = (page.getheader("set-cookie") or "").split(";")[0]
        csrf = re.search(r'name="csrf" value="([^"]+)"', text).group(1)
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n--{boundary}\r\n'
            f'Content-Disposition: form-data; name="files"; filename="{path.name}"\r\n'
            "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n"
        )
        self.body = head.encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        self.headers = {"Origin": base, "Cookie": cookie, "Content-Type": f"multipart/form-data; boundary={boundary}"}

    def upload(self, start: threading.Barrier | None = None) -> tuple[float, int, int]:
        """(seconds from sending the file to the answer, status, times 新收 was said)."""
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        conn.connect()
        if start is not None:
            start.wait()
        t = time.perf_counter()
        conn.request("POST", f"/u/{self.token}/upload", body=self.body, headers=self.headers)
        answer = conn.getresponse()
        text = answer.read().decode()
        seconds = time.perf_counter() - t
        conn.close()
        return seconds, answer.status, text.count("新收")


def overview_times(base: str, rounds: int = 5) -> list[float]:
    import httpx

    with httpx.Client(base_url=base, timeout=300, headers={"origin": base}) as c:
        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        assert c.post("/login", data={"csrf": csrf, "key": KEY}).status_code == 303
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            r = c.get("/")
            times.append(time.perf_counter() - t)
            assert r.status_code == 200 and "报送情况" in r.text, r.status_code
    return times


def _cpu(pid: int, children: bool = False) -> float:
    """CPU seconds of a process (with ``children``: also of its exited children it waited for)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(f) for f in fields[11 : 15 if children else 13])  # utime stime [cutime cstime]
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> list[int]:
    """A process and its descendants, now."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(c for c, pp in parent.items() if pp == pid)
    return out


def _tree_cpu(root: int) -> float:
    """CPU seconds of a process tree: the live processes, and the exited children each one waited for."""
    return sum(_cpu(pid, children=True) for pid in _tree(root)) if root else 0.0


def _postmaster(db: str) -> int:
    """The PostgreSQL server's main process, when it runs on this machine (0 otherwise)."""
    import psycopg

    with psycopg.connect(db) as conn:  # its parent read while it lives (it ends with the connection)
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            return 0


def cpu_now(server: int, postmaster: int) -> tuple[float, float, float, float]:
    """(server workers, their checking processes, PostgreSQL server, this script) CPU seconds so far.
    The workers are the supervisor's children; the checkers are theirs."""
    tree = _tree(server)
    workers = {pid for pid in tree if pid != server and _parent(pid) == server}
    checkers = [pid for pid in tree if pid != server and pid not in workers]
    own = _cpu(server, children=True) + sum(_cpu(pid, children=True) for pid in workers)
    return own, sum(_cpu(pid, children=True) for pid in checkers), _tree_cpu(postmaster), _cpu(os.getpid())


def per_worker(server: int) -> dict[int, float]:
    """CPU seconds so far of each worker process, its checking process included: how evenly the
    workers shared the uploads (the busiest one finishes last)."""
    tree = _tree(server)
    workers = [pid for pid in tree if pid != server and _parent(pid) == server and not _tracker(pid)]
    return {pid: sum(_cpu(p, children=True) for p in _tree(pid)) for pid in workers}


def _tracker(pid: int) -> bool:
    """multiprocessing's resource tracker, the supervisor's other child."""
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.95 * len(xs)))]


def upload_rows(base: str, tokens: dict, files: dict, server: int, postmaster: int, workers: int) -> list:
    """Every clerk opens the unit's page; then all send their files at the same moment (a barrier)."""
    with cf.ThreadPoolExecutor(len(files)) as pool:
        clerks = list(pool.map(lambda code: Clerk(base, tokens[code], files[code]), sorted(files)))
    start = threading.Barrier(len(clerks))
    cpu0, each0 = cpu_now(server, postmaster), per_worker(server)
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(len(clerks)) as pool:
        answers = list(pool.map(lambda clerk: clerk.upload(start), clerks))
    wall = time.perf_counter() - t0
    ms = [(b - a) * 1000 / len(clerks) for a, b in zip(cpu0, cpu_now(server, postmaster), strict=True)]
    each = sorted((cpu - each0.get(pid, 0.0) for pid, cpu in per_worker(server).items()), reverse=True)
    times = [a[0] for a in answers]
    ok = all(a[1] == 200 and a[2] == 1 for a in answers)
    cores = os.cpu_count() or 1
    floor = len(clerks) * (ms[0] + ms[1] + ms[2]) / 1000 / cores
    return [
        (
            f"{len(clerks)} uploads at once, {workers} workers",
            f"p50 {statistics.median(times):.2f} s · p95 {p95(times):.2f} s · all in {wall:.2f} s",
            "p95 < 1 s",
            f"{'met' if p95(times) < 1 else 'NOT met'}; each acknowledged once: {ok}",
        ),
        (
            "… CPU per upload",
            f"server {ms[0]:.1f} ms + checkers {ms[1]:.1f} ms + PostgreSQL {ms[2]:.1f} ms · clients {ms[3]:.1f} ms",
            "",
            f"load average {os.getloadavg()[0]:.1f}",
        ),
        (
            "… CPU of each worker (with its checker)",
            " · ".join(f"{c:.2f}" for c in each) + " s",
            "",
            "",
        ),
        (
            f"… the server's CPU for {len(clerks)} uploads on {cores} cores",
            f"{floor:.2f} s (no answer order beats it)",
            "",
            "",
        ),
    ]


def run(server: str, counties: int, workers: int) -> list[tuple[str, str, str, str]]:
    from toolkit.archive import Archive
    from toolkit.web.keys import issue_links

    returns, roster, leaves = pile(counties)
    first = {u.code for u in leaves if u.code.endswith("001")}  # one unit per county uploads through its link
    db, drop = new_pg(server)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="nianbao-province-") as tmp:
            work = Path(tmp)
            rest = work / "rest"
            rest.mkdir()
            for f in returns.glob("*.xlsx"):
                if f.name[:9] not in first:
                    os.link(f, rest / f.name)
            assert measure([*CLI, "roster", "load", str(roster), "--year", str(YEAR), "--auto-approve", "--db", db])["exit"] == 0
            t = time.perf_counter()
            rec = measure([*CLI, "receive", str(rest), "--year", str(YEAR), "--db", db])
            print(f"received {len(leaves) - len(first)} returns in {time.perf_counter() - t:.1f} s (exit {rec['exit']})")
            with Archive.open(db) as a:
                tokens = {x.unit_code: x.token for x in issue_links(a, YEAR)[0]}
            analyze(db)
            proc, base = serve(db, work, workers)
            try:
                files = {f.name[:9]: f for f in returns.glob("*.xlsx") if f.name[:9] in first}
                warm = sorted(rest.glob("*.xlsx"))[: 3 * workers]  # stored already: each worker's checker started
                with cf.ThreadPoolExecutor(len(warm)) as pool:
                    list(pool.map(lambda f: Clerk(base, tokens[f.name[:9]], f).upload(), warm))
                rows.extend(upload_rows(base, tokens, files, proc.pid, _postmaster(db), workers))
                ov = overview_times(base)
                n_units = len(units(counties)) - 1
                rows.append(
                    (
                        f"报送情况 page, {n_units} units",
                        f"best {min(ov):.2f} s · median {statistics.median(ov):.2f} s",
                        "< 0.5 s",
                        "met" if statistics.median(ov) < 0.5 else "NOT met",
                    )
                )
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
            with Archive.open(db) as a:
                t = time.perf_counter()
                stored = sum(1 for s in a.status(YEAR) if s.submission_id)
                status_s = time.perf_counter() - t
            rows.append(("of which Archive.status (library)", f"{status_s:.2f} s", "", ""))
            all_in = "met" if stored == len(leaves) else "NOT met"
            rows.append(("units with a stored return", f"{stored} of {len(leaves)}", "all", all_in))
            out = work / "汇总.xlsx"
            con = measure([*CLI, "consolidate", "--db", db, "--year", str(YEAR), "--out", str(out), "--force"])
            rows.append(
                (
                    "consolidate the province (CLI, fresh process)",
                    f"{con['seconds']:.2f} s (exit {con['exit']}, peak {con['peak_rss_mb']:.0f} MB)",
                    "< 5 s",
                    "met" if con["seconds"] < 5 else "NOT met",
                )
            )
    finally:
        drop()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", default=os.environ.get("NIANBAO_TEST_PG"), help="URL of a PostgreSQL server")
    ap.add_argument("--counties", type=int, default=100)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    if not args.pg:
        raise SystemExit("give --pg postgresql://… (or set NIANBAO_TEST_PG)")
    compile_bytecode()
    rows = run(args.pg, args.counties, args.workers)
    print(f"\nprovince: {args.counties} counties × {PER_COUNTY} units, PostgreSQL, {os.cpu_count()} cores")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in [("measure", "result", "target", ""), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
