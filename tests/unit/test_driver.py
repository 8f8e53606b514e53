"""The driver against real state on disk, real bind mounts and fake servers."""

import fcntl
import json
import logging
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nfsvol.errors import (
    InvalidName,
    InvalidOption,
    MountFailed,
    OperationTimeout,
    ShareError,
    UnsafePath,
    VolumeConflict,
    VolumeInUse,
    VolumeNotFound,
)
from tests.fakes.servers import mounted_below, pins_below, shares_mounted_below


def meta(world, name):
    return json.loads((world.export / ".nfsvol" / "volumes" / f"{name}.json").read_text())


def test_create_makes_directory_and_metadata_on_the_share(world):
    """A volume is a directory on the export plus metadata, with owner and mode."""
    world.driver().create("data", {"uid": "1234", "gid": "4321", "mode": "0750"})
    st = os.stat(world.export / "data")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 4321, 0o750)
    record = meta(world, "data")
    assert record["created_by"] == "a"
    assert record["created_at"] == "2026-11-29T12:00:00Z"
    assert record["options"] == {"share": "main", "uid": "1234", "gid": "4321", "mode": "0750"}


def test_create_parks_the_share_then_releases_it_when_idle(world):
    """A burst of Creates costs one mount, released idle_unmount seconds later."""
    driver = world.driver()
    driver.create("one", None)
    driver.create("two", None)
    assert len(world.servers.calls()) == 1
    assert mounted_below(world.tmp) == [str(world.share_mount())]
    world.expect_release_after_idle(driver)
    assert driver.shares.idle_shares() == []


def test_a_mount_in_use_is_never_released_as_idle(world):
    """Parking ends once a container holds a volume of the share."""
    driver = world.driver()
    driver.create("data", None)
    driver.mount("data", "c1")
    world.idle_out(driver)
    assert shares_mounted_below(world.tmp) == [str(world.share_mount())]


def test_create_is_idempotent_and_refuses_other_options(world):
    """Same options again is fine; different options fail and change nothing."""
    driver = world.driver()
    driver.create("data", {"mode": "0700"})
    driver.create("data", {"mode": "0700"})
    with pytest.raises(VolumeConflict, match=r"'data' already exists with options .*0700"):
        driver.create("data", {"mode": "0777"})
    assert os.stat(world.export / "data").st_mode & 0o777 == 0o700
    driver.create("data", {})  # Docker's implicit create attaches to what exists


@pytest.mark.parametrize(
    ("name", "opts", "error"),
    [
        ("../escape", None, InvalidName),
        ("ok", {"server": "evil"}, InvalidOption),
        ("ok", {"share": "nope"}, InvalidOption),
        ("ok", {"mode": "4777"}, InvalidOption),
    ],
)
def test_bad_create_changes_nothing(world, name, opts, error):
    """A refused Create neither mounts nor writes anything."""
    with pytest.raises(error):
        world.driver().create(name, opts)
    assert world.servers.calls() == []
    assert not (world.export / ".nfsvol").exists()


def test_names_are_unique_across_shares(world):
    """Docker has one namespace per driver, so a name lives on one share only."""
    driver = world.driver()
    driver.create("data", {"share": "scratch"})
    with pytest.raises(VolumeConflict, match="already exists on share 'scratch'"):
        driver.create("data", None)


def test_volumes_of_one_share_share_one_mount(world):
    """N volumes in use make one mount; each Mountpoint is its own directory."""
    driver = world.driver()
    for name in ("v1", "v2", "v3"):
        driver.create(name, None)
    paths = [driver.mount(name, f"c-{name}") for name in ("v1", "v2", "v3")]
    assert shares_mounted_below(world.tmp) == [str(world.share_mount())]
    assert paths == [world.pin(n) for n in ("v1", "v2", "v3")]
    assert pins_below(world.tmp) == paths  # binds of directories: no NFS mount each
    for name in ("v1", "v2"):
        driver.unmount(name, f"c-{name}")
    assert mounted_below(world.tmp) == [str(world.share_mount()), world.pin("v3")]
    driver.unmount("v3", "c-v3")
    world.idle_out(driver)
    assert mounted_below(world.tmp) == []


def test_the_last_unmount_parks_the_share_for_the_next_mount(world):
    """dockerd Mounts twice per run and often starts the next container at
    once: the share stays mounted idle_unmount seconds after its last user."""
    driver = world.driver()
    driver.create("data", None)
    driver.mount("data", "c1")
    driver.unmount("data", "c1")
    assert driver.shares.idle_shares() == ["main"]
    assert mounted_below(world.tmp) == [str(world.share_mount())]
    driver.mount("data", "c2")  # no second mount.nfs
    assert len(world.servers.calls()) == 1
    assert driver.shares.idle_shares() == []
    driver.unmount("data", "c2")
    world.expect_release_after_idle(driver)


def test_idle_unmount_zero_releases_at_once(world):
    """With idle_unmount: 0 the last Unmount (or a Create) unmounts the share."""
    driver = world.driver(idle_unmount=0)
    driver.create("data", None)
    assert mounted_below(world.tmp) == []
    driver.mount("data", "c1")
    driver.unmount("data", "c1")
    assert mounted_below(world.tmp) == []
    assert driver.shares.idle_shares() == []


def test_data_written_through_the_mount_lands_on_the_export(world):
    """What a container writes at Mountpoint is on the server."""
    driver = world.driver()
    driver.create("data", None)
    path = driver.mount("data", "c1")
    with open(os.path.join(path, "hello.txt"), "w") as f:
        f.write("hi")
    assert (world.export / "data" / "hello.txt").read_text() == "hi"


def test_each_mount_needs_its_own_unmount(world):
    """docker cp mounts again with the same ID; both Unmounts are needed."""
    driver = world.driver()
    driver.create("data", None)
    driver.mount("data", "c1")
    driver.mount("data", "c1")
    driver.unmount("data", "c1")
    assert driver.get("data").status["users"] == ["c1"]
    driver.unmount("data", "c1")
    assert driver.get("data").status["users"] == []
    world.idle_out(driver)
    assert mounted_below(world.tmp) == []


def test_extra_unmounts_are_harmless(world):
    """Unmount of an unknown ID or volume succeeds and changes nothing."""
    driver = world.driver()
    driver.create("data", None)
    driver.mount("data", "c1")
    driver.unmount("data", "other")
    driver.unmount("ghost", "c1")
    assert driver.get("data").status["users"] == ["c1"]


def test_mount_passes_version_and_forced_options(world):
    """mount.nfs gets an argv list with vers, the forced options and the operator's options."""
    driver = world.driver()
    driver.create("data", None)
    argv = world.servers.calls()[0]
    assert argv == [
        "nfs1:/srv/docker", str(world.share_mount()), "-o",
        "vers=4.1,nosuid,nodev,lookupcache=positive,hard,timeo=600",
    ]  # fmt: skip


def test_servers_are_tried_in_order(world):
    """With the first server down, the share mounts from the second."""
    world.servers.down("nfs1")
    driver = world.driver()
    world.servers.live("nfs2")
    driver.create("data", None)
    driver.mount("data", "c1")
    assert [c[0] for c in world.servers.calls()] == ["nfs1:/srv/docker", "nfs2:/srv/docker"]
    assert driver.get("data").status["server"] == "nfs2"


def test_the_server_that_mounted_last_is_tried_first(world):
    """A dead first server costs one mount attempt per host, not one per mount or worker."""
    world.servers.down("nfs1")  # nfs2 still serves the same storage
    driver = world.driver()
    driver.create("data", None)
    world.idle_out(driver)
    driver.mount("data", "c1")
    driver.unmount("data", "c1")
    world.idle_out(driver)
    world.driver().mount("data", "c2")  # another gunicorn worker, or after a restart
    tried = [c[0].split(":")[0] for c in world.servers.calls()]
    assert tried == ["nfs1", "nfs2", "nfs2", "nfs2"]
    world.servers.live("nfs1")
    world.servers.down("nfs2")
    world.idle_out(driver)
    driver.unmount("data", "c2")
    world.idle_out(driver)
    driver.mount("data", "c3")
    driver.unmount("data", "c3")
    world.idle_out(driver)
    driver.mount("data", "c4")
    tried = [c[0].split(":")[0] for c in world.servers.calls()]
    assert tried[4:] == ["nfs2", "nfs1", "nfs1"]


def test_all_servers_down_fails_clearly_and_holds_nothing(world):
    """The error names every server tried; no mount or count is left."""
    driver = world.driver()
    driver.create("data", None)
    world.idle_out(driver)
    world.servers.down("nfs1")
    world.servers.down("nfs2")
    with pytest.raises(MountFailed, match=r"tried in order: nfs1: .*refused.*; nfs2: "):
        driver.mount("data", "c1")
    assert mounted_below(world.tmp) == []
    assert driver.get("data").status["users"] == []


def test_hung_server_times_out_and_the_child_is_killed(world):
    """A server that never answers costs mount_timeout per server, then an error."""
    driver = world.driver()
    driver.create("data", None)
    world.idle_out(driver)
    world.servers.hang("nfs1")
    world.servers.hang("nfs2")
    started = time.monotonic()
    with pytest.raises(MountFailed, match="did not finish within 4s and was killed"):
        driver.mount("data", "c1")
    assert time.monotonic() - started < 2 * 4 + 3
    assert world.servers.helpers() == []


def test_failed_mount_rolls_back(world):
    """Docker sends no Unmount after a failed Mount, so nothing may stay held."""
    driver = world.driver()
    driver.create("data", None)
    (world.export / "data").rmdir()
    with pytest.raises(VolumeNotFound, match="no directory on share 'main'"):
        driver.mount("data", "c1")
    assert mounted_below(world.tmp) == []
    assert driver.get("data").status["users"] == []


def test_remove_is_refused_while_mounted(world):
    """Remove names the holders and keeps the data."""
    driver = world.driver()
    driver.create("data", None)
    driver.mount("data", "c1")
    with pytest.raises(VolumeInUse, match=r"in use on this host by 1 mount\(s\) \(c1\)"):
        driver.remove("data")
    assert (world.export / "data").is_dir()


def test_remove_delete_policy_removes_data_and_metadata(world):
    """on_remove: delete leaves nothing of the volume on the share."""
    driver = world.driver()
    driver.create("data", None)
    (world.export / "data" / "f").write_text("x")
    driver.remove("data")
    assert not (world.export / "data").exists()
    assert not (world.export / ".nfsvol" / "volumes" / "data.json").exists()
    assert os.listdir(world.export / ".nfsvol" / "trash") == []
    with pytest.raises(VolumeNotFound):
        driver.get("data")


def test_remove_retain_policy_keeps_data(world):
    """on_remove: retain forgets the volume but keeps its directory."""
    driver = world.driver()
    driver.create("keep", {"share": "scratch"})
    (world.scratch / "keep" / "f").write_text("x")
    driver.remove("keep")
    assert (world.scratch / "keep" / "f").read_text() == "x"
    assert [name for name, _ in driver.list_volumes()] == []


def test_remove_archive_policy_moves_data_aside(world):
    """on_remove: archive renames the directory under a timestamped name."""
    driver = world.driver()
    driver.create("old", {"share": "attic"})
    (world.tmp / "attic" / "old" / "f").write_text("x")
    driver.remove("old")
    archived = world.tmp / "attic" / ".nfsvol" / "archive" / "old-20261129T120000.000000Z"
    assert (archived / "f").read_text() == "x"
    assert not (world.tmp / "attic" / "old").exists()


def test_remove_unknown_volume_succeeds(world):
    """Removing what is already gone is not an error."""
    world.driver().remove("never-was")


def test_delete_never_follows_links_planted_in_a_volume(world):
    """A symlink inside the volume to outside data is removed, not followed."""
    victim = world.tmp / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep me")
    driver = world.driver()
    driver.create("data", None)
    os.symlink(victim, world.export / "data" / "link")
    driver.remove("data")
    assert (victim / "precious").read_text() == "keep me"


def test_delete_never_follows_a_link_in_place_of_the_volume(world):
    """A symlink replacing the volume directory is unlinked; its target survives."""
    victim = world.tmp / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep me")
    driver = world.driver()
    driver.create("data", None)
    (world.export / "data").rmdir()
    os.symlink(victim, world.export / "data")
    driver.remove("data")
    assert (victim / "precious").read_text() == "keep me"
    assert not os.path.lexists(world.export / "data")


def test_create_and_mount_refuse_a_link_in_place_of_the_volume(world):
    """Neither Create nor Mount hands Docker a path that leaves the share."""
    driver = world.driver()
    os.symlink("/etc", world.scratch / "evil")
    with pytest.raises(UnsafePath, match="'evil' on the share is a symlink"):
        driver.create("evil", {"share": "scratch"})
    driver.create("data", {"share": "scratch"})
    (world.scratch / "data").rmdir()
    os.symlink("/etc", world.scratch / "data")
    with pytest.raises(VolumeNotFound, match="no directory"):
        driver.mount("data", "c1")


@pytest.mark.parametrize("share", ["main", "scratch"])
def test_the_path_docker_gets_keeps_showing_the_volume_after_a_swap(world, share):
    """A share writer that swaps the directory for a link after Mount's answer steers nothing."""
    victim = world.tmp / "victim"
    victim.mkdir()
    (victim / "secret").write_text("host data")
    driver = world.driver()
    driver.create("data", {"share": share})
    root = world.export if share == "main" else world.scratch
    (root / "data" / "mine").write_text("volume data")
    path = driver.mount("data", "c1")  # dockerd bind-mounts this only afterwards
    (root / "data").rename(root / "elsewhere")
    os.symlink(victim, root / "data")
    assert os.listdir(path) == ["mine"]
    (Path(path) / "new").write_text("x")
    assert sorted(os.listdir(victim)) == ["secret"]
    assert (root / "elsewhere" / "new").read_text() == "x"
    with pytest.raises(VolumeNotFound, match="no directory"):  # held, yet checked afresh
        driver.mount("data", "c2")
    driver.unmount("data", "c1")
    assert pins_below(world.tmp) == []


def test_a_pin_lost_under_a_running_container_is_bound_again(world):
    """A managed plugin's upgrade unmounts its pins; the next container still gets the volume."""
    driver = world.driver()
    driver.create("data", None)
    (world.export / "data" / "mine").write_text("volume data")
    path = driver.mount("data", "c1")
    subprocess.run(["umount", "-l", path], check=True)  # what dockerd does on plugin disable
    assert os.listdir(path) == []
    assert driver.mount("data", "c2") == path
    assert os.listdir(path) == ["mine"]
    for mount_id in ("c1", "c2"):
        driver.unmount("data", mount_id)
    assert pins_below(world.tmp) == []


def test_path_is_empty_until_mounted(world):
    """Path and Get's Mountpoint point at data only while it is reachable."""
    driver = world.driver()
    driver.create("data", None)
    driver.create("local", {"share": "scratch"})
    assert driver.path("data") == ""
    assert driver.path("local") == ""
    driver.mount("data", "c1")
    driver.mount("local", "c1")
    assert driver.path("data") == world.pin("data")
    assert driver.path("local") == world.pin("local", "scratch")
    assert driver.get("data").mountpoint == driver.path("data")


def test_get_reports_status_for_inspect(world):
    """Status carries share, server, export, mounted and users."""
    driver = world.driver()
    driver.create("data", None)
    driver.mount("data", "c1")
    volume = driver.get("data")
    assert volume.created_at == "2026-11-29T12:00:00Z"
    assert volume.status == {
        "share": "main", "type": "nfs", "created_by": "a", "options": {"share": "main"},
        "mounted": True, "users": ["c1"], "on_remove": "delete", "server": "nfs1",
        "servers": ["nfs1", "nfs2"], "export": "/srv/docker", "version": "4.1",
        "nfs_options": "vers=4.1,nosuid,nodev,lookupcache=positive,hard,timeo=600", "access": "shared",
        "holders": [{"host": "a", "since": "2026-11-29T12:00:00Z",
                     "renewed": "2026-11-29T12:00:00Z"}],
    }  # fmt: skip


def test_get_of_unknown_volume_says_how_to_create_it(world):
    """The error names the volume and the fix."""
    with pytest.raises(VolumeNotFound, match="docker volume create -d nfsvol ghost"):
        world.driver().get("ghost")


def test_a_second_host_sees_volumes_created_on_the_first(world):
    """Volumes live on the share: host b lists and mounts what host a made."""
    world.driver("a").create("shared", None)
    b = world.driver("b")
    assert [name for name, _ in b.list_volumes()] == ["shared"]
    path = b.mount("shared", "cb")
    assert path == world.pin("shared", host="b")


def test_get_on_a_second_host_finds_a_new_volume_at_once(world):
    """A cache miss triggers a sync, so docker run on host b needs no wait."""
    b = world.driver("b")
    assert b.list_volumes() == []
    world.driver("a").create("late", None)
    world.clock.advance(10)
    assert b.get("late").name == "late"


def test_removal_elsewhere_is_noticed(world):
    """Mount on host b fails clearly once host a removed the volume."""
    a, b = world.driver("a"), world.driver("b")
    a.create("gone", None)
    assert b.get("gone").name == "gone"
    a.remove("gone")
    with pytest.raises(VolumeNotFound, match="removed from share 'main', probably by another host"):
        b.mount("gone", "c1")
    world.clock.advance(10)
    assert b.list_volumes() == []


def test_a_sync_lists_the_records_only_after_the_share_changed(world, caplog):
    """An unchanged record folder costs one stat per sync; a change, two listings."""
    a, b = world.driver("a"), world.driver("b")
    a.create("first", None)

    def sync_on_b() -> tuple[list[str], int]:
        caplog.clear()
        world.clock.advance(10)  # past catalog_ttl
        names = [name for name, _ in b.list_volumes()]
        listed = [r for r in caplog.records if r.getMessage().startswith("share main: listed")]
        return names, len(listed)

    with caplog.at_level(logging.DEBUG, logger="nfsvol.roles.cache"):
        assert sync_on_b() == (["first"], 1)
        assert sync_on_b() == (["first"], 1)  # the same stamp, a tick later: now trusted
        assert sync_on_b() == (["first"], 0)
        a.create("second", None)
        assert sync_on_b() == (["first", "second"], 1)
        assert sync_on_b() == (["first", "second"], 1)
        assert sync_on_b() == (["first", "second"], 0)
        a.remove("first")
        assert sync_on_b() == (["second"], 1)


def test_counts_survive_a_restart(world):
    """A new driver on the same state (kill -9, restart) keeps every holder."""
    first = world.driver()
    first.reconcile()
    first.create("data", None)
    first.mount("data", "c1")
    second = world.driver()
    second.reconcile()
    assert second.get("data").status["users"] == ["c1"]
    assert mounted_below(world.tmp) == [str(world.share_mount()), world.pin("data")]
    second.unmount("data", "c1")
    world.idle_out(second)
    assert mounted_below(world.tmp) == []


def test_reconcile_drops_a_mount_nobody_holds(world):
    """A crash between mount and count write leaves a mount that start-up removes."""
    driver = world.driver()
    driver.create("data", None)
    world.idle_out(driver)
    os.system(f"mount --bind {world.export} {world.share_mount()}")  # noqa: S605
    assert mounted_below(world.tmp) == [str(world.share_mount())]
    world.driver().reconcile()
    assert mounted_below(world.tmp) == []


def test_reconcile_forgets_counts_from_a_previous_boot(world):
    """After a reboot no container holds anything; the data is untouched."""
    first = world.driver(boot="boot-1")
    first.create("data", None)
    first.reconcile()
    first.mount("data", "c1")
    (world.export / "data" / "f").write_text("x")
    rebooted = world.driver(boot="boot-2")
    rebooted.reconcile()
    assert rebooted.get("data").status["users"] == []
    assert mounted_below(world.tmp) == []
    assert (world.export / "data" / "f").read_text() == "x"
    rebooted.remove("data")


def test_list_with_many_volumes(world):
    """List returns every volume with its mountpoint when mounted."""
    driver = world.driver()
    for i in range(30):
        driver.create(f"v{i:02d}", {"share": "scratch"})
    listed = driver.list_volumes()
    assert [n for n, _ in listed] == [f"v{i:02d}" for i in range(30)]
    assert listed[0][1] == ""
    driver.mount("v07", "c1")
    assert driver.list_volumes()[7] == ("v07", world.pin("v07", "scratch"))


def test_capabilities_are_global():
    """Every host with the same shares sees the same volumes."""
    from nfsvol.driver import Driver

    assert Driver.capabilities(None) == {"Scope": "global"}  # type: ignore[arg-type]


def test_timeout_errors_are_operation_timeouts(world):
    """A hung helper is reported as a timeout from the mounter itself."""
    from nfsvol.host.mounter import NfsSource, SubprocessMounter

    world.servers.hang("nfs1")
    mounter = SubprocessMounter(world.config().mount_helper, "/usr/bin/umount", 1)
    target = world.tmp / "t"
    target.mkdir()
    with pytest.raises(OperationTimeout):
        mounter.mount(NfsSource("nfs1", "/srv/docker", "4.1"), str(target))


def test_a_stopped_mounter_kills_its_helpers_and_starts_no_more(world):
    """A plugin worker that exits takes its running mount helpers with it."""
    from nfsvol.host.mounter import NfsSource, SubprocessMounter

    world.servers.hang("nfs1")
    mounter = SubprocessMounter(world.config().mount_helper, "/usr/bin/umount", 60)
    target = world.tmp / "t"
    target.mkdir()
    source = NfsSource("nfs1", "/srv/docker", "4.1")
    with ThreadPoolExecutor(max_workers=1) as pool:
        stuck = pool.submit(mounter.mount, source, str(target))
        deadline = time.monotonic() + 10
        while not world.servers.helpers() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert world.servers.helpers() != []
        mounter.stop()
        with pytest.raises(MountFailed, match=r"failed \(exit -9\)"):
            stuck.result(timeout=5)
    assert world.servers.helpers() == []
    with pytest.raises(OperationTimeout, match="not started: nfsvol is stopping"):
        mounter.mount(source, str(target))


def test_share_refusals_are_typed_and_leave_nothing(world):
    """A share that refuses writes gives a clear, typed error and no half-made volume."""
    driver = world.driver()
    subprocess.run(["chattr", "+i", str(world.scratch)], check=True)
    try:
        with pytest.raises(
            ShareError, match="share 'scratch' refused Operation not permitted.*no_root_squash"
        ):
            driver.create("locked", {"share": "scratch"})
    finally:
        subprocess.run(["chattr", "-i", str(world.scratch)], check=True)
    assert not (world.scratch / "locked").exists()
    assert [name for name, _ in driver.list_volumes()] == []


def test_a_share_that_stops_answering_fails_in_time(world):
    """A call blocked on a mounted share errs within mount_timeout x (servers + 1).

    Another process holding the share's lock blocks every call the way a
    hard NFS mount does while its server is down. (A FIFO planted on the
    share no longer blocks anything: see nfsvol.share.sharefs.)
    """
    world.driver().create("held", None)
    world.driver().mount("held", "c0")  # keeps the share mounted
    holder = os.open(world.tmp / "hosts" / "a" / "locks" / "main.lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    driver = world.driver(mount_timeout=0.5)  # budget: 0.5 x (2 servers + 1)
    started = time.monotonic()
    with pytest.raises(
        OperationTimeout, match=r"Create on share 'main' got no answer .* 1.5s"
    ) as err:
        driver.create("stuck", None)
    # A server in its grace period looks the same from here: the error says so.
    assert "grace period" in str(err.value) and "nfsvol check" in str(err.value)
    assert 1.5 <= time.monotonic() - started < 3
    assert driver.get("held").status["users"] == ["c0"]  # state and cache still answer
    # The blocked helper waits for the share's lock: the next call errs in time too.
    with pytest.raises(OperationTimeout, match="Mount on share 'main'"):
        driver.mount("held", "c1")
    os.close(holder)  # the "server" answers: the helpers finish
    time.sleep(1)
    # Docker was told that Mount failed and will send no Unmount: it never took effect.
    assert driver.get("held").status["users"] == ["c0"]
    assert driver.mount("held", "c1").endswith("/held")


def test_a_full_share_fails_create_and_leaves_nothing(world):
    """ENOSPC on Create: a clear error, no directory, no metadata, no temp file; fine once freed."""
    tiny = world.tmp / "tiny"
    tiny.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "nfsvol-tiny", str(tiny)], check=True
    )
    shares = {"tiny": {"type": "path", "path": str(tiny)}}
    driver = world.driver(default_share="tiny", shares=shares)
    driver.create("first", None)
    with pytest.raises(OSError, match="No space left"), open(tiny / "first" / "fill", "wb") as f:
        while True:
            f.write(b"\0" * 65536)
    before = sorted(str(p.relative_to(tiny)) for p in tiny.rglob("*"))
    with pytest.raises(ShareError, match="No space left.*free space"):
        driver.create("second", None)
    assert sorted(str(p.relative_to(tiny)) for p in tiny.rglob("*")) == before
    # Mounting the full volume still works, so a container can clean it up.
    assert os.listdir(driver.mount("first", "cleaner")) == ["fill"]
    (tiny / "first" / "fill").unlink()
    driver.unmount("first", "cleaner")
    driver.create("second", None)
    assert (tiny / "second").is_dir()


def test_warm_cache_reads_every_share_before_serving(world):
    """A host starting with an empty cache knows every volume before its first call."""
    world.driver("a").create("early", None)
    b = world.driver("b")
    b.warm_cache(wait=10)
    world.servers.hang("nfs1")  # from here on no sync could help
    world.servers.hang("nfs2")
    assert [name for name, _ in b.list_volumes()] == ["early"]
