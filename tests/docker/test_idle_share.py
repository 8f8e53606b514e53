"""The share stays mounted a while after its last container: the next run mounts nothing."""

import pytest

from tests.docker.conftest import DRIVER, IDLE_UNMOUNT, unique, wait_for

pytestmark = pytest.mark.docker


def test_back_to_back_runs_share_one_mount_released_when_idle(bed):
    """dockerd Mounts twice per `docker run` (copy-up, start): one mount.nfs serves
    three runs in a row, and the share goes idle_unmount seconds after the last."""
    name = unique("idle")
    bed.docker("volume", "create", "-d", DRIVER, "-o", "share=nfs", name)
    wait_for(lambda: not bed.share_mounted(), 30, "the share parked by Create released")
    before = len(bed.servers.calls())
    for i in range(3):
        bed.run("-v", f"{name}:/data", f"echo {i} >> /data/runs")
    assert len(bed.servers.calls()) == before + 1
    assert bed.share_mounted()  # parked: nobody uses it
    assert bed.client.ok("Get", Name=name)["Volume"]["Status"]["users"] == []
    # idle_unmount, then up to one janitor tick (idle_unmount / 2), plus slack.
    wait_for(lambda: not bed.share_mounted(), 2 * IDLE_UNMOUNT + 10, "the idle share released")
    assert bed.run("-v", f"{name}:/data", "cat /data/runs").stdout == "0\n1\n2\n"
    bed.docker("volume", "rm", name)
