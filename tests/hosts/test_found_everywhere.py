"""Issue 22: a volume made on host a is found at once on host b, as users ask for it.

No `docker volume ls` on b first: dockerd, given a name it does not know
and no driver, asks nfsvol's Get; had nfsvol said no, b would have made an
empty local volume of that name and kept it. Each case starts with b's
share in a different state: released (nothing mounted, as on an idle host)
or held by a container of another volume (mounted).
"""

import pytest

from testbed import IMAGE_TAG
from tests.hosts.conftest import run, unique, wait_released

pytestmark = pytest.mark.hosts


@pytest.mark.parametrize(
    ("b_share", "how"), [("released", "-v"), ("held", "inspect"), ("released", "--mount")]
)
def test_a_volume_made_on_a_is_found_at_once_on_b(cluster, b_share, how):
    """a creates and writes; at once b reads a's data through nfsvol, no local volume made."""
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    name, holder, other = unique("found"), unique("bhold"), unique("other")
    if b_share == "held":
        b.docker("run", "-d", "--name", holder, "--network", "none", "--volume-driver",
                 "nfsvol", "-v", f"{other}:/data", IMAGE_TAG, "sleep", "600")  # fmt: skip
    else:
        wait_released(cluster, "b", "main")
    try:
        a.docker("volume", "create", "-d", "nfsvol", name)
        run(a, "-v", f"{name}:/data", "echo from-a > /data/f")
        if how == "inspect":
            driver = b.docker("volume", "inspect", "-f", "{{.Driver}}", name).stdout.strip()
            assert driver == "nfsvol"
        mount = (
            ["-v", f"{name}:/data"] if how != "--mount" else ["--mount", f"src={name},dst=/data"]
        )
        assert run(b, *mount, "cat /data/f").stdout == "from-a\n"
        local = b.docker("volume", "ls", "-q", "--filter", "driver=local").stdout.split()
        assert name not in local
    finally:
        if b_share == "held":
            b.docker("rm", "-f", holder)
            b.docker("volume", "rm", other)
    a.docker("volume", "rm", name)
