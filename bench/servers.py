"""The bed's two NFS servers side by side: ganesha and Linux's own (knfsd), in one run (issue 24).

    touch /tmp/bed.lock    # beds take turns on this machine
    flock /tmp/bed.lock .venv/bin/python -m bench.servers [--runs N] [--servers knfsd]

boots the test bed on each server in turn (ganesha on this machine, then
knfsd in a guest of its own; one bed at a time, each removed before the
next), on the same QEMU guests with nfsvol's default timers and its state
on tmpfs (bench.hosts.bench_config), and measures on each:

- the Mount call (as the plugin logs it) and the `docker run --rm ... true`
  around it, with the share not mounted on the host (cold) and mounted for
  another container (warm); the p50 of N runs each (5 by default);
- recovery from a server restart (`cluster.server.restart()`): seconds
  until a writer on host a makes progress again, and until a new
  `docker run` writing a file on host b succeeds (beside that run with no
  restart);
- failover (testbed.drill.run_drill, last: it powers host a off).

It prints a table (figure | ganesha | knfsd) and writes bench/servers.json
(raw samples under each server's `samples`). About 10 minutes for both.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.hosts import bench_config, call_ms, emulation, failover, record_step, run_ms
from bench.stats import p50
from testbed import IMAGE_TAG, prepare
from testbed._proc import wait_for
from testbed.cluster import IDLE_UNMOUNT, SERVER_KINDS, Cluster
from testbed.dockerhost import DockerHost
from testbed.knfsd import KernelNfsServer

RESULTS = Path(__file__).with_name("servers.json")
RUNS = 5
RELEASE_LIMIT_S = 120  # idle_unmount (30 s by default) plus the janitor's ticks, with margin
RECOVERY_LIMIT_S = 300  # knfsd's grace period is 90 s; a call still failing after this is broken
NFSVOL = ("--volume-driver", "nfsvol")  # never a local volume of the same name by mistake
# As tests/hosts/test_faults.py's WRITER: file i is 64 KiB, fsynced, and
# "done" gets the line i once it is; "done" is read on the server's own disk.
WRITER = (
    "i=0; while true; do i=$((i+1)); "
    "yes $i | head -c 65536 | dd of=/data/f$i conv=fsync 2>/dev/null; "
    "echo $i | dd of=/data/done oflag=append conv=notrunc,fsync 2>/dev/null; done"
)
# (key, what the table calls it, unit): the figures printed, in order.
FIGURES = [
    ("mount_cold_p50_ms", "Mount, share not mounted on the host (plugin log)", "ms"),
    ("mount_warm_p50_ms", "Mount, share mounted for another container (plugin log)", "ms"),
    ("run_cold_p50_ms", "docker run --rm true on the volume, cold", "ms"),
    ("run_warm_p50_ms", "docker run --rm true on the volume, warm", "ms"),
    ("server_restart_s", "server restart (stop, start, serving)", "s"),
    ("writer_record_s", "a's writer: seconds per fsynced record, no restart", "s"),
    ("writer_resumed_s", "a's writer: two more records after the restart", "s"),
    ("new_run_b_s", "b: a new docker run writing a file, after the restart", "s"),
    ("new_run_b_attempts", "b: attempts until it worked", ""),
    ("new_run_b_baseline_s", "b: the same docker run, no restart", "s"),
    ("failover_s", "failover: power-off of a to verified data on b", "s"),
    ("failover_wait_s", "failover: until b lists the volume", "s"),
    ("failover_run_s", "failover: the reader's docker run on b", "s"),
    ("reread_b_s", "the same reader again on b, nothing failed", "s"),
    ("plain_start_b_s", "docker run true on b, no volume", "s"),
    ("python_loop_ms_guest", "guest speed: one Python loop (lower is faster)", "ms"),
    ("host_boot_s", "bed boot (slowest guest)", "s"),
]


def _say(line: str) -> None:
    print(line, flush=True)


def _records(cluster: Cluster, volume: str) -> list[int]:
    """The lines of WRITER's "done" file, read on the server's disk (no NFS client between)."""
    try:
        return [int(n) for n in (cluster.export_dir("main") / volume / "done").read_text().split()]
    except FileNotFoundError:
        return []


def _released(cluster: Cluster, host: str) -> None:
    wait_for(lambda: cluster.nfs_mounts(host, "main") == [], RELEASE_LIMIT_S, "main released", 0.5)


def _run_and_mount(cluster: Cluster, volume: str) -> tuple[float, list[float]]:
    """One `docker run` of `volume` on a: its milliseconds, and its Mount calls' (first: the
    container's create, which mounts the share if it must; then its start's)."""
    seen = len(cluster.plugin_requests("a"))
    ms = run_ms(cluster.hosts["a"], *NFSVOL, "-v", f"{volume}:/data")
    return ms, call_ms(cluster, "a", volume, since=seen)


def _runs(cluster: Cluster, volume: str, runs: int, before: Callable[[], None]) -> dict[str, Any]:
    """`runs` of _run_and_mount, each after `before`: p50s of the run and of its first Mount."""
    samples: list[tuple[float, list[float]]] = []
    for _ in range(runs):
        before()
        samples.append(_run_and_mount(cluster, volume))
    mounts = [calls[0] for _, calls in samples]
    return {"run": p50([ms for ms, _ in samples]), "mount": p50(mounts), "samples": samples}


def mounts_warm(cluster: Cluster, runs: int, results: dict[str, Any]) -> None:
    """Mount and docker run with the share held by another container: a busy host."""
    a = cluster.hosts["a"]
    a.docker("volume", "create", "-d", "nfsvol", "srv-warm")
    a.docker("run", "-d", "--name", "srv-holder", "--network", "none", *NFSVOL,
             "-v", "srv-hold:/data", IMAGE_TAG, "sleep", "3600")  # fmt: skip
    try:
        warm = _runs(cluster, "srv-warm", runs, lambda: None)
    finally:
        a.docker("rm", "-f", "srv-holder")
    results["mount_warm_p50_ms"], results["run_warm_p50_ms"] = warm["mount"], warm["run"]
    results["samples"]["warm"] = warm["samples"]


def mounts_cold(cluster: Cluster, runs: int, results: dict[str, Any]) -> None:
    """Mount and docker run with the share released first: the first container of an idle host.

    nfsvol keeps an unused share mounted idle_unmount seconds (30 by
    default), so for this step alone a's plugin runs with the bed's 2 s:
    five releases take seconds, not minutes. It changes when the share is
    let go, not what a Mount does.
    """
    a = cluster.hosts["a"]
    cluster.restart_plugin("a", {**cluster.config, "idle_unmount": IDLE_UNMOUNT})
    try:
        a.docker("volume", "create", "-d", "nfsvol", "srv-cold")
        cold = _runs(cluster, "srv-cold", runs, lambda: _released(cluster, "a"))
    finally:
        cluster.restart_plugin("a")  # the default timers again, for the steps after
    results["mount_cold_p50_ms"], results["run_cold_p50_ms"] = cold["mount"], cold["run"]
    results["samples"]["cold"] = cold["samples"]


def _until_ok(call: Callable[[], subprocess.CompletedProcess[str]]) -> tuple[float, int, str]:
    """Retry `call` until it exits 0: seconds taken, attempts, the first failure's message."""
    started, attempts, first = time.monotonic(), 0, ""
    while True:
        attempts += 1
        done = call()
        if done.returncode == 0:
            return time.monotonic() - started, attempts, first
        first = first or done.stderr.strip()[-300:]
        if time.monotonic() - started > RECOVERY_LIMIT_S:
            raise RuntimeError(f"still failing {RECOVERY_LIMIT_S}s on: {done.stderr[-1000:]}")
        time.sleep(1)


def _wait_records(cluster: Cluster, volume: str, more: int) -> float:
    """Seconds until the writer has fsynced `more` records past what it has now."""
    now = len(_records(cluster, volume))

    def grown() -> bool:
        return len(_records(cluster, volume)) >= now + more

    return wait_for(grown, RECOVERY_LIMIT_S, f"{more} more records")


def restart_recovery(cluster: Cluster, results: dict[str, Any]) -> None:
    """A server restart under a's writer: seconds until it writes again, and until b works.

    Both count from restart() returning (the server serves again). The writer
    must fsync two records: the first may be the one in flight across the
    restart. b has the share released, so its run mounts it then (the
    volume is new to b: its Get looks it up on the share).
    """
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    a.docker("run", "-d", "--name", "srv-writer", "--network", "none", *NFSVOL,
             "-v", "srv-rw:/data", IMAGE_TAG, "sh", "-c", WRITER)  # fmt: skip
    a.docker("volume", "create", "-d", "nfsvol", "srv-late")
    try:
        wait_for(lambda: len(_records(cluster, "srv-rw")) >= 3, 120, "three records", 0.5)
        results["writer_record_s"] = round(_wait_records(cluster, "srv-rw", 10) / 10, 2)
        _released(cluster, "b")
        seen_b, log_b = len(cluster.plugin_requests("b")), len(cluster.plugin_log("b"))
        results["server_restart_s"] = round(cluster.server.restart(), 1)
        with ThreadPoolExecutor(max_workers=1) as pool:
            late = pool.submit(_until_ok, lambda: _late_run(b, "srv-late"))
            results["writer_resumed_s"] = round(_wait_records(cluster, "srv-rw", 2), 1)
            seconds, results["new_run_b_attempts"], results["new_run_b_first_error"] = late.result()
        results["new_run_b_s"] = round(seconds, 1)
        _trace_b(cluster, seen_b, log_b, results)
    finally:
        a.docker("rm", "-f", "srv-writer", timeout=RECOVERY_LIMIT_S)
    _check_recovered(cluster, results)


def _late_run(host: DockerHost, volume: str) -> subprocess.CompletedProcess[str]:
    """A new container writing a file on `volume`; its exit code unchecked (it may fail)."""
    return host.docker("run", "--rm", "--network", "none", *NFSVOL, "-v", f"{volume}:/data",
                       IMAGE_TAG, "sh", "-c", "echo late > /data/f", check=False,
                       timeout=RECOVERY_LIMIT_S)  # fmt: skip


def new_run_baseline(cluster: Cluster, results: dict[str, Any]) -> None:
    """b's run of the restart step with no restart: its share released, the volume new to b."""
    cluster.hosts["a"].docker("volume", "create", "-d", "nfsvol", "srv-late-again")
    _released(cluster, "b")
    started = time.monotonic()
    _late_run(cluster.hosts["b"], "srv-late-again").check_returncode()
    results["new_run_b_baseline_s"] = round(time.monotonic() - started, 1)


def _trace_b(cluster: Cluster, seen: int, chars: int, results: dict[str, Any]) -> None:
    """What b's plugin did for the run after the restart: its calls and its warnings."""
    calls = cluster.plugin_requests("b")[seen:]
    results["new_run_b_calls"] = [(c["endpoint"], c["volume"], c["ms"], c["status"]) for c in calls]
    lines = cluster.plugin_log("b")[chars:].splitlines()
    results["new_run_b_warnings"] = [line[-300:] for line in lines if "warning" in line.lower()]


def _check_recovered(cluster: Cluster, results: dict[str, Any]) -> None:
    """No fsynced record lost or doubled, b's file on the server; knfsd's grace, as it logged."""
    done = _records(cluster, "srv-rw")
    if done != list(range(1, len(done) + 1)):
        raise RuntimeError(f"the writer's records are not 1..n after the restart: {done}")
    if (cluster.export_dir("main") / "srv-late" / "f").read_text() != "late\n":
        raise RuntimeError("b's run said it worked but its file is not on the server")
    results["writer_records"] = len(done)
    if isinstance(cluster.server, KernelNfsServer):
        dmesg = cluster.server.guest.run(["dmesg"]).check().stdout.splitlines()
        results["server_grace_log"] = [line for line in dmesg if "grace" in line]


def _warm_up(cluster: Cluster) -> None:
    """One unmeasured run per host: a fresh guest's first `docker run` pays for cold caches.

    On a with a volume (nfsvol's own first calls too); on b without, so b's
    share stays unmounted for the restart step.
    """
    run_ms(cluster.hosts["a"], *NFSVOL, "-v", "srv-warm-up:/data")
    run_ms(cluster.hosts["b"])


def measure(kind: str, runs: int) -> dict[str, Any]:
    """Boot a bed on server `kind`, take every figure, remove the bed."""
    results: dict[str, Any] = {"samples": {}, "step_s": {}}
    workdir = Path(tempfile.mkdtemp(prefix=f"nfsvol-bench-servers-{kind}-"))
    cluster = Cluster(workdir, prepare(), config=bench_config(kind), server=kind)
    try:
        started = time.monotonic()
        results["host_boot_s"] = round(max(cluster.start().values()), 1)
        record_step(results["step_s"], "boot", started, _say)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("warm_up", lambda: _warm_up(cluster)),
            ("emulation", lambda: emulation(cluster, results)),
            ("mounts_warm", lambda: mounts_warm(cluster, runs, results)),
            ("mounts_cold", lambda: mounts_cold(cluster, runs, results)),
            ("restart_recovery", lambda: restart_recovery(cluster, results)),
            ("new_run_baseline", lambda: new_run_baseline(cluster, results)),
            ("failover", lambda: failover(cluster, results)),  # last: host a stays off
        ]
        for name, step in steps:
            started = time.monotonic()
            step()
            record_step(results["step_s"], name, started, _say)
    finally:
        cluster.remove()
    return results


def _cell(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:,.0f} ms"
    return f"{value:.1f} {unit}" if unit else str(value)


def table(results: dict[str, Any], kinds: list[str]) -> str:
    """The figures as a Markdown table, one column per server."""
    lines = [f"| figure | {' | '.join(kinds)} |", "|---" * (len(kinds) + 1) + "|"]
    for key, label, unit in FIGURES:
        cells = [_cell(results[kind].get(key), unit) for kind in kinds]
        lines.append(f"| {label} (`{key}`) | {' | '.join(cells)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure each server in turn, print the table, write the JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.servers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per Mount figure (p50)")
    parser.add_argument("--servers", nargs="+", choices=SERVER_KINDS, default=list(SERVER_KINDS))
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    args = parser.parse_args(argv)
    started = time.monotonic()
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = {"date": date, "kernel": platform.release(), "runs": args.runs}
    results: dict[str, Any] = {"machine": machine}
    for kind in args.servers:
        _say(f"== {kind}: boot the bed, measure, remove it")
        results[kind] = measure(kind, args.runs)
        results["machine"]["wall_s"] = round(time.monotonic() - started, 1)
        Path(args.out).write_text(json.dumps(results, indent=2))  # each server's, as it ends
    _say(table(results, args.servers))
    _say(f"written to {args.out} in {results['machine']['wall_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
