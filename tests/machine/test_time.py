"""Virtual time: the cost model, rdtsc, run control and the scheduler."""

from __future__ import annotations

import pytest

from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.clock import CostProfile, Scheduler, classify
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import RunEnd
from hgcmlab.machine.tracing import ListSink

LOOP = """
_start:
    mov ecx, 100
again:
    imul eax, ecx
    mov [0x20000], eax
    dec ecx
    jnz again
    mov ebx, 3
    xor edx, edx
    div ebx
    out 0xf4, al
"""


def _run(source: str, costs: CostProfile | None = None, mode: int = 64) -> tuple[int, int]:
    machine = vbox_board(mode, costs=costs)
    machine.load(assemble(source, mode=mode))
    result = machine.run()
    assert result.end is RunEnd.EXIT
    return result.instructions, result.cycles


def _predicted(costs: CostProfile) -> int:
    per_iteration = costs.multiply + costs.memory + costs.alu + costs.branch
    return costs.alu + 100 * per_iteration + costs.alu + costs.alu + costs.divide + costs.port_io


def test_each_instruction_class_is_charged_by_the_profile() -> None:
    costs = CostProfile()
    assert _run(LOOP, costs)[1] == _predicted(costs)


def test_a_changed_profile_changes_the_total_exactly_as_predicted() -> None:
    custom = CostProfile.from_mapping({"multiply": 7, "memory": 5, "divide": 100, "port_io": 1})
    instructions_default, cycles_default = _run(LOOP)
    instructions_custom, cycles_custom = _run(LOOP, custom)
    assert instructions_custom == instructions_default
    assert cycles_custom == _predicted(custom)
    assert cycles_custom - cycles_default == _predicted(custom) - _predicted(CostProfile())


@pytest.mark.parametrize(("mnemonic", "memory", "expected"), [
    ("add", False, "alu"), ("mov", True, "memory"), ("lea", True, "alu"), ("imul", False, "multiply"),
    ("idiv", False, "divide"), ("rep movsb", True, "string"), ("stosq", True, "string"),
    ("movsx", False, "alu"), ("jne", False, "branch"), ("call", False, "branch"), ("ret", False, "branch"),
    ("out", False, "port_io"), ("in", False, "port_io"), ("hlt", False, "system"), ("rdtsc", False, "system"),
])
def test_instruction_classification(mnemonic: str, memory: bool, expected: str) -> None:
    assert classify(mnemonic, memory) == expected


def test_cost_profile_rejects_unknown_classes_and_bad_values(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown instruction classes"):
        CostProfile.from_mapping({"float": 3})
    with pytest.raises(ValueError, match="positive integer"):
        CostProfile(alu=0)
    path = tmp_path / "costs.json"
    path.write_text('{"divide": 40}')
    assert CostProfile.from_file(path).divide == 40
    path.write_text("[1]")
    with pytest.raises(ValueError, match="JSON object"):
        CostProfile.from_file(path)


@pytest.mark.parametrize("mode", [64, 32])
def test_rdtsc_reads_virtual_cycles(mode: int) -> None:
    costs = CostProfile()
    machine = vbox_board(mode)
    machine.load(assemble("""
_start:
    nop
    rdtsc
    mov ebx, eax
    nop
    nop
    rdtscp
    sub eax, ebx
    out 0xf4, eax
""", mode=mode))
    result = machine.run()
    # First rdtsc at cycle 1 (after the nop); the second after rdtsc, mov and two nops.
    assert result.exit_code == costs.system + 3 * costs.alu


def test_rdtsc_is_identical_across_runs() -> None:
    source = "_start:\n rdtsc\n out 0xf4, eax\n"
    first, second = vbox_board(64), vbox_board(64)
    first.load(assemble(source, mode=64))
    second.load(assemble(source, mode=64))
    assert first.run().exit_code == second.run().exit_code == 0


def test_run_until_a_cycle_pauses_and_continues(hgcm_machine, hgcm_assemble) -> None:
    machine = hgcm_machine(64)
    machine.load(hgcm_assemble("_start:\nagain:\n inc eax\n cmp eax, 1000\n jne again\n out 0xf4, al\n", mode=64))
    paused = machine.run(until_cycle=101)
    assert paused.end is RunEnd.PAUSED
    assert 101 <= paused.cycles < 101 + CostProfile().max_cost
    for_more = machine.run(max_cycles=50)
    assert for_more.end is RunEnd.PAUSED and for_more.cycles >= paused.cycles + 50
    assert machine.run().end is RunEnd.EXIT


def test_single_step_executes_one_instruction_at_a_time(hgcm_machine, hgcm_assemble) -> None:
    machine = hgcm_machine(64)
    machine.load(hgcm_assemble("_start:\n mov eax, 1\n mov ebx, 2\n out 0xf4, al\n", mode=64))
    first = machine.step()
    assert (first.end, first.instructions, machine.cpu.pc) == (RunEnd.BUDGET, 1, 0x10005)
    machine.step()
    assert machine.step().end is RunEnd.EXIT


def test_scheduled_events_fire_at_their_cycle_in_order(hgcm_machine, hgcm_assemble) -> None:
    machine = hgcm_machine(64)
    machine.load(hgcm_assemble("_start:\nagain:\n inc eax\n jmp again\n", mode=64))
    fired: list[tuple[str, int]] = []
    machine.scheduler.add_owner("test", lambda kind, args: fired.append((kind, machine.clock.now())))
    for name, cycle in (("late", 500), ("early", 123), ("tie-a", 300), ("tie-b", 300)):
        machine.clock.schedule_at(cycle, name, "test", name)
    machine.run(until_cycle=600)
    assert [name for name, _ in fired] == ["early", "tie-a", "tie-b", "late"]
    for (name, cycle), wanted in zip(fired, (123, 300, 300, 500)):
        # The first instruction boundary at or after the event's cycle: inc (1) / jmp (2).
        assert wanted <= cycle <= wanted + 1, name
    fired_events = [e for e in hgcm_machine.events(machine) if e.kind == "event"]
    assert [e.fields["scheduled_cycle"] for e in fired_events] == [123, 300, 300, 500]


def test_scheduler_orders_and_cancels() -> None:
    scheduler = Scheduler()
    calls: list[str] = []
    scheduler.add_owner("test", lambda kind, args: calls.append(kind))
    scheduler.schedule(10, "b", "test", "b")
    first = scheduler.schedule(5, "a", "test", "a")
    scheduler.schedule(10, "c", "test", "c")
    first.cancelled = True
    assert scheduler.next_cycle() == 10 and len(scheduler) == 2
    for event in scheduler.pop_due(10):
        scheduler.fire(event)
    assert calls == ["b", "c"]


def test_sti_hlt_with_nothing_scheduled_ends_the_run(hgcm_machine, hgcm_assemble) -> None:
    machine = hgcm_machine(64)
    machine.load(hgcm_assemble("_start:\n sti\n hlt\n mov al, 1\n out 0xf4, al\n", mode=64))
    assert machine.run().end is RunEnd.HALT


def test_two_runs_give_identical_traces_and_cycles() -> None:
    def trace_of() -> list[str]:
        machine = vbox_board(64)
        sink = ListSink()
        machine.tracer.add_sink(sink)
        machine.load(assemble(LOOP + "\n_pad:\n mov dx, 0x504\n", mode=64))
        machine.run()
        return [event.to_json() for event in sink.events]

    assert trace_of() == trace_of()
