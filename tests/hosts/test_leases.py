"""Leases and share health on the real bed: a partition, a takeover, a dead server.

Host a is cut off from the NFS server (its NFS packets dropped inside the
guest), not powered off: it keeps running and must stop writing by itself.
"""

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from testbed import IMAGE_TAG
from testbed.cluster import HEALTH_INTERVAL, LEASE_TTL, NFS_PORT, SECOND_IP, SERVER_IP
from testbed.drill import wait_listed
from tests.hosts.conftest import run, unique
from tests.hosts.test_faults import _wait

pytestmark = pytest.mark.hosts
NFSVOL = ("--volume-driver", "nfsvol")  # never a local stand-in for a volume not yet listed

# Rewrites the manifest over and over, each version fsynced: the request a
# partition catches (an open that truncates, or a write) is the one that
# must never land after the takeover.
WRITER = (
    "i=0; while true; do i=$((i+1)); echo a-$i | dd of=/data/manifest conv=fsync 2>/dev/null; done"
)


def _nfs_rule(cluster, action: str) -> list[str]:
    address, port = cluster.wire  # where the server's packets really go
    return ["iptables-legacy", action, "OUTPUT", "-p", "tcp", "-d", address,
            "--dport", str(port), "-j", "DROP"]  # fmt: skip


def _running(host, name: str) -> bool:
    state = host.docker("inspect", "-f", "{{.State.Running}}", name, check=False, timeout=60)
    return state.stdout.strip() == "true"


@pytest.mark.servers("ganesha", "knfsd")
def test_a_partitioned_holder_is_fenced_and_the_other_host_takes_over(cluster, drill_round):
    """single-host: b refused while a renews; after a's cut-off, a's writer dies, b takes over.

    `--drill-rounds N` runs it N times on one bed: the race it guards is rare.
    """
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    vol, writer, keeper = unique("db"), unique("writer"), unique("keeper")
    a.docker("volume", "create", "-d", "nfsvol", "-o", "access=single-host", vol)
    a.docker("run", "-d", "--name", writer, "--network", "none", "--volume-driver", "nfsvol",
             "-v", f"{vol}:/data", IMAGE_TAG, "sh", "-c", WRITER)  # fmt: skip
    manifest = cluster.export_dir("main") / vol / "manifest"
    _wait(lambda: manifest.exists() and manifest.read_text().startswith("a-"), 60, "a writing")
    assert wait_listed(b, vol), "b never listed the volume"
    assert _running(a, writer), a.docker("logs", writer, check=False).stderr
    refused = run(b, *NFSVOL, "-v", f"{vol}:/data", "true", check=False)
    assert refused.returncode != 0 and "held by host" in refused.stderr, refused.stderr
    holders = b.docker("volume", "inspect", "-f", "{{json .Status.holders}}", vol).stdout
    assert len(re.findall(r'"host"', holders)) == 1, holders
    a.run(_nfs_rule(cluster, "-I")).check()
    cut = time.monotonic()
    try:
        # b retries from the cut on, as a restart policy or Swarm would, while
        # this thread watches a's writer: the kill must come before b's first write.
        # A writer that cannot die makes a reboot itself (on_fence_failure):
        # that too ends it before b may write.
        with ThreadPoolExecutor(max_workers=1) as pool:
            taking = pool.submit(_take_over, b, vol, cut)
            gone = lambda: not a.running() or not _running(a, writer)  # noqa: E731
            fenced = _wait(gone, 4 * LEASE_TTL + 30, "a's fence")
            took, takeover = taking.result()
        assert fenced < takeover, (
            f"b wrote {takeover:.1f}s after the cut, a fenced at {fenced:.1f}s"
        )
        assert took.stdout == "b-1\n"
        assert manifest.read_text() == "b-1\n"
        reset = not a.running()
        if not reset:
            exit_code = a.docker("inspect", "-f", "{{.State.ExitCode}}", writer).stdout.strip()
            assert exit_code == "137", f"a's writer exited {exit_code}, not killed by the fence"
            # Its next dd's open(O_TRUNC) sat in TCP's queue all along: the fence
            # must drop it with the connection before the partition heals. Either
            # the fence cut a's connections, or its umount -f went through (the
            # share had no other user) and the kernel closed them as it let go.
            _wait_for_line(cluster, r"dropped [1-9]\d* connection|force-unmounted")
    finally:
        steps = _fence_lines(cluster.plugin_log("a"), vol)  # kept on this machine: a may be down
        print(f"\n  round {drill_round}: a's fence\n  " + "\n  ".join(steps))
        if a.running():
            a.run(_nfs_rule(cluster, "-D"))
        else:
            cluster.boot("a")  # it reset itself: its rules and queues died with it
    if reset:
        drained = 0.0
    else:
        # a is back on the network: nothing it queued may overwrite b's manifest.
        # TCP's backed-off retransmission (up to 2 min) is when queued bytes would land.
        drained = _wait(
            lambda: a.unsent(cluster.server_ip, NFS_PORT) == 0, 180, "a's queue to drain"
        )
    time.sleep(LEASE_TTL)
    assert manifest.read_text() == "b-1\n"
    b.docker("run", "-d", "--name", keeper, "--network", "none", *NFSVOL, "-v", f"{vol}:/data",
             IMAGE_TAG, "sleep", "600")  # fmt: skip
    try:
        again = run(a, *NFSVOL, "-v", f"{vol}:/data", "true", check=False)
        assert again.returncode != 0 and "held by host" in again.stderr, again.stderr
    finally:
        b.docker("rm", "-f", keeper, timeout=120)
        a.docker("rm", "-f", writer, timeout=120, check=False)
    print(f"\n  round {drill_round}, lease_ttl {LEASE_TTL}s: a's writer gone {fenced:.1f}s "
          f"after the cut{' (a rebooted itself)' if reset else ''}, b took over "
          f"{takeover:.1f}s after it; a refused afterwards; a's queue empty {drained:.1f}s "
          "after a reconnected")  # fmt: skip


def _fence_lines(log: str, vol: str) -> list[str]:
    """The fence's lines in a plugin log from `vol`'s first failed renewal on: its
    steps, their times, what survived."""
    keep = r"lease renewal failed|lease lost|fence|umount -f|force-unmounted|dropped \d+ conn"
    lines = [line for line in log.splitlines() if re.search(keep, line)]
    first = next((i for i, line in enumerate(lines) if vol in line), len(lines))
    return lines[first:]


def _wait_for_line(cluster, pattern: str) -> list[str]:
    """a's plugin log lines matching `pattern`, waiting out a umount -f's timeout."""
    deadline = time.monotonic() + cluster.config["mount_timeout"] + 30
    while True:
        log = cluster.plugin_log("a").splitlines()
        found = [line for line in log if re.search(pattern, line)]
        if found or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert found, "a's fence dropped no connection to the server:\n" + "\n".join(
        line for line in log if "nfsvol.requests" not in line
    )
    return found


def _take_over(b, vol: str, cut: float):
    """Retry b's writing container until its Mount is accepted; (result, seconds since cut)."""
    while True:
        took = run(b, *NFSVOL, "-v", f"{vol}:/data",
                   "echo b-1 | dd of=/data/manifest conv=fsync 2>/dev/null; cat /data/manifest",
                   check=False)  # fmt: skip
        if took.returncode == 0:
            return took, time.monotonic() - cut
        assert "held by host" in took.stderr, took.stderr
        assert time.monotonic() - cut < 4 * LEASE_TTL + 60, "b never took over"
        time.sleep(1)


def test_the_monitor_notices_a_dead_server_and_its_return(cluster):
    """Server stopped: Status says unreachable within the interval; back to ok once it returns."""
    a = cluster.hosts["a"]
    vol, holder = unique("health"), unique("holder")
    a.docker("volume", "create", "-d", "nfsvol", vol)
    a.docker("run", "-d", "--name", holder, "--network", "none", *NFSVOL, "-v", f"{vol}:/data",
             IMAGE_TAG, "sleep", "600")  # fmt: skip

    def health() -> str:
        fmt = "{{if .Status.health}}{{.Status.health.state}}{{end}}"
        return a.docker("volume", "inspect", "-f", fmt, vol, timeout=60).stdout.strip()

    try:
        _wait(lambda: health() == "ok", 3 * HEALTH_INTERVAL + 30, "the first probe")
        cluster.server.stop()
        stopped = time.monotonic()
        try:
            noticed = _wait(lambda: health() == "unreachable", 60, "the dead server noticed")
        finally:
            cluster.server.start()
        back = _wait(lambda: health() == "ok", 120, "the server's return noticed")
    finally:
        a.docker("rm", "-f", holder, timeout=120)
    print(
        f"\n  health_interval {HEALTH_INTERVAL}s: dead server noticed after {noticed:.1f}s, "
        f"its return {back:.1f}s after the restart ({time.monotonic() - stopped:.0f}s in all)"
    )


def test_new_mounts_land_on_the_second_server_when_the_first_dies(cluster):
    """Share "ha" lists two ganeshas in front of one disk; the first is stopped.

    The monitor sees the mount unreachable; once its last container is gone
    the hung mount is detached, and the next Mount goes to the second
    server: Status and metrics name it, and the data is all there.
    """
    a = cluster.hosts["a"]
    vol, holder, holder2 = unique("ha"), unique("ha-holder"), unique("ha-holder")
    a.docker("volume", "create", "-d", "nfsvol", "-o", "share=ha", vol)
    a.docker("run", "-d", "--name", holder, "--network", "none", *NFSVOL, "-v", f"{vol}:/data",
             IMAGE_TAG, "sh", "-c", "echo written-via-first > /data/f; sleep 600")  # fmt: skip

    def status(field: str) -> str:
        fmt = f"{{{{if .Status.{field}}}}}{{{{.Status.{field}}}}}{{{{end}}}}"
        return a.docker("volume", "inspect", "-f", fmt, vol, timeout=60).stdout.strip()

    def health() -> str:
        return status("health.state")

    def serving(server: str) -> bool:
        return f'nfsvol_share_server{{server="{server}",share="ha"}} 1.0' in cluster.metrics("a")

    cluster.second.start()
    try:
        _wait(lambda: health() == "ok", 3 * HEALTH_INTERVAL + 30, "the first probe")
        assert status("server") == SERVER_IP and serving(SERVER_IP)
        cluster.server.stop()
        stopped = time.monotonic()
        try:
            noticed = _wait(lambda: health() == "unreachable", 60, "the dead server noticed")
            a.docker("rm", "-f", holder, timeout=120)
            gone = _wait(lambda: cluster.nfs_mounts("a", "ha") == [], 120, "the hung mount gone")
            began = time.monotonic()
            a.docker("run", "-d", "--name", holder2, "--network", "none", *NFSVOL,
                     "-v", f"{vol}:/data", IMAGE_TAG, "sh", "-c",
                     "cat /data/f > /data/seen; sleep 600", timeout=240)  # fmt: skip
            seen = cluster.export_dir("ha") / vol / "seen"
            _wait(lambda: seen.exists() and seen.read_text() != "", 60, "the read on the second")
            mount_s = time.monotonic() - began
            assert seen.read_text() == "written-via-first\n"
            assert status("server") == SECOND_IP
            mounts = cluster.nfs_mounts("a", "ha")
            assert len(mounts) == 1 and mounts[0].startswith(f"{SECOND_IP}:"), mounts
            assert serving(SECOND_IP) and not serving(SERVER_IP)
            assert f'nfsvol_mount_failures_total{{server="{SERVER_IP}"}}' in cluster.metrics("a")
        finally:
            cluster.server.start()
    finally:
        a.docker("rm", "-f", holder, holder2, check=False, timeout=120)
        _wait(lambda: cluster.nfs_mounts("a", "ha") == [], 120, "the share released")
        cluster.second.stop()
    a.docker("volume", "rm", vol)
    print(
        f"\n  first server stopped: unreachable after {noticed:.1f}s, hung mount detached "
        f"{gone:.1f}s later (after the holder left); the next Mount fell through to the "
        f"second server: docker run took {mount_s:.1f}s ({time.monotonic() - stopped:.0f}s in all)"
    )
