"""Faults on the real bed: the server restarts or dies, the plugin or dockerd is killed.

Each drill says what "nothing lost" means for it and asserts exactly that,
against ganesha's disk where the data really lives.
"""

import json
import signal
import subprocess
import threading
import time

import pytest

from testbed import IMAGE_TAG
from testbed.cluster import HEALTH_INTERVAL, PLUGIN_CONFIG, SERVER_IP
from tests.hosts.conftest import run, unique, wait_released

pytestmark = pytest.mark.hosts

# File i holds "i\n" repeated to 64 KiB; "done" lists i once f<i> is fsynced.
WRITER = (
    "i=0; while true; do i=$((i+1)); "
    "yes $i | head -c 65536 | dd of=/data/f$i conv=fsync 2>/dev/null; "
    "echo $i | dd of=/data/done oflag=append conv=notrunc,fsync 2>/dev/null; done"
)
QUICK_CALLS = ("Get", "List", "Path", "Capabilities")
SLOW_HELPER = "/run/testbed/slow-mount.nfs"


def _expected(i: int) -> bytes:
    line = f"{i}\n".encode()
    return (line * (65536 // len(line) + 1))[:65536]


def _done(cluster, volume: str) -> list[int]:
    path = cluster.export_dir("main") / volume / "done"
    return [int(n) for n in path.read_text().split()] if path.exists() else []


def _wait(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what} not within {timeout}s"
        time.sleep(0.5)
    return time.monotonic() - started


def _timed(host, *args: str, check: bool = True):
    started = time.monotonic()
    result = host.docker(*args, check=check, timeout=120)
    return result, time.monotonic() - started


@pytest.mark.servers("ganesha", "knfsd")
def test_server_restart_during_writes(cluster):
    """fsync'd files survive a server restart byte for byte; the writer resumes by itself."""
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    name, writer, late = unique("rw"), unique("writer"), unique("late")
    a.docker("run", "-d", "--name", writer, "--network", "none", "--volume-driver", "nfsvol",
             "-v", f"{name}:/data", IMAGE_TAG, "sh", "-c", WRITER)  # fmt: skip
    b.docker("volume", "create", "-d", "nfsvol", late)
    try:
        _wait(lambda: len(_done(cluster, name)) >= 5, 120, "five fsynced files")
        cluster.server.stop()
        before = _done(cluster, name)
        # A Mount on b (share not mounted there) while the server is down.
        late_run: dict[str, object] = {}
        thread = threading.Thread(target=_run_late, args=(b, late, late_run))
        thread.start()
        time.sleep(5)
        cluster.server.start()
        resumed = _wait(lambda: len(_done(cluster, name)) >= len(before) + 5, 180, "writes")
        thread.join(120)
    finally:
        a.docker("rm", "-f", writer)
    done = _done(cluster, name)
    assert done[: len(before)] == before and done == list(range(1, len(done) + 1))
    for i in done:  # every fsynced file, as written
        assert (cluster.export_dir("main") / name / f"f{i}").read_bytes() == _expected(i)
    proc, seconds = late_run["proc"], late_run["seconds"]
    assert seconds < 60, f"the Mount during the restart took {seconds:.0f}s"
    assert proc.returncode == 0 or "nfsvol" in proc.stderr or "share 'main'" in proc.stderr
    print(f"\n  writer resumed {resumed:.1f}s after the restart; {len(done)} files verified; "
          f"Mount on b during the restart: rc {proc.returncode} in {seconds:.1f}s")  # fmt: skip


def _run_late(host, volume: str, out: dict[str, object]) -> None:
    started = time.monotonic()
    out["proc"] = run(
        host, "-v", f"{volume}:/data", "echo late > /data/f; cat /data/f", check=False
    )
    out["seconds"] = time.monotonic() - started


def _helper_ages(host) -> list[int]:
    """Seconds each running mount.nfs has been alive."""
    return [int(n) for n in host.run(["ps", "-C", "mount.nfs", "-o", "etimes="]).stdout.split()]


def test_plugin_killed_with_containers_running(cluster):
    """kill -9 of nfsvol: containers keep working, counts come back, nothing stays mounted."""
    a = cluster.hosts["a"]
    vols = [unique("k9") for _ in range(3)]
    ctrs = [unique("k9c") for _ in range(4)]
    pairs = list(zip(ctrs, [vols[0], vols[0], vols[1], vols[2]], strict=True))
    for ctr, vol in pairs:
        a.docker("run", "-d", "--name", ctr, "--network", "none", "--volume-driver", "nfsvol",
                 "-v", f"{vol}:/data", IMAGE_TAG, "sleep", "900")  # fmt: skip
    try:
        users = {v: _users(a, v) for v in vols}
        a.kill(-cluster.plugin_pids["a"], signal.SIGKILL)  # the whole process group
        for ctr, _ in pairs:
            a.docker("exec", ctr, "sh", "-c", f"echo {ctr} >> /data/log; cat /data/log")
        cluster.start_plugin(a)
        assert {v: _users(a, v) for v in vols} == users
        assert len(cluster.nfs_mounts("a", "main")) == 1
        for vol in vols:  # what the containers wrote while nfsvol was dead is on the server
            lines = (cluster.export_dir("main") / vol / "log").read_text().split()
            assert sorted(lines) == sorted(c for c, v in pairs if v == vol)
    finally:
        a.docker("rm", "-f", *ctrs)
    wait_released(cluster, "a", "main")
    for vol in vols:
        a.docker("volume", "rm", vol)
        assert not (cluster.export_dir("main") / vol).exists()


def _users(host, volume: str) -> str:
    return host.docker("volume", "inspect", "-f", "{{.Status.users}}", volume).stdout.strip()


@pytest.mark.parametrize(
    "live_restore, killed",
    [(False, False), (True, False), (False, True)],
    ids=["plain", "live-restore", "killed"],
)
def test_dockerd_restart(cluster, live_restore, killed):
    """Volumes stay listed, --restart always containers come back with their data, no leak.

    killed: dockerd and its containerd get SIGKILL, so no Unmount is ever
    sent for the container they lost; nfsvol must not count it twice.
    """
    a = cluster.hosts["a"]
    vol, gone, ctr = unique("dr"), unique("drx"), unique("drc")
    a.docker("volume", "create", "-d", "nfsvol", gone)  # never used by a container
    if live_restore:  # the daemon that stops must be the one running with live-restore
        a.restart_dockerd(live_restore=True)
    a.docker("run", "-d", "--name", ctr, "--restart", "always", "--network", "none",
             "--volume-driver", "nfsvol", "-v", f"{vol}:/data", IMAGE_TAG,
             "sh", "-c", "echo $$ >> /data/starts; sleep 900")  # fmt: skip
    _wait(lambda: (cluster.export_dir("main") / vol / "starts").exists(), 60, "the first start")
    if killed:
        began = time.monotonic()
        a.kill_dockerd()
        a.start_dockerd()
        seconds = time.monotonic() - began
    else:
        seconds = a.restart_dockerd(live_restore=live_restore)
    try:
        assert {vol, gone} <= set(a.docker("volume", "ls", "-q").stdout.split())
        _wait(lambda: _state(a, ctr) == "running", 120, "the container back")
        starts = (cluster.export_dir("main") / vol / "starts").read_text().split()
        assert len(starts) == (1 if live_restore else 2)  # live-restore: never restarted
        assert a.docker("exec", ctr, "cat", "/data/starts").stdout.split() == starts
        assert len(_users(a, vol).split()) == 1, _users(a, vol)  # one holder, not a leaked two
    finally:
        a.docker("rm", "-f", ctr)
        if live_restore:
            a.restart_dockerd(live_restore=False)
    _wait(lambda: cluster.nfs_mounts("a", "main") == [], 60, "the share released")
    a.docker("volume", "rm", vol, gone)
    how = "killed" if killed else "live-restore" if live_restore else "plain"
    print(f"\n  dockerd back in {seconds:.1f}s ({how})")


def _state(host, ctr: str) -> str:
    return host.docker("inspect", "-f", "{{.State.Status}}", ctr, check=False).stdout.strip()


@pytest.mark.servers("ganesha", "knfsd")
def test_stale_handle_is_remounted_without_an_operator(cluster):
    """The export is recreated under a mounted share: the monitor says so within its
    interval, and the next Mount mounts it afresh."""
    a = cluster.hosts["a"]
    vol, other, holder = unique("st"), unique("st2"), unique("sth")
    for name in (vol, other):
        a.docker("volume", "create", "-d", "nfsvol", "-o", "share=ft", name)
    run(a, "-v", f"{other}:/data", "echo before > /data/f")
    a.docker("run", "-d", "--name", holder, "--network", "none", "-v", f"{vol}:/data",
             IMAGE_TAG, "sleep", "900")  # fmt: skip
    try:
        cluster.recreate_share("ft")  # as from a backup; the server restarts too
        restarted = time.monotonic()
        target = "/var/lib/nfsvol/mnt/ft"
        probe = a.run(["stat", "-f", target])
        assert probe.rc != 0 and "Stale file handle" in probe.stderr, probe
        # One interval, one probe, and the time a docker inspect takes in the guest.
        _wait(lambda: _health(a, vol) == "stale", 2 * HEALTH_INTERVAL + 30, "stale noticed")
        noticed = time.monotonic() - restarted
        assert run(a, "-v", f"{other}:/data", "cat /data/f").stdout == "before\n"
        assert a.run(["stat", "-f", target]).rc == 0
        _wait(lambda: _health(a, vol) == "ok", 2 * HEALTH_INTERVAL + 30, "ok after the remount")
    finally:
        a.docker("rm", "-f", holder)
    warned = [line for line in cluster.plugin_log("a").splitlines() if "stale file handle" in line]
    assert warned, "nfsvol did not say it remounted a stale share"
    print(f"\n  the monitor reported the stale share {noticed:.1f}s after the server's restart")


def _health(host, volume: str) -> str:
    fmt = "{{if .Status.health}}{{.Status.health.state}}{{end}}"
    return host.docker("volume", "inspect", "-f", fmt, volume, timeout=60).stdout.strip()


def test_dockerd_before_the_plugin_never_runs_on_an_empty_volume(cluster):
    """A boot where dockerd comes up before nfsvol: the container waits for its real data."""
    a = cluster.hosts["a"]
    vol, ctr = unique("early"), unique("earlyc")
    a.docker("volume", "create", "-d", "nfsvol", vol)
    run(a, "-v", f"{vol}:/data", "echo real > /data/f")
    a.docker("run", "-d", "--name", ctr, "--restart", "always", "--network", "none",
             "-v", f"{vol}:/data", IMAGE_TAG, "sh", "-c", "cat /data/f; sleep 900")  # fmt: skip
    a.stop_dockerd()
    a.kill(-cluster.plugin_pids.pop("a"), signal.SIGTERM)
    _wait(lambda: a.run(["test", "-S", "/run/docker/plugins/nfsvol.sock"]).rc != 0, 60, "stop")
    try:
        a.start_dockerd(wait=0)  # dockerd first, as a boot may order them
        time.sleep(15)
        # Docker made no local stand-in for the volume in the meantime.
        assert a.run(["test", "-e", f"/var/lib/docker/volumes/{vol}"]).rc != 0
    finally:
        cluster.start_plugin(a)
    a.wait_dockerd()
    _wait(lambda: _state(a, ctr) == "running", 120, "the container back")
    logs = a.docker("logs", ctr).stdout
    assert logs == "real\nreal\n", logs  # both runs read the real volume, never an empty one
    driver = a.docker("inspect", "-f", "{{range .Mounts}}{{.Driver}}{{end}}", ctr).stdout
    assert driver.strip() == "nfsvol"
    a.docker("rm", "-f", ctr)


SIDE = "nfsvol-x"  # a second nfsvol on host b, for the exports only this module adds
SIDE_CONFIG = "/etc/nfsvol/side.yaml"


def test_server_down_nothing_hangs_and_it_recovers(cluster):
    """With ganesha stopped: quick calls answer, Create and Mount fail in budget, no restart after.

    A name no host has cached is asked of the share first (issue 22): that
    Get waits at most mount_timeout, once, and the log says why.
    """
    a = cluster.hosts["a"]
    held, idle, new, holder = unique("held"), unique("idle"), unique("new"), unique("holder")
    a.docker("volume", "create", "-d", "nfsvol", idle)
    a.docker("run", "-d", "--name", holder, "--network", "none", "--volume-driver", "nfsvol",
             "-v", f"{held}:/data", IMAGE_TAG, "sh", "-c", "echo kept > /data/f; sleep 900")  # fmt: skip
    budget = 20 * 2  # mount_timeout x (servers + 1) for share main in the bed's config
    lookup_wait = 20  # mount_timeout: a Get of a name not cached waits at most that
    # `run -d` returns before the shell has written: had the server gone down
    # first, its OPEN would finish only after the restart, racing the read below.
    kept = cluster.export_dir("main") / held / "f"
    _wait(lambda: kept.exists() and kept.read_text() == "kept\n", 60, "the holder's write")
    seen = len(cluster.plugin_requests("a"))
    cluster.server.stop()
    try:
        ls, ls_s = _timed(a, "volume", "ls", "-q")
        assert {held, idle} <= set(ls.stdout.split())
        _, ps_s = _timed(a, "ps")
        _, inspect_s = _timed(a, "volume", "inspect", held)
        created, create_s = _timed(a, "volume", "create", "-d", "nfsvol", new, check=False)
        assert created.returncode != 0 and "got no answer" in created.stderr, created.stderr
        assert create_s < lookup_wait + budget + 15
        mounted, mount_s = _timed(a, "run", "--rm", "--network", "none", "-v", f"{idle}:/data",
                                  IMAGE_TAG, "true", check=False)  # fmt: skip
        assert mounted.returncode != 0 and "share 'main'" in mounted.stderr, mounted.stderr
        assert mount_s < budget + 15
        _, ls2_s = _timed(a, "volume", "ls")
        calls = cluster.plugin_requests("a")[seen:]
        quick = [c for c in calls if c["endpoint"] in QUICK_CALLS and c["volume"] != new]
        assert quick and max(c["ms"] for c in quick) < 2000, quick
        misses = [c["ms"] for c in calls if c["endpoint"] == "Get" and c["volume"] == new]
        assert misses and max(misses) < (lookup_wait + 2) * 1000, misses
        said = cluster.plugin_log("a")
        why = ("gave no answer", "not asked", "cannot look up")
        assert any(w in said for w in why), said[-3000:]
        # Syncs retry the dead server once per catalog_ttl, but no mount.nfs
        # child lives past mount_timeout (20 s here): each is killed.
        ages = _helper_ages(a)
        assert max(ages, default=0) <= 20 + 5, ages
        cluster.server.start()
        # Back with no restart of anything: the holder's data, a new volume, a new Mount.
        assert a.docker("exec", holder, "cat", "/data/f", timeout=120).stdout == "kept\n"
        a.docker("volume", "create", "-d", "nfsvol", new, timeout=120)
        assert run(a, "-v", f"{new}:/data", "echo ok > /data/f; cat /data/f").stdout == "ok\n"
    finally:
        cluster.server.start()
        a.docker("rm", "-f", holder, timeout=120)
    _wait(lambda: cluster.nfs_mounts("a", "main") == [], 60, "the share released")
    slowest_quick = max(c["ms"] for c in quick)
    print(f"\n  server down: docker volume ls {ls_s:.1f}s/{ls2_s:.1f}s, ps {ps_s:.1f}s, "
          f"inspect {inspect_s:.1f}s, slowest Get/List/Path {slowest_quick:.0f} ms (plugin), "
          f"Get of a new name {max(misses):.0f} ms, "
          f"Create failed in {create_s:.1f}s, Mount failed in {mount_s:.1f}s")  # fmt: skip


def test_plugin_killed_between_the_mount_and_the_state_write(cluster):
    """A kill after the kernel mount but before nfsvol records it: restart unmounts it."""
    a = cluster.hosts["a"]
    name = unique("k9m")
    a.docker("volume", "create", "-d", "nfsvol", name)
    _wait(lambda: cluster.nfs_mounts("a", "main") == [], 60, "the share idle")
    # The real mount.nfs, then a pause: the window in which nfsvol has not written state.
    a.write_file(SLOW_HELPER, '#!/bin/sh\n/sbin/mount.nfs "$@" || exit $?\nsleep 30\n')
    a.run(["chmod", "755", SLOW_HELPER]).check()
    config = a.run(["cat", PLUGIN_CONFIG]).check().stdout
    slow = config.replace('"state_dir"', f'"mount_helper": "{SLOW_HELPER}",\n  "state_dir"')
    a.kill(-cluster.plugin_pids["a"], signal.SIGTERM)
    a.write_file(PLUGIN_CONFIG, slow)
    try:
        cluster.start_plugin(a)
        started = subprocess.Popen(
            [a.artifacts.engine.docker, "-H", f"tcp://127.0.0.1:{a.docker_port}", "run", "--rm", "--network",
             "none", "-v", f"{name}:/data", IMAGE_TAG, "true"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _wait(lambda: len(cluster.nfs_mounts("a", "main")) == 1, 90, "the kernel mount")
        a.kill(-cluster.plugin_pids["a"], signal.SIGKILL)
        _, err = started.communicate(timeout=120)
        assert started.returncode != 0, "the run cannot succeed: its Mount died"
    finally:
        a.write_file(PLUGIN_CONFIG, config)
    cluster.start_plugin(a)
    held = a.run(["sh", "-c", "cat /var/lib/nfsvol/users/main/*.json"]).stdout
    log = cluster.plugin_log("a")[-3000:]
    assert cluster.nfs_mounts("a", "main") == [], f"holders: {held}; log: {log}"
    assert _users(a, name) == "[]"
    assert run(a, "-v", f"{name}:/data", "echo after > /data/f; cat /data/f").stdout == "after\n"
    print(f"\n  the interrupted docker run said: {err.strip()[-200:]}")


@pytest.fixture(scope="module")
def side(cluster, tmp_path_factory):
    """Driver nfsvol-x on b: a root_squash export and an 8 MB export that can fill up."""
    root = tmp_path_factory.mktemp("side-exports")
    squashed, small = root / "squashed", root / "small"
    squashed.mkdir(mode=0o777)
    squashed.chmod(0o777)  # squashed root writes as nobody, as on a real squashed export
    small.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "nfsvol-small", str(small)], check=True
    )
    try:
        yield from _side_plugin(cluster, squashed, small)
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def _side_plugin(cluster, squashed, small):
    cluster.server.add_export("/squashed", squashed, root_squash=True)
    cluster.server.add_export("/small", small)
    cluster.server.restart()
    b = cluster.hosts["b"]
    share = {"type": "nfs", "servers": [SERVER_IP], "version": "4.1", "options": ["hard"]}
    config = {
        "state_dir": "/var/lib/nfsvol-x",
        "mount_timeout": 20,
        "default_share": "small",
        "shares": {
            "squashed": {**share, "export": "/squashed"},
            "small": {**share, "export": "/small"},
        },
    }
    b.write_file(SIDE_CONFIG, json.dumps(config))
    socket = f"/run/docker/plugins/{SIDE}.sock"
    try:
        pid = b.start_plugin(SIDE_CONFIG, socket, "/run/testbed/nfsvol-x.log")
        _wait(lambda: b.run(["test", "-S", socket]).rc == 0, 60, SIDE)
        yield {"host": b, "squashed": squashed, "small": small}
        b.kill(-pid, signal.SIGTERM)
    finally:
        for pseudo in ("/squashed", "/small"):
            cluster.server.exports.pop(pseudo)
        cluster.server.restart()


def test_root_squash_export_names_the_cause_and_the_fix(side, cluster):
    """Create with uid/gid on a root_squash export fails clearly; plain Create works."""
    b = side["host"]
    name = unique("sq")
    refused = b.docker("volume", "create", "-d", SIDE, "-o", "share=squashed", "-o", "uid=1000",
                       name, check=False)  # fmt: skip
    assert refused.returncode != 0 and "root_squash" in refused.stderr, refused.stderr
    assert f"{name}'" in refused.stderr, "the error names the volume's directory"
    assert not (side["squashed"] / name).exists()  # nothing half-made
    b.docker("volume", "create", "-d", SIDE, "-o", "share=squashed", name)
    assert run(b, "-v", f"{name}:/data", "echo hi > /data/f; cat /data/f").stdout == "hi\n"
    print(f"\n  root_squash refusal: {refused.stderr.strip()[-200:]}")


def test_full_export_enospc_and_recovery(side):
    """ENOSPC reaches containers; Create fails leaving nothing; existing files intact; recovers."""
    b, small = side["host"], side["small"]
    vol, new, holder = unique("full"), unique("new"), unique("fullh")
    b.docker("volume", "create", "-d", SIDE, vol)
    run(b, "-v", f"{vol}:/data", "yes kept | head -c 100000 > /data/keep; sync")
    kept = (small / vol / "keep").read_bytes()
    # A container holds the volume throughout, so its lease file on the export
    # is written before the fill and not freed after it: the export stays full.
    b.docker("run", "-d", "--name", holder, "--network", "none", "--volume-driver", SIDE,
             "-v", f"{vol}:/data", IMAGE_TAG, "sleep", "600")  # fmt: skip
    try:
        filled = run(b, "-v", f"{vol}:/data", "dd if=/dev/zero of=/data/fill bs=64k; sync",
                     check=False)  # fmt: skip
        assert "No space left on device" in filled.stderr, filled.stderr
        refused = b.docker("volume", "create", "-d", SIDE, new, check=False)
        assert refused.returncode != 0 and "No space left" in refused.stderr, refused.stderr
        assert not (small / new).exists()
        assert not (small / ".nfsvol" / "volumes" / f"{new}.json").exists()
        assert (small / vol / "keep").read_bytes() == kept
        run(b, "-v", f"{vol}:/data", "rm /data/fill")  # freed as a user would: through NFS
    finally:
        b.docker("rm", "-f", holder)
    b.docker("volume", "create", "-d", SIDE, new)
    assert run(b, "-v", f"{new}:/data", "echo ok > /data/f; cat /data/f").stdout == "ok\n"
    assert run(b, "-v", f"{vol}:/data", "cat /data/keep").stdout.encode() == kept
