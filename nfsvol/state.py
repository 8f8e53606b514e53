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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Generic, TypeVar

from nfsvol.errors import OperationTimeout
from nfsvol.host import fsutil
from nfsvol.host.health import Health
from nfsvol.share.catalog import Listing, VolumeRecord
from nfsvol.share.leases import Lease, Watch

T = TypeVar("T")


class _Files(Generic[T]):
    """One kind of state file: JSON values this host may lose on a reboot.

    Reads build plain strings, not Paths: Get and List read these on every call.
    Putting None or an empty value deletes the file, so a listing shows only live ones.
    """

    def __init__(
        self, folder: Path, encode: Callable[[T], Any], decode: Callable[[Any], T]
    ) -> None:
        self._dir = str(folder)
        self._encode = encode
        self._decode = decode

    def _read(self, path: str) -> T | None:
        data = fsutil.read_json(path)
        return None if data is None else self._decode(data)

    def _write(self, path: str, value: T | None) -> None:
        if value is None or (isinstance(value, (dict, list)) and not value):
            fsutil.remove_file(Path(path), durable=False)
        else:
            fsutil.write_json(Path(path), self._encode(value), durable=False)


class VolumeFiles(_Files[T]):
    """One file per volume: folder/<share>/<volume>.json."""

    def get(self, share: str, name: str) -> T | None:
        return self._read(f"{self._dir}/{share}/{name}.json")

    def put(self, share: str, name: str, value: T | None) -> None:
        self._write(f"{self._dir}/{share}/{name}.json", value)

    def drop(self, share: str, name: str) -> None:
        self._write(f"{self._dir}/{share}/{name}.json", None)

    def names(self, share: str) -> list[str]:
        """The volumes of `share` with a file of this kind."""
        return _json_names(f"{self._dir}/{share}")


class ShareFiles(_Files[T]):
    """One file per share: folder/<share>.json."""

    def get(self, share: str) -> T | None:
        return self._read(f"{self._dir}/{share}.json")

    def put(self, share: str, value: T | None) -> None:
        self._write(f"{self._dir}/{share}.json", value)

    def drop(self, share: str) -> None:
        self._write(f"{self._dir}/{share}.json", None)


def _json_names(folder: str) -> list[str]:
    names = os.listdir(folder)
    return [n[:-5] for n in names if n.endswith(".json") and not n.startswith(".")]


def _same(value: Any) -> Any:
    return value


def _encode_own(own: tuple[Lease, float]) -> dict[str, Any]:
    lease, renewed_at = own
    return {"lease": lease.to_json(), "file": lease.file, "renewed_at": renewed_at}


def _decode_own(data: Any) -> tuple[Lease, float]:
    return Lease.from_json(data["lease"], data["file"]), float(data["renewed_at"])


def _encode_watches(watches: dict[str, Watch]) -> dict[str, Any]:
    return {f: {"token": w.token, "first_seen": w.first_seen} for f, w in watches.items()}


def _decode_watches(data: Any) -> dict[str, Watch]:
    return {file: Watch(w["token"], float(w["first_seen"])) for file, w in data.items()}


def _encode_holders(leases: list[Lease]) -> list[dict[str, Any]]:
    return [{**lease.to_json(), "file": lease.file} for lease in leases]


def _decode_holders(data: Any) -> list[Lease]:
    return [Lease.from_json(item, item.get("file", "")) for item in data]


class HostState:
    """This host's mount counts, share mounts, catalog cache, leases and health.

    Each kind of file is a store (`records`, `leases`, `health`, ...) with the
    same get/put verbs; the mount counts, the boot, and the cache's listing
    have their own methods below because they are read or written differently.
    """

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
        # Which server each mounted share came from.
        self.mount_records: ShareFiles[dict[str, Any]] = ShareFiles(
            state_dir / "mounts", _same, _same
        )
        # The server that mounted each share last, kept after unmounts: tried first.
        self.good_servers: ShareFiles[str] = ShareFiles(state_dir / "good_server", _same, str)
        # {"time": ..., "error": ...} of each volume's last failed Mount here.
        self.last_errors: VolumeFiles[dict[str, str]] = VolumeFiles(
            state_dir / "errors", _same, _same
        )
        # A mirror of the share's records: after a crash it is rebuilt from the share.
        self.records: VolumeFiles[VolumeRecord] = VolumeFiles(
            state_dir / "cache", VolumeRecord.to_json, VolumeRecord.from_json
        )
        # This host's lease on a volume, and when (local clock) it was last renewed.
        self.leases: VolumeFiles[tuple[Lease, float]] = VolumeFiles(
            state_dir / "leases", _encode_own, _decode_own
        )
        # Lease file -> what this host has watched of it (lost: the watch restarts, safely).
        self.watches: VolumeFiles[dict[str, Watch]] = VolumeFiles(
            state_dir / "watch", _encode_watches, _decode_watches
        )
        # Every host's lease on a volume, as last read from the share, for Get.
        self.holders: VolumeFiles[list[Lease]] = VolumeFiles(
            state_dir / "holders", _encode_holders, _decode_holders
        )
        # The background probe's last verdict on each mounted share (nfsvol.host.health).
        self.health: ShareFiles[Health] = ShareFiles(
            state_dir / "health", Health.to_json, Health.from_json
        )
        # When a lookup on the share last failed or outlived its wait (CatalogCache.find).
        self.unanswered: ShareFiles[float] = ShareFiles(
            state_dir / "unanswered", lambda at: {"at": at}, lambda data: float(data["at"])
        )

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
        path = self.root / "users" / share / f"{name}.json"
        if ids:
            by = self.mounted_by(share, name) if by is None else by
            data = {"ids": ids, "by": {i: by.get(i, "") for i in ids}}
            fsutil.write_json(path, data, durable=False)
        else:
            fsutil.remove_file(path, durable=False)

    def held_volumes(self, share: str) -> list[str]:
        """Volumes of `share` that some container on this host holds."""
        return _json_names(f"{self._dir}/users/{share}")

    # Boot identity: counts from a previous boot describe no live container.

    def previous_boot(self) -> str | None:
        """The boot id the state was last written under."""
        boot: str | None = fsutil.read_json(self.root / "boot_id")
        return boot

    def set_boot(self, boot_id: str) -> None:
        """Stamp the state with the current boot id."""
        fsutil.write_json(self.root / "boot_id", boot_id)

    # The last Plugin.Activate from a dockerd we cannot see (see nfsvol.host.dockerd).

    def activation(self) -> str | None:
        """The tag of that dockerd's Mounts."""
        tag: str | None = fsutil.read_json(self.root / "activation")
        return tag

    def set_activation(self, tag: str) -> None:
        """A dockerd we cannot see said hello: tag its Mounts with `tag`."""
        fsutil.write_json(self.root / "activation", tag)

    # When the catalog cache last matched the share.

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
