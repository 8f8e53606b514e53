"""Leases across hosts: holders, single-host access, takeover after expiry, fencing."""

import contextlib
import itertools
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nfsvol.errors import VolumeHeld, VolumeInUse
from nfsvol.host.fence import Fencer
from nfsvol.roles.periodic import Periodic
from nfsvol.share.leases import LOST, Lease, LeaseStore
from tests.support.namespaces import user_of

TTL = 30.0
GRACE = 3.0  # lease_ttl / 10
SINGLE = {"share": "scratch", "access": "single-host"}
SHARED = {"share": "scratch"}


def holders(driver, name):
    return [h["host"] for h in driver.get(name).status["holders"]]


def lease_files(world, name):
    folder = world.scratch / ".nfsvol" / "leases" / name
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_shared_volumes_list_every_holder_on_every_host(world):
    """Both hosts hold a shared volume; each Get shows both once the catalog is synced."""
    a, b = world.driver("a"), world.driver("b")
    a.create("data", SHARED)
    a.mount("data", "c1")
    b.mount("data", "c2")
    assert holders(b, "data") == ["a", "b"]  # b read the share's leases when it synced
    world.clock.advance(a.config.catalog_ttl + 1)
    a.list_volumes()
    assert holders(a, "data") == ["a", "b"]
    assert lease_files(world, "data") == ["a.json", "b.json"]
    b.unmount("data", "c2")
    assert lease_files(world, "data") == ["a.json"]
    assert holders(b, "data") == ["a"]


def test_remove_is_refused_while_another_host_holds_the_volume(world):
    """docker volume rm on b names host a; after a's last Unmount it works."""
    a, b = world.driver("a"), world.driver("b")
    a.create("data", SHARED)
    a.mount("data", "c1")
    b.list_volumes()
    with pytest.raises(VolumeInUse, match="held by host 'a'.*Remove refused"):
        b.remove("data")
    assert (world.scratch / "data").is_dir()
    a.unmount("data", "c1")
    b.remove("data")
    assert lease_files(world, "data") == []


def test_single_host_refuses_a_second_host_until_the_lease_expires(world):
    """b is refused while a renews; once a stops renewing, b takes over after ttl + grace."""
    a, b = world.driver("a"), world.driver("b")
    a.create("db", SINGLE)
    assert a.mount("db", "c1") == world.pin("db", "scratch")
    b.list_volumes()
    with pytest.raises(VolumeHeld, match="held by host 'a'.*free 33s after"):
        b.mount("db", "c2")
    for _ in range(6):  # a stays alive for two ttls, renewing every ttl/3
        world.clock.advance(TTL / 3)
        a.leases.renew_due()
        with pytest.raises(VolumeHeld):
            b.mount("db", "c2")
    # a dies: no more renewals. b must watch the same token for ttl + grace.
    world.clock.advance(TTL + GRACE - 1)
    with pytest.raises(VolumeHeld, match="free 1s after"):
        b.mount("db", "c2")
    world.clock.advance(1)
    assert b.mount("db", "c2") == world.pin("db", "scratch", host="b")
    assert holders(b, "db") == ["b"]
    assert lease_files(world, "db") == ["owner.2.json"]


def test_a_former_holder_learns_it_lost_and_stops_serving(world):
    """a (cut off, not dead) finds b's newer lease: its writer is killed, Mounts refused."""
    a, b = world.driver("a"), world.driver("b")
    a.create("db", SINGLE)
    path = a.mount("db", "c1")
    b.list_volumes()
    with pytest.raises(VolumeHeld):
        b.mount("db", "c2")
    world.clock.advance(TTL + GRACE)  # a did not renew: partitioned
    b.mount("db", "c2")
    with user_of(Path(path), world.tmp / "container") as writer:
        a.leases.renew_due()
        assert writer.wait(timeout=10) == -9
    assert "lost" in a.get("db").status["lease"]
    with pytest.raises(VolumeHeld, match="taken over by another host"):
        a.mount("db", "c3")
    assert [lease.host for lease in LeaseStore(world.scratch, "scratch").holders("db")] == ["b"]
    a.unmount("db", "c1")  # its container stopped: a holds nothing, b's lease stays
    assert [lease.host for lease in LeaseStore(world.scratch, "scratch").holders("db")] == ["b"]
    assert "lease" not in a.get("db").status


def test_renewals_failing_for_a_whole_ttl_fence_the_holder(world):
    """A holder that cannot write its lease for ttl stops serving before anyone takes over."""
    a = world.driver("a")
    a.create("db", SINGLE)
    a.mount("db", "c1")
    folder = world.scratch / ".nfsvol" / "leases" / "db"
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    try:
        world.clock.advance(TTL / 3)
        a.leases.renew_due()  # failed, but not for long yet
        assert "lease" not in a.get("db").status
        world.clock.advance(TTL - TTL / 3)
        a.leases.renew_due()
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    assert "lost" in a.get("db").status["lease"]


@pytest.mark.parametrize("single_host", [False, True])
def test_holders_takes_a_just_written_lease_as_is_and_reads_the_others(tmp_path, single_host):
    """The Mount path's shortcut gives what a full read of the folder gives."""
    store = LeaseStore(tmp_path, "scratch")
    store.hold("db", Lease("b", "t0", "t0", TTL, "x"))
    mine = Lease("a", "t1", "t1", TTL, "y")
    placed = store.claim("db", mine, None) if single_host else store.hold("db", mine)
    assert placed is not None
    assert store.holders("db", known=placed) == store.holders("db")
    assert sorted(h.host for h in store.holders("db", known=placed)) == ["a", "b"]


@pytest.mark.parametrize(
    "case, expect_left",
    [
        ("own host file, unreadable", []),  # only its host writes it: gone unread
        ("owner file, claimed anew by b", ["owner.1.json"]),  # not ours: left alone
        ("owner file, still ours", []),
    ],
)
def test_release_looks_first_only_at_an_owner_file(world, case, expect_left):
    store = LeaseStore(world.scratch, "scratch")
    folder = world.scratch / ".nfsvol" / "leases" / "db"
    if case == "own host file, unreadable":
        lease = store.hold("db", Lease("a", "t0", "t0", TTL, "x"))
        (folder / lease.file).write_text("{torn")
    else:
        lease = store.claim("db", Lease("a", "t0", "t0", TTL, "x"), None)
        assert lease is not None
    if case == "owner file, claimed anew by b":  # a's dropped as left behind, then b came
        (folder / lease.file).unlink()
        assert store.claim("db", Lease("b", "t1", "t1", TTL, "y"), None) is not None
    store.release("db", lease)
    assert lease_files(world, "db") == expect_left
    if expect_left:
        assert [h.host for h in store.holders("db")] == ["b"]


def test_a_holder_that_restarts_keeps_and_renews_its_lease(world):
    """kill -9 and restart: the new process renews the same lease, so b stays refused."""
    a, b = world.driver("a"), world.driver("b")
    a.create("db", SINGLE)
    a.mount("db", "c1")
    restarted = world.driver("a")
    b.list_volumes()
    for _ in range(6):
        world.clock.advance(TTL / 3)
        restarted.leases.renew_due()
        with pytest.raises(VolumeHeld):
            b.mount("db", "c2")


def test_two_hosts_racing_for_an_expired_lease_one_wins(world):
    """Exclusive creation of the next owner file: exactly one claim succeeds."""
    store = LeaseStore(world.scratch, "scratch")
    old = store.claim("db", Lease("a", "t0", "t0", TTL, "x"), None)
    assert old is not None
    won = store.claim("db", Lease("b", "t1", "t1", TTL, "y"), old)
    lost = store.claim("db", Lease("c", "t1", "t1", TTL, "z"), old)
    assert won is not None and lost is None
    assert [h.host for h in store.holders("db")] == ["b"]
    assert store.renew("db", old, "t2") is None  # a finds it lost
    assert store.renew("db", won, "t2") is not None


@pytest.mark.parametrize(
    ("token", "lost"),
    [(LOST, True), ("0123456789abcdef", False), ("Lost", False), ("", False)],
)
def test_a_lease_is_lost_only_with_the_lost_token(token, lost):
    """Lease.lost tells the record a fenced host keeps from a live lease, by its token alone."""
    assert Lease("a", "t0", "t0", TTL, token).lost is lost


def test_single_host_is_fixed_at_create(world):
    """A repeated Create with another access mode is a conflict, as any option change is."""
    a = world.driver("a")
    a.create("db", SINGLE)
    with pytest.raises(Exception, match="already exists with options"):
        a.create("db", SHARED)


def test_a_shared_volume_is_never_fenced_when_renewals_fail(world):
    """A server outage longer than the ttl must not kill the users of a shared volume."""
    a = world.driver("a")
    a.create("data", SHARED)
    path = a.mount("data", "c1")
    folder = world.scratch / ".nfsvol" / "leases" / "data"
    with user_of(Path(path), world.tmp / "container") as user:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        try:
            world.clock.advance(2 * TTL)
            a.leases.renew_due()
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        assert user.poll() is None
    assert "lease" not in a.get("data").status
    world.clock.advance(TTL / 3)
    a.leases.renew_due()  # the server is back: renewed again
    assert a.get("data").status["holders"][0]["renewed"] != "2026-11-29T12:00:00Z"


def test_a_rebooted_host_drops_the_leases_it_left_behind(world):
    """Powered off while holding a volume: after its reboot nothing blocks rm elsewhere."""
    a, b = world.driver("a"), world.driver("b")
    a.create("data", SHARED)
    a.mount("data", "c1")  # then the power goes
    assert lease_files(world, "data") == ["a.json"]
    rebooted = world.driver("a", boot="boot-2")
    rebooted.reconcile()
    world.clock.advance(rebooted.config.catalog_ttl + 1)
    rebooted.list_volumes()  # its first sync
    assert lease_files(world, "data") == []
    b.remove("data")


def test_the_keeper_sleeps_until_the_next_renewal_is_due(world):
    """renew_due says when to run again: ttl/3 after a renewal, 0 while one fails."""
    a = world.driver("a")
    a.create("db", SINGLE)
    assert a.leases.renew_due() is None  # nothing held: the keeper stops
    a.mount("db", "c1")
    assert a.leases.renew_due() == TTL / 3  # taken just now
    world.clock.advance(TTL / 6)
    assert a.leases.renew_due() == TTL / 6
    world.clock.advance(TTL / 6)
    assert a.leases.renew_due() == TTL / 3  # renewed
    folder = world.scratch / ".nfsvol" / "leases" / "db"
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    try:
        world.clock.advance(TTL / 3)
        assert a.leases.renew_due() == 0  # failed: retried at the keeper's shortest pause
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    assert a.leases.renew_due() == TTL / 3
    a.unmount("db", "c1")
    assert a.leases.renew_due() is None


def _run_until(janitor: Periodic, ticks: list, count: int) -> None:
    """Wake `janitor`; return once `ticks` has `count` entries, and a moment more."""
    janitor.wake()
    deadline = time.monotonic() + 10
    while len(ticks) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # room for a tick too many, which the caller's assert catches


def test_a_periodic_thread_sleeps_what_its_tick_returns_and_stops_on_none():
    """Real thread, real sleeps: three ticks 50 ms apart, then no thread left."""
    ticks: list[float] = []
    delays = iter([0.05, 0.05, None])

    def tick() -> float | None:
        ticks.append(time.monotonic())
        return next(delays)

    janitor = Periodic(tick, 0.01)
    _run_until(janitor, ticks, 3)
    assert len(ticks) == 3
    assert all(later - earlier >= 0.05 for earlier, later in itertools.pairwise(ticks))
    assert janitor.name == "nfsvol-tick"
    assert janitor.name not in [t.name for t in threading.enumerate()]


def test_a_wake_during_the_last_tick_runs_the_tick_once_more():
    """A lease taken while the keeper finds none left must still be renewed."""
    calls: list[int] = []

    def tick() -> float | None:
        calls.append(len(calls))
        if len(calls) == 1:
            janitor.wake()  # new work, while this tick is about to say "nothing left"
        return None

    janitor = Periodic(tick, 0.01)
    _run_until(janitor, calls, 2)
    assert calls == [0, 1]
    assert janitor.name not in [t.name for t in threading.enumerate()]


@contextlib.contextmanager
def _renewals_fail(folder: Path) -> Iterator[None]:
    """The share refuses lease writes (EPERM), as a server that has gone away would."""
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_holder_fences_three_quarters_into_its_lease(world):
    """The last quarter of the lease is the fence's: it starts at 0.75 ttl, not at the end."""
    a = world.driver("a", lease_ttl=4)
    a.create("db", SINGLE)
    a.mount("db", "c1")
    with _renewals_fail(world.scratch / ".nfsvol" / "leases" / "db"):
        world.clock.advance(4 / 3)
        a.leases.renew_due()
        world.clock.advance(3 - 4 / 3 - 0.01)
        a.leases.renew_due()
        assert "lease" not in a.get("db").status
        world.clock.advance(0.01)
        a.leases.renew_due()
    assert "lost" in a.get("db").status["lease"]


def _umount_that_frees(tmp: Path, writer_pid: int, after: int) -> Path:
    """A umount at the exec boundary: its `after`-th -f call lets the writer die.

    Like a killed NFS writer: SIGKILL is pending, but the process sleeps in
    its flush until umount -f fails the RPC; each flush waits on a new one.
    """
    helper, calls = tmp / "umount", tmp / "umount.calls"
    helper.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n'
        f'[ "$(wc -l < {calls})" -ge {after} ] && kill -9 {writer_pid}\nexit 32\n'
    )
    helper.chmod(0o755)
    return helper


def test_the_fence_forces_until_a_killed_writer_is_gone(world):
    """A writer that dies only at the third umount -f is waited for: no reboot, no survivor."""
    sysrq = world.tmp / "sysrq-trigger"
    fencer = Fencer(kill=lambda pid, sig: None, sysrq=str(sysrq))  # SIGKILL lands, no exit yet
    (world.tmp / "h").mkdir()
    a = world.driver("a", fencer=fencer, umount_helper=str(world.tmp / "h" / "umount"), lease_ttl=8)
    a.create("db", {"share": "main", "access": "single-host"})
    path = Path(a.mount("db", "c1"))
    with user_of(path, world.tmp / "container") as writer:
        _umount_that_frees(world.tmp / "h", writer.pid, after=3)
        with _renewals_fail(world.share_mount() / ".nfsvol" / "leases" / "db"):
            world.clock.advance(6)
            a.leases.renew_due()
        assert writer.wait(timeout=10) == -9
    calls = (world.tmp / "h" / "umount.calls").read_text().splitlines()
    # The third frees it; a fourth may start before its death shows in /proc.
    assert len(calls) in (3, 4) and set(calls) == {f"-f --no-canonicalize {world.share_mount()}"}
    assert not sysrq.exists()
    assert "lost" in a.get("db").status["lease"]


@pytest.mark.parametrize("action, rebooted", [("reboot", True), ("log", False)])
def test_a_writer_that_outlives_its_fence_reboots_the_host(world, caplog, action, rebooted):
    """Still alive at the lease's end: the host resets itself, unless told only to log."""
    sysrq = world.tmp / "sysrq-trigger"
    fencer = Fencer(kill=lambda pid, sig: None, sysrq=str(sysrq))  # it never dies
    a = world.driver("a", fencer=fencer, lease_ttl=4, on_fence_failure=action)
    a.create("db", SINGLE)
    path = Path(a.mount("db", "c1"))
    with (
        user_of(path, world.tmp / "container") as writer,
        _renewals_fail(world.scratch / ".nfsvol" / "leases" / "db"),
    ):
        world.clock.advance(3)
        a.leases.renew_due()
        assert writer.poll() is None
    assert (sysrq.read_text() if sysrq.exists() else "") == ("b" if rebooted else "")
    assert f"pid {writer.pid} state" in caplog.text  # what it was doing instead of dying
    assert "outlived their fence" in caplog.text
