"""A stand-in for a container: a process in its own mount namespace with a bind mount."""

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def user_of(source: Path, target: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process that has `source` bind-mounted on `target` in a private namespace."""
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f'mount --bind "{source}" "{target}" && exec sleep 600'],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while f" {target} " not in _mountinfo(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, "bind mount not made"
            time.sleep(0.02)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _mountinfo(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            return f.read()
    except OSError:
        return ""
