"""A real dockerd on this machine, with a data root of the test's own.

The tiers that drive one run each test on every engine in ENGINES: Debian 12's
Engine 20.10 and Debian 13's 26.1 (testbed/engines.py). Each Dockerd uses its
engine's dockerd and the client of the same release, never the `docker` on
PATH (this machine's /usr/local/bin/docker is another release).
"""

import contextlib
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from testbed.artifacts import DEFAULT_CACHE, apt_mirror
from testbed.engines import Engine, engine
from tests.fakes.servers import unmount_below

ENGINES = ("20.10", "26.1")  # oldest first: the machine's own engine, then Debian 13's
BUSYBOX = "/bin/busybox"
IMAGE = "nfsvol-test/busybox:latest"


class Dockerd:
    """Start, restart and drive one dockerd; every call has a timeout."""

    def __init__(self, root: Path, engine: Engine, wrapper: Sequence[str] = ()) -> None:
        self.root = root
        self.engine = engine
        self.wrapper = list(wrapper)  # argv that execs dockerd, e.g. in its own namespace
        # containerd's sockets live under the exec root, and a unix socket path
        # must fit in 108 bytes: pytest's tmp paths are too long for that.
        self.exec_root = Path(tempfile.mkdtemp(prefix="dk-", dir="/tmp"))
        self.socket = self.exec_root / "docker.sock"
        self.log_path = root / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.flags: list[str] = []  # extra dockerd flags, e.g. --live-restore

    def start(self, timeout: float = 60) -> None:
        """Run dockerd (no networking needed) and wait for its API."""
        argv = [
            *self.wrapper, self.engine.dockerd,
            "--data-root", str(self.root / "data"), "--exec-root", str(self.exec_root),
            "--pidfile", str(self.root / "dockerd.pid"), "-H", f"unix://{self.socket}",
            "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
            "--storage-driver", "overlay2", *self.flags,
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            # The engine's env puts its containerd and shims first on PATH.
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=log, start_new_session=True, env=self.engine.env()
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"dockerd exited: {self.log_tail()}"
            if self._answers():
                return
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"dockerd did not answer in {timeout}s: {self.log_tail()}")

    def _answers(self) -> bool:
        # A daemon still starting (or a loaded machine) may take longer than
        # one probe's timeout: that is "not yet", not a failure.
        try:
            return self.docker("version", check=False, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> None:
        """Stop dockerd the way a service manager does."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL dockerd, as the OOM killer would; its containers' shims live on."""
        if self.proc is None:
            return
        containerd = int((self.exec_root / "containerd" / "containerd.pid").read_text())
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc = None
        # dockerd's own containerd logs through dockerd's pipes and dies with
        # it; here nobody may reap it in time, so end it for the next dockerd.
        with contextlib.suppress(ProcessLookupError):
            os.kill(containerd, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{containerd}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    def cleanup(self) -> None:
        """After stop(): release what dockerd left mounted and delete its exec root."""
        unmount_below(self.exec_root)
        shutil.rmtree(self.exec_root, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start on the same data root."""
        self.stop()
        self.start()

    def docker(
        self, *args: str, check: bool = True, timeout: float = 120, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this daemon."""
        result = subprocess.run(
            [self.engine.docker, "-H", f"unix://{self.socket}", *args],
            input=stdin.decode() if stdin is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def log_tail(self, lines: int = 30) -> str:
        """The end of dockerd's log, for failure messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def engine_named(version: str) -> Engine:
    """Engine `version` (one of ENGINES), from the testbed's cache (26.1 is fetched once)."""
    return engine(version, DEFAULT_CACHE, apt_mirror())


def busybox_rootfs_tar(dest: Path) -> Path:
    """A tar of a minimal rootfs: static busybox and its applet links."""
    rootfs = dest / "rootfs"
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    for sub in ("tmp", "etc", "www"):
        (rootfs / sub).mkdir(exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        link = rootfs / "bin" / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    tar_path = dest / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(rootfs, arcname=".")
    return tar_path


def import_busybox(daemon: Dockerd, workdir: Path) -> str:
    """Load the busybox image into `daemon` without any registry."""
    tar_path = busybox_rootfs_tar(workdir)
    daemon.docker(
        "import", "-c", 'CMD ["sh"]', "-c", "ENV PATH=/bin", str(tar_path), IMAGE, timeout=120
    )
    return IMAGE
