"""Worker processes that stop when told: Ctrl-C and SIGTERM are the main process's to handle
(it then kills the workers at once), and a worker dies with its parent, so an interrupted or
killed command never leaves processes behind. ``ChunkRunner`` runs a batch on them so that one
file that crashes or hangs its reader is a finding of its own and the rest goes on."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

_STOP = {signal.SIGINT, signal.SIGTERM}
_FORKING = threading.Lock()

# The largest workbook or text the limits allow is read in seconds. A file still unread after this
# long has a worker stuck (a reader looping on a crafted file, a lock inherited at fork); the batch
# runners then read the files in flight one by one with this limit, and a file over it is a finding.
FILE_SECONDS = 120.0


CRASHED = "读取该文件时读取程序崩溃（文件可能被恶意构造）"

# The one progress protocol of every long library call (check, consolidate, import, audit, template,
# receive, verify): called once with the number of items, then with -1 as each item is finished. The
# command line's Ticker draws it; a web page or a script may count.
Progress = Callable[[int], Any] | None


def too_long() -> str:
    """The finding's detail for a file that was still being read at the limit."""
    return f"读取该文件超过{FILE_SECONDS:g}秒仍未完成，已停止读取（文件可能被恶意构造）"


def _init(initializer: Callable[..., Any] | None, initargs: tuple, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP)  # blocked by the parent while forking
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - not glibc
            pass
    if os.getppid() != parent:  # the parent was killed before the line above took effect
        os._exit(0)
    _drop_inherited_sockets()
    if initializer is not None:
        initializer(*initargs)


def _drop_inherited_sockets() -> None:
    """A forked worker gets a copy of every descriptor the parent had open: in a server, its listening
    socket, its database connections and its clients' connections. A connection the server has closed
    then stays open in the worker, so the browser's next request on it is never read and its page
    never comes. The worker reads files and talks to its parent through pipes, never sockets: every
    inherited socket is replaced by /dev/null (at the same number, so a copied socket object closing
    it later closes nothing that matters)."""
    import stat

    if not os.path.isdir("/proc/self/fd"):  # pragma: no cover - not Linux (workers are spawned there)
        return
    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            with contextlib.suppress(OSError):
                if fd != devnull and stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.dup2(devnull, fd, inheritable=False)
    finally:
        os.close(devnull)


def new_pool(workers: int, initializer: Callable[..., Any] | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A started pool. The workers are forked with Ctrl-C and SIGTERM held back, so that a signal
    arriving at that moment reaches only the main process (which then stops the pool), never a
    half-started worker (which would print a traceback)."""
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(initializer, initargs, os.getpid()))
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        return pool
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP)
    try:
        with _inherited_garbage_kept():
            started = pool.submit(int)  # forks the workers now, inside the blocked section
        started.result()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return pool


@contextlib.contextmanager
def _inherited_garbage_kept():
    """Fork with every existing object frozen, so that a worker's garbage collector never frees
    what it inherited. Otherwise a stopped pool that the parent had not yet collected is freed in
    the worker, and its callback waits on a lock that another thread of the parent held at the
    moment of the fork (the old pool's manager thread, joining its workers): the worker hangs for
    good, and with it the batch. Frozen objects are unfrozen in the parent at once; forks from
    several threads take turns, so that one's unfreeze cannot fall inside another's fork."""
    with _FORKING:
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()


_COLLECTIONS = threading.Lock()
_BATCHES = [0, (700, 10, 10)]  # batches running in this process, the thresholds before the first
BATCH_GC_THRESHOLD = 10_000


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """While a batch runs, collect young objects every 10,000 allocations instead of 700. The main
    process unpickles each result and, in ``receive``, encodes and stores it: millions of short-lived
    objects, while it keeps every report of the batch. At the default threshold the collector ran
    about 650 times for 10,000 returns and took 0.3 s of the main process's 2 s (0.1 s with this).
    Batches overlap in the web server's threads: the first one in sets, the last one out restores."""
    with _COLLECTIONS:
        if _BATCHES[0] == 0:
            _BATCHES[1] = gc.get_threshold()
            gc.set_threshold(max(BATCH_GC_THRESHOLD, _BATCHES[1][0]), *_BATCHES[1][1:])
        _BATCHES[0] += 1
    try:
        yield
    finally:
        with _COLLECTIONS:
            _BATCHES[0] -= 1
            if _BATCHES[0] == 0:
                gc.set_threshold(*_BATCHES[1])


def stop_pool(pool: ProcessPoolExecutor, cancel: bool = True) -> None:
    """Stop at once: kill the workers (no waiting on them). What has not started is cancelled, or
    with ``cancel=False`` fails with BrokenProcessPool: a pool shared by several batches must wake
    the others' waits — a cancelled future never does — so that each recovers its own files."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
    pool.shutdown(wait=False, cancel_futures=cancel)
    for proc in procs:
        try:
            proc.kill()
        except (OSError, AttributeError, ValueError):
            pass
    for proc in procs:
        try:
            proc.join(timeout=2)
        except (OSError, AttributeError, ValueError, AssertionError):
            pass
    _quiet_at_exit(manager)


class _NoWakeup:
    def wakeup(self) -> None:
        pass


def _quiet_at_exit(manager: Any) -> None:
    """At interpreter exit CPython 3.11 wakes every pool's manager thread through a pipe that the
    thread may be closing at that very moment (an OSError traceback on stderr). The workers are
    killed and the thread was woken already: it needs no second wake-up."""
    try:
        from concurrent.futures import process

        if manager is not None and manager in process._threads_wakeups:
            process._threads_wakeups[manager] = _NoWakeup()
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - another Python's internals
        pass


class ChunkRunner:
    """Keeps a few chunks of a batch in flight per worker and yields ``(index, result)`` as chunks
    finish. A worker that dies (a crash in a native reader, out of memory) breaks the pool, and a
    pool in which nothing finished for twice ``FILE_SECONDS`` has a worker stuck: either way the
    items in flight are read again one by one, each in a process of its own with that time limit
    (the one that crashes or hangs again becomes ``failed``), the pool is replaced, and the rest of
    the batch goes on. A kind of work says how to start, feed and drop its pool."""

    depth = 3  # chunks in flight per worker (a shared pool's batch keeps fewer: see check._Runner)

    def __init__(self, n: int, workers: int, chunk: int):
        self.n, self.workers, self.chunk = n, workers, chunk

    def start(self) -> ProcessPoolExecutor:
        raise NotImplementedError

    def submit(self, pool: ProcessPoolExecutor, lo: int, hi: int) -> Future:
        """Items ``lo`` to ``hi`` of the batch, as one task returning their results in order."""
        raise NotImplementedError

    def alone(self, i: int) -> tuple[ProcessPoolExecutor, Callable[..., list[Any]], tuple]:
        """A one-process pool and the task that reads item ``i`` alone."""
        raise NotImplementedError

    def failed(self, i: int, detail: str) -> Any:
        """The result standing for item ``i`` when its reader crashed or hung."""
        raise NotImplementedError

    def drop(self, pool: ProcessPoolExecutor, broken: bool) -> None:
        stop_pool(pool)

    def run(self) -> Iterator[tuple[int, Any]]:
        pool = self.start()
        starts = list(range(0, self.n, self.chunk))[::-1]
        flight: dict[Future, int] = {}
        try:
            while starts or flight:
                while starts and len(flight) < self.workers * self.depth:
                    i = starts.pop()
                    flight[self._submit(pool, i)] = i
                done, _ = wait(flight, timeout=FILE_SECONDS * 2, return_when=FIRST_COMPLETED)
                broken = [f for f in done if isinstance(f.exception(), BrokenProcessPool)]
                for f in done:
                    if f not in broken:
                        yield from enumerate(f.result(), start=flight.pop(f))
                if broken or not done:  # a worker died, or nothing finished for long: one is stuck
                    lost = sorted(j for i in flight.values() for j in range(i, min(i + self.chunk, self.n)))
                    flight.clear()
                    self.drop(pool, broken=True)
                    yield from self._isolate(lost)
                    pool = self.start()
        finally:
            for f in flight:  # a shared pool goes on serving others: drop what this batch no longer wants
                f.cancel()
            self.drop(pool, broken=False)

    def _submit(self, pool: ProcessPoolExecutor, i: int) -> Future:
        try:
            return self.submit(pool, i, min(i + self.chunk, self.n))
        except BrokenProcessPool as e:  # broken meanwhile (a shared pool: by another batch's file)
            failed: Future = Future()
            failed.set_exception(e)
            return failed

    def _isolate(self, lost: list[int]) -> Iterator[tuple[int, Any]]:
        for i in lost:
            pool, task, args = self.alone(i)
            try:
                yield i, pool.submit(task, *args).result(timeout=FILE_SECONDS)[0]
            except BrokenProcessPool:
                yield i, self.failed(i, CRASHED)
            except TimeoutError:
                yield i, self.failed(i, too_long())
            finally:
                stop_pool(pool)
