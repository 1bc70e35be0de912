"""Issue 19: the web server's long-lived workers (check.WorkerPool). Batches share the processes;
a file that kills a worker still becomes a finding of its own, the pool is replaced, later batches
run; workers forked on behalf of a thread that ends stay alive; close stops them."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES

from toolkit import check as check_mod
from toolkit import pool as pool_mod
from toolkit.check import CheckOptions, WorkerPool, iter_sources
from toolkit.inputs import collect
from toolkit.reader import read_bytes

GOOD = sorted((SAMPLES / "returns").glob("*.xlsx"))


def _abort_on_boom(data, name, path="", mtime=0.0, careful=False):
    if "boom" in name:
        os.kill(os.getpid(), signal.SIGKILL)
    return read_bytes(data, name, path, mtime, careful)


def _gone(pids: list[int], within: float = 5.0) -> bool:
    """True once none of ``pids`` is a live child of this process. Asked of the kernel, not of
    multiprocessing: a Process object may report a worker alive forever when its exit status was
    collected through another handle, and a pid may meanwhile be reused by an unrelated process."""
    deadline = time.monotonic() + within
    while True:
        live = [p for p in pids if _live_child(p)]
        if not live or time.monotonic() > deadline:
            return not live
        time.sleep(0.05)


def _live_child(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False  # no such process
    state, ppid = fields[0], int(fields[1])
    return ppid == os.getpid() and state not in ("Z", "X")


def _check(folder, pool):
    return list(iter_sources(list(collect([folder])), CheckOptions(year=2025), pool=pool))


def test_shared_workers_survive_threads_and_crashes(tmp_path, monkeypatch):
    ok, bad = tmp_path / "ok", tmp_path / "bad"
    ok.mkdir()
    bad.mkdir()
    for p in GOOD[:3]:
        shutil.copy(p, ok / p.name)
        shutil.copy(p, bad / p.name)
    shutil.copy(GOOD[4], bad / "boom.xlsx")
    monkeypatch.setattr(check_mod, "read_bytes", _abort_on_boom)  # workers are forked: they inherit it
    pool = WorkerPool(2)
    try:
        out: list = []
        t = threading.Thread(target=lambda: out.append(_check(ok, pool)))  # like a request thread that then ends
        t.start()
        t.join()
        first = pool.executor()
        assert [r.readable for r in out[0]] == [True] * 3
        again = _check(ok, pool)  # the same processes, after the thread that started them is gone
        assert pool.executor() is first and [r.readable for r in again] == [True] * 3
        by_name = {r.provenance.name: r for r in _check(bad, pool)}
        assert [f.code for f in by_name["bad/boom.xlsx"].findings] == ["file-unreadable"]
        assert "崩溃" in by_name["bad/boom.xlsx"].findings[0].message
        assert all(r.readable for n, r in by_name.items() if "boom" not in n) and len(by_name) == 4
        after = _check(ok, pool)  # a fresh pool replaced the broken one
        assert pool.executor() is not first and [r.readable for r in after] == [True] * 3
        current = pool.executor()
        os.kill(next(iter(current._processes)), signal.SIGKILL)  # broken between two batches (another batch's file)
        current._executor_manager_thread.join(5)
        assert current._broken  # submit now raises at once: the batch must treat it like a dead worker
        assert [r.readable for r in _check(ok, pool)] == [True] * 3
        pids = list(pool.executor()._processes)
    finally:
        pool.close()
    assert pids and _gone(pids)


def test_a_dropped_pool_stops_its_workers():
    import gc

    pool = WorkerPool(1)
    _check(SAMPLES / "returns", pool)
    pids = list(pool.executor()._processes)
    del pool
    gc.collect()
    assert pids and _gone(pids)


FORK_WITH_GARBAGE = """
import gc, threading
from toolkit.pool import new_pool, stop_pool

held = threading.Lock()


class StoppedPool:  # like an old pool that the parent has not collected yet
    def __init__(self):
        self.me = self

    def __del__(self):
        with held:  # like its callback taking its manager thread's lock
            pass


gc.disable()
StoppedPool()
held.acquire()  # held by a thread of the parent at the moment of the fork
pool = new_pool(1, gc.collect)  # the worker collects garbage before its first task
print(pool.submit(int, "7").result(timeout=20))
held.release()
stop_pool(pool)
"""


def test_a_worker_never_frees_what_it_inherited():
    """Found as a batch that hung for good: a worker's garbage collector freed a stopped pool
    inherited from the parent, whose callback waited on a lock held at the moment of the fork."""
    import subprocess
    import sys

    from conftest import ROOT

    try:
        done = subprocess.run([sys.executable, "-c", FORK_WITH_GARBAGE], cwd=ROOT, capture_output=True, text=True, timeout=40)
    except subprocess.TimeoutExpired:
        raise AssertionError("the worker hung in an inherited object's finaliser") from None
    assert done.returncode == 0 and done.stdout.strip() == "7", done.stderr


def _hang_on(data, name, path="", mtime=0.0, careful=False):
    if Path(name).name == "hang.xlsx":
        threading.Event().wait()  # a reader that never returns
    return read_bytes(data, name, path, mtime, careful)


@pytest.mark.slow
def test_a_file_that_hangs_a_worker_becomes_a_finding(tmp_path, monkeypatch):
    """A stuck worker never holds a batch for good: after no progress for a while the files in
    flight are read again one by one, each with a time limit; the one that hangs again becomes a
    finding, the others are read as usual — with a batch's own pool and with the server's."""
    for p in GOOD[:3]:
        shutil.copy(p, tmp_path / p.name)
    shutil.copy(GOOD[3], tmp_path / "hang.xlsx")
    monkeypatch.setattr(check_mod, "read_bytes", _hang_on)  # the workers are forked: they inherit it
    monkeypatch.setattr(pool_mod, "FILE_SECONDS", 2.0)
    shared = WorkerPool(1)
    try:
        for pool in (None, shared):
            out: list = []
            sources = list(collect([tmp_path]))
            run = threading.Thread(
                target=lambda: out.append(list(iter_sources(sources, CheckOptions(year=2025), workers=1, pool=pool))),  # noqa: B023
                daemon=True,
            )
            run.start()
            run.join(60)
            assert not run.is_alive(), "the batch hung"
            reports = out[0]
            by_name = {r.provenance.name.split("/")[-1]: r for r in reports}
            hung = by_name["hang.xlsx"]
            assert [f.code for f in hung.findings] == ["file-unreadable"] and "超过2秒" in hung.findings[0].message
            assert [r.readable for n, r in sorted(by_name.items()) if n != "hang.xlsx"] == [True] * 3
    finally:
        shared.close()


@pytest.mark.slow
def test_a_published_report_that_hangs_the_audit_becomes_a_finding(tmp_path, monkeypatch):
    """The same for `audit`: a text whose reading never ends is a finding, the other reports are read."""
    from toolkit.published import audit as audit_mod

    real = audit_mod.audit_one

    def hang_on(src, opts):
        if Path(src.name).name == "hang.txt":
            threading.Event().wait()
        return real(src, opts)

    seed = ROOT / "tests" / "published"
    texts = sorted(seed.glob("*.source.txt"))[:3]
    for t in texts:
        shutil.copy(t, tmp_path / t.name)
    shutil.copy(texts[0], tmp_path / "hang.txt")
    monkeypatch.setattr(audit_mod, "audit_one", hang_on)  # the workers are forked: they inherit it
    monkeypatch.setattr(pool_mod, "FILE_SECONDS", 2.0)
    out: list = []
    run = threading.Thread(target=lambda: out.append(audit_mod.audit([tmp_path], workers=1)), daemon=True)
    run.start()
    run.join(60)
    assert not run.is_alive(), "the audit hung"
    by_name = {Path(r.provenance.name).name: r for r in out[0].reports}
    assert "超过2秒" in " ".join(f.message for f in by_name["hang.txt"].findings)
    assert all(r.readable for n, r in by_name.items() if n != "hang.txt") and len(by_name) == 4


def test_a_broken_shared_pool_wakes_every_batch_waiting_on_it():
    """When one batch finds the server's pool broken or stuck, the files other batches have queued
    on it fail at once (each batch then reads them again itself); cancelled, they would never wake
    their batch's wait."""
    import time
    from concurrent.futures import wait

    pool = WorkerPool(1)
    try:
        ex = pool.executor()
        ex.submit(time.sleep, 30)  # the stuck file of one batch
        queued = [ex.submit(int, "1") for _ in range(5)]  # another batch's files behind it
        time.sleep(0.3)
        pool.broken(ex)
        done, waiting = wait(queued, timeout=10)
        assert not waiting, "a batch would wait on files that will never be read"
        assert not any(f.cancelled() for f in done)
    finally:
        pool.close()


def test_batches_collect_less_often_and_restore_the_thresholds(tmp_path):
    """While any batch runs (threads of the web server overlap) young objects are collected every
    BATCH_GC_THRESHOLD allocations; once the last batch ends, the thresholds are as they were."""
    import gc

    before = gc.get_threshold()
    sources = list(collect(GOOD[:3]))
    opts = CheckOptions(year=2025)
    seen: list[tuple[int, ...]] = []
    first = iter_sources(sources, opts, workers=1)
    seen.append(gc.get_threshold())  # a generator: nothing has run yet
    next(first)
    seen.append(gc.get_threshold())
    inner = threading.Thread(target=lambda: seen.append(max(gc.get_threshold() for _ in iter_sources(sources, opts, workers=1))))
    inner.start()
    inner.join()
    seen.append(gc.get_threshold())  # the other batch ended, this one has not
    list(first)
    seen.append(gc.get_threshold())
    assert seen[0] == before and seen[-1] == before
    assert seen[1][0] == seen[2][0] == seen[3][0] == max(pool_mod.BATCH_GC_THRESHOLD, before[0])
    assert seen[1][1:] == before[1:]


def test_collections_restored_when_a_batch_fails():
    import gc

    before = gc.get_threshold()
    try:
        with pool_mod.fewer_collections():
            assert gc.get_threshold()[0] == max(pool_mod.BATCH_GC_THRESHOLD, before[0])
            raise KeyError("boom")
    except KeyError:
        pass
    assert gc.get_threshold() == before


def _open_sockets() -> int:
    import stat

    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            count += stat.S_ISSOCK(os.fstat(int(name)).st_mode)
        except OSError:
            pass
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="workers are forked on Linux only")
def test_a_worker_holds_none_of_the_servers_connections():
    """A server forks its checkers while browsers are connected: a connection the server closes must
    really close (the browser's next request on it would otherwise wait for ever), so a worker keeps
    no socket it inherited."""
    import socket

    listening = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listening.getsockname())
    accepted, _ = listening.accept()
    pool = pool_mod.new_pool(1)
    try:
        assert _open_sockets() >= 3  # the parent still has them
        assert pool.submit(_open_sockets).result(timeout=120) == 0
        accepted.close()  # the server ends the connection: the client sees it end
        client.settimeout(60)
        assert client.recv(1) == b""
    finally:
        pool_mod.stop_pool(pool)
        for s in (client, listening):
            s.close()
