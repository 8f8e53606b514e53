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

from bench.stats import PYTHON_LOOP, nfs_rpcs, nfs_rpcs_by_op, p50, rotated, timed_ms
from nfsvol.ops.listing import Progress
from testbed import IMAGE_TAG, prepare
from testbed._proc import wait_for
from testbed.cluster import SERVER_IP, Cluster, plugin_config
from testbed.dockerhost import REPO, DockerHost
from testbed.drill import READER, WRITER, run_drill, run_on_volume
from testbed.nfs import PSEUDO

LOCAL_NFS_OPTS = f"addr={SERVER_IP},vers=4.1,hard,nosuid,nodev"
NULL_OPTS = "vers=4.1,hard,nosuid,nodev,lookupcache=positive"  # as nfsvol mounts the share
VS_LOCAL = ["b-nfsvol", "b-localnfs"]
IDLE_SETTLE_S = 10  # after the holder starts: its Mount's own aftermath is not idle
IDLE_WINDOW_S = 20
SYNC_COUNTS = (1_000, 10_000)  # records written through NFS in the guest: 50k takes too long
# dockerd keeps its state on the guest's tmpfs (/var/lib/docker); so does nfsvol
# here, like for like. The bed's /var/lib/nfsvol is a 9p share of this machine,
# so its tests can read it and it survives a power-off: each state file read
# there is a round trip to QEMU, which doubled nfsvol's time per docker run.
GUEST_STATE_DIR = "/run/nfsvol"
SHARE_MOUNT = f"{GUEST_STATE_DIR}/mnt/main"  # where nfsvol mounts the bed's main share
NULL_PLUGIN = Path(__file__).with_name("nullplugin.py")  # the guests see this tree
NULL_SOCKET = "/run/docker/plugins/nullvol.sock"
NULL_ROOT = "/var/lib/nullvol"  # an NFS mount of the same export, made once
# nfsvol's CPU seconds so far in a guest (master and workers), by bench.stats.
_PLUGIN_CPU = (
    "import sys; sys.path[:0] = [sys.argv[1]]; from bench.stats import cpu_seconds, pids_running; "
    "print(cpu_seconds(pids_running(b'nfsvol', b'serve')))"
)


def run_ms(host: DockerHost, *mounts: str) -> float:
    """Milliseconds of one `docker run --rm` of the bed's image running `true` with `mounts`."""
    args = ["run", "--rm", "--network", "none", *mounts, IMAGE_TAG, "true"]
    return timed_ms(lambda: host.docker(*args, timeout=600))


def _rpcs_of_run(host: DockerHost, volume: str) -> int:
    """NFS RPCs on nfsvol's share mount during one `docker run` of `volume`."""
    before = _nfs_rpcs(host)
    run_ms(host, "-v", f"{volume}:/data")
    return _nfs_rpcs(host) - before


def _nfs_rpcs(host: DockerHost) -> int:
    return nfs_rpcs(host.run(["cat", "/proc/self/mountstats"]).check().stdout, SHARE_MOUNT)


def _local_nfs_volume(host: DockerHost, cluster: Cluster, name: str) -> None:
    # Docker's own driver needs the export's subdirectory to exist already.
    (cluster.export_dir("main") / "local-driver" / name).mkdir(parents=True, exist_ok=True)
    host.docker(
        "volume", "create", "-d", "local", "-o", "type=nfs", "-o", f"o={LOCAL_NFS_OPTS}",
        "-o", f"device=:/export/main/local-driver/{name}", name,
    )  # fmt: skip


def call_ms(
    cluster: Cluster, host: str, volume: str, endpoint: str = "Mount", since: int = 0
) -> list[float]:
    """Milliseconds of each successful `endpoint` call for `volume`, from the plugin's log
    (its calls from the `since`th on: len(plugin_requests) before the calls of interest)."""
    return [
        float(call["ms"])
        for call in cluster.plugin_requests(host)[since:]
        if call["endpoint"] == endpoint and call["volume"] == volume and call["status"] == 200
    ]


def _interleaved(
    host: DockerHost, runs: int, volumes: list[str], say: Callable[[int], None]
) -> list[list[float]]:
    """`runs` docker runs on each of `volumes`, in rotated rounds (bench.stats.rotated)."""
    return rotated(runs, volumes, lambda volume: run_ms(host, "-v", f"{volume}:/data"), say)


def _plugin_cpu_s(host: DockerHost) -> float:
    return float(host.run([host.python, "-I", "-S", "-c", _PLUGIN_CPU, str(REPO)]).check().stdout)


def _start_null_plugin(host: DockerHost, cluster: Cluster) -> int:
    """bench/nullplugin.py in `host` as driver "nullvol"; its guest pid.

    Its volumes are directories of the same export as nfsvol's, mounted once
    before: the ideal NFS plugin, with no work per call, as the floor.
    """
    (cluster.export_dir("main") / "null-plugin").mkdir(exist_ok=True)
    source = f"{SERVER_IP}:{PSEUDO}/main/null-plugin"
    host.run(["mkdir", "-p", NULL_ROOT]).check()
    host.run(["/sbin/mount.nfs", source, NULL_ROOT, "-o", NULL_OPTS], timeout=120).check()
    pid = host.spawn([host.python, "-I", str(NULL_PLUGIN), NULL_SOCKET, NULL_ROOT])
    wait_for(lambda: host.run(["test", "-S", NULL_SOCKET]).rc == 0, 60, "the null plugin", 0.5)
    return pid


def run_ratios(cluster: Cluster, runs: int, results: dict[str, Any], cold: bool = True) -> None:
    """nfsvol vs local type=nfs (share parked between runs; with `cold`, also
    mounted afresh each run), and nfsvol (share held) vs a plain local volume."""
    a = cluster.hosts["a"]
    a.docker("volume", "create", "-d", "nfsvol", "b-nfsvol")
    _local_nfs_volume(a, cluster, "b-localnfs")
    a.docker("volume", "create", "b-plain")
    null_pid = _start_null_plugin(a, cluster)
    a.docker("volume", "create", "-d", "nullvol", "b-null")
    bar = Progress(sys.stderr)
    calls: dict[str, list[dict[str, Any]]] = {}  # phase: the plugin's calls for b-nfsvol

    def phase(name: str, label: str, volumes: list[str]) -> list[list[float]]:
        seen, cpu = len(cluster.plugin_requests("a")), _plugin_cpu_s(a)
        offset, total = len(calls) * runs, (3 if cold else 2) * runs
        samples = _interleaved(a, runs, volumes, lambda i: bar.show(offset + i, total, label))
        # In a 1-CPU guest every second nfsvol computes is one dockerd waits.
        results[f"plugin_cpu_s_per_round_{name}"] = round((_plugin_cpu_s(a) - cpu) / runs, 2)
        new = cluster.plugin_requests("a")[seen:]
        calls[name] = [c for c in new if c["volume"] == "b-nfsvol" and c["status"] == 200]
        return samples

    # As shipped: idle_unmount keeps the share mounted between back-to-back runs.
    # The null plugin beside them: what dockerd's calls to any plugin on NFS cost.
    label = "docker run: nfsvol vs local type=nfs vs a null plugin"
    parked, local_nfs, null = phase("parked", label, [*VS_LOCAL, "b-null"])
    # nfsvol's round trips to the server per run, its runs alone: the other
    # drivers' mounts of the same export may share the share mount's counters.
    rpcs = [_rpcs_of_run(a, "b-nfsvol") for _ in range(min(runs, 5))]
    results["nfs_rpcs_per_run_parked"] = p50(rpcs)
    results["samples"]["nfs_rpcs_per_run_parked"] = rpcs
    # A holder keeps the share mounted: the warm case every busy host is in.
    a.docker("run", "-d", "--name", "b-holder", "--network", "none", "--volume-driver",
             "nfsvol", "-v", "b-hold:/data", IMAGE_TAG, "sleep", "3600")  # fmt: skip
    # nfsvol's cost to the guest's one CPU with a share held and no call: probes, renewals.
    time.sleep(IDLE_SETTLE_S)
    cpu, started = _plugin_cpu_s(a), time.monotonic()
    time.sleep(IDLE_WINDOW_S)
    idle = (_plugin_cpu_s(a) - cpu) / (time.monotonic() - started)
    results["plugin_idle_cpu_share"] = round(idle, 3)
    # The null plugin again: what any plugin with its volumes on NFS costs over a plain one.
    label = "docker run: nfsvol (mounted) vs plain vs a null plugin"
    warm, plain, null_warm = phase("warm", label, ["b-nfsvol", "b-plain", "b-null"])
    a.docker("rm", "-f", "b-holder")
    a.docker("volume", "rm", "b-null")  # else dockerd keeps asking a dead plugin about it
    a.kill(null_pid)
    a.run(["umount", NULL_ROOT], timeout=120).check()
    if cold:
        # idle_unmount 0: each of dockerd's Mounts per run mounts the share, each Unmount
        # unmounts it.
        cluster.restart_plugin("a", {**cluster.config, "idle_unmount": 0})
        try:
            fresh, local_nfs_fresh = phase("cold", "docker run: nfsvol, idle_unmount 0", VS_LOCAL)
        finally:
            cluster.restart_plugin("a")
        results["run_ratio_vs_local_nfs_cold"] = round(p50(fresh) / p50(local_nfs_fresh), 3)
        results["samples"].update(run_ms_nfsvol_cold=fresh, run_ms_local_nfs_cold=local_nfs_fresh)
    bar.close()
    for name, made in calls.items():
        for endpoint in ("Mount", "Unmount"):
            ms = [float(c["ms"]) for c in made if c["endpoint"] == endpoint]
            results[f"{endpoint.lower()}_p50_ms_{name}"] = round(p50(ms), 1)
        # All of dockerd's calls about the volume (Get, Path, Mount, ...), per run.
        results[f"plugin_ms_per_run_{name}"] = round(sum(float(c["ms"]) for c in made) / runs, 1)
        results[f"plugin_calls_per_run_{name}"] = {
            e: round(sum(c["endpoint"] == e for c in made) / runs, 1)
            for e in sorted({c["endpoint"] for c in made})
        }
    results["run_ratio_vs_local_nfs"] = round(p50(parked) / p50(local_nfs), 3)
    results["run_ratio_null_plugin_vs_local_nfs"] = round(p50(null) / p50(local_nfs), 3)
    results["run_ratio_vs_null_plugin"] = round(p50(parked) / p50(null), 3)
    results["run_overhead_vs_plain_volume"] = round(p50(warm) / p50(plain), 3)
    results["run_overhead_null_plugin_vs_plain_volume"] = round(p50(null_warm) / p50(plain), 3)
    results["samples"].update(
        run_ms_nfsvol_parked=parked, run_ms_local_nfs=local_nfs, run_ms_null_plugin=null,
        run_ms_nfsvol_warm=warm, run_ms_plain=plain, run_ms_null_plugin_warm=null_warm,
        plugin_calls={n: [(c["endpoint"], c["ms"]) for c in made] for n, made in calls.items()},
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
        figures[driver] = len([m for m in cluster.nfs_mounts("a") if made_by(m, driver)])
        a.docker("rm", "-f", ctr, timeout=600)
    results["nfs_mounts_for_100_volumes"] = figures["nfsvol"]
    results["nfs_mounts_for_100_volumes_local_driver"] = figures["local"]
    results["volumes_in_use"] = count  # 100, or 10 with --quick


def probe_cost(cluster: Cluster, results: dict[str, Any], say: Callable[[str], None]) -> None:
    """What dockerd's Get probe costs a `docker run -v NEWNAME:/x` with no driver (issue 22).

    dockerd asks nfsvol about every name it does not know; nfsvol looks it up
    on every share before saying no (one LOOKUP per mounted share, a mount
    per released one), and dockerd then makes a local volume. Measured with
    the bed's four shares, nfsvol's default timers, and against a `docker run`
    of a local volume that already exists (no probe). With the server down
    the Get answers within mount_timeout (20 s in the bed's config), once.
    """
    a = cluster.hosts["a"]
    a.docker("volume", "create", "-d", "local", "probe-base")
    results["probe_base_run_ms"] = round(p50([run_ms(a, "-v", "probe-base:/x") for _ in range(3)]))

    def probe(state: str) -> None:
        name = f"probe-{state}-{time.monotonic_ns() % 10**9}"
        rpcs = _nfs_rpcs(a)
        results[f"probe_run_ms_{state}"] = round(run_ms(a, "-v", f"{name}:/x"))
        results[f"probe_nfs_rpcs_main_{state}"] = _nfs_rpcs(a) - rpcs
        gets = [c for c in cluster.plugin_requests("a") if c["volume"] == name]
        results[f"probe_get_ms_{state}"] = [round(float(c["ms"])) for c in gets]
        say(f"  probe, shares {state}: Get {results[f'probe_get_ms_{state}']} ms, run "
            f"{results[f'probe_run_ms_{state}']} ms, {results[f'probe_nfs_rpcs_main_{state}']} "
            "NFS round trips on main")  # fmt: skip
        a.docker("volume", "rm", name)

    def released() -> bool:
        return not cluster.nfs_mounts("a")

    wait_for(released, 120, "every share released", 2)
    probe("released")  # share ft's first server is dead: once per host, a mount_timeout
    probe("parked")  # within idle_unmount (30 s) of the last probe's mounts
    wait_for(released, 120, "every share released", 2)
    probe("released_again")  # ft's good server remembered (state_dir/good_server)
    a.docker("volume", "create", "-d", "nfsvol", "probe-held")
    a.docker("run", "-d", "--name", "probe-holder", "--network", "none", "-v",
             "probe-held:/data", IMAGE_TAG, "sleep", "600")  # fmt: skip
    probe("held")
    cluster.server.stop()
    try:
        probe("server_down")
        probe("server_down_again")
    finally:
        cluster.server.start()
        a.docker("rm", "-f", "probe-holder", timeout=300)
        a.docker("volume", "rm", "probe-held", timeout=300)


# Records as a's Creates leave them, written through b's own mount of the share.
_WRITE_RECORDS = (
    "import json, sys; folder, count = sys.argv[1], int(sys.argv[2])\n"
    "for i in range(count):\n"
    "    name = f'sync{i:05d}'\n"
    "    with open(f'{folder}/{name}.json', 'w') as f:\n"
    "        json.dump({'name': name, 'share': 'main', 'created_at': '2026-01-01T00:00:00Z',\n"
    "                   'created_by': 'bench', 'options': {}}, f)\n"
)


def sync_cost(cluster: Cluster, counts: tuple[int, ...], results: dict[str, Any]) -> None:
    """NFS round trips of one catalog sync on b, nothing changed and one volume made on a.

    The sync runs as Docker drives it: `docker volume ls` once catalog_ttl
    (5 s) has passed. b holds a volume, so the share stays mounted and every
    round trip lands on one mount's counters. The records are written
    through that mount (behind ganesha's back its caches could hide them).
    A sync outlives the List that started it when there is much to read,
    so each count runs until b's mount has gone quiet; that includes the
    lease renewal and the health probe that fall in the window (see
    idle_host_nfs_rpcs_per_min_held), so READDIRs are counted apart.
    """
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    b.docker("volume", "create", "-d", "nfsvol", "sync-held")
    b.docker("run", "-d", "--name", "sync-holder", "--network", "none", "-v",
             "sync-held:/data", IMAGE_TAG, "sleep", "3600")  # fmt: skip
    try:
        _quiet(b)
        before = _nfs_ops(b)
        time.sleep(60)
        results["idle_host_nfs_rpcs_per_min_held"] = _total(_nfs_ops(b), before)
        for count in counts:
            folder = f"{SHARE_MOUNT}/.nfsvol/volumes"
            b.run(["python3", "-c", _WRITE_RECORDS, folder, str(count)], timeout=1800).check()
            label = f"{count // 1000}k"
            started = time.monotonic()
            results[f"sync_nfs_rpcs_first_{label}"] = _synced(b)[0]  # reads every record
            results[f"sync_first_s_{label}"] = round(time.monotonic() - started, 1)
            _synced(b)  # the stamp confirmed (catalog.plan_reread)
            total, readdirs = _synced(b)
            results[f"sync_nfs_rpcs_unchanged_{label}"] = total
            results[f"sync_nfs_readdirs_unchanged_{label}"] = readdirs
            a.docker("volume", "create", "-d", "nfsvol", f"sync-new-{label}")
            total, readdirs = _synced(b)
            results[f"sync_nfs_rpcs_changed_{label}"] = total
            results[f"sync_nfs_readdirs_changed_{label}"] = readdirs
            a.docker("volume", "rm", f"sync-new-{label}")
    finally:
        b.run(["sh", "-c", f"rm -f {SHARE_MOUNT}/.nfsvol/volumes/sync*.json"], timeout=600)
        b.docker("rm", "-f", "sync-holder", timeout=300)
        b.docker("volume", "rm", "sync-held", timeout=300)


def _nfs_ops(host: DockerHost) -> dict[str, int]:
    return nfs_rpcs_by_op(host.run(["cat", "/proc/self/mountstats"]).check().stdout, SHARE_MOUNT)


def _total(after: dict[str, int], before: dict[str, int]) -> int:
    return sum(after.values()) - sum(before.values())


def _quiet(host: DockerHost) -> None:
    """Wait until the share's mount sends fewer than 20 RPCs in 4 s (a sync has ended)."""
    last = _nfs_ops(host)
    for _ in range(300):
        time.sleep(4)
        now = _nfs_ops(host)
        if _total(now, last) < 20:
            return
        last = now
    raise RuntimeError("b's share mount never went quiet")


def _synced(host: DockerHost) -> tuple[int, int]:
    """(RPCs, READDIRs) of `docker volume ls` once catalog_ttl has passed, until quiet."""
    time.sleep(6)  # past catalog_ttl
    before = _nfs_ops(host)
    host.docker("volume", "ls", "-q")
    _quiet(host)
    after = _nfs_ops(host)
    readdirs = sum(after.get(op, 0) - before.get(op, 0) for op in ("READDIR", "READDIRPLUS"))
    return _total(after, before), readdirs


def made_by(mount: str, driver: str) -> bool:
    """Is this /proc/mounts line an NFS mount `driver` made of the bed's main export?

    Not just any mount of it: nfsvol may still keep the share parked (idle_unmount)
    while the local driver's volumes are counted.
    """
    source = mount.split()[0]  # the local driver's is ":/export/...", its addr= apart
    local = f":{PSEUDO}/main/local-driver/" in source
    return f":{PSEUDO}/main" in source and local == (driver == "local")


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
    results["failover_mounts_ms_b"] = call_ms(cluster, "b", report.volume)
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


def bench_config(server: str = "ganesha") -> dict[str, Any]:
    """The bed's nfsvol config for `server`, with nfsvol's default timers and its state on tmpfs."""
    config = plugin_config(server)
    for key in ("idle_unmount", "health_interval", "lease_ttl", "catalog_ttl"):
        del config[key]  # the bed's are short for its tests; measure the defaults
    config["state_dir"] = GUEST_STATE_DIR
    return config


def run(quick: bool, say: Any, only: tuple[str, ...] = ()) -> dict[str, Any]:
    """Boot the bed, measure every guest figure (or those `only` names), tear it down.

    --quick: 3 runs per kind instead of 10, no cold-mount phase, and 10 volumes
    in use instead of 100, to finish in under 10 minutes; the run ratios are
    noisier for it.
    """
    results: dict[str, Any] = {"samples": {}}
    steps: dict[str, float] = {}
    results["hosts_step_s"] = steps
    results["plugin_state_dir"] = GUEST_STATE_DIR
    workdir = Path(tempfile.mkdtemp(prefix="nfsvol-bench-hosts-"))
    cluster = Cluster(workdir, prepare(), config=bench_config())
    try:
        started = time.monotonic()
        boots = cluster.start()
        results["host_boot_s"] = round(max(boots.values()), 1)
        record_step(steps, "boot", started, say)
        measures: list[tuple[str, Callable[[], None]]] = [
            ("emulation", lambda: emulation(cluster, results)),
            ("run_ratios", lambda: run_ratios(cluster, 3 if quick else 10, results, not quick)),
            ("mount_economy", lambda: mount_economy(cluster, 10 if quick else 100, results)),
            ("probe_cost", lambda: probe_cost(cluster, results, say)),
            (
                "sync_cost",
                lambda: sync_cost(cluster, (1_000,) if quick else (1_000, 10_000), results),
            ),
            ("failover", lambda: failover(cluster, results)),
        ]
        if only:
            measures = [(name, measure) for name, measure in measures if name in only]
        for name, measure in measures:
            started = time.monotonic()
            measure()
            record_step(steps, name, started, say)
    finally:
        cluster.remove()
    return results


def record_step(steps: dict[str, float], name: str, started: float, say: Any) -> None:
    """Note the seconds since `started` as step `name`'s and say so."""
    steps[name] = round(time.monotonic() - started, 1)
    say(f"  {name} done in {steps[name]:.0f}s")
