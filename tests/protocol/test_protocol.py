"""Every endpoint and error path, spoken exactly as dockerd speaks it."""

import os
import re
import shutil
import signal
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fakes.servers import mounted_below, unmount_below

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def test_activate_with_empty_body(served):
    """Activate carries no body and no Content-Type."""
    assert served.client.raw("/Plugin.Activate", None) == (200, {"Implements": ["VolumeDriver"]})


def test_capabilities_scope_is_global(served):
    """Scope global lets every host (and Swarm) share the volumes."""
    assert served.client.ok("Capabilities") == {"Capabilities": {"Scope": "global"}}


@pytest.mark.parametrize(
    "body", [b'{"Name": "vol"}', b'{"Name": "vol", "Opts": null}', b'{"Name": "vol", "Opts": {}}']
)
def test_create_accepts_missing_or_null_opts(served, body):
    """Opts may be missing, null or empty."""
    assert served.client.raw("/VolumeDriver.Create", body) == (200, {})
    assert (served.export / "vol").is_dir()


def test_full_lifecycle(served):
    """Create, Get, List, Mount, Path, Unmount, Remove, as one container run."""
    c = served.client
    c.ok("Create", Name="web", Opts={"uid": "33", "mode": "0750"})
    volume = c.ok("Get", Name="web")["Volume"]
    assert volume["Name"] == "web" and volume["Mountpoint"] == ""
    assert RFC3339.fullmatch(volume["CreatedAt"])
    assert volume["Status"]["share"] == "main" and volume["Status"]["mounted"] is False
    assert c.ok("List") == {"Volumes": [{"Name": "web", "Mountpoint": ""}]}
    mountpoint = c.ok("Mount", Name="web", ID="ctr1")["Mountpoint"]
    assert mountpoint == str(served.state_dir / "vol" / "main" / "web")
    assert os.stat(mountpoint).st_uid == 33
    assert c.ok("Path", Name="web") == {"Mountpoint": mountpoint}
    status = c.ok("Get", Name="web")["Volume"]["Status"]
    assert (status["mounted"], status["users"], status["server"]) == (True, ["ctr1"], "nfs1")
    assert c.ok("Unmount", Name="web", ID="ctr1") == {}
    assert served.wait_unmounted() == []  # after idle_unmount
    assert c.ok("Remove", Name="web") == {}
    assert c.ok("List") == {"Volumes": []}


@pytest.mark.parametrize(
    ("endpoint", "fields", "fragment"),
    [
        ("Create", {"Name": "../x"}, "volume name '../x' is not allowed"),
        ("Create", {"Name": "v"}, "volume name 'v' is one character"),
        (
            "Create",
            {"Name": "vol", "Opts": {"server": "evil"}},
            "allowed options are: share, uid, gid, mode",
        ),
        ("Create", {"Name": "vol", "Opts": {"share": "nope"}}, "choose one of: main, scratch"),
        ("Create", {"Name": "vol", "Opts": ["x"]}, "Opts must be a JSON object"),
        ("Create", {}, "request needs a volume Name"),
        ("Create", {"Name": 7}, "request needs a volume Name, got 7"),
        ("Get", {"Name": "ghost"}, "docker volume create -d nfsvol ghost"),
        ("Path", {"Name": "ghost"}, "'ghost' does not exist"),
        ("Mount", {"Name": "ghost", "ID": "c"}, "'ghost' does not exist"),
        ("Mount", {"Name": "ghost", "ID": 5}, "mount ID must be a string, got 5"),
        ("Get", {"Name": ""}, "request needs a volume Name"),
    ],
)
def test_errors_name_the_value_and_the_fix(served, endpoint, fields, fragment):
    """Every failure is a non-empty Err that says what was wrong."""
    assert fragment in served.client.err(endpoint, **fields)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"Name"'])
def test_malformed_bodies_are_refused(served, body):
    """A body that is not a JSON object is an error, not a crash."""
    status, reply = served.client.raw("/VolumeDriver.Create", body)
    assert status == 500 and "request body" in reply["Err"]


def test_unknown_endpoint_is_an_error(served):
    """Endpoints outside the protocol answer with Err, not HTML."""
    status, reply = served.client.raw("/VolumeDriver.Explode", b"{}")
    assert status == 404 and "/VolumeDriver.Explode" in reply["Err"]


def test_mount_without_id_is_counted(served):
    """Old engines send no ID; such Mounts are still counted."""
    c = served.client
    c.ok("Create", Name="vol")
    c.ok("Mount", Name="vol")
    assert c.ok("Get", Name="vol")["Volume"]["Status"]["users"] == ["-"]
    c.ok("Unmount", Name="vol")
    assert c.ok("Get", Name="vol")["Volume"]["Status"]["users"] == []


def test_remove_in_use_is_refused(served):
    """Remove names the holder while a container has it."""
    c = served.client
    c.ok("Create", Name="busy")
    c.ok("Mount", Name="busy", ID="ctr")
    assert "in use on this host by 1 mount(s) (ctr)" in c.err("Remove", Name="busy")
    assert (served.export / "busy").is_dir()


def test_conflicting_create_changes_nothing(served):
    """Creating an existing name with other options is refused."""
    c = served.client
    c.ok("Create", Name="vol", Opts={"mode": "0700"})
    assert "already exists with options" in c.err("Create", Name="vol", Opts={"mode": "0777"})
    assert stat.S_IMODE(os.stat(served.export / "vol").st_mode) == 0o700


def test_dead_servers_fail_mount_within_budget(served):
    """With every server hung, Mount fails after the timeouts, naming both servers."""
    c = served.client
    c.ok("Create", Name="vol")
    assert served.wait_unmounted() == []
    served.servers.hang("nfs1")
    served.servers.hang("nfs2")
    err = c.err("Mount", Name="vol", ID="c")
    assert "nfs1: " in err and "nfs2: " in err and "within 4s and was killed" in err
    assert c.ok("Get", Name="vol")["Volume"]["Status"]["users"] == []


def test_socket_is_not_world_writable(served):
    """Only root may talk to the plugin."""
    mode = stat.S_IMODE(os.stat(served.process.socket_path).st_mode)
    assert mode & 0o022 == 0, oct(mode)


def test_kill_9_with_mounts_held_keeps_counts(served):
    """After kill -9 and restart, holders and the share mount are adopted."""
    c = served.client
    c.ok("Create", Name="va")
    c.ok("Create", Name="vb")
    mp = c.ok("Mount", Name="va", ID="c1")["Mountpoint"]
    c.ok("Mount", Name="vb", ID="c2")
    served.process.kill(signal.SIGKILL)
    served.restart()
    c = served.client
    assert c.ok("Get", Name="va")["Volume"]["Status"]["users"] == ["c1"]
    assert c.ok("Path", Name="va") == {"Mountpoint": mp}
    pins = [str(served.state_dir / "vol" / "main" / n) for n in ("va", "vb")]
    assert mounted_below(served.state_dir) == [str(served.state_dir / "mnt" / "main"), *pins]
    c.ok("Unmount", Name="va", ID="c1")
    assert mounted_below(served.state_dir) != []
    c.ok("Unmount", Name="vb", ID="c2")
    assert served.wait_unmounted() == []  # after idle_unmount
    c.ok("Remove", Name="va")


def test_restart_drops_a_mount_that_nobody_holds(served):
    """A kill while a share is mounted for nobody leaves a mount start-up removes."""
    served.client.ok("Create", Name="vol")
    served.process.kill(signal.SIGKILL)
    target = served.state_dir / "mnt" / "main"
    assert mounted_below(served.state_dir) == [str(target)]
    served.restart()
    assert mounted_below(served.state_dir) == []


def test_a_fresh_host_knows_every_volume_before_its_first_answer(served):
    """Reinstalled (empty state) with a slow server: the first List still has the volume."""
    served.client.ok("Create", Name="early")
    served.process.stop()
    unmount_below(served.state_dir)
    shutil.rmtree(served.state_dir)
    # Slower than a request's sync_wait (1.5 s), within mount_timeout (4 s).
    served.servers.slow("nfs1", 3)
    served.servers.slow("nfs2", 3)
    served.restart()
    assert [v["Name"] for v in served.client.ok("List")["Volumes"]] == ["early"]


def test_fifty_concurrent_creates(served):
    """Creates racing across workers and threads all land, once each."""
    names = [f"vol{i:02d}" for i in range(60)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda n: served.client.call("Create", Name=n), names))
    assert all(r == (200, {}) for r in results), results
    listed = [v["Name"] for v in served.client.ok("List")["Volumes"]]
    assert sorted(listed) == names
    assert sorted(os.listdir(served.export / ".nfsvol" / "volumes")) == [f"{n}.json" for n in names]
    assert served.wait_unmounted() == []


def test_twenty_concurrent_mounts_of_one_volume(served):
    """Concurrent Mounts make one share mount and count every ID; Unmounts release it."""
    c = served.client
    c.ok("Create", Name="hot")
    ids = [f"ctr{i}" for i in range(24)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        points = list(pool.map(lambda i: c.ok("Mount", Name="hot", ID=i)["Mountpoint"], ids))
    assert len(set(points)) == 1
    assert mounted_below(served.state_dir) == [str(served.state_dir / "mnt" / "main"), points[0]]
    assert c.ok("Get", Name="hot")["Volume"]["Status"]["users"] == sorted(ids)
    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(lambda i: c.ok("Unmount", Name="hot", ID=i), ids))
    assert c.ok("Get", Name="hot")["Volume"]["Status"]["users"] == []
    assert served.wait_unmounted() == []  # after idle_unmount


def test_path_share_volumes_are_pinned_while_mounted(served):
    """A path share needs no mount; its volumes are bound for dockerd like any other."""
    c = served.client
    c.ok("Create", Name="local", Opts={"share": "scratch"})
    assert c.ok("Path", Name="local") == {"Mountpoint": ""}
    pin = c.ok("Mount", Name="local", ID="c1")["Mountpoint"]
    assert pin == str(served.state_dir / "vol" / "scratch" / "local")
    Path(pin, "f").write_text("x")
    assert (served.scratch / "local" / "f").read_text() == "x"
    c.ok("Unmount", Name="local", ID="c1")
    assert not os.path.exists(pin)
    c.ok("Remove", Name="local")
    assert (served.scratch / "local").is_dir()  # on_remove: retain
