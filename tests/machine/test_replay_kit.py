"""Record and replay through the pytest kit (``hgcm_machine(record=True)`` /
``hgcm_machine(replay=...)``), golden traces against a recording, and the completions a
recording must hold: a wait the service keeps and completes on disconnect, a completion the
host makes on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.guest_asm.assembler import AssembledProgram
from hgcmlab.machine.loader import Image
from hgcmlab.machine.machine import RunEnd, RunResult
from hgcmlab.machine.pytest_plugin import Assembler, MachineFactory, TraceAsserter
from hgcmlab.machine.programs import bundled_program
from hgcmlab.machine.trace.record import HEADER_KIND, RECORD_KIND, load_recording
from hgcmlab.machine.tracing import TraceEvent
from hgcmlab.runtime.status import Status
from tests.machine.test_reproducible import DAY_2040, PROGRAMS, make_tree

#: Guest: connect, learn the mappings version, start a WAIT_FOR_MAPPINGS_CHANGES the service
#: keeps, disconnect.  The service completes the wait with VERR_CANCELLED while
#: disconnecting (SharedFolders service: svcDisconnect -> vbsfMappingsCancelChangesWaits);
#: exit 0 when the wait is DONE with that result by the time the disconnect is DONE.
WAIT_THEN_DISCONNECT = """
.include "ccall.s"
_start:
    ccall1 hgcm_connect, service
    test eax, eax
    jz connected
    ccall1 exit, 10
connected:
    mov dword ptr [client], edx
    mov dword ptr [version], 0xFFFFFFFF
    ccall2 sf_wait_for_mappings_changes, [client], version
    test eax, eax
    jz learned
    ccall1 exit, 11
learned:
    ccall3 hgcm_call_begin, [client], SHFL_FN_WAIT_FOR_MAPPINGS_CHANGES, SHFL_CPARMS_WAIT_FOR_MAPPINGS_CHANGES
    ccall2 hgcm_parm_u32, 0, [version]
    ccall0 hgcm_call_start
    cmp eax, VINF_HGCM_ASYNC_EXECUTE
    je pending
    ccall1 exit, 12
pending:
.ifdef SPIN
spin:
    pause
    mov ecx, hgcm_call_req
    test dword ptr [ecx + HGCMCALL_OFF_FU32FLAGS], VBOX_HGCM_REQ_DONE
    jz spin
.endif
    ccall1 hgcm_disconnect, [client]
    test eax, eax
    jz gone
    ccall1 exit, 13
gone:
    mov ecx, hgcm_call_req
    test dword ptr [ecx + HGCMCALL_OFF_FU32FLAGS], VBOX_HGCM_REQ_DONE
    jnz done
    ccall1 exit, 14
done:
    cmp dword ptr [ecx + HGCMCALL_OFF_RESULT], VERR_CANCELLED
    je cancelled
    ccall1 exit, 15
cancelled:
    ccall1 exit, 0

.include "sf_client.s"
.include "log.s"
service: .asciz "VBoxSharedFolders"
.align 8
client:  .quad 0
version: .quad 0
"""


def _record_and_save(hgcm_machine: MachineFactory, tmp_path: Path, mode: int, image: Image | AssembledProgram,
                     share: Path | None = None, arguments: list[str] | None = None,
                     symlinks: bool = False) -> tuple[Path, tuple[RunResult, list[TraceEvent]]]:
    """Run ``image`` on a recording machine (shares "d" and "demo" on ``share``); the saved
    recording, the run's result and its events."""
    machine = hgcm_machine(mode, record=True)
    if share is not None:
        machine.add_share("d", share, create_symlinks=symlinks)
        machine.add_share("demo", share)
    machine.set_arguments(arguments or [])
    machine.load(image)
    result = machine.run()
    path = hgcm_machine.save_recording(machine, tmp_path / "recorded.jsonl")
    return path, (result, hgcm_machine.events(machine))


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_kit_replay_gives_the_recorded_events_without_a_share(hgcm_machine: MachineFactory, tmp_path: Path,
                                                              name: str) -> None:
    mode, arguments, expected = PROGRAMS[name]
    share = make_tree(tmp_path, DAY_2040, reverse=False)
    image = bundled_program(name, mode=mode)
    path, (result, recorded) = _record_and_save(hgcm_machine, tmp_path, mode, image, share, arguments, symlinks=True)
    assert result.exit_code == expected
    replaying = hgcm_machine(mode, replay=path)  # no share added
    replaying.set_arguments(arguments)
    replaying.load(image)
    again = replaying.run()
    assert (again.end, again.exit_code, again.cycles) == (result.end, result.exit_code, result.cycles)
    assert hgcm_machine.events(replaying) == recorded
    assert hgcm_machine.replay_cursor(replaying).finished


def test_golden_trace_against_a_recording(hgcm_machine: MachineFactory, hgcm_share: Path, hgcm_assemble: Assembler,
                                          assert_trace: TraceAsserter, tmp_path: Path) -> None:
    # The golden of tests/asm/test_programs_e2e.py, checked on a replay with no share.
    image = hgcm_assemble.bundled("demo.s")
    recorder = hgcm_machine(64, record=True)
    recorder.add_share("demo", hgcm_share)
    recorder.load(image)
    assert recorder.run().exit_code == 0
    path = hgcm_machine.save_recording(recorder, tmp_path / "demo.jsonl")
    machine = hgcm_machine(64, replay=path)
    machine.load(image)
    assert machine.run().exit_code == 0
    golden = Path(__file__).parents[1] / "asm" / "golden"
    assert_trace.__class__(golden, False, hgcm_machine)(
        machine, "demo_calls", kinds=["hgcm_call", "hgcm_complete"],
        fields={"hgcm_call": ["call"], "hgcm_complete": ["result_name", "results"]})


@pytest.mark.parametrize("mode", [64, 32])
def test_a_wait_completed_by_disconnect_is_replayed(hgcm_machine: MachineFactory, hgcm_assemble: Assembler,
                                                    tmp_path: Path, mode: int) -> None:
    image = hgcm_assemble(WAIT_THEN_DISCONNECT, mode=mode)
    path, (result, recorded) = _record_and_save(hgcm_machine, tmp_path, mode, image)
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0)
    records = [e.fields for e in recorded if e.kind == RECORD_KIND]
    assert [r["op"] for r in records] == ["connect", "call", "call", "disconnect"]
    assert records[2]["result"] == "async"
    assert [(d["call"], d["status"]) for d in records[3]["done"]] == [(2, Status.VERR_CANCELLED)]
    machine = hgcm_machine(mode, replay=path)
    machine.load(image)
    assert machine.run().exit_code == 0
    assert hgcm_machine.events(machine) == recorded


def test_a_completion_the_host_made_on_its_own_is_replayed_at_its_cycle(
        hgcm_machine: MachineFactory, hgcm_assemble: Assembler, hgcm_share: Path, tmp_path: Path) -> None:
    # The wait completes because the host adds a share (between two runs) while the guest
    # spins on the request's DONE flag.
    image = hgcm_assemble(WAIT_THEN_DISCONNECT, defines={"SPIN": 1})
    machine = hgcm_machine(64, record=True)
    machine.load(image)
    assert machine.run(20_000).end is RunEnd.BUDGET
    machine.add_share("late", hgcm_share)
    # A mappings change ends a wait with VERR_CANCELLED too (vbsfMappingsCancelChangesWaits).
    recorded_result = machine.run()
    assert recorded_result.exit_code == 0
    recorded = hgcm_machine.events(machine)
    host = [event for event in recorded if event.kind == RECORD_KIND and event.fields["op"] == "host"]
    assert [(d["call"], d["status"]) for d in host[0].fields["done"]] == [(2, Status.VERR_CANCELLED)]
    path = hgcm_machine.save_recording(machine, tmp_path / "host.jsonl")
    replaying = hgcm_machine(64, replay=path)
    replaying.load(image)
    result = replaying.run()
    assert (result.end, result.exit_code, result.cycles) == (RunEnd.EXIT, 0, recorded_result.cycles)
    assert hgcm_machine.replay_cursor(replaying).finished
    # The guest saw the same: every event but the run boundaries and the replay's own
    # scheduled event is equal, the host record at the same stamp.
    boundaries = {"run_end", "guest_fault", "event"}
    assert [e for e in hgcm_machine.events(replaying) if e.kind not in boundaries] == [
        e for e in recorded if e.kind not in boundaries]


def test_a_guest_op_before_a_recorded_host_completion_is_a_divergence(
        hgcm_machine: MachineFactory, hgcm_assemble: Assembler, hgcm_share: Path, tmp_path: Path) -> None:
    image = hgcm_assemble(WAIT_THEN_DISCONNECT, defines={"SPIN": 1})
    machine = hgcm_machine(64, record=True)
    machine.load(image)
    machine.run(20_000)
    machine.add_share("late", hgcm_share)
    machine.run()
    path = hgcm_machine.save_recording(machine, tmp_path / "host.jsonl")
    # Without SPIN the guest disconnects at once, long before the recorded host completion.
    replaying = hgcm_machine(64, replay=path)
    replaying.load(hgcm_assemble(WAIT_THEN_DISCONNECT))
    result = replaying.run()
    assert result.end is RunEnd.DIVERGED and result.fault is not None
    assert "replay diverged at recorded operation #3: the recording's host completion at cycle " in \
        result.fault.description
    assert "  guest:     #3 disconnect client 1 at cycle " in result.fault.description


def test_kit_options_are_checked(hgcm_machine: MachineFactory, tmp_path: Path) -> None:
    path, _ = _record_and_save(hgcm_machine, tmp_path, 64, bundled_program("hello_log.s", mode=64))
    assert load_recording(path).records == []  # hello_log.s makes no HGCM call
    with pytest.raises(ValueError, match="records or replays, not both"):
        hgcm_machine(64, record=True, replay=path)
    with pytest.raises(ValueError, match="records a 64-bit machine, not 32-bit"):
        hgcm_machine(32, replay=path)
    plain = hgcm_machine(64)
    with pytest.raises(ValueError, match="needs a machine made with hgcm_machine\\(record=True\\)"):
        hgcm_machine.save_recording(plain, tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="needs a machine made with hgcm_machine\\(replay=...\\)"):
        hgcm_machine.replay_cursor(plain)
    assert sum(1 for line in path.read_text().splitlines() if f'"kind":"{HEADER_KIND}"' in line) == 1


def test_a_diverged_machine_stays_stopped(hgcm_machine: MachineFactory, hgcm_assemble: Assembler,
                                         tmp_path: Path) -> None:
    path, _ = _record_and_save(hgcm_machine, tmp_path, 64, hgcm_assemble(WAIT_THEN_DISCONNECT))
    replaying = hgcm_machine(64, replay=path)
    # One more instruction first: the connect arrives later than recorded.
    replaying.load(hgcm_assemble(WAIT_THEN_DISCONNECT.replace("_start:\n", "_start:\n    nop\n")))
    first = replaying.run()
    assert first.end is RunEnd.DIVERGED and first.fault is not None
    assert first.fault.description.startswith("replay diverged at recorded operation #0: different cycle: ")
    again = replaying.run()
    assert (again.end, again.instructions, again.fault) == (RunEnd.DIVERGED, first.instructions, first.fault)
