"""HGCM round trips and bulk data through the guest, against direct Python and host I/O.

* Round trip: a guest loop re-submits one prepared 1-byte READ request N times (out,
  check DONE, repeat) against calling the service's READ directly from Python with the
  same arguments.
* Bulk: a guest writes a file in 1 MiB WRITE calls and reads it back, against
  os.pwrite/os.pread of the same sizes on the same file system.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.core import Row, median_seconds
from guest_asm.assembler import AssembledProgram, assemble
from machine.machine import Machine, RunEnd
from bench.direct import DirectClient
from services.hgcm import SvcParm
from services.sharedfolders.abi import ShflCf, ShflFn
from services.sharedfolders.service import SharedFoldersService

READ_OPEN = int(ShflCf.ACCESS_READ | ShflCf.ACT_OPEN_IF_EXISTS | ShflCf.ACT_FAIL_IF_NEW)
RW_CREATE = int(ShflCf.ACCESS_READWRITE | ShflCf.ACT_OPEN_IF_EXISTS | ShflCf.ACT_CREATE_IF_NEW)
CHUNK = 1024 * 1024
GUEST_BUFFER = 0x400000

ROUND_TRIP = """
.include "tool.s"
_start:
    ccall2 tool_start, 0, usage
    ccall2 tool_open_spec, obj, spec
    ccall3 tool_create, obj, {flags}, 0
    ccall3 tool_read, obj, buffer, 1
    mov ecx, {n}
    mov dx, VMMDEV_PORT
again:
    mov dword ptr [hgcm_call_req + 24], 0
    mov eax, offset_req
    out dx, eax
    test dword ptr [hgcm_call_req + 24], 1
    jz failed
    dec ecx
    jnz again
    mov al, 0
    out 0xf4, al
failed:
    mov al, 1
    out 0xf4, al
usage: .asciz "bench"
spec: .asciz "b:/one.txt"
.align 8
buffer: .space 16
obj: .space 1056
"""

BULK = """
.include "tool.s"
_start:
    ccall2 tool_start, 0, usage
    ccall2 tool_open_spec, obj, spec
    ccall3 tool_create, obj, {flags}, 420
    mov dword ptr [chunks], {chunks}
next:
    ccall3 {operation}, obj, {buffer}, {chunk}
    test eax, eax
    js failed
    dec dword ptr [chunks]
    jnz next
    mov al, 0
    out 0xf4, al
failed:
    mov al, 1
    out 0xf4, al
usage: .asciz "bench"
spec: .asciz "b:/bulk.bin"
.align 8
chunks: .long 0
.align 8
obj: .space 1056
"""


def round_trip_program(calls: int) -> AssembledProgram:
    """The round-trip guest; assembled twice to put the request's address into the loop."""
    source = ROUND_TRIP.format(flags=READ_OPEN, n=calls)
    request = assemble(source.replace("offset_req", "0"), mode=64).symbols["hgcm_call_req"]
    return assemble(source.replace("offset_req", str(request)), mode=64)


def _run_guest(folder: Path, program: AssembledProgram) -> None:
    """Run a benchmark guest against share "b" = ``folder``; it must exit with 0."""
    machine = Machine(64)
    machine.add_share("b", folder)
    machine.load(program)
    result = machine.run(10**10)
    machine.close()
    if result.end is not RunEnd.EXIT or result.exit_code != 0:
        raise RuntimeError(f"benchmark guest {program.name} failed: {result}")


def _direct_round_trips(folder: Path, calls: int) -> None:
    service = SharedFoldersService()
    service.add_mapping("b", str(folder))
    client = DirectClient(service, 1)
    root = client.map("b")
    handle = client.create(root, "/one.txt", READ_OPEN)
    for _ in range(calls):
        status = client.call(ShflFn.READ, SvcParm.u32(root), SvcParm.u64(handle), SvcParm.u64(0),
                             SvcParm.u32(1), SvcParm.ptr(1))
        if status != 0:
            raise RuntimeError(f"direct READ failed: {status}")
    service.close()


def _host_write(folder: Path, chunks: int) -> None:
    data = bytes(CHUNK)
    fd = os.open(folder / "host.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for index in range(chunks):
            os.pwrite(fd, data, index * CHUNK)
    finally:
        os.close(fd)


def _host_read(folder: Path, chunks: int) -> None:
    fd = os.open(folder / "host.bin", os.O_RDONLY)
    try:
        for index in range(chunks):
            os.pread(fd, CHUNK, index * CHUNK)
    finally:
        os.close(fd)


def run(quick: bool, repeat: int) -> list[Row]:
    calls = 2_000 if quick else 100_000
    chunks = 8 if quick else 256
    with tempfile.TemporaryDirectory(prefix="hgcmlab-bench-") as temporary:
        folder = Path(temporary)
        (folder / "one.txt").write_bytes(b"x")
        trips = round_trip_program(calls)
        bulk = {operation: assemble(BULK.format(flags=RW_CREATE, chunks=chunks, buffer=GUEST_BUFFER, chunk=CHUNK,
                                                operation=operation), mode=64)
                for operation in ("tool_write", "tool_read")}
        guest = median_seconds(lambda: _run_guest(folder, trips), repeat)
        direct = median_seconds(lambda: _direct_round_trips(folder, calls), repeat)
        # Writes first: the reads then find the file the guest wrote (and the host its own).
        guest_write = median_seconds(lambda: _run_guest(folder, bulk["tool_write"]), repeat)
        host_write = median_seconds(lambda: _host_write(folder, chunks), repeat)
        guest_read = median_seconds(lambda: _run_guest(folder, bulk["tool_read"]), repeat)
        host_read = median_seconds(lambda: _host_read(folder, chunks), repeat)
    guest_rate, direct_rate = calls / guest, calls / direct
    megabytes = chunks * CHUNK / (1024 * 1024)
    return [
        Row("hgcm", "1-byte READ round trips per second (guest loop)", guest_rate, "calls/s",
            direct_rate, "service called directly", ">= 100000 calls/s", guest_rate >= 100_000),
        Row("bulk", f"guest writes {chunks} MiB in 1 MiB WRITE calls", megabytes / guest_write, "MiB/s",
            megabytes / host_write, "os.pwrite", ">= 80% of host", guest_write * 0.8 <= host_write),
        Row("bulk", f"guest reads {chunks} MiB in 1 MiB READ calls", megabytes / guest_read, "MiB/s",
            megabytes / host_read, "os.pread", ">= 80% of host", guest_read * 0.8 <= host_read),
    ]
