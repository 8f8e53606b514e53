"""Per-host state under `state_dir`, shared safely by every gunicorn worker.

    state_dir/boot_id                   the boot the counts below belong to
    state_dir/locks/<share>.lock        flock held while changing a share
    state_dir/mnt/<share>/              where an nfs share is mounted
    state_dir/vol/<share>/<vol>/        the volume's directory, bind-mounted while
                                        mounted here: the path dockerd is given
    state_dir/users/<share>/<vol>.json  {"ids": {mount ID: count}, "by": {mount ID:
                                        which dockerd mounted it}} on this host
    state_dir/activation                tags Mounts when we cannot see dockerd
    state_dir/mounts/<share>.json       which server the share is mounted from
    state_dir/good_server/<share>.json  the server that mounted it last (tried first)
    state_dir/cache/<share>/<vol>.json  mirror of the share's metadata
    state_dir/cache/<share>/.listing    when it was last listed from the share, and the stamp seen
    state_dir/errors/<share>/<vol>.json the last failed Mount of the volume here
    state_dir/leases/<share>/<vol>.json this host's lease on the volume
    state_dir/watch/<share>/<vol>.json  other hosts' leases and Remove markers as seen from here
    state_dir/holders/<share>/<vol>.json every host's lease, mirrored for Get
    state_dir/health/<share>.json       the last probe of the share's mount
    state_dir/unanswered/<share>.json   when a lookup of a name on the share last
                                        failed or outlived its wait (every worker skips it)

Every file is replaced atomically (write, then rename), so a `kill -9` at
any moment leaves either the old or the new counts, never a torn file: a
dead process loses nothing it wrote to the page cache. Only boot_id and
activation are fsynced. Everything else describes this boot alone (a
reboot discards it, see Driver.reconcile), so power loss cannot make it
wrong, and an fsync per Mount would only cost time.
"""

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nfsvol import fsutil
from nfsvol.catalog import Listing, VolumeRecord
from nfsvol.errors import OperationTimeout
from nfsvol.health import Health
from nfsvol.leases import Lease, Watch


class HostState:
    """This host's mount counts, share mounts and catalog cache."""

    def __init__(self, state_dir: Path, shares: tuple[str, ...], lock_timeout: float) -> None:
        self.root = state_dir
        self._dir = str(state_dir)  # hot-path reads build plain strings, not Paths
        self._lock_timeout = lock_timeout
        for share in shares:
            subs = ("locks", "mnt/" + share, "vol/" + share, "users/" + share, "mounts",
                    "cache/" + share, "health", "unanswered", "good_server")  # fmt: skip
            leases = ("leases/" + share, "watch/" + share, "holders/" + share)
            for sub in (*subs, "errors/" + share, *leases):
                (state_dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(state_dir, 0o700)

    def mountpoint(self, share: str) -> Path:
        """Where an nfs share is mounted on this host."""
        return self.root / "mnt" / share

    def pin_point(self, share: str, name: str) -> str:
        """Where the volume's directory is pinned while it is mounted here."""
        return f"{self._dir}/vol/{share}/{name}"  # a hot path (Get, List): no Path

    def pinned(self, share: str) -> list[str]:
        """Volumes of the share with a pin point on this host (mounted or left over)."""
        return sorted(os.listdir(self.root / "vol" / share))

    @contextlib.contextmanager
    def lock(self, share: str) -> Iterator[None]:
        """Serialise changes to one share across workers and threads."""
        try:
            with fsutil.file_lock(self.root / "locks" / f"{share}.lock", self._lock_timeout):
                yield
        except fsutil.LockTimeout:
            raise OperationTimeout(
                f"share {share!r} stayed busy for {self._lock_timeout:g}s: another "
                "operation on it is stuck, most likely on an unreachable NFS server; "
                "check the server, then retry"
            ) from None

    # Mount IDs: who on this host holds each volume.

    def users(self, share: str, name: str) -> dict[str, int]:
        """Mount ID -> number of Mounts not yet matched by an Unmount."""
        data = self._users_data(share, name)  # Get and Path read this: no tags built
        return {} if data is None else dict(data["ids"])

    def mounted_by(self, share: str, name: str) -> dict[str, str]:
        """Mount ID -> tag of the dockerd that last mounted it ("" if not known)."""
        return self.mounts(share, name)[1]

    def mounts(self, share: str, name: str) -> tuple[dict[str, int], dict[str, str]]:
        """users() and mounted_by() from one read of the file."""
        data = self._users_data(share, name)
        if data is None:
            return {}, {}
        ids, by = dict(data["ids"]), data.get("by", {})
        return ids, {mount_id: by.get(mount_id, "") for mount_id in ids}

    def _users_data(self, share: str, name: str) -> Any:
        return fsutil.read_json(f"{self._dir}/users/{share}/{name}.json")

    def set_users(
        self, share: str, name: str, ids: dict[str, int], by: Mapping[str, str] | None = None
    ) -> None:
        """Record the holders (and who mounted them); an empty map deletes the file."""
        path = self._users_file(share, name)
        if ids:
            by = self.mounted_by(share, name) if by is None else by
            data = {"ids": ids, "by": {i: by.get(i, "") for i in ids}}
            fsutil.write_json(path, data, durable=False)
        else:
            fsutil.remove_file(path, durable=False)

    def held_volumes(self, share: str) -> list[str]:
        """Volumes of `share` that some container on this host holds."""
        names = os.listdir(f"{self._dir}/users/{share}")
        return [n[:-5] for n in names if n.endswith(".json") and not n.startswith(".")]

    def _users_file(self, share: str, name: str) -> Path:
        return self.root / "users" / share / f"{name}.json"

    # Share mounts: which server each mounted share came from.

    def mount_record(self, share: str) -> dict[str, Any] | None:
        """What we know of the share's mount on this host, if any."""
        data: dict[str, Any] | None = fsutil.read_json(f"{self._dir}/mounts/{share}.json")
        return data

    def set_mount_record(self, share: str, record: dict[str, Any] | None) -> None:
        """Remember (or forget) the server the share is mounted from."""
        path = self.root / "mounts" / f"{share}.json"
        if record is None:
            fsutil.remove_file(path, durable=False)
        else:
            fsutil.write_json(path, record, durable=False)

    def good_server(self, share: str) -> str | None:
        """The server that mounted the share last on this host, kept after unmounts."""
        server: str | None = fsutil.read_json(f"{self._dir}/good_server/{share}.json")
        return server

    def set_good_server(self, share: str, server: str) -> None:
        """Try `server` first next time, in every worker."""
        fsutil.write_json(self.root / "good_server" / f"{share}.json", server, durable=False)

    # Boot identity: counts from a previous boot describe no live container.

    def previous_boot(self) -> str | None:
        """The boot id the state was last written under."""
        boot: str | None = fsutil.read_json(self.root / "boot_id")
        return boot

    def set_boot(self, boot_id: str) -> None:
        """Stamp the state with the current boot id."""
        fsutil.write_json(self.root / "boot_id", boot_id)

    # The last Plugin.Activate from a dockerd we cannot see (see nfsvol.dockerd).

    def activation(self) -> str | None:
        """The tag of that dockerd's Mounts."""
        tag: str | None = fsutil.read_json(self.root / "activation")
        return tag

    def set_activation(self, tag: str) -> None:
        """A dockerd we cannot see said hello: tag its Mounts with `tag`."""
        fsutil.write_json(self.root / "activation", tag)

    # Last Mount failure per volume, for `docker volume inspect`.

    def last_error(self, share: str, name: str) -> dict[str, str] | None:
        """{"time": ..., "error": ...} of the volume's last failed Mount here, if any."""
        data: dict[str, str] | None = fsutil.read_json(
            self.root / "errors" / share / f"{name}.json"
        )
        return data

    def set_last_error(self, share: str, name: str, error: dict[str, str] | None) -> None:
        """Remember (or, with None, forget) the last failed Mount."""
        path = self.root / "errors" / share / f"{name}.json"
        if error is None:
            fsutil.remove_file(path, durable=False)
        else:
            fsutil.write_json(path, error, durable=False)  # diagnostics: losing it is harmless

    # Catalog cache: a local mirror so Get/List never wait on a server.

    def cached(self, share: str, name: str) -> VolumeRecord | None:
        """The cached record of a volume on `share`, if any."""
        data = fsutil.read_json(f"{self._dir}/cache/{share}/{name}.json")
        return None if data is None else VolumeRecord.from_json(data)

    def cache_put(self, record: VolumeRecord) -> None:
        """Mirror a record from the share."""
        path = self.root / "cache" / record.share / f"{record.name}.json"
        # A mirror: after a crash it is rebuilt from the share, so skip fsync.
        fsutil.write_json(path, record.to_json(), durable=False)

    def cache_drop(self, share: str, name: str) -> None:
        """Forget a volume the share no longer has."""
        fsutil.remove_file(self.root / "cache" / share / f"{name}.json", durable=False)

    def cached_names(self, share: str) -> list[str]:
        """Every volume name cached for `share`."""
        names = os.listdir(f"{self._dir}/cache/{share}")
        return [n[:-5] for n in names if n.endswith(".json") and not n.startswith(".")]

    def synced_at(self, share: str) -> float | None:
        """When the cache of `share` last matched the share (epoch seconds)."""
        try:
            return os.stat(f"{self._dir}/cache/{share}/.synced").st_mtime
        except FileNotFoundError:
            return None

    def mark_synced(self, share: str, when: float | None = None) -> None:
        """Stamp the cache of `share` as fresh."""
        marker = self.root / "cache" / share / ".synced"
        marker.touch()
        now = time.time() if when is None else when
        os.utime(marker, (now, now))

    def listing(self, share: str) -> Listing | None:
        """When the cache of `share` was last listed from the share (catalog.plan_reread)."""
        data = fsutil.read_json(f"{self._dir}/cache/{share}/.listing")
        if not isinstance(data, dict):
            return None
        stamp = data.get("stamp")
        return Listing(tuple(stamp) if stamp else None, data["at"], data["steady"])

    def set_listing(self, share: str, listing: Listing) -> None:
        """Record the listing the cache of `share` now matches."""
        data = {**asdict(listing), "stamp": list(listing.stamp) if listing.stamp else None}
        fsutil.write_json(self.root / "cache" / share / ".listing", data, durable=False)

    # Leases (see nfsvol.leases): ours, what we watch of others', a mirror for Get.

    def own_lease(self, share: str, name: str) -> tuple[Lease, float] | None:
        """This host's lease on the volume and when (local clock) it was last renewed."""
        data = fsutil.read_json(self.root / "leases" / share / f"{name}.json")
        if data is None:
            return None
        return Lease.from_json(data["lease"], data["file"]), float(data["renewed_at"])

    def set_own_lease(self, share: str, name: str, lease: Lease | None, at: float = 0.0) -> None:
        """Remember our lease and its last successful renewal; None forgets it."""
        path = self.root / "leases" / share / f"{name}.json"
        if lease is None:
            fsutil.remove_file(path, durable=False)
        else:
            data = {"lease": lease.to_json(), "file": lease.file, "renewed_at": at}
            fsutil.write_json(path, data, durable=False)

    def own_leases(self, share: str) -> list[str]:
        """Volumes of `share` this host has a lease on."""
        names = os.listdir(f"{self._dir}/leases/{share}")
        return [n[:-5] for n in names if n.endswith(".json") and not n.startswith(".")]

    def watches(self, share: str, name: str) -> dict[str, Watch]:
        """Lease file -> what this host has watched of it."""
        data = fsutil.read_json(self.root / "watch" / share / f"{name}.json") or {}
        return {file: Watch(w["token"], float(w["first_seen"])) for file, w in data.items()}

    def set_watches(self, share: str, name: str, watches: dict[str, Watch]) -> None:
        """Replace the watches of one volume; none deletes the file."""
        path = self.root / "watch" / share / f"{name}.json"
        if watches:
            data = {f: {"token": w.token, "first_seen": w.first_seen} for f, w in watches.items()}
            fsutil.write_json(path, data, durable=False)  # lost: the watch restarts, safely
        else:
            fsutil.remove_file(path, durable=False)

    def holders(self, share: str, name: str) -> list[Lease]:
        """Every host's lease on the volume, as last read from the share."""
        data = fsutil.read_json(f"{self._dir}/holders/{share}/{name}.json") or []
        return [Lease.from_json(item, item.get("file", "")) for item in data]

    def set_holders(self, share: str, name: str, leases: list[Lease]) -> None:
        """Mirror the share's leases of one volume (none deletes the file)."""
        path = self.root / "holders" / share / f"{name}.json"
        if leases:
            data = [{**lease.to_json(), "file": lease.file} for lease in leases]
            fsutil.write_json(path, data, durable=False)
        else:
            fsutil.remove_file(path, durable=False)

    def mirrored_holders(self, share: str) -> list[str]:
        """Volumes with a mirrored lease."""
        names = os.listdir(f"{self._dir}/holders/{share}")
        return [n[:-5] for n in names if n.endswith(".json") and not n.startswith(".")]

    # Share health, from the background probe (see nfsvol.health).

    def health(self, share: str) -> Health | None:
        """The last probe's verdict on the share's mount here, if it is mounted."""
        data = fsutil.read_json(f"{self._dir}/health/{share}.json")
        return None if data is None else Health.from_json(data)

    def set_health(self, share: str, health: Health | None) -> None:
        """Record (or, with None, forget) the share's health."""
        path = self.root / "health" / f"{share}.json"
        if health is None:
            fsutil.remove_file(path, durable=False)
        else:
            fsutil.write_json(path, health.to_json(), durable=False)

    # Lookups of names on a share (see CatalogCache.find): shared by every worker.

    def unanswered_since(self, share: str) -> float | None:
        """When a lookup on the share last failed or outlived its wait, if one did."""
        data = fsutil.read_json(f"{self._dir}/unanswered/{share}.json")
        return None if data is None else float(data["at"])

    def set_unanswered(self, share: str, when: float | None) -> None:
        """Record (or, with None, forget) that the share left a lookup unanswered."""
        path = self.root / "unanswered" / f"{share}.json"
        if when is None:
            fsutil.remove_file(path, durable=False)
        else:
            fsutil.write_json(path, {"at": when}, durable=False)
