"""The system boundary for mounts: mount.nfs and umount, run as argv lists.

Every child runs in its own session under a timeout; when the timeout
expires the whole process group is killed, so a dead server can never
wedge a request. A plugin process that exits kills the children it still
runs (SubprocessMounter.stop): in their own session, nothing else would.
"""

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from nfsvol import defaults
from nfsvol.errors import MountFailed, OperationTimeout
from nfsvol.host import mountinfo, sockdiag
from nfsvol.validate import FORCED_NFS_OPTIONS

log = logging.getLogger("nfsvol.host.mounter")
NFS_PORT = 2049  # what mountinfo leaves out of an NFS mount's options
FORCE_TIMEOUT = 2.0  # one umount -f; one that actually unmounts can wait on the server
FORCE_PAUSE = 0.2  # between two umount -f: time for a woken process to go on dying
_MS_BIND = 0x1000  # <sys/mount.h>
_MNT_DETACH = 0x2
_UMOUNT_NOFOLLOW = 0x8
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class NfsSource:
    """One server's export, with the options to mount it by."""

    server: str
    export: str
    version: str
    options: tuple[str, ...] = ()

    @property
    def device(self) -> str:
        """The `server:/export` string mount.nfs takes."""
        return f"{self.server}:{self.export}"

    @property
    def option_string(self) -> str:
        """The -o argument: version, then the forced and operator options."""
        return ",".join((f"vers={self.version}", *FORCED_NFS_OPTIONS, *self.options))


class Mounter(Protocol):
    """What the driver needs from the kernel's mount table."""

    def mount(self, source: NfsSource, target: str) -> None:
        """Mount `source` on the existing directory `target`."""

    def unmount(self, target: str) -> None:
        """Unmount `target`; succeed if it is not mounted."""

    def abort(
        self, target: str, done: Callable[[], bool] | None = None, seconds: float = 0
    ) -> None:
        """Fail the NFS requests in flight on `target`, again until `done()` or
        `seconds` pass, then drop what this host still has queued for its
        server; never raise."""

    def mount_points(self) -> dict[str, str]:
        """Mount point -> source, for every mount this process sees."""

    def pin(self, fd: int, target: str, over: bool = False) -> None:
        """Bind-mount the directory open on `fd` at `target`, made if missing;
        `over`: on top of what is there, instead of in place of it."""

    def unpin(self, target: str) -> None:
        """Undo `pin` on `target` (and any pin left there earlier); never raise."""


@contextlib.contextmanager
def _busy(target: str) -> Iterator[None]:
    """Hold `target` open (O_PATH: no request to its server) so no umount detaches it."""
    try:
        fd = os.open(target, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        log.warning("cannot hold %s open while aborting it: %s", target, exc)
        yield
        return
    try:
        yield
    finally:
        os.close(fd)


def _cut(address: str, port: int) -> None:
    try:
        found = sockdiag.connections_to(address, port)
    except (OSError, ValueError) as exc:
        log.error("could not list the connections to %s:%d: %s", address, port, exc)
        return
    cut = [c for c in found if _destroyed(c)]  # one that fails must not spare the rest
    queued = sum(c.queued for c in cut)
    log.warning(
        "dropped %d connection(s) to %s:%d, %d bytes unsent", len(cut), address, port, queued
    )


def _destroyed(conn: sockdiag.Connection) -> bool:
    try:
        return sockdiag.destroy(conn)
    except OSError as exc:
        log.error("could not drop a connection to the server: %s", exc)
        return False


class Children:
    """The helpers one process is running, so that none outlives it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()
        self._stopped = False

    def spawn(self, argv: list[str]) -> subprocess.Popen[str]:
        """Start `argv` in a session of its own; refuse once stop() was called."""
        with self._guard:  # held across the fork: stop() never misses a child
            if self._stopped:
                raise OperationTimeout(f"{argv[0]} was not started: nfsvol is stopping")
            proc = _popen(argv)
            self._running.add(proc)
        return proc

    def reaped(self, proc: subprocess.Popen[str]) -> None:
        """Forget a child that has exited, or was killed at its timeout."""
        with self._guard:
            self._running.discard(proc)

    def stop(self) -> None:
        """Kill the process group of every running child; start no more."""
        with self._guard:
            self._stopped = True
            for proc in self._running:
                if proc.poll() is None:  # not reaped: its pid is still its own
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)


def _popen(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run(
    argv: list[str], timeout: float, children: Children | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `argv` with no shell; kill its process group if it overruns.

    With `children`, the child is tracked there until it is reaped.
    """
    proc = _popen(argv) if children is None else children.spawn(argv)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise OperationTimeout(
            f"{' '.join(argv)} did not finish within {timeout:g}s and was killed; "
            "check that the server answers, or raise mount_timeout"
        ) from None
    finally:
        if children is not None:
            children.reaped(proc)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    # A child stuck in uninterruptible NFS I/O may outlive SIGKILL for a
    # while; reap it if it goes quickly, never let it hold the request.
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=1)


class SubprocessMounter:
    """The real Mounter: mount.nfs and umount under a timeout."""

    def __init__(
        self,
        mount_helper: str = defaults.MOUNT_HELPER,
        umount_helper: str = defaults.UMOUNT_HELPER,
        timeout: float = defaults.MOUNT_TIMEOUT,
        mountinfo_path: str = defaults.MOUNTINFO,
    ) -> None:
        self._mount_helper = mount_helper
        self._umount_helper = umount_helper
        self._timeout = timeout
        self._mountinfo_path = mountinfo_path
        self._children = Children()

    def stop(self) -> None:
        """Kill the helpers still running and start no more (the process is exiting)."""
        self._children.stop()

    def mount(self, source: NfsSource, target: str) -> None:
        """Mount with mount.nfs; the error carries the helper's stderr."""
        argv = [self._mount_helper, source.device, target, "-o", source.option_string]
        result = self._run(argv)
        if result.returncode != 0:
            raise MountFailed(
                f"mounting {source.device} on {target} failed "
                f"(exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
            )

    def unmount(self, target: str) -> None:
        """Unmount; fall back to a lazy detach if the server does not answer."""
        if target not in self.mount_points():
            return
        # --no-canonicalize: our targets are canonical, and resolving one
        # would stat a dead server's mount and hang.
        try:
            result = self._run([self._umount_helper, "--no-canonicalize", target])
        except OperationTimeout:
            result = self._run([self._umount_helper, "-l", "--no-canonicalize", target])
        if result.returncode != 0 and target in self.mount_points():
            raise MountFailed(
                f"unmounting {target} failed (exit {result.returncode}): "
                f"{result.stderr.strip()}; see `fuser -m {target}`"
            )

    def abort(
        self, target: str, done: Callable[[], bool] | None = None, seconds: float = 0
    ) -> None:
        """umount -f until `done()` (once without it; for up to `seconds`), then
        destroy this host's connections to the mount's server.

        Writes a fenced container left must not reach the server once it
        answers again. umount -f fails every RPC in flight on the mount
        with EIO, but only those in flight at that instant: a killed writer
        flushes and closes its files on the way out, each a new RPC it
        waits for uninterruptibly (SIGKILL was already taken), so it dies
        only if umount -f comes again (`done` says when it has). The mount
        is held busy meanwhile: once detached, umount -f would no longer
        reach the server's requests through it. What TCP still queues for
        the server is dropped with its connection (see sockdiag), last:
        with the cut first, the last flush waited on the reconnect instead.
        """
        try:
            peer = self._peer(target)
        except (OSError, ValueError):
            peer = None
        started = time.monotonic()
        forced = 0
        with _busy(target):
            while True:
                forced += 1
                self._force(target, self._force_timeout(done, started + seconds))
                if done is None or done() or time.monotonic() + FORCE_PAUSE >= started + seconds:
                    break
                time.sleep(FORCE_PAUSE)
        if forced > 1:
            log.warning(
                "umount -f %s: %d times in %.1fs", target, forced, time.monotonic() - started
            )
        if peer is not None:
            _cut(*peer)

    def _force_timeout(self, done: Callable[[], bool] | None, deadline: float) -> float:
        if done is None:
            return self._timeout
        # Repeated: one that hangs (it really unmounts, and the server is
        # gone) must not keep the next from failing what flushes meanwhile.
        return min(self._timeout, FORCE_TIMEOUT, max(0.1, deadline - time.monotonic()))

    def _force(self, target: str, timeout: float) -> None:
        # With the mount busy, umount -f fails the requests and then EBUSY.
        argv = [self._umount_helper, "-f", "--no-canonicalize", target]
        try:
            done = run(argv, timeout, self._children)
        except (OperationTimeout, OSError) as exc:
            log.warning("umount -f %s: %s", target, exc)
        else:
            if done.returncode == 0:  # it was not held after all
                log.warning("force-unmounted %s", target)

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return run(argv, self._timeout, self._children)

    def _peer(self, target: str) -> tuple[str, int] | None:
        """The NFS server address and port the mount on `target` talks to."""
        entries = [e for e in mountinfo.read(self._mountinfo_path) if e.mount_point == target]
        if not entries or not entries[-1].fstype.startswith("nfs"):
            return None
        opts = dict(o.partition("=")[::2] for o in entries[-1].super_options)
        if not opts.get("addr"):
            return None
        return opts["addr"], int(opts.get("port") or NFS_PORT)

    def mount_points(self) -> dict[str, str]:
        """Mount points from /proc/self/mountinfo (the last mount on a path wins)."""
        return {e.mount_point: e.source for e in mountinfo.read(self._mountinfo_path)}

    def pin(self, fd: int, target: str, over: bool = False) -> None:
        """Bind the very directory `fd` holds at `target` (`over`: on top of a pin there).

        The source is /proc/self/fd/N, which the kernel resolves to the
        descriptor's own directory, not to a path: a rename or symlink on
        the share after the descriptor was opened (without following
        links) cannot change what `target` shows. Syscalls, not mount(8):
        nothing here waits on a server, and Mount stays cheap.
        """
        if not over:
            self.unpin(target)  # one left by a crash would hide the fresh one
        os.makedirs(target, mode=0o700, exist_ok=True)
        _syscall(_libc.mount, f"/proc/self/fd/{fd}".encode(), target.encode(), None, _MS_BIND, None)

    def unpin(self, target: str) -> None:
        """Detach every pin stacked on `target`, then remove the empty directory."""
        # MNT_DETACH: a container may still be leaving; its own bind keeps the data.
        while _libc.umount2(target.encode(), _MNT_DETACH | _UMOUNT_NOFOLLOW) == 0:
            pass
        with contextlib.suppress(OSError):
            os.rmdir(target)


def _syscall(call: Callable[..., int], *args: object) -> None:
    if call(*args) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
