"""The volume driver: Docker's verbs in plain Python types.

The driver owns no I/O of its own making: the mounter, the host state and
the clock come in through the constructor, and `nfsvol.server` builds the
real ones. Reaching a share (mount, park, release, the budget of each call)
lives in `nfsvol.shares`. Each share has its own lock; no lock is ever global.
"""

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar

from nfsvol.attempt import Abandoned, Attempt, bounded
from nfsvol.cache import CatalogCache
from nfsvol.catalog import (
    ShareCatalog,
    TrashKeeper,
    VolumeRecord,
)
from nfsvol.clock import Clock, rfc3339, utc_now
from nfsvol.config import Config, Share, ShareType
from nfsvol.dockerd import UNSEEN, Caller
from nfsvol.errors import (
    NfsvolError,
    VolumeConflict,
    VolumeInUse,
    VolumeNotFound,
)
from nfsvol.fence import Fencer
from nfsvol.health import Prober
from nfsvol.holds import Holds
from nfsvol.leaked import LeakedMounts
from nfsvol.leases import LeaseStore
from nfsvol.monitor import HealthMonitor
from nfsvol.mounter import Mounter
from nfsvol.periodic import Periodic
from nfsvol.shares import Shares
from nfsvol.state import HostState
from nfsvol.status import volume_status
from nfsvol.validate import VolumeOptions, check_name, check_new_name, parse_volume_options

# Seconds of trash deletion a Remove does before answering, and each janitor
# tick after it: a huge tree never holds up Docker or the share's lock.
PURGE_IN_REMOVE = 1.0
PURGE_PER_TICK = 2.0
T = TypeVar("T")
log = logging.getLogger("nfsvol.driver")


@dataclass(frozen=True)
class Host:
    """Who this host is: its name and the boot its mounts belong to."""

    name: str
    boot_id: str


@dataclass(frozen=True)
class Volume:
    """A volume as Docker sees it from this host."""

    name: str
    mountpoint: str  # empty while an nfs volume is not mounted here
    created_at: str
    status: dict[str, Any]


class Driver:
    """Create, mount and remove volumes that live on configured shares."""

    def __init__(
        self,
        config: Config,
        mounter: Mounter,
        state: HostState,
        host: Host,
        clock: Clock = utc_now,
        sync_wait: float = 1.5,
        share_slots: int = 64,
        background: bool = True,
        fencer: Fencer | None = None,
        prober: Prober | None = None,
    ) -> None:
        self.config = config
        self._mounter = mounter
        self._state = state
        self._host = host
        self._clock = clock
        self._fencer = fencer or Fencer()
        # Mounting, parking and releasing shares; it wakes the janitor for each mount.
        self.shares = Shares(
            config, mounter, state, clock, lambda: self._janitor.wake(), share_slots
        )
        self.catalog = CatalogCache(
            config, self.shares, state, clock, host.name, self._trash_found, sync_wait
        )
        self._janitor = Periodic(self._tidy, config.janitor_interval, enabled=background)
        self._trash = TrashKeeper()
        # Its own thread (see nfsvol.periodic).
        self.leases = Holds(config, self.shares, state, mounter, self._fencer, clock, host.name)
        self.leaked = LeakedMounts(state, self._fencer)
        self.health = HealthMonitor(config, self.shares, state, mounter, prober or Prober(), clock)
        self._renewer = Periodic(self.leases.keep, self.leases.grace() / 2, enabled=background)

    # Docker's verbs.

    def create(self, name: str, opts: Mapping[str, object] | None) -> None:
        """Make the volume on its share; repeating it with the same options is fine."""
        check_new_name(name)
        options = parse_volume_options(opts, self.config.share_names, self.config.default_share)
        share = self.config.share(options.share)
        self.catalog.refuse_other_share(name, share.name)
        self.shares.bounded_work(
            share, "Create", lambda _: self._create(share, name, options, bool(opts))
        )
        log.info("created volume %s on share %s", name, share.name)

    def _create(self, share: Share, name: str, options: VolumeOptions, explicit: bool) -> None:
        with self._state.lock(share.name), self.shares.access(share) as catalog:
            catalog.ensure_layout()
            record = catalog.read(name)
            if record is None:
                made = catalog.make_dir(name, options.uid, options.gid, options.mode)
                try:
                    record = catalog.add(self._new_record(name, options))
                except OSError:
                    if made:  # e.g. the export is full: leave nothing half-made
                        catalog.drop_empty_dir(name)
                    raise
            if explicit:
                _check_same_options(record, options)
            self._state.cache_put(record)

    def remove(self, name: str) -> None:
        """Apply the share's on_remove policy; an unknown volume is already gone."""
        check_name(name)
        record = self.catalog.lookup(name)
        if record is None:
            return
        share = self.config.share(record.share)
        self.shares.bounded_work(share, "Remove", lambda _: self._remove(share, name))
        log.info("removed volume %s (%s)", name, share.on_remove)
        self._trash.mark(share.name)
        self._empty_trash(share, PURGE_IN_REMOVE)

    def _empty_trash(self, share: Share, budget: float) -> None:
        """Delete trashed trees without the share's lock; the janitor retries what is left."""
        if share.type == ShareType.NFS and self._state.mount_record(share.name) is None:
            self._trash.forget(share.name)  # unseen; the next sync while mounted looks again
            return
        catalog = ShareCatalog(self.shares.root(share), share.name)
        limit = budget + self.config.mount_timeout
        try:
            # Bounded like any other share work: a dead server must not hold
            # up the Remove's answer, nor the janitor (it probes health too).
            bounded(lambda _: self._trash.empty(catalog, budget), limit, f"trash on {share.name}")
        except Abandoned:
            log.warning("share %s: trash still being emptied after %gs", share.name, limit)
        if share.name in self._trash.pending():
            self._janitor.wake()

    def _remove(self, share: Share, name: str) -> None:
        with self._state.lock(share.name):
            self._refuse_in_use(share.name, name)
            with self.shares.access(share) as catalog:
                catalog.ensure_layout()
                # Marker first, then the look for holders: a Mount on another
                # host writes its lease first, then looks for the marker (see
                # _mount_locked), so of the two racing one sees the other.
                marker = self.leases.mark_removing(share, catalog, name)
                try:
                    self.leases.refuse_held_elsewhere(share, catalog.root, name)
                    self._dispose(share, catalog, name)
                    LeaseStore(catalog.root, catalog.share).drop(name)
                finally:
                    self.leases.unmark_quietly(catalog, name, marker)
            self._state.cache_drop(share.name, name)
            self._state.set_last_error(share.name, name, None)

    def mount(self, name: str, mount_id: str, caller: Caller = UNSEEN) -> str:
        """Make the volume reachable on this host for `mount_id`; return its path."""
        record = self.catalog.require(name)
        share = self.config.share(record.share)
        try:
            work = functools.partial(self._mount, record, mount_id, caller)
            return self.shares.bounded_work(share, "Mount", work)
        except NfsvolError as exc:
            error = {"time": rfc3339(self._clock()), "error": str(exc)}
            self._state.set_last_error(record.share, name, error)
            raise

    def _mount(self, record: VolumeRecord, mount_id: str, caller: Caller, attempt: Attempt) -> str:
        with self._state.lock(record.share):
            # Docker may have had its answer while this waited for the lock:
            # then start no mount.nfs for it (against a dead server they pile up).
            attempt.wanted()
            return self._mount_locked(record, mount_id, caller, attempt)

    def _mount_locked(
        self, record: VolumeRecord, mount_id: str, caller: Caller, attempt: Attempt
    ) -> str:
        name = record.name
        share = self.config.share(record.share)
        with self.shares.access(share, linger=False) as catalog:
            self._drop_leaked(share, name)  # e.g. this very ID, restarted by a new dockerd
            users, by = self._state.mounts(share.name, name)
            self.leases.refuse_lost(share, name)
            # Lease first, then the look for a Remove (whose marker comes
            # before its look for leases): see _remove. With users here the
            # lease is already on the share.
            lease = None if users else self.leases.take(share, catalog.root, record)
            try:
                self.leases.refuse_removing(share, catalog, name)
                self._check_on_share(share, catalog, name)
            except NfsvolError:
                if lease is not None:
                    self.leases.drop_unused(catalog, name, lease)
                raise
            # Read before the commit: after it, nothing may wait on the server.
            leases = LeaseStore(catalog.root, catalog.share)
            holders = leases.holders(name, known=lease) if lease else []
            try:
                self.shares.pin(share, catalog, name, fresh=not users)
                attempt.commit()
            except (Abandoned, NfsvolError, OSError):
                if not users:
                    self._mounter.unpin(self._state.pin_point(share.name, name))
                if lease is not None:  # Docker was told this Mount failed: hold nothing
                    self.leases.drop_unused(catalog, name, lease)
                raise
            if lease is not None:
                self._state.set_own_lease(share.name, name, lease, self._now())
                self._state.set_holders(share.name, name, holders)
                self._renewer.wake()  # renews it
            users[mount_id] = users.get(mount_id, 0) + 1
            by[mount_id] = self.leaked.tag(caller)
            self._state.set_users(share.name, name, users, by)
            self.shares.unpark(share)
        return self._state.pin_point(share.name, name)

    def _unpin_unused(self, share: str, name: str) -> None:
        if not self._state.users(share, name):
            self._mounter.unpin(self._state.pin_point(share, name))

    def unmount(self, name: str, mount_id: str) -> None:
        """Release one Mount of `mount_id`; an extra Unmount changes nothing."""
        check_name(name)
        share = self._holding_share(name, mount_id)
        if share is None:
            return
        with self._state.lock(share.name):
            users = self._state.users(share.name, name)
            if mount_id not in users:
                return
            users[mount_id] -= 1
            self._state.set_users(share.name, name, {k: n for k, n in users.items() if n > 0})
            self._after_unmount(share, name)

    def _after_unmount(self, share: Share, name: str) -> None:
        """With the share locked: let go of what nobody here holds any more."""
        if not self._state.users(share.name, name):
            self._unpin_unused(share.name, name)
            self.leases.drop_quietly(share, name)
        if share.type == ShareType.NFS and not self._state.held_volumes(share.name):
            # dockerd Mounts twice per `docker run` (copy-up at create, then
            # start) and often runs the next container at once: parked, the
            # share serves them all without a mount.nfs and umount each.
            self.shares.park(share)

    def path(self, name: str) -> str:
        """Where the volume is on this host, or "" if it is not mounted here."""
        record = self.catalog.require(name)
        return self._mountpoint(record, self._state.users(record.share, name))

    def get(self, name: str) -> Volume:
        """The volume with its status on this host."""
        record = self.catalog.require(name)
        users = self._state.users(record.share, name)
        return Volume(
            name=name,
            mountpoint=self._mountpoint(record, users),
            created_at=record.created_at,
            status=volume_status(self.config, self._state, record, users),
        )

    def list_volumes(self) -> list[tuple[str, str]]:
        """(name, mountpoint) of every volume on every share."""
        self.catalog.refresh_stale()
        out: list[tuple[str, str]] = []
        for share in self.config.shares.values():
            held = set(self._state.held_volumes(share.name))
            names = sorted(self._state.cached_names(share.name))
            # String building: this runs for every volume on `docker volume ls`.
            pins = self._state.pin_point(share.name, "")
            out.extend((n, pins + n if n in held else "") for n in names)
        return out

    def capabilities(self) -> dict[str, str]:
        """Volumes are visible from every host that has the same shares."""
        return {"Scope": "global"}

    # Start-up.

    def reconcile(self) -> None:
        """Match recorded mounts with the kernel's before serving requests."""
        if self._state.previous_boot() != self._host.boot_id:
            self._forget_previous_boot()
        table = self._mounter.mount_points()
        for share in self.config.shares.values():
            with self._state.lock(share.name):
                for name in self._state.pinned(share.name):
                    self._unpin_unused(share.name, name)  # left by a crash or a reboot
                if share.type == ShareType.NFS:
                    self._reconcile_share(share, table)

    def warm_cache(self, wait: float) -> None:
        """Read every share's catalog before serving, waiting at most `wait` seconds.

        A host whose cache is empty (first start, reboot, a managed plugin
        reinstalled) would otherwise answer dockerd's first Get or List
        from nothing whenever a share takes longer than sync_wait to mount.
        """
        # Shares another worker has just read are skipped; linger=False: a
        # restart leaves no share mounted that nobody holds.
        self.catalog.sync_shares(self.catalog.stale_shares(), wait, linger=False)
        if any(self._state.own_leases(s) for s in self.config.share_names):
            self._renewer.wake()  # a restarted plugin renews what it held
        self._janitor.wake()  # probes what is mounted

    def _forget_previous_boot(self) -> None:
        # No container survives a reboot holding a mount, so counts from an
        # earlier boot describe nobody.
        for share in self.config.share_names:
            for name in self._state.held_volumes(share):
                self._state.set_users(share, name, {})
            for name in self._state.own_leases(share):  # left to expire on the share
                self._state.set_own_lease(share, name, None)
            self._state.set_mount_record(share, None)
        self._state.set_boot(self._host.boot_id)

    def _reconcile_share(self, share: Share, table: Mapping[str, str]) -> None:
        target = str(self._state.mountpoint(share.name))
        held = self._state.held_volumes(share.name)
        if target in table and not held:
            log.info("share %s is mounted but nobody holds it: unmounting", share.name)
            self.shares.release(share)
        elif target in table and self._state.mount_record(share.name) is None:
            self.shares.remember_mount(share, table[target].rsplit(":", 1)[0])
        elif held and target not in table:
            log.warning(
                "share %s held by %s but not mounted; next Mount remounts", share.name, held
            )

    # Finding volumes.

    def _holding_share(self, name: str, mount_id: str) -> Share | None:
        # Found through this host's counts, not the catalog: a volume removed
        # elsewhere must still be released here.
        for share in self.config.shares.values():
            if mount_id in self._state.users(share.name, name):
                return share
        return None

    # The janitor's round (see nfsvol.periodic).

    def _trash_found(self, share: str) -> None:
        # Found by a sync (left by a crash, a restart or another host).
        self._trash.mark(share)
        self._janitor.wake()

    def _tidy(self) -> float | None:
        self.reclaim_leaked()
        self.shares.release_idle()
        mounted = self.health.check()
        for name in self._trash.pending():
            self._empty_trash(self.config.share(name), PURGE_PER_TICK)
        busy = self.shares.idle_shares() or mounted or self._trash.pending()
        return self.config.janitor_interval if busy else None

    # Mounts a dead dockerd left behind (see nfsvol.leaked).

    def activated(self, caller: Caller) -> None:
        """dockerd said hello; one we cannot see gets a new tag for its Mounts."""
        self.leaked.activated(caller)

    def reclaim_leaked(self) -> None:
        """Drop every mount whose dockerd is gone, of volumes no process uses."""
        gone = functools.cache(self.leaked.gone)  # one /proc read per dockerd per pass
        for share in self.config.shares.values():
            for name in self._state.held_volumes(share.name):
                if self.leaked.made_by(share.name, name, gone):
                    try:
                        with self._state.lock(share.name):
                            self._drop_leaked(share, name, gone)
                            self._after_unmount(share, name)
                    except NfsvolError as exc:  # e.g. the share's lock: the next round retries
                        log.warning("volume %s: leaked mounts kept for now: %s", name, exc)

    def _drop_leaked(
        self, share: Share, name: str, gone: Callable[[str], bool] | None = None
    ) -> None:
        directory = self.shares.root(share) / name
        orphaned = self.leaked.orphaned(share.name, name, directory, gone)
        if orphaned:
            self._forget_mounts(share.name, name, orphaned)

    def _forget_mounts(self, share: str, name: str, ids: list[str]) -> None:
        users = self._state.users(share, name)
        self._state.set_users(share, name, {i: n for i, n in users.items() if i not in ids})
        self._unpin_unused(share, name)

    # Leases: who holds a volume, across hosts (see nfsvol.holds).

    def _now(self) -> float:
        return self._clock().timestamp()

    # Per-volume details.

    def _new_record(self, name: str, options: VolumeOptions) -> VolumeRecord:
        return VolumeRecord(
            name=name,
            share=options.share,
            created_at=rfc3339(self._clock()),
            created_by=self._host.name,
            options=options.as_dict(),
        )

    def _check_on_share(self, share: Share, catalog: ShareCatalog, name: str) -> None:
        if catalog.read(name) is None:
            self._state.cache_drop(share.name, name)
            raise VolumeNotFound(
                f"volume {name!r} was removed from share {share.name!r}, "
                f"probably by another host; run `docker volume rm {name}`"
            )
        if not catalog.has_dir(name):
            raise VolumeNotFound(
                f"volume {name!r} has metadata but no directory on share "
                f"{share.name!r}; remove it with `docker volume rm {name}`"
            )

    def _refuse_in_use(self, share: str, name: str) -> None:
        # dockerd sends Remove only when no container of its own refers to
        # the volume, so mounts an earlier dockerd left are leaks.
        earlier = self.leaked.left_by_earlier_dockerd(share, name)
        if earlier:
            log.warning("volume %s: Remove drops mounts %s left by an earlier dockerd",
                        name, sorted(earlier))  # fmt: skip
            self._forget_mounts(share, name, earlier)
        users = self._state.users(share, name)
        if users:
            raise VolumeInUse(
                f"volume {name!r} is in use on this host by {len(users)} mount(s) "
                f"({', '.join(sorted(users))}); stop and remove those containers first"
            )

    def _dispose(self, share: Share, catalog: ShareCatalog, name: str) -> None:
        # Forget first: a crash midway then leaves data without metadata
        # (kept, as with retain), never metadata pointing at lost data.
        catalog.forget(name)
        if share.on_remove == "retain":
            return
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        area = "archive" if share.on_remove == "archive" else "trash"
        catalog.move_aside(name, area, stamp)  # deleted later, outside the lock: see remove

    def _mountpoint(self, record: VolumeRecord, users: Mapping[str, int]) -> str:
        return self._state.pin_point(record.share, record.name) if users else ""


def _check_same_options(record: VolumeRecord, options: VolumeOptions) -> None:
    wanted = options.as_dict()
    if record.options != wanted:
        raise VolumeConflict(
            f"volume {record.name!r} already exists with options {record.options}, "
            f"not {wanted}; remove it first or create it with the same options"
        )
