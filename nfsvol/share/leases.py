"""Leases on the share: which hosts hold a volume, and whether one may take it over.

Layout under a share's root (next to the catalog, see nfsvol.share.catalog):

    <root>/.nfsvol/leases/<volume>/<host>.json        a host holding the volume
    <root>/.nfsvol/leases/<volume>/owner.<gen>.json   single-host: the owner

A holder rewrites its file every ttl/3 with a fresh token. No host ever
compares its clock with another's: an observer calls a lease expired once
it has watched the same token for ttl + grace on its own clock (see
`Watch`). Single-host takeovers create owner.<gen+1> exclusively (a link,
atomic on NFS), so of two hosts racing for an expired lease exactly one
wins, and a former owner learns it lost by finding a higher generation.

Every file here may be planted or damaged by any host or the server: each
lease is schema-checked (nfsvol.validate.lease_problem) and skipped if bad,
and owner generations above OWNER_GEN_MAX are ignored (see nfsvol.validate).
"""

import contextlib
import enum
import secrets
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nfsvol.errors import UnsafePath
from nfsvol.share import sharefs
from nfsvol.share.catalog import META_DIR
from nfsvol.share.sharefs import BadShareFile, ShareFS
from nfsvol.validate import is_name, lease_problem, owner_generation

LOST = "lost"  # the token this host records for a lease it no longer holds
LEASES = (META_DIR, "leases")


class Renewal(enum.StrEnum):
    """How one attempt to renew this host's lease went."""

    RENEWED = "renewed"
    LOST = "lost"  # no longer ours: another host owns the volume now
    FAILED = "failed"  # out of time, or the last attempt is still stuck: try again


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

    @property
    def lost(self) -> bool:
        """True for the record this host keeps of a lease it no longer holds (token LOST)."""
        return self.token == LOST

    def renewed_now(self, when: str) -> "Lease":
        """The same claim with a fresh token."""
        return Lease(self.host, self.since, when, self.ttl, new_token(), self.file)


def new_token() -> str:
    """A value no renewal repeats."""
    return secrets.token_hex(8)


class LeaseStore:
    """The leases of every volume on one share, reached through its root.

    Reads skip (and log) any file that fails nfsvol.validate.lease_problem.
    A link or file where a lease folder belongs is never followed: writes
    replace it with a real folder (leases are nfsvol's own, nothing is lost),
    reads see no leases.
    """

    def __init__(self, root: str | Path, share: str) -> None:
        self.fs = ShareFS(root)
        self.share = share  # for log lines about what it skips

    def holders(self, volume: str, known: Lease | None = None) -> list[Lease]:
        """Every host's lease on the volume; of owner files only the newest valid one counts.

        `known` is a lease this host has just written: taken as is, not read
        back (on NFS each read is an open, a read and a close on the wire).
        """
        names = self._names(volume)
        hosts = [n for n in names if n.endswith(".json") and not n.startswith(("owner.", "."))]
        found = [self._read(volume, n, known) for n in sorted(hosts)]
        leases = [lease for lease in found if lease is not None] + self._owner(volume, names, known)
        return sorted(leases, key=lambda lease: lease.file)

    def _owner(self, volume: str, names: list[str], known: Lease | None) -> list[Lease]:
        """The newest owner file that holds a valid lease, as a list of zero or one."""
        for _, name in sorted(_owner_files(names), reverse=True):
            lease = self._read(volume, name, known)
            if lease is not None:
                return [lease]
        return []

    def volumes(self) -> list[str]:
        """Volumes with any lease folder, held or left behind."""
        return [n for n in self._list(LEASES) if is_name(n)]

    def hold(self, volume: str, lease: Lease) -> Lease:
        """Record (or renew) a shared-access lease under the host's own file."""
        placed = Lease(**{**asdict(lease), "file": f"{lease.host}.json"})
        self._write(volume, placed)
        return placed

    def claim(self, volume: str, lease: Lease, current: Lease | None) -> Lease | None:
        """Become the single-host owner after `current` (None: nobody owns it yet).

        Returns our lease, or None if another host claimed it first. The new
        generation is always current + 1, so of racers that read the same
        owner exactly one creates the file. A junk owner file at that
        generation makes claims fail (the caller says "retry") until an
        operator removes it: safer than two owners.
        """
        gen = _generation(current.file) + 1 if current else 1
        placed = Lease(**{**asdict(lease), "file": f"owner.{gen}.json"})
        self._folder(volume)
        if not self.fs.create_json((*LEASES, volume), placed.file, placed.to_json()):
            return None
        if current is not None:  # ours is newer: the old file only confuses readers
            self.fs.remove((*LEASES, volume), current.file)
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
        self._write(volume, renewed)
        return renewed

    def release(self, volume: str, lease: Lease) -> None:
        """Drop our lease (an owner file only if it is still ours)."""
        # Only its host writes a <host>.json, so only an owner file needs a look.
        if not lease.file.startswith("owner.") or self._still_held_by(volume, lease):
            with contextlib.suppress(UnsafePath):  # no folder: nothing of ours to drop
                self.fs.remove((*LEASES, volume), lease.file)
        with contextlib.suppress(UnsafePath):  # left for the next holder if not empty
            self.fs.rmdir(LEASES, volume)

    def drop(self, volume: str) -> None:
        """Forget every lease of a removed volume (a planted link: only the link)."""
        try:
            for name in self.fs.listdir((*LEASES, volume)):
                self.fs.remove((*LEASES, volume), name)
            self.fs.rmdir(LEASES, volume)
        except UnsafePath:
            self._unlink_odd(volume)

    def _still_held_by(self, volume: str, lease: Lease) -> bool:
        current = self._read(volume, lease.file)
        return current is not None and current.host == lease.host

    def _write(self, volume: str, lease: Lease) -> None:
        self._folder(volume)
        self.fs.write_json((*LEASES, volume), lease.file, lease.to_json())

    def _folder(self, volume: str) -> None:
        """Make sure leases/<volume> is a real folder, replacing a planted link or file."""
        for _ in range(2):
            try:
                with self.fs.dir((*LEASES, volume), create=True):
                    return
            except UnsafePath:
                self._unlink_odd(volume)
        with self.fs.dir((*LEASES, volume), create=True):  # raises if it keeps coming back
            return

    def _unlink_odd(self, volume: str) -> None:
        """Unlink whatever non-folder sits at .nfsvol/leases or leases/<volume>."""
        for parts, name in ((META_DIR,), "leases"), (LEASES, volume):
            st = self.fs.lstat(parts, name)
            if st is not None and not stat.S_ISDIR(st.st_mode):
                sharefs.skipped(self.share, "/".join((*parts, name)), "not a folder: removed")
                self.fs.remove(parts, name)

    def _names(self, volume: str) -> list[str]:
        return self._list((*LEASES, volume)) if is_name(volume) else []

    def _list(self, parts: tuple[str, ...]) -> list[str]:
        try:
            return self.fs.listdir(parts)
        except UnsafePath as exc:
            sharefs.skipped(self.share, "/".join(parts), str(exc))
            return []

    def _read(self, volume: str, file: str, known: Lease | None = None) -> Lease | None:
        if known is not None and known.file == file:
            return known
        where = "/".join((*LEASES, volume, file))
        try:
            data = self.fs.read_json((*LEASES, volume), file)
        except (BadShareFile, UnsafePath, OSError) as exc:
            sharefs.skipped(self.share, where, str(exc))  # OSError: vanished or torn mid-read
            return None
        problem = None if data is None else lease_problem(data, file)
        if problem:
            sharefs.skipped(self.share, where, problem)
        return None if data is None or problem else Lease.from_json(data, file)


def _owner_files(names: list[str]) -> list[tuple[int, str]]:
    """(generation, file) of each sane owner file; absurd generations are ignored."""
    found = [(owner_generation(n), n) for n in names]
    return [(gen, n) for gen, n in found if gen is not None]


def _generation(file: str) -> int:
    return owner_generation(file) or 0


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
