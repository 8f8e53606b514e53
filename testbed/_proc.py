"""Subprocess and socket helpers shared by the test bed."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Sequence


def run(
    argv: Sequence[str], timeout: float = 120, check: bool = True, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run argv with a timeout, capturing text output; raise with stderr on failure."""
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc


def free_port() -> int:
    """Return a loopback TCP port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Tell whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2
) -> float:
    """Poll predicate until true; return seconds waited or raise TimeoutError naming what."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s")
        time.sleep(interval)
    return time.monotonic() - start


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Terminate proc, escalating to SIGKILL if it ignores SIGTERM."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def pid_alive(pid: int) -> bool:
    """Tell whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
