"""Cycle-aware execution speed against bare Unicorn with no hooks, in the same process.

Each figure is measured side by side: bare Unicorn, our machine (count-free, the default)
and our machine on the previous path (Unicorn's instruction count) take turns in every
repetition, and so does our machine started paged (the loader's 4-level tables, docs/
paging.md), reported beside the unpaged figure; the medians are reported.  Two timings: the whole run (building the machine
or the engine included, as the figures and the target of issue 15 were first measured) and
execution only (``emu_start`` / ``Machine.run``).  Both of our paths must count the same instructions
and cycles, or the benchmark refuses to report.  A store loop is measured beside bare Unicorn's
same loop and beside our machine with the CPU's own TLB fill (``Cpu.use_cpu_tlb``: every guest
store on Unicorn's slow path, as bare Unicorn's are; machine/cpu.py ``_install_fast_stores``)."""

from __future__ import annotations

import ctypes
import statistics
import time
from collections.abc import Callable

import unicorn
import unicorn.unicorn_py3.unicorn as _uc_binding
from unicorn import x86_const as ux

from bench.core import Row
from hgcmlab.guest_asm.assembler import AssembledProgram, assemble
from hgcmlab.machine import fastblock
from hgcmlab.machine.boards import vbox_board

COMPUTE = """
_start:
    mov ecx, {n}
again:
    add eax, ecx
    imul ebx, eax
    xor edx, ebx
    dec ecx
    jnz again
    out 0xf4, al
"""

MEMCPY = """
_start:
    mov esi, 0x100000
    mov edi, 0x300000
    mov ecx, {n}
again:
    mov eax, [rsi]
    mov [rdi], eax
    add rsi, 4
    add rdi, 4
    dec ecx
    jnz again
    out 0xf4, al
"""


STORE_LOOP = """
_start:
    mov edi, 0x100000
    mov ecx, {n}
again:
    mov [rdi], eax
    add eax, ecx
    dec ecx
    jnz again
    out 0xf4, al
"""


REP_STOSB = """
_start:
    mov edx, {n}
again:
    mov edi, 0x100000
    mov ecx, 172
    xor eax, eax
    rep stosb
    dec edx
    jnz again
    out 0xf4, al
"""


def _bare(code: bytes, stop: int, noop_block_hook: bool = False) -> tuple[float, float]:
    """(seconds for the whole run, seconds executing) of bare Unicorn running ``code`` up
    to ``stop``; the whole run includes creating the engine and mapping its memory.
    ``noop_block_hook``: with a native block hook that does nothing (the floor of any
    per-block counting through Unicorn's hooks)."""
    start = time.perf_counter()
    uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_64)
    uc.mem_map(0, 64 * 1024 * 1024)
    uc.mem_write(0x10000, code)
    uc.reg_write(ux.UC_X86_REG_RSP, 64 * 1024 * 1024)
    noop = fastblock.noop_hook_address()
    if noop_block_hook and noop is not None:
        handle = ctypes.c_size_t()
        _uc_binding.uclib.uc_hook_add(uc._uch, ctypes.byref(handle), unicorn.UC_HOOK_BLOCK, ctypes.c_void_p(noop),
                                      None, ctypes.c_uint64(1), ctypes.c_uint64(0))
    executing = time.perf_counter()
    uc.emu_start(0x10000, stop)
    end = time.perf_counter()
    return end - start, end - executing


def _ours(program: AssembledProgram, count_free: bool = True, paging: bool = False,
          cpu_tlb: bool = False) -> tuple[float, float, int, int]:
    """(seconds for the whole run, seconds executing, instructions, cycles) of our machine
    running ``program`` to its end (``paging``: started paged; ``cpu_tlb``: with the CPU's
    own TLB fill, stores on Unicorn's slow path); the whole run includes building and
    closing it."""
    start = time.perf_counter()
    machine = vbox_board(64, count_free=count_free)
    machine.load(program, paging=paging)
    if cpu_tlb:
        machine.cpu.use_cpu_tlb()
    executing = time.perf_counter()
    result = machine.run(10**10)
    executed = time.perf_counter()
    machine.close()
    end = time.perf_counter()
    return end - start, executed - executing, result.instructions, result.cycles


def _side_by_side(actions: list[Callable[[], tuple[float, ...]]], repeat: int) -> list[tuple[float, float]]:
    """Per action, the medians of the (whole run, executing) seconds it reports, the actions
    taking turns in every repetition (so that a load change on this shared machine hits
    them alike)."""
    samples: list[list[tuple[float, ...]]] = [[] for _ in actions]
    for _ in range(repeat):
        for action, times in zip(actions, samples):
            times.append(action())
    return [(statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)) for times in samples]


def run(quick: bool, repeat: int) -> list[Row]:
    rows = []
    # Long enough (bare Unicorn: tens of milliseconds) that start-up and load swings on this
    # shared machine do not dominate.
    for name, template, iterations in (("compute loop", COMPUTE, 10_000_000), ("memcpy loop", MEMCPY, 2_000_000)):
        source = template.format(n=20_000 if quick else iterations)
        program = assemble(source, mode=64)
        stop = program.end - 2  # the bare run stops before `out 0xf4, al`
        _whole, _executing, instructions, cycles = _ours(program)
        if _ours(program, count_free=False)[2:] != (instructions, cycles):
            raise RuntimeError(f"{name}: the counted path counts differently")
        if _ours(program, paging=True)[2:] != (instructions, cycles):
            raise RuntimeError(f"{name}: the paged run counts differently")
        bare, ours, counted, floor, paged = _side_by_side(
            [lambda: _bare(program.code, stop), lambda: _ours(program), lambda: _ours(program, count_free=False),
             lambda: _bare(program.code, stop, noop_block_hook=True), lambda: _ours(program, paging=True)], repeat)
        for timed, part, label in ((0, "whole run", "set-up included, as the target was set"),
                                   (1, "execution only", "")):
            ours_rate, bare_rate, counted_rate, floor_rate = (instructions / seconds[timed] / 1e6
                                                              for seconds in (ours, bare, counted, floor))
            target = ">= 25% of bare" if timed == 0 else ""
            met = ours_rate >= 0.25 * bare_rate if timed == 0 else None
            detail = f" ({label})" if label else ""
            rows.append(Row("execution", f"{name}, {part}{detail}: M instructions/s, exact cycles", ours_rate,
                            "M/s", bare_rate, "bare Unicorn, no hooks", target, met))
            rows.append(Row("execution", f"{name}, {part}: the same on Unicorn's count (previous path)",
                            counted_rate, "M/s", bare_rate, "bare Unicorn, no hooks"))
            rows.append(Row("execution", f"{name}, {part}: bare Unicorn with a native no-op block hook",
                            floor_rate, "M/s", bare_rate, "bare Unicorn, no hooks"))
            paged_rate = instructions / paged[timed] / 1e6
            rows.append(Row("execution", f"{name}, {part}: paged start (4-level paging)", paged_rate, "M/s",
                            ours_rate, "ours unpaged"))
    iterations = 20_000 if quick else 2_000_000
    program = assemble(STORE_LOOP.format(n=iterations), mode=64)
    _whole, _executing, instructions, cycles = _ours(program)
    if _ours(program, cpu_tlb=True)[2:] != (instructions, cycles):
        raise RuntimeError("store loop: the CPU's TLB fill counts differently")
    bare, ours, slow = _side_by_side([lambda: _bare(program.code, program.end - 2), lambda: _ours(program),
                                      lambda: _ours(program, cpu_tlb=True)], repeat)
    rows.append(Row("execution", "store loop (one 4-byte store a loop), execution only: M instructions/s",
                    instructions / ours[1] / 1e6, "M/s", instructions / bare[1] / 1e6, "bare Unicorn, no hooks"))
    rows.append(Row("execution", "store loop, execution only: with the CPU's TLB fill (stores on the slow path)",
                    instructions / slow[1] / 1e6, "M/s", instructions / bare[1] / 1e6, "bare Unicorn, no hooks"))
    calls = 2_000 if quick else 50_000
    program = assemble(REP_STOSB.format(n=calls), mode=64)
    bare, ours = _side_by_side([lambda: _bare(program.code, program.end - 2), lambda: _ours(program)], repeat)
    # Reported as calls per second so that the ratio reads like the others (higher is better).
    rows.append(Row("execution", "rep stosb of 172 bytes (a request's size), execution only: calls/s",
                    calls / ours[1], "calls/s", calls / bare[1], "bare Unicorn, no hooks"))
    return rows
