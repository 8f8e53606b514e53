"""Figures from nfsvol itself on this machine: Get, List, throughput and memory.

The plugin runs as in production (`nfsvol serve`, gunicorn, unix socket)
with a `path` share on local disk, so the figures are nfsvol's own cost
without any server latency.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.stats import PYTHON_LOOP, cpu_seconds, p50, p95, sample_ms
from tests.support.plugin import PluginClient, PluginProcess, children

VOLUMES = 10_000  # the count the figures are named for (get_p50_ms_10k, ...)


def path_share_config(root: Path) -> dict[str, Any]:
    """nfsvol's config for the benchmarks: one `path` share on local disk under `root`."""
    (root / "share").mkdir()
    return {
        "state_dir": str(root / "state"),
        "shares": {"main": {"type": "path", "path": str(root / "share")}},
    }


def volume_names(count: int) -> list[str]:
    """The benchmark's volume names, the same in every phase: vol00000, vol00001, ..."""
    return [f"vol{i:05d}" for i in range(count)]


def create_volumes(client: PluginClient, names: list[str]) -> None:
    """Create `names` through the plugin's socket, eight at a time."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        for status, body in pool.map(lambda n: client.call("Create", Name=n), names):
            if status != 200:
                raise RuntimeError(f"Create failed: {body}")


def _memory_mb(processes: list[int], field: str) -> float:
    """Sum of `field` (Rss or Pss) over `processes` (the gunicorn master and its workers).

    Rss counts pages the forked workers share with the master once per
    process; Pss splits each shared page between its sharers.
    """
    total_kb = 0
    for p in processes:
        for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
            if line.startswith(f"{field}:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def _hammer(socket_path: str, name: str, seconds: float, queue: Any) -> None:
    # A lean client (prebuilt request, keep-alive, raw socket) so that on two
    # cores the load generator does not eat the CPU the plugin is measured on.
    body = json.dumps({"Name": name}).encode()
    request = (
        b"POST /VolumeDriver.Get HTTP/1.1\r\nHost: plugin\r\n"
        b"Accept: application/vnd.docker.plugins.v1.2+json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(socket_path)
    deadline = time.monotonic() + seconds
    done = 0
    while time.monotonic() < deadline:
        sock.sendall(request)
        if not _read_response(sock).startswith(b"HTTP/1.1 200"):
            raise RuntimeError("Get failed under load")
        done += 1
    sock.close()
    queue.put(done)


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += sock.recv(65536)
    return head


def get_rps(
    socket_path: str, name: str, clients: int, seconds: float, plugin: list[int]
) -> dict[str, float]:
    """Get requests per second with `clients` concurrent client processes.

    The clients run on the same cores, so the plugin's own CPU time over the
    window is measured too: requests per plugin CPU-second, times the cores,
    is what the plugin could serve with the cores to itself.
    """
    queue: Any = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_hammer, args=(socket_path, name, seconds, queue))
        for _ in range(clients)
    ]
    cpu_before = cpu_seconds(plugin)
    for proc in procs:
        proc.start()
    total = sum(int(queue.get(timeout=seconds + 60)) for _ in procs)
    cpu = cpu_seconds(plugin) - cpu_before
    for proc in procs:
        proc.join(timeout=30)
    return {
        "get_rps_8_clients": round(total / seconds, 1),
        "get_rps_plugin_cpu_share": round(cpu / (seconds * (os.cpu_count() or 1)), 2),
        "get_per_plugin_cpu_s": round(total / cpu, 1),
    }


def mount_cycle(client: PluginClient, name: str) -> None:
    """One Mount and its Unmount, as a container start and stop send them."""
    client.ok("Mount", Name=name, ID="bench")
    client.ok("Unmount", Name=name, ID="bench")


def python_loop_ms() -> float:
    """A fixed pure-Python workload here, to compare with the same in a guest."""
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PYTHON_LOOP], capture_output=True, text=True, check=True
    )
    return float(out.stdout)


@contextlib.contextmanager
def plugin_on_path_share() -> Iterator[PluginProcess]:
    """nfsvol served as in production, with one `path` share; stopped and removed after."""
    with tempfile.TemporaryDirectory(prefix="nfsvol-bench-") as tmp:
        root = Path(tmp)
        plugin = PluginProcess(path_share_config(root), root, {})
        plugin.start()
        try:
            yield plugin
        finally:
            plugin.stop()


def run(plugin: PluginProcess, quick: bool, say: Any) -> dict[str, Any]:
    """Fill `plugin` to VOLUMES volumes, measuring on the way; return figures and samples."""
    sizes = [100, 1000, VOLUMES]
    rounds = 200 if quick else 1000
    results: dict[str, Any] = {"list_scaling": {}, "samples": {}}
    client = PluginClient(plugin.socket_path)
    warm_list = PluginClient(plugin.socket_path, keep_alive=True)
    made = 0
    for size in sizes:
        started = time.monotonic()
        create_volumes(client, volume_names(size)[made:])
        say(f"  created {size - made} volumes in {time.monotonic() - started:.1f}s")
        made = size
        lists = sample_ms(lambda: warm_list.ok("List"), 20 if quick else 50)
        results["list_scaling"][str(size)] = round(p50(lists), 2)
        results["samples"][f"list_ms_{size}"] = lists
    warm = PluginClient(plugin.socket_path, keep_alive=True)  # as dockerd connects
    gets = sample_ms(lambda: warm.ok("Get", Name="vol05000"), rounds)
    paths = sample_ms(lambda: warm.ok("Path", Name="vol05000"), rounds)
    cold = sample_ms(lambda: client.ok("Get", Name="vol05000"), rounds)
    results["get_p50_ms_10k_new_connection"] = round(p50(cold), 3)
    results["get_p50_ms_10k"] = round(p50(gets), 3)
    results["get_p95_ms_10k"] = round(p95(gets), 3)
    results["path_p50_ms_10k"] = round(p50(paths), 3)
    # A name no share has: dockerd's probe for every new local or anonymous
    # volume name. It is looked up on the share (issue 22), never answered
    # from the cache; here on local disk, so this is nfsvol's own cost.
    absent = iter(range(10**9))
    misses = sample_ms(lambda: warm.call("Get", Name=f"absent{next(absent)}"), rounds)
    results["get_miss_p50_ms_10k"] = round(p50(misses), 3)
    results["samples"]["get_miss_ms_10k"] = misses
    mounts = sample_ms(lambda: mount_cycle(warm, "vol05000"), rounds // 2)
    results["mount_unmount_p50_ms_native"] = round(p50(mounts), 3)
    results["samples"]["mount_unmount_ms_native"] = mounts
    results["python_loop_ms_native"] = round(python_loop_ms(), 1)
    results["list_p50_ms_10k"] = results["list_scaling"][str(VOLUMES)]
    results["samples"]["get_ms_10k"] = gets
    pid = plugin.proc.pid if plugin.proc else 0
    processes = [pid, *children(pid)]  # the gunicorn master and its workers
    seconds = 5 if quick else 15
    results.update(get_rps(plugin.socket_path, "vol05000", 8, seconds, processes))
    results["rss_mb_10k"] = round(_memory_mb(processes, "Rss"), 1)
    results["pss_mb_10k"] = round(_memory_mb(processes, "Pss"), 1)
    results["workers"] = len(processes) - 1
    results["cpus"] = os.cpu_count()
    return results
