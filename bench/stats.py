"""Small helpers to time things and summarise samples."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def timed_ms(fn: Callable[[], object]) -> float:
    """Wall time of one call, in milliseconds."""
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def sample_ms(fn: Callable[[], object], count: int) -> list[float]:
    """`count` timings of `fn`, in milliseconds."""
    return [timed_ms(fn) for _ in range(count)]


def rotated(
    rounds: int, kinds: list[str], time_one: Callable[[str], float], say: Callable[[int], None]
) -> list[list[float]]:
    """`rounds` timings of each of `kinds`, alternating, so drift hits all alike.

    Each round starts one kind later: a run's time depends on its place in
    the round (in one guest the null plugin's median was 3.3 s in one order
    and 4.0-4.3 s in three others, a plain volume's 3.2 and 4.7 s), so a
    fixed order would hand one kind the same bias every round.
    """
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    for i in range(rounds):
        say(i)
        shift = i % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            samples[kind].append(time_one(kind))
    return list(samples.values())


def p50(samples: Sequence[float]) -> float:
    """The median."""
    return statistics.median(samples)


def p95(samples: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# A fixed pure-Python workload: its time here and in a guest is the
# emulation factor that the guest's figures carry (see bench.hosts).
PYTHON_LOOP = (
    "import time; t = time.perf_counter(); sum(i * i for i in range(1_000_000)); "
    "print((time.perf_counter() - t) * 1000)"
)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time so far of `pids` (/proc/PID/stat, clock ticks)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def pids_running(*words: bytes) -> list[int]:
    """Processes whose command line holds every one of `words`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:  # gone meanwhile
            continue
        if argv and all(w in argv for w in words):
            found.append(int(entry.name))
    return found


def nfs_rpcs(mountstats: str, mountpoint: str) -> int:
    """RPCs sent so far for the NFS mount at `mountpoint`, from /proc/self/mountstats."""
    return sum(nfs_rpcs_by_op(mountstats, mountpoint).values())


def nfs_rpcs_by_op(mountstats: str, mountpoint: str) -> dict[str, int]:
    """{operation: RPCs sent so far} for the NFS mount at `mountpoint`.

    The first count (operations) of each per-op line of that mount.
    """
    counts: dict[str, int] = {}
    inside, per_op = False, False
    for line in mountstats.splitlines():
        if line.startswith("device "):
            inside, per_op = f" mounted on {mountpoint} " in line, False
        elif inside and "per-op statistics" in line:
            per_op = True
        elif inside and per_op and ":" in line:
            op, _, rest = line.partition(":")
            fields = rest.split()
            counts[op.strip()] = counts.get(op.strip(), 0) + (int(fields[0]) if fields else 0)
    return counts
