"""Small helpers to time things and summarise samples."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed_ms(fn: Callable[[], object]) -> float:
    """Wall time of one call, in milliseconds."""
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def sample_ms(fn: Callable[[], object], count: int) -> list[float]:
    """`count` timings of `fn`, in milliseconds."""
    return [timed_ms(fn) for _ in range(count)]


def p50(samples: list[float]) -> float:
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
