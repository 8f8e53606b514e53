"""The one door to a share: every read, write, rename, delete and listing.

Layout reached through it (see nfsvol.share.catalog and nfsvol.share.leases):

    <root>/<name>/                                   volume data (containers write it)
    <root>/.nfsvol/{volumes,leases,removing,archive,trash}/
                                                     nfsvol's own files (every host writes it)

Everything under the root is written by the least trusted party, so:

- paths are walked one component at a time from a descriptor of the root,
  each opened O_NOFOLLOW|O_DIRECTORY: a symlink at any level stops the walk
  (UnsafePath) instead of steering nfsvol outside the share;
- a record is opened O_NONBLOCK|O_NOFOLLOW (a FIFO cannot hang us) and read
  only if fstat says it is a regular file under its size cap (a link to
  /dev/zero or a huge file is refused, not read);
- trees are deleted iteratively, holding one descriptor at a time and checking
  that each ".." is the directory we came from, within a time budget: depth
  costs no stack and no descriptors, and the caller decides when to stop.

Problems found in what the share holds are logged once per path (rate-limited,
control characters escaped) through `skipped`.
"""

import contextlib
import ctypes
import errno
import json
import logging
import os
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from nfsvol.errors import UnsafePath, printable, shown

log = logging.getLogger(__name__)

RECORD_MAX = 64 * 1024  # a volume record or lease is well under 1 KiB
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a planted FIFO returns at once instead of waiting for a writer.
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_LINK_ERRNOS = (errno.ELOOP, errno.ENOTDIR)  # what O_NOFOLLOW|O_DIRECTORY says of a link
_SKIP_EVERY = 600.0  # seconds between two log lines about the same path
_skipped_at: dict[tuple[str, str], float] = {}
_listeners: list[Callable[[str, str, str], None]] = []
_skipped_guard = threading.Lock()


class BadShareFile(ValueError):
    """A file on the share is not what nfsvol wrote: wrong type, too big, not JSON."""


def skipped(share: str, path: str, why: str) -> None:
    """Log that `path` (relative to the share's root) was ignored, at most once per _SKIP_EVERY.

    The path is shown whole: the file name is what an operator must find and
    remove, and relative to the root it stays short for anything nfsvol reads.
    """
    for listener in list(_listeners):  # every skip counts; only the log is rate-limited
        listener(share, path, why)
    now, key = time.monotonic(), (share, path)
    with _skipped_guard:
        if now - _skipped_at.get(key, -_SKIP_EVERY) < _SKIP_EVERY:
            return
        if len(_skipped_at) > 10_000:  # a share full of junk must not grow this forever
            _skipped_at.clear()
        _skipped_at[key] = now
    # printable(): newlines and escapes in a planted name cannot forge log lines.
    log.warning("share %s: ignoring %s: %s", printable(share), printable(path), printable(why))


def on_skip(listener: Callable[[str, str, str], None]) -> None:
    """Call `listener(share, path, why)` for every file skipped from now on (metrics)."""
    _listeners.append(listener)


@contextlib.contextmanager
def skips_seen() -> Iterator[dict[tuple[str, str], str]]:
    """Collect {(share, path): why} of the files skipped inside the block (doctor)."""
    seen: dict[tuple[str, str], str] = {}

    def note(share: str, path: str, why: str) -> None:
        seen[share, path] = why

    _listeners.append(note)
    try:
        yield seen
    finally:
        _listeners.remove(note)


def open_dir(name: str, dir_fd: int | None = None) -> int:
    """A descriptor of directory `name`; UnsafePath if it is a link or not a directory."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _LINK_ERRNOS:
            raise UnsafePath(
                f"{shown(name)} on the share is a symlink or file, not a directory; "
                "an operator must inspect and remove it"
            ) from None
        raise


class ShareFS:
    """A share's root, and the operations nfsvol does under it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @contextlib.contextmanager
    def dir(self, parts: Sequence[str], create: bool = False) -> Iterator[int]:
        """A descriptor of root/parts..., walked without following any link.

        `create` makes each missing folder on the way (mode 0755).
        """
        fd = open_dir(str(self.root))
        try:
            for part in parts:
                if create:
                    mkdir_at(fd, part)
                child = open_dir(part, fd)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def listdir(self, parts: Sequence[str]) -> list[str]:
        """Entries of a folder; [] if it (or any folder above it) does not exist."""
        try:
            with self.dir(parts) as fd:
                return os.listdir(fd)
        except FileNotFoundError:
            return []

    def read_json(self, parts: Sequence[str], name: str, cap: int = RECORD_MAX) -> Any:
        """The decoded file, or None if absent; BadShareFile if it is anything odd."""
        try:
            with self.dir(parts) as fd:
                raw = read_capped(fd, name, cap)
        except FileNotFoundError:
            return None
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:  # "[[[[..." nests past the stack
            raise BadShareFile(f"not JSON ({type(exc).__name__})") from None

    def write_json(self, parts: Sequence[str], name: str, data: Any) -> None:
        """Replace the file atomically (temporary file, then rename), durably."""
        with self.dir(parts, create=True) as fd:
            tmp = _write_tmp(fd, name, data)
            os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            os.fsync(fd)

    def create_json(self, parts: Sequence[str], name: str, data: Any) -> bool:
        """Create the file only if absent (a link: atomic even on NFS); False if it existed."""
        with self.dir(parts, create=True) as fd:
            tmp = _write_tmp(fd, name, data)
            try:
                os.link(tmp, name, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp, dir_fd=fd)
            os.fsync(fd)
        return True

    def remove(self, parts: Sequence[str], name: str) -> None:
        """Unlink a file (or a link: never its target); a missing one is fine."""
        with contextlib.suppress(FileNotFoundError), self.dir(parts) as fd:
            os.unlink(name, dir_fd=fd)
            os.fsync(fd)

    def rmdir(self, parts: Sequence[str], name: str) -> None:
        """Remove an empty folder; a missing or non-empty one is left as it is."""
        with contextlib.suppress(OSError), self.dir(parts) as fd:
            os.rmdir(name, dir_fd=fd)

    def stamp(self, parts: Sequence[str]) -> tuple[int, ...] | None:
        """A folder's fresh_stamp; None if it (or any folder above it) does not exist."""
        try:
            with self.dir(parts) as fd:
                return fresh_stamp(fd)
        except FileNotFoundError:
            return None

    def lstat(self, parts: Sequence[str], name: str) -> os.stat_result | None:
        """What `name` is, links not followed; None if absent."""
        try:
            with self.dir(parts) as fd:
                return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None


_libc = ctypes.CDLL(None, use_errno=True)
_statx = getattr(_libc, "statx", None)
if _statx is not None:
    _statx.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
_AT_EMPTY_PATH, _AT_STATX_FORCE_SYNC, _STATX_BASIC_STATS = 0x1000, 0x2000, 0x7FF


def fresh_stamp(fd: int) -> tuple[int, ...]:
    """(inode, size, ctime, mtime in ns) of `fd`, as the server has them now.

    Adding, removing or renaming an entry changes a folder's ctime and mtime.
    The NFS client would answer fstat from attributes up to acdirmax old;
    statx's AT_STATX_FORCE_SYNC makes it ask (one GETATTR).
    """
    if _statx is None:  # a libc without statx: only a local folder is fresh then
        st = os.fstat(fd)
        return (st.st_ino, st.st_size, st.st_ctime_ns, st.st_mtime_ns)
    buf = ctypes.create_string_buffer(256)  # struct statx
    if _statx(fd, b"", _AT_EMPTY_PATH | _AT_STATX_FORCE_SYNC, _STATX_BASIC_STATS, buf) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    ino, size = struct.unpack_from("=QQ", buf, 32)
    c_sec, c_nsec = struct.unpack_from("=qI", buf, 96)
    m_sec, m_nsec = struct.unpack_from("=qI", buf, 112)
    return (ino, size, c_sec * 10**9 + c_nsec, m_sec * 10**9 + m_nsec)


def mkdir_at(dir_fd: int, name: str, mode: int = 0o755) -> bool:
    """mkdir relative to `dir_fd`; False if a real directory already exists."""
    try:
        os.mkdir(name, mode, dir_fd=dir_fd)
        return True
    except FileExistsError:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePath(
                f"{shown(name)} on the share is a symlink or file, not a directory; "
                "an operator must inspect and remove it"
            ) from None
        return False


def read_capped(dir_fd: int, name: str, cap: int) -> bytes | None:
    """The bytes of a regular file of at most `cap` bytes; BadShareFile otherwise."""
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd
        )
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise BadShareFile(f"cannot open ({os.strerror(exc.errno or 0)})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadShareFile(f"not a regular file ({stat.filemode(st.st_mode)})")
        if st.st_size > cap:
            raise BadShareFile(f"{st.st_size} bytes, over the {cap}-byte cap")
        data = os.read(fd, cap + 1)
    finally:
        os.close(fd)
    if len(data) > cap:  # grew between fstat and read
        raise BadShareFile(f"over the {cap}-byte cap")
    return data


def _write_tmp(dir_fd: int, name: str, data: Any) -> str:
    # Unique per process and thread: gunicorn runs several of each.
    tmp = f".tmp-{os.getpid()}-{threading.get_ident()}-{name}"
    # Never reuse what is there: a planted hard link or FIFO under that name
    # would be truncated or would block. O_EXCL creates a fresh file or fails.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=dir_fd)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o644, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        os.unlink(tmp, dir_fd=dir_fd)  # e.g. ENOSPC: no half-written file stays behind
        raise
    return tmp


class Deadline(Exception):
    """The purge ran out of its time budget; the rest waits for the next pass."""


def purge(parent_fd: int, name: str, deadline: float) -> None:
    """Delete the tree `name` under `parent_fd`, links never followed, by `deadline`.

    Iterative and holding one descriptor: a 3,000-deep tree costs neither
    stack nor descriptors. Going up through ".." is checked against the
    (dev, inode) we came down from, so a directory moved meanwhile stops the
    pass (UnsafePath) instead of leading it elsewhere. Raises Deadline when
    time runs out; what is left is deleted by a later call.
    """
    st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=parent_fd)
        return
    above: list[tuple[int, int]] = []  # (dev, ino) of each directory above the current one
    names = [name]
    fd = open_dir(name, parent_fd)
    try:
        while names:
            if time.monotonic() > deadline:
                raise Deadline
            sub = _empty_files(fd)
            if sub == _AGAIN:
                continue
            if sub is not None:
                fd = _descend(fd, sub, above)
                names.append(sub)
            else:
                fd = _ascend(fd, parent_fd, names.pop(), above)
    finally:
        os.close(fd)


_AGAIN = ""  # no file or folder has an empty name
_BATCH = 5_000  # unlinks between two looks at the deadline


def _empty_files(fd: int) -> str | None:
    """Unlink up to a batch of the folder's non-directories.

    Returns its first subfolder, _AGAIN if files remain, None once it is empty.
    """
    with os.scandir(fd) as entries:
        for count, entry in enumerate(entries):
            if entry.is_dir(follow_symlinks=False):
                return entry.name
            with contextlib.suppress(FileNotFoundError):  # another worker's purge won
                os.unlink(entry.name, dir_fd=fd)
            if count >= _BATCH:
                return _AGAIN
    return None


def _descend(fd: int, sub: str, above: list[tuple[int, int]]) -> int:
    child = open_dir(sub, fd)
    st = os.fstat(fd)
    above.append((st.st_dev, st.st_ino))
    os.close(fd)
    return child


def _ascend(fd: int, parent_fd: int, name: str, above: list[tuple[int, int]]) -> int:
    """Go up from the emptied folder `name` and remove it; the parent's descriptor."""
    if not above:
        os.rmdir(name, dir_fd=parent_fd)
        os.close(fd)
        return os.dup(parent_fd)  # closed by the caller like any other
    up = os.open("..", _DIR_FLAGS, dir_fd=fd)
    st = os.fstat(up)
    if (st.st_dev, st.st_ino) != above.pop():
        os.close(up)
        raise UnsafePath(f"{shown(name)} was moved while being deleted; retried later")
    try:
        os.rmdir(name, dir_fd=up)
    except OSError:
        os.close(up)
        raise
    os.close(fd)
    return up
