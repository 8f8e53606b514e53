"""Volumes as they live on a share: a directory plus a metadata file.

Layout under a share's root (volume names cannot start with a dot, so
nothing here can collide with a volume):

    <root>/<name>/                       the volume's data
    <root>/.nfsvol/volumes/<name>.json   its metadata
    <root>/.nfsvol/archive/<name>-<ts>/  volumes removed with on_remove=archive
    <root>/.nfsvol/trash/                volumes being deleted
    <root>/.nfsvol/removing/<name>.json  a Remove in progress: which host, since when

A Remove creates its marker exclusively before it looks for other hosts'
leases, and a Mount writes its lease before it looks for a marker (see
nfsvol.driver): of a Remove and a Mount racing on two hosts, at least one
sees the other and fails, never both succeed.

Every operation goes through nfsvol.share.sharefs: relative to descriptors,
never following a symlink, files size-capped. A record counts only if its
name is a volume name equal to its file name and its share is the share
being read (nfsvol.validate.record_problem); anything else is skipped and
logged, never trusted and never fatal to a listing.
"""

import os
import stat
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nfsvol.errors import NfsvolError
from nfsvol.share import sharefs
from nfsvol.share.sharefs import BadShareFile, ShareFS
from nfsvol.validate import is_name, marker_problem, record_problem

META_DIR = ".nfsvol"
VOLUMES = (META_DIR, "volumes")
TRASH = (META_DIR, "trash")
REMOVING = (META_DIR, "removing")


@dataclass(frozen=True)
class VolumeRecord:
    """A volume's metadata, kept on the share and mirrored on each host."""

    name: str
    share: str
    created_at: str
    created_by: str
    options: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The record as stored."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "VolumeRecord":
        """Rebuild a record, ignoring keys a newer nfsvol may have added."""
        return cls(
            name=data["name"],
            share=data["share"],
            created_at=data["created_at"],
            created_by=data.get("created_by", ""),
            options=dict(data.get("options", {})),
        )


@dataclass(frozen=True)
class RemoveMarker:
    """A Remove in progress on some host, as written on the share."""

    host: str
    since: str  # the remover's clock: shown to people, never compared
    token: str  # new for every Remove: what observers watch

    def to_json(self) -> dict[str, Any]:
        """The marker as stored."""
        return asdict(self)


class ShareCatalog:
    """The volumes on one share, reached through its root directory."""

    def __init__(self, root: str | Path, share: str) -> None:
        self.root = Path(root)
        self.share = share  # records naming another share are not ours to trust
        self.fs = ShareFS(root)

    def ensure_layout(self) -> None:
        """Create the metadata folders (idempotent, never through a link)."""
        for area in ("volumes", "archive", "trash", "removing"):
            with self.fs.dir((META_DIR, area), create=True):
                pass

    def names(self) -> list[str]:
        """Names of every volume with metadata on the share (file names that are volume names)."""
        found = []
        for entry in self.fs.listdir(VOLUMES):
            if entry.startswith(".") or not entry.endswith(".json"):
                continue  # temporary files of a write in flight
            if is_name(entry[:-5]):
                found.append(entry[:-5])
            else:
                self._skip(entry, "not a volume name")
        return found

    def stamp(self) -> tuple[int, ...] | None:
        """What changes whenever a record is added or removed (see plan_reread)."""
        return self.fs.stamp(VOLUMES)

    def read(self, name: str) -> VolumeRecord | None:
        """The volume's metadata; None if absent or unusable (then logged)."""
        if not is_name(name):
            return None
        file = f"{name}.json"
        try:
            data = self.fs.read_json(VOLUMES, file)
        except BadShareFile as exc:
            self._skip(file, str(exc))
            return None
        if data is None:
            return None
        problem = record_problem(data, file, self.share)
        if problem:
            self._skip(file, problem)
            return None
        return VolumeRecord.from_json(data)

    def _skip(self, file: str, why: str) -> None:
        sharefs.skipped(self.share, f"{META_DIR}/volumes/{file}", why)

    def add(self, record: VolumeRecord) -> VolumeRecord:
        """Record a volume unless one exists; return whichever record won."""
        if self.fs.create_json(VOLUMES, f"{record.name}.json", record.to_json()):
            return record
        existing = self.read(record.name)
        if existing is not None:
            return existing
        # What is there is unusable (see read): replace it with ours.
        self.fs.write_json(VOLUMES, f"{record.name}.json", record.to_json())
        return record

    def forget(self, name: str) -> None:
        """Drop the metadata, leaving any data in place."""
        self.fs.remove(VOLUMES, f"{name}.json")

    def mark_removing(self, name: str, marker: RemoveMarker) -> bool:
        """Announce a Remove of the volume, exclusively; False if a marker is already there."""
        return self.fs.create_json(REMOVING, f"{name}.json", marker.to_json())

    def removing(self, name: str) -> RemoveMarker | None:
        """The marker of a Remove in progress; None if absent or unusable (then logged)."""
        file = f"{name}.json"
        where = f"{META_DIR}/removing/{file}"
        try:
            data = self.fs.read_json(REMOVING, file) if is_name(name) else None
        except (BadShareFile, NfsvolError, OSError) as exc:  # odd file, linked folder, torn
            sharefs.skipped(self.share, where, str(exc))
            return None
        problem = None if data is None else marker_problem(data)
        if problem:
            sharefs.skipped(self.share, where, problem)
        if data is None or problem:
            return None
        return RemoveMarker(host=data["host"], since=data["since"], token=data["token"])

    def unmark_removing(self, name: str, marker: RemoveMarker | None) -> None:
        """Delete the volume's marker if it is `marker`, or (None) if it is unusable.

        Never a marker this call did not see: another host's Remove may
        have announced itself meanwhile.
        """
        file = f"{name}.json"
        if marker is None and self.fs.lstat(REMOVING, file) is None:
            return
        if self.removing(name) == marker:
            self.fs.remove(REMOVING, file)

    def make_dir(self, name: str, uid: int | None, gid: int | None, mode: int | None) -> bool:
        """Create the volume's directory, or take over an existing real one; True if created.

        Either way the directory ends with the requested owner and mode: a
        Create that answers success has done what it was asked.
        """
        with self.fs.dir(()) as root:
            created = sharefs.mkdir_at(root, name, 0o755 if mode is None else mode)
            try:
                vol = sharefs.open_dir(name, root)
                try:
                    _set_owner(vol, uid, gid, mode)
                finally:
                    os.close(vol)
            except OSError as exc:
                if created:
                    os.rmdir(name, dir_fd=root)  # a failed Create leaves nothing behind
                exc.filename = str(self.root / name)  # not the fd it failed on
                raise
        return created

    def drop_empty_dir(self, name: str) -> None:
        """Remove the volume's directory if it is empty (undoing make_dir)."""
        self.fs.rmdir((), name)

    def has_dir(self, name: str) -> bool:
        """True if the volume's directory is a real directory, not a link."""
        st = self.fs.lstat((), name)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def move_aside(self, name: str, area: str, stamp: str) -> str | None:
        """Rename the volume's directory into .nfsvol/<area>; None if absent."""
        target = f"{name}-{stamp}"
        with self.fs.dir(()) as root, self.fs.dir((META_DIR, area)) as dest:
            try:
                st = os.stat(name, dir_fd=root, follow_symlinks=False)
            except FileNotFoundError:
                return None
            if not stat.S_ISDIR(st.st_mode):
                # A link or file in place of the volume: remove it, never follow.
                os.unlink(name, dir_fd=root)
                return None
            os.rename(name, target, src_dir_fd=root, dst_dir_fd=dest)
        return target

    def purge_trash(self, budget: float) -> bool:
        """Delete what is in .nfsvol/trash for up to `budget` seconds; True if it is empty.

        Call it without the share's lock: a huge tree takes long, and trash
        is nobody's name any more. Any failure leaves the rest for a later call.
        """
        deadline, clean = time.monotonic() + budget, True
        with self.fs.dir(TRASH) as trash:
            for entry in os.listdir(trash):
                try:
                    sharefs.purge(trash, entry, deadline)
                except sharefs.Deadline:
                    return False
                except (OSError, NfsvolError) as exc:  # e.g. a folder root cannot write
                    sharefs.skipped(self.share, f"{META_DIR}/trash/{entry}", f"not deleted: {exc}")
                    clean = False
        return clean

    def trash_entries(self) -> list[str]:
        """What waits in .nfsvol/trash to be deleted."""
        return self.fs.listdir(TRASH)


STAMP_TICK = 2.0  # seconds: coarser than any server's mtime granularity we know


@dataclass(frozen=True)
class Listing:
    """When a host last listed a share's records, and the folder's stamp just before."""

    stamp: tuple[int, ...] | None
    at: float  # epoch seconds of the first listing that saw this stamp
    steady: bool  # a later listing, STAMP_TICK after `at`, saw the same stamp


def plan_reread(last: Listing | None, stamp: tuple[int, ...] | None, at: float) -> Listing | None:
    """The Listing to record after listing the records again; None if the cache is current.

    A folder's mtime ticks coarsely (a few ms; a second on some servers), so
    a record added in the same tick just after a stamp was taken leaves the
    stamp unchanged. A stamp is trusted only once a listing STAMP_TICK after
    the first one still saw it: a change costs two listings, no change none.
    """
    if stamp is None or last is None or stamp != last.stamp:
        return Listing(stamp, at, False)
    if last.steady:
        return None
    return Listing(stamp, last.at, at - last.at >= STAMP_TICK)


def _set_owner(fd: int, uid: int | None, gid: int | None, mode: int | None) -> None:
    """fchown/fchmod on a descriptor: never through a link, whatever is planted."""
    if uid is not None or gid is not None:
        os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
    if mode is not None:
        os.fchmod(fd, mode)  # after chown, which clears setgid; mkdir's mode met the umask


class TrashKeeper:
    """Which shares may hold trash to delete, and the deleting, outside any lock.

    Remove only renames a volume's data into .nfsvol/trash under the share's
    lock; the tree is deleted afterwards, a time budget at a time, by the
    Remove itself and then by the janitor until it is gone. A sync that sees
    trash (left by a crash, a restart or another host) marks the share too.
    """

    def __init__(self) -> None:
        self._pending: set[str] = set()
        self._emptying: set[str] = set()  # one deleter per share, even one stuck on a server
        self._guard = threading.Lock()

    def mark(self, share: str) -> None:
        """The share's trash may hold something."""
        with self._guard:
            self._pending.add(share)

    def forget(self, share: str) -> None:
        """Stop retrying the share until it is marked again."""
        with self._guard:
            self._pending.discard(share)

    def pending(self) -> list[str]:
        """Shares whose trash is not known to be empty."""
        with self._guard:
            return sorted(self._pending)

    def empty(self, catalog: ShareCatalog, budget: float) -> None:
        """Delete the share's trash for up to `budget` seconds; unmark it once empty."""
        with self._guard:
            if catalog.share in self._emptying:
                return
            self._emptying.add(catalog.share)
        try:
            done = catalog.purge_trash(budget)
        except (OSError, NfsvolError) as exc:  # e.g. no trash folder, or a link there
            sharefs.skipped(catalog.share, f"{META_DIR}/trash", f"not emptied: {exc}")
            done = True  # the next sync marks it again if anything is there
        finally:
            with self._guard:
                self._emptying.discard(catalog.share)
        if done:
            self.forget(catalog.share)
