"""Who holds each volume on this host: Docker's mount IDs, and letting go after the last.

dockerd sends a Mount and an Unmount per container (and per copy-up), each
with an ID. The counts live in the host state (nfsvol.state); this role
changes them, and when a volume's last ID goes it unpins the volume's
directory, gives up its lease and parks the share. Mounts a dead dockerd
left behind (nfsvol.roles.leaked judges which) are forgotten here too.
"""

import functools
import logging
from collections.abc import Callable

from nfsvol.config import Config, Share, ShareType
from nfsvol.errors import NfsvolError, VolumeInUse
from nfsvol.host.dockerd import Caller
from nfsvol.host.mounter import Mounter
from nfsvol.roles.holds import Holds
from nfsvol.roles.leaked import LeakedMounts
from nfsvol.roles.shares import Shares
from nfsvol.state import HostState

log = logging.getLogger(__name__)


class MountIds:
    """Count Mounts per ID, release what nobody here holds, forget leaked IDs."""

    def __init__(
        self,
        config: Config,
        shares: Shares,
        state: HostState,
        mounter: Mounter,
        leases: Holds,
        leaked: LeakedMounts,
    ) -> None:
        self.config = config
        self._shares = shares
        self._state = state
        self._mounter = mounter
        self._leases = leases
        self._leaked = leaked

    def add(self, share: str, name: str, mount_id: str, caller: Caller) -> None:
        """With the share locked: one more Mount of `mount_id`, made by `caller`'s dockerd."""
        ids, by = self._state.mounts(share, name)
        ids[mount_id] = ids.get(mount_id, 0) + 1
        by[mount_id] = self._leaked.tag(caller)
        self._state.set_users(share, name, ids, by)

    def holding_share(self, name: str, mount_id: str) -> Share | None:
        """The share on which `mount_id` holds `name` here.

        Found through this host's counts, not the catalog: a volume removed
        elsewhere must still be released here.
        """
        for share in self.config.shares.values():
            if mount_id in self._state.users(share.name, name):
                return share
        return None

    def remove(self, share: Share, name: str, mount_id: str) -> None:
        """With the share locked: one Unmount of `mount_id`; an extra one changes nothing."""
        ids = self._state.users(share.name, name)
        if mount_id not in ids:
            return
        ids[mount_id] -= 1
        self._state.set_users(share.name, name, {k: n for k, n in ids.items() if n > 0})
        self.let_go(share, name)

    def let_go(self, share: Share, name: str) -> None:
        """With the share locked: let go of what nobody here holds any more."""
        if not self._state.users(share.name, name):
            self.unpin_unused(share.name, name)
            self._leases.drop_quietly(share, name)
        if share.type == ShareType.NFS and not self._state.held_volumes(share.name):
            # dockerd Mounts twice per `docker run` (copy-up at create, then
            # start) and often runs the next container at once: parked, the
            # share serves them all without a mount.nfs and umount each.
            self._shares.park(share)

    def unpin_unused(self, share: str, name: str) -> None:
        """Unpin the volume's directory unless some ID here still holds it."""
        if not self._state.users(share, name):
            self._mounter.unpin(self._state.pin_point(share, name))

    def forget(self, share: str, name: str, ids: list[str]) -> None:
        """Drop `ids` from the volume's holders here, whatever their counts."""
        users = self._state.users(share, name)
        self._state.set_users(share, name, {i: n for i, n in users.items() if i not in ids})
        self.unpin_unused(share, name)

    def forget_restarted(self, share: str, name: str, mount_id: str) -> None:
        """With the share locked: before a Mount, forget `mount_id` if an earlier dockerd made it.

        moby mounts a restarted container again under its old mount ID, and
        starts a container only once its task is gone. So that ID's count
        from a dead dockerd will never see its Unmount, however busy the
        volume: a process that uses it now is another container, or one
        starting (runc's init briefly holds a copy of this host's mounts).
        """
        if mount_id in self._leaked.left_by_earlier_dockerd(share, name):
            log.warning("volume %s: mount %s, made by an earlier dockerd, starts afresh",
                        name, mount_id)  # fmt: skip
            self.forget(share, name, [mount_id])

    def refuse_in_use(self, share: str, name: str) -> None:
        """Raise VolumeInUse if a live container here holds the volume."""
        # dockerd sends Remove only when no container of its own refers to
        # the volume, so mounts an earlier dockerd left are leaks.
        earlier = self._leaked.left_by_earlier_dockerd(share, name)
        if earlier:
            log.warning("volume %s: Remove drops mounts %s left by an earlier dockerd",
                        name, sorted(earlier))  # fmt: skip
            self.forget(share, name, earlier)
        users = self._state.users(share, name)
        if users:
            raise VolumeInUse(
                f"volume {name!r} is in use on this host by {len(users)} mount(s) "
                f"({', '.join(sorted(users))}); stop and remove those containers first"
            )

    def reclaim_leaked(self) -> None:
        """Drop every mount whose dockerd is gone, of volumes no process uses."""
        gone = functools.cache(self._leaked.gone)  # one /proc read per dockerd per pass
        for share in self.config.shares.values():
            for name in self._state.held_volumes(share.name):
                if self._leaked.made_by(share.name, name, gone):
                    try:
                        with self._state.lock(share.name):
                            self.drop_leaked(share, name, gone)
                            self.let_go(share, name)
                    except NfsvolError as exc:  # e.g. the share's lock: the next round retries
                        log.warning("volume %s: leaked mounts kept for now: %s", name, exc)

    def drop_leaked(
        self, share: Share, name: str, gone: Callable[[str], bool] | None = None
    ) -> None:
        """With the share locked: forget the volume's IDs whose dockerd is gone."""
        directory = self._shares.root(share) / name
        orphaned = self._leaked.orphaned(share.name, name, directory, gone)
        if orphaned:
            self.forget(share.name, name, orphaned)
