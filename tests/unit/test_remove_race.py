"""A Remove on one host racing a Mount of the same volume on another (issue 21, item 5).

Two drivers with their own state share one path share. The races are
driven by running each host's steps in the order that reproduces them:
another host's marker or lease is planted on the share as the file it
would write, and one test lets host a's whole Remove run at the instant
host b's lease lands (an interposed os.replace, the syscall it lands with).
"""

import json
import os
from pathlib import Path

import pytest

from nfsvol.errors import VolumeInUse, VolumeNotFound
from nfsvol.share.leases import Lease, LeaseStore

SHARED = {"share": "scratch"}
BOUND = 30.0  # max(lease_ttl 30, 2 * mount_timeout 4 * (0 servers + 1)): path shares


def marker_file(root: Path, name: str) -> Path:
    return root / ".nfsvol" / "removing" / f"{name}.json"


def plant_marker(root: Path, name: str, host: str, renewal: str = "t0") -> Path:
    """The marker `host`'s Remove writes before it looks for holders."""
    path = marker_file(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "since": "2026-11-29T12:00:00Z", "token": renewal}))
    return path


def lease_hosts(root: Path, name: str) -> list[str]:
    return [lease.host for lease in LeaseStore(root, "scratch").holders(name)]


def test_mount_is_refused_while_another_host_removes_the_volume(world):
    """a has announced its Remove (marker, record still there): b's Mount fails, holds nothing."""
    a, b = world.driver("a"), world.driver("b")
    a.create("data", SHARED)
    b.list_volumes()
    plant_marker(world.scratch, "data", "a")
    with pytest.raises(VolumeInUse, match="'data' is being removed by host 'a'.*Retry"):
        b.mount("data", "c1")
    assert lease_hosts(world.scratch, "data") == []  # the lease it took first is dropped
    assert b.get("data").status["users"] == []


def test_a_marker_left_by_a_crash_is_ignored_after_the_bound(world):
    """Watched on b's own clock: refused until BOUND seconds after b first saw it."""
    a, b = world.driver("a"), world.driver("b")
    a.create("data", SHARED)
    b.list_volumes()
    plant_marker(world.scratch, "data", "a")
    with pytest.raises(VolumeInUse, match=f"ignored in {BOUND:.0f}s"):
        b.mount("data", "c1")
    world.clock.advance(BOUND - 1)
    with pytest.raises(VolumeInUse, match="ignored in 1s"):
        b.mount("data", "c1")
    world.clock.advance(1)
    assert b.mount("data", "c1") == world.pin("data", "scratch", host="b")
    assert lease_hosts(world.scratch, "data") == ["b"]
    b.unmount("data", "c1")
    b.remove("data")  # replaces the stale marker with its own, then deletes it
    assert not marker_file(world.scratch, "data").exists()
    assert not (world.scratch / ".nfsvol" / "volumes" / "data.json").exists()


def test_a_new_remove_restarts_the_watch(world):
    """Another token is another Remove: the time watched on the old one does not count."""
    a, b = world.driver("a"), world.driver("b")
    a.create("data", SHARED)
    b.list_volumes()
    plant_marker(world.scratch, "data", "a", renewal="t0")
    with pytest.raises(VolumeInUse):
        b.mount("data", "c1")
    world.clock.advance(BOUND)
    plant_marker(world.scratch, "data", "a", renewal="t1")
    with pytest.raises(VolumeInUse, match=f"ignored in {BOUND:.0f}s"):
        b.mount("data", "c1")


def test_a_marker_of_this_host_is_a_leftover_of_its_own_crash(world):
    """This host's Removes run under its share lock: its own marker is never live."""
    b = world.driver("b")
    b.create("data", SHARED)
    plant_marker(world.scratch, "data", "b")
    b.mount("data", "c1")
    b.unmount("data", "c1")
    b.remove("data")
    assert not marker_file(world.scratch, "data").exists()


@pytest.mark.parametrize(
    "junk",
    [b"{torn", b'{"host": "", "since": "x", "token": "t"}', b"[1]", b"link"],
    ids=["not-json", "empty-host", "not-object", "symlink"],
)
def test_an_unusable_marker_is_skipped_and_replaced(world, junk):
    a, b = world.driver("a"), world.driver("b")
    a.create("data", SHARED)
    b.list_volumes()
    path = marker_file(world.scratch, "data")
    path.parent.mkdir(parents=True, exist_ok=True)
    if junk == b"link":
        (world.tmp / "target").write_text("{}")
        path.symlink_to(world.tmp / "target")
    else:
        path.write_bytes(junk)
    b.mount("data", "c1")
    b.unmount("data", "c1")
    a.remove("data")
    assert not os.path.lexists(path)
    if junk == b"link":
        assert (world.tmp / "target").read_text() == "{}"  # unlinked, never followed


def test_a_second_remove_is_refused_while_another_host_removes(world):
    a, b = world.driver("a"), world.driver("b")
    a.create("data", SHARED)
    b.list_volumes()
    planted = plant_marker(world.scratch, "data", "a")
    with pytest.raises(VolumeInUse, match="already being removed by host 'a'"):
        b.remove("data")
    assert planted.exists()  # not b's to delete
    assert (world.scratch / ".nfsvol" / "volumes" / "data.json").exists()


def test_remove_refused_by_a_lease_takes_its_marker_back(world):
    """b's lease landed before a looked: a refuses, and leaves no marker to block b."""
    a, b = world.driver("a"), world.driver("b")
    a.create("data", SHARED)
    LeaseStore(world.scratch, "scratch").hold("data", Lease("b", "t0", "t0", 30.0, "x"))
    with pytest.raises(VolumeInUse, match="held by host 'b'.*Remove refused"):
        a.remove("data")
    assert not marker_file(world.scratch, "data").exists()
    assert (world.scratch / "data").is_dir()
    assert (world.scratch / ".nfsvol" / "volumes" / "data.json").exists()
    b.mount("data", "c1")  # not blocked by anything a left


def test_a_mount_checks_the_volume_after_its_lease_lands(world, monkeypatch):
    """a's whole Remove runs just before b's lease lands (it saw no holder): b must fail.

    Before the fix b checked the record first, then wrote its lease, and
    answered a path that a had just moved into the archive.
    """
    a, b = world.driver("a"), world.driver("b")
    a.create("data", {"share": "attic"})
    b.list_volumes()
    attic = world.tmp / "attic"
    real_replace = os.replace
    ran = []

    def replace(src, dst, *args, **kwargs):
        if dst == "b.json" and not ran:  # b's lease, into .nfsvol/leases/data/
            ran.append(True)
            a.remove("data")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(VolumeNotFound, match="'data' was removed from share 'attic'"):
        b.mount("data", "c1")
    assert ran
    assert not (attic / "data").exists()
    assert lease_hosts(attic, "data") == []
    assert "data" not in dict(b.list_volumes())


def test_a_marker_is_named_in_errors_escaped_and_cut_short(world):
    """What another host wrote is hostile input: no terminal escapes, no megabyte echoed."""
    a, b = world.driver("a"), world.driver("b")
    a.create("data", SHARED)
    b.list_volumes()
    path = marker_file(world.scratch, "data")
    path.parent.mkdir(parents=True, exist_ok=True)
    since = "\x1b[2J" + "x" * 1000
    path.write_text(json.dumps({"host": "a\nb", "since": since, "token": "t"}))
    with pytest.raises(VolumeInUse) as refused:
        b.mount("data", "c1")
    message = str(refused.value)
    assert "\x1b" not in message and "\n" not in message
    assert "host 'a\\nb'" in message and len(message) < 600
