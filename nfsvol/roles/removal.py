"""Removing a volume from its share: the share's on_remove policy, and the trash after it.

A Remove forgets the record first, then retains, archives or trashes the
directory. Trashed trees are deleted outside the share's lock, a second
at a time: a huge tree never holds up Docker's answer or the share, and
the janitor (nfsvol.roles.periodic) deletes what is left.
"""

import logging
from collections.abc import Callable
from datetime import UTC

from nfsvol.clock import Clock
from nfsvol.config import Config, Share, ShareType
from nfsvol.host.attempt import Abandoned, bounded
from nfsvol.roles.holds import Holds
from nfsvol.roles.mountids import MountIds
from nfsvol.roles.shares import Shares
from nfsvol.share.catalog import ShareCatalog, TrashKeeper
from nfsvol.share.leases import LeaseStore
from nfsvol.state import HostState

# Seconds of trash deletion a Remove does before answering, and each janitor
# tick after it: a huge tree never holds up Docker or the share's lock.
PURGE_IN_REMOVE = 1.0
PURGE_PER_TICK = 2.0
log = logging.getLogger(__name__)


class Removal:
    """Take a volume off its share, and empty the trash it leaves."""

    def __init__(
        self,
        config: Config,
        shares: Shares,
        state: HostState,
        leases: Holds,
        mount_ids: MountIds,
        clock: Clock,
        wake_janitor: Callable[[], None],
    ) -> None:
        self.config = config
        self._shares = shares
        self._state = state
        self._leases = leases
        self._mount_ids = mount_ids
        self._clock = clock
        self._wake_janitor = wake_janitor
        self._trash = TrashKeeper()

    def remove(self, share: Share, name: str) -> None:
        """Apply the share's on_remove policy to a volume no container here holds."""
        with self._state.lock(share.name):
            self._mount_ids.refuse_in_use(share.name, name)
            with self._shares.access(share) as catalog:
                catalog.ensure_layout()
                # Marker first, then the look for holders: a Mount on another
                # host writes its lease first, then looks for the marker (see
                # Driver._mount_locked), so of the two racing one sees the other.
                marker = self._leases.mark_removing(share, catalog, name)
                try:
                    self._leases.refuse_held_elsewhere(share, catalog.root, name)
                    self._dispose(share, catalog, name)
                    LeaseStore(catalog.root, catalog.share).drop(name)
                finally:
                    self._leases.unmark_quietly(catalog, name, marker)
            self._state.records.drop(share.name, name)
            self._state.last_errors.drop(share.name, name)

    def purge(self, share: Share) -> None:
        """After a Remove's answer is settled: a second of deleting what it trashed."""
        self._trash.mark(share.name)
        self.empty_trash(share, PURGE_IN_REMOVE)

    def _dispose(self, share: Share, catalog: ShareCatalog, name: str) -> None:
        # Forget first: a crash midway then leaves data without metadata
        # (kept, as with retain), never metadata pointing at lost data.
        catalog.forget(name)
        if share.on_remove == "retain":
            return
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        area = "archive" if share.on_remove == "archive" else "trash"
        catalog.move_aside(name, area, stamp)  # deleted later, outside the lock: see purge

    def trash_found(self, share: str) -> None:
        """A sync saw trash on the share (left by a crash, a restart or another host)."""
        self._trash.mark(share)
        self._wake_janitor()

    def pending(self) -> list[str]:
        """Shares whose trash is not known to be empty."""
        return self._trash.pending()

    def empty_pending(self) -> None:
        """The janitor's share of the work: a few seconds of deleting on each share."""
        for name in self._trash.pending():
            self.empty_trash(self.config.share(name), PURGE_PER_TICK)

    def empty_trash(self, share: Share, budget: float) -> None:
        """Delete trashed trees without the share's lock; the janitor retries what is left."""
        if share.type == ShareType.NFS and self._state.mount_records.get(share.name) is None:
            self._trash.forget(share.name)  # unseen; the next sync while mounted looks again
            return
        catalog = ShareCatalog(self._shares.root(share), share.name)
        limit = budget + self.config.mount_timeout
        try:
            # Bounded like any other share work: a dead server must not hold
            # up the Remove's answer, nor the janitor (it probes health too).
            bounded(lambda _: self._trash.empty(catalog, budget), limit, f"trash on {share.name}")
        except Abandoned:
            log.warning("share %s: trash still being emptied after %gs", share.name, limit)
        if share.name in self._trash.pending():
            self._wake_janitor()
