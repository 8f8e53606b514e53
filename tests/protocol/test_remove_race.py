"""Remove on host a racing Mount on host b, through two real plugins on one share.

Two `nfsvol serve` processes, each with its own host name (a UTS
namespace) and state directory, share one path share, as two machines
share an export. Each pair creates a volume on a, lets b see it, then
releases a's Remove and b's Mount at once. Whatever the interleaving,
never may both succeed: a Remove that wins leaves b holding nothing, a
Mount that wins keeps the volume and makes the Remove fail as in use.
"""

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.fakes.servers import MOUNT_HELPER
from tests.support.plugin import PluginClient, PluginProcess

# Pairs raced in all. 2,000 take about a minute here (two CPUs shared with
# other work); each pair is a Create, a Get, the race, and the clean-up.
PAIRS = 2000


def plugin(tmp: Path, host: str, share: Path) -> PluginProcess:
    work = tmp / host
    work.mkdir()
    config = {
        "state_dir": str(work / "state"),
        "default_share": "shared",
        "mount_helper": MOUNT_HELPER,
        "umount_helper": "/usr/bin/umount",
        "mount_timeout": 4,
        # A miss on b reads the share at once: the volume was just made on a.
        "catalog_ttl": 0.001,
        "shares": {"shared": {"type": "path", "path": str(share), "on_remove": "delete"}},
    }
    return PluginProcess(config, work, {}, host=host)


@contextlib.contextmanager
def two_hosts(tmp: Path) -> Iterator[tuple[PluginClient, PluginClient, Path]]:
    share = tmp / "export"
    share.mkdir()
    a, b = plugin(tmp, "host-a", share), plugin(tmp, "host-b", share)
    # Keep-alive, one connection per thread: dockerd's client, and fast.
    clients = PluginClient(a.socket_path, True), PluginClient(b.socket_path, True)
    try:
        a.start()
        b.start()
        yield *clients, share
    finally:
        for client in clients:
            client.close()
        a.kill()
        b.kill()


def race(pool: ThreadPoolExecutor, a: PluginClient, b: PluginClient, name: str, mid: str):
    start = threading.Barrier(2)

    def remove():
        start.wait()
        return a.call("Remove", Name=name)

    def mount():
        start.wait()
        return b.call("Mount", Name=name, ID=mid)

    removed, mounted = pool.submit(remove), pool.submit(mount)
    return removed.result(), mounted.result()


# How a Mount that lost to a Remove may fail: it saw the marker, or the
# Remove had finished. Anything else (say "metadata but no directory")
# means the Mount checked the volume while it was being disposed of.
LOST_MOUNT = ("being removed by host 'host-a'", "was removed from share")


def test_remove_and_mount_racing_on_two_hosts_never_both_succeed(tmp_path):
    outcomes: Counter[str] = Counter()
    violations: list[str] = []
    with two_hosts(tmp_path) as (a, b, share), ThreadPoolExecutor(2) as pool:
        meta = share / ".nfsvol"
        for i in range(PAIRS):
            name, mid = f"v{i}", f"ctr{i}"
            a.ok("Create", Name=name)
            b.ok("Get", Name=name)
            (r_status, r_body), (m_status, m_body) = race(pool, a, b, name, mid)
            remove_ok, mount_ok = r_status == 200, m_status == 200
            b_lease = meta / "leases" / name / "host-b.json"
            if remove_ok and mount_ok:
                outcomes["both succeeded"] += 1
                gone = not (share / name).is_dir()
                violations.append(f"{name}: both succeeded; dir gone under b's mount: {gone}")
                b.call("Unmount", Name=name, ID=mid)
            elif mount_ok:
                outcomes["mount won"] += 1
                assert (meta / "volumes" / f"{name}.json").is_file(), name
                assert (share / name).is_dir(), name
                assert "held by host 'host-b'" in r_body["Err"], (name, r_body)
                b.ok("Unmount", Name=name, ID=mid)
                a.ok("Remove", Name=name)
            elif remove_ok:
                outcomes["remove won"] += 1
                if not any(text in m_body["Err"] for text in LOST_MOUNT):
                    violations.append(f"{name}: Mount raced the disposal: {m_body['Err']}")
                assert not b_lease.exists(), name
            else:
                outcomes["both failed"] += 1
                assert not b_lease.exists(), name
                a.ok("Remove", Name=name)  # a clean failure: the retry works
            assert not (share / name).exists(), name
            assert not (meta / "removing" / f"{name}.json").exists(), name
    print(f"\n  {PAIRS} pairs: {dict(outcomes)}, violations {len(violations)}")
    assert not violations, violations[:10]
