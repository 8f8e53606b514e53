"""Which dockerd sends a request, so mounts a dead dockerd left can be found.

dockerd sends one Unmount per Mount while it lives. One killed outright
(SIGKILL, the OOM killer, a crash) sends none for the containers it lost,
and the next one does not either: moby keeps its per-mount count in memory
only, and mounts a restarted container again under the same mount ID.

So every mount ID is tagged with the process that sent its Mount: the
peer of the unix socket, by PID and start time. A tag whose process is
gone names a dockerd that can no longer send the Unmount (see
Driver.reclaim_leaked). A managed plugin sees PID 0 for dockerd, which is
outside its PID namespace; its Mounts are tagged with the last
Plugin.Activate instead, which a new dockerd always sends first.
"""

import socket
import struct
import uuid
from dataclasses import dataclass

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
PID_TAG = "pid:"
ACTIVATION_TAG = "activation:"


@dataclass(frozen=True)
class Caller:
    """The process at the other end of a request's socket, if we can see it."""

    pid: int | None = None
    started: str | None = None  # field 22 of /proc/PID/stat: with the PID, unique

    @property
    def tag(self) -> str | None:
        """What its Mounts are tagged with; None if we cannot see it."""
        if self.pid and self.started:
            return f"{PID_TAG}{self.pid}:{self.started}"
        return None


UNSEEN = Caller()  # a request from no unix socket (tests, a probe)


def caller_of(sock: socket.socket | None, proc: str = "/proc") -> Caller:
    """Who sent a request on `sock` (None, or not a unix socket: nobody we know)."""
    pid = _peer_pid(sock)
    return Caller(pid, start_time(pid, proc)) if pid else Caller()


def new_activation() -> str:
    """A tag for the Mounts of a dockerd we cannot see."""
    return f"{ACTIVATION_TAG}{uuid.uuid4().hex[:12]}"


def tagged_process(tag: str) -> tuple[int, str] | None:
    """(PID, start time) that a PID tag names; None for any other tag."""
    if not tag.startswith(PID_TAG):
        return None
    pid, _, started = tag[len(PID_TAG) :].partition(":")
    return (int(pid), started) if pid.isdigit() and started else None


def start_time(pid: int, proc: str = "/proc") -> str | None:
    """When process `pid` started (clock ticks after boot), or None if it is gone."""
    try:
        with open(f"{proc}/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[19] if len(fields) > 19 else None


def _peer_pid(sock: socket.socket | None) -> int | None:
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except OSError:
        return None
    pid, _, _ = _UCRED.unpack(raw)
    return pid or None
