"""Shared machinery of the benchmarks: timing, medians, rows, resident memory.

Benchmarks compare our machine against a baseline run side by side in the same process
(these machines are shared and noisy), report ratios and medians of several repetitions,
and never assert speed: CI runs them in quick mode only to check they work.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One measured figure: ours against a baseline, with the target it is held to."""

    benchmark: str
    metric: str
    ours: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        """ours / baseline for throughputs (higher is better)."""
        if self.baseline in (None, 0):
            return None
        return self.ours / self.baseline


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` runs of ``action`` (benchmarks only: never in a trace)."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    """Current resident set size of this process, in MiB (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / (1024 * 1024)
