"""The share health monitor: probes under a deadline, verdicts in Status, safe recovery.

statfs is the one stand-in: a fake at the syscall boundary that blocks or
answers ESTALE as a dead or recreated NFS export would.
"""

import errno
import os
import subprocess
import threading
import time

import pytest

from nfsvol.driver import Driver
from nfsvol.host.health import Health, HealthState, Prober, verdict
from tests.fakes.servers import UMOUNT_HELPER, mounted_below


class FakeStatfs:
    """os.statvfs, except for the paths told to hang or go stale."""

    def __init__(self) -> None:
        self.hung: dict[str, threading.Event] = {}
        self.stale: set[str] = set()

    def __call__(self, path: str) -> object:
        if path in self.stale:
            raise OSError(errno.ESTALE, os.strerror(errno.ESTALE), path)
        if path in self.hung:
            self.hung[path].wait()
        return os.statvfs(path)


def monitored(world, statfs, **overrides) -> Driver:
    return world.driver(prober=Prober(statfs=statfs), health_interval=5, **overrides)


def health(driver, name="data"):
    return driver.get(name).status.get("health", {}).get("state")


@pytest.mark.parametrize(
    ("word", "member"),
    [
        ("ok", HealthState.OK),
        ("unreachable", HealthState.UNREACHABLE),
        ("stale", HealthState.STALE),
        ("read-only", HealthState.READ_ONLY),
    ],
)
def test_a_health_state_reads_as_its_member_and_is_stored_as_its_word(word, member):
    """A probe's state and a stored verdict become HealthState members; stored, they are the word."""
    assert verdict(None, word, "detail", now=5.0).state is member
    stored = {"state": word, "detail": "detail", "checked": 5.0, "since": 5.0}
    health = Health.from_json(stored)
    assert health.state is member
    assert health.to_json() == stored and type(health.to_json()["state"]) is str


def test_a_mounted_share_is_probed_and_reported_ok(world):
    driver = monitored(world, FakeStatfs())
    driver.create("data", None)
    driver.mount("data", "c1")
    assert driver.health.check() is True
    assert health(driver) == "ok"


def test_a_hung_server_is_reported_in_time_and_probed_once(world):
    """A probe that never returns costs one thread; Status says unreachable within the timeout."""
    statfs = FakeStatfs()
    driver = monitored(world, statfs, mount_timeout=1)
    driver.create("data", None)
    driver.mount("data", "c1")
    root = str(world.share_mount())
    statfs.hung[root] = threading.Event()
    try:
        started = time.monotonic()
        driver.health.check()
        assert time.monotonic() - started < 2.5
        assert health(driver) == "unreachable"
        threads = threading.active_count()
        world.clock.advance(5)
        driver.health.check()  # the first probe is still stuck: no second one starts
        assert threading.active_count() == threads
        assert "previous probe" in driver.get("data").status["health"]["detail"]
        assert driver.get("data").status["users"] == ["c1"]  # held: never detached
    finally:
        statfs.hung[root].set()
    world.clock.advance(5)
    time.sleep(0.1)
    driver.health.check()
    assert health(driver) == "ok"


def test_a_stale_share_nobody_holds_is_detached(world):
    """ESTALE on an idle (parked) share: detached, so the next Mount mounts it afresh."""
    statfs = FakeStatfs()
    driver = monitored(world, statfs)
    driver.create("data", None)  # leaves the share parked for idle_unmount
    root = str(world.share_mount())
    assert mounted_below(world.tmp) == [root]
    statfs.stale.add(root)
    driver.health.check()
    assert mounted_below(world.tmp) == []
    statfs.stale.clear()
    assert driver.mount("data", "c1").endswith("/data")


def test_a_read_only_remount_is_reported(world):
    """The kernel (here: we) remounts the share read-only: Status says so."""
    driver = monitored(world, FakeStatfs())
    driver.create("data", None)
    driver.mount("data", "c1")
    root = str(world.share_mount())
    subprocess.run(["mount", "-o", "remount,ro,bind", root], check=True)
    driver.health.check()
    assert health(driver) == "read-only"
    assert driver.get("data").status["health"]["since"] > 0


def test_probes_wait_for_the_interval(world):
    statfs = FakeStatfs()
    driver = monitored(world, statfs)
    driver.create("data", None)
    driver.mount("data", "c1")
    driver.health.check()
    statfs.stale.add(str(world.share_mount()))
    driver.health.check()  # too soon: the verdict stands
    assert health(driver) == "ok"
    world.clock.advance(5)
    driver.health.check()
    assert health(driver) == "stale"


def test_a_hung_share_nobody_holds_is_aborted_and_detached(world):
    """A dead server under an idle share: its reads are failed and the mount let go."""
    statfs = FakeStatfs()
    driver = monitored(world, statfs, mount_timeout=1, umount_helper=UMOUNT_HELPER)
    driver.create("data", None)  # leaves the share parked for idle_unmount
    root = str(world.share_mount())
    statfs.hung[root] = threading.Event()
    try:
        driver.health.check()
        assert mounted_below(world.tmp) == []
        assert ["-f", "--no-canonicalize", root] in world.servers.umount_calls()
    finally:
        statfs.hung[root].set()
    del statfs.hung[root]
    assert driver.mount("data", "c1").endswith("/data")
