"""Running without Unicorn's instruction count (``count_free``, the default) gives exactly
what the count gives (``Machine(count_free=False)``, the previous path): the same
instruction and cycle counts, stop positions, registers and traces, over the bundled
programs, interrupts, asynchronous HGCM, instruction and cycle budgets, ``until_cycle``
slices and single steps; and a stop requested by a port access takes effect right after
that instruction even in the middle of a translated block."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine import cpu as cpu_module
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import Machine, RunEnd, RunResult
from hgcmlab.machine.programs import bundled_program
from hgcmlab.machine.tracing import ListSink
from tests.machine.test_interrupts import program as interrupt_program
from tests.machine.test_reproducible import DAY_1995, PROGRAMS, make_tree

ASYNC = VMMDevConfig(timing=HgcmTiming(call_cycles=3_000, byte_cycles=1, force_async=True))


def _machine(count_free: bool, tmp: Path, *, fast: bool = True, config: VMMDevConfig | None = None,
             mode: int = 64, blocks: bool = False, memory: bool = False,
             instructions: bool = False) -> tuple[Machine, ListSink]:
    machine = vbox_board(mode, reproducible=True, vmmdev_config=config, fast_blocks=fast, count_free=count_free,
                      trace_memory=memory, trace_blocks=blocks, trace_instructions=instructions)
    assert machine.cpu.count_free is count_free
    tmp.mkdir(parents=True, exist_ok=True)
    share = make_tree(tmp, DAY_1995, reverse=False)
    machine.add_share("d", share, create_symlinks=True)
    machine.add_share("demo", share)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    return machine, sink


def _outcome(machine: Machine, sink: ListSink, results: list[RunResult]) -> tuple[object, ...]:
    ends = [(r.end, r.exit_code, r.instructions, r.cycles, r.fault and r.fault.format(), r.log_lines)
            for r in results]
    return ends, machine.cpu.registers(), [e.host_independent().to_json() for e in sink.events]


def _both(tmp_path: Path, drive: Callable[[Machine], list[RunResult]], load: Callable[[], object], **options: object
          ) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """(count-free outcome, counted outcome) of the same drive over fresh machines."""
    outcomes = []
    for count_free in (True, False):
        machine, sink = _machine(count_free, tmp_path / str(count_free), **options)  # type: ignore[arg-type]
        try:
            machine.load(load())  # type: ignore[arg-type]
            outcomes.append(_outcome(machine, sink, drive(machine)))
        finally:
            machine.close()
    return outcomes[0], outcomes[1]


def _program(name: str) -> Callable[[], object]:
    mode, arguments, _expected = PROGRAMS[name]

    def load() -> object:
        return bundled_program(name, mode=mode)
    load.arguments = arguments  # type: ignore[attr-defined]
    return load


def _drive_program(name: str, drive: Callable[[Machine], list[RunResult]]) -> Callable[[Machine], list[RunResult]]:
    def run(machine: Machine) -> list[RunResult]:
        machine.set_arguments(PROGRAMS[name][1])
        return drive(machine)
    return run


def _to_the_end(machine: Machine) -> list[RunResult]:
    return [machine.run()]


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_every_bundled_program_is_identical(name: str, tmp_path: Path) -> None:
    mode = PROGRAMS[name][0]
    free, counted = _both(tmp_path, _drive_program(name, _to_the_end), _program(name), mode=mode)
    assert free == counted
    assert free[0][0][0] in (RunEnd.EXIT, RunEnd.HALT) and free[0][0][1] == PROGRAMS[name][2]


@pytest.mark.parametrize("name", ["demo_irq.s", "demo_poll_async.s", "cp.s", "ls.s", "cancel.s"])
def test_asynchronous_hgcm_is_identical(name: str, tmp_path: Path) -> None:
    mode = PROGRAMS[name][0]
    free, counted = _both(tmp_path, _drive_program(name, _to_the_end), _program(name), mode=mode, config=ASYNC)
    assert free == counted
    assert any('"hgcm_complete"' in line for line in free[2])


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("name", ["demo.s", "demo_irq.s"])
def test_block_trace_and_python_block_hook_are_identical(name: str, fast: bool, tmp_path: Path) -> None:
    free, counted = _both(tmp_path, _drive_program(name, _to_the_end), _program(name), fast=fast, blocks=True,
                          config=ASYNC)
    assert free == counted
    assert any('"block"' in line for line in free[2])


@pytest.mark.parametrize("mode", [64, 32])
@pytest.mark.parametrize("use_irq", [True, False])
def test_interrupt_programs_are_identical(mode: int, use_irq: bool, tmp_path: Path) -> None:
    text = interrupt_program(mode, use_irq)
    config = VMMDevConfig(timing=HgcmTiming(call_cycles=50_000, byte_cycles=0, force_async=True))
    free, counted = _both(tmp_path, _to_the_end, lambda: assemble(text, mode=mode), mode=mode, config=config)
    assert free == counted
    assert free[0][0][0] is RunEnd.EXIT
    assert any('"interrupt_delivered"' in line for line in free[2]) is use_irq


def _in_budgets(budget: int) -> Callable[[Machine], list[RunResult]]:
    def drive(machine: Machine) -> list[RunResult]:
        results = []
        for _ in range(100_000):
            result = machine.run(budget)
            results.append(result)
            if result.end is not RunEnd.BUDGET:
                return results
        raise AssertionError("the program did not end")
    return drive


@pytest.mark.parametrize("blocks", [False, True])
@pytest.mark.parametrize("budget", [1, 2, 3, 7, 50, 333, 4096])
def test_instruction_budgets_stop_and_resume_identically(budget: int, blocks: bool, tmp_path: Path) -> None:
    name = "demo_irq.s"
    free, counted = _both(tmp_path, _drive_program(name, _in_budgets(budget)), _program(name), config=ASYNC,
                          blocks=blocks)
    assert free == counted
    ends = free[0]
    assert ends[-1][0] is RunEnd.EXIT and ends[-1][1] == 0
    # Every budget stop lands exactly on the budget.
    previous = 0
    for end, _code, instructions, _cycles, _fault, _log in ends[:-1]:
        assert end is RunEnd.BUDGET and instructions == previous + budget
        previous = instructions


@pytest.mark.parametrize("budget", [3, 7])
def test_budgets_with_instruction_and_memory_tracing_are_identical(budget: int, tmp_path: Path) -> None:
    """Every instruction and every data access is traced once, also in a block that a
    budget cuts and a partial run re-enters."""
    free, counted = _both(tmp_path, _drive_program("hello_log.s", _in_budgets(budget)), _program("hello_log.s"),
                          memory=True, instructions=True, blocks=True)
    assert free == counted
    kinds = [json.loads(line)["kind"] for line in free[2]]
    assert kinds.count("instruction") == free[0][-1][2], "one event per executed instruction"
    assert kinds.count("memory") > 0 and kinds.count("guest_fault") == len(free[0]) - 1


def test_single_steps_are_identical(tmp_path: Path) -> None:
    def drive(machine: Machine) -> list[RunResult]:
        results = []
        for _ in range(3_000):
            results.append(machine.step())
            if results[-1].end is not RunEnd.BUDGET:
                break
        return results

    free, counted = _both(tmp_path, _drive_program("demo_irq.s", drive), _program("demo_irq.s"), config=ASYNC)
    assert free == counted
    assert [r[2] for r in free[0][:100]] == list(range(1, 101)), "one instruction per step"


@pytest.mark.parametrize("step", [1, 13, 997, 20_000])
def test_until_cycle_slices_are_identical(step: int, tmp_path: Path) -> None:
    def drive(machine: Machine) -> list[RunResult]:
        results = []
        target = 0
        for _ in range(200_000):
            target += step
            results.append(machine.run(until_cycle=target))
            if results[-1].end is not RunEnd.PAUSED:
                return results
        raise AssertionError("the program did not end")

    free, counted = _both(tmp_path, _drive_program("demo_irq.s", drive), _program("demo_irq.s"), config=ASYNC)
    assert free == counted
    assert free[0][-1][0] is RunEnd.EXIT


@pytest.mark.parametrize("budget", [5, 1000, 123_457])
def test_cycle_budgets_are_identical(budget: int, tmp_path: Path) -> None:
    free, counted = _both(tmp_path, _drive_program("demo.s", lambda m: [m.run(cycle_budget=budget)]),
                          _program("demo.s"))
    assert free == counted


# A port access in the middle of a block: the exit device stops the run right after it.
EXIT_MID_BLOCK = """
_start:
    mov eax, 7
    mov ebx, 0
    out 0xf4, al
    mov ebx, 1
    inc dword ptr [0x20000]
    mov ecx, 5
again:
    jmp again
"""


@pytest.mark.parametrize("count_free", [True, False])
def test_a_port_stop_in_the_middle_of_a_block_takes_effect_right_after_it(count_free: bool, tmp_path: Path) -> None:
    machine, sink = _machine(count_free, tmp_path, memory=True)
    machine.load(assemble(EXIT_MID_BLOCK, mode=64))
    result = machine.run(100_000)
    assert (result.end, result.exit_code, result.instructions) == (RunEnd.EXIT, 7, 3)
    registers = machine.cpu.registers()
    assert registers["rbx"] == 0, "the instruction after the out did not run"
    assert machine.memory.read(0x20000, 4) == b"\0\0\0\0"
    assert not sink.of_kind("memory"), "no access of the following instructions was made"
    machine.close()


# A time-stamp read in a block that a budget cuts: the partial run re-enters that block.
RDTSC_BLOCK = """
_start:
    mov ecx, 3
again:
    rdtsc
    mov [0x20000 + rcx * 8], eax
    imul eax, eax
    rdtsc
    mov [0x20100 + rcx * 8], eax
    dec ecx
    jnz again
    out 0xf4, al
"""


@pytest.mark.parametrize("budget", [1, 2, 3, 4, 5, 6])
def test_time_stamps_read_around_budget_stops_are_identical(budget: int, tmp_path: Path) -> None:
    def drive(machine: Machine) -> list[RunResult]:
        results = _in_budgets(budget)(machine)
        # The stamps the guest stored, compared with the rest of the outcome.
        results.append(RunResult(RunEnd.EXIT, 0, 0, 0, [machine.memory.read(0x20000, 0x120).hex()]))
        return results

    free, counted = _both(tmp_path, drive, lambda: assemble(RDTSC_BLOCK, mode=64))
    assert free == counted
    stamps = bytes.fromhex(free[0][-1][5][0])
    first = [int.from_bytes(stamps[8 * i:8 * i + 4], "little") for i in (3, 2, 1)]
    assert first[0] > 0 and first == sorted(set(first)), "the stamps are distinct and rising"


def test_too_many_port_sites_fall_back_to_the_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A guest with more port-access sites than MAX_IO_STOP_HOOKS makes its CPU switch to
    Unicorn's count; the counts stay those of the counted path."""
    sites = "".join(f"    out 0x80, al\n    add eax, {i}\n" for i in range(8))
    text = f"_start:\n    mov ecx, 20\nagain:\n{sites}    dec ecx\n    jnz again\n    out 0xf4, al\n"
    monkeypatch.setattr(cpu_module, "MAX_IO_STOP_HOOKS", 4)
    free, counted = _both(tmp_path, _to_the_end, lambda: assemble(text, mode=64))
    assert free == counted
    machine, _sink = _machine(True, tmp_path / "again")
    machine.load(assemble(text, mode=64))
    machine.run()
    assert machine.cpu.count_free is False
    machine.close()
