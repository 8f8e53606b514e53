"""Small file primitives: crash-safe JSON files and cross-process locks."""

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _tmp_name(path: Path) -> Path:
    # Unique per process and thread: gunicorn runs several of each.
    return path.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{path.name}")


def _write_tmp(path: Path, data: Any, durable: bool = True) -> Path:
    tmp = _tmp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, sort_keys=True)
            if durable:
                f.flush()
                os.fsync(f.fileno())
    except OSError:
        os.unlink(tmp)  # e.g. ENOSPC: no half-written file stays behind
        raise
    return tmp


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: Any, durable: bool = True) -> None:
    """Replace `path` atomically: readers see the old or the new file, never half.

    `durable` also survives power loss; without it a crash may keep the old file.
    """
    tmp = _write_tmp(path, data, durable)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def create_json(path: Path, data: Any) -> bool:
    """Create `path` only if absent (atomic even on NFS); False if it existed."""
    tmp = _write_tmp(path, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    fsync_dir(path.parent)
    return True


def read_json(path: str | Path) -> Any:
    """The decoded file, or None if it does not exist."""
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def remove_file(path: Path, durable: bool = True) -> None:
    """Unlink `path` (durably, unless told otherwise); a missing file is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
        if durable:
            fsync_dir(path.parent)


class LockTimeout(Exception):
    """The lock stayed held by someone else for the whole wait."""


@contextlib.contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
    """Exclusive flock on `path`, shared correctly by processes and threads.

    flock locks belong to the open file description, so each caller opens
    its own and two threads of one worker exclude each other too. The wait
    is bounded: a holder stuck on a dead server must not wedge every caller.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        _acquire(fd, time.monotonic() + timeout)
        yield
    finally:
        os.close(fd)


def _acquire(fd: int, deadline: float) -> None:
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeout from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
