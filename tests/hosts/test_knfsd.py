"""Drills only Linux's own NFS server (knfsd) has: its grace period, a reboot, root_squash, NLM.

The drills both servers share (failover, a restart under writes, a stale
handle, the partition) are in their own modules, marked for both servers.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from testbed import IMAGE_TAG
from tests.hosts.conftest import run, unique
from tests.hosts.test_faults import WRITER, _done, _expected, _wait

pytestmark = [pytest.mark.hosts, pytest.mark.servers("knfsd")]
NFSVOL = ("--volume-driver", "nfsvol")
KERNEL_GRACE = 90  # nfsv4gracetime's default
UNTIL_LIMIT = 300  # how long a call is retried before the drill gives up on it
# util-linux's flock from the guest's own root, lent to the busybox container
# with the libraries it links (busybox has no flock).
FLOCK = ("-v", "/usr/bin/flock:/usr/bin/flock:ro",
         "-v", "/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:ro", "-v", "/lib64:/lib64:ro")  # fmt: skip


def _until_ok(call) -> dict:
    """Retry call() until its exit code is 0: the first answer, the attempts, the seconds."""
    started, attempts = time.monotonic(), 0
    while True:
        result = call()
        attempts += 1
        if attempts == 1:
            first = (result.returncode, result.stderr.strip()[-200:])
        if result.returncode == 0:
            return {"first": first, "attempts": attempts, "s": time.monotonic() - started}
        assert time.monotonic() - started < UNTIL_LIMIT, f"never worked: {result.stderr}"
        time.sleep(1)


def _grace_started(cluster) -> list[str]:
    said = cluster.server.guest.run(["dmesg"]).check().stdout.splitlines()
    return [line for line in said if "grace period" in line]


def _verify(cluster, volume: str, before: list[int]) -> list[int]:
    """Every file the writer fsynced is on the server's disk as written, in order."""
    done = _done(cluster, volume)
    assert done[: len(before)] == before and done == list(range(1, len(done) + 1))
    for i in done:
        assert (cluster.export_dir("main") / volume / f"f{i}").read_bytes() == _expected(i)
    return done


@pytest.mark.parametrize("grace", [KERNEL_GRACE, 10], ids=["grace-90s", "grace-10s"])
def test_a_restart_while_a_client_is_gone_holds_new_opens_for_the_grace_period(cluster, grace):
    """Host a dies holding a volume, then the server restarts: knfsd waits for a to reclaim.

    Until the grace period ends, b's running writer, a Create and a Mount on b
    wait (NFSv4 refuses new OPENs in grace); then each works with nothing lost.
    """
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    held, vol, ready, fresh = unique("gh"), unique("gw"), unique("gm"), unique("gc")
    writer, holder = unique("gwriter"), unique("gholder")
    a.docker("run", "-d", "--name", holder, "--network", "none", *NFSVOL, "-v", f"{held}:/data",
             IMAGE_TAG, "sh", "-c", "exec 3>/data/open; sleep 900")  # fmt: skip
    b.docker("run", "-d", "--name", writer, "--network", "none", *NFSVOL, "-v", f"{vol}:/data",
             IMAGE_TAG, "sh", "-c", WRITER)  # fmt: skip
    b.docker("volume", "create", "-d", "nfsvol", ready)
    try:
        _wait(lambda: len(_done(cluster, vol)) >= 3, 120, "three fsynced files on b")
        _wait(lambda: (cluster.export_dir("main") / held / "open").exists(), 60, "a's open")
        cluster.power_off("a")  # its open and its client stay on the server's books
        restart_s = cluster.server.restart(grace=grace)
        before = _done(cluster, vol)
        with ThreadPoolExecutor(max_workers=2) as pool:
            create = pool.submit(_until_ok, lambda: b.docker(
                "volume", "create", "-d", "nfsvol", fresh, check=False, timeout=300))  # fmt: skip
            mount = pool.submit(_until_ok, lambda: run(
                b, *NFSVOL, "-v", f"{ready}:/data", "echo m > /data/m", check=False))  # fmt: skip
            resumed = _wait(lambda: len(_done(cluster, vol)) > len(before) + 1, UNTIL_LIMIT,
                            "b's writer")  # fmt: skip
            created, mounted = create.result(), mount.result()
        began = [line for line in _grace_started(cluster) if "starting" in line]
        assert began and f"starting {grace}-second grace period" in began[-1], began
    finally:
        b.docker("rm", "-f", writer, timeout=120)
        if not a.running():
            cluster.boot("a")
        a.docker("rm", "-f", holder, timeout=120, check=False)
        if grace != KERNEL_GRACE:
            cluster.server.restart(grace=KERNEL_GRACE)
    done = _verify(cluster, vol, before)
    assert run(b, *NFSVOL, "-v", f"{ready}:/data", "cat /data/m").stdout == "m\n"
    for seconds in (created["s"], mounted["s"], resumed):
        assert seconds < grace + 60, (created, mounted, resumed)
    print(f"\n  knfsd restart ({restart_s:.1f}s) with a's client gone, grace {grace}s: "
          f"b's writer resumed after {resumed:.1f}s; Create worked after {created['s']:.1f}s "
          f"({created['attempts']} tries, first: {created['first']}); Mount after "
          f"{mounted['s']:.1f}s ({mounted['attempts']} tries, first: {mounted['first']}); "
          f"{len(done)} files verified")  # fmt: skip


def test_a_server_reboot_loses_no_fsynced_byte(cluster):
    """The server loses power under a writer: after its boot every fsynced file is there,
    the writer carries on by itself and a new Mount works."""
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    vol, writer, late = unique("rb"), unique("rbwriter"), unique("rblate")
    a.docker("run", "-d", "--name", writer, "--network", "none", *NFSVOL, "-v", f"{vol}:/data",
             IMAGE_TAG, "sh", "-c", WRITER)  # fmt: skip
    try:
        _wait(lambda: len(_done(cluster, vol)) >= 5, 120, "five fsynced files")
        boot_s = cluster.server.reboot()
        rebooted = time.monotonic()
        before = _done(cluster, vol)
        resumed = _wait(lambda: len(_done(cluster, vol)) >= len(before) + 3, 300, "the writer")
        mounted = _until_ok(lambda: run(b, *NFSVOL, "-v", f"{late}:/data",
                                        "echo late > /data/f", check=False))  # fmt: skip
    finally:
        a.docker("rm", "-f", writer, timeout=120)
    done = _verify(cluster, vol, before)
    assert (cluster.export_dir("main") / late / "f").read_text() == "late\n"
    print(f"\n  knfsd power-off and boot: serving again after {boot_s:.1f}s; the writer went "
          f"on {resumed:.1f}s after that ({len(before)} files before, {len(done)} verified); "
          f"a new Mount on b took {mounted['s']:.1f}s; {time.monotonic() - rebooted:.1f}s "
          "in all")  # fmt: skip


def test_root_squash_refuses_an_owner_and_names_the_fix(cluster):
    """On knfsd's default root_squash export, Create with uid fails clearly, changing
    nothing; a plain Create works and its containers write.

    Docker's copy-up into a new volume chowns it to the image's owner, which a
    squashed root may not do: that run fails in dockerd, as docs/operators.md says.
    """
    b = cluster.hosts["b"]
    name, copied = unique("sq"), unique("sqcopy")
    refused = b.docker("volume", "create", "-d", "nfsvol", "-o", "share=squashed",
                       "-o", "uid=1000", name, check=False)  # fmt: skip
    assert refused.returncode != 0 and "root_squash" in refused.stderr, refused.stderr
    assert f"{name}'" in refused.stderr, "the error names the volume's directory"
    assert not (cluster.export_dir("squashed") / name).exists()  # nothing half-made
    b.docker("volume", "create", "-d", "nfsvol", "-o", "share=squashed", name)
    # /vol is not in the image: nothing to copy up, so nothing to chown.
    assert run(b, "-v", f"{name}:/vol", "echo hi > /vol/f; cat /vol/f").stdout == "hi\n"
    assert (cluster.export_dir("squashed") / name / "f").read_text() == "hi\n"
    b.docker("volume", "create", "-d", "nfsvol", "-o", "share=squashed", copied)
    copy_up = run(b, "-v", f"{copied}:/data", "true", check=False)  # the image has /data
    assert copy_up.returncode != 0 and "operation not permitted" in copy_up.stderr, copy_up
    print(f"\n  root_squash refusal: {refused.stderr.strip()[-200:]}\n"
          f"  Docker's copy-up on it: {copy_up.stderr.strip()[-200:]}")  # fmt: skip


def test_nfsv3_locks_go_through_nlm_across_hosts(cluster):
    """A lock a container on a holds over NFSv3 keeps b's out; b's waiting lock is
    granted once a's container is gone."""
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    vol, holder = unique("nlm"), unique("nlmholder")
    a.docker("volume", "create", "-d", "nfsvol", "-o", "share=v3", vol)
    a.docker("run", "-d", "--name", holder, "--network", "none", *FLOCK, "-v", f"{vol}:/data",
             IMAGE_TAG, "flock", "/data/lock",
             "sh", "-c", "echo a > /data/holder; sleep 900")  # fmt: skip
    try:
        _wait(lambda: (cluster.export_dir("v3") / vol / "holder").exists(), 60, "a's lock")
        tried = run(b, *FLOCK, "-v", f"{vol}:/data", "flock -n /data/lock true", check=False)
        assert tried.returncode == 1, tried  # held elsewhere: refused, not granted
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(lambda: run(b, *FLOCK, "-v", f"{vol}:/data",
                                              "flock -w 200 /data/lock echo granted"))  # fmt: skip
            time.sleep(10)
            assert not waiting.done(), waiting.result()
            mounts = [line for line in cluster.nfs_mounts("b", "v3") if "vers=3" in line]
            released = time.monotonic()
            a.docker("rm", "-f", holder, timeout=120)
            granted = waiting.result(timeout=300)
            waited = time.monotonic() - released
    finally:
        a.docker("rm", "-f", holder, timeout=120, check=False)
    assert granted.stdout == "granted\n"
    assert mounts and all("nolock" not in line for line in mounts), mounts
    print(
        f"\n  NFSv3 lock on a refused b's try; b's waiting lock was granted {waited:.1f}s "
        "after a's container went"
    )
