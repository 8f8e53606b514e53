"""The real app under real gunicorn on a real unix socket."""

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.servers import MOUNT_HELPER, FakeServers, mounted_below, unmount_below
from tests.support.plugin import PluginClient, PluginProcess


@dataclass
class Served:
    """A running plugin, its client, and the storage behind it."""

    process: PluginProcess
    client: PluginClient
    servers: FakeServers
    export: Path
    scratch: Path
    state_dir: Path

    def wait_unmounted(self, timeout: float = 10) -> list[str]:
        """Wait for the background janitor to release parked share mounts."""
        deadline = time.monotonic() + timeout
        while mounted_below(self.state_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
        return mounted_below(self.state_dir)

    def restart(self) -> None:
        """Start the plugin again on the same state and socket."""
        self.client = self.process.start()


def plugin_config(tmp: Path, scratch: Path) -> dict:
    return {
        "state_dir": str(tmp / "state"),
        "default_share": "main",
        "mount_helper": MOUNT_HELPER,
        "umount_helper": "/usr/bin/umount",
        "mount_timeout": 4,  # the fake helper is a Python start-up: slow under load
        "catalog_ttl": 1,
        "idle_unmount": 1,
        "shares": {
            "main": {"type": "nfs", "servers": ["nfs1", "nfs2"], "export": "/srv/docker"},
            "scratch": {"type": "path", "path": str(scratch), "on_remove": "retain"},
        },
    }


@pytest.fixture
def served(tmp_path):
    servers = FakeServers(tmp_path)
    export = servers.live("nfs1")
    servers.alias("nfs2", "nfs1")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    process = PluginProcess(plugin_config(tmp_path, scratch), tmp_path, servers.env)
    client = process.start()
    yield Served(process, client, servers, export, scratch, tmp_path / "state")
    process.kill()
    unmount_below(tmp_path)
