"""User-space NFS servers (nfs-ganesha, FSAL VFS) on loopback for guests to mount."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from testbed._proc import free_port, port_open, stop_process, wait_for

GANESHA = "/usr/bin/ganesha.nfsd"
RPCBIND = "/usr/sbin/rpcbind"
# QEMU user networking maps this guest address to the host's 127.0.0.1.
GUEST_HOST_ADDR = "10.0.2.2"
PSEUDO = "/export"

_EXPORT = """\
EXPORT {{
    Export_Id = {id};
    Path = "{path}";
    Pseudo = "{pseudo}";
    Access_Type = RW;
    Squash = {squash};
    SecType = sys;
    Protocols = 3, 4;
    Transports = TCP;
    FSAL {{ Name = VFS; }}
}}
"""
_CONFIG = """\
NFS_CORE_PARAM {{
    Bind_addr = 127.0.0.1;
    NFS_Port = {nfs_port};
    MNT_Port = {mnt_port};
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
    Protocols = 3, 4;
    # v3 clients mount the same path as v4 clients.
    Mount_Path_Pseudo = true;
}}
NFSV4 {{
    # Skips the 90 s grace period, so restart() is quick.
    Graceless = true;
    # Guests run no idmapd: pass uids/gids through as numbers both ways.
    Allow_Numeric_Owners = true;
    Only_Numeric_Owners = true;
    Minor_Versions = 0, 1, 2;
    RecoveryBackend = fs;
    RecoveryRoot = "{state}/recovery";
}}
NFS_KRB5 {{ Active_krb5 = false; }}
{exports}LOG {{ Default_Log_Level = EVENT; }}
"""


def ensure_rpcbind() -> subprocess.Popen[bytes] | None:
    """Start rpcbind unless one already listens; return the process we started, if any."""
    # ganesha registers with rpcbind and exits during start when none is there.
    if port_open(111):
        return None
    proc = subprocess.Popen(
        [RPCBIND, "-f"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: port_open(111), 10, "rpcbind")
    return proc


class NfsServer:
    """One nfs-ganesha process exporting export_dir over NFS v3 and v4.1 on loopback."""

    def __init__(
        self,
        export_dir: str | Path,
        state_dir: str | Path | None = None,
        nfs_port: int | None = None,
        mnt_port: int | None = None,
    ) -> None:
        self.export_dir = Path(export_dir).resolve()
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="nfsvol-ganesha-"))
        # Fixed once, so a restarted server is the same server to clients.
        self.nfs_port = nfs_port or free_port()
        self.mnt_port = mnt_port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        # pseudo path -> (directory, squash); export_dir is always PSEUDO, unsquashed.
        self.exports: dict[str, tuple[Path, str]] = {PSEUDO: (self.export_dir, "No_Root_Squash")}

    def add_export(self, pseudo: str, path: Path, root_squash: bool = False) -> None:
        """Export path at pseudo as well, from the next start() on."""
        self.exports[pseudo] = (path, "Root_Squash" if root_squash else "No_Root_Squash")

    @property
    def guest_addr(self) -> str:
        """Address a QEMU user-net guest uses to reach this server (with nfs_port)."""
        return GUEST_HOST_ADDR

    @property
    def log_path(self) -> Path:
        """ganesha's log file."""
        return self.state_dir / "ganesha.log"

    def mount_options(self, version: str = "4.1") -> str:
        """mount -o options a guest needs for this server (ports; v3 avoids rpcbind and NLM)."""
        if version.startswith("3"):
            return (
                f"vers=3,proto=tcp,port={self.nfs_port},mountport={self.mnt_port},"
                "mountproto=tcp,nolock"
            )
        return f"vers={version},proto=tcp,port={self.nfs_port}"

    def source(self) -> str:
        """The mount source, HOST:PATH, as a guest spells it."""
        return f"{self.guest_addr}:{PSEUDO}"

    def running(self) -> bool:
        """Tell whether the ganesha process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30) -> float:
        """Start ganesha and wait until its NFS port accepts; return seconds taken."""
        if self.running():
            return 0.0
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        self.export_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "recovery").mkdir(parents=True, exist_ok=True)
        conf = self.state_dir / "ganesha.conf"
        conf.write_text(
            _CONFIG.format(
                nfs_port=self.nfs_port,
                mnt_port=self.mnt_port,
                state=self.state_dir,
                exports="".join(
                    _EXPORT.format(id=n, path=path, pseudo=pseudo, squash=squash)
                    for n, (pseudo, (path, squash)) in enumerate(self.exports.items(), start=1)
                ),
            )
        )
        argv = [
            GANESHA,
            "-F",
            "-f",
            str(conf),
            "-L",
            str(self.log_path),
            "-p",
            str(self.state_dir / "ganesha.pid"),
            "-N",
            "NIV_EVENT",
        ]
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return wait_for(self._ready, timeout, f"ganesha on port {self.nfs_port}")

    def _ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            log = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"ganesha exited {self._proc.returncode}: {log}")
        return port_open(self.nfs_port) and port_open(self.mnt_port)

    def stop(self) -> None:
        """Stop ganesha (SIGTERM, then SIGKILL); clients see the server go down."""
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None

    def kill(self) -> None:
        """Kill ganesha abruptly, like a server crash."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=10)
            self._proc = None

    def restart(self) -> float:
        """Stop and start again on the same ports; return seconds until ready."""
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        """Stop and delete the state directory (never the export)."""
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> NfsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
