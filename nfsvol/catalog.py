"""Volumes as they live on a share: a directory plus a metadata file.

Layout under a share's root (volume names cannot start with a dot, so
nothing here can collide with a volume):

    <root>/<name>/                       the volume's data
    <root>/.nfsvol/volumes/<name>.json   its metadata
    <root>/.nfsvol/archive/<name>-<ts>/  volumes removed with on_remove=archive
    <root>/.nfsvol/trash/                volumes being deleted

Every operation works relative to a directory descriptor of the root and
never follows a symlink, so a link planted by a container cannot steer
nfsvol outside the share.
"""

import contextlib
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nfsvol import fsutil
from nfsvol.errors import UnsafePath

META_DIR = ".nfsvol"


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


@contextlib.contextmanager
def _dir_fd(path: str | Path, dir_fd: int | None = None) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def _meta_fd(root: int, area: str) -> Iterator[int]:
    with _dir_fd(META_DIR, root) as meta, _dir_fd(area, meta) as fd:
        yield fd


class ShareCatalog:
    """The volumes on one share, reached through its root directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._volumes = self.root / META_DIR / "volumes"

    def ensure_layout(self) -> None:
        """Create the metadata folders (idempotent, never through a link)."""
        with _dir_fd(self.root) as root:
            _mkdir_at(root, META_DIR)
            with _dir_fd(META_DIR, root) as meta:
                for area in ("volumes", "archive", "trash"):
                    _mkdir_at(meta, area)

    def names(self) -> list[str]:
        """Names of every volume with metadata on the share."""
        try:
            entries = os.listdir(self._volumes)
        except FileNotFoundError:
            return []
        return [e[:-5] for e in entries if e.endswith(".json") and not e.startswith(".")]

    def read(self, name: str) -> VolumeRecord | None:
        """The volume's metadata, or None if the share has no such volume."""
        data = fsutil.read_json(self._volumes / f"{name}.json")
        return None if data is None else VolumeRecord.from_json(data)

    def add(self, record: VolumeRecord) -> VolumeRecord:
        """Record a volume unless one exists; return whichever record won."""
        if fsutil.create_json(self._volumes / f"{record.name}.json", record.to_json()):
            return record
        existing = self.read(record.name)
        return existing if existing is not None else self.add(record)

    def forget(self, name: str) -> None:
        """Drop the metadata, leaving any data in place."""
        fsutil.remove_file(self._volumes / f"{name}.json")

    def make_dir(self, name: str, uid: int | None, gid: int | None, mode: int | None) -> bool:
        """Create the volume's directory, or accept an existing real one; True if created."""
        with _dir_fd(self.root) as root:
            created = _mkdir_at(root, name, 0o755 if mode is None else mode)
            if not created:
                return False
            try:
                with _dir_fd(name, root) as vol:
                    if mode is not None:
                        os.chmod(vol, mode)  # mkdir's mode is filtered by the umask
                    if uid is not None or gid is not None:
                        os.chown(vol, -1 if uid is None else uid, -1 if gid is None else gid)
            except OSError as exc:
                os.rmdir(name, dir_fd=root)  # a failed Create leaves nothing behind
                exc.filename = str(self.root / name)  # not the fd it failed on
                raise
        return True

    def drop_empty_dir(self, name: str) -> None:
        """Remove the volume's directory if it is empty (undoing make_dir)."""
        with _dir_fd(self.root) as root, contextlib.suppress(OSError):
            os.rmdir(name, dir_fd=root)

    def has_dir(self, name: str) -> bool:
        """True if the volume's directory is a real directory, not a link."""
        try:
            st = os.lstat(self.root / name)
        except FileNotFoundError:
            return False
        return stat.S_ISDIR(st.st_mode)

    def move_aside(self, name: str, area: str, stamp: str) -> str | None:
        """Rename the volume's directory into .nfsvol/<area>; None if absent."""
        target = f"{name}-{stamp}"
        with _dir_fd(self.root) as root, _meta_fd(root, area) as dest:
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

    def purge_trash(self, entry: str) -> None:
        """Delete a trashed tree without following any link inside it."""
        with _dir_fd(self.root) as root, _meta_fd(root, "trash") as trash:
            shutil.rmtree(entry, dir_fd=trash)


def _mkdir_at(dir_fd: int, name: str, mode: int = 0o755) -> bool:
    """mkdir relative to `dir_fd`; False if a real directory already exists."""
    try:
        os.mkdir(name, mode, dir_fd=dir_fd)
        return True
    except FileExistsError:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePath(
                f"{name!r} on the share is a symlink or file, not a directory; "
                "an operator must inspect and remove it"
            ) from None
        return False
