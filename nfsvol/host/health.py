"""Share health: does each mounted share answer, with live handles, writable?

A probe asks the server (statvfs always goes to it on NFS) on a helper
thread under a deadline, so a hung server costs the prober one stuck
thread, never the plugin, and no second probe of that share starts while
the first is stuck.
"""

import enum
import errno
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from nfsvol.host import deadline, mountinfo


class HealthState(enum.StrEnum):
    """A probe's verdict on a share mount; the value is what Status, ls and metrics show."""

    OK = "ok"
    UNREACHABLE = "unreachable"  # no answer within the deadline, or statfs failed
    STALE = "stale"  # the server answers ESTALE (stale file handle)
    READ_ONLY = "read-only"  # the kernel remounted it read-only


# The names the prober and its callers use for them.
OK, UNREACHABLE, STALE = HealthState.OK, HealthState.UNREACHABLE, HealthState.STALE
READ_ONLY = HealthState.READ_ONLY


@dataclass(frozen=True)
class Health:
    """One probe's verdict on a share mount."""

    state: HealthState
    detail: str
    checked: float  # epoch seconds
    since: float  # when the share entered this state

    def to_json(self) -> dict[str, Any]:
        """As stored in the host state and shown in Status: plain JSON values."""
        return {**asdict(self), "state": self.state.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Health":
        """Rebuild a stored verdict."""
        state = HealthState(str(data["state"]))
        return cls(state, str(data["detail"]), data["checked"], data["since"])


class Prober:
    """Probes share mounts; at most one probe per share in flight."""

    def __init__(
        self,
        mountinfo_path: str = "/proc/self/mountinfo",
        statfs: Callable[[str], object] = os.statvfs,
    ) -> None:
        self._mountinfo_path = mountinfo_path
        self._statfs = statfs
        self._running: dict[str, deadline.Running[object]] = {}
        self._guard = threading.Lock()

    def probe(self, root: str, wants_read_only: bool, timeout: float) -> tuple[str, str]:
        """(state, detail) of the mount at `root`."""
        with self._guard:
            stuck = self._running.get(root)
            if stuck is not None and not stuck.returned():
                return UNREACHABLE, "the previous probe has not returned yet"
            running = deadline.start(lambda: self._statfs(root), f"probe {root}")
            self._running[root] = running
        if not running.wait(timeout):
            return UNREACHABLE, f"statfs got no answer within {timeout:g}s"
        try:
            running.outcome()
        except OSError as error:
            if error.errno == errno.ESTALE:
                return STALE, "the server answers ESTALE (stale file handle)"
            return UNREACHABLE, f"statfs failed: {error}"
        if not wants_read_only and self._read_only(root):
            return READ_ONLY, "the kernel remounted the share read-only"
        return OK, ""

    def _read_only(self, root: str) -> bool:
        entries = [e for e in mountinfo.read(self._mountinfo_path) if e.mount_point == root]
        return bool(entries) and "ro" in entries[-1].options


def verdict(previous: Health | None, state: str, detail: str, now: float | None = None) -> Health:
    """The new Health for a probe's (state, detail), keeping `since` while the state is unchanged.

    `state` is one of the HealthState values; anything else raises ValueError.
    """
    now = time.time() if now is None else now
    since = previous.since if previous is not None and previous.state == state else now
    return Health(HealthState(state), detail, now, since)
