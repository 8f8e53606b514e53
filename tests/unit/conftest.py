"""A driver wired to real state on temporary directories and fake NFS servers."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from nfsvol.config import Config, parse_config
from nfsvol.driver import Driver, Host
from nfsvol.host.fence import Fencer
from nfsvol.host.health import Prober
from nfsvol.host.mounter import SubprocessMounter
from nfsvol.roles.build import build_roles
from nfsvol.state import HostState
from tests.fakes.servers import MOUNT_HELPER, FakeClock, FakeServers, mounted_below, unmount_below


@dataclass
class World:
    """Two fake NFS servers, a path share, and a factory for hosts."""

    tmp: Path
    servers: FakeServers
    export: Path  # what nfs1 and nfs2 both serve (one storage, two heads)
    scratch: Path
    clock: FakeClock

    def config(self, host: str = "a", **overrides: object) -> Config:
        """The configuration of host `host`."""
        raw = {
            "state_dir": str(self.tmp / "hosts" / host),
            "default_share": "main",
            "mount_helper": MOUNT_HELPER,
            "umount_helper": "/usr/bin/umount",
            "mount_timeout": 4,  # the fake helper is a Python start-up: slow under load
            "shares": {
                "main": {
                    "type": "nfs",
                    "servers": ["nfs1", "nfs2"],
                    "export": "/srv/docker",
                    "options": ["hard", "timeo=600"],
                    "on_remove": "delete",
                },
                "scratch": {"type": "path", "path": str(self.scratch), "on_remove": "retain"},
                "attic": {"type": "path", "path": str(self.tmp / "attic"), "on_remove": "archive"},
            },
        }
        raw.update(overrides)
        return parse_config(raw)

    def driver(
        self,
        host: str = "a",
        boot: str = "boot-1",
        prober: Prober | None = None,
        fencer: Fencer | None = None,
        **overrides: object,
    ) -> Driver:
        """A driver for host `host`, as `nfsvol serve` would build it."""
        config = self.config(host, **overrides)
        mounter = SubprocessMounter(config.mount_helper, config.umount_helper, config.mount_timeout)
        state = HostState(config.state_dir, config.share_names, lock_timeout=10)
        # A long sync_wait: a sync must finish inside the test that started it,
        # or it may mount the share again after the test's clean-up.
        roles = build_roles(
            config, mounter, state, host, self.clock, sync_wait=30, background=False,
            prober=prober, fencer=fencer,
        )  # fmt: skip
        return Driver(config, mounter, state, Host(host, boot), roles, self.clock)

    def idle_out(self, driver: Driver) -> None:
        """Let parked share mounts time out, as the background janitor would."""
        self.clock.advance(driver.config.idle_unmount)
        driver.shares.release_idle()

    def expect_release_after_idle(self, driver: Driver) -> None:
        """The parked share is still mounted 1 s before idle_unmount runs out, gone at it."""
        self.clock.advance(driver.config.idle_unmount - 1)
        driver.shares.release_idle()
        assert mounted_below(self.tmp) == [str(self.share_mount())]
        self.clock.advance(1)
        driver.shares.release_idle()
        assert mounted_below(self.tmp) == []

    def share_mount(self, host: str = "a") -> Path:
        """Where host `host` mounts the main share."""
        return self.tmp / "hosts" / host / "mnt" / "main"

    def pin(self, name: str, share: str = "main", host: str = "a") -> str:
        """The path host `host` gives dockerd for a mounted volume."""
        return str(self.tmp / "hosts" / host / "vol" / share / name)


@pytest.fixture
def world(tmp_path, monkeypatch):
    servers = FakeServers(tmp_path)
    export = servers.live("nfs1")
    servers.alias("nfs2", "nfs1")  # two heads in front of one storage
    monkeypatch.setenv("NFSVOL_FAKE_SERVERS", str(servers.table))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (tmp_path / "attic").mkdir()
    yield World(tmp_path, servers, export, scratch, FakeClock())
    servers.end_strays()
    unmount_below(tmp_path)
