"""`nfsvol doctor` asking a real dockerd about containers and its local volumes."""

import json
import uuid
from pathlib import Path

import pytest

from tests.fakes.servers import mounted_below
from tests.support.dockerd import ENGINES, Dockerd, engine_named, import_busybox

pytestmark = pytest.mark.docker


@pytest.fixture(params=ENGINES)
def daemon(request, tmp_path):
    """A dockerd of each engine in turn: doctor speaks to both APIs."""
    dockerd = Dockerd(tmp_path / "dockerd", engine_named(request.param))
    dockerd.root.mkdir()
    dockerd.start()
    yield dockerd
    ids = dockerd.docker("ps", "-aq", check=False).stdout.split()
    if ids:
        dockerd.docker("rm", "-f", *ids, check=False)
    dockerd.stop()
    dockerd.cleanup()


def test_fix_forgets_only_counts_no_running_container_explains(host, daemon):
    """A count whose volume no container uses is dropped; a live container's is kept."""
    client = host.start_plugin()
    for name in ("gone", "live"):
        client.ok("Create", Name=name)
        client.ok("Mount", Name=name, ID=f"id-{name}")
    host.plugin.kill()
    image = import_busybox(daemon, host.tmp)
    # dockerd only has to name a running container that uses a volume called "live".
    daemon.docker("run", "-d", "--network", "none", "-v", "live:/data", image, "sleep", "600")
    docker_host = f"unix://{daemon.socket}"
    found = host.nfsvol("doctor", "--docker-host", docker_host)
    assert "FIX  vanished-holder      main: gone: held by id-gone" in found.stdout
    assert "main: live: held by" not in found.stdout
    # `docker run -v live:/data` with no driver made a local "live": a real shadow, in use.
    assert "WARN shadowed-by-local    main: live: " in found.stdout
    fixed = host.nfsvol("doctor", "--fix", "--docker-host", docker_host)
    assert "fixed: forgot the holders of volume gone (main)" in fixed.stdout
    after = fixed.stdout.split("after repair:", 1)[1].splitlines()
    left = [line.split()[1] for line in after if line.startswith("  ")]
    assert "vanished-holder" not in left and "shadowed-by-local" in left, fixed.stdout
    assert fixed.returncode == 1, fixed.stdout  # the shadow needs a human: it is in use
    users = host.state_dir / "users" / "main"
    assert sorted(p.name for p in users.glob("*.json")) == ["live.json"]
    assert json.loads((users / "live.json").read_text())["ids"] == {"id-live": 1}
    # The forgotten volume's pin goes with its count; the live one's stays.
    kept = [host.state_dir / "mnt" / "main", host.state_dir / "vol" / "main" / "live"]
    assert mounted_below(host.state_dir) == [str(p) for p in kept]


SPEC_DIR = Path("/etc/docker/plugins")  # where dockerd looks for a plugin by spec file


@pytest.fixture
def plugged(host):
    """The host's plugin, known to dockerd under a driver name of this test's own.

    Its own name: a concurrent docker tier's `nfsvol.spec` is neither used nor removed.
    """
    driver = f"nfsvol-doctor-{uuid.uuid4().hex[:8]}"
    SPEC_DIR.mkdir(parents=True, exist_ok=True)
    spec = SPEC_DIR / f"{driver}.spec"
    spec.write_text(f"unix://{host.plugin.socket_path}\n")
    yield driver
    spec.unlink(missing_ok=True)


def row(mark, name, detail):
    """One shadowed-by-local line as doctor prints it."""
    hides = f"a local volume named {name} hides nfsvol's {name} on this host; "
    return f"  {mark:<4} shadowed-by-local    main: {name}: {hides}{detail}"


def local_volumes(daemon):
    return sorted(daemon.docker("volume", "ls", "-q", "--filter", "driver=local").stdout.split())


def test_an_empty_unused_shadow_is_removed_and_dockerd_finds_nfsvol(host, daemon, plugged):
    """The local volume dockerd made for a name it did not find is named; --fix removes it."""
    client = host.start_plugin()
    client.ok("Create", Name="data")
    # What dockerd does itself for `docker run -v data:/d` when nfsvol answered "no".
    daemon.docker("volume", "create", "data")
    daemon.docker("volume", "create", "stray")  # no nfsvol volume has this name
    docker_host = f"unix://{daemon.socket}"
    found = host.nfsvol("doctor", "--docker-host", docker_host)
    empty = "it is empty; no container uses it: `nfsvol doctor --fix` removes it"
    assert row("FIX", "data", empty) in found.stdout.splitlines(), found.stdout
    assert ": stray:" not in found.stdout
    assert found.returncode == 1
    host.plugin.kill()  # doctor is for bad days: dockerd must not need the plugin to list these
    down = host.nfsvol("doctor", "--docker-host", docker_host)
    assert row("FIX", "data", empty) in down.stdout.splitlines(), down.stdout
    host.start_plugin()
    fixed = host.nfsvol("doctor", "--fix", "--docker-host", docker_host)
    done = "fixed: removed the empty, unused local volume data; dockerd now asks nfsvol for it"
    assert done in fixed.stdout.splitlines(), fixed.stdout
    assert "shadowed-by-local" not in fixed.stdout.split("after repair:", 1)[1]
    assert local_volumes(daemon) == ["stray"]
    (seen,) = json.loads(daemon.docker("volume", "inspect", "data").stdout)
    assert seen["Driver"] == plugged
    assert (host.export / "data").is_dir()


def test_a_shadow_holding_data_or_used_by_a_container_is_kept(host, daemon):
    """A local volume with a file, or one a stopped container uses, is explained, not removed."""
    client = host.start_plugin()
    for name in ("full", "used"):
        client.ok("Create", Name=name)
    host.plugin.kill()
    for name in ("full", "used", "other"):
        daemon.docker("volume", "create", name)
    (full,) = json.loads(daemon.docker("volume", "inspect", "full").stdout)
    (Path(full["Mountpoint"]) / "notes.txt").write_text("written before anyone noticed")
    image = import_busybox(daemon, host.tmp)
    args = ("--name", "keeper", "--network", "none", "-v", "used:/d", image, "true")
    daemon.docker("run", *args)  # exits at once: a stopped container still uses it
    docker_host = f"unix://{daemon.socket}"
    result = host.nfsvol("doctor", "--fix", "--docker-host", docker_host)
    lines = result.stdout.splitlines()
    move = "move its data into the nfsvol volume, then `docker volume rm full`"
    assert row("WARN", "full", f"it holds 1 entry; no container uses it: {move}") in lines
    users = "used by container(s) keeper: remove those containers first"
    assert row("WARN", "used", f"it is empty; {users}, then `docker volume rm used`") in lines
    assert not [line for line in lines if ": other:" in line], result.stdout
    assert not [line for line in lines if line.startswith("fixed: removed")], result.stdout
    assert local_volumes(daemon) == ["full", "other", "used"]
    assert (Path(full["Mountpoint"]) / "notes.txt").read_text() == "written before anyone noticed"
