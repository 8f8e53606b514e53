"""A dockerd killed outright (SIGKILL) sends no Unmount: its mounts must not leak."""

import pytest

from tests.docker.conftest import DRIVER, unique, wait_for

pytestmark = pytest.mark.docker


def users(bed, name: str) -> list[str]:
    return bed.client.ok("Get", Name=name)["Volume"]["Status"]["users"]


def start(bed, ctr: str, volume: str, *flags: str) -> None:
    bed.docker("run", "-d", "--name", ctr, *flags, "--network", "none", "-v", f"{volume}:/data",
               bed.image, "sh", "-c", "echo $$ >> /data/starts; sleep 600")  # fmt: skip


def test_a_killed_dockerds_mounts_are_reclaimed(bed):
    """Its lost container's count is dropped; a restarted one is counted once."""
    lost, restarted = unique("killed-lost"), unique("killed-restarted")
    for name in (lost, restarted):
        bed.docker("volume", "create", "-d", DRIVER, "-o", "share=nfs", name)
    once, always = unique("once"), unique("always")
    try:
        start(bed, once, lost)
        start(bed, always, restarted, "--restart", "always")
        assert len(users(bed, lost)) == 1 and len(users(bed, restarted)) == 1
        bed.daemon.kill()
        bed.daemon.start()
        wait_for(lambda: users(bed, lost) == [], 60, "the lost container's mount dropped")
        state = bed.docker("inspect", "-f", "{{.State.Running}}", always).stdout.strip()
        assert state == "true"
        assert len(users(bed, restarted)) == 1  # not two: one Unmount will come
        bed.docker("rm", "-f", always)
        assert users(bed, restarted) == []
        wait_for(lambda: not bed.share_mounted(), 30, "the share released")
    finally:
        bed.docker("rm", "-f", once, always, check=False)
    for name in (lost, restarted):
        bed.docker("volume", "rm", name)


def test_a_container_that_outlives_its_killed_dockerd_keeps_its_mount(bed):
    """live-restore: the count stays while the container runs, and goes when it stops."""
    name, ctr = unique("killed-live"), unique("live")
    bed.daemon.flags = ["--live-restore"]
    bed.daemon.restart()
    try:
        bed.docker("volume", "create", "-d", DRIVER, "-o", "share=nfs", name)
        start(bed, ctr, name)
        held = users(bed, name)
        bed.daemon.kill()
        bed.daemon.start()
        # A second container's Mount looks for leaks on the volume, then goes away.
        bed.run("-v", f"{name}:/data", "cat /data/starts")
        assert users(bed, name) == held
        bed.docker("exec", ctr, "sh", "-c", "echo alive >> /data/starts")
        bed.docker("rm", "-f", ctr)
        wait_for(lambda: users(bed, name) == [], 60, "the stopped container's mount dropped")
        wait_for(lambda: not bed.share_mounted(), 30, "the share released")
    finally:
        bed.docker("rm", "-f", ctr, check=False)
        bed.daemon.flags = []
        bed.daemon.restart()
    bed.docker("volume", "rm", name)
