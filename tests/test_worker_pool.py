"""Issue 19: the web server's long-lived workers (check.WorkerPool). Batches share the processes;
a file that kills a worker still becomes a finding of its own, the pool is replaced, later batches
run; workers forked on behalf of a thread that ends stay alive; close stops them."""

from __future__ import annotations

import os
import shutil
import signal
import threading

from conftest import SAMPLES

from toolkit import check as check_mod
from toolkit.check import CheckOptions, WorkerPool, iter_sources
from toolkit.inputs import collect
from toolkit.reader import read_bytes

GOOD = sorted((SAMPLES / "returns").glob("*.xlsx"))


def _abort_on_boom(data, name, path="", mtime=0.0):
    if "boom" in name:
        os.kill(os.getpid(), signal.SIGKILL)
    return read_bytes(data, name, path, mtime)


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
        procs = list(pool.executor()._processes.values())
    finally:
        pool.close()
    for p in procs:
        p.join(5)
        assert not p.is_alive()


def test_a_dropped_pool_stops_its_workers():
    import gc

    pool = WorkerPool(1)
    _check(SAMPLES / "returns", pool)
    procs = list(pool.executor()._processes.values())
    del pool
    gc.collect()
    for p in procs:
        p.join(5)
        assert not p.is_alive()
