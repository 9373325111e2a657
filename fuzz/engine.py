"""The fallback engine: a seeded mutational fuzzer without coverage feedback.

Used where atheris (the coverage-guided engine, libFuzzer) is not installed.  It mutates the
seed corpus at byte and record level (bit flips, interesting values, insertions, deletions,
splices of two programs) with a fixed PRNG seed, so a campaign is reproducible.  Each input
runs under a wall-clock alarm: a hang is a finding like an exception.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

MAX_LEN = 4096
_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x10001,
                0x100001, 0x8000000, 0x8000001, 0x1000, 0xFFF, 24, 44, 108, 92)


class Hang(Exception):
    """One input ran longer than the per-input limit."""


@dataclass
class Stats:
    """Outcome of a campaign."""

    inputs: int = 0
    findings: list[tuple[bytes, str]] = field(default_factory=list)


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    """One to four stacked mutations of ``data``."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(7)
        if choice == 0 and out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif choice == 1 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif choice == 2 and len(out) >= 4:
            at = rng.randrange(len(out) - 3)
            width = rng.choice((1, 2, 4))
            value = rng.choice(_INTERESTING) & ((1 << (8 * width)) - 1)
            out[at:at + width] = value.to_bytes(width, "little")
        elif choice == 3:
            at = rng.randrange(len(out) + 1)
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif choice == 4 and out:
            at = rng.randrange(len(out))
            del out[at:at + rng.randint(1, 16)]
        elif choice == 5 and corpus:
            other = rng.choice(corpus)
            cut_a, cut_b = rng.randrange(len(out) + 1), rng.randrange(len(other) + 1)
            out = out[:cut_a] + other[cut_b:]
        elif choice == 6 and out:
            a, b = sorted(rng.randrange(len(out) + 1) for _ in range(2))
            out[b:b] = out[a:b]
    return bytes(out[:MAX_LEN])


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang("input exceeded the time limit")


def campaign(target: Callable[[bytes], None], seeds: list[bytes], inputs: int, *, seed: int = 1,
             timeout: float = 10.0, progress: Callable[[Stats], None] | None = None,
             stop_on_finding: bool = True) -> Stats:
    """Run ``target`` on the seeds, then on mutants until ``inputs`` inputs ran."""
    rng = random.Random(seed)
    stats = Stats()
    corpus = list(seeds) or [b""]
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        while stats.inputs < inputs:
            data = corpus[stats.inputs] if stats.inputs < len(corpus) else mutate(rng, rng.choice(corpus), corpus)
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                target(data)
            except Exception as exc:  # noqa: BLE001 - every escape is a finding to report
                stats.findings.append((data, f"{type(exc).__name__}: {exc}"))
                if stop_on_finding:
                    stats.inputs += 1
                    break
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            stats.inputs += 1
            if progress is not None and stats.inputs % 10000 == 0:
                progress(stats)
    finally:
        signal.signal(signal.SIGALRM, previous)
    return stats
