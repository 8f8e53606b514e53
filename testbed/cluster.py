"""Docker hosts running nfsvol against a real NFS server: the bed the tests and the demo share.

The server is one of SERVER_KINDS. With ganesha (the default), inside every
guest the server answers at SERVER_IP on the standard ports (DNAT to ganesha
on this machine's loopback). With knfsd, Linux's own server runs in a guest of
its own on the hosts' LAN at KNFSD_IP (testbed/knfsd.py). DEAD_IP is a server that
is down: connections to it are refused at once. SECOND_IP is a second
ganesha in front of the same disk (two heads, one storage), started only by
the drills that need it. The hosts also reach each other on a LAN of their
own (LAN_PREFIX.N, in the order they were named), which Swarm uses.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from testbed._proc import free_port, wait_for
from testbed.artifacts import IMAGE_TAG, Artifacts
from testbed.dockerhost import PLUGIN_SOCKET, DockerHost, Forward, LanPort, boot_all
from testbed.knfsd import GuestPath, KernelNfsServer
from testbed.nfs import GUEST_HOST_ADDR, PSEUDO, NfsServer, ensure_rpcbind

SERVER_IP = "10.0.2.101"
DEAD_IP = "10.0.2.103"
SECOND_IP = "10.0.2.102"
NFS_PORT, MOUNT_PORT = 2049, 20048
PLUGIN_CONFIG = "/etc/nfsvol/config.yaml"
METRICS_SOCKET = "/run/nfsvol/metrics.sock"
LEASE_TTL, HEALTH_INTERVAL = 10, 5  # short, so the drills take seconds, not minutes
IDLE_UNMOUNT = 2  # short, so tests see an unused share released within seconds
LAN_PREFIX = "192.168.76"
KNFSD_IP = f"{LAN_PREFIX}.200"
SERVER_KINDS = ("ganesha", "knfsd")
SHARES = ("main", "v3", "ft", "ha")
V3_OPTIONS = ["hard", "proto=tcp", f"port={NFS_PORT}", "mountproto=tcp", f"mountport={MOUNT_PORT}"]


# GET /metrics on the socket in argv[1]; print the body.
_SCRAPE = (
    "import socket, sys; s = socket.socket(socket.AF_UNIX); s.settimeout(20); "
    "s.connect(sys.argv[1]); s.sendall(b'GET /metrics HTTP/1.0\\r\\n\\r\\n'); "
    "data = b''.join(iter(lambda: s.recv(65536), b'')); "
    "sys.stdout.write(data.partition(b'\\r\\n\\r\\n')[2].decode())"
)

# POST /Plugin.Activate on the socket in argv[1]; exit 0 on HTTP 200.
_ACTIVATE_PROBE = (
    "import socket, sys; s = socket.socket(socket.AF_UNIX); s.settimeout(20); "
    "s.connect(sys.argv[1]); "
    "s.sendall(b'POST /Plugin.Activate HTTP/1.0\\r\\nContent-Length: 0\\r\\n\\r\\n'); "
    "sys.exit(0 if s.recv(64).split()[1:2] == [b'200'] else 1)"
)


def plugin_config(server: str = "ganesha") -> dict[str, Any]:
    """nfsvol's config on every host: one export per share, all on the bed's server."""
    return {
        "state_dir": "/var/lib/nfsvol",
        "default_share": "main",
        "mount_timeout": 20,
        "catalog_ttl": 2,
        "lease_ttl": LEASE_TTL,
        "health_interval": HEALTH_INTERVAL,
        "idle_unmount": IDLE_UNMOUNT,
        "metrics": {"socket": METRICS_SOCKET},
        "shares": _knfsd_shares() if server == "knfsd" else _ganesha_shares(),
    }


def _ganesha_shares() -> dict[str, Any]:
    return {
        "main": _nfs([SERVER_IP], f"{PSEUDO}/main", "4.1", ["hard"]),
        # ganesha's lock manager is off in the bed, so v3 goes without NLM.
        "v3": _nfs([SERVER_IP], f"{PSEUDO}/v3", "3", [*V3_OPTIONS, "nolock"]),
        # The first server is down: mounts fall through to the second.
        "ft": _nfs([DEAD_IP, SERVER_IP], f"{PSEUDO}/ft", "4.1", ["hard"]),
        # Two heads, one disk: when the first dies, mounts go to the second.
        "ha": _nfs([SERVER_IP, SECOND_IP], f"{PSEUDO}/ha", "4.1", ["hard"]),
    }


def _knfsd_shares() -> dict[str, Any]:
    return {
        "main": _nfs([KNFSD_IP], "/export/main", "4.2", ["hard"]),
        # knfsd runs lockd and statd: v3 locks go through NLM, as on a NAS.
        "v3": _nfs([KNFSD_IP], "/export/v3", "3", ["hard", "proto=tcp"]),
        "ft": _nfs([DEAD_IP, KNFSD_IP], "/export/ft", "4.2", ["hard"]),
        # Exported with root_squash, the default of Linux's exports(5).
        "squashed": _nfs([KNFSD_IP], "/squashed", "4.2", ["hard"]),
    }


def _nfs(servers: list[str], export: str, version: str, options: list[str]) -> dict[str, Any]:
    return {
        "type": "nfs",
        "servers": servers,
        "export": export,
        "version": version,
        "options": options,
        "on_remove": "delete",
    }


class Cluster:
    """One NFS server (ganesha or knfsd) and named Docker hosts, each running nfsvol."""

    def __init__(
        self,
        workdir: Path,
        artifacts: Artifacts,
        names: Iterable[str] = ("a", "b"),
        cpus: int = 1,
        memory_mb: int = 1536,
        config: dict[str, Any] | None = None,
        server: str = "ganesha",
    ) -> None:
        if server not in SERVER_KINDS:
            raise ValueError(f"server {server!r}: choose one of {', '.join(SERVER_KINDS)}")
        self.workdir, self.kind = workdir, server
        self.config = config or plugin_config(server)  # nfsvol's, on every host
        self.artifacts, self.cpus, self.memory_mb = artifacts, cpus, memory_mb
        self.segment = free_port()  # the hosts' LAN
        dead_port = free_port()  # nothing ever listens here
        self.forwards = [
            Forward(DEAD_IP, NFS_PORT, dead_port),
            Forward(DEAD_IP, MOUNT_PORT, dead_port),
        ]
        self.server: NfsServer | KernelNfsServer
        self.second: NfsServer | None = None
        if server == "knfsd":
            lan = LanPort(self.segment, KNFSD_IP, "52:54:00:76:00:c8")
            self.server = KernelNfsServer(workdir, artifacts, lan)
            self.server_ip, self.wire = KNFSD_IP, self.server.wire
        else:
            self.server = NfsServer(workdir / "export")
            self.second = NfsServer(workdir / "export")  # same disk; started by the drills
            self.forwards += [
                Forward(SERVER_IP, NFS_PORT, self.server.nfs_port),
                Forward(SERVER_IP, MOUNT_PORT, self.server.mnt_port),
                Forward(SECOND_IP, NFS_PORT, self.second.nfs_port),
                Forward(SECOND_IP, MOUNT_PORT, self.second.mnt_port),
            ]
            # Clients connect to SERVER_IP; the packets leave for ganesha's port.
            self.server_ip, self.wire = SERVER_IP, (GUEST_HOST_ADDR, self.server.nfs_port)
        self.hosts: dict[str, DockerHost] = {}
        self._lan_numbers: dict[str, int] = {}
        for name in names:
            self._new_host(name)
        self.plugin_pids: dict[str, int] = {}
        self._rpcbind: subprocess.Popen[bytes] | None = None
        # Extra steps after nfsvol is up on a host that (re)booted, e.g. a managed plugin.
        self.on_boot: list[Callable[[DockerHost], None]] = []

    def _new_host(self, name: str) -> DockerHost:
        # A name keeps its address; a new name never takes a dropped host's.
        number = self._lan_numbers.setdefault(name, len(self._lan_numbers) + 1)
        lan = LanPort(self.segment, f"{LAN_PREFIX}.{number}", f"52:54:00:76:00:{number:02x}")
        host = DockerHost(
            name,
            self.artifacts,
            state_dir=self.workdir / f"state-{name}",
            memory_mb=self.memory_mb,
            cpus=self.cpus,
            forwards=self.forwards,
            workdir=self.workdir / f"guest-{name}",
            lan=lan,
            logs_dir=self.workdir / f"logs-{name}",
        )
        self.hosts[name] = host
        return host

    def add_host(self, name: str, serve: bool = True) -> float:
        """Boot one more host; return seconds until it serves (dockerd only, if not `serve`)."""
        self._new_host(name)
        if serve:
            return self.boot(name)
        return self.hosts[name].boot()

    def drop_host(self, name: str) -> None:
        """Power host `name` off and forget it (its state directory is kept)."""
        self.hosts.pop(name).close()
        self.plugin_pids.pop(name, None)

    def start(self) -> dict[str, float]:
        """Start the server, boot every host in parallel, start nfsvol; return boot times."""
        hosts = list(self.hosts.values())
        if isinstance(self.server, KernelNfsServer):
            self.server.ensure_disk()
            times = boot_all([*hosts, self.server.guest])[:-1]  # the server boots beside them
            self.server.start()
        else:
            self._rpcbind = self._rpcbind or ensure_rpcbind()
            self.server.start()
            for share in SHARES:
                self.server.export_dir.joinpath(share).mkdir(parents=True, exist_ok=True)
            times = boot_all(hosts)
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            list(pool.map(self._provision, hosts))
        return {h.name: t for h, t in zip(hosts, times, strict=True)}

    def export_dir(self, share: str) -> Path | GuestPath:
        """The folder that holds `share`'s data on the server's own disk.

        ganesha's disk is a folder on this machine; knfsd's is read in its guest.
        """
        if isinstance(self.server, KernelNfsServer):
            return self.server.share_dir(share)
        return self.server.export_dir / share

    def recreate_share(self, share: str) -> None:
        """Restore `share`'s folder as from a backup, then restart the server.

        The same files with new inodes: every file handle a client holds is stale,
        and nothing the server cached keeps the old ones.
        """
        if isinstance(self.server, KernelNfsServer):
            self.server.recreate(share)
        else:
            export = self.server.export_dir / share
            backup = export.with_name(f"{share}.backup")
            shutil.copytree(export, backup, symlinks=True)
            shutil.rmtree(export)
            backup.rename(export)
        self.server.restart()

    def _provision(self, host: DockerHost) -> None:
        host.load_image(IMAGE_TAG)
        host.run(["mkdir", "-p", "/etc/nfsvol", "/run/docker/plugins"]).check()
        if self.kind == "knfsd":  # the NFSv3 lock client's helpers, as nfs-common runs them
            host.run(["sh", "-c", "pidof rpcbind || rpcbind; pidof rpc.statd || rpc.statd"])
        host.write_file(PLUGIN_CONFIG, json.dumps(self.config, indent=2))
        self.start_plugin(host)
        for step in self.on_boot:
            step(host)

    def start_plugin(self, host: DockerHost) -> None:
        """Start nfsvol in `host` and wait until its socket answers."""
        host.run(["rm", "-f", PLUGIN_SOCKET]).check()  # one left by a killed plugin is no sign
        self.plugin_pids[host.name] = host.start_plugin(PLUGIN_CONFIG)
        try:
            wait_for(lambda: self._plugin_up(host), 60, f"nfsvol on {host.name}", 0.5)
        except TimeoutError as exc:
            log = host.run(["cat", "/run/testbed/nfsvol.log"]).stdout
            raise TimeoutError(f"{exc}; its log ends: {log[-3000:]}") from None

    def restart_plugin(self, name: str, config: dict[str, Any] | None = None) -> None:
        """Stop nfsvol on host `name`, give it `config` (else the cluster's), start it again."""
        host = self.hosts[name]
        host.kill(-self.plugin_pids[name], signal.SIGTERM)  # its whole process group
        host.wait(self.plugin_pids[name], timeout=60)
        host.write_file(PLUGIN_CONFIG, json.dumps(config or self.config, indent=2))
        self.start_plugin(host)

    def _plugin_up(self, host: DockerHost) -> bool:
        rc = host.wait(self.plugin_pids[host.name], timeout=0)
        if rc is not None:
            log = host.run(["cat", "/run/testbed/nfsvol.log"]).stdout
            raise RuntimeError(f"nfsvol on {host.name} exited {rc}: {log[-2000:]}")
        # The socket is bound before start-up work (reconcile, warm cache):
        # only an answer to Activate says the plugin serves.
        probe = [host.python, "-I", "-S", "-c", _ACTIVATE_PROBE, PLUGIN_SOCKET]
        return host.run(probe, timeout=30).rc == 0

    def power_off(self, name: str) -> None:
        """Pull the plug on host `name`."""
        self.hosts[name].power_off()
        self.plugin_pids.pop(name, None)

    def boot(self, name: str) -> float:
        """Boot host `name` again and start nfsvol; return seconds until it serves."""
        started = time.monotonic()
        host = self.hosts[name]
        host.boot()
        self._provision(host)
        return time.monotonic() - started

    def nfs_mounts(self, name: str, share: str | None = None) -> list[str]:
        """Lines of /proc/mounts on host `name` that are NFS mounts (of `share`'s export)."""
        mounts = self.hosts[name].run(["cat", "/proc/mounts"]).check().stdout
        lines = [line for line in mounts.splitlines() if line.split()[2] in ("nfs", "nfs4")]
        if share is not None:
            shares = self.config["shares"]
            # A share of another plugin (the managed one's) sits beside the bed's.
            export = shares[share]["export"] if share in shares else f"{PSEUDO}/{share}"
            lines = [line for line in lines if line.split()[0].endswith(f":{export}")]
        return lines

    def metrics(self, name: str) -> str:
        """What a Prometheus scrape of nfsvol on host `name` returns."""
        scrape = [self.hosts[name].python, "-I", "-S", "-c", _SCRAPE, METRICS_SOCKET]
        return self.hosts[name].run(scrape, timeout=60).check().stdout

    def plugin_log(self, name: str, boot: int = -1) -> str:
        """nfsvol's log on host `name` in its last boot (-2: the one before, ...)."""
        return self.hosts[name].boot_logs("nfsvol.log")[boot]

    def plugin_requests(self, name: str) -> list[dict[str, Any]]:
        """The plugin's request log on host `name`: one dict per call, oldest first."""
        calls = []
        for line in self.plugin_log(name).splitlines():
            _, sep, payload = line.partition("nfsvol.requests: ")
            if sep:
                calls.append(json.loads(payload))
        return calls

    def close(self) -> None:
        """Power everything off and stop the server; keep the work directory."""
        for host in self.hosts.values():
            host.close()
        if isinstance(self.server, KernelNfsServer):
            self.server.close()
        else:
            self.server.stop()
        if self.second is not None:
            self.second.stop()
        if self._rpcbind is not None:
            self._rpcbind.terminate()
            self._rpcbind.wait(timeout=10)
            self._rpcbind = None

    def remove(self) -> None:
        """close(), then delete the work directory."""
        self.close()
        self.server.cleanup()
        if self.second is not None:
            self.second.cleanup()
        shutil.rmtree(self.workdir, ignore_errors=True)
