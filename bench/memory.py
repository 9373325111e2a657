"""Memory stays flat however much HGCM work a guest does (issue 12).

* Calls: the round-trip guest of bench/hgcm.py re-submits a 1-byte READ 1,000,000 times.
* Bulk: a guest reads 10 GiB in 1 MiB READ calls (from a sparse file: no disk space used,
  the host returns zeros at page-cache speed).

Each run happens in a fresh process (``python -m bench.memory PROBE COUNT FOLDER``), so its
peak resident set size (``ru_maxrss``) belongs to that run alone; the figure is the peak
minus the resident size just before the run started (machine built, program loaded).  No
event sink is attached, as in a plain ``hgcmlab run`` without a trace.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.core import Row, current_rss_mib
from bench.hgcm import BULK, CHUNK, GUEST_BUFFER, READ_OPEN, round_trip_program
from hgcmlab.machine.boards import vbox_board

#: RSS growth the issue allows for either run.
TARGET_MIB = 50


def _probe(kind: str, count: int, folder: Path) -> dict[str, float]:
    """In this process: run one guest, return resident sizes in MiB."""
    from hgcmlab.guest_asm.assembler import assemble
    from hgcmlab.machine.machine import RunEnd

    if kind == "calls":
        program = round_trip_program(count)
    else:
        program = assemble(BULK.format(flags=READ_OPEN, chunks=count, buffer=GUEST_BUFFER, chunk=CHUNK,
                                       operation="tool_read"), mode=64)
    machine = vbox_board(64)
    try:
        machine.add_share("b", folder)
        machine.load(program)
        before = max(current_rss_mib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        result = machine.run(10**12)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if result.end is not RunEnd.EXIT or result.exit_code != 0:
            raise RuntimeError(f"benchmark guest {program.name} failed: {result}")
    finally:
        machine.close()
    return {"before": before, "peak": peak, "after": current_rss_mib()}


def rss_growth(kind: str, count: int, folder: Path) -> float:
    """Peak RSS growth in MiB of one run of ``kind`` ("calls" or "bulk") in a fresh process."""
    root = str(Path(__file__).resolve().parent.parent)  # where the bench package lives
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    output = subprocess.run([sys.executable, "-m", "bench.memory", kind, str(count), str(folder)],
                            check=True, capture_output=True, text=True, env=env)
    sizes = json.loads(output.stdout)
    return sizes["peak"] - sizes["before"]


def run(quick: bool, repeat: int) -> list[Row]:
    calls = 20_000 if quick else 1_000_000
    chunks = 64 if quick else 10 * 1024
    with tempfile.TemporaryDirectory(prefix="hgcmlab-bench-") as temporary:
        folder = Path(temporary)
        (folder / "one.txt").write_bytes(b"x")
        with open(folder / "bulk.bin", "wb") as sparse:
            sparse.truncate(chunks * CHUNK)
        call_growth = rss_growth("calls", calls, folder)
        bulk_growth = rss_growth("bulk", chunks, folder)
    gib = chunks * CHUNK / 1024**3
    return [
        Row("memory", f"peak RSS growth over {calls:,} 1-byte READ calls", call_growth, "MiB",
            target=f"< {TARGET_MIB} MiB", met=call_growth < TARGET_MIB),
        Row("memory", f"peak RSS growth over {gib:g} GiB read in 1 MiB READ calls", bulk_growth, "MiB",
            target=f"< {TARGET_MIB} MiB", met=bulk_growth < TARGET_MIB),
    ]


if __name__ == "__main__":
    print(json.dumps(_probe(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))))
