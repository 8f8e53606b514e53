"""The real app under real gunicorn on a real unix socket."""

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.servers import (
    MOUNT_HELPER,
    UMOUNT_HELPER,
    FakeServers,
    mounted_below,
    unmount_below,
)
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


@contextlib.contextmanager
def serving(tmp: Path, **overrides: object) -> Iterator[Served]:
    """A plugin on fresh storage under `tmp`; config keys in `overrides` win."""
    servers = FakeServers(tmp)
    export = servers.live("nfs1")
    servers.alias("nfs2", "nfs1")
    scratch = tmp / "scratch"
    scratch.mkdir()
    config = {**plugin_config(tmp, scratch), **overrides}
    process = PluginProcess(config, tmp, servers.env)
    try:
        client = process.start()
        yield Served(process, client, servers, export, scratch, tmp / "state")
    finally:
        process.kill()
        servers.end_strays()
        unmount_below(tmp)


@contextlib.contextmanager
def another_host(first: Served, **overrides: object) -> Iterator[Served]:
    """A second plugin, "host b": the same servers and export, state of its own."""
    tmp = first.state_dir.parent / "b"
    tmp.mkdir()
    config = {**plugin_config(tmp, first.scratch), **overrides}
    process = PluginProcess(config, tmp, first.servers.env)
    try:
        client = process.start()
        yield Served(process, client, first.servers, first.export, first.scratch, tmp / "state")
    finally:
        process.kill()  # the first plugin's clean-up ends its helpers and mounts


@pytest.fixture
def served(tmp_path):
    with serving(tmp_path) as plugin:
        yield plugin


@pytest.fixture(scope="module")
def served_module(tmp_path_factory):
    """One plugin for a whole table of cases, its umount calls logged too."""
    with serving(tmp_path_factory.mktemp("plugin"), umount_helper=UMOUNT_HELPER) as plugin:
        yield plugin
