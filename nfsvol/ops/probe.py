"""Bounded probes of shares: temporary mounts, stats, writes and sizes.

A call into a dead NFS server can block forever in the kernel. Mounts and
sizes run as children killed at their timeout (nfsvol.host.mounter.run); file
system calls run in a daemon thread the command stops waiting for.
"""

import contextlib
import errno
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from nfsvol.config import Share, ShareType
from nfsvol.errors import MountFailed, OperationTimeout
from nfsvol.host import deadline
from nfsvol.host.mounter import Mounter, NfsSource, run

T = TypeVar("T")
PROBE_PREFIX = ".nfsvol-probe-"


def timed(call: Callable[[], T], timeout: float, what: str) -> T:
    """`call()` in a daemon thread; OperationTimeout if it has not returned in time."""
    running = deadline.start(call, what)
    if not running.wait(timeout):
        raise OperationTimeout(
            f"{what} did not answer within {timeout:g}s: the NFS server is down, "
            "unreachable or overloaded"
        )
    return running.outcome()


def answers(path: Path, timeout: float) -> str:
    """ "ok", "stale" (ESTALE), "timeout" or "missing": how a stat of `path` went."""
    try:
        timed(lambda: os.stat(path), timeout, f"stat {path}")
    except OperationTimeout:
        return "timeout"
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return "stale" if exc.errno == errno.ESTALE else f"error: {exc.strerror}"
    return "ok"


@contextlib.contextmanager
def temp_mount(share: Share, server: str, mounter: Mounter, scratch: Path) -> Iterator[Path]:
    """Mount one server's export on a private temporary directory, then unmount it."""
    target = Path(tempfile.mkdtemp(prefix=f"nfsvol-{share.name}-", dir=scratch))
    try:
        mounter.mount(NfsSource(server, share.export, share.version, share.options), str(target))
        try:
            yield target
        finally:
            mounter.unmount(str(target))
    finally:
        with contextlib.suppress(OSError):
            target.rmdir()


@contextlib.contextmanager
def share_root(share: Share, mounter: Mounter, scratch: Path) -> Iterator[Path]:
    """The share's root: its path, or a private mount from the first server that answers.

    The plugin's own mount is never borrowed: it may be released under us.
    """
    if share.type == ShareType.PATH:
        yield Path(share.path)
        return
    failures = []
    for server in share.servers:
        stack = contextlib.ExitStack()
        try:
            root = stack.enter_context(temp_mount(share, server, mounter, scratch))
        except (MountFailed, OperationTimeout) as exc:
            failures.append(f"{server}: {exc}")
            continue
        with stack:
            yield root
        return
    raise MountFailed(f"share {share.name!r}: no server could be mounted: " + "; ".join(failures))


@dataclass(frozen=True)
class Access:
    """What creating a file as this process on a share showed."""

    owner: int  # uid the new file got
    chown_error: str  # "" if chown to another owner worked


def probe_access(root: Path) -> Access:
    """Create, chown and remove a probe file in `root`; OSError if it cannot be created."""
    path = root / f"{PROBE_PREFIX}{os.getpid()}-{threading.get_ident()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        owner = os.fstat(fd).st_uid
        try:
            os.fchown(fd, 1, 1)
            chown_error = ""
        except OSError as exc:
            chown_error = exc.strerror or str(exc)
    finally:
        os.close(fd)
        os.unlink(path)
    return Access(owner, chown_error)


def root_squash(euid: int, access: Access) -> str:
    """Why the share looks root-squashed to a root process, or "" if it does not."""
    if euid != 0:
        return ""
    if access.owner != 0:
        return f"files created by root belong to uid {access.owner}"
    if access.chown_error:
        return f"root may not chown files ({access.chown_error})"
    return ""


def volume_dirs(root: Path, is_name: Callable[[str], bool]) -> list[str]:
    """Real directories (not links) at the top of a share that could be volumes."""
    out = []
    for entry in os.scandir(root):
        if is_name(entry.name) and stat.S_ISDIR(entry.stat(follow_symlinks=False).st_mode):
            out.append(entry.name)
    return sorted(out)


def du_bytes(path: Path, timeout: float) -> int:
    """Disk usage of a tree in bytes, by `du` in a child killed at the timeout."""
    result = run(["du", "-s", "-x", "-P", "-B1", "--", str(path)], timeout)
    words = result.stdout.split()
    if not words or not words[0].isdigit():
        raise OSError(f"du {path} failed: {result.stderr.strip()}")
    return int(words[0])
