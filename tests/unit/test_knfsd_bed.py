"""The knfsd bed's pieces that need no guest: its disk, its exports and the hosts' config."""

import subprocess
from pathlib import Path

import pytest

from testbed.artifacts import Artifacts
from testbed.cluster import KNFSD_IP, Cluster, plugin_config
from testbed.engines import Engine
from testbed.knfsd import EXPORTS, SHARE_DIRS, _make_disk


def _debugfs(image: Path, request: str) -> str:
    return subprocess.run(
        ["debugfs", "-R", request, str(image)], capture_output=True, text=True, check=True
    ).stdout


def test_the_disk_holds_every_share_and_the_servers_state(tmp_path):
    image = tmp_path / "disk.img"
    _make_disk(image)
    top = _debugfs(image, "ls -p /")
    for name in ("export", "squashed", "state"):
        assert f"/{name}/" in top, top
    for folder in SHARE_DIRS.values():
        assert "Type: directory" in _debugfs(image, f"stat /{folder}"), folder
    # A squashed root writes as nobody: that folder must be open to all.
    assert "Mode:  0777" in _debugfs(image, f"stat /{SHARE_DIRS['squashed']}")


def test_every_share_of_the_hosts_config_is_a_folder_under_an_export():
    exported = {line.split()[0] for line in EXPORTS.splitlines()}
    shares = plugin_config("knfsd")["shares"]
    assert set(shares) == set(SHARE_DIRS)
    for name, share in shares.items():
        assert share["export"] == f"/{SHARE_DIRS[name]}"  # paths are relative to the rootdir
        assert any(share["export"].startswith(f"{path}/") or share["export"] == path
                   for path in exported), (name, exported)  # fmt: skip
        assert KNFSD_IP in share["servers"]


def test_an_unknown_server_kind_is_refused_naming_the_value_and_the_choices(tmp_path):
    artifacts = Artifacts(Path("k"), Path("i"), Path("b"), "6.1", Engine("20.10", None))
    with pytest.raises(ValueError, match=r"server 'nfs-ganesha': choose one of ganesha, knfsd"):
        Cluster(tmp_path, artifacts, server="nfs-ganesha")
    assert list(tmp_path.iterdir()) == []  # nothing made
