"""Draw the benchmark's shapes as PNGs for docs/benchmarks.md.

    .venv/bin/pip install matplotlib        # kept out of nfsvol's own dependencies
    .venv/bin/python scripts/plot_bench.py NEW.json [OLD.json] [--out docs/img]

NEW.json (and OLD.json, for a paired run) are `python -m bench` results.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen here
import matplotlib.pyplot as plt  # after the backend is chosen


def _load(path: str) -> dict[str, Any]:
    return dict(json.loads(Path(path).read_text()))


def list_scaling(runs: dict[str, dict[str, Any]], out: Path) -> Path:
    """List's median time against the number of volumes, one line per run."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, results in runs.items():
        sizes = sorted(results["list_scaling"], key=int)
        ax.plot([int(s) for s in sizes], [results["list_scaling"][s] for s in sizes],
                marker="o", label=label)  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="volumes on the share",
           ylabel="List, median ms", title="List scales with the volumes")  # fmt: skip
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, out / "list_scaling.png")


def call_times(runs: dict[str, dict[str, Any]], out: Path) -> Path:
    """The distribution of Get, Get of an absent name, and Mount+Unmount, per run."""
    keys = [("get_ms_10k", "Get"), ("get_miss_ms_10k", "Get, absent name"),
            ("mount_unmount_ms_native", "Mount + Unmount")]  # fmt: skip
    fig, axes = plt.subplots(1, len(keys), figsize=(12, 3.6))
    for ax, (key, title) in zip(axes, keys, strict=True):
        for label, results in runs.items():
            samples = sorted(results["samples"].get(key, []))
            if samples:
                share = [(i + 1) / len(samples) for i in range(len(samples))]
                ax.plot(samples, share, label=label)
        ax.set(xscale="log", xlabel="ms", ylabel="share of calls", title=title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("Calls on 10,000 volumes, path share (cumulative)")
    return _save(fig, out / "call_times.png")


def sync_scaling(runs: dict[str, dict[str, Any]], out: Path) -> Path:
    """One catalog sync against the number of volumes: nothing changed, one changed, first."""
    kinds = [("unchanged", "nothing changed (a stamp check)"),
             ("changed", "one volume changed (a listing, as every sync before)"),
             ("first", "first sync (every record read)")]  # fmt: skip
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, results in runs.items():
        for kind, title in kinds:
            sizes = [k for k in (1, 10, 50) if f"sync_{kind}_ms_{k}k" in results]
            ax.plot([k * 1000 for k in sizes], [results[f"sync_{kind}_ms_{k}k"] for k in sizes],
                    marker="o", label=title if len(runs) == 1 else f"{label}: {title}")  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="volumes on the share", ylabel="one sync, median ms",
           title="A sync costs what changed, not what exists")  # fmt: skip
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, out / "sync_scaling.png")


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("new")
    parser.add_argument("old", nargs="?")
    parser.add_argument("--out", default="docs/img")
    args = parser.parse_args()
    runs = {"new": _load(args.new)}
    if args.old:
        runs = {"old": _load(args.old), **runs}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plots = {"list_scaling": list_scaling, "get_ms_10k": call_times,
             "sync_unchanged_ms_1k": sync_scaling}  # fmt: skip
    for key, plot in plots.items():  # those the results have figures for
        if any(key in r or key in r.get("samples", {}) for r in runs.values()):
            print(plot(runs, out))


if __name__ == "__main__":
    main()
