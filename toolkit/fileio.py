"""Atomic output and safe names: a crash never leaves a half-written file."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import unicodedata
from pathlib import Path

_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Every file written in this process, so an interrupted command can say what it left behind.
WRITTEN: list[Path] = []


OWNER_ONLY = 0o600  # files holding links, keys or the archive: no other user of the machine may read them


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target. ``mode``:
    the new file's permissions (e.g. ``OWNER_ONLY``; the temporary file is 0600 until then); by
    default what the user's umask gives."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = ""
    try:
        with _signals_held():  # a Ctrl-C never falls between creating the temporary file and knowing its name
            fd, tmp = tempfile.mkstemp(prefix=".~nianbao-", suffix=".part", dir=path.parent)  # created 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, (0o666 if mode is None else mode) & ~_umask())
        os.replace(tmp, path)
        if not path.parent.name.startswith(".~nianbao-stage-"):
            WRITTEN.append(path)
    except BaseException as e:
        try:
            if tmp:
                os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and not e.filename:  # a full disk names no file by itself: name ours
            raise OSError(e.errno, e.strerror or str(e), str(_final(path))) from e
        raise


def _final(path: Path) -> Path:
    """The place the user asked for: a file being staged is named by its final folder."""
    if path.parent.name.startswith(".~nianbao-stage-"):
        return path.parent.parent / path.name
    return path


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def create_owner_only(path: Path) -> bool:
    """Create an empty file readable and writable by its owner only, unless it exists (True when
    created): a database file made so before SQLite opens it keeps that mode, and SQLite gives its
    -wal, -shm and -journal files the mode of the database file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), OWNER_ONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def safe_filename(text: str, max_len: int = 80, max_bytes: int = 180) -> str:
    """A file-name part that is valid on Windows, never a path, never a reserved device name, and
    short enough in bytes (UTF-8: 3 per Chinese character) that a suffix still fits in 255."""
    text = str(text).encode("utf-8", "replace").decode("utf-8")  # undecodable names carry surrogates
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r'[\x00-\x1f\x7f<>:"/\\|?*]', "_", text)
    text = re.sub(r"\s+", " ", text).strip().strip(".").strip()
    text = text.replace("..", "_")
    if not text:
        text = "未命名"
    if text.split(".")[0].upper() in _RESERVED:
        text = "_" + text
    text = text[:max_len]
    while len(text.encode("utf-8")) > max_bytes:
        text = text[:-1]
    return text


_STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
# Staging folders of this process not yet removed, with the thread that made each. ``remove_staging``
# removes what is left when a command ends, however it ends: a Ctrl-C may land where no ``with`` or
# ``finally`` covers it yet (between creating the folder and entering the ``with`` block).
STAGING: dict[Path, int] = {}
_STAGING_LOCK = threading.Lock()


class Staging:
    """Write a set of output files so that the folder ends up with the old set or the new complete
    set, never a mixture: files are written into a hidden folder beside their final place and
    moved in together at the end, with Ctrl-C and SIGTERM held back during the moves."""

    def __init__(self, final_dir: Path):
        self.final_dir = Path(final_dir)
        self.final_dir.mkdir(parents=True, exist_ok=True)
        with _signals_held():  # the folder is on record before any signal can stop us
            self.dir = Path(tempfile.mkdtemp(prefix=".~nianbao-stage-", dir=self.final_dir))
            with _STAGING_LOCK:
                STAGING[self.dir] = threading.get_ident()
        self.names: list[str] = []

    def path(self, name: str) -> Path:
        """Where to write ``name`` now (inside the hidden folder)."""
        self.names.append(name)
        return self.dir / name

    def commit(self) -> list[Path]:
        with _signals_held():
            out = []
            for name in self.names:
                if (self.dir / name).exists():
                    os.replace(self.dir / name, self.final_dir / name)
                    out.append(self.final_dir / name)
                    WRITTEN.append(self.final_dir / name)
            _fsync_dir(self.final_dir)
        self.abort()
        return out

    def abort(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)
        if not self.dir.exists():
            with _STAGING_LOCK:
                STAGING.pop(self.dir, None)

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.abort()


def remove_staging() -> None:
    """Remove the staging folders this thread left (a command stopped mid-way): nothing hidden and
    half-written stays in the user's folders. The command line calls it as a command ends; folders
    other threads are still using (a server's uploads) are theirs to finish."""
    import shutil

    me = threading.get_ident()
    with _STAGING_LOCK:
        left = [d for d, owner in STAGING.items() if owner == me]
    for d in left:
        shutil.rmtree(d, ignore_errors=True)
        if not d.exists():
            with _STAGING_LOCK:
                STAGING.pop(d, None)


@contextlib.contextmanager
def _signals_held():
    """Hold Ctrl-C and SIGTERM back while a set of files is moved into place (or a temporary file or
    folder is made and put on record, so that its cleanup knows of it), then deliver them.
    Masking alone is not enough: a process-directed signal may land on another thread (a progress
    bar's refresher), and Python then runs its handler in the main thread mid-loop; so the handlers
    themselves are swapped for a recorder while the moves run."""
    import signal

    stops = [getattr(signal, s) for s in _STOP_SIGNALS if hasattr(signal, s)]
    pending: list[int] = []
    swapped: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in stops:
            if signal.getsignal(sig) is not None:  # None: a handler set outside Python, left as it is (masked below)
                swapped[sig] = signal.signal(sig, lambda signum, frame: pending.append(signum))
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(stops)) if hasattr(signal, "pthread_sigmask") else None
    try:
        yield
    finally:
        if old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for sig, handler in swapped.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(pending):
            signal.raise_signal(sig)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
