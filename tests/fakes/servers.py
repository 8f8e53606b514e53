"""Fake NFS servers for the fake mount.nfs helper (see mount_nfs.py)."""

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nfsvol.host import mountinfo

MOUNT_HELPER = str(Path(__file__).with_name("mount_nfs.py"))
UMOUNT_HELPER = str(Path(__file__).with_name("umount.py"))  # real umount, logged


class FakeServers:
    """The table that tells the fake mount.nfs what each server does."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.table = root / "servers.json"
        self._servers: dict[str, object] = {}
        self._save()

    def live(self, server: str, export: str = "/srv/docker") -> Path:
        """Make `server` answer; return the directory its export shows."""
        base = self.root / "exports" / server
        (base / export.lstrip("/")).mkdir(parents=True, exist_ok=True)
        self._servers[server] = str(base)
        self._save()
        return base / export.lstrip("/")

    def alias(self, server: str, same_as: str) -> None:
        """Make `server` serve the same storage as `same_as`."""
        self._servers[server] = self._servers[same_as]
        self._save()

    def down(self, server: str) -> None:
        """Make `server` refuse connections."""
        self._servers[server] = "down"
        self._save()

    def slow(self, server: str, seconds: float) -> None:
        """Make the live `server` take `seconds` to answer each mount."""
        self._servers[server] = {"after": seconds, "serve": self._servers[server]}
        self._save()

    def hang(self, server: str) -> None:
        """Make `server` never answer."""
        self._servers[server] = "hang"
        self._save()

    def calls(self) -> list[list[str]]:
        """Every argv the fake helper was called with."""
        return _argv_log(Path(str(self.table) + ".log"))

    def umount_calls(self) -> list[list[str]]:
        """Every argv the logged umount (UMOUNT_HELPER) was called with."""
        return _argv_log(Path(str(self.table) + ".umount.log"))

    @property
    def env(self) -> dict[str, str]:
        """Environment that points the helper at this table.

        It also marks every process started for this test (plugin, helpers,
        their children): see helpers() and end_strays().
        """
        return {"NFSVOL_FAKE_SERVERS": str(self.table)}

    def helpers(self) -> list[int]:
        """PIDs of this table's fake mount.nfs helpers still running (none should outlive a call).

        Only this test's: a helper left by another test, run or session
        never fails this one.
        """
        return [pid for pid in helper_processes() if self._marked(pid)]

    def end_strays(self) -> None:
        """Kill every process still carrying this table's mark (test clean-up, plugin stopped).

        A helper whose plugin was killed runs on in its own session, a hung
        one for an hour. A helper forked by a worker just before the kill
        carries the mark before it execs, so this repeats until all is quiet.
        """
        deadline, quiet_since = time.monotonic() + 15, time.monotonic()
        while time.monotonic() - quiet_since < 0.5 and time.monotonic() < deadline:
            if [pid for pid in _pids() if pid != os.getpid() and self._kill_if_marked(pid)]:
                quiet_since = time.monotonic()
            time.sleep(0.05)

    def _kill_if_marked(self, pid: int) -> bool:
        if not self._marked(pid):
            return False
        try:
            pidfd = os.pidfd_open(pid)  # pins the process: its pid cannot be reused under us
        except OSError:
            return False
        try:
            if self._marked(pid):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                return True
        except ProcessLookupError:
            pass
        finally:
            os.close(pidfd)
        return False

    def _marked(self, pid: int) -> bool:
        mark = f"NFSVOL_FAKE_SERVERS={self.table}".encode()
        try:
            return mark in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return False

    def _save(self) -> None:
        self.table.write_text(json.dumps(self._servers))


def _argv_log(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def unmount_below(root: Path) -> None:
    """Detach every mount under `root`, deepest first (test clean-up).

    A helper started by a plugin that was then killed runs on in its own
    session and may still mount; wait for it first.
    """
    # Quiet for a moment, not just now: a helper forked by a worker just
    # before the kill shows the worker's command line until it execs.
    deadline, quiet_since = time.monotonic() + 15, time.monotonic()
    while time.monotonic() - quiet_since < 0.5 and time.monotonic() < deadline:
        if helper_processes():
            quiet_since = time.monotonic()
        time.sleep(0.05)
    points = [e.mount_point for e in mountinfo.read() if e.mount_point.startswith(str(root))]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def mounted_below(root: Path) -> list[str]:
    """Mount points under `root`, as the kernel reports them."""
    return sorted(e.mount_point for e in mountinfo.read() if e.mount_point.startswith(str(root)))


def shares_mounted_below(root: Path) -> list[str]:
    """Share mounts under `root`: mounted_below without the volumes' pins (state_dir/vol/...)."""
    return [m for m in mounted_below(root) if not _is_pin(m)]


def pins_below(root: Path) -> list[str]:
    """Volumes pinned for dockerd under `root` (state_dir/vol/<share>/<volume>)."""
    return [m for m in mounted_below(root) if _is_pin(m)]


def _is_pin(mount_point: str) -> bool:
    return Path(mount_point).parent.parent.name == "vol"


def helper_processes() -> list[int]:
    """PIDs of fake mount.nfs helpers running on this machine, any test's."""
    pids = []
    for pid in _pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.endswith(b"fakes/mount_nfs.py") for arg in cmdline[:2]):
            pids.append(pid)
    return pids


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += timedelta(seconds=seconds)
