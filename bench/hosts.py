"""Figures that need real NFS and dockerd: measured in the QEMU Docker hosts of the bed.

nfsvol is compared with what users would pick instead, on the same guest,
against the same ganesha server, interleaved run by run so drift hits both.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stats import PYTHON_LOOP, p50, timed_ms
from nfsvol.ops.listing import Progress
from testbed import IMAGE_TAG, prepare
from testbed.cluster import SERVER_IP, Cluster
from testbed.drill import READER, WRITER, run_drill, run_on_volume
from testbed.guest import DockerHost

LOCAL_NFS_OPTS = f"addr={SERVER_IP},vers=4.1,hard,nosuid,nodev"


def _run_ms(host: DockerHost, *mounts: str) -> float:
    args = ["run", "--rm", "--network", "none", *mounts, IMAGE_TAG, "true"]
    return timed_ms(lambda: host.docker(*args, timeout=600))


def _local_nfs_volume(host: DockerHost, cluster: Cluster, name: str) -> None:
    # Docker's own driver needs the export's subdirectory to exist already.
    (cluster.export_dir("main") / "local-driver" / name).mkdir(parents=True, exist_ok=True)
    host.docker(
        "volume", "create", "-d", "local", "-o", "type=nfs", "-o", f"o={LOCAL_NFS_OPTS}",
        "-o", f"device=:/export/main/local-driver/{name}", name,
    )  # fmt: skip


def _call_ms(cluster: Cluster, host: str, volume: str, endpoint: str = "Mount") -> list[float]:
    """Milliseconds of each successful `endpoint` call for `volume`, from the plugin's log."""
    return [
        float(call["ms"])
        for call in cluster.plugin_requests(host)
        if call["endpoint"] == endpoint and call["volume"] == volume and call["status"] == 200
    ]


def run_ratios(cluster: Cluster, runs: int, results: dict[str, Any]) -> None:
    """nfsvol vs local type=nfs, and nfsvol (share mounted) vs a plain local volume."""
    a = cluster.hosts["a"]
    a.docker("volume", "create", "-d", "nfsvol", "b-nfsvol")
    _local_nfs_volume(a, cluster, "b-localnfs")
    a.docker("volume", "create", "b-plain")
    cold, local_nfs = [], []
    bar = Progress(sys.stderr)
    for i in range(runs):
        bar.show(i, 2 * runs, "docker run: nfsvol vs local type=nfs")
        cold.append(_run_ms(a, "-v", "b-nfsvol:/data"))
        local_nfs.append(_run_ms(a, "-v", "b-localnfs:/data"))
    # dockerd may Mount more than once per run (20.10: at create, to look for
    # image content to copy up, then at start), so split by phase, not by run.
    cold_mounts = len(_call_ms(cluster, "a", "b-nfsvol"))
    cold_unmounts = len(_call_ms(cluster, "a", "b-nfsvol", "Unmount"))
    # A holder keeps the share mounted: the warm case every busy host is in.
    a.docker("run", "-d", "--name", "b-holder", "--network", "none", "--volume-driver",
             "nfsvol", "-v", "b-hold:/data", IMAGE_TAG, "sleep", "3600")  # fmt: skip
    warm, plain = [], []
    for i in range(runs):
        bar.show(runs + i, 2 * runs, "docker run: nfsvol (mounted) vs plain")
        warm.append(_run_ms(a, "-v", "b-nfsvol:/data"))
        plain.append(_run_ms(a, "-v", "b-plain:/data"))
    bar.close()
    a.docker("rm", "-f", "b-holder")
    mounts = _call_ms(cluster, "a", "b-nfsvol")
    unmounts = _call_ms(cluster, "a", "b-nfsvol", "Unmount")
    results["run_ratio_vs_local_nfs"] = round(p50(cold) / p50(local_nfs), 3)
    results["run_overhead_vs_plain_volume"] = round(p50(warm) / p50(plain), 3)
    results["mount_p50_ms_cold"] = round(p50(mounts[:cold_mounts]), 1)
    results["mount_p50_ms_warm"] = round(p50(mounts[cold_mounts:]), 1)
    # Cold, the last Unmount of the share runs umount; warm, the holder keeps it.
    results["unmount_p50_ms_cold"] = round(p50(unmounts[:cold_unmounts]), 1)
    results["unmount_p50_ms_warm"] = round(p50(unmounts[cold_unmounts:]), 1)
    results["mounts_per_run"] = round(len(mounts) / (2 * runs), 1)
    results["samples"].update(
        run_ms_nfsvol_cold=cold, run_ms_local_nfs=local_nfs, run_ms_nfsvol_warm=warm,
        run_ms_plain=plain, mount_ms=mounts, unmount_ms=unmounts,
    )  # fmt: skip


def mount_economy(cluster: Cluster, count: int, results: dict[str, Any]) -> None:
    """NFS mounts while `count` volumes of one share are in use, nfsvol vs local type=nfs."""
    a = cluster.hosts["a"]
    figures = {}
    for driver in ("nfsvol", "local"):
        names = [f"econ-{driver}-{i}" for i in range(count)]
        for name in names:
            if driver == "nfsvol":
                a.docker("volume", "create", "-d", "nfsvol", name)
            else:
                _local_nfs_volume(a, cluster, name)
        mounts = [arg for n in names for arg in ("-v", f"{n}:/v/{n}")]
        ctr = f"econ-{driver}"
        a.docker("run", "-d", "--name", ctr, "--network", "none", *mounts, IMAGE_TAG,
                 "sleep", "3600", timeout=900)  # fmt: skip
        # Only mounts of this share's export: other shares may be parked by a sync.
        mounts = [m for m in cluster.nfs_mounts("a") if ":/export/main" in m.split()[0]]
        figures[driver] = len(mounts)
        a.docker("rm", "-f", ctr, timeout=600)
    results["nfs_mounts_for_100_volumes"] = figures["nfsvol"]
    results["nfs_mounts_for_100_volumes_local_driver"] = figures["local"]
    results["volumes_in_use"] = count  # 100, or 10 with --quick


def emulation(cluster: Cluster, results: dict[str, Any]) -> None:
    """The same pure-Python workload in guest a: how much slower its CPU is than ours."""
    host = cluster.hosts["a"]
    runs = [host.run([host.python, "-I", "-S", "-c", PYTHON_LOOP], timeout=300) for _ in range(3)]
    results["python_loop_ms_guest"] = round(p50([float(r.check().stdout) for r in runs]), 1)


def failover(cluster: Cluster, results: dict[str, Any]) -> None:
    """Power-off of host a to data read on host b, beside a plain container start on b."""
    report = run_drill(cluster, say=lambda _line: None, restore=False)  # the bed goes next
    if not report.manifest_a or report.manifest_b != report.manifest_a:
        raise RuntimeError("the drill lost data: the figure would mean nothing")
    results["failover_s"] = round(report.failover_s, 1)
    results["plain_start_b_s"] = round(report.plain_start_b_s, 1)
    results["failover_vs_plain_start"] = round(report.failover_s / report.plain_start_b_s, 2)
    results["failover_wait_s"] = round(report.lease_wait_s, 1)  # listed, then free to mount
    results["failover_run_s"] = round(report.start_s, 1)  # the reader's docker run on b
    # b's Mount calls for the drill's volume: the reader's two (create, start), then web-b's.
    results["failover_mounts_ms_b"] = _call_ms(cluster, "b", report.volume)
    plain = _plain_read(cluster.hosts["b"])
    results["plain_read_b_s"] = round(plain, 1)
    results["failover_vs_plain_read"] = round(report.failover_s / plain, 2)
    # The same reader on the same NFS volume once more: the run's cost on b
    # without a dead host behind it, so failover_s minus it is the failover's own.
    reread = _read_s(cluster.hosts["b"], report.volume)
    results["reread_b_s"] = round(reread, 1)
    results["failover_vs_reread"] = round(report.failover_s / reread, 2)


def _plain_read(host: DockerHost) -> float:
    """Seconds for the drill's reader on a local volume holding the same files: like for like.

    The failover's own run mounts the share and hashes the files over NFS;
    a plain `true` start (plain_start_b_s) does neither.
    """
    volume = "bench-plain-read"
    host.docker("volume", "create", volume)
    try:
        run_on_volume(host, volume, WRITER)
        return _read_s(host, volume)
    finally:
        host.docker("volume", "rm", "-f", volume)


def _read_s(host: DockerHost, volume: str) -> float:
    """Seconds for one `docker run` of the drill's reader on `volume`."""
    return timed_ms(lambda: run_on_volume(host, volume, READER)) / 1000


def run(quick: bool, say: Any) -> dict[str, Any]:
    """Boot the bed, measure every guest figure, tear the bed down.

    --quick: 3 runs per kind instead of 10 and 10 volumes in use instead of 100,
    to finish in under 10 minutes; the run ratios are noisier for it.
    """
    results: dict[str, Any] = {"samples": {}}
    steps: dict[str, float] = {}
    results["hosts_step_s"] = steps
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="nfsvol-bench-hosts-")), prepare())
    try:
        started = time.monotonic()
        boots = cluster.start()
        results["host_boot_s"] = round(max(boots.values()), 1)
        _step(steps, "boot", started, say)
        measures: list[tuple[str, Callable[[], None]]] = [
            ("emulation", lambda: emulation(cluster, results)),
            ("run_ratios", lambda: run_ratios(cluster, 3 if quick else 10, results)),
            ("mount_economy", lambda: mount_economy(cluster, 10 if quick else 100, results)),
            ("failover", lambda: failover(cluster, results)),
        ]
        for name, measure in measures:
            started = time.monotonic()
            measure()
            _step(steps, name, started, say)
    finally:
        cluster.remove()
    return results


def _step(steps: dict[str, float], name: str, started: float, say: Any) -> None:
    steps[name] = round(time.monotonic() - started, 1)
    say(f"  {name} done in {steps[name]:.0f}s")
