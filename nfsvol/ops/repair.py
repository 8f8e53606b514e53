"""Fixing what `nfsvol doctor --fix` may fix: only what cannot lose data.

The Repairer takes the fixable issues the Examiner found and, share by share
under the share's lock, checks each again before acting: a container may have
started since. It never deletes anything on a share.
"""

from pathlib import Path

from nfsvol.config import Config, Share, ShareType
from nfsvol.errors import NfsvolError
from nfsvol.host.mounter import Mounter
from nfsvol.ops.dockercli import Docker
from nfsvol.ops.examine import Issue
from nfsvol.ops.probe import share_root
from nfsvol.ops.shadows import SHADOWED, local_volume, shadow_verdict
from nfsvol.share.catalog import ShareCatalog
from nfsvol.state import HostState


class Repairer:
    """Repairs what is safe to repair on one host, and says what it did."""

    def __init__(
        self,
        config: Config,
        mounter: Mounter,
        state: HostState,
        docker: Docker,
        scratch: Path,
        timeout: float,
    ) -> None:
        self.config = config
        self._mounter = mounter
        self._state = state
        self._docker = docker
        self._scratch = scratch
        self._timeout = timeout

    def repair(self, issues: list[Issue]) -> list[str]:
        """Fix the fixable issues, each share under its lock; say what was done."""
        done: list[str] = []
        for share in self.config.shares.values():
            mine = [i for i in issues if i.share == share.name and i.fixable]
            if mine:
                with self._state.lock(share.name):
                    done += self._repair_share(share, mine)
        return done

    def _repair_share(self, share: Share, issues: list[Issue]) -> list[str]:
        done = []
        for issue in issues:
            # Checked again under the lock: a container may have started since.
            vanished = issue.kind == "vanished-holder"
            if vanished and self._docker.containers_using(issue.subject) == []:
                self._state.set_users(share.name, issue.subject, {})
                self._mounter.unpin(self._state.pin_point(share.name, issue.subject))
                done.append(f"forgot the holders of volume {issue.subject} ({share.name})")
            if issue.kind == SHADOWED:
                done.append(self._unshadow(issue.subject))
        kinds = {i.kind for i in issues}
        if share.type == ShareType.NFS and kinds & {
            "orphan-mount",
            "stale-handle",
            "vanished-holder",
        }:
            done += self._unmount_unheld(share)
        if "stale-mount-record" in kinds and not self._state.held_volumes(share.name):
            self._state.mount_records.drop(share.name)
            done.append(f"forgot the mount record of share {share.name}")
        if "stale-cache" in kinds:
            done += self._rebuild_cache(share)
        return done

    def _unshadow(self, name: str) -> str:
        # Checked again right before: a container or a file may have come since.
        seen = local_volume(self._docker, name, self._timeout)
        if seen is None:
            return f"the local volume {name} is gone already"
        detail, fixable = shadow_verdict(name, *seen)
        if not fixable:
            return f"kept the local volume {name}: {detail}"
        if not self._docker.remove_volume(name):
            return f"could not remove the local volume {name}: {self._docker.why_not}"
        return f"removed the empty, unused local volume {name}; dockerd now asks nfsvol for it"

    def _unmount_unheld(self, share: Share) -> list[str]:
        target = str(self._state.mountpoint(share.name))
        if self._state.held_volumes(share.name) or target not in self._mounter.mount_points():
            return []
        try:
            self._mounter.unmount(target)
        except NfsvolError as exc:
            return [f"could not unmount {target}: {exc}"]
        self._state.mount_records.drop(share.name)
        return [f"unmounted {target}"]

    def _rebuild_cache(self, share: Share) -> list[str]:
        with share_root(share, self._mounter, self._scratch) as root:
            catalog = ShareCatalog(root, share.name)
            records = [catalog.read(n) for n in catalog.names()]
        for name in self._state.records.names(share.name):
            self._state.records.drop(share.name, name)
        for record in records:
            if record is not None:
                self._state.records.put(record.share, record.name, record)
        self._state.mark_synced(share.name)
        return [f"rebuilt the cache of share {share.name} ({len(records)} volume(s))"]
