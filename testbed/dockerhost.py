"""Docker hosts: QEMU (TCG) guests running dockerd, driven from this machine.

This module boots and drives them; the files inside each guest (its init,
the command agent, dockerd's start-up) are in testbed/guest/, packed into
the initramfs by testbed.artifacts.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed._proc import free_port, stop_process, wait_for
from testbed.artifacts import IMAGE_TAG, Artifacts
from testbed.nfs import GUEST_HOST_ADDR

QEMU = "/usr/bin/qemu-system-x86_64"
DEFAULT_PYTHON = "/root/.pyenv/versions/3.11.7/bin/python3"
SHUTDOWN_TIMEOUT = 60  # as in guest/stage2.sh: emulated containers stop slowly
REPO = Path(__file__).resolve().parent.parent
AGENT_PORT = 7000  # inside the guest, fixed in guest/stage2.sh
PLUGIN_SOCKET = "/run/docker/plugins/nfsvol.sock"


@dataclass(frozen=True)
class GuestResult:
    """Outcome of a command run inside a guest."""

    rc: int
    stdout: str
    stderr: str

    def check(self) -> GuestResult:
        """Return self, or raise if rc is not 0."""
        if self.rc != 0:
            raise RuntimeError(f"guest command failed rc={self.rc}: {self.stderr.strip()[-2000:]}")
        return self


@dataclass(frozen=True)
class Forward:
    """A guest-side address (ip:port) that reaches a host loopback port, e.g. a second server.

    Done by DNAT inside the guest to 10.0.2.2:host_port, so a stopped server refuses
    connections at once, as a real one would (QEMU guestfwd relays accept, then hang).
    """

    guest_ip: str
    guest_port: int
    host_port: int


@dataclass(frozen=True)
class LanPort:
    """The guest's second NIC, on a segment the bed's guests share (Swarm's network).

    The segment is QEMU's multicast socket netdev on this machine's loopback:
    every guest with the same `segment` port sees the others' frames, and
    nothing leaves the machine.
    """

    segment: int  # UDP port of the multicast group on 127.0.0.1
    address: str  # the guest's IPv4 address on it (a /24)
    mac: str  # unique on the segment


LAN_GROUP = "239.255.76.1"  # administratively scoped; bound to loopback only


class DockerHost:
    """One QEMU guest with dockerd; power_off() loses everything but state_dir."""

    def __init__(
        self,
        name: str,
        artifacts: Artifacts,
        state_dir: str | Path | None = None,
        memory_mb: int = 1536,
        cpus: int = 1,
        python: str = DEFAULT_PYTHON,
        forwards: Sequence[Forward] = (),
        workdir: str | Path | None = None,
        repo: str | Path | None = REPO,
        root_cache: str = "loose",
        cpu_model: str = "qemu64",
        lan: LanPort | None = None,
        logs_dir: str | Path | None = None,
        disk: str | Path | None = None,
        dockerd: bool = True,
    ) -> None:
        self.name = name
        # A raw disk image the guest sees as /dev/vda (the NFS server's), and
        # whether it runs dockerd at all (the NFS server guest does not).
        self.disk = Path(disk) if disk else None
        self.dockerd = dockerd
        # Kept across reboots and power-offs: one folder per boot (see boot_logs).
        self.logs_dir = Path(logs_dir) if logs_dir else None
        self.artifacts = artifacts
        self.state_dir = Path(state_dir) if state_dir else None
        self.memory_mb, self.cpus, self.python = memory_mb, cpus, python
        self.forwards = tuple(forwards)
        self.lan = lan
        # The repo gets its own uncached read-write share: edits on either side show at once.
        self.repo = Path(repo) if repo else None
        self.root_cache = root_cache
        # TCG emulates AVX slowly; a plain CPU model steers glibc to SSE2 code paths.
        self.cpu_model = cpu_model
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"nfsvol-{name}-"))
        # Ports stay fixed across reboots so clients keep their addresses.
        self.docker_port = free_port()
        self.agent_port = free_port()
        self._qemu: subprocess.Popen[bytes] | None = None
        self.boot_seconds: float | None = None

    @property
    def console_log(self) -> Path:
        """The guest's serial console output."""
        return self.workdir / "console.log"

    def _qemu_argv(self) -> list[str]:
        net = (
            f"user,id=n0,restrict=off,hostfwd=tcp:127.0.0.1:{self.docker_port}-:2375,"
            f"hostfwd=tcp:127.0.0.1:{self.agent_port}-:{AGENT_PORT}"
        )
        append = (
            f"console=ttyS0 panic=-1 quiet loglevel=4 tsc=reliable no_timer_check "
            f"tb.hostname={self.name} tb.python={self.python} "
            f"tb.state={1 if self.state_dir else 0} tb.cache={self.root_cache} "
            f"tb.logs={1 if self.logs_dir else 0} tb.dockerd={int(self.dockerd)}"
        )
        if self.artifacts.engine.root:
            append += f" tb.engine={self.artifacts.engine.root}"
        if self.repo:
            append += f" tb.repo={self.repo}"
        argv = [
            QEMU,
            "-accel",
            "tcg,tb-size=256",
            "-machine",
            "pc",
            "-cpu",
            self.cpu_model,
            "-m",
            str(self.memory_mb),
            "-smp",
            str(self.cpus),
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            f"file:{self.console_log}",
            "-kernel",
            str(self.artifacts.kernel),
            "-initrd",
            str(self.artifacts.initramfs),
            "-append",
            append,
            "-netdev",
            net,
            "-device",
            "virtio-net-pci,netdev=n0",
            "-device",
            "virtio-rng-pci",
            "-virtfs",
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        ]
        if self.lan:
            argv += [
                "-netdev",
                f"socket,id=n1,mcast={LAN_GROUP}:{self.lan.segment},localaddr=127.0.0.1",
                "-device",
                f"virtio-net-pci,netdev=n1,mac={self.lan.mac}",
            ]
        if self.disk:
            argv += [
                "-drive",
                f"file={self.disk},if=none,id=d0,format=raw,cache=writeback",
                "-device",
                "virtio-blk-pci,drive=d0",
            ]
        if self.state_dir:
            argv += [
                "-virtfs",
                f"local,path={self.state_dir},mount_tag=hoststate,"
                "security_model=none,multidevs=remap",
            ]
        if self.logs_dir:
            argv += [
                "-virtfs",
                f"local,path={self.logs_dir},mount_tag=hostlogs,"
                "security_model=none,multidevs=remap",
            ]
        if self.repo:
            argv += [
                "-virtfs",
                f"local,path={self.repo},mount_tag=hostrepo,"
                "security_model=none,readonly=on,multidevs=remap",
            ]
        return argv

    def start(self) -> None:
        """Launch QEMU without waiting for the guest (see wait_ready)."""
        if self.running():
            raise RuntimeError(f"guest {self.name} is already running")
        if self.state_dir:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._keep_console()
        self._started = time.monotonic()
        with open(self.workdir / "qemu.err", "wb") as err:  # the child keeps its own copy
            self._qemu = subprocess.Popen(
                self._qemu_argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
            )

    def _keep_console(self) -> None:
        # QEMU truncates the console file at start: the last boot's kernel
        # messages (hung tasks, oopses) go to the kept logs first.
        if not self.logs_dir:
            return
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        if self.console_log.exists():
            with open(self.logs_dir / "console.log", "ab") as kept:
                kept.write(self.console_log.read_bytes())

    def boot_logs(self, name: str) -> list[str]:
        """Log file `name` (nfsvol.log, dockerd.log) of every boot, oldest first."""
        if not self.logs_dir:
            raise RuntimeError(f"guest {self.name} keeps no logs (no logs_dir)")
        boots = sorted(self.logs_dir.glob("boot-*"), key=lambda d: int(d.name[5:]))
        return [(d / name).read_text(errors="replace") if (d / name).exists() else ""
                for d in boots]  # fmt: skip

    def wait_ready(self, timeout: float = 240) -> float:
        """Wait until the agent and dockerd answer; return seconds since start()."""
        wait_for(self._ready, timeout, f"guest {self.name} (see {self.console_log})", 0.5)
        for fwd in self.forwards:
            self.run(
                [
                    "iptables-legacy",
                    "-t",
                    "nat",
                    "-A",
                    "OUTPUT",
                    "-p",
                    "tcp",
                    "-d",
                    fwd.guest_ip,
                    "--dport",
                    str(fwd.guest_port),
                    "-j",
                    "DNAT",
                    "--to-destination",
                    f"{GUEST_HOST_ADDR}:{fwd.host_port}",
                ]
            ).check()
        if self.lan:
            self.run(["ip", "addr", "add", f"{self.lan.address}/24", "dev", "eth1"]).check()
            self.run(["ip", "link", "set", "eth1", "up"]).check()
        self.boot_seconds = time.monotonic() - self._started
        return self.boot_seconds

    def boot(self, timeout: float = 240) -> float:
        """Start the guest and wait for dockerd; return boot-to-ready seconds."""
        self.start()
        return self.wait_ready(timeout)

    def _ready(self) -> bool:
        if self._qemu is None or self._qemu.poll() is not None:
            raise RuntimeError(f"qemu for {self.name} exited: {self._tail()}")
        return self._ping_agent() and (not self.dockerd or self._ping_docker())

    def _tail(self) -> str:
        logs = [self.workdir / "qemu.err", self.console_log]
        return " | ".join(p.read_text(errors="replace")[-1500:] for p in logs if p.exists())

    def _ping_agent(self) -> bool:
        try:
            return bool(self._agent({"op": "ping"}, timeout=3).get("ok"))
        except OSError:
            return False

    def _ping_docker(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.docker_port, timeout=3)
        try:
            conn.request("GET", "/_ping")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _agent(self, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        with socket.create_connection(("127.0.0.1", self.agent_port), timeout=timeout) as s:
            s.sendall(json.dumps(req).encode() + b"\n")
            data = s.makefile("rb").readline()
        if not data:
            raise ConnectionError(f"agent on {self.name} closed without answer")
        reply: dict[str, Any] = json.loads(data)
        if "error" in reply and "rc" not in reply:
            raise RuntimeError(f"agent on {self.name}: {reply['error']}")
        return reply

    def running(self) -> bool:
        """Tell whether QEMU is alive."""
        return self._qemu is not None and self._qemu.poll() is None

    def run(
        self,
        argv: Sequence[str],
        timeout: float = 60,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        input: bytes | None = None,
    ) -> GuestResult:
        """Run argv inside the guest and return rc/stdout/stderr (no check; see .check())."""
        req: dict[str, Any] = {
            "op": "run",
            "argv": list(argv),
            "timeout": timeout,
            "cwd": cwd,
            "env": env,
        }
        if input is not None:
            req["input_b64"] = base64.b64encode(input).decode()
        reply = self._agent(req, timeout=timeout + 10)
        return GuestResult(
            reply["rc"],
            base64.b64decode(reply["stdout_b64"]).decode(errors="replace"),
            base64.b64decode(reply["stderr_b64"]).decode(errors="replace"),
        )

    def spawn(
        self,
        argv: Sequence[str],
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        log: str = "/dev/null",
    ) -> int:
        """Start a long-running process in the guest; return its guest pid."""
        req = {"op": "spawn", "argv": list(argv), "cwd": cwd, "env": env, "log": log}
        return int(self._agent(req, timeout=30)["pid"])

    def kill(self, pid: int, sig: int = signal.SIGTERM) -> bool:
        """Send sig to a guest pid; False if no such process."""
        return bool(self._agent({"op": "kill", "pid": pid, "sig": int(sig)}, timeout=10)["ok"])

    def wait(self, pid: int, timeout: float = 0) -> int | None:
        """Wait for a spawned guest process; its exit code, or None if still running."""
        reply = self._agent({"op": "wait", "pid": pid, "timeout": timeout}, timeout=timeout + 10)
        return reply.get("rc")

    def start_plugin(
        self, config: str, socket_path: str = PLUGIN_SOCKET, log: str = "/run/testbed/nfsvol.log"
    ) -> int:
        """Start `python -m nfsvol serve` from the working tree; return its guest pid."""
        python = self._repo_python()
        argv = [python, "-m", "nfsvol", "serve", "--config", config, "--socket", socket_path]
        return self.spawn(argv, cwd=str(REPO), env={"PYTHONPATH": str(REPO)}, log=log)

    def unsent(self, address: str, port: int) -> int:
        """Bytes this guest's TCP connections to address:port hold unacknowledged."""
        code = (
            "import sys; from nfsvol.host import sockdiag; "
            "print(sum(c.queued for c in sockdiag.connections_to(sys.argv[1], int(sys.argv[2]))))"
        )
        argv = [self._repo_python(), "-c", code, address, str(port)]
        return int(self.run(argv, cwd=str(REPO), env={"PYTHONPATH": str(REPO)}).check().stdout)

    def _repo_python(self) -> str:
        # The project venv (visible through the repo share) carries flask and gunicorn.
        venv = REPO / ".venv" / "bin" / "python"
        return str(venv) if venv.exists() else self.python

    def write_file(self, path: str, data: bytes | str) -> None:
        """Write a file inside the guest (e.g. a plugin config)."""
        raw = data.encode() if isinstance(data, str) else data
        self.run(["/bin/busybox", "sh", "-c", 'cat > "$0"', path], input=raw).check()

    def docker(
        self,
        *args: str,
        timeout: float = 180,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run the docker client on this machine against the guest's dockerd."""
        argv = [self.artifacts.engine.docker, "-H", f"tcp://127.0.0.1:{self.docker_port}", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"docker {' '.join(args)} on {self.name} exited "
                f"{proc.returncode}: {proc.stderr.strip()[-2000:]}"
            )
        return proc

    def compose(
        self,
        *args: str,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 300,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run Compose on this machine against the guest's dockerd, as `docker compose` would.

        `command` is Compose's argv (default: the bed's engine's); `env` adds variables
        for the compose file's interpolation.
        """
        argv = [*(command or self.artifacts.engine.compose), *args]
        host = f"tcp://127.0.0.1:{self.docker_port}"
        environ = {**os.environ, **(env or {}), "DOCKER_HOST": host}
        what = f"{Path(argv[0]).name} {' '.join(args)} on {self.name}"
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, check=False, env=environ
            )
        except subprocess.TimeoutExpired as exc:
            said = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
            raise TimeoutError(f"{what} killed after {timeout:.0f}s: {said[-2000:]}") from None
        if check and proc.returncode != 0:
            said = f"{proc.stdout.strip()}\n{proc.stderr.strip()}".strip()
            raise RuntimeError(f"{what} exited {proc.returncode}: {said[-2000:]}")
        return proc

    def engine_version(self) -> str:
        """The version the guest's dockerd reports, e.g. 26.1.5+dfsg1."""
        return self.docker("version", "--format", "{{.Server.Version}}").stdout.strip()

    def load_image(self, tag: str = IMAGE_TAG) -> None:
        """Import the busybox rootfs tarball into the guest's dockerd as tag."""
        self.docker("import", str(self.artifacts.busybox_tar), tag, timeout=300)

    def stop_dockerd(self, sig: int = signal.SIGTERM, timeout: float = 120) -> None:
        """Stop dockerd with sig and wait until it has exited."""
        pid = int(self.run(["cat", "/var/run/docker.pid"]).check().stdout)
        self.kill(pid, sig)
        wait_for(lambda: self.run(["kill", "-0", str(pid)]).rc != 0, timeout, "dockerd to exit")

    def kill_dockerd(self, timeout: float = 60) -> None:
        """SIGKILL dockerd and the containerd it started, as the OOM killer would.

        Containers live on in their shims until the next dockerd decides.
        """
        containerd = self.run(["cat", "/var/run/docker/containerd/containerd.pid"]).check()
        self.stop_dockerd(signal.SIGKILL, timeout)
        pid = int(containerd.stdout)
        self.kill(pid, signal.SIGKILL)
        wait_for(lambda: self.run(["kill", "-0", str(pid)]).rc != 0, timeout, "containerd to exit")

    def start_dockerd(self, live_restore: bool = False, wait: float = 120) -> None:
        """Start dockerd with live-restore on or off; wait (if wait > 0) until it answers."""
        config = {"live-restore": live_restore, "shutdown-timeout": SHUTDOWN_TIMEOUT}
        self.write_file("/run/testbed/daemon.json", json.dumps(config))
        self.run(["/bin/busybox", "sh", "/run/testbed/dockerd.sh"]).check()
        if wait > 0:
            self.wait_dockerd(wait)

    def wait_dockerd(self, timeout: float = 120) -> None:
        """Wait until dockerd answers its API."""
        wait_for(self._ping_docker, timeout, f"dockerd on {self.name}", 0.5)

    def restart_dockerd(self, live_restore: bool = False, sig: int = signal.SIGTERM) -> float:
        """stop_dockerd, then start_dockerd; return seconds until it answers again."""
        started = time.monotonic()
        self.stop_dockerd(sig)
        self.start_dockerd(live_restore)
        return time.monotonic() - started

    def power_off(self) -> None:
        """Kill QEMU abruptly: no shutdown, no unmount, like pulling the plug."""
        if self._qemu is not None:
            self._qemu.kill()
            self._qemu.wait(timeout=30)
            self._qemu = None

    def reboot(self, timeout: float = 240) -> float:
        """Power off abruptly and boot again; return boot-to-ready seconds."""
        self.power_off()
        return self.boot(timeout)

    def close(self) -> None:
        """Power off and delete the work directory (state_dir is kept)."""
        if self._qemu is not None:
            stop_process(self._qemu, timeout=5)
            self._qemu = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> DockerHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def boot_all(hosts: Sequence[DockerHost], timeout: float = 300) -> list[float]:
    """Boot several guests in parallel; return each one's boot-to-ready seconds."""
    for host in hosts:
        host.start()
    with ThreadPoolExecutor(max_workers=len(hosts) or 1) as pool:
        return list(pool.map(lambda h: h.wait_ready(timeout), hosts))
