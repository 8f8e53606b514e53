"""Fifty containers on one volume of an NFS share, stopped in random order."""

import random

import pytest

from tests.docker.conftest import DRIVER, unique, wait_for

pytestmark = pytest.mark.docker


def test_the_mount_stays_until_the_last_of_fifty_containers_stops(bed):
    """Each stop releases one holder; the share is let go only after the last."""
    name = unique("crowd")
    bed.docker("volume", "create", "-d", DRIVER, "-o", "share=nfs", name)
    ctrs = [unique("crowd") for _ in range(50)]
    try:
        for ctr in ctrs:
            bed.docker("run", "-d", "--name", ctr, "--network", "none", "-v", f"{name}:/data",
                       bed.image, "sleep", "600")  # fmt: skip
        bed.docker("exec", ctrs[0], "sh", "-c", "echo shared > /data/f")
        order = random.sample(ctrs, len(ctrs))
        for left, ctr in enumerate(order[:-1], start=1):
            bed.docker("rm", "-f", ctr)
            assert bed.share_mounted(), f"unmounted with {len(ctrs) - left} containers running"
            survivor = order[-1]
            assert bed.docker("exec", survivor, "cat", "/data/f").stdout == "shared\n"
        users = bed.client.ok("Get", Name=name)["Volume"]["Status"]["users"]
        assert len(users) == 1
        bed.docker("rm", "-f", order[-1])
        assert bed.client.ok("Get", Name=name)["Volume"]["Status"]["users"] == []
        wait_for(lambda: not bed.share_mounted(), 30, "the idle share released")
    finally:
        bed.docker("rm", "-f", *ctrs, check=False)
    bed.docker("volume", "rm", name)
