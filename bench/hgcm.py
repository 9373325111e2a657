"""HGCM round trips and bulk data through the guest, against direct Python and host I/O.

* Round trip: a guest loop re-submits one prepared 1-byte READ request N times (out,
  check DONE, repeat) against calling the service's READ directly from Python with the
  same arguments.  Its figures (each call path through ``Machine.run`` and as ``hgcmlab
  run`` runs it, the accelerator off, the direct path off, the service alone) are taken
  in turn, round by round.
* Bulk: a guest writes a file in 1 MiB WRITE calls and reads it back, with page-list
  buffers (what Linux sends) and with LinAddr buffers, against os.pwrite/os.pread of the
  same sizes on the same file system.  The guest figure is the steady state of the
  transfer: the guest is run untimed to the end of its first half of calls (set-up,
  open, the first call, the one-time decoding of the call path's blocks), then timed to
  its end, so the figure is the second half's calls alone.  The host baseline and every
  path's figure are taken in turn, round by round, as the round trips' are (at least 9
  rounds in full mode): a 1 MiB call is mostly a copy, whose speed on a shared machine
  moves by tens of percent between moments.
* The payload alone: the same host system call the direct path makes (``os.preadv`` into,
  ``os.pwrite`` from, a window of guest RAM), side by side with os.pread/os.pwrite of bytes
  objects, and the fixed cost of a call (our time per 1 MiB call minus the host's).  They
  say how much of a gap is the copy and how much the rest of the call (guest code, device,
  service).
* Each guest figure is measured on the paths of a call, side by side: the accelerator's
  native hook (the default where it is available: devices/vmmdev/accel.py), its Python
  hook (``VMMDevConfig(native=False)``: pure Python, devices/vmmdev/accel_python.py), and,
  with the accelerator off, the device's direct path (views of guest RAM; round trips
  only) and its general path (``direct_buffers=False`` too: every call through bounce
  buffers).

Every figure here, ours and baselines alike, is the process's CPU time (user + system,
``time.process_time``): the work is single-threaded and synchronous (the host files stay in
the page cache), so it equals wall time on an idle machine, and it is far less disturbed
than wall time by the other jobs of a shared one.
"""

from __future__ import annotations

import functools
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.core import Row
from bench.direct import DirectClient
from hgcmlab.devices.vmmdev import accel
from hgcmlab.devices.vmmdev.config import VMMDevConfig
from hgcmlab.guest_asm.assembler import AssembledProgram, assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import Machine, RunEnd
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.runcontrol import Budgets, run_supervised
from hgcmlab.machine.tracing import CallbackSink
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflFn
from hgcmlab.services.sharedfolders.service import SharedFoldersService

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
    cmp dword ptr [chunks], 0
    je done
next:
    ccall3 {operation}, obj, {buffer}, {chunk}
    test eax, eax
    js failed
    dec dword ptr [chunks]
    jnz next
done:
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


def bulk_program(operation: str, chunks: int, *, linaddr: bool = False) -> AssembledProgram:
    """The bulk guest: ``chunks`` 1 MiB calls of ``operation`` ("tool_write" or
    "tool_read"), buffers sent as page lists, or as LinAddr parameters with ``linaddr``."""
    source = BULK.format(flags=RW_CREATE, chunks=chunks, buffer=GUEST_BUFFER, chunk=CHUNK, operation=operation)
    return assemble(source, mode=64, defines={"HGCM_USE_LINADDR": 1} if linaddr else None)


#: The paths a call can take: the accelerator's native hook, its Python hook, the device's
#: direct path, the device's bounce buffers.
NATIVE, PYTHON, DEVICE, GENERAL = "native", "python", "device", "general"
_CONFIGS = {NATIVE: VMMDevConfig(), PYTHON: VMMDevConfig(native=False), DEVICE: VMMDevConfig(accelerator=False),
            GENERAL: VMMDevConfig(accelerator=False, direct_buffers=False)}


def _guest_machine(folder: Path, program: AssembledProgram, path: str) -> Machine:
    """A machine with share "b" = ``folder``, calls taking ``path``, ``program`` loaded."""
    machine = vbox_board(64, vmmdev_config=_CONFIGS[path])
    machine.add_share("b", folder)
    machine.load(program)
    return machine


def _run_guest(folder: Path, program: AssembledProgram, *, path: str = NATIVE, as_cli: bool = False) -> None:
    """Run a benchmark guest against share "b" = ``folder`` with calls taking ``path``; it
    must exit with 0 (and on the accelerator's paths, its hook must have taken the calls).
    ``as_cli`` runs it the way ``hgcmlab run`` does (guest-log sink, supervised run)."""
    machine = _guest_machine(folder, program, path)
    if as_cli:
        machine.tracer.add_sink(CallbackSink({"guest_log"}, lambda event: None))
        result = run_supervised(machine, Budgets())
    else:
        result = machine.run(10**10)
    accelerator = machine.accelerator
    accelerated = accelerator.calls if accelerator is not None else 0
    machine.close()
    if result.end is not RunEnd.EXIT or result.exit_code != 0:
        raise RuntimeError(f"benchmark guest {program.name} failed: {result}")
    if path in (NATIVE, PYTHON) and (accelerator is None or accelerator.native != (path == NATIVE)
                                     or accelerated == 0 and machine.vmmdev.direct_calls > 1):
        raise RuntimeError(f"benchmark guest {program.name}: the accelerator's {path} hook took no call "
                           f"({accel.unavailable_reason() or 'it declined every call'})")


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


def _host_guest_ram(folder: Path, chunks: int, *, write: bool) -> None:
    """The direct path's system calls alone: 1 MiB ``os.pwrite`` from / ``os.preadv`` into a
    window of a guest RAM object (an anonymous mapping, as the machine's), same file."""
    memory = GuestMemory(GUEST_BUFFER + CHUNK)
    window = memory.window(GUEST_BUFFER, CHUNK)
    fd = os.open(folder / "host.bin", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for index in range(chunks):
            if write:
                os.pwrite(fd, window, index * CHUNK)
            else:
                os.preadv(fd, [window], index * CHUNK)
    finally:
        os.close(fd)
        window.release()
        memory.close()


#: Instructions of the bulk guest after its last call returns (test, js, dec, jnz; then
#: the exit): the half-way stop is made before them.
_BULK_TAIL = 6


def _second_half_seconds(folder: Path, full: AssembledProgram, half: AssembledProgram, path: str) -> float:
    """CPU time of the second half of ``full``'s calls: ``half`` (the same guest doing half
    the calls) is run once to learn where its calls end; ``full`` is run untimed to exactly
    there (an instruction budget), then timed to its end."""
    machine = _guest_machine(folder, half, path)
    halfway = machine.run(10**10).instructions - _BULK_TAIL
    machine.close()
    machine = _guest_machine(folder, full, path)
    try:
        first = machine.run(halfway)
        start = time.process_time()
        result = machine.run(10**10)
        elapsed = time.process_time() - start
    finally:
        machine.close()
    if first.end is not RunEnd.BUDGET or result.end is not RunEnd.EXIT or result.exit_code != 0:
        raise RuntimeError(f"benchmark guest {full.name} failed: {first}, {result}")
    return elapsed


def _timed(action: Callable[[], object]) -> Callable[[], float]:
    """``action`` made to return the CPU time it took."""
    def timed() -> float:
        start = time.process_time()
        action()
        return time.process_time() - start
    return timed


def median_seconds_interleaved(actions: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Median of the seconds each of ``actions`` reports, over ``rounds`` rounds that run
    them all in turn (each round starting one action later than the one before).  A bulk
    call is mostly the copy of 1 MiB, whose speed on a shared machine moves by tens of
    percent from one second to the next: a guest figure and the host baseline it is
    compared with must be taken in the same moments, not one after the other."""
    names = list(actions)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        for position in range(len(names)):
            name = names[(round_index + position) % len(names)]
            gc.collect()
            samples[name].append(actions[name]())
    return {name: statistics.median(taken) for name, taken in samples.items()}


def run(quick: bool, repeat: int) -> list[Row]:
    calls = 2_000 if quick else 100_000
    chunks = 8 if quick else 256
    measured = chunks // 2   # the calls a bulk figure times (the second half of the guest's)
    # Rounds of the interleaved figures: at least 9 in full mode (each is short, and the
    # load of a shared machine moves a single one by tens of percent, up to 2x).
    rounds = repeat if quick else max(repeat, 9)
    megabytes = measured * CHUNK / (1024 * 1024)
    native = accel.available()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="hgcmlab-bench-") as temporary:
        folder = Path(temporary)
        (folder / "one.txt").write_bytes(b"x")
        # Calls per run, by figure: the native hook's runs four times longer (100,000 of its
        # calls take a tenth of a second, which the load of a shared machine moves by
        # several percent), the device's paths five times shorter (they only give scale).
        made = {"native": 4 * calls, "native, as_cli": 4 * calls, "python": calls, "python, as_cli": calls,
                "device": calls // 5, "general": calls // 5, "service": calls}
        trips = {count: round_trip_program(count) for count in sorted(set(made.values()))}
        figures = {"native": lambda: _run_guest(folder, trips[made["native"]]),
                   "native, as_cli": lambda: _run_guest(folder, trips[made["native"]], as_cli=True),
                   "python": lambda: _run_guest(folder, trips[calls], path=PYTHON),
                   "python, as_cli": lambda: _run_guest(folder, trips[calls], path=PYTHON, as_cli=True),
                   "device": lambda: _run_guest(folder, trips[made["device"]], path=DEVICE),
                   "general": lambda: _run_guest(folder, trips[made["general"]], path=GENERAL),
                   "service": lambda: _direct_round_trips(folder, calls)}
        if not native:
            del figures["native"], figures["native, as_cli"]
        taken = median_seconds_interleaved({name: _timed(action) for name, action in figures.items()}, rounds)
        rate = {name: made[name] / seconds for name, seconds in taken.items()}
        if native:
            rows.append(Row("hgcm", "1-byte READ round trips per second (guest loop), native accelerator",
                            rate["native"], "calls/s", rate["service"], "service called directly",
                            ">= 100000 calls/s", rate["native"] >= 100_000))
        rows.append(Row("hgcm", "1-byte READ round trips per second (guest loop), pure Python", rate["python"],
                        "calls/s", rate["service"], "service called directly", ">= 40000 calls/s",
                        rate["python"] >= 40_000))
        rows.append(Row("hgcm", "1-byte READ round trips, accelerator off (the device's direct path)",
                        rate["device"], "calls/s", rate["python"], "pure Python (the accelerator's hook)"))
        rows.append(Row("hgcm", "1-byte READ round trips, accelerator and direct path off", rate["general"],
                        "calls/s", rate["device"], "the device's direct path"))
        for path in (NATIVE, PYTHON) if native else (PYTHON,):
            ours, as_cli = rate[path], rate[f"{path}, as_cli"]
            rows.append(Row("hgcm", f"1-byte READ round trips run as `hgcmlab run` runs them ({path})",
                            as_cli, "calls/s", ours, f"Machine.run ({path})", "as fast (>= 95%)",
                            as_cli >= 0.95 * ours))
        for linaddr in (False, True):
            kind = "LinAddr" if linaddr else "page-list"
            programs = {(operation, count): bulk_program(operation, count, linaddr=linaddr)
                        for operation in ("tool_write", "tool_read") for count in (chunks, measured)}
            # Writes first: the reads then find the file the guest wrote (and the host its own).
            for operation, host, host_name in (("tool_write", _host_write, "os.pwrite"),
                                               ("tool_read", _host_read, "os.pread")):
                verb = "writes" if operation == "tool_write" else "reads"
                call = "WRITE" if operation == "tool_write" else "READ"
                write = operation == "tool_write"
                full, half = programs[operation, chunks], programs[operation, measured]
                actions: dict[str, Callable[[], float]] = {
                    path: functools.partial(_second_half_seconds, folder, full, half, path)
                    for path in ((NATIVE, PYTHON, GENERAL) if native else (PYTHON, GENERAL))}
                actions["host"] = _timed(functools.partial(host, folder, measured))
                if not linaddr:  # the same system calls for both buffer kinds: reported once
                    actions["payload"] = _timed(functools.partial(_host_guest_ram, folder, measured, write=write))
                times = median_seconds_interleaved(actions, rounds)
                baseline = times["host"]
                best = NATIVE if native else PYTHON
                ours = times[best]
                rows.append(Row("bulk", f"guest {verb} {megabytes:g} MiB in 1 MiB {call} calls, {kind} buffers "
                                f"({'native accelerator' if native else 'pure Python'})",
                                megabytes / ours, "MiB/s", megabytes / baseline, host_name, ">= 80% of host",
                                ours * 0.8 <= baseline))
                if native:
                    rows.append(Row("bulk", "the same, pure Python", megabytes / times[PYTHON], "MiB/s",
                                    megabytes / baseline, host_name))
                rows.append(Row("bulk", "the same, accelerator and direct path off", megabytes / times[GENERAL],
                                "MiB/s", megabytes / baseline, host_name))
                if not linaddr:
                    syscall = "os.pwrite from" if write else "os.preadv into"
                    rows.append(Row("bulk", f"{syscall} a guest RAM window, 1 MiB calls (the payload alone)",
                                    megabytes / times["payload"], "MiB/s", megabytes / baseline, host_name))
                rows.append(Row("bulk", f"the same {call}, fixed cost per 1 MiB call (ours minus host, 0 if below)",
                                max(ours - baseline, 0.0) / measured * 1e6, "us/call"))
    return rows
