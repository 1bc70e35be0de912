"""Running the page under uvicorn so that slow or abusive connections cannot stop it.

uvicorn's h11 protocol has no deadline for a request's headers or body (only for an idle keep-alive
connection), and it accepts connections until the process runs out of file descriptors; then every
accept and every page fails, each failure logging a traceback. Here, minimally on top of uvicorn:

- a request must arrive whole in time: its headers within ``HEADER_SECONDS`` of the connection (or of
  the previous answer), its body within ``BODY_SECONDS`` more; otherwise the connection is closed;
- at most ``cap`` connections (the descriptor limit less a reserve for the archive, the workers'
  pipes and uploads' temporary files): a new one beyond it closes the oldest connection that has not
  sent a complete request, so requests that arrive whole are still answered;
- errors are logged once per kind per minute, not once per connection.

``serve --workers N`` (``run_workers``) runs N such processes on one listening socket under uvicorn's
own supervisor (it restarts a worker that dies and stops them all on Ctrl-C or SIGTERM). The guards
above are per process: each worker has its own deadlines and connection cap (N times as many
connections in all, each process within its own descriptor limit). What the processes must agree on
— sessions, CSRF tokens, the per-unit turn, the hourly and login counts — is in the archive.

The event loop is uvloop where it is installed (a dependency except on Windows; uvicorn's
``loop="auto"``): measured here, a third less CPU on the loop per upload than asyncio's own.
"""

from __future__ import annotations

import contextlib
import logging
import re
import resource
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_SECONDS = 15.0  # a browser sends its headers at once; this is for a slow mobile link
BODY_SECONDS = 120.0  # 20 MB (the largest request) over a slow LAN link
KEEP_ALIVE_SECONDS = 5  # uvicorn's default: an idle connection between requests
MAX_HEADER_BYTES = 16 * 1024  # h11's buffer for an incomplete request line and headers
FD_RESERVE = 128  # descriptors kept for the archive, worker pipes, temporary files and logs
MAX_CONNECTIONS = 4096  # at most, whatever the descriptor limit (each holds a buffer)
LOG_EVERY = 60.0  # seconds: one line per kind of error


def connection_cap(reserve: int = FD_RESERVE) -> int:
    """Connections this process may hold: its descriptor limit less the reserve."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, soft - reserve))


class Waiting:
    """The connections that have not yet sent a complete request, oldest first."""

    def __init__(self, cap: int):
        self.cap = cap
        self.order: OrderedDict[Any, None] = OrderedDict()

    def make_room(self, connections: set, newcomer: Any) -> bool:
        """Close the oldest waiting connections until ``connections`` fits the cap; False when the
        newcomer itself must go (every other connection is busy answering a request)."""
        while len(connections) > self.cap:
            victim = next((c for c in self.order if c is not newcomer), None)
            if victim is None:
                return False
            self.order.pop(victim, None)
            connections.discard(victim)
            victim.transport.close()
        return True


def _phase(cycle: Any) -> str:
    """Where a connection is: waiting for a request's headers, for its body, or being answered."""
    if cycle is None or cycle.response_complete:
        return "head"
    return "body" if cycle.more_body else "answer"


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline per request and the connection cap (``waiting`` is
    set on the subclass that ``guarded_protocol`` makes for one server)."""

    waiting: Waiting
    _timer: Any = None
    _phase = ""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()
        if not self.waiting.make_room(self.connections, self):
            self.waiting.order.pop(self, None)
            self.connections.discard(self)
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.waiting.order.pop(self, None)
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def _watch(self) -> None:
        """Arm the deadline of the phase the connection is in (none while it is being answered)."""
        phase = _phase(self.cycle)
        if phase == self._phase or self.transport.is_closing():
            return
        self._phase = phase
        self._disarm()
        self.waiting.order.pop(self, None)
        if phase == "answer":
            return
        self.waiting.order[self] = None  # newest last
        self._timer = self.loop.call_later(HEADER_SECONDS if phase == "head" else BODY_SECONDS, self._too_slow)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _too_slow(self) -> None:
        self._timer = None
        self.waiting.order.pop(self, None)
        if not self.transport.is_closing():
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """A request h11 cannot parse (a malformed request line, a bad Content-Length, two Host
        headers) never reaches the page: answer it as the page would, a Chinese page with the
        security headers, instead of uvicorn's English text."""
        import h11

        from .app import security_headers

        body = BAD_REQUEST_PAGE.encode("utf-8")
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *security_headers(self.scheme == "https"),
        ]
        try:
            for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body)):
                self.transport.write(self.conn.send(event))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:  # h11 will not answer in this state (a response already begun)
            pass
        self.transport.close()


BAD_REQUEST_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>无法完成 · 政府信息公开工作年度报告 报送</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body><main><h1>无法完成</h1>
<p class="error">请求的格式不对，服务器无法识别。请从县（旗、区）政务公开办发给您的链接或本网页上重新操作。</p>
<p class="code"><small>（代码 400）</small></p></main></body></html>
"""


def guarded_protocol(cap: int) -> type:
    """The protocol class for one server: its own registry of waiting connections."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"waiting": Waiting(cap)})


class OncePerMinute(logging.Filter):
    """Lets one record of a kind (logger, message, exception type and errno) through per minute;
    the next one that passes says how many were held back. A flood of connections that all fail
    alike ("Too many open files") is then a few lines, not a disk full of tracebacks."""

    MAX_KINDS = 256

    def __init__(self, every: float = LOG_EVERY):
        super().__init__()
        self.every = every
        self.kinds: dict[tuple, list[float | int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        kind = (record.name, record.levelno, str(record.msg)[:200], type(exc).__name__, getattr(exc, "errno", None))
        now = time.monotonic()
        seen = self.kinds.get(kind)
        if seen is not None and now - seen[0] < self.every:
            seen[1] += 1
            return False
        if len(self.kinds) >= self.MAX_KINDS:
            self.kinds.clear()
        held = int(seen[1]) if seen is not None else 0
        self.kinds[kind] = [now, 0]
        if held:
            record.msg = f"{record.msg} (and {held} more like it in the last minute, not logged)"
        return True


def quiet_repeats() -> OncePerMinute:
    """Install the filter on the loggers a flood reaches: uvicorn's and asyncio's."""
    once = OncePerMinute()
    for name in ("uvicorn.error", "asyncio", "nianbao.web"):
        logging.getLogger(name).addFilter(once)
    return once


def run(app: Any, host: str, port: int, **options: Any) -> None:
    """``uvicorn.run`` with the guards above; ``options`` go to uvicorn (e.g. ssl_certfile)."""
    import uvicorn

    cap = connection_cap()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        http=guarded_protocol(cap),  # the cap, not uvicorn's limit_concurrency (an English 503 without our headers)
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        **options,
    )
    quiet_repeats()  # after Config(), which configures uvicorn's loggers
    server = uvicorn.Server(config)
    try:
        server.run()
    except KeyboardInterrupt:  # as uvicorn.run
        pass
    if not server.started:
        import sys

        sys.exit(3)  # as uvicorn.run: it could not start


# ---------------------------------------------------------------- serve --workers


class GuardedProtocols:
    """uvicorn's ``http`` for worker processes: the supervisor sends the configuration to each worker
    by pickling it, which a class made by ``guarded_protocol`` does not survive; this makes that
    class in the worker, once, so each worker has its own registry of waiting connections."""

    def __init__(self, cap: int):
        self.cap = cap
        self._cls: type | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"cap": self.cap, "_cls": None}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._cls is None:
            self._cls = guarded_protocol(self.cap)
        return self._cls(*args, **kwargs)


class WorkerApp:
    """The page of one worker process, made in that process (uvicorn's app factory): each worker
    opens its own connections to the archive."""

    def __init__(self, config: Any):
        self.config = config

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled as the worker process starts. Ctrl-C in the terminal reaches every process of
        the group: the worker stops by uvicorn's handler (which takes SIGINT over while it serves)
        and then must not end in Python's KeyboardInterrupt traceback; the supervisor stops it."""
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # held while it started (``_sigint_held``)
        _die_with_parent()
        self.__dict__.update(state)

    def __call__(self) -> Any:
        import sys

        from .app import create_app

        quiet_repeats()
        try:
            return create_app(self.config)
        except Exception as e:  # the archive went away since serve's checks: say so, no traceback
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"错误：报送网页的工作进程无法启动（{detail}）。请检查档案库数据库后重新运行 nianbao serve。", file=sys.stderr)
            sys.exit(STARTUP_FAILURE)


def _die_with_parent() -> None:
    """Linux: SIGTERM to this worker when the supervisor dies, even by SIGKILL (a worker left behind
    would go on serving the port with nobody to stop it). Elsewhere nothing."""
    import os
    import signal

    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() == 1:  # the supervisor died before the call
        os.kill(os.getpid(), signal.SIGTERM)


PR_SET_PDEATHSIG = 1
STARTUP_FAILURE = 3  # as uvicorn: a worker that cannot start stops the supervisor
HEALTHCHECK_SECONDS = 30  # a worker that does not answer the supervisor for this long is replaced (uvicorn: 5)


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """SIGINT held back while the supervisor starts workers: a new worker begins with it held (a
    process's signal mask survives fork and exec) until ``WorkerApp`` ignores it, so a Ctrl-C while a
    worker is still importing does not end it in a KeyboardInterrupt traceback; the supervisor gets
    the held signal as soon as the workers are started, and stops them."""
    import signal
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()  # started later, it would unblock SIGINT as it starts (multiprocessing's own way)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


class SupervisorInChinese(logging.Filter):
    """uvicorn's supervisor reports its workers in English (the county's terminal shows them): the
    lines it writes about a worker that died or could not start, said in Chinese."""

    SAID = (
        (r"Child process \[(\d+)\] failed to start, stopping the parent process\.", "工作进程 {} 无法启动，报送网页已停止。"),
        (r"Child process \[(\d+)\] died", "工作进程 {} 意外退出，已另起一个接替。"),
        (r"New child process \[(\d+)\] was not ready in time.*", "新的工作进程 {} 没有按时就绪，仍由原来的进程服务。"),
    )

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        for pattern, chinese in self.SAID:
            if m := re.fullmatch(pattern, text):
                record.msg, record.args = chinese.format(m.group(1)), ()
        return True


def _supervisor(config: Any, sock: Any) -> Any:
    """uvicorn's Multiprocess, remembering which signal stopped it (it swallows the signal; ``serve``
    exits 130 for Ctrl-C and 143 for SIGTERM like every command)."""
    import signal

    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        stopped_by: int | None = None

        def init_processes(self) -> None:
            with _sigint_held():
                super().init_processes()

        def restart_all(self) -> None:
            with _sigint_held():
                super().restart_all()

        def keep_subprocess_alive(self) -> None:
            with _sigint_held():
                super().keep_subprocess_alive()

        def handle_int(self) -> None:
            self.stopped_by = self.stopped_by or signal.SIGINT
            super().handle_int()

        def handle_term(self) -> None:
            self.stopped_by = self.stopped_by or signal.SIGTERM
            super().handle_term()

    return Supervisor(config, sockets=[sock])


def run_workers(web_config: Any, workers: int, host: str, port: int, **options: Any) -> None:
    """N worker processes of the page on one socket (``serve --workers``); ``web_config`` is the
    page's WebConfig (each worker makes its app from it), ``options`` go to uvicorn."""
    import signal
    import sys

    import uvicorn
    from uvicorn.supervisors.multiprocess import SIGNALS

    config = uvicorn.Config(
        WorkerApp(web_config),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
        log_level="warning",
        http=GuardedProtocols(connection_cap()),
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        **options,
    )
    quiet_repeats()
    logging.getLogger("uvicorn.error").addFilter(SupervisorInChinese())
    before = {sig: signal.getsignal(sig) for sig in SIGNALS}
    sock = config.bind_socket()
    supervisor = _supervisor(config, sock)
    try:
        supervisor.run()
    finally:
        sock.close()
        for sig, handler in before.items():
            if handler is not None:  # None: a handler not set from Python, left as it is
                signal.signal(sig, handler)
    if supervisor.stopped_by:
        signal.raise_signal(supervisor.stopped_by)  # the command's own handler: exit 130 / 143
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        sys.exit(STARTUP_FAILURE)
