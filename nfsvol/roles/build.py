"""The driver's roles and its two background threads, built in one place and handed to it.

`nfsvol.edge.server` builds them from the real parts, the tests from theirs;
the package's docstring (nfsvol.roles) says what each role does.
"""

from collections.abc import Callable
from dataclasses import dataclass

from nfsvol.clock import Clock
from nfsvol.config import Config
from nfsvol.host.fence import Fencer
from nfsvol.host.health import Prober
from nfsvol.host.mounter import Mounter
from nfsvol.roles.cache import CatalogCache
from nfsvol.roles.holds import Holds
from nfsvol.roles.leaked import LeakedMounts
from nfsvol.roles.monitor import HealthMonitor
from nfsvol.roles.mountids import MountIds
from nfsvol.roles.periodic import Periodic
from nfsvol.roles.removal import Removal
from nfsvol.roles.shares import Shares
from nfsvol.state import HostState


@dataclass(frozen=True)
class Roles:
    """Everything the driver composes, each with its own module."""

    shares: Shares
    catalog: CatalogCache
    leases: Holds
    leaked: LeakedMounts
    mount_ids: MountIds
    removal: Removal
    health: HealthMonitor
    janitor: Periodic
    renewer: Periodic


def build_roles(
    config: Config,
    mounter: Mounter,
    state: HostState,
    host: str,
    clock: Clock,
    *,
    sync_wait: float = 1.5,
    share_slots: int = 64,
    background: bool = True,
    fencer: Fencer | None = None,
    prober: Prober | None = None,
) -> Roles:
    """The roles of host `host`'s driver; `background=False` starts no thread (tests)."""

    def wake_janitor() -> None:  # each new share mount, and trash left to delete
        janitor.wake()

    fencer = fencer or Fencer()
    shares = Shares(config, mounter, state, clock, wake_janitor, share_slots)
    leases = Holds(config, shares, state, mounter, fencer, clock, host)
    leaked = LeakedMounts(state, fencer)
    mount_ids = MountIds(config, shares, state, mounter, leases, leaked)
    removal = Removal(config, shares, state, leases, mount_ids, clock, wake_janitor)
    catalog = CatalogCache(config, shares, state, clock, host, removal.trash_found, sync_wait)
    health = HealthMonitor(config, shares, state, mounter, prober or Prober(), clock)
    tidy = _janitor_round(config, shares, mount_ids, health, removal)
    janitor = Periodic(tidy, config.janitor_interval, enabled=background)
    # Its own thread: a stuck unmount or probe never delays a renewal or a fence.
    renewer = Periodic(leases.keep, leases.grace() / 2, enabled=background)
    return Roles(shares, catalog, leases, leaked, mount_ids, removal, health, janitor, renewer)


def _janitor_round(
    config: Config, shares: Shares, mount_ids: MountIds, health: HealthMonitor, removal: Removal
) -> Callable[[], float | None]:
    def tidy() -> float | None:
        """One round; the seconds to the next, or None when nothing is left to watch."""
        mount_ids.reclaim_leaked()
        shares.release_idle()
        mounted = health.check()
        removal.empty_pending()
        busy = shares.idle_shares() or mounted or removal.pending()
        return config.janitor_interval if busy else None

    return tidy
