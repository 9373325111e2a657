"""Scale: directory listings through the guest, many open handles, a 1 GiB machine.

Costs per entry and per handle are reported at growing counts so that a curve that is not
flat shows up as rising numbers.
"""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path

from bench.core import Row, current_rss_mib, median_seconds
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import RunEnd
from hgcmlab.machine.programs import bundled_program
from bench.direct import DirectClient
from hgcmlab.services.sharedfolders.abi import ShflCf
from hgcmlab.services.sharedfolders.service import MAX_HANDLES_PER_CLIENT, SharedFoldersService

OPEN_OR_CREATE = int(ShflCf.ACCESS_READWRITE | ShflCf.ACT_OPEN_IF_EXISTS | ShflCf.ACT_CREATE_IF_NEW)


def _list_through_guest(folder: Path, expected: int) -> None:
    machine = vbox_board(64)
    machine.add_share("d", folder)
    machine.set_arguments(["d:/"])
    machine.load(bundled_program("ls.s", mode=64))
    result = machine.run(10**10)
    machine.close()
    if result.end is not RunEnd.EXIT or len(result.log_lines) != expected:
        raise RuntimeError(f"ls returned {len(result.log_lines)} names, expected {expected}")


def _open_handles(folder: Path, count: int) -> None:
    """Open ``count`` files, spread over clients so that no client passes its own limit."""
    service = SharedFoldersService()
    service.add_mapping("d", str(folder))
    for first in range(0, count, MAX_HANDLES_PER_CLIENT):
        client = DirectClient(service, first // MAX_HANDLES_PER_CLIENT + 1)
        root = client.map("d")
        for index in range(first, min(count, first + MAX_HANDLES_PER_CLIENT)):
            client.create(root, f"/h{index}", OPEN_OR_CREATE)
    service.close()


def run(quick: bool, repeat: int) -> list[Row]:
    rows: list[Row] = []
    list_counts = (1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    for count in list_counts:
        with tempfile.TemporaryDirectory(prefix="hgcmlab-bench-") as temporary:
            folder = Path(temporary)
            for index in range(count):
                (folder / f"entry-{index:06d}").touch()
            seconds = median_seconds(lambda: _list_through_guest(folder, count), 1 if count > 10_000 else repeat)
        rows.append(Row("scale", f"guest ls of {count} entries: microseconds per entry",
                        seconds / count * 1e6, "us/entry", target="flat as counts grow"))
    # VirtualBox's global handle table holds 4095 handles: 10,000 cannot be open at once.
    handle_counts = (1_000, 4_000)
    for count in handle_counts:
        with tempfile.TemporaryDirectory(prefix="hgcmlab-bench-") as temporary:
            seconds = median_seconds(lambda: _open_handles(Path(temporary), count), repeat)
        rows.append(Row("scale", f"{count} open handles: microseconds per CREATE", seconds / count * 1e6,
                        "us/handle", target="flat as counts grow"))
    gc.collect()
    before = current_rss_mib()
    start = time.perf_counter()
    machine = vbox_board(64, ram_size=1024 * 1024 * 1024)
    startup = time.perf_counter() - start
    grown = current_rss_mib() - before
    machine.close()
    rows.append(Row("scale", "1 GiB machine start-up", startup, "s", target="< 0.5 s", met=startup < 0.5))
    rows.append(Row("scale", "1 GiB machine resident memory growth", grown, "MiB",
                    target="far below 1024 MiB", met=grown < 64))
    return rows
