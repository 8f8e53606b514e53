"""`nfsvol doctor` asking a real dockerd which counts still belong to a container."""

import json

import pytest

from tests.fakes.servers import mounted_below
from tests.support.dockerd import Dockerd, import_busybox

pytestmark = pytest.mark.docker


@pytest.fixture
def daemon(tmp_path):
    dockerd = Dockerd(tmp_path / "dockerd")
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
    assert "live" not in found.stdout
    fixed = host.nfsvol("doctor", "--fix", "--docker-host", docker_host)
    assert "fixed: forgot the holders of volume gone (main)" in fixed.stdout
    assert fixed.returncode == 0, fixed.stdout
    users = host.state_dir / "users" / "main"
    assert sorted(p.name for p in users.glob("*.json")) == ["live.json"]
    assert json.loads((users / "live.json").read_text())["ids"] == {"id-live": 1}
    # The forgotten volume's pin goes with its count; the live one's stays.
    kept = [host.state_dir / "mnt" / "main", host.state_dir / "vol" / "main" / "live"]
    assert mounted_below(host.state_dir) == [str(p) for p in kept]
