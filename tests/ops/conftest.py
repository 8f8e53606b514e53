"""A host with fake NFS servers, a path share and a config file, for the ops commands."""

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.servers import MOUNT_HELPER, FakeServers, mounted_below, unmount_below
from tests.support.plugin import PluginClient, PluginProcess


def host_config(tmp: Path, scratch: Path, **overrides: Any) -> dict[str, Any]:
    config = {
        "state_dir": str(tmp / "state"),
        "default_share": "main",
        "mount_helper": MOUNT_HELPER,
        "umount_helper": "/usr/bin/umount",
        "mount_timeout": 5,  # generous: the fake helper is a Python start-up, on a busy machine
        "catalog_ttl": 1,
        "idle_unmount": 1,
        "shares": {
            "main": {"type": "nfs", "servers": ["nfs1", "nfs2"], "export": "/srv/docker"},
            "scratch": {"type": "path", "path": str(scratch), "on_remove": "retain"},
        },
    }
    config.update(overrides)
    return config


@dataclass
class OpsHost:
    """A Docker host's view: config, state, shares, and the nfsvol command."""

    tmp: Path
    servers: FakeServers
    export: Path
    scratch: Path
    config_path: Path
    plugin: PluginProcess

    @property
    def state_dir(self) -> Path:
        return self.tmp / "state"

    @property
    def env(self) -> dict[str, str]:
        # TMPDIR: the commands' private mounts go where the clean-up finds them.
        return {**os.environ, **self.servers.env, "TMPDIR": str(self.tmp / "probes")}

    def nfsvol(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`python -m nfsvol ARGS --config FILE`, as an operator runs it."""
        argv = [sys.executable, "-m", "nfsvol", *args]
        if "--help" not in args:
            argv += ["--config", str(self.config_path)]
        return subprocess.run(
            argv, capture_output=True, text=True, env=self.env, timeout=timeout, check=False
        )

    def write_config(self, config: dict[str, Any] | str) -> None:
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        self.config_path.write_text(text)

    def wait_unmounted(self, timeout: float = 15) -> None:
        """Wait until the plugin lets go of a share nothing uses (idle_unmount: 1 here)."""
        deadline = time.monotonic() + timeout
        while mounted_below(self.state_dir):
            assert time.monotonic() < deadline, "the parked share was never released"
            time.sleep(0.1)

    def start_plugin(self) -> PluginClient:
        """`nfsvol serve` on the same config, to make volumes the real way."""
        return self.plugin.start()


def protect(path: Path, flags: str = "nosuid,nodev") -> None:
    """Bind-mount `path` onto itself with `flags`, as an operator mounts a path share."""
    if path.as_posix() not in mounted_below(path):
        subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    subprocess.run(["mount", "-o", f"remount,bind,{flags}", str(path)], check=True)


@pytest.fixture
def host(tmp_path):
    servers = FakeServers(tmp_path)
    export = servers.live("nfs1")
    servers.alias("nfs2", "nfs1")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    protect(scratch)
    (tmp_path / "probes").mkdir()
    config = host_config(tmp_path, scratch)
    plugin = PluginProcess(config, tmp_path, servers.env)
    ops = OpsHost(tmp_path, servers, export, scratch, plugin.config_path, plugin)
    yield ops
    ops.plugin.kill()
    servers.end_strays()
    unmount_below(tmp_path)
