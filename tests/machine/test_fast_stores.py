"""Guest stores on Unicorn's fast path (machine/cpu.py ``_install_fast_stores``): the native
TLB fill hook changes nothing the guest or a trace can observe, self-modifying code is
still caught, and paging is left to the CPU's own walk."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.guest_asm.assembler import AssembledProgram, assemble
from hgcmlab.machine import fastblock
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import Machine, RunEnd
from hgcmlab.machine.programs import bundled_program
from hgcmlab.machine.tracing import ListSink
from tests.machine.test_interrupts import program as interrupt_program
from tests.machine.test_paging import ALIAS, FORMS, FORMS_PROGRAM, MAGIC, MAGIC2, RAM, SAVED_ENTRY, Tables

needs_native = pytest.mark.skipif(fastblock.tlb_fill_hook_address() is None,
                                  reason="the native TLB fill hook exists only on x86-64 Linux hosts")

DATA_PAGE = 0x200000
#: Reads of pages that share DATA_PAGE's slot in Unicorn's TLB (256 entries at first) and
#: outnumber its victim TLB (8 entries): DATA_PAGE's entry is evicted from both.
EVICT = "".join(f"    mov eax, dword ptr [{DATA_PAGE + k * 0x100000:#x}]\n" for k in range(1, 13))

#: Code written into a page that held only data, run, evicted from the TLB, then the page is
#: written as data and its code rewritten: the second call must run the new code (exit 41).
#: Had the data access after the eviction refilled the page without its code mark, the
#: entry would leave the slow path and the rewrite would not drop the stale translation
#: (exit 2).
SMC_AFTER_EVICTION = f"""
_start:
    mov edi, {DATA_PAGE:#x}
    mov dword ptr [rdi + 0x800], 5
    mov byte ptr [rdi], 0xb8
    mov dword ptr [rdi + 1], 1
    mov byte ptr [rdi + 5], 0xc3
    call rdi
    mov ebx, eax
{EVICT}
    mov dword ptr [rdi + 0x800], 7
    mov dword ptr [rdi + 1], 40
    call rdi
    add eax, ebx
    out 0xf4, al
"""

#: Code that rewrites an instruction of its own page before running it (exit 7).
SMC_SAME_PAGE = """
_start:
    mov eax, 3
    mov byte ptr [patch + 1], 7
    jmp patch
patch:
    mov al, 1
    out 0xf4, al
"""


def _machine(program_text: str, mode: int, *, cpu_tlb: bool) -> Machine:
    machine = vbox_board(mode, fast_blocks=False)
    source = program_text if mode == 64 else program_text.replace("rdi", "edi")
    machine.load(assemble(source, mode=mode))
    if cpu_tlb:
        machine.cpu.use_cpu_tlb()
    return machine


def test_the_stored_tlb_fill_code_is_the_assembled_source() -> None:
    # Assembled through guest_asm's keystone worker process, never inside this process.
    assert assemble(fastblock.TLB_FILL_SOURCE, mode=64, base=0).code == fastblock.TLB_FILL_CODE


@needs_native
@pytest.mark.parametrize("mode", [64, 32])
@pytest.mark.parametrize(("text", "exit_code"), [(SMC_AFTER_EVICTION, 41), (SMC_SAME_PAGE, 7)])
def test_self_modifying_code_runs_the_new_code(mode: int, text: str, exit_code: int) -> None:
    results = []
    for cpu_tlb in (False, True):
        machine = _machine(text, mode, cpu_tlb=cpu_tlb)
        assert machine.cpu.fast_stores is not cpu_tlb
        result = machine.run(10_000)
        results.append((result.end, result.exit_code, result.instructions, result.cycles))
        machine.close()
    assert results[0] == results[1]
    assert results[0][:2] == (RunEnd.EXIT, exit_code)


@needs_native
def test_only_pages_code_was_fetched_from_are_marked() -> None:
    machine = _machine(SMC_AFTER_EVICTION, 64, cpu_tlb=False)
    machine.run(10_000)
    assert machine.cpu.fast_stores
    assert machine.cpu.code_page(0x10000) and machine.cpu.code_page(DATA_PAGE)
    assert not machine.cpu.code_page(DATA_PAGE + 0x100000), "read, never run"
    assert not machine.cpu.code_page(machine.memory.size - 8), "the stack"
    machine.close()


def _compare_run(load: Callable[[], AssembledProgram], cpu_tlb: bool, *, share: Path | None = None,
                 config: VMMDevConfig | None = None) -> tuple[object, ...]:
    """(end, exit code, instructions, cycles, RAM digest, trace) of a run."""
    machine = vbox_board(64, vmmdev_config=config)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    if share is not None:
        machine.add_share("demo", share)
    machine.load(load())
    if cpu_tlb:
        machine.cpu.use_cpu_tlb()
    result = machine.run()
    ram = hashlib.sha256(machine.memory.read(0, machine.memory.size)).hexdigest()
    machine.close()
    return (result.end, result.exit_code, result.instructions, result.cycles, ram,
            [event.host_independent().to_json() for event in sink.events])


@needs_native
def test_counts_traces_and_memory_are_identical_with_the_cpu_tlb_fill(tmp_path: Path) -> None:
    config = VMMDevConfig(timing=HgcmTiming(call_cycles=30_000, byte_cycles=0, force_async=True))
    program = assemble(interrupt_program(64, use_irq=True), mode=64)
    hooked = _compare_run(lambda: program, False, config=config)
    assert hooked[0] is RunEnd.EXIT and hooked[1] >> 8 == 1, "the handler saw the HGCM event once"
    assert hooked == _compare_run(lambda: program, True, config=config)
    # The demo's files carry host times, which reach guest memory: RAM is not compared.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    demo = _compare_run(lambda: bundled_program("demo.s", mode=64), False, share=tmp_path / "a")
    assert demo[:2] == (RunEnd.EXIT, 0)
    other = _compare_run(lambda: bundled_program("demo.s", mode=64), True, share=tmp_path / "b")
    assert demo[:4] + demo[5:] == other[:4] + other[5:]


@needs_native
def test_a_memory_watch_added_later_sees_every_store() -> None:
    """Stores to a data page left the slow path before the watch was added; the watch
    still reports each of them."""
    text = f"_start:\n    mov edi, {DATA_PAGE:#x}\n    mov ecx, 100\nagain:\n    mov [rdi], ecx\n" \
           "    dec ecx\n    jnz again\n    mov ecx, 100\nagain2:\n    mov [rdi], ecx\n    dec ecx\n    jnz again2\n" \
           "    hlt\n"
    machine = _machine(text, 64, cpu_tlb=False)
    assert machine.run(2 + 3 * 100).end is RunEnd.BUDGET
    writes: list[tuple[int, int]] = []
    machine.cpu.watch_memory(lambda access, address, _size, value: writes.append((address, value))
                             if access == "write" else None)
    assert machine.run(10_000).end is RunEnd.HALT
    assert writes == [(DATA_PAGE, value) for value in range(100, 0, -1)]
    machine.close()


@needs_native
def test_paging_is_left_to_the_cpu_walk() -> None:
    """A guest that turns paging on: the CPU leaves the hook before the block that writes
    CR0 runs (the alias the guest reads exists only in its page tables); a machine started
    paged never uses it."""
    mode, cr4_bits, entry_size, build = FORMS["4-level 4K"]
    machine = vbox_board(mode, RAM)
    root, leaf, frame, _other = build(Tables(machine, entry_size))
    machine.memory.write(frame + 0x300, MAGIC.to_bytes(4, "little"))
    old_entry = int.from_bytes(machine.memory.read(leaf, 4), "little")
    defines = {"CR3VAL": root, "CR4BITS": cr4_bits, "READ_AT": ALIAS + 0x300, "LEAF": leaf,
               "SAVED": SAVED_ENTRY, "MAGIC": MAGIC, "MAGIC2": MAGIC2, "REMAP": 0, "NEWENTRY": old_entry,
               "OLDENTRY": old_entry}
    machine.load(assemble(FORMS_PROGRAM, mode=mode, defines=defines))
    assert machine.cpu.fast_stores
    result = machine.run(100_000)
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.fault and result.fault.format()
    assert not machine.cpu.fast_stores
    machine.close()
    paged = vbox_board(64)
    paged.load(assemble("_start:\n    hlt\n", mode=64), paging=True)
    assert paged.run().end is RunEnd.HALT
    assert not paged.cpu.fast_stores
    paged.close()
