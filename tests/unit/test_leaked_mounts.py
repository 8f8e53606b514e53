"""Mounts a dead dockerd left behind: found by who sent them, dropped only when unused.

A real process stands in for each dockerd (its PID and start time are what
the plugin reads from the socket); a process with the volume bind-mounted
in its own mount namespace stands in for a container that outlived it.
"""

import contextlib
import socket
import subprocess
from collections.abc import Iterator

import pytest

from nfsvol.errors import VolumeInUse
from nfsvol.host.dockerd import UNSEEN, Caller, caller_of, start_time, tagged_process
from tests.fakes.servers import mounted_below
from tests.support.namespaces import user_of


@contextlib.contextmanager
def dockerd() -> Iterator[tuple[Caller, subprocess.Popen[bytes]]]:
    """A live process the plugin would see at the other end of dockerd's socket."""
    proc = subprocess.Popen(["sleep", "600"])
    try:
        yield Caller(proc.pid, start_time(proc.pid)), proc
    finally:
        proc.kill()
        proc.wait()


def killed(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()


def users(driver, name: str) -> list[str]:
    return driver.get(name).status["users"]


def test_a_dead_dockerds_mounts_are_dropped_once_no_container_uses_the_volume(world, tmp_path):
    """A container that outlived its dockerd (live-restore) keeps the count until it stops."""
    driver = world.driver()
    driver.create("data", None)
    with dockerd() as (old, proc):
        driver.mount("data", "c1", old)
        with user_of(world.share_mount() / "data", tmp_path / "container"):
            killed(proc)
            driver.mount_ids.reclaim_leaked()
            assert users(driver, "data") == ["c1"]
            assert mounted_below(world.tmp) == [str(world.share_mount()), world.pin("data")]
        driver.mount_ids.reclaim_leaked()
    assert users(driver, "data") == []
    assert mounted_below(world.tmp) == [str(world.share_mount())]  # the pin went with the count
    world.idle_out(driver)  # the last release parked the share
    assert mounted_below(world.tmp) == []


def test_the_mounts_of_a_live_dockerd_are_never_reclaimed(world):
    """No container may be running yet: dockerd mounts before it starts one."""
    driver = world.driver()
    driver.create("data", None)
    with dockerd() as (live, _):
        driver.mount("data", "c1", live)
        driver.mount_ids.reclaim_leaked()
        assert users(driver, "data") == ["c1"]
        driver.unmount("data", "c1")
    world.idle_out(driver)  # the last release parked the share
    assert mounted_below(world.tmp) == []


def test_an_id_mounted_again_by_a_new_dockerd_counts_once(world):
    """`--restart always` after kill -9 of dockerd: the same ID, one Unmount to come."""
    driver = world.driver()
    driver.create("data", None)
    with dockerd() as (old, proc), dockerd() as (new, _):
        driver.mount("data", "c1", old)
        killed(proc)
        driver.mount("data", "c1", new)
        assert users(driver, "data") == ["c1"]
        driver.unmount("data", "c1")
        assert users(driver, "data") == []
    world.idle_out(driver)  # the last release parked the share
    assert mounted_below(world.tmp) == []


def test_an_id_mounted_again_by_a_new_dockerd_counts_once_while_the_volume_is_in_use(
    world, tmp_path
):
    """Another process using the volume (a container starting, which briefly holds a
    copy of this host's mounts) does not keep the earlier dockerd's count of that ID."""
    driver = world.driver()
    driver.create("data", None)
    with dockerd() as (old, proc), dockerd() as (new, _):
        driver.mount("data", "c1", old)
        killed(proc)
        with user_of(world.share_mount() / "data", tmp_path / "starting"):
            driver.mount("data", "c1", new)
        driver.unmount("data", "c1")
        assert users(driver, "data") == []
    world.idle_out(driver)  # the last release parked the share
    assert mounted_below(world.tmp) == []


def test_remove_drops_a_dead_dockerds_mounts_and_refuses_a_live_ones(world):
    """dockerd sends Remove only when none of its containers refers to the volume."""
    driver = world.driver()
    for name in ("lost", "held"):
        driver.create(name, None)
    with dockerd() as (old, proc), dockerd() as (live, _):
        driver.mount("lost", "c1", old)
        driver.mount("held", "c2", live)
        killed(proc)
        driver.remove("lost")
        with pytest.raises(VolumeInUse, match="c2"):
            driver.remove("held")
    assert not (world.export / "lost").exists()
    assert (world.export / "held").is_dir()


def test_a_dockerd_it_cannot_see_is_told_apart_by_its_activation(world):
    """A managed plugin sees no PID: only Remove, after a new Activate, drops the count."""
    driver = world.driver()
    driver.create("data", None)
    driver.activated(UNSEEN)
    driver.mount("data", "c1", UNSEEN)
    with pytest.raises(VolumeInUse):
        driver.remove("data")
    driver.activated(UNSEEN)  # dockerd restarted
    driver.mount_ids.reclaim_leaked()
    assert users(driver, "data") == ["c1"]  # a live-restored container may still use it
    driver.remove("data")
    assert not (world.export / "data").exists()


def test_the_caller_is_the_process_at_the_other_end_of_the_socket():
    mine, theirs = socket.socketpair(socket.AF_UNIX)
    with mine, theirs:
        caller = caller_of(mine)
    assert caller.pid is not None
    assert caller.tag == f"pid:{caller.pid}:{start_time(caller.pid)}"
    assert tagged_process(caller.tag) == (caller.pid, start_time(caller.pid))


@pytest.mark.parametrize(
    "tag, process",
    [
        ("pid:42:1234", (42, "1234")),
        ("activation:0a1b2c", None),
        ("", None),
        ("pid:x:1", None),
        ("pid:42", None),
    ],
)
def test_tags_name_a_process_only_when_they_say_so(tag, process):
    assert tagged_process(tag) == process


def test_a_request_from_no_unix_socket_comes_from_nobody_we_see():
    with socket.socket(socket.AF_INET) as inet:
        assert caller_of(inet) == UNSEEN
    assert caller_of(None).tag is None
