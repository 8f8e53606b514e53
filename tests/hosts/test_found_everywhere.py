"""Issue 22: a volume made on host a is found at once on host b, as users ask for it.

No `docker volume ls` on b first: dockerd, given a name it does not know
and no driver, asks nfsvol's Get; had nfsvol said no, b would have made an
empty local volume of that name and kept it. Nine rounds (times
--drill-rounds, to hunt a rare race), each with b's share in one of three
states when b asks: released (nothing mounted, as on an idle host), parked (unmounted by b's last container a moment ago,
kept for idle_unmount) or held (mounted for a container of another
volume); and b asking three ways: `docker run -v`, `docker volume inspect`
then `docker run -v`, and `docker run --mount`.
"""

import pytest

from testbed import IMAGE_TAG
from tests.hosts.conftest import run, unique, wait_released

pytestmark = pytest.mark.hosts

HOW = ("-v", "inspect", "--mount")  # round i asks HOW[i % 3]
B_SHARE = ("released", "parked", "held")  # in blocks of three rounds: every pairing
ROUNDS = len(HOW) * len(B_SHARE)  # every pairing once; `a` alternates how it creates


def test_a_volume_made_on_a_is_found_at_once_on_b(cluster, drill_round):
    """Each round: a creates and writes; at once b reads a's data through nfsvol."""
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    other, holder = unique("other"), unique("bhold")
    b.docker("volume", "create", "-d", "nfsvol", other)
    made = []
    try:
        for i in range(ROUNDS):
            how, b_share = HOW[i % 3], B_SHARE[(i // 3) % 3]
            if b_share == "held" and i % 3 == 0:
                b.docker("run", "-d", "--name", holder, "--network", "none",
                         "-v", f"{other}:/data", IMAGE_TAG, "sleep", "600")  # fmt: skip
            if b_share == "released":
                b.docker("rm", "-f", holder, check=False)
                wait_released(cluster, "b", "main")
            name = unique(f"found{i}")
            made.append(name)
            _make_and_write_on_a(a, name, explicit=i % 2 == 0)
            if b_share == "parked":
                run(b, "-v", f"{other}:/data", "true")  # its Unmount parks b's share
            assert _read_on_b(b, name, how) == f"from-a {name}\n", (i, how, b_share)
        local = b.docker("volume", "ls", "-q", "--filter", "driver=local").stdout.split()
        assert not set(made) & set(local)
    finally:
        b.docker("rm", "-f", holder, check=False)
        b.docker("volume", "rm", other)
        if made:
            a.docker("volume", "rm", *made)


def _make_and_write_on_a(a, name: str, explicit: bool) -> None:
    """`docker volume create` then a write, or one `docker run` that creates it on the way."""
    write = f"echo from-a {name} > /data/f"
    if explicit:
        a.docker("volume", "create", "-d", "nfsvol", name)
        run(a, "-v", f"{name}:/data", write)
    else:
        run(a, "--volume-driver", "nfsvol", "-v", f"{name}:/data", write)


def _read_on_b(b, name: str, how: str) -> str:
    """What b's container reads of the volume, asked for with no driver."""
    if how == "inspect":
        assert b.docker("volume", "inspect", "-f", "{{.Driver}}", name).stdout.strip() == "nfsvol"
    mount = ["--mount", f"src={name},dst=/data"] if how == "--mount" else ["-v", f"{name}:/data"]
    return run(b, *mount, "cat /data/f").stdout
