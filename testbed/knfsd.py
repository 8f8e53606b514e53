"""Linux's own NFS server (knfsd) in a guest of the bed, on an ext4 disk that outlives it.

The server guest runs no dockerd. It is on the hosts' LAN, so NFSv3's side
protocols (rpcbind, mountd, lockd and statd, with their call-backs to the
clients) work as on a real network. testbed/guest/nfsd.sh starts the server
the way Debian's nfs-server.service does.
"""

from __future__ import annotations

import base64
import posixpath
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from testbed.artifacts import Artifacts
from testbed.dockerhost import REPO, DockerHost, LanPort

NFSD_SH = str(REPO / "testbed" / "guest" / "nfsd.sh")
ROOT = "/srv"  # where the disk is mounted in the server guest; export paths are under it
NFS_PORT = 2049
# As a NAS ships them: synchronous writes, and root squashed unless said otherwise.
EXPORTS = """\
/export   *(rw,sync,no_subtree_check,no_root_squash)
/squashed *(rw,sync,no_subtree_check,root_squash)
"""
# Each share's folder, relative to ROOT; squashed root writes as nobody, so
# that export's folder is open to all, as an administrator would leave it.
SHARE_DIRS = {"main": "export/main", "v3": "export/v3", "ft": "export/ft", "squashed": "squashed"}
DISK_MB = 1024


class GuestPath:
    """A path on a guest's disk, with the few pathlib methods the drills read it with."""

    def __init__(self, guest: DockerHost, path: str) -> None:
        self.guest, self.path = guest, path

    def __truediv__(self, name: str) -> GuestPath:
        return GuestPath(self.guest, posixpath.join(self.path, name))

    def __str__(self) -> str:
        return f"{self.guest.name}:{self.path}"

    __repr__ = __str__

    @property
    def name(self) -> str:
        """The last component, as Path.name."""
        return posixpath.basename(self.path)

    def _test(self, flag: str) -> bool:
        return self.guest.run(["test", flag, self.path]).rc == 0

    def exists(self) -> bool:
        """Whether the path exists on the guest."""
        return self._test("-e")

    def is_file(self) -> bool:
        """Whether the path is a regular file."""
        return self._test("-f")

    def is_dir(self) -> bool:
        """Whether the path is a directory."""
        return self._test("-d")

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Make the directory (parents and exist_ok as in pathlib)."""
        if exist_ok and self.is_dir():
            return
        argv = ["mkdir", *(["-p"] if parents else []), self.path]
        done = self.guest.run(argv)
        if done.rc != 0:
            raise FileExistsError(f"{self}: {done.stderr.strip()}")

    def read_bytes(self) -> bytes:
        """The file's bytes (through base64: the agent's replies are text)."""
        done = self.guest.run(["base64", "-w0", self.path])
        if done.rc != 0:
            raise FileNotFoundError(f"{self}: {done.stderr.strip()}")
        return base64.b64decode(done.stdout)

    def read_text(self) -> str:
        """The file's text."""
        return self.read_bytes().decode()

    def iterdir(self) -> Iterator[GuestPath]:
        """The entries of the directory."""
        listing = self.guest.run(["ls", "-A", "-1", self.path])
        if listing.rc != 0:
            raise FileNotFoundError(f"{self}: {listing.stderr.strip()}")
        return (self / name for name in sorted(listing.stdout.splitlines()))


class KernelNfsServer:
    """knfsd in its own guest, exporting EXPORTS from an ext4 disk image in workdir."""

    def __init__(self, workdir: Path, artifacts: Artifacts, lan: LanPort) -> None:
        self.disk = workdir / "knfsd-disk.img"
        self.guest = DockerHost(
            "nfs",
            artifacts,
            memory_mb=768,
            workdir=workdir / "guest-nfs",
            lan=lan,
            logs_dir=workdir / "logs-nfs",
            disk=self.disk,
            dockerd=False,
        )
        self.address = lan.address
        self.grace: int | None = None  # NFSv4 and lockd grace in seconds; None: the kernel's

    @property
    def wire(self) -> tuple[str, int]:
        """Where the hosts' NFS packets go (a partition drops these)."""
        return self.address, NFS_PORT

    def share_dir(self, share: str) -> GuestPath:
        """`share`'s folder on the server's disk, read in the server guest."""
        return GuestPath(self.guest, posixpath.join(ROOT, SHARE_DIRS[share]))

    def recreate(self, share: str) -> None:
        """Put `share`'s folder back from a copy of itself: same files, new inodes."""
        folder = posixpath.join(ROOT, SHARE_DIRS[share])
        swap = 'cp -a "$0" "$0.copy" && rm -rf "$0" && mv "$0.copy" "$0"'
        self.guest.run(["sh", "-c", swap, folder], timeout=120).check()

    def start(self) -> float:
        """Boot the server guest if it is off, then start knfsd; return seconds taken."""
        started = time.monotonic()
        self.ensure_disk()
        if not self.guest.running():
            self.guest.boot()
        self.guest.write_file("/etc/exports", EXPORTS)
        self.guest.run(["sh", NFSD_SH, str(self.grace or "")], timeout=120).check()
        return time.monotonic() - started

    def ensure_disk(self) -> None:
        """Make the disk image, with every share's folder, unless it exists."""
        if not self.disk.exists():
            _make_disk(self.disk)

    def running(self) -> bool:
        """Whether knfsd has threads serving."""
        if not self.guest.running():
            return False
        return self.guest.run(["cat", "/proc/fs/nfsd/threads"]).stdout.strip() not in ("", "0")

    def stop(self) -> None:
        """Stop knfsd's threads (`rpc.nfsd 0`): clients' connections are refused."""
        if self.guest.running():
            self.guest.run(["rpc.nfsd", "0"], timeout=120).check()

    def restart(self, grace: int | None = None) -> float:
        """Stop and start knfsd (a grace period follows); return seconds until it serves."""
        self.stop()
        if grace is not None:
            self.grace = grace
        return self.start()

    def reboot(self) -> float:
        """Power the server off and boot it again; return seconds until knfsd serves."""
        self.kill()
        return self.start()

    def kill(self) -> None:
        """Pull the server's plug: what the disk image holds is all that survives."""
        self.guest.power_off()

    def close(self) -> None:
        """Power the server off (the disk image is kept for a later start)."""
        self.guest.close()

    def cleanup(self) -> None:
        """close(), then delete the disk image."""
        self.close()
        self.disk.unlink(missing_ok=True)


def _make_disk(path: Path) -> None:
    """An ext4 image holding every share's folder and the server's state folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp)
        for rel in (*SHARE_DIRS.values(), "state/sm", "state/sm.bak", "state/nfsdcld"):
            (seed / rel).mkdir(parents=True, exist_ok=True)
        (seed / SHARE_DIRS["squashed"]).chmod(0o777)
        with open(path, "wb") as disk:
            disk.truncate(DISK_MB << 20)
        mkfs = ["mkfs.ext4", "-q", "-F", "-d", str(seed), str(path)]
        subprocess.run(mkfs, check=True, capture_output=True, timeout=120)
