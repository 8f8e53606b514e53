"""Fencing: stop the processes on this host that use a volume it no longer holds.

A container sees its volume as a bind mount in its own mount namespace:
the same filesystem (major:minor) as the share, rooted at the volume's
directory (NFS shows that root as "/" and the volume's path in the mount
source, `server:/export/volume`, instead). So the users of a volume are
the processes whose namespace has such a mount, found through /proc
without asking dockerd (which may be the thing that is stuck).
"""

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from nfsvol.host import mountinfo
from nfsvol.host.dockerd import start_time

log = logging.getLogger("nfsvol.host.fence")


class Fencer:
    """Finds and kills the processes using a directory through a bind mount."""

    def __init__(
        self,
        proc: str = "/proc",
        kill: Callable[[int, int], None] = os.kill,
        sysrq: str = "/proc/sysrq-trigger",
    ) -> None:
        self._proc = Path(proc)
        self._kill = kill
        self._sysrq = sysrq

    def start_time(self, pid: int) -> str | None:
        """When process `pid` started, or None if it is gone (or not ours to see)."""
        return start_time(pid, str(self._proc))

    def pids_using(self, path: str) -> list[int]:
        """PIDs in other mount namespaces that have `path` (or below it) mounted."""
        own = mountinfo.read(str(self._proc / "self" / "mountinfo"))
        holder = _containing_mount(own, path)
        if holder is None:
            return []
        rel = os.path.relpath(path, holder.mount_point)
        target = os.path.normpath(os.path.join(holder.root, rel))
        source = f"{holder.source.rstrip('/')}/{rel}" if holder.fstype.startswith("nfs") else ""
        own_ns = _namespace(self._proc / "self")
        verdicts: dict[str, bool] = {}  # namespace -> uses the volume; read once each
        pids = []
        for entry in self._proc.iterdir():
            if not entry.name.isdigit():
                continue
            ns = _namespace(entry)
            if ns is None or ns == own_ns:
                continue
            if ns not in verdicts:
                verdicts[ns] = _mounts(entry, holder.device, target, source)
            if verdicts[ns]:
                pids.append(int(entry.name))
        return sorted(pids)

    def stop(self, path: str, wait: float = 0.0) -> list[int]:
        """SIGKILL every user of `path`, give them `wait` seconds to exit; their PIDs.

        The wait matters on NFS: a dying process flushes its files as it
        closes them, and the caller must abort those requests after that.
        """
        pids = self.pids_using(path)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                self._kill(pid, signal.SIGKILL)
        self.wait(pids, wait)
        return pids

    def wait(self, pids: list[int], seconds: float) -> list[int]:
        """Wait up to `seconds` for `pids` to exit; those still running."""
        deadline = time.monotonic() + seconds
        while (left := self.alive(pids)) and time.monotonic() < deadline:
            time.sleep(0.02)
        return left

    def alive(self, pids: list[int]) -> list[int]:
        """The `pids` that have not exited (a zombie has: its files are closed)."""
        return [pid for pid in pids if self._state(pid) not in (None, "Z")]

    def describe(self, pid: int) -> str:
        """State, wait channel and kernel stack of `pid`: why it has not died."""
        state = self._state(pid)
        if state is None:
            return f"pid {pid} gone"
        wchan = _read(self._proc / str(pid) / "wchan") or "?"
        frames = [line.split()[-1] for line in _read(self._proc / str(pid) / "stack").splitlines()]
        return f"pid {pid} state {state} wchan {wchan} stack {' < '.join(frames[:8]) or '?'}"

    def reset_host(self) -> None:
        """Reboot this host at once, without syncing: what a watchdog would do.

        The last resort when a killed process cannot die: its dirty pages
        and queued NFS requests must not outlive the lease. No sync, since
        syncing would wait on the server this host cannot reach.
        """
        with open(self._sysrq, "w") as trigger:
            trigger.write("b")

    def _state(self, pid: int) -> str | None:
        stat = _read(self._proc / str(pid) / "stat")
        return stat.rpartition(")")[2].split()[0] if stat else None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _containing_mount(
    entries: list[mountinfo.MountEntry], path: str
) -> mountinfo.MountEntry | None:
    inside = [
        e
        for e in entries
        if path == e.mount_point or path.startswith(e.mount_point.rstrip("/") + "/")
    ]
    return max(inside, key=lambda e: len(e.mount_point), default=None)


def _namespace(pid_dir: Path) -> str | None:
    try:
        return os.readlink(pid_dir / "ns" / "mnt")
    except OSError:
        return None  # gone, or a kernel thread


def _mounts(pid_dir: Path, device: str, target: str, source: str) -> bool:
    try:
        entries = mountinfo.read(str(pid_dir / "mountinfo"))
    except (OSError, ValueError):
        return False
    return any(e.device == device and _below(e, target, source) for e in entries)


def _below(entry: mountinfo.MountEntry, target: str, source: str) -> bool:
    if source and (entry.source == source or entry.source.startswith(source + "/")):
        return True
    return entry.root == target or entry.root.startswith(target + "/")
