"""Finding what is wrong on this host, for `nfsvol doctor`.

The Examiner compares this host's mounts, the plugin's state, dockerd and
each share's catalog, and names every inconsistency as an `Issue` with what to
do about it. It changes nothing; `nfsvol.ops.repair` fixes the fixable ones.
"""

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nfsvol.config import Config, Share, ShareType
from nfsvol.errors import NfsvolError
from nfsvol.host.mounter import Mounter
from nfsvol.ops.dockercli import Docker
from nfsvol.ops.probe import answers, share_root, timed, volume_dirs
from nfsvol.ops.shadows import SHADOWED, local_volume, shadow_verdict
from nfsvol.share import sharefs
from nfsvol.share.catalog import ShareCatalog, VolumeRecord
from nfsvol.state import HostState
from nfsvol.validate import NAME_RE

PARK_GRACE = 5.0  # seconds of slack before a parked mount left past its release counts as orphaned


@dataclass(frozen=True)
class Issue:
    """One inconsistency (or, with problem=False, a fact worth knowing)."""

    kind: str
    share: str
    subject: str
    detail: str
    fixable: bool = False
    problem: bool = True


class Examiner:
    """Finds every inconsistency on one host; changes nothing."""

    def __init__(
        self,
        config: Config,
        mounter: Mounter,
        state: HostState,
        docker: Docker,
        scratch: Path,
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._mounter = mounter
        self._state = state
        self._docker = docker
        self._scratch = scratch
        self._timeout = timeout
        self._clock = clock

    def examine(self) -> list[Issue]:
        """Every inconsistency on this host, share by share."""
        with sharefs.skips_seen() as skipped:
            issues = self._examine()
        return issues + [
            _bad_file(share, path, why) for (share, path), why in sorted(skipped.items())
        ]

    def _examine(self) -> list[Issue]:
        issues = []
        # dockerd keeps a `local` volume it made for a name nfsvol did not answer
        # for, and from then on never asks nfsvol about that name again.
        local = self._docker.local_volumes()
        why_not = self._docker.why_not
        for share in self.config.shares.values():
            if share.type == ShareType.NFS:
                issues += self._mount(share)
            issues += self._holders(share)
            issues += self._lost_leases(share)
            try:
                with share_root(share, self._mounter, self._scratch) as root:
                    issues += self._catalog(share, root, local)
            except (NfsvolError, OSError) as exc:
                issues.append(Issue("share-unreachable", share.name, share.name, str(exc)))
        if local is None:
            detail = f"not checked for volumes hiding nfsvol's ({why_not})"
            issues.append(Issue("cannot-verify", "dockerd", "local volumes", detail, problem=False))
        return issues

    def _mount(self, share: Share) -> list[Issue]:
        target = self._state.mountpoint(share.name)
        held = self._state.held_volumes(share.name)
        record = self._state.mount_records.get(share.name)
        if str(target) not in self._mounter.mount_points():
            return [_unmounted(share, held)] if held or record else []
        issues = []
        health = answers(target, self._timeout)
        if health == "stale":
            fix = "--fix unmounts it" if not held else "stop its containers, then run --fix"
            detail = f"{target}: stale NFS file handle (ESTALE); {fix}"
            issues.append(Issue("stale-handle", share.name, str(target), detail, not held))
        elif health != "ok":
            detail = f"{target}: {health}; check server {(record or {}).get('server', '?')}"
            issues.append(Issue("no-answer", share.name, str(target), detail))
        if not held and not self._parked(record):
            detail = f"{target} is mounted but no container here holds any of its volumes"
            issues.append(Issue("orphan-mount", share.name, str(target), detail, True))
        return issues

    def _parked(self, record: dict[str, Any] | None) -> bool:
        idle_since = (record or {}).get("idle_since")
        if not idle_since:
            return False
        # The plugin's janitor releases it within idle_unmount plus one of its ticks.
        limit = self.config.idle_unmount + self.config.janitor_interval + PARK_GRACE
        return self._clock() - float(idle_since) < limit

    def _holders(self, share: Share) -> list[Issue]:
        issues = []
        for name in sorted(self._state.held_volumes(share.name)):
            ids = ", ".join(sorted(self._state.users(share.name, name)))
            running = self._docker.containers_using(name)
            if running is None:
                detail = f"held by {ids}: cannot verify ({self._docker.why_not})"
                issues.append(Issue("cannot-verify", share.name, name, detail, problem=False))
            elif not running:
                detail = f"held by {ids}, but no running container uses it; --fix forgets them"
                issues.append(Issue("vanished-holder", share.name, name, detail, True))
        return issues

    def _lost_leases(self, share: Share) -> list[Issue]:
        issues = []
        for name in sorted(self._state.leases.names(share.name)):
            own = self._state.leases.get(share.name, name)
            if own is not None and own[0].lost:
                detail = (
                    "another host took this single-host volume over; its users here were "
                    "killed and Mounts are refused until its last container here stops"
                )
                issues.append(Issue("lease-lost", share.name, name, detail))
        return issues

    def _catalog(self, share: Share, root: Path, local: set[str] | None) -> list[Issue]:
        catalog = ShareCatalog(root, share.name)
        names = timed(catalog.names, self._timeout, f"share {share.name}")
        read = {n: timed(functools.partial(catalog.read, n), self._timeout, n) for n in names}
        # A file that is no usable record is reported as such (bad-share-file), not as a volume.
        records = {n: r for n, r in read.items() if r is not None}
        meta = set(records)
        dirs = set(timed(lambda: volume_dirs(root, _is_volume), self._timeout, str(root)))
        issues = [_orphan_dir(share, name) for name in sorted(dirs - meta)]
        for name in sorted(meta - dirs):
            detail = f"metadata but no directory on the share; `docker volume rm {name}` drops it"
            issues.append(Issue("metadata-without-dir", share.name, name, detail))
        for name in sorted(set(self._state.held_volumes(share.name)) - meta):
            detail = "held on this host but gone from the share (removed elsewhere?)"
            issues.append(Issue("held-unknown-volume", share.name, name, detail))
        return issues + self._shadows(share, meta & (local or set())) + self._cache(share, records)

    def _shadows(self, share: Share, names: set[str]) -> list[Issue]:
        issues = []
        for name in sorted(names):
            seen = local_volume(self._docker, name, self._timeout)
            if seen is not None:
                detail, fixable = shadow_verdict(name, *seen)
                issues.append(Issue(SHADOWED, share.name, name, detail, fixable))
        return issues

    def _cache(self, share: Share, records: dict[str, VolumeRecord]) -> list[Issue]:
        names = self._state.records.names(share.name)
        cached = {n: self._state.records.get(share.name, n) for n in names}
        extra = sorted(set(cached) - set(records))
        missing = sorted(set(records) - set(cached))
        outdated = sorted(n for n in set(cached) & set(records) if cached[n] != records[n])
        if not (extra or missing or outdated):
            return []
        parts = [f"{len(extra)} gone from the share", f"{len(missing)} missing"]
        detail = ", ".join([*parts, f"{len(outdated)} outdated"]) + "; --fix rebuilds it"
        return [Issue("stale-cache", share.name, f"cache/{share.name}", detail, True)]


def _is_volume(name: str) -> bool:
    return NAME_RE.fullmatch(name) is not None


def _unmounted(share: Share, held: list[str]) -> Issue:
    target = f"mnt/{share.name}"
    if held:
        detail = (
            f"volume(s) {', '.join(sorted(held))} held but the share is not mounted: their "
            "containers see an empty directory; restart them (the next Mount remounts)"
        )
        return Issue("held-not-mounted", share.name, target, detail)
    detail = "a mount record remains for a share that is not mounted; --fix forgets it"
    return Issue("stale-mount-record", share.name, target, detail, True)


def _bad_file(share: str, path: str, why: str) -> Issue:
    detail = (
        f"{why}; nfsvol ignores it. Inspect it on the share (it may be junk, or an "
        f"attack on the hosts), then delete it: rm -r <share root>/{path}"
    )
    return Issue("bad-share-file", share, path, detail)


def _orphan_dir(share: Share, name: str) -> Issue:
    kept = share.on_remove == "retain"
    why = "kept by on_remove: retain" if kept else "a Remove interrupted, or made by hand"
    detail = (
        f"a directory without metadata ({why}); `docker volume create -d nfsvol "
        f"-o share={share.name} {name}` adopts it, or delete it by hand"
    )
    return Issue("dir-without-metadata", share.name, name, detail, problem=not kept)
