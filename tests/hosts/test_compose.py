"""Issue 23, item 3: one compose file brought up on host a, then on host b.

As a user does it: `up` on a (the service writes), `down` on a, the same
file `up` on b (the service reads a's data and writes more), `down -v` on b.
No warm-up on b: its dockerd first hears of the volume when Compose asks.
Compose runs on this machine against each guest's dockerd (DOCKER_HOST).

dockerd keeps a volume's driver_opts and labels only in the database of
the host that created it: b's dockerd reports none. Compose v2 warns and
goes on; Compose v1 (1.29, Debian 12) compares driver_opts and refuses,
unless the other hosts declare the volume `external: true`.
"""

from pathlib import Path

import pytest

from testbed._proc import wait_for
from testbed.engines import COMPOSE_V1
from tests.hosts.conftest import unique

pytestmark = pytest.mark.hosts

FILE = str(Path(__file__).with_name("compose.yml"))
EXTERNAL = str(Path(__file__).with_name("compose-external.yml"))  # v1's recipe for other hosts


def test_the_same_compose_file_on_a_then_on_b_with_compose_v2(cluster):
    """Compose v2: b's `up` of a's file finds a's data and adds to it; `down -v` on b
    removes the volume from both hosts and from the server's disk."""
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    if a.artifacts.engine.version != "26.1":
        pytest.skip("Compose v2 comes with Engine 26.1; this bed runs 20.10 and Compose v1")
    project = unique("shop")
    volume, disk = f"{project}_data", cluster.export_dir("main") / f"{project}_data"
    try:
        _up(a, project)
        a.compose("-p", project, "-f", FILE, "down")
        assert (disk / "log").read_text() == "written on a\n"
        second = _up(b, project)
        _show("Compose v2, up on b", second)
        assert "written on a" in second.stdout  # what b's service printed
        assert (disk / "log").read_text() == "written on a\nwritten on b\n"
        b.compose("-p", project, "-f", FILE, "down", "-v")
        assert not disk.exists()
        assert volume not in _volumes(b)
        wait_for(lambda: volume not in _volumes(a), 30, f"{volume} gone from a's volume ls")
    finally:
        for host in (a, b):
            host.compose("-p", project, "-f", FILE, "down", check=False)


def test_compose_v1_needs_the_volume_external_on_the_other_hosts(cluster):
    """Compose v1 refuses a's file on b (b's dockerd reports no driver_opts to compare);
    the file that declares the volume `external: true` runs on a's data."""
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    project = unique("shopv1")
    volume, disk = f"{project}_data", cluster.export_dir("main") / f"{project}_data"
    try:
        _up(a, project, COMPOSE_V1)
        a.compose("-p", project, "-f", FILE, "down", command=COMPOSE_V1)
        same = _up(b, project, COMPOSE_V1, check=False)
        _show("Compose v1, up on b, the same file", same)
        assert same.returncode != 0 and '"share" driver_opt' in same.stderr
        external = _up(b, project, COMPOSE_V1, file=EXTERNAL, VOLUME=volume)
        _show("Compose v1, up on b, external", external)
        assert "written on a" in external.stdout
        assert (disk / "log").read_text() == "written on a\nwritten on b\n"
        b.compose("-p", project, "-f", EXTERNAL, "down", command=COMPOSE_V1, env={"VOLUME": volume})
        a.compose("-p", project, "-f", FILE, "down", "-v", command=COMPOSE_V1)
        assert not disk.exists()
    finally:
        for host in (a, b):
            host.compose("-p", project, "-f", FILE, "down", command=COMPOSE_V1, check=False)


def _up(host, project: str, command=None, file: str = FILE, check: bool = True, **env: str):
    """`up` of the file's run-to-completion service, with WRITER set to the host's name."""
    args = ("-p", project, "-f", file, "up", "--exit-code-from", "app")
    env = {"WRITER": host.name, **env}
    return host.compose(*args, command=command, env=env, check=check)


def _volumes(host) -> list[str]:
    return host.docker("volume", "ls", "-q").stdout.split()


def _show(what: str, proc) -> None:
    print(f"\n--- {what}: exit {proc.returncode}\n[stdout]\n{proc.stdout}[stderr]\n{proc.stderr}")
