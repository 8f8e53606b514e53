"""This host's holds on volumes: leases, Remove markers, renewal and fencing.

While a host has a volume mounted it holds a lease on the share
(nfsvol.share.leases), renewed every lease_ttl / 3 by the keeper thread. A
`single-host` volume has one owner: another host may take it over only
after watching its lease go unrenewed for ttl + grace on its own clock,
and a holder that cannot renew fences itself (kills the volume's users,
aborts the share's requests, reboots if one outlives the lease) by then.
A Remove announces itself with a marker on the share (catalog.RemoveMarker)
before it looks for leases, and a Mount takes its lease before it looks
for a marker: of a racing pair, at most one succeeds.
"""

import logging
import time
from pathlib import Path

from nfsvol.clock import Clock, rfc3339
from nfsvol.config import Config, Share, ShareType
from nfsvol.errors import NfsvolError, VolumeHeld, VolumeInUse, shown
from nfsvol.host.attempt import Abandoned, Attempt, bounded
from nfsvol.host.fence import Fencer
from nfsvol.host.mounter import Mounter
from nfsvol.roles.shares import Shares
from nfsvol.share.catalog import RemoveMarker, ShareCatalog, VolumeRecord
from nfsvol.share.leases import LOST, Lease, LeaseStore, Renewal, Watch, new_token
from nfsvol.state import HostState
from nfsvol.validate import AccessMode

log = logging.getLogger(__name__)

_MARKER_WATCH = "@removing"  # among a volume's watches; no lease file starts with "@"
FENCE_AT = 0.75  # of a single-host lease: give up renewing, fence by its end


class Holds:
    """Take, renew, give up and fence this host's leases; honour other hosts'."""

    def __init__(
        self,
        config: Config,
        shares: Shares,
        state: HostState,
        mounter: Mounter,
        fencer: Fencer,
        clock: Clock,
        host: str,
    ) -> None:
        self.config = config
        self._shares = shares
        self._state = state
        self._mounter = mounter  # to abort a fenced share's requests
        self._fencer = fencer
        self._clock = clock
        self._host = host
        self._renewing: set[tuple[str, str]] = set()  # renewals still stuck in this process

    def _now(self) -> float:
        return self._clock().timestamp()

    def grace(self) -> float:
        # Slack for clock rates and a renewal in flight: a former holder has
        # stopped renewing and fenced itself before anyone may take over.
        return max(1.0, self.config.lease_ttl / 10)

    def take(self, share: Share, root: Path, record: VolumeRecord) -> Lease | None:
        """Hold the volume for this host, or raise VolumeHeld naming the holder."""
        store, now = LeaseStore(root, share.name), rfc3339(self._clock())
        mine = Lease(self._host, now, now, self.config.lease_ttl, new_token())
        if record.options.get("access") != AccessMode.SINGLE_HOST:
            try:
                return store.hold(record.name, mine)
            except OSError as exc:
                # A shared lease only informs (inspect, rm elsewhere); a full
                # export must still mount, or nobody could clean it up.
                log.warning("volume %s: lease not recorded (%s); mounting anyway", record.name, exc)
                return None
        holders = store.holders(record.name)
        owner = next((h for h in holders if h.file.startswith("owner.")), None)
        if owner is not None and owner.host != self._host:
            self._refuse_live(share, record.name, owner, "Mount")
        claimed = store.claim(record.name, mine, owner)
        if claimed is None:  # another host claimed it between our read and our write
            raise VolumeHeld(
                f"volume {record.name!r} (access=single-host) was just claimed by another "
                "host; retry to see which"
            )
        return claimed

    def _refuse_live(self, share: Share, name: str, lease: Lease, verb: str) -> None:
        """Raise unless this host has watched `lease` go unrenewed for ttl + grace."""
        now = self._now()
        watch = self._watch(share.name, name, lease.file, lease.token, now)
        if watch.expired(lease, now, self.grace()):
            log.warning("volume %s: lease of host %s expired, taking over", name, lease.host)
            return
        wait = watch.remaining(lease, now, self.grace())
        error = VolumeHeld if verb == "Mount" else VolumeInUse
        raise error(
            f"volume {name!r} is held by host {lease.host!r} (since {lease.since}, renewed "
            f"{lease.renewed}); {verb} refused. If that host is down, its lease expires "
            f"and the volume is free {wait:.0f}s after its last renewal seen from here; "
            f"otherwise stop its containers there first"
        )

    def _watch(self, share: str, name: str, key: str, token: str, now: float) -> Watch:
        """This host's watch of `key` (a lease file or the marker); a new token restarts it."""
        watches = self._state.watches.get(share, name) or {}
        watch = watches.get(key)
        if watch is None or watch.token != token:
            watch = watches[key] = Watch(token, now)
            self._state.watches.put(share, name, watches)
        return watch

    def refuse_held_elsewhere(self, share: Share, root: Path, name: str) -> None:
        for lease in LeaseStore(root, share.name).holders(name):
            if lease.host != self._host:
                self._refuse_live(share, name, lease, "Remove")

    def _marker_bound(self, share: Share) -> float:
        # A live Remove keeps its marker for at most its call budget; twice
        # that, and never less than a lease, before a marker is taken for a
        # crash's leftover.
        return max(self.config.lease_ttl, 2 * self.config.call_budget(share))

    def _marker_wait(self, share: Share, name: str, marker: RemoveMarker) -> float:
        """Seconds until `marker` counts as left by a crash; 0 once it does.

        Judged like a lease: by how long this host has watched the same
        token on its own clock, never by the remover's clock.
        """
        now = self._now()
        watch = self._watch(share.name, name, _MARKER_WATCH, marker.token, now)
        return max(0.0, watch.first_seen + self._marker_bound(share) - now)

    def _live_marker(self, share: Share, name: str, marker: RemoveMarker | None) -> float:
        """Seconds another host's Remove `marker` still counts as live; 0 if it does not."""
        # Ours is left by a crash: this host's Removes run under the share's lock.
        if marker is None or marker.host == self._host:
            return 0.0
        wait = self._marker_wait(share, name, marker)
        if wait <= 0:
            log.warning("volume %s: ignoring the Remove marker host %r left over %gs ago",
                        name, marker.host, self._marker_bound(share))  # fmt: skip
        return wait

    def refuse_removing(self, share: Share, catalog: ShareCatalog, name: str) -> None:
        marker = catalog.removing(name)
        wait = self._live_marker(share, name, marker)
        if marker is not None and wait > 0:
            raise VolumeInUse(
                f"volume {name!r} is being removed by host {shown(marker.host)} (since "
                f"{shown(marker.since)}); Mount refused. Retry: once the Remove is done the volume "
                f"is gone (create it again), if it failed the Mount works; a marker left by "
                f"a host that crashed mid-Remove is ignored in {wait:.0f}s"
            )

    def mark_removing(self, share: Share, catalog: ShareCatalog, name: str) -> RemoveMarker:
        """Announce this host's Remove on the share, or raise if another host's is live."""
        now = rfc3339(self._clock())
        marker = RemoveMarker(self._host, now, new_token())
        for _ in range(3):
            if catalog.mark_removing(name, marker):
                return marker
            other = catalog.removing(name)
            wait = self._live_marker(share, name, other)
            if other is not None and wait > 0:
                raise VolumeInUse(
                    f"volume {name!r} is already being removed by host {shown(other.host)} "
                    f"(since {shown(other.since)}); retry to see the outcome (a marker left by a "
                    f"host that crashed mid-Remove is ignored in {wait:.0f}s)"
                )
            # Ours from a crash, left over, unusable, or just deleted: clear what we saw.
            catalog.unmark_removing(name, other)
        raise VolumeInUse(
            f"volume {name!r}: its Remove marker on share {share.name!r} could not be "
            "replaced; retry, and if this persists delete "
            f".nfsvol/removing/{name}.json on the share"
        )

    def unmark_quietly(self, catalog: ShareCatalog, name: str, marker: RemoveMarker) -> None:
        try:
            catalog.unmark_removing(name, marker)
        except (NfsvolError, OSError) as exc:
            # Left behind: this host ignores it, others after _marker_bound.
            log.warning("volume %s: could not delete its Remove marker: %s", name, exc)

    def drop_unused(self, catalog: ShareCatalog, name: str, lease: Lease) -> None:
        """Drop a lease just taken by a Mount that then failed."""
        try:
            LeaseStore(catalog.root, catalog.share).release(name, lease)
        except (NfsvolError, OSError) as exc:
            # Never renewed: a sync here drops it (see _left_behind), or it expires.
            log.warning("volume %s: could not drop the lease of a failed Mount: %s", name, exc)

    def refuse_lost(self, share: Share, name: str) -> None:
        own = self._state.leases.get(share.name, name)
        if own is not None and own[0].lost:
            raise VolumeHeld(
                f"volume {name!r} was taken over by another host while this host held it "
                "(its lease could not be renewed); stop its containers on this host, "
                "then retry"
            )

    def drop_quietly(self, share: Share, name: str) -> None:
        own = self._state.leases.get(share.name, name)
        self._state.leases.drop(share.name, name)
        self.mirror_own(share, name, None)
        if own is None or own[0].lost:
            return  # nothing of ours left on the share
        try:
            bounded(
                lambda _: LeaseStore(self._shares.root(share), share.name).release(name, own[0]),
                self.config.mount_timeout,
                name=f"lease release on {share.name}",
            )
        except (Abandoned, OSError) as exc:
            # Nobody renews it any more: it expires by itself after lease_ttl.
            log.warning("volume %s: could not drop its lease: %s", name, exc)

    def mirror_own(self, share: Share, name: str, lease: Lease | None) -> None:
        # Our own change shows in Get at once; other hosts' with the next sync.
        others = [
            h for h in (self._state.holders.get(share.name, name) or []) if h.host != self._host
        ]
        self._state.holders.put(share.name, name, others + ([lease] if lease else []))

    def renew_due(self) -> float | None:
        """Renew this host's leases that are due; fence the lost ones.

        Seconds until the next renewal is due (0: one is late), or None if
        no lease is held. No share lock: a stuck operation on the share
        must not delay a renewal. An Unmount racing a renewal is caught by
        the users check.
        """
        nearest = None
        for share in self.config.shares.values():
            for name in self._state.leases.names(share.name):
                try:
                    due = self._renew(share, name)
                except (NfsvolError, OSError) as exc:
                    log.warning("volume %s: lease renewal failed: %s", name, exc)
                    due = 0.0
                nearest = due if nearest is None else min(nearest, due)
        return nearest

    def keep(self) -> float | None:
        # Sleep until the next renewal is due, but retry a late one (or
        # check its fence deadline) every grace/2; wake at least every
        # lease_ttl/3, when a lease taken meanwhile is due at the earliest.
        due = self.renew_due()
        return None if due is None else max(due, self.grace() / 2)

    def _renew(self, share: Share, name: str) -> float:
        """Renew one lease if it is due; seconds until it is due again."""
        idle = self.config.lease_ttl / 3  # nothing to renew: check again then
        own = self._state.leases.get(share.name, name)
        if own is None or own[0].lost or not self._state.users(share.name, name):
            return idle
        lease, renewed_at = own
        now, single = self._now(), lease.file.startswith("owner.")
        if now - renewed_at < lease.ttl / 3:
            return min(renewed_at + lease.ttl / 3 - now, idle)
        # A single-host holder must have fenced itself by renewed_at + ttl
        # (another host may take over from ttl + grace after that instant),
        # so it gives up renewing a quarter of the lease before, to fence.
        fence_at = renewed_at + lease.ttl * FENCE_AT
        budget = min(lease.ttl / 3, fence_at - now) if single else lease.ttl / 3
        outcome, renewed = self._try_renewal(share, name, lease, budget)
        if renewed is not None:
            self._state.leases.put(share.name, name, (renewed, now))
            self.mirror_own(share, name, renewed)
            if not self._state.users(share.name, name):  # an Unmount ran meanwhile
                self.drop_quietly(share, name)
            return min(renewed.ttl / 3, idle)
        if outcome == Renewal.LOST:
            self._fence(share, name, lease, "another host took it over", self._now())
            return idle
        if single and self._now() >= fence_at:
            # Only single-host volumes can be taken over; a shared one is
            # renewed again once the server answers, and its users keep going.
            why = f"renewals failed for {self._now() - renewed_at:.1f}s of its {lease.ttl:g}s"
            self._fence(share, name, lease, why, renewed_at + lease.ttl)
            return idle
        return 0.0  # failed: try again soon

    def _try_renewal(
        self, share: Share, name: str, lease: Lease, budget: float
    ) -> tuple[Renewal, Lease | None]:
        """(RENEWED, lease), (LOST, None) if it is no longer ours, or (FAILED, None)."""
        key = (share.name, name)
        if budget <= 0 or key in self._renewing:
            return Renewal.FAILED, None  # out of time, or the last attempt is still stuck

        def work(_: Attempt) -> Lease | None:
            try:
                store = LeaseStore(self._shares.root(share), share.name)
                return store.renew(name, lease, rfc3339(self._clock()))
            finally:
                self._renewing.discard(key)

        self._renewing.add(key)
        try:
            renewed = bounded(work, budget, name=f"lease renewal on {share.name}")
        except (Abandoned, OSError) as exc:
            log.warning("volume %s: lease renewal failed: %s", name, exc)
            return Renewal.FAILED, None
        return (Renewal.RENEWED, renewed) if renewed is not None else (Renewal.LOST, None)

    def _fence(self, share: Share, name: str, lease: Lease, why: str, deadline: float) -> None:
        """Stop serving a volume whose lease is lost: kill its users, refuse new Mounts.

        Another host may take the volume over once the lease has gone
        unrenewed for ttl + grace; by `deadline` (the lease's end, on this
        host's clock) nothing here may be able to write to it any more.
        """
        lost = Lease(lease.host, lease.since, lease.renewed, lease.ttl, LOST, lease.file)
        self._state.leases.put(share.name, name, (lost, self._now()))
        started, root = time.monotonic(), self._shares.root(share)
        # A quarter of the grace, so the abort below still comes before a takeover.
        killed = self._fencer.stop(str(root / name), wait=self.grace() / 4)
        steps = [f"killed its users {killed} in {time.monotonic() - started:.2f}s"]
        for pid in self._fencer.alive(killed):
            log.warning("volume %s: fence: %s", name, self._fencer.describe(pid))
        if share.type == ShareType.NFS:
            # Drop what the killed left queued, forcing until they are gone.
            seconds = max(deadline - self._now(), self.grace())
            self._mounter.abort(str(root), lambda: not self._fencer.alive(killed), seconds)
            steps.append(f"aborted its server's requests by {time.monotonic() - started:.2f}s")
        log.error(
            "volume %s: lease lost (%s); %s; refusing Mounts of it here",
            name, why, ", ".join(steps),
        )  # fmt: skip
        survivors = self._fencer.alive(killed)
        if survivors:
            self._fence_failed(name, survivors)

    def _fence_failed(self, name: str, survivors: list[int]) -> None:
        """The killed did not die before the lease's end: another host may take over."""
        for pid in survivors:
            log.critical("volume %s: fence failed: %s", name, self._fencer.describe(pid))
        if self.config.on_fence_failure != "reboot":
            log.critical(
                "volume %s: processes %s outlived their fence; they may write after another "
                "host takes the volume over (on_fence_failure: log)", name, survivors,
            )  # fmt: skip
            return
        log.critical("volume %s: rebooting this host: processes %s outlived their fence "
                     "(on_fence_failure: reboot)", name, survivors)  # fmt: skip
        for handler in logging.getLogger().handlers:
            handler.flush()
        try:
            self._fencer.reset_host()
        except OSError as exc:
            log.critical("volume %s: could not reboot this host: %s", name, exc)
