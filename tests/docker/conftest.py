"""A real dockerd on this machine that finds nfsvol through a spec file.

`bed` is parametrized over ENGINES, so every test here runs once per engine
(`test_x[20.10]`, `test_x[26.1]`). pytest runs one engine's tests together and
finishes that bed before it builds the next: the beds share the spec file.
"""

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed.engines import Engine
from tests.fakes.servers import MOUNT_HELPER, FakeServers, unmount_below
from tests.support.dockerd import ENGINES, Dockerd, engine_named, import_busybox
from tests.support.plugin import PluginClient, PluginProcess

SPEC_DIR = Path("/etc/docker/plugins")
DRIVER = "nfsvol"
IDLE_UNMOUNT = 4  # short, so tests can see a parked share released


@dataclass
class DockerBed:
    """dockerd, the nfsvol process it talks to, and the share behind them."""

    daemon: Dockerd
    plugin: PluginProcess
    client: PluginClient
    share: Path
    image: str
    state_dir: Path
    servers: FakeServers

    @property
    def engine(self) -> Engine:
        """The Docker Engine this bed's dockerd and client come from."""
        return self.daemon.engine

    def share_mounted(self, share: str = "nfs") -> bool:
        """Whether nfsvol holds the NFS share `share` mounted on this host."""
        point = f" {self.state_dir / 'mnt' / share} "
        return point in Path("/proc/self/mountinfo").read_text()

    def docker(self, *args: str, check: bool = True, timeout: float = 120):
        """The docker CLI against this bed's daemon."""
        return self.daemon.docker(*args, check=check, timeout=timeout)

    def run(self, *args: str, check: bool = True):
        """`docker run --rm --network none ...` with the test image."""
        *opts, cmd = args
        return self.docker(
            "run", "--rm", "--network", "none", *opts, self.image, "sh", "-c", cmd, check=check
        )

    def calls(self, volume: str) -> list[tuple[str, str | None, int]]:
        """(endpoint, ID, HTTP status) of every plugin call about `volume`."""
        out = []
        for line in self.plugin.log_path.read_text().splitlines():
            _, sep, payload = line.partition("nfsvol.requests: ")
            if sep:
                call = json.loads(payload)
                if call["volume"] == volume:
                    out.append((call["endpoint"], call["id"], call["status"]))
        return out

    def count(self, volume: str, endpoint: str, ok_only: bool = True) -> int:
        """How many times dockerd called `endpoint` for `volume`."""
        return sum(
            1 for e, _, s in self.calls(volume) if e == endpoint and (s == 200 or not ok_only)
        )


def wait_for(check, timeout: float, what: str) -> None:
    """Poll `check` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def unique(prefix: str) -> str:
    """A volume name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


_live_beds: list[str] = []  # at most one: the spec file below is shared


@pytest.fixture(scope="session", params=ENGINES)
def bed(request, tmp_path_factory):
    version = request.param
    assert not _live_beds, f"bed {version} started while bed {_live_beds} still runs"
    root = tmp_path_factory.mktemp(f"docker-{version}-")
    share = root / "share"
    share.mkdir()
    # Share "nfs" goes through a real mount, made by the fake mount.nfs (a bind mount).
    servers = FakeServers(root)
    servers.live("nfs1")
    config = {
        "state_dir": str(root / "state"),
        "default_share": "main",
        "mount_helper": MOUNT_HELPER,
        "mount_timeout": 10,
        "shares": {
            "main": {"type": "path", "path": str(share), "on_remove": "delete"},
            "nfs": {"type": "nfs", "servers": ["nfs1"], "export": "/srv/docker"},
        },
        "catalog_ttl": 1,
        "idle_unmount": IDLE_UNMOUNT,
    }
    plugin = PluginProcess(config, root, servers.env)
    client = plugin.start()
    SPEC_DIR.mkdir(parents=True, exist_ok=True)
    spec = SPEC_DIR / f"{DRIVER}.spec"
    spec.write_text(f"unix://{plugin.socket_path}\n")
    daemon = Dockerd(root / "dockerd", engine_named(version))
    daemon.root.mkdir()
    _live_beds.append(version)
    try:
        daemon.start()
        image = import_busybox(daemon, root)
        yield DockerBed(daemon, plugin, client, share, image, root / "state", servers)
    finally:
        if daemon.proc is not None:
            ids = daemon.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                daemon.docker("rm", "-f", *ids, check=False)
        daemon.stop()
        daemon.cleanup()
        plugin.kill()
        servers.end_strays()
        spec.unlink(missing_ok=True)
        unmount_below(root)
        _live_beds.remove(version)
