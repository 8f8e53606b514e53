"""`python -m bench [--quick]`: every figure in one run, a table and bench/results.json."""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import docker_ls, docker_run, hosts, local, sync

RESULTS = Path(__file__).with_name("results.json")


def _say(line: str) -> None:
    print(line, flush=True)


def _table(results: dict[str, Any]) -> str:
    rows = [(k, v) for k, v in results.items() if k not in ("samples", "machine")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {json.dumps(v)}" for k, v in rows)


def _stage(
    stages: dict[str, float],
    name: str,
    results: dict[str, Any],
    measure: Callable[[], dict[str, Any]],
) -> None:
    """Run one stage, merge its figures and samples into results, note its wall time."""
    started = time.monotonic()
    figures = measure()
    results["samples"].update(figures.pop("samples"))
    results.update(figures)
    stages[name] = round(time.monotonic() - started, 1)
    _say(f"  ({name}: {stages[name]:.0f}s)")


def _local_stages(
    stages: dict[str, float], results: dict[str, Any], quick: bool, only: tuple[str, ...]
) -> None:
    if not only or "sync" in only:
        _say("== one catalog sync at 1k, 10k and 50k volumes (in-process, path share)")
        _stage(stages, "sync", results, lambda: sync.run(quick, _say))
    if only and not set(only) & {"local", "docker_ls", "docker_run"}:
        return
    with local.plugin_on_path_share() as plugin:
        _say("== nfsvol on this machine (gunicorn, unix socket, path share)")
        _stage(stages, "local", results, lambda: local.run(plugin, quick, _say))
        _say("== docker volume ls on this machine's dockerd: nfsvol vs local volumes")
        _stage(stages, "docker_ls", results, lambda: docker_ls.run(plugin, quick, _say))
        _say("== docker run on this machine's dockerd: nfsvol vs a null plugin vs plain")
        _stage(stages, "docker_run", results, lambda: docker_run.run(plugin, quick, _say))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the table, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (under 10 minutes)")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument(
        "--skip-hosts", action="store_true", help="only the figures from this machine"
    )
    parser.add_argument(
        "--only-hosts",
        nargs="+",
        metavar="STEP",
        default=(),
        help="only these guest steps (emulation, run_ratios, mount_economy, probe_cost, "
        "sync_cost, failover)",
    )
    parser.add_argument(
        "--only-local",
        nargs="+",
        metavar="STAGE",
        default=(),
        help="only these stages on this machine (sync, or local with docker_ls and docker_run)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    results: dict[str, Any] = {
        "machine": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "cpus": __import__("os").cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "quick": args.quick,
        }
    }
    stages: dict[str, float] = {}
    results["machine"]["stage_s"] = stages
    results["samples"] = {}
    if not args.only_hosts:
        _local_stages(stages, results, args.quick, tuple(args.only_local))
    if not args.skip_hosts:
        _say("== real NFS in QEMU Docker hosts (ganesha, kernel NFS, dockerd)")
        only = tuple(args.only_hosts)
        _stage(stages, "hosts", results, lambda: hosts.run(args.quick, _say, only))
    if "python_loop_ms_guest" in results and "python_loop_ms_native" in results:
        factor = results["python_loop_ms_guest"] / results["python_loop_ms_native"]
        results["guest_emulation_factor"] = round(factor, 1)
    results["machine"]["wall_s"] = round(time.monotonic() - started, 1)
    Path(args.out).write_text(json.dumps(results, indent=2))
    _say(_table(results))
    _say(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
