"""Two QEMU Docker hosts with kernel NFS clients, running nfsvol against a real NFS server.

Booting costs about 30 s a host, so the hosts are shared by the whole
session; a test that powers a host off boots it again before it ends.

The server is ganesha unless a test says otherwise with
`@pytest.mark.servers("ganesha", "knfsd")`: it then runs once on each, with
the server's kind in its id (`-k knfsd` picks knfsd's). pytest finishes every
test of one server's bed before it boots the next.
"""

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed import IMAGE_TAG, prepare
from testbed._proc import wait_for
from testbed.cluster import Cluster
from testbed.swarm import Swarm

SWARM_MANAGER, SWARM_WORKERS = "m", ("a", "b")


def pytest_generate_tests(metafunc):
    if "cluster" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("servers")
        kinds = marker.args if marker else ("ganesha",)
        metafunc.parametrize("cluster", kinds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def cluster(request, tmp_path_factory):
    started = time.monotonic()
    kind = request.param
    bed = Cluster(tmp_path_factory.mktemp(f"hosts-{kind}"), prepare(), server=kind)
    try:
        boots = bed.start()
        print(f"\nhost tier: {kind} bed up in {time.monotonic() - started:.1f}s, boots {boots}")
        yield bed
    finally:
        for name in bed.hosts:
            if bed.hosts[name].running():
                (bed.workdir / f"nfsvol-{name}.log").write_text(bed.plugin_log(name))
        bed.close()
        print(f"\nhost tier: {time.monotonic() - started:.1f}s with the {kind} bed up")


def unique(prefix: str) -> str:
    """A volume or container name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run(host, *args: str, check: bool = True):
    """`docker run --rm --network none` of the bed's image on `host`."""
    *opts, cmd = args
    return host.docker(
        "run", "--rm", "--network", "none", *opts, IMAGE_TAG, "sh", "-c", cmd, check=check
    )


@contextlib.contextmanager
def swarm_of(cluster: Cluster, driver: str = "nfsvol") -> Iterator[Swarm]:
    """A manager (host m, booted for it, no nfsvol, drained) and a and b as workers."""
    started = time.monotonic()
    boot = cluster.add_host(SWARM_MANAGER, serve=False)  # it runs no tasks
    bed = Swarm(cluster, SWARM_MANAGER, SWARM_WORKERS, driver)
    try:
        bed.init()
        print(f"\n  swarm of 3 up in {time.monotonic() - started:.1f}s (manager boot {boot:.1f}s)")
        yield bed
    finally:
        bed.leave()
        cluster.drop_host(SWARM_MANAGER)
        print(f"\n  swarm: {time.monotonic() - started:.1f}s in all")


def wait_released(cluster: Cluster, host: str, share: str, timeout: float = 60) -> None:
    """Wait until `host` has `share` unmounted: nfsvol keeps an unused share
    mounted for idle_unmount seconds (IDLE_UNMOUNT in the bed) before letting go."""
    wait_for(lambda: cluster.nfs_mounts(host, share) == [], timeout, f"{share} released", 0.5)


def read_when(path: Path, timeout: float = 300) -> str:
    """path's text on the server's disk, once it exists."""
    wait_for(path.exists, timeout, str(path), 0.5)
    return path.read_text()


# Each replica writes its node's name, waits for the other's, then records what it read.
SEE_EACH_OTHER = (
    'echo "$NODE" > /data/$NODE; '
    "until [ -e /data/a ] && [ -e /data/b ]; do sleep 1; ls /data > /dev/null; done; "
    "cat /data/a /data/b > /data/.seen-$NODE; mv /data/.seen-$NODE /data/seen-by-$NODE; "
    "exec sleep 100000"
)
