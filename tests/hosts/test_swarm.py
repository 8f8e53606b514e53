"""Swarm services on nfsvol volumes: tasks move between hosts and find their data.

Three nodes: a manager (host m, booted for this module, drained so it runs
no tasks) and the bed's hosts a and b as workers. Every check of the data
is made by the tasks themselves or on the NFS server's own disk.
"""

import time
from pathlib import Path

import pytest

from testbed._proc import wait_for
from tests.hosts.conftest import SEE_EACH_OTHER, read_when, run, swarm_of, unique

pytestmark = pytest.mark.hosts

BLOBS = 12
# First task: write fsync'd blobs and their manifest (renamed into place last).
# Any later task: verify the manifest into verified-on-NODE (renamed into place
# once complete). Then every task keeps writing, so a node dies mid-write.
WRITER = (
    "cd /data; if [ -e manifest ]; then "
    "  sha256sum -c manifest > .verify-$NODE 2>&1; echo status $? >> .verify-$NODE; "
    "  mv .verify-$NODE verified-on-$NODE; "
    f"else for i in $(seq 1 {BLOBS}); do "
    "  dd if=/dev/urandom of=blob$i bs=64k count=4 conv=fsync 2>/dev/null; done; "
    "  sha256sum blob* > .manifest; sync; mv .manifest manifest; sync; fi; "
    "while :; do dd if=/dev/urandom of=scratch-$NODE bs=64k count=4 conv=fsync 2>/dev/null; done"
)


@pytest.fixture(scope="module")
def swarm(cluster):
    with swarm_of(cluster) as bed:
        yield bed


def service(swarm, volume: str, cmd: str, *opts: str, volume_opts=(), named_only=False):
    return swarm.deployed(
        unique("svc"), volume, cmd, *opts, volume_opts=volume_opts, named_only=named_only
    )


def test_replicas_on_both_workers_see_each_others_writes(cluster, swarm):
    """Two replicas, one per worker, on one volume: each reads what the other wrote."""
    volume = unique("shared")
    with service(
        swarm, volume, SEE_EACH_OTHER, "--replicas", "2", "--replicas-max-per-node", "1"
    ) as name:
        tasks = swarm.running(name, 2)
        assert sorted(t.node for t in tasks) == ["a", "b"]
        disk = cluster.export_dir("main") / volume
        assert read_when(disk / "seen-by-a") == read_when(disk / "seen-by-b") == "a\nb\n"


def test_a_task_finds_a_volume_its_node_never_listed(cluster, swarm):
    """Made and written on a, then a service naming no driver, its task on b: a's data."""
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    volume = unique("found")
    a.docker("volume", "create", "-d", "nfsvol", volume)
    run(a, "-v", f"{volume}:/data", "echo from-a > /data/f")
    cmd = "cp /data/f /data/.read; mv /data/.read /data/read-on-$NODE; exec sleep 100000"
    with service(swarm, volume, cmd, "--constraint", "node.hostname==b", named_only=True) as name:
        swarm.running(name, 1)
        assert read_when(cluster.export_dir("main") / volume / "read-on-b") == "from-a\n"
    local = b.docker("volume", "ls", "-q", "--filter", "driver=local").stdout.split()
    assert volume not in local
    a.docker("volume", "rm", volume)


def test_a_templated_volume_gives_each_task_its_own(cluster, swarm):
    """source=NAME-{{.Task.Slot}}: one volume per task slot, each with only its task's data."""
    base = unique("slot")
    # The listing is renamed into place: the test reads it from the server's disk, where a
    # file a shell redirect has only created is still empty.
    cmd = (
        'echo "$SLOT" > /data/owner; ls /data > /data/.ls; mv /data/.ls /data/listing; '
        "exec sleep 100000"
    )
    with service(
        swarm, f"{base}-{{{{.Task.Slot}}}}", cmd, "--replicas", "2", "--env", "SLOT={{.Task.Slot}}"
    ) as name:
        swarm.running(name, 2)
        for slot in ("1", "2"):
            disk = cluster.export_dir("main") / f"{base}-{slot}"
            assert read_when(disk / "listing") == "owner\n"
            assert (disk / "owner").read_text() == f"{slot}\n"
        listed = cluster.hosts["a"].docker("volume", "ls", "-q").stdout.split()
        assert {f"{base}-1", f"{base}-2"} <= set(listed)


def test_a_rolling_update_keeps_the_data(cluster, swarm):
    """`docker service update`: the new task finds what the old one wrote."""
    volume = unique("rolling")
    # A task of version 2 refuses to start unless version 1's line is there.
    cmd = (
        '[ "$VERSION" = 1 ] || grep -qx 1 /data/history || exit 3; '
        'echo "$VERSION" >> /data/history; exec sleep 100000'
    )
    with service(swarm, volume, cmd, "--env", "VERSION=1") as name:
        swarm.running(name, 1)
        history = cluster.export_dir("main") / volume / "history"
        wait_for(lambda: history.exists() and history.read_text() == "1\n", 300, "version 1")
        swarm.service("update", "--detach", "--env-add", "VERSION=2", name)
        wait_for(lambda: history.read_text() == "1\n2\n", 300, "version 2's line")
        assert swarm.running(name, 1)


def verified(disk: Path, node: str) -> list[str]:
    """The lines of the check a task on `node` made of the manifest."""
    return read_when(disk / f"verified-on-{node}").splitlines()


def all_ok(lines: list[str]) -> bool:
    return lines == [*(f"blob{i}: OK" for i in sorted(range(1, BLOBS + 1), key=str)), "status 0"]


def test_draining_a_node_moves_the_task_and_its_data(cluster, swarm):
    """`docker node update --availability drain`: the task moves, the manifest checks out."""
    volume = unique("drain")
    with service(swarm, volume, WRITER) as name:
        first = swarm.running(name, 1)[0].node
        disk = cluster.export_dir("main") / volume
        read_when(disk / "manifest")
        other = "b" if first == "a" else "a"
        started = time.monotonic()
        swarm.set_availability(first, "drain")
        try:
            lines = verified(disk, other)
            moved = time.monotonic() - started
        finally:
            swarm.set_availability(first, "active")
        assert all_ok(lines), lines
        assert swarm.running(name, 1)[0].node == other
        print(f"\n  drained {first}: the task verified its data on {other} {moved:.1f}s later")


def test_a_task_finds_every_byte_after_its_node_dies(cluster, swarm):
    """Power off the node whose task writes: Swarm restarts it on the other worker."""
    volume = unique("failover")
    with service(swarm, volume, WRITER, volume_opts=["access=single-host"]) as name:
        victim = swarm.running(name, 1)[0].node
        disk = cluster.export_dir("main") / volume
        read_when(disk / "manifest")
        survivor = "b" if victim == "a" else "a"
        wait_for(lambda: (disk / f"scratch-{victim}").exists(), 120, "the task writing")
        cluster.power_off(victim)
        started = time.monotonic()
        try:
            lines = verified(disk, survivor)
            failover = time.monotonic() - started
            assert all_ok(lines), lines
            assert swarm.running(name, 1)[0].node == survivor
        finally:
            back = cluster.boot(victim)
            swarm.forget_down_nodes()
            swarm.join(victim)
        print(
            f"\n  power-off of {victim} to the data verified on {survivor}: {failover:.1f}s "
            f"({victim} back in the swarm after {back:.1f}s)"
        )
