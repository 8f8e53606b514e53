"""The volume driver: Docker's verbs in plain Python types, and start-up reconcile.

The driver owns no I/O of its own making: the mounter, the host state, the
clock and its roles (nfsvol.roles: reaching shares, the catalog cache,
leases, mount IDs, removal, health) come in through the constructor, and
`nfsvol.edge.server` builds the real ones. Each share has its own lock; no lock
is ever global.
"""

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from nfsvol.clock import Clock, rfc3339, utc_now
from nfsvol.config import Config, Share, ShareType
from nfsvol.errors import NfsvolError, VolumeConflict, VolumeNotFound
from nfsvol.host.attempt import Abandoned, Attempt
from nfsvol.host.dockerd import UNSEEN, Caller
from nfsvol.host.mounter import Mounter
from nfsvol.roles.build import Roles
from nfsvol.roles.status import volume_status
from nfsvol.share.catalog import ShareCatalog, VolumeRecord
from nfsvol.share.leases import LeaseStore
from nfsvol.state import HostState
from nfsvol.validate import VolumeOptions, check_name, check_new_name, parse_volume_options
from nfsvol.verbs import Volume

log = logging.getLogger("nfsvol.driver")


@dataclass(frozen=True)
class Host:
    """Who this host is: its name and the boot its mounts belong to."""

    name: str
    boot_id: str


class Driver:
    """Create, mount and remove volumes that live on configured shares."""

    def __init__(
        self,
        config: Config,
        mounter: Mounter,
        state: HostState,
        host: Host,
        roles: Roles,
        clock: Clock = utc_now,
    ) -> None:
        self.config = config
        self._mounter = mounter
        self._state = state
        self._host = host
        self._clock = clock
        self.shares = roles.shares
        self.catalog = roles.catalog
        self.leases = roles.leases
        self.leaked = roles.leaked
        self.mount_ids = roles.mount_ids
        self.removal = roles.removal
        self.health = roles.health
        self._janitor = roles.janitor
        self._renewer = roles.renewer

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
            self._state.records.put(record.share, record.name, record)

    def remove(self, name: str) -> None:
        """Apply the share's on_remove policy; an unknown volume is already gone."""
        check_name(name)
        record = self.catalog.lookup(name)
        if record is None:
            return
        share = self.config.share(record.share)
        self.shares.bounded_work(share, "Remove", lambda _: self.removal.remove(share, name))
        log.info("removed volume %s (%s)", name, share.on_remove)
        self.removal.purge(share)

    def mount(self, name: str, mount_id: str, caller: Caller = UNSEEN) -> str:
        """Make the volume reachable on this host for `mount_id`; return its path."""
        record = self.catalog.require(name)
        share = self.config.share(record.share)
        try:
            work = functools.partial(self._mount, record, mount_id, caller)
            return self.shares.bounded_work(share, "Mount", work)
        except NfsvolError as exc:
            error = {"time": rfc3339(self._clock()), "error": str(exc)}
            self._state.last_errors.put(record.share, name, error)
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
            self.mount_ids.forget_restarted(share.name, name, mount_id)
            self.mount_ids.drop_leaked(share, name)
            users = self._state.users(share.name, name)
            self.leases.refuse_lost(share, name)
            # Lease first, then the look for a Remove (whose marker comes
            # before its look for leases): see nfsvol.roles.removal. With users here the
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
                self.mount_ids.unpin_unused(share.name, name)
                if lease is not None:  # Docker was told this Mount failed: hold nothing
                    self.leases.drop_unused(catalog, name, lease)
                raise
            if lease is not None:
                self._state.leases.put(share.name, name, (lease, self._now()))
                self._state.holders.put(share.name, name, holders)
                self._renewer.wake()  # renews it
            self.mount_ids.add(share.name, name, mount_id, caller)
            self.shares.unpark(share)
        return self._state.pin_point(share.name, name)

    def unmount(self, name: str, mount_id: str) -> None:
        """Release one Mount of `mount_id`; an extra Unmount changes nothing."""
        check_name(name)
        share = self.mount_ids.holding_share(name, mount_id)
        if share is not None:
            with self._state.lock(share.name):
                self.mount_ids.remove(share, name, mount_id)

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
            names = sorted(self._state.records.names(share.name))
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
                    self.mount_ids.unpin_unused(share.name, name)  # left by a crash or a reboot
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
        if any(self._state.leases.names(s) for s in self.config.share_names):
            self._renewer.wake()  # a restarted plugin renews what it held
        self._janitor.wake()  # probes what is mounted

    def _forget_previous_boot(self) -> None:
        # No container survives a reboot holding a mount, so counts from an
        # earlier boot describe nobody.
        for share in self.config.share_names:
            for name in self._state.held_volumes(share):
                self._state.set_users(share, name, {})
            for name in self._state.leases.names(share):  # left to expire on the share
                self._state.leases.drop(share, name)
            self._state.mount_records.drop(share)
        self._state.set_boot(self._host.boot_id)

    def _reconcile_share(self, share: Share, table: Mapping[str, str]) -> None:
        target = str(self._state.mountpoint(share.name))
        held = self._state.held_volumes(share.name)
        if target in table and not held:
            log.info("share %s is mounted but nobody holds it: unmounting", share.name)
            self.shares.release(share)
        elif target in table and self._state.mount_records.get(share.name) is None:
            self.shares.remember_mount(share, table[target].rsplit(":", 1)[0])
        elif held and target not in table:
            log.warning(
                "share %s held by %s but not mounted; next Mount remounts", share.name, held
            )

    # Mounts a dead dockerd left behind (see nfsvol.roles.leaked).

    def activated(self, caller: Caller) -> None:
        """dockerd said hello; one we cannot see gets a new tag for its Mounts."""
        self.leaked.activated(caller)

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
            self._state.records.drop(share.name, name)
            raise VolumeNotFound(
                f"volume {name!r} was removed from share {share.name!r}, "
                f"probably by another host; run `docker volume rm {name}`"
            )
        if not catalog.has_dir(name):
            raise VolumeNotFound(
                f"volume {name!r} has metadata but no directory on share "
                f"{share.name!r}; remove it with `docker volume rm {name}`"
            )

    def _mountpoint(self, record: VolumeRecord, users: Mapping[str, int]) -> str:
        return self._state.pin_point(record.share, record.name) if users else ""


def _check_same_options(record: VolumeRecord, options: VolumeOptions) -> None:
    wanted = options.as_dict()
    if record.options != wanted:
        raise VolumeConflict(
            f"volume {record.name!r} already exists with options {record.options}, "
            f"not {wanted}; remove it first or create it with the same options"
        )
