"""Trace writing keeps memory flat: a long run with block tracing streamed to a JSON Lines file.

The guest spins in a 10-instruction loop (one block per iteration), so a run of N
instructions emits about N/10 ``block`` events, each stamped, serialised and written.
Resident memory is sampled every 20,000 events; the figure is its growth from the first
sample (after warm-up) to the largest, which stays near zero when writing streams.  A
``ListSink`` run of a tenth of the size is the baseline that does grow.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench.core import Row, current_rss_mib
from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import Machine
from hgcmlab.machine.trace.blocks import trace_blocks
from hgcmlab.machine.trace.files import TraceWriter
from hgcmlab.machine.tracing import ListSink, TraceEvent

LOOP = """
_start:
    mov ecx, {n}
again:
    add eax, ecx
    imul ebx, eax
    xor edx, ebx
    add esi, 3
    sub edi, 5
    or ebp, eax
    and ebp, 0xffff
    inc r8d
    dec ecx
    jnz again
    out 0xf4, al
"""

SAMPLE_EVERY = 20_000


class _RssSampler:
    def __init__(self) -> None:
        self.count = 0
        self.samples: list[float] = []

    def __call__(self, _event: TraceEvent) -> None:
        self.count += 1
        if self.count % SAMPLE_EVERY == 0:
            self.samples.append(current_rss_mib())

    def growth(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        return max(self.samples) - self.samples[0]


def _machine(instructions: int) -> Machine:
    machine = vbox_board(64)
    machine.load(assemble(LOOP.format(n=instructions // 10), mode=64))
    trace_blocks(machine)
    return machine


def measure_file(instructions: int, path: Path) -> tuple[float, int, int, float, float]:
    """(RSS growth MiB, events, file bytes, seconds, executed instructions) of a streamed run."""
    machine = _machine(instructions)
    sampler = _RssSampler()
    with TraceWriter(path) as writer:
        machine.tracer.add_sink(writer)
        machine.tracer.add_sink(sampler)
        start = time.perf_counter()
        result = machine.run(instructions + 100)
        seconds = time.perf_counter() - start
    machine.close()
    return sampler.growth(), writer.count, path.stat().st_size, seconds, result.instructions


def measure_list(instructions: int) -> float:
    """RSS growth (MiB) of the same run kept in a ListSink (the baseline)."""
    machine = _machine(instructions)
    sampler = _RssSampler()
    events = ListSink()
    machine.tracer.add_sink(events)
    machine.tracer.add_sink(sampler)
    machine.run(instructions + 100)
    machine.close()
    return sampler.growth()


def run(quick: bool, repeat: int) -> list[Row]:
    instructions = 200_000 if quick else 10_000_000
    with tempfile.TemporaryDirectory(prefix="hgcmlab-trace-bench-") as directory:
        growth, events, size, seconds, executed = measure_file(instructions, Path(directory) / "trace.jsonl")
        gz_growth, gz_events, gz_size, gz_seconds, _ = measure_file(instructions, Path(directory) / "trace.jsonl.gz")
    baseline = measure_list(instructions // 10)
    name = f"trace_memory ({executed / 1e6:.1f}M instructions, {events} events)"
    return [
        Row(name, "RSS growth while writing JSON Lines", growth, "MiB",
            baseline, "ListSink, 1/10 of the run", "flat: < 16 MiB", growth < 16),
        Row(name, "RSS growth while writing .jsonl.gz", gz_growth, "MiB", target="flat: < 16 MiB",
            met=gz_growth < 16),
        Row(name, "events written per second (JSON Lines)", events / seconds, "events/s"),
        Row(name, "events written per second (.jsonl.gz)", gz_events / gz_seconds, "events/s"),
        Row(name, "file size per event (JSON Lines)", size / max(1, events), "bytes"),
        Row(name, "file size per event (.jsonl.gz)", gz_size / max(1, gz_events), "bytes"),
    ]


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    for row in run(quick, 1):
        print(f"{row.metric}: {row.ours:.4g} {row.unit}"
              + (f" (baseline {row.baseline:.4g} {row.unit}: {row.baseline_name})" if row.baseline is not None else ""))
