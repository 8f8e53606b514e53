"""Load the plugin must hold: bursts, races between hosts, long runs, a dead server.

The figures each test prints (leaks, answer times) are what the fault issue's
table reports; the assertions are the guarantees, not speed targets.
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.fakes.servers import mounted_below
from tests.protocol.conftest import plugin_config
from tests.support.plugin import PluginProcess, children

QUICK = ("Get", "List", "Path", "Capabilities")


def test_hundreds_of_concurrent_creates(served):
    """300 Creates from 24 clients: every volume once, directory and metadata both.

    24, not 32: gunicorn may hand every connection to one worker, and a
    worker lets at most threads - 4 (28) calls wait on shares at once; more
    are refused by design (see Shares.bounded_work), which is not what this tests.
    """
    names = [f"burst{i:03d}" for i in range(300)]
    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(lambda n: served.client.call("Create", Name=n), names))
    assert [r for r in results if r != (200, {})] == []
    assert sorted(v["Name"] for v in served.client.ok("List")["Volumes"]) == names
    on_share = sorted(os.listdir(served.export / ".nfsvol" / "volumes"))
    assert on_share == [f"{n}.json" for n in names]
    assert all((served.export / n).is_dir() for n in names)


def test_one_name_created_from_two_hosts_at_once(served, tmp_path):
    """Dozens of Creates of one name from two hosts: one volume, one intact record."""
    other = tmp_path / "host-b"
    other.mkdir()
    config = {**plugin_config(tmp_path, served.scratch), "state_dir": str(other / "state")}
    host_b = PluginProcess(config, other, served.servers.env)
    client_b = host_b.start()
    try:
        clients = [served.client, client_b] * 24
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda c: c.call("Create", Name="contested"), clients))
        assert [r for r in results if r != (200, {})] == []
        records = os.listdir(served.export / ".nfsvol" / "volumes")
        assert records == ["contested.json"]
        record = (served.export / ".nfsvol" / "volumes" / "contested.json").read_text()
        assert '"name": "contested"' in record and record.count("{") == record.count("}")
        assert [e for e in os.listdir(served.export) if e.startswith("contested")] == ["contested"]
        for c in (served.client, client_b):
            assert c.ok("Get", Name="contested")["Volume"]["Name"] == "contested"
    finally:
        host_b.kill()


def _resources(pid: int) -> dict[str, int]:
    """Open fds, threads and resident kB of the plugin and its workers, at rest.

    The least of a few samples: a background tick (lease renewal, health
    probe) briefly holds a state file or a thread of its own.
    """
    samples = []
    for _ in range(5):
        samples.append(_sample(pid))
        time.sleep(0.05)
    return {key: min(s[key] for s in samples) for key in samples[0]}


def _sample(pid: int) -> dict[str, int]:
    pids = [pid, *children(pid)]
    out = {"fds": 0, "threads": 0, "rss_kb": 0}
    for p in pids:
        out["fds"] += len(os.listdir(f"/proc/{p}/fd"))
        status = Path(f"/proc/{p}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status)
        out["threads"] += int(fields["Threads"])
        out["rss_kb"] += int(fields["VmRSS"].split()[0])
    return out


def test_a_thousand_mount_cycles_leak_nothing(served):
    """1,000 Mount/Unmount cycles: mounts, fds, threads and memory back to their baseline."""
    c = served.client
    c.ok("Create", Name="cycled")
    c.ok("Create", Name="anchor")
    c.ok("Mount", Name="anchor", ID="anchor")  # keeps the share mounted: cycles stay cheap
    for i in range(50):  # warm every thread of both workers
        c.ok("Mount", Name="cycled", ID=f"w{i}")
        c.ok("Unmount", Name="cycled", ID=f"w{i}")
    before = _resources(served.process.proc.pid)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: _cycle(c, i), range(1000)))
    seconds = time.monotonic() - started
    after = _resources(served.process.proc.pid)
    assert c.ok("Get", Name="cycled")["Volume"]["Status"]["users"] == []
    held = [served.state_dir / "mnt" / "main", served.state_dir / "vol" / "main" / "anchor"]
    assert mounted_below(served.state_dir) == [str(p) for p in held]  # no pin of "cycled" left
    assert after["fds"] == before["fds"], (before, after)
    assert after["threads"] <= before["threads"] + 2 * 32, (before, after)  # pools may fill up
    assert after["rss_kb"] - before["rss_kb"] < 10 * 1024, (before, after)
    c.ok("Unmount", Name="anchor", ID="anchor")
    assert served.wait_unmounted() == []  # after idle_unmount
    print(f"\n  1000 cycles in {seconds:.1f}s; before {before}, after {after}")


def _cycle(client, i: int) -> None:
    client.ok("Mount", Name="cycled", ID=f"c{i}")
    client.ok("Unmount", Name="cycled", ID=f"c{i}")


def test_mounts_to_a_dead_server_never_starve_get_and_list(served):
    """More Mounts to a hung server than the plugin has threads: quick calls still answer."""
    c = served.client
    c.ok("Create", Name="stranded")
    assert served.wait_unmounted() == []
    served.servers.hang("nfs1")
    served.servers.hang("nfs2")
    slow: list[float] = []

    def quick_calls() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            endpoint = QUICK[len(slow) % len(QUICK)]
            started = time.monotonic()
            status, _ = c.call(endpoint, Name="stranded")
            slow.append(time.monotonic() - started)
            assert status == 200, endpoint

    with ThreadPoolExecutor(max_workers=80) as pool:
        mounts = [pool.submit(c.call, "Mount", Name="stranded", ID=f"m{i}") for i in range(72)]
        time.sleep(1)  # every request thread that may wait is waiting now
        quick_calls()
        results = [m.result() for m in mounts]
    assert all(status == 500 for status, _ in results), results
    assert max(slow) < 2, f"slowest quick call {max(slow):.2f}s"
    assert c.ok("Get", Name="stranded")["Volume"]["Status"]["users"] == []
    served.servers.live("nfs1")
    deadline = time.monotonic() + 30
    while served.servers.helpers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert served.servers.helpers() == []
    assert c.ok("Mount", Name="stranded", ID="after")["Mountpoint"].endswith("/stranded")
    refused = sum("calls are already waiting" in body["Err"] for _, body in results)
    print(f"\n  {len(slow)} quick calls during 72 stuck Mounts: slowest {max(slow) * 1000:.0f} ms; "
          f"{refused} Mounts refused at once, {len(results) - refused} timed out")  # fmt: skip


def test_a_stopped_plugin_leaves_no_helper_of_a_stuck_mount_behind(served):
    """Stopped while Mounts wait on a hung server: its mount helpers end with it."""
    c = served.client
    c.ok("Create", Name="stranded")
    assert served.wait_unmounted() == []
    served.servers.hang("nfs1")
    served.servers.hang("nfs2")
    with ThreadPoolExecutor(max_workers=3) as pool:
        for i in range(3):  # answered with an error or a dropped connection: either will do
            pool.submit(c.call, "Mount", Name="stranded", ID=f"m{i}")
        deadline = time.monotonic() + 10
        while not served.servers.helpers() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert served.servers.helpers() != [], "no Mount reached its helper"
        served.process.stop()
    deadline = time.monotonic() + 3  # SIGKILLed helpers are gone in a moment; hung ones in an hour
    while served.servers.helpers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert served.servers.helpers() == []
