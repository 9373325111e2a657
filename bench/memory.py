"""Memory stays flat however much HGCM work a guest does (issue 12).

* Calls: the round-trip guest of bench/hgcm.py re-submits a 1-byte READ 1,000,000 times.
* Bulk: a guest reads 10 GiB in 1 MiB READ calls (from a sparse file: no disk space used,
  the host returns zeros at page-cache speed).

Each run is cut into slices of virtual cycles (``Machine.run(max_cycles=...)``) and the
resident set size is sampled between slices; the figure is its growth from the first sample
to the largest.  No event sink is attached (as in a plain ``hgcmlab run`` without a trace).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.core import Row, current_rss_mib
from bench.hgcm import BULK, CHUNK, GUEST_BUFFER, READ_OPEN, round_trip_program
from guest_asm.assembler import AssembledProgram, assemble
from machine.machine import Machine, RunEnd

#: RSS growth the issue allows for either run.
TARGET_MIB = 50
#: Virtual cycles between two RSS samples.
SLICE_CYCLES = 200_000_000


def rss_growth(folder: Path, program: AssembledProgram) -> tuple[float, int]:
    """Run ``program`` against share "b" = ``folder``; returns (RSS growth in MiB from the
    first sample to the largest, number of samples)."""
    machine = Machine(64)
    try:
        machine.add_share("b", folder)
        machine.load(program)
        samples = [current_rss_mib()]
        while True:
            result = machine.run(10**12, max_cycles=SLICE_CYCLES)
            samples.append(current_rss_mib())
            if result.end is not RunEnd.PAUSED:
                break
        if result.end is not RunEnd.EXIT or result.exit_code != 0:
            raise RuntimeError(f"benchmark guest {program.name} failed: {result}")
    finally:
        machine.close()
    return max(samples) - samples[0], len(samples)


def run(quick: bool, repeat: int) -> list[Row]:
    calls = 20_000 if quick else 1_000_000
    chunks = 64 if quick else 10 * 1024
    with tempfile.TemporaryDirectory(prefix="hgcmlab-bench-") as temporary:
        folder = Path(temporary)
        (folder / "one.txt").write_bytes(b"x")
        with open(folder / "bulk.bin", "wb") as sparse:
            sparse.truncate(chunks * CHUNK)
        reads = assemble(BULK.format(flags=READ_OPEN, chunks=chunks, buffer=GUEST_BUFFER, chunk=CHUNK,
                                     operation="tool_read"), mode=64)
        call_growth, _ = rss_growth(folder, round_trip_program(calls))
        bulk_growth, _ = rss_growth(folder, reads)
    gib = chunks * CHUNK / 1024**3
    return [
        Row("memory", f"RSS growth over {calls:,} 1-byte READ calls", call_growth, "MiB",
            target=f"< {TARGET_MIB} MiB", met=call_growth < TARGET_MIB),
        Row("memory", f"RSS growth over {gib:g} GiB read in 1 MiB READ calls", bulk_growth, "MiB",
            target=f"< {TARGET_MIB} MiB", met=bulk_growth < TARGET_MIB),
    ]
