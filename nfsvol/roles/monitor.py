"""Share health: a background probe of every mounted share, and what it does about one.

The janitor calls `check` each round; a share is probed once per
health_interval (nfsvol.host.health.Prober: a statfs and a read under a
deadline). A stale or hung share nobody holds is detached, so the next
Mount mounts it afresh; one that containers hold is only reported (the
state shows in `docker volume inspect` and `nfsvol doctor`).
"""

import logging

from nfsvol.clock import Clock
from nfsvol.config import Config, Share, ShareType
from nfsvol.errors import NfsvolError
from nfsvol.host.health import OK, STALE, UNREACHABLE, Prober, verdict
from nfsvol.host.mounter import Mounter
from nfsvol.roles.shares import Shares
from nfsvol.state import HostState

log = logging.getLogger(__name__)


class HealthMonitor:
    """Probes this host's mounted nfs shares and detaches the broken unused ones."""

    def __init__(
        self,
        config: Config,
        shares: Shares,
        state: HostState,
        mounter: Mounter,
        prober: Prober,
        clock: Clock,
    ) -> None:
        self.config = config
        self._shares = shares
        self._state = state
        self._mounter = mounter
        self._prober = prober
        self._clock = clock

    def _now(self) -> float:
        return self._clock().timestamp()

    def check(self) -> bool:
        """Probe each mounted nfs share that is due; True if any is mounted."""
        mounted = False
        for share in self.config.shares.values():
            if share.type != ShareType.NFS:
                continue
            if self._state.mount_records.get(share.name) is None:
                self._state.health.drop(share.name)
                continue
            mounted = True
            previous = self._state.health.get(share.name)
            if previous and self._now() - previous.checked < self.config.health_interval:
                continue
            root = str(self._state.mountpoint(share.name))
            state, detail = self._prober.probe(root, "ro" in share.options, self._probe_timeout())
            health = verdict(previous, state, detail, self._now())
            self._state.health.put(share.name, health)
            if previous is None or previous.state != state:
                log.log(
                    logging.INFO if state == OK else logging.WARNING,
                    "share %s is %s %s", share.name, state, detail,
                )  # fmt: skip
            if state in (STALE, UNREACHABLE):
                self._recover(share, state)
        return mounted

    def _probe_timeout(self) -> float:
        return min(self.config.mount_timeout, self.config.health_interval)

    def _recover(self, share: Share, state: str) -> None:
        """Detach a stale or hung share nobody holds: the next Mount mounts it afresh.

        A stale one held by containers is replaced by the next Mount (see
        Shares._ensure_reachable); a hung one held by containers is only reported.
        """
        if state == UNREACHABLE and not self._state.held_volumes(share.name):
            # Only our own reads can be waiting on it: fail them (EIO), so the
            # one holding the share's lock lets go of it.
            self._mounter.abort(str(self._state.mountpoint(share.name)))
        try:
            with self._state.lock(share.name):
                if not self._state.held_volumes(share.name):
                    log.warning("share %s is %s and unused: detaching it", share.name, state)
                    self._shares.release_quietly(share)
                    self._state.health.drop(share.name)
        except NfsvolError as exc:  # e.g. the share's lock: the next probe retries
            log.warning("share %s is %s; not detached for now: %s", share.name, state, exc)
