"""Leases on the share: which hosts hold a volume, and whether one may take it over.

Layout under a share's root (next to the catalog, see nfsvol.catalog):

    <root>/.nfsvol/leases/<volume>/<host>.json        a host holding the volume
    <root>/.nfsvol/leases/<volume>/owner.<gen>.json   single-host: the owner

A holder rewrites its file every ttl/3 with a fresh token. No host ever
compares its clock with another's: an observer calls a lease expired once
it has watched the same token for ttl + grace on its own clock (see
`Watch`). Single-host takeovers create owner.<gen+1> exclusively (a link,
atomic on NFS), so of two hosts racing for an expired lease exactly one
wins, and a former owner learns it lost by finding a higher generation.
"""

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nfsvol import fsutil
from nfsvol.catalog import META_DIR

LOST = "lost"  # the token this host records for a lease it no longer holds
_OWNER_RE = re.compile(r"owner\.([0-9]{1,12})\.json")


@dataclass(frozen=True)
class Lease:
    """One host's claim on a volume, as written on the share."""

    host: str
    since: str  # the holder's clock: shown to people, never compared
    renewed: str
    ttl: float
    token: str  # new on every renewal: what observers watch
    file: str = ""  # the file it was read from

    def to_json(self) -> dict[str, Any]:
        """The lease as stored (without the file it lives in)."""
        data = asdict(self)
        del data["file"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], file: str) -> "Lease":
        """Rebuild a lease read from `file`."""
        return cls(
            host=str(data["host"]),
            since=str(data["since"]),
            renewed=str(data["renewed"]),
            ttl=float(data["ttl"]),
            token=str(data["token"]),
            file=file,
        )

    def renewed_now(self, when: str) -> "Lease":
        """The same claim with a fresh token."""
        return Lease(self.host, self.since, when, self.ttl, new_token(), self.file)


def new_token() -> str:
    """A value no renewal repeats."""
    return secrets.token_hex(8)


class LeaseStore:
    """The leases of every volume on one share, reached through its root."""

    def __init__(self, root: str | Path) -> None:
        self._leases = Path(root) / META_DIR / "leases"

    def holders(self, volume: str, known: Lease | None = None) -> list[Lease]:
        """Every host's lease on the volume; of owner files only the newest counts.

        `known` is a lease this host has just written: taken as is, not read
        back (on NFS each read is an open, a read and a close on the wire).
        """
        folder = self._leases / volume
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        owners = sorted((int(m[1]), n) for n in names if (m := _OWNER_RE.fullmatch(n)))
        hosts = [n for n in names if n.endswith(".json") and not n.startswith(("owner.", "."))]
        files = hosts + ([owners[-1][1]] if owners else [])
        found = (
            known if known and n == known.file else self._read(folder / n) for n in sorted(files)
        )
        return [lease for lease in found if lease is not None]

    def volumes(self) -> list[str]:
        """Volumes with any lease file, held or left behind."""
        try:
            return [n for n in os.listdir(self._leases) if not n.startswith(".")]
        except FileNotFoundError:
            return []

    def hold(self, volume: str, lease: Lease) -> Lease:
        """Record (or renew) a shared-access lease under the host's own file."""
        placed = Lease(**{**asdict(lease), "file": f"{lease.host}.json"})
        fsutil.write_json(self._folder(volume) / placed.file, placed.to_json())
        return placed

    def claim(self, volume: str, lease: Lease, current: Lease | None) -> Lease | None:
        """Become the single-host owner after `current` (None: nobody owns it yet).

        Returns our lease, or None if another host claimed it first.
        """
        gen = _generation(current.file) + 1 if current else 1
        placed = Lease(**{**asdict(lease), "file": f"owner.{gen}.json"})
        if not fsutil.create_json(self._folder(volume) / placed.file, placed.to_json()):
            return None
        if current is not None:  # ours is newer: the old file only confuses readers
            fsutil.remove_file(self._leases / volume / current.file)
        return placed

    def renew(self, volume: str, lease: Lease, when: str) -> Lease | None:
        """Rewrite our lease with a fresh token; None if it is no longer ours.

        A single-host owner has lost the volume once a newer owner file
        exists or its own file is gone.
        """
        if lease.file.startswith("owner."):
            newest = next((h for h in self.holders(volume) if h.file.startswith("owner.")), None)
            if newest is None or newest.file != lease.file or newest.host != lease.host:
                return None
        renewed = lease.renewed_now(when)
        fsutil.write_json(self._leases / volume / lease.file, renewed.to_json())
        return renewed

    def release(self, volume: str, lease: Lease) -> None:
        """Drop our lease (an owner file only if it is still ours)."""
        path = self._leases / volume / lease.file
        # Only its host writes a <host>.json, so only an owner file needs a look.
        if not lease.file.startswith("owner.") or self._still_held_by(path, lease.host):
            fsutil.remove_file(path)
        with contextlib.suppress(OSError):  # left for the next holder if not empty
            os.rmdir(self._leases / volume)

    def drop(self, volume: str) -> None:
        """Forget every lease of a removed volume."""
        folder = self._leases / volume
        for name in _listdir(folder):
            fsutil.remove_file(folder / name)
        with contextlib.suppress(OSError):
            os.rmdir(folder)

    def _still_held_by(self, path: Path, host: str) -> bool:
        current = self._read(path)
        return current is not None and current.host == host

    def _folder(self, volume: str) -> Path:
        folder = self._leases / volume
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @staticmethod
    def _read(path: Path) -> Lease | None:
        try:
            data = fsutil.read_json(path)
        except (ValueError, OSError):
            return None  # torn or vanished mid-read: the next look sees it whole
        return None if data is None else Lease.from_json(data, path.name)


def _generation(file: str) -> int:
    match = _OWNER_RE.fullmatch(file)
    return int(match[1]) if match else 0


def _listdir(folder: Path) -> Iterator[str]:
    try:
        yield from os.listdir(folder)
    except FileNotFoundError:
        return


@dataclass
class Watch:
    """What this host has seen of another host's lease: its token, since when.

    Expiry is judged on the observer's clock alone: a lease whose token has
    not changed for ttl + grace seconds of watching is expired, whatever the
    holder's clock says. Seeing a lease for the first time starts the watch,
    so a host that has just started waits out one full ttl before a takeover.
    """

    token: str
    first_seen: float

    def expired(self, lease: Lease, now: float, grace: float) -> bool:
        """True once the same token has been watched for ttl + grace."""
        return self.token == lease.token and now - self.first_seen >= lease.ttl + grace

    def remaining(self, lease: Lease, now: float, grace: float) -> float:
        """Seconds until a takeover is allowed if the holder stops renewing now."""
        return max(0.0, self.first_seen + lease.ttl + grace - now)
