"""The direct READ/WRITE path seen from guest code: the same exit codes, instruction and
cycle counts, traces and host files with ``VMMDevConfig.direct_buffers`` on and off,
including asynchronous timing, cancellation, cycle budgets and reproducible shares."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.hgcm import BULK, RW_CREATE, round_trip_program
from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.guest_asm.assembler import AssembledProgram, assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.programs import bundled_program
from hgcmlab.machine.tracing import ListSink
from hgcmlab.services.sharedfolders.abi import ShflFn

CHUNK = 3 * 4096 + 100


def _bulk(operation: str, chunks: int, *, linaddr: bool, mode: int = 64) -> AssembledProgram:
    source = BULK.format(flags=RW_CREATE, chunks=chunks, buffer=0x400000, chunk=CHUNK, operation=operation)
    return assemble(source, mode=mode, defines={"HGCM_USE_LINADDR": 1} if linaddr else None)


#: Reads 100 bytes of the 10-byte file "b:/ten.txt" into a buffer full of 0xAA: the 10
#: bytes, then 90 zeros (the zero-filled bounce buffer VirtualBox copies back whole,
#: VMMDevHGCM.cpp: vmmdevR3HgcmCompleteCallRequest), must be what the guest finds.
#: Exit 0: as expected; 4: wrong count; 5: wrong data; 6: tail not zeroed.
ZERO_TAIL = """
.include "tool.s"
_start:
    ccall2 tool_start, 0, usage
    ccall2 tool_open_spec, obj, spec
    ccall3 tool_create, obj, {flags}, 0
    lea edi, [buffer]
    mov ecx, 100
    mov al, 0xAA
    rep stosb
    ccall3 tool_read, obj, buffer, 100
    test eax, eax
    js failed
    cmp edx, 10
    jne wrong_count
    cmp dword ptr [buffer], 0x33323130
    jne wrong_data
    lea esi, [buffer + 10]
    mov ecx, 90
check:
    cmp byte ptr [esi], 0
    jne not_zeroed
    inc esi
    dec ecx
    jnz check
    mov al, 0
    out 0xf4, al
failed:
    mov al, 3
    out 0xf4, al
wrong_count:
    mov al, 4
    out 0xf4, al
wrong_data:
    mov al, 5
    out 0xf4, al
not_zeroed:
    mov al, 6
    out 0xf4, al
usage: .asciz "t"
spec: .asciz "b:/ten.txt"
.align 8
obj: .space 1056
buffer: .space 128
"""


def _run(folder: Path, program: AssembledProgram, *, direct: bool, config: VMMDevConfig | None = None,
         mode: int = 64, reproducible: bool = False, **run_options: object) -> tuple[object, ...]:
    """Run ``program`` against share "b" = ``folder``; everything a difference would show in."""
    config = replace(config or VMMDevConfig(), direct_buffers=direct)
    machine = vbox_board(mode, vmmdev_config=config, reproducible=reproducible)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    machine.add_share("b", folder)
    machine.add_share("demo", folder)  # what the bundled demo.s and cancel.s map
    machine.load(program)
    result = machine.run(**run_options)  # type: ignore[arg-type]
    taken = machine.vmmdev.direct_calls
    machine.close()
    files = {path.name: path.read_bytes() for path in sorted(folder.iterdir())}
    events = [event.to_json() if reproducible else event.host_independent().to_json() for event in sink.events]
    return result.end, result.exit_code, result.instructions, result.cycles, events, files, taken


def _compare(tmp_path: Path, program: AssembledProgram, **options: object) -> tuple[int, int]:
    """Run on the direct and the general path from identical folders; assert identical
    outcomes; return (direct calls taken with the direct path on, exit code)."""
    outcomes = []
    for direct in (True, False):
        folder = tmp_path / ("direct" if direct else "general")
        folder.mkdir(parents=True)
        (folder / "one.txt").write_bytes(b"x")
        (folder / "ten.txt").write_bytes(b"0123456789")
        outcomes.append(_run(folder, program, direct=direct, **options))
    on, off = outcomes
    assert off[-1] == 0
    assert on[:-1] == off[:-1]
    return on[-1], on[1]  # type: ignore[return-value]


def test_guest_finds_the_unread_tail_of_its_buffer_zeroed(tmp_path: Path) -> None:
    for linaddr in (False, True):
        program = assemble(ZERO_TAIL.format(flags=RW_CREATE), mode=64,
                           defines={"HGCM_USE_LINADDR": 1} if linaddr else None)
        taken, code = _compare(tmp_path / str(linaddr), program)
        assert (taken, code) == (1, 0)


@pytest.mark.parametrize("linaddr", [False, True], ids=["pages", "linaddr"])
@pytest.mark.parametrize("mode", [64, 32])
def test_bulk_write_then_read_is_identical(tmp_path: Path, linaddr: bool, mode: int) -> None:
    for operation in ("tool_write", "tool_read"):
        program = _bulk(operation, 5, linaddr=linaddr, mode=mode)
        taken, code = _compare(tmp_path / operation, program, mode=mode)
        assert (taken, code) == (5, 0)


def test_round_trips_are_identical_untraced_and_traced(tmp_path: Path) -> None:
    taken, code = _compare(tmp_path, round_trip_program(40))
    assert (taken, code) == (41, 0)  # the loop's 40 calls and the program's first READ


def test_asynchronous_timing_is_identical_and_takes_the_general_path(tmp_path: Path) -> None:
    config = VMMDevConfig(timing=HgcmTiming(call_cycles=30_000, force_async=True))
    taken, code = _compare(tmp_path / "a", _bulk("tool_write", 3, linaddr=False), config=config)
    assert (taken, code) == (0, 0)
    config = VMMDevConfig(timing=HgcmTiming(async_functions=frozenset({int(ShflFn.READ)})))
    taken, code = _compare(tmp_path / "b", bundled_program("demo.s", mode=64), config=config)
    assert code == 0 and taken >= 1  # demo's WRITE went direct, its READ did not


@pytest.mark.parametrize("cycles", [1, 50_000, 200_000, 1_000_000])
def test_pausing_at_any_cycle_is_identical(tmp_path: Path, cycles: int) -> None:
    _compare(tmp_path, _bulk("tool_write", 4, linaddr=True), until_cycle=cycles)


@pytest.mark.parametrize("budget", [10, 5_000, 40_000])
def test_instruction_budgets_stop_at_the_same_place(tmp_path: Path, budget: int) -> None:
    _compare(tmp_path, round_trip_program(30), max_instructions=budget)


def test_cancel_program_is_identical(tmp_path: Path) -> None:
    config = VMMDevConfig(timing=HgcmTiming(call_cycles=50_000, force_async=True))
    _taken, code = _compare(tmp_path / "async", bundled_program("cancel.s", mode=64), config=config)
    _taken, code_sync = _compare(tmp_path / "sync", bundled_program("cancel.s", mode=64))
    assert code == code_sync == 0


def test_reproducible_shares_are_identical(tmp_path: Path) -> None:
    taken, code = _compare(tmp_path, bundled_program("demo.s", mode=64), reproducible=True)
    assert code == 0 and taken == 2  # demo.s writes once and reads once
