"""Two QEMU Docker hosts with kernel NFS clients, running nfsvol against real ganesha.

Booting costs about 30 s a host, so the hosts are shared by the whole
session; a test that powers a host off boots it again before it ends.
"""

import time
import uuid

import pytest

from testbed import IMAGE_TAG, prepare
from testbed.cluster import Cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    started = time.monotonic()
    bed = Cluster(tmp_path_factory.mktemp("hosts"), prepare())
    try:
        boots = bed.start()
        print(f"\nhost tier: bed up in {time.monotonic() - started:.1f}s, boots {boots}")
        yield bed
    finally:
        for name in bed.hosts:
            if bed.hosts[name].running():
                (bed.workdir / f"nfsvol-{name}.log").write_text(bed.plugin_log(name))
        bed.close()
        print(f"\nhost tier: {time.monotonic() - started:.1f}s with the bed up")


def unique(prefix: str) -> str:
    """A volume or container name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run(host, *args: str, check: bool = True):
    """`docker run --rm --network none` of the bed's image on `host`."""
    *opts, cmd = args
    return host.docker(
        "run", "--rm", "--network", "none", *opts, IMAGE_TAG, "sh", "-c", cmd, check=check
    )
