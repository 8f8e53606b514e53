"""Issue 22: a name a host has not cached is looked up on the share, never called absent.

dockerd, given a name it does not know and no driver (`docker run -v
data:/d`), asks every driver's Get and takes the first volume; an Err or
"no such volume" both count as "not mine", and it then creates an empty
local volume of that name (moby volume/service/store.go, getVolume). So
host b must find a volume host a created, even while its share is
unmounted and slow to mount.
"""

import time

import pytest

from tests.protocol.conftest import another_host

# Longer than a request's sync_wait (1.5 s), shorter than b's mount_timeout.
SLOW_MOUNT_S = 3
MOUNT_TIMEOUT_S = 8


@pytest.mark.parametrize("endpoint", ["Get", "Path", "Mount", "Remove"])
def test_a_volume_made_on_another_host_is_found_on_a_slow_share(served, endpoint):
    """Host b's first call about a volume host a made finds it, though its share mounts slowly."""
    with another_host(served, mount_timeout=MOUNT_TIMEOUT_S) as b:
        assert b.wait_unmounted() == []  # its start-up sync read the share, then let it go
        served.client.ok("Create", Name="data")
        served.servers.slow("nfs1", SLOW_MOUNT_S)
        served.servers.slow("nfs2", SLOW_MOUNT_S)
        fields = {"ID": "c1"} if endpoint == "Mount" else {}
        reply = b.client.ok(endpoint, Name="data", **fields)  # no List first
        if endpoint == "Get":
            assert reply["Volume"]["Name"] == "data"
            assert reply["Volume"]["Status"]["share"] == "main"
        elif endpoint == "Remove":
            assert not (served.export / "data").exists()
        else:  # Path is empty until the volume is mounted on b
            pin = str(b.state_dir / "vol" / "main" / "data")
            assert reply == {"Mountpoint": pin if endpoint == "Mount" else ""}


def test_a_name_no_share_has_is_absent_after_one_look(served):
    """A new name costs one lookup on the share, and the answer is "does not exist"."""
    with another_host(served, mount_timeout=MOUNT_TIMEOUT_S) as b:
        assert b.wait_unmounted() == []
        started = time.monotonic()
        assert "does not exist" in b.client.err("Get", Name="fresh")
        assert time.monotonic() - started < MOUNT_TIMEOUT_S
        served.client.ok("Create", Name="fresh")  # made elsewhere a moment later
        assert b.client.ok("Get", Name="fresh")["Volume"]["Name"] == "fresh"


@pytest.mark.parametrize("failure", ["down", "hang"])
def test_an_unreachable_share_costs_one_wait_then_none(served, failure):
    """With b's servers down or hung, a miss waits mount_timeout once, says why, then fails fast.

    The second Get may reach either of b's workers: neither asks the share again.
    """
    with another_host(served, mount_timeout=MOUNT_TIMEOUT_S) as b:
        served.client.ok("Create", Name="data")
        assert b.wait_unmounted() == []
        getattr(served.servers, failure)("nfs1")
        getattr(served.servers, failure)("nfs2")
        started = time.monotonic()
        assert "does not exist" in b.client.err("Get", Name="data")
        assert time.monotonic() - started < MOUNT_TIMEOUT_S + 3
        tried = len(served.servers.calls())
        for name in ("other", "third"):
            started = time.monotonic()
            assert "does not exist" in b.client.err("Get", Name=name)
            assert time.monotonic() - started < 2
        assert len(served.servers.calls()) == tried  # no mount.nfs for them
        log = b.process.log_path.read_text()
        assert "share main not asked: " in log, log[-2000:]  # with the reason
