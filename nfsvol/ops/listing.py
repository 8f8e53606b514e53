"""`nfsvol ls`: the volumes on every share, read from the shares themselves."""

import functools
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from nfsvol.config import Config, Share
from nfsvol.errors import NfsvolError, printable
from nfsvol.host.mounter import Mounter
from nfsvol.ops.probe import du_bytes, share_root, timed
from nfsvol.share.catalog import ShareCatalog, VolumeRecord
from nfsvol.share.leases import Lease, LeaseStore
from nfsvol.state import HostState
from nfsvol.validate import AccessMode

COLUMNS = ("NAME", "SHARE", "CREATED_BY", "CREATED_AT", "USERS", "HOSTS")


@dataclass(frozen=True)
class Listed:
    """One volume as `ls` shows it."""

    name: str
    share: str
    created_by: str
    created_at: str
    users: tuple[str, ...]  # mount IDs holding it on this host
    size: int | None = None  # bytes; None when not asked for or not known
    size_error: str = ""
    hosts: tuple[str, ...] = ()  # hosts with a lease on it, read from the share
    access: str = AccessMode.SHARED  # as read from the share: any short string
    health: str = ""  # the share's mount here, as the plugin's monitor last saw it


class Progress:
    """A one-line progress bar on a terminal; silent anywhere else."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self._stream = stream
        self._width = width
        self._on = stream.isatty()

    def show(self, done: int, total: int, label: str) -> None:
        """Redraw the bar at `done` of `total`."""
        if self._on and total:
            filled = self._width * done // total
            bar = "#" * filled + "." * (self._width - filled)
            self._stream.write(f"\r[{bar}] {done}/{total} {label[:40]:<40}")
            self._stream.flush()

    def close(self) -> None:
        """Clear the bar."""
        if self._on:
            self._stream.write("\r" + " " * (self._width + 60) + "\r")
            self._stream.flush()


class Lister:
    """Reads each share's catalog, and this host's holders from its state."""

    def __init__(
        self,
        config: Config,
        mounter: Mounter,
        state: HostState | None,
        scratch: Path,
        timeout: float,
        progress: Progress,
    ) -> None:
        self.config = config
        self._mounter = mounter
        self._state = state
        self._scratch = scratch
        self._timeout = timeout
        self._progress = progress

    def volumes(self, sizes: bool) -> Iterator[Listed | NfsvolError]:
        """Each share's volumes, or the error that kept a share from being read."""
        for share in self.config.shares.values():
            try:
                yield from self._share(share, sizes)
            except NfsvolError as exc:
                yield exc
            except OSError as exc:
                yield NfsvolError(f"share {share.name!r}: {exc}")

    def _share(self, share: Share, sizes: bool) -> list[Listed]:
        with share_root(share, self._mounter, self._scratch) as root:
            catalog = ShareCatalog(root, share.name)
            names = sorted(timed(catalog.names, self._timeout, f"share {share.name}"))
            records = [timed(functools.partial(catalog.read, n), self._timeout, n) for n in names]
            leases = LeaseStore(root, share.name)
            leased = set(timed(leases.volumes, self._timeout, f"share {share.name}"))
            listed = [
                self._row(share, r, leases.holders(r.name) if r.name in leased else [])
                for r in records
                if r
            ]
            return self._sized(root, listed) if sizes else listed

    def _row(self, share: Share, record: VolumeRecord, leases: list[Lease]) -> Listed:
        users = self._state.users(share.name, record.name) if self._state else {}
        health = self._state.health.get(share.name) if self._state else None
        return Listed(
            record.name, share.name, record.created_by, record.created_at, tuple(sorted(users)),
            hosts=tuple(sorted(lease.host for lease in leases)),
            access=record.options.get("access", AccessMode.SHARED),
            health=health.state if health else "",
        )  # fmt: skip

    def _sized(self, root: Path, listed: list[Listed]) -> list[Listed]:
        out = []
        for done, row in enumerate(listed):
            self._progress.show(done, len(listed), f"{row.share}/{row.name}")
            try:
                out.append(_with(row, size=du_bytes(root / row.name, self._timeout)))
            except (NfsvolError, OSError) as exc:
                out.append(_with(row, size_error=str(exc)))
        self._progress.close()
        return out


def _with(row: Listed, **changes: Any) -> Listed:
    return Listed(**{**asdict(row), **changes})


def human_size(size: int | None, error: str = "") -> str:
    """1536 -> "1.5K"; "?" when unknown."""
    if size is None:
        return "?" if error else "-"
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{int(value)}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return "?"  # unreachable: the loop returns at "T"


def table(rows: list[Listed], sizes: bool) -> str:
    """Rows as aligned columns with a header."""
    header = [*COLUMNS, "SIZE"] if sizes else list(COLUMNS)
    cells = [header]
    for r in rows:
        hosts = ",".join(r.hosts) or "-"
        line = [r.name, r.share, r.created_by or "-", r.created_at, str(len(r.users)), hosts]
        line = [printable(cell) for cell in line]  # names and creators come from the share
        cells.append([*line, human_size(r.size, r.size_error)] if sizes else line)
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)
    return "\n".join(line.rstrip() for line in lines)


def as_json(rows: list[Listed], sizes: bool) -> str:
    """Rows as a JSON array, one object per volume."""
    out = []
    for r in rows:
        item: dict[str, Any] = asdict(r)
        item["users"] = list(r.users)
        item["hosts"] = list(r.hosts)
        if not sizes:
            del item["size"], item["size_error"]
        out.append(item)
    return json.dumps(out, indent=2)
