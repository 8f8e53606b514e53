"""This host's cache of every share's catalog, and keeping it true.

Get, Path and Mount answer from the cache when it holds the name, and
otherwise look that one name up on every share at once (`find`): never
"no such volume" from the cache alone, since dockerd then makes a local
volume of that name. List answers from the cache, synced at most once per
catalog_ttl (`refresh_stale`): a sync lists a share's records only when
the record folder's stamp changed (catalog.plan_reread), and mirrors every
host's leases for Get. Syncs and lookups run on threads of their own, one
per share, so a dead server holds a thread, not the caller.
"""

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import replace

from nfsvol.clock import Clock
from nfsvol.config import Config, Share
from nfsvol.errors import NfsvolError, VolumeConflict, VolumeNotFound
from nfsvol.host.health import UNREACHABLE
from nfsvol.roles.shares import Shares
from nfsvol.share.catalog import ShareCatalog, VolumeRecord, plan_reread
from nfsvol.share.leases import Lease, LeaseStore
from nfsvol.share.lookups import Lookups
from nfsvol.state import HostState
from nfsvol.validate import check_name

log = logging.getLogger(__name__)


class CatalogCache:
    """Every share's volumes as this host knows them, and how it learns more."""

    def __init__(
        self,
        config: Config,
        shares: Shares,
        state: HostState,
        clock: Clock,
        host: str,
        on_trash: Callable[[str], None],
        sync_wait: float = 1.5,
    ) -> None:
        self.config = config
        self._shares = shares
        self._state = state
        self._clock = clock
        self._host = host  # this host's name, on the leases it wrote
        self._on_trash = on_trash  # a share holds trash to empty
        self._sync_wait = sync_wait
        self._syncs: dict[str, tuple[threading.Thread, float]] = {}
        self._syncs_guard = threading.Lock()
        self._lookups = Lookups(self._read_records)

    def lookup(self, name: str) -> VolumeRecord | None:
        """The volume's record: from the cache, else looked up on the shares (find)."""
        return self.cached(name) or self.find(name)

    def require(self, name: str) -> VolumeRecord:
        """The volume's record, or VolumeNotFound naming the shares and the fix."""
        check_name(name)
        record = self.lookup(name)
        if record is None:
            raise VolumeNotFound(
                f"volume {name!r} does not exist on share(s) "
                f"{', '.join(self.config.share_names)}; create it with "
                f"`docker volume create -d nfsvol {name}`"
            )
        return record

    def refuse_other_share(self, name: str, share: str) -> None:
        """Raise VolumeConflict if `name` already lives on another share."""
        # The cache is enough here: a sync would cost a mount on every Create.
        record = self.cached(name)
        if record is not None and record.share != share:
            raise VolumeConflict(
                f"volume {name!r} already exists on share {record.share!r}; "
                f"pick another name, or use -o share={record.share}"
            )

    def cached(self, name: str) -> VolumeRecord | None:
        for share in self.config.share_names:
            record = self._state.records.get(share, name)
            if record is not None:
                return record
        return None

    def find(self, name: str) -> VolumeRecord | None:
        """Look the name up on every share at once; None only once they all said no.

        Never "no" from the cache alone: dockerd takes it as leave to make a
        local volume of that name and keeps it (moby's volume/service/store.go).
        A share that does not answer within mount_timeout, or failed lately, is
        not waited for: the answer is then "no", and the log says why.
        """
        wait = self.config.mount_timeout
        asked = {s.name: self._lookups.ask(s.name, name) for s in self._answering(name, wait)}
        late = self._lookups.wait(asked, lambda: self.cached(name) is not None, wait)
        record = self.cached(name)
        if record is None and late:
            log.warning("volume %s: share(s) %s gave no answer within %gs; answering that "
                        "it does not exist", name, ", ".join(late), wait)  # fmt: skip
            for share in late:  # every worker skips it for its budget (_answering)
                self._state.unanswered.put(share, self._now())
        return record

    def _answering(self, name: str, wait: float) -> list[Share]:
        """The shares worth asking: not stuck, not failed within their budget."""
        shares = []
        for share in self.config.shares.values():
            why = self._why_not_ask(share, wait)
            if why is None:
                shares.append(share)
            else:
                log.warning("volume %s: share %s not asked: %s", name, share.name, why)
        return shares

    def _why_not_ask(self, share: Share, wait: float) -> str | None:
        # Cheapest first: this runs for every share on every miss.
        if self._lookups.overdue(share.name):
            return f"its lookup under way has waited on the server over {wait:g}s"
        since = self._state.unanswered.get(share.name)
        ago = None if since is None else self._now() - since
        if ago is not None and ago < self._shares.budget(share):
            return f"a lookup on it failed or gave no answer {ago:.0f}s ago"
        health = self._state.health.get(share.name)
        if health is not None and health.state == UNREACHABLE:
            return "its server does not answer"
        return None

    def _read_records(self, share_name: str, names: Collection[str]) -> None:
        """Read the named records on the share into the cache (a Lookups pass)."""
        share = self.config.share(share_name)
        try:
            with self._state.lock(share.name), self._shares.access(share) as catalog:
                for name in names:  # one file each: a LOOKUP the server answers afresh
                    record = catalog.read(name)
                    if record is not None:
                        self._state.records.put(record.share, record.name, record)
        except Exception:
            self._state.unanswered.put(share.name, self._now())
            raise
        if self._state.unanswered.get(share.name) is not None:
            self._state.unanswered.drop(share.name)

    def refresh_stale(self) -> None:
        """Sync every share whose cache is older than catalog_ttl, waiting at most sync_wait."""
        self.sync_shares(self.stale_shares(), self._sync_wait)

    def stale_shares(self) -> list[Share]:
        return [share for share in self.config.shares.values() if self._is_stale(share)]

    def _is_stale(self, share: Share) -> bool:
        synced_at = self._state.synced_at(share.name) or 0.0
        return self._now() - synced_at > self.config.catalog_ttl

    def sync_shares(self, shares: list[Share], wait: float, linger: bool = True) -> None:
        # One wait for them all (three shares on one dead server cost `wait`,
        # not three times it), and none for a sync already stuck that long.
        deadline = time.monotonic() + wait
        for thread in [self._start_sync(share, deadline, wait, linger) for share in shares]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))

    def _start_sync(
        self, share: Share, deadline: float, wait: float, linger: bool
    ) -> threading.Thread | None:
        """The share's sync thread, started if none runs; None if it is stuck."""
        # One sync per share per process: a hung server must not pile up threads.
        with self._syncs_guard:
            thread, started = self._syncs.get(share.name, (None, 0.0))
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self._sync, args=(share, linger), daemon=True)
                started = time.monotonic()
                self._syncs[share.name] = (thread, started)
                thread.start()
        return thread if started + 2 * wait > deadline else None

    def _sync(self, share: Share, linger: bool) -> None:
        try:
            with self._state.lock(share.name):
                if not self._is_stale(share):
                    return  # another worker synced it while this one waited
                with self._shares.access(share, linger) as catalog:
                    self._mirror(share.name, catalog)
        except (NfsvolError, OSError) as exc:
            log.warning("cannot read the catalog of share %s: %s", share.name, exc)
        # Stamp even on failure so a dead server is retried once per TTL.
        self._state.mark_synced(share.name, self._now())

    def _mirror(self, share: str, catalog: ShareCatalog) -> None:
        self._mirror_records(share, catalog)
        self._mirror_holders(share, LeaseStore(catalog.root, catalog.share))
        if catalog.trash_entries():  # left by a crash, a restart or another host
            self._on_trash(share)

    def _mirror_records(self, share: str, catalog: ShareCatalog) -> None:
        # Listing 50,000 records costs hundreds of READDIRs; an unchanged
        # folder stamp costs one GETATTR, so an idle catalog is nearly free.
        now = self._now()
        listing = plan_reread(self._state.listing(share), catalog.stamp(), now)
        if listing is None:
            return
        on_share = set(catalog.names())
        cached = set(self._state.records.names(share))
        for name in on_share - cached:
            record = catalog.read(name)
            if record is not None:
                self._state.records.put(record.share, record.name, record)
        held = [name for name in cached - on_share if self._state.users(share, name)]
        for name in cached - on_share - set(held):
            self._state.records.drop(share, name)
        # A held name kept though gone from the share: the cache differs, so list again.
        self._state.set_listing(share, replace(listing, steady=listing.steady and not held))
        log.debug("share %s: listed %d records in %.0f ms", share, len(on_share),
                  1000 * (self._now() - now))  # fmt: skip

    def _mirror_holders(self, share: str, store: LeaseStore) -> None:
        leased = store.volumes()
        for name in leased:
            holders = store.holders(name)
            stale = [h for h in holders if self._left_behind(share, name, h)]
            for lease in stale:
                store.release(name, lease)
            self._state.holders.put(share, name, [h for h in holders if h not in stale])
        for name in set(self._state.holders.names(share)) - set(leased):
            self._state.holders.put(share, name, [])

    def _left_behind(self, share: str, name: str, lease: Lease) -> bool:
        # Ours on the share but not in our state: from before a reboot or a
        # kill between the lease and the state write. Nothing here renews it,
        # and left alone it would hold up `docker volume rm` elsewhere.
        return lease.host == self._host and self._state.leases.get(share, name) is None

    def _now(self) -> float:
        return self._clock().timestamp()
