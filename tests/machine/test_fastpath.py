"""The native block hook counts exactly what the Python hook counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine import fastblock
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.programs import bundled_program
from hgcmlab.machine.tracing import ListSink
from tests.machine.test_interrupts import CONNECT_REQ, WOKEN
from tests.machine.test_interrupts import program as interrupt_program
from tests.machine.test_time import LOOP

needs_native = pytest.mark.skipif(fastblock.native_hook_address() is None,
                                  reason="the native block hook exists only on x86-64 Linux hosts")


def _run(fast: bool, load, *, config: VMMDevConfig | None = None, share: Path | None = None,
         until_cycle: int | None = None) -> tuple[int, int, int, list[str]]:
    machine = vbox_board(64, vmmdev_config=config, fast_blocks=fast)
    assert machine.cpu.fast_blocks is fast
    sink = ListSink()
    machine.tracer.add_sink(sink)
    if share is not None:
        machine.add_share("demo", share)
    machine.load(load())
    result = machine.run(until_cycle=until_cycle) if until_cycle else machine.run()
    return result.exit_code, result.instructions, result.cycles, [e.host_independent().to_json() for e in sink.events]


@needs_native
def test_compute_loop_counts_are_identical() -> None:
    program = assemble(LOOP, mode=64)
    assert _run(True, lambda: program) == _run(False, lambda: program)


@needs_native
def test_pausing_at_a_cycle_is_identical() -> None:
    program = assemble("_start:\nagain:\n inc eax\n imul ebx, eax\n jmp again\n", mode=64)
    for cycle in (1, 17, 1000, 12345):
        assert _run(True, lambda: program, until_cycle=cycle) == _run(False, lambda: program, until_cycle=cycle)


@needs_native
def test_demo_with_async_interrupts_is_identical(tmp_path: Path) -> None:
    config = VMMDevConfig(timing=HgcmTiming(call_cycles=30_000, byte_cycles=0, force_async=True))
    program = assemble(interrupt_program(64, use_irq=True), mode=64)
    assert _run(True, lambda: program, config=config) == _run(False, lambda: program, config=config)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    demo = bundled_program("demo.s", mode=64)
    fast = _run(True, lambda: demo, config=config, share=tmp_path / "a")
    slow = _run(False, lambda: demo, config=config, share=tmp_path / "b")
    assert fast == slow and fast[0] == 0


def test_python_hook_is_used_when_asked() -> None:
    assert vbox_board(64, fast_blocks=False).cpu.fast_blocks is False


@needs_native
@pytest.mark.parametrize("fast", [True, False])
def test_interrupt_pending_while_disabled_is_taken_after_sti_in_a_later_block(fast: bool) -> None:
    """The line goes up while IF is clear; blocks without sti run natively; the interrupt is
    taken once a later block enables interrupts (after the one-instruction shadow)."""
    config = VMMDevConfig(timing=HgcmTiming(call_cycles=500, byte_cycles=0, force_async=True))
    done = f"[{CONNECT_REQ} + 24]"
    original = f"    sti\nwait:\n    hlt\n    test dword ptr {done}, 1\n    jz wait\n"
    # No hlt: the interrupt must arrive while the guest runs, or it spins until the budget ends.
    replacement = ("    mov ecx, 5000\nspin:\n    dec ecx\n    jnz spin\n    sti\n    nop\n"
                   f"wait:\n    cmp dword ptr [{WOKEN}], 0\n    je wait\n")
    text = interrupt_program(64, use_irq=True)
    assert original in text
    text = text.replace(original, replacement)
    machine = vbox_board(64, vmmdev_config=config, fast_blocks=fast)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    machine.load(assemble(text, mode=64))
    result = machine.run(max_instructions=200_000)
    assert result.exit_code >> 8 == 1, "the handler saw the HGCM event once"
    irq_up = sink.of_kind("irq_line")[0]
    delivered = sink.of_kind("interrupt_delivered")[0]
    assert delivered.cycle > irq_up.cycle + 5000, "not before the guest enabled interrupts"


def test_the_stored_native_code_is_the_assembled_source() -> None:
    # Assembled through guest_asm's keystone worker process, never inside this process.
    assert assemble(fastblock._SOURCE, mode=64, base=0).code == fastblock.NATIVE_CODE
    assert assemble(fastblock.SIGNAL_SOURCE, mode=64, base=0).code == fastblock.SIGNAL_CODE


def _colliding_loop(blocks: int, iterations: int) -> str:
    """A loop of ``blocks`` blocks (each `dec`/`jmp` to the next, the last one looping)
    placed so that every block's own table slot (``fastblock.slot``) is the first one's."""
    first = assemble("_start:\n mov ecx, 1\nb0:\n", mode=64).symbols["b0"]
    step = len(assemble("_start:\n add edx, 1\n jmp far\n.space 200\nfar:\n", mode=64).code) - 200
    addresses = [first]
    gap = step
    while len(addresses) < blocks:
        if fastblock.slot(addresses[-1] + gap) == fastblock.slot(first):
            addresses.append(addresses[-1] + gap)
            gap = step
        else:
            gap += 1
    lines = ["_start:", f" mov ecx, {iterations}"]
    for index, address in enumerate(addresses):
        following = addresses[index + 1] if index + 1 < len(addresses) else None
        lines.append(f"b{index}:")
        if following is None:
            lines += [" dec ecx", " jnz b0", " mov al, 0", " out 0xf4, al"]
        else:
            lines += [" add edx, 1", f" jmp b{index + 1}", f".space {following - address - step}"]
    return "\n".join(lines) + "\n"


@needs_native
def test_two_hot_blocks_sharing_a_slot_both_stay_in_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two blocks of a loop whose addresses hash to the same slot: the table is two-way, so
    after the first iteration neither goes to Python again (a direct-mapped table sent both
    to Python at every iteration: 20-60 µs each in a bulk guest's call loop), and the counts
    are the Python hook's."""
    program = assemble(_colliding_loop(2, 1000), mode=64)
    symbols = program.symbols
    assert fastblock.slot(symbols["b0"]) == fastblock.slot(symbols["b1"])
    machine = vbox_board(64, fast_blocks=True)
    python_blocks: list[int] = []
    handler = machine.cpu._on_block

    def counting(uc: object, address: int, size: int, user: object) -> None:
        python_blocks.append(address)
        handler(uc, address, size, user)

    monkeypatch.setattr(machine.cpu, "_on_block", counting)
    machine.load(program)
    result = machine.run()
    assert result.exit_code == 0
    assert python_blocks.count(symbols["b0"]) <= 2 and python_blocks.count(symbols["b1"]) <= 2
    assert _run(True, lambda: program)[:3] == _run(False, lambda: program)[:3] == (0, result.instructions,
                                                                                   result.cycles)
