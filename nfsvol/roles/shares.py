"""Reaching a share: mounting it, keeping it parked, letting it go, within a budget.

The bottom layer of the driver. An `nfs` share is mounted once per host
(from the first of its servers that answers, the one that mounted it last
tried first) under state_dir/mnt/<share>; a `path` share is a directory
the host mounts itself. After use a share nobody holds is parked for
idle_unmount seconds, then released by `release_idle`. Work on a share
runs under a deadline and a bounded number of slots (`bounded_work`), so a
dead server costs callers a timeout, never a wedged thread pool. A
mounted volume's directory is pinned (bind-mounted, opened without
following links) under state_dir/vol/<share>/<volume> for dockerd.
"""

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from nfsvol.clock import Clock, rfc3339
from nfsvol.config import Config, Share, ShareType
from nfsvol.errors import MountFailed, NfsvolError, OperationTimeout, ShareError
from nfsvol.host.attempt import Abandoned, Attempt, bounded
from nfsvol.host.mounter import Mounter, NfsSource
from nfsvol.share.catalog import ShareCatalog
from nfsvol.state import HostState

log = logging.getLogger(__name__)

T = TypeVar("T")


class Shares:
    """Every configured share of this host, reachable on demand."""

    def __init__(
        self,
        config: Config,
        mounter: Mounter,
        state: HostState,
        clock: Clock,
        wake: Callable[[], None],
        slots: int = 64,
    ) -> None:
        self.config = config
        self._mounter = mounter
        self._state = state
        self._clock = clock
        self._wake = wake  # the background thread: it sleeps while nothing is mounted
        # Request threads that may wait on shares at once; the rest stay free
        # for Get, List and Path however many Mounts a dead server holds up.
        self._slots = threading.BoundedSemaphore(slots)
        self._slot_count = slots

    def bounded_work(self, share: Share, verb: str, work: Callable[[Attempt], T]) -> T:
        """Run work within the share's budget (see nfsvol.host.attempt).

        A helper left blocked keeps the share's lock, so later calls on the
        share fail in time too; Docker gets its answer and is not wedged.
        """
        if share.type == ShareType.PATH:
            return work(Attempt())
        budget = self.budget(share)
        if not self._slots.acquire(blocking=False):
            raise OperationTimeout(
                f"{verb} on share {share.name!r} refused: {self._slot_count} calls are "
                "already waiting on shares in this process, most likely on a server that "
                "does not answer; check the servers with `nfsvol check`, then retry"
            )
        try:
            return bounded(work, budget, name=f"{verb} on {share.name}")
        except Abandoned:
            raise OperationTimeout(
                f"{verb} on share {share.name!r} got no answer from "
                f"{', '.join(share.servers)} within {budget:g}s; the server is down, "
                "unreachable, or just restarted and in its NFSv4 grace period (new opens "
                "wait up to nfsv4gracetime, 90 s on Linux's server, for a client that never "
                "reclaims): check it with `nfsvol check`, then retry"
            ) from None
        finally:
            self._slots.release()

    def budget(self, share: Share) -> float:
        """Seconds a call may spend on the share (Config.call_budget)."""
        return self.config.call_budget(share)

    def root(self, share: Share) -> Path:
        """Where the share's files are on this host (mounted or not)."""
        return (
            Path(share.path) if share.type == ShareType.PATH else self._state.mountpoint(share.name)
        )

    @contextlib.contextmanager
    def access(self, share: Share, linger: bool = True) -> Iterator[ShareCatalog]:
        """Keep the share reachable for the block; call under the share's lock.

        Afterwards a share nobody holds is parked (left mounted for
        idle_unmount seconds, so bursts of Creates cost one mount) or, with
        linger=False or on failure, released if this block mounted it: Docker
        sends no Unmount after a failed Mount, so a Mount must roll back.
        """
        mounted_here = self._ensure_reachable(share)
        succeeded = False
        try:
            yield ShareCatalog(self.root(share), share.name)
            succeeded = True
        except OSError as exc:
            hint = _FIXES.get(exc.errno or 0, _FIX_OTHER)
            where = f" on {exc.filename!r}" if exc.filename else ""
            raise ShareError(f"share {share.name!r} refused {exc.strerror}{where}: {hint}") from exc
        finally:
            if share.type == ShareType.NFS and not self._state.held_volumes(share.name):
                if succeeded and linger:
                    self.park(share)
                elif mounted_here or not linger:
                    self.release_quietly(share)

    def _ensure_reachable(self, share: Share) -> bool:
        """Mount the share if needed; True if this call mounted it."""
        root = self.root(share)
        if share.type == ShareType.PATH:
            if not root.is_dir():
                raise MountFailed(
                    f"share {share.name!r}: path {str(root)!r} is not a directory; "
                    "mount the export there first (fstab or autofs)"
                )
            return False
        if str(root) in self._mounter.mount_points():
            if not _stale_handle(root):
                return False
            # The export was recreated or the server swapped: the old mount
            # can only answer ESTALE, so the next caller gets a fresh one.
            log.warning("share %s: stale file handle on %s, mounting it afresh", share.name, root)
            self._mounter.unmount(str(root))
        self._mount_share(share, root)
        return True

    def _mount_share(self, share: Share, target: Path) -> None:
        failures = []
        for server in self._servers_to_try(share):
            source = NfsSource(server, share.export, share.version, share.options)
            try:
                self._mounter.mount(source, str(target))
            except (MountFailed, OperationTimeout) as exc:
                log.warning("share %s: server %s failed: %s", share.name, server, exc)
                failures.append(f"{server}: {exc}")
                continue
            self.remember_mount(share, server)
            self._state.good_servers.put(share.name, server)
            self._wake()  # it stops once nothing is mounted: probe this one
            return
        raise MountFailed(
            f"share {share.name!r}: no server could be mounted, tried in order: "
            + "; ".join(failures)
        )

    def _servers_to_try(self, share: Share) -> list[str]:
        """The share's servers in order, the one that mounted it last first.

        Kept in state_dir: a dead first server must cost one mount_timeout
        per host, not one per gunicorn worker and restart, nor every mount.
        """
        good = self._state.good_servers.get(share.name)
        return sorted(share.servers, key=lambda s: s != good) if good else list(share.servers)

    def pin(self, share: Share, catalog: ShareCatalog, name: str, fresh: bool) -> None:
        """Bind the volume's directory, opened without following links, for dockerd.

        dockerd bind-mounts the path Mount returns after Mount has answered.
        Were it a path on the share, a share writer could swap the volume's
        directory for a symlink in between and steer the container onto any
        host path; the pin is the directory that was checked. With users
        here (not `fresh`) the pin is shared: it is only checked, and bound
        again on top if it no longer shows the volume, never detached while
        dockerd may be about to bind it.
        """
        target = self._state.pin_point(share.name, name)
        with catalog.fs.dir((name,)) as fd:
            if fresh:
                self._mounter.pin(fd, target)
            elif not _shows(target, fd):
                # e.g. a managed plugin's upgrade: dockerd unmounts what was
                # under its propagated mount, the containers keep their binds.
                log.warning("volume %s: its pin %s was gone; binding it again", name, target)
                self._mounter.pin(fd, target, over=True)

    def remember_mount(self, share: Share, server: str) -> None:
        """Record that `server` mounted the share here (and since when)."""
        record = {"server": server, "since": rfc3339(self._clock())}
        self._state.mount_records.put(share.name, record)

    def unpark(self, share: Share) -> None:
        """A volume holds the share again: it is no longer idle."""
        record = self._state.mount_records.get(share.name)
        if record and record.pop("idle_since", None):
            self._state.mount_records.put(share.name, record)

    def park(self, share: Share) -> None:
        """Nobody holds the share: keep it mounted idle_unmount seconds, then release it."""
        if not self.config.idle_unmount:
            self.release_quietly(share)
            return
        record = self._state.mount_records.get(share.name) or {}
        if not record.get("idle_since"):
            record["idle_since"] = self._clock().timestamp()
            self._state.mount_records.put(share.name, record)
        self._wake()

    def release_idle(self) -> None:
        """Unmount shares nobody has held for idle_unmount seconds."""
        now = self._clock().timestamp()
        parked = self.idle_shares()  # read without the lock: most ticks find none
        for share in self.config.shares.values():
            if share.type != ShareType.NFS or share.name not in parked:
                continue
            with self._state.lock(share.name):
                idle_since = (self._state.mount_records.get(share.name) or {}).get("idle_since")
                held = self._state.held_volumes(share.name)
                if idle_since and not held and now - idle_since >= self.config.idle_unmount:
                    self.release_quietly(share)

    def idle_shares(self) -> list[str]:
        """Shares left mounted with nobody holding them."""
        return [
            name
            for name in self.config.share_names
            if (self._state.mount_records.get(name) or {}).get("idle_since")
        ]

    def release_quietly(self, share: Share) -> None:
        try:
            self.release(share)
        except NfsvolError as exc:
            # Nobody uses it: a later reconcile retries. Never fail the caller.
            log.warning("share %s: could not release its mount: %s", share.name, exc)

    def release(self, share: Share) -> None:
        self._mounter.unmount(str(self._state.mountpoint(share.name)))
        self._state.mount_records.drop(share.name)


# What an operator does about each way a share refuses a change.
_FIX_SQUASH = (
    "the server squashes root (root_squash); export the share with no_root_squash, "
    "or create volumes without uid/gid"
)
_FIXES = {
    errno.EPERM: _FIX_SQUASH,
    errno.EACCES: _FIX_SQUASH,
    errno.ENOSPC: "the export is full; free space on the server, then retry",
    errno.EDQUOT: "the export's quota is used up; raise it or free space, then retry",
    errno.EROFS: "the export is read-only; export it read-write (rw)",
}
_FIX_OTHER = "check the export's permissions, free space and that it is writable"


def _stale_handle(root: Path) -> bool:
    """True if the mount at root answers ESTALE; statfs always asks the server."""
    try:
        os.statvfs(root)
    except OSError as exc:
        return exc.errno == errno.ESTALE
    return False


def _shows(path: str, fd: int) -> bool:
    """True if `path` is the directory open on `fd` (a pin still in place)."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(fd))
    except OSError:  # gone, or stale: bind again
        return False
