"""`nfsvol doctor`: compare this host's mounts, the plugin's state and the shares.

Each inconsistency gets a name and what to do about it. `repair` fixes only
what cannot lose data: it unmounts shares nobody holds, forgets counts of
containers Docker no longer runs, rebuilds the catalog cache and removes an
empty local volume no container uses that hides an nfsvol volume of the same
name from dockerd. It never deletes anything on a share.
"""

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from nfsvol import sharefs
from nfsvol.catalog import ShareCatalog, VolumeRecord
from nfsvol.config import Config, Share
from nfsvol.errors import NfsvolError, printable
from nfsvol.leases import LOST
from nfsvol.mounter import Mounter
from nfsvol.ops.dockercli import Docker
from nfsvol.ops.probe import answers, share_root, timed, volume_dirs
from nfsvol.ops.shadows import SHADOWED, local_volume, shadow_verdict
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


class Doctor:
    """Examines one host, and repairs what is safe to repair."""

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
            if share.type == "nfs":
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

    # What is wrong.

    def _mount(self, share: Share) -> list[Issue]:
        target = self._state.mountpoint(share.name)
        held = self._state.held_volumes(share.name)
        record = self._state.mount_record(share.name)
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
        for name in sorted(self._state.own_leases(share.name)):
            own = self._state.own_lease(share.name, name)
            if own is not None and own[0].token == LOST:
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
        names = self._state.cached_names(share.name)
        cached = {n: self._state.cached(share.name, n) for n in names}
        extra = sorted(set(cached) - set(records))
        missing = sorted(set(records) - set(cached))
        outdated = sorted(n for n in set(cached) & set(records) if cached[n] != records[n])
        if not (extra or missing or outdated):
            return []
        parts = [f"{len(extra)} gone from the share", f"{len(missing)} missing"]
        detail = ", ".join([*parts, f"{len(outdated)} outdated"]) + "; --fix rebuilds it"
        return [Issue("stale-cache", share.name, f"cache/{share.name}", detail, True)]

    # Repairs.

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
        if share.type == "nfs" and kinds & {"orphan-mount", "stale-handle", "vanished-holder"}:
            done += self._unmount_unheld(share)
        if "stale-mount-record" in kinds and not self._state.held_volumes(share.name):
            self._state.set_mount_record(share.name, None)
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
        self._state.set_mount_record(share.name, None)
        return [f"unmounted {target}"]

    def _rebuild_cache(self, share: Share) -> list[str]:
        with share_root(share, self._mounter, self._scratch) as root:
            catalog = ShareCatalog(root, share.name)
            records = [catalog.read(n) for n in catalog.names()]
        for name in self._state.cached_names(share.name):
            self._state.cache_drop(share.name, name)
        for record in records:
            if record is not None:
                self._state.cache_put(record)
        self._state.mark_synced(share.name)
        return [f"rebuilt the cache of share {share.name} ({len(records)} volume(s))"]


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


def report(source: str, issues: list[Issue], out: TextIO) -> bool:
    """Print the issues and a verdict; True if nothing is inconsistent."""
    print(f"nfsvol doctor: {source}", file=out)
    for i in issues:
        mark = "note" if not i.problem else ("FIX" if i.fixable else "WARN")
        line = f"  {mark:<4} {i.kind:<20} {i.share}: {i.subject}: {i.detail}"
        print(printable(line), file=out)  # subjects and details quote names read from shares
    problems = [i for i in issues if i.problem]
    if not problems:
        print(f"verdict: OK: no inconsistency ({len(issues)} note(s))", file=out)
        return True
    fixable = sum(i.fixable for i in problems)
    print(f"verdict: {len(problems)} inconsistency(ies), {fixable} fixable with --fix", file=out)
    return False
