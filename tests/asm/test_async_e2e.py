"""Guest-side asynchronous HGCM: PCI discovery, the driver's init sequence, interrupt-driven
and polling waits, and cancellation, run end to end on machines with synchronous and with
asynchronous (latency-modelled) HGCM completion."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev.abi import RequestType
from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.guest_asm import assemble
from hgcmlab.guest_asm.assembler import AssembledProgram
from hgcmlab.guest_asm.source import LIB_DIR
from hgcmlab.machine.clock import CostProfile
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import IRQ_VECTOR_BASE, Machine, RunEnd, RunResult
from hgcmlab.machine.tracing import ListSink, TraceEvent

PROGRAMS = Path(LIB_DIR).parent / "programs"
LATENCY = 50_000
MESSAGE = b"Hello from the hgcmlab guest!\n"
STEPS = ["sf: start", "sf: connected", "sf: share mapped", "sf: file created", "sf: message written",
         "sf: read back and verified", "sf: done"]
#: connect, SET_UTF8, MAP_FOLDER, CREATE, WRITE, READ, CLOSE, UNMAP_FOLDER, disconnect
ROUNDTRIP_COMMANDS = 9
VMMDEV_VECTOR = IRQ_VECTOR_BASE + VMMDevConfig().irq
VERR_NOT_FOUND, VERR_NOT_IMPLEMENTED = -78, -12


class Run:
    """One program run: the machine, its trace, the result and the assembled program."""

    def __init__(self, program: str | Path, mode: int, *, asynchronous: bool, share: Path | None = None,
                 defines: dict[str, int | str] | None = None, vmmdev_port: int | None = None,
                 latency: int = LATENCY, prepare=None) -> None:
        config = (VMMDevConfig(timing=HgcmTiming(call_cycles=latency, byte_cycles=0, force_async=True, declared_costs=False))
                  if asynchronous else None)
        extra = {} if vmmdev_port is None else {"vmmdev_port": vmmdev_port}
        self.machine = vbox_board(mode, vmmdev_config=config, **extra)
        self.sink = ListSink()
        self.machine.tracer.add_sink(self.sink)
        if share is not None:
            self.machine.add_share("demo", share)
        source = PROGRAMS / program if isinstance(program, str) and program.endswith(".s") else program
        self.program: AssembledProgram = assemble(source, mode=mode, defines=defines)
        self.machine.load(self.program)
        if prepare is not None:
            prepare(self.machine)
        self.result: RunResult = self.machine.run()

    def u32(self, symbol: str) -> int:
        return self.machine.memory.read_u32(self.program.symbols[symbol])

    def of_kind(self, kind: str) -> list[TraceEvent]:
        return self.sink.of_kind(kind)

    def requests(self, type_name: str) -> list[TraceEvent]:
        return [e for e in self.of_kind("vmmdev_request") if e.fields["type"] == type_name]

    def check_exit(self, code: int = 0) -> None:
        fault = self.result.fault.format() if self.result.fault else ""
        assert (self.result.end, self.result.exit_code) == (RunEnd.EXIT, code), (fault, self.result.log_lines)


def _submissions(run: Run) -> list[TraceEvent]:
    return [e for e in run.sink.events if e.kind in ("hgcm_connect", "hgcm_call", "hgcm_disconnect")]


def _check_completion_cycles(run: Run, latency: int, *, sleeping: bool) -> None:
    """Every HGCM command completed `latency` cycles after its submitting `out`: exactly
    when the guest sleeps in hlt (the clock jumps to the event), else at the first
    instruction boundary at or after that cycle (within one instruction's cost)."""
    submitted = _submissions(run)
    completed = run.of_kind("hgcm_complete")
    slack = 0 if sleeping else CostProfile().max_cost - 1
    assert len(submitted) == len(completed) == ROUNDTRIP_COMMANDS
    for submit, complete in zip(submitted, completed):
        assert complete.fields["address"] == submit.fields["address"]
        assert complete.fields["latency"] == complete.cycle - submit.cycle
        assert submit.cycle + latency <= complete.cycle <= submit.cycle + latency + slack


# --- demo_irq.s: interrupt-driven waits -----------------------------------------------------

@pytest.mark.parametrize("mode", (64, 32))
@pytest.mark.parametrize("asynchronous", (False, True))
@pytest.mark.parametrize("fast", (0, 1))
def test_demo_irq_writes_the_file_with_interrupt_driven_waits(tmp_path: Path, mode: int, asynchronous: bool,
                                                              fast: int) -> None:
    run = Run("demo_irq.s", mode, asynchronous=asynchronous, share=tmp_path, defines={"FAST_IRQ_ACK": fast})
    run.check_exit()
    assert (tmp_path / "hello.txt").read_bytes() == MESSAGE
    sleeps = ROUNDTRIP_COMMANDS if asynchronous else 0
    assert run.result.log_lines == STEPS + [
        f"irq: interrupts {ROUNDTRIP_COMMANDS}, hgcm events {ROUNDTRIP_COMMANDS}, sleeps {sleeps}"]
    # The driver's load sequence, in Linux's order, before any HGCM command.
    types = [e.fields["type"] for e in run.of_kind("vmmdev_request")]
    assert types[:10] == ["GetHostVersion", "ReportGuestInfo2", "ReportGuestInfo", "CtlGuestFilterMask",
                          "SetGuestCapabilities", "SetMouseStatus", "GetHypervisorInfo", "HeartbeatConfigure",
                          "HeartbeatConfigure", "ReportGuestStatus"]
    assert all(e.fields["rc"] == 0 for e in run.of_kind("vmmdev_request")[:10])
    # One interrupt per completion, each acknowledged (line lowered) by the ISR.
    delivered = run.of_kind("interrupt_delivered")
    acks = run.of_kind("vmmdev_ack")
    assert len(delivered) == len(acks) == ROUNDTRIP_COMMANDS
    assert {e.fields["vector"] for e in delivered} == {VMMDEV_VECTOR}
    assert all(e.fields["events"] == 2 for e in acks), "VMMDEV_EVENT_HGCM"
    assert run.of_kind("irq_line")[-1].fields["asserted"] is False
    ack_requests = run.requests("AcknowledgeEvents")
    fast_ins = [e for e in run.of_kind("port_io") if e.fields["direction"] == "in"
                and e.fields.get("range") == "request_fast"]
    if fast:
        assert (len(ack_requests), len(fast_ins)) == (0, ROUNDTRIP_COMMANDS)
        assert run.u32("vmmdev_ack_fast") == ROUNDTRIP_COMMANDS
    else:
        assert (len(ack_requests), len(fast_ins)) == (ROUNDTRIP_COMMANDS, 0)
        assert all(e.fields["rc"] == 0 for e in ack_requests)
    assert run.u32("vmmdev_irq_spurious") == run.u32("vmmdev_irq_failed") == 0
    if asynchronous:
        _check_completion_cycles(run, LATENCY, sleeping=True)
        halts = run.of_kind("cpu_halt")
        assert len(halts) == ROUNDTRIP_COMMANDS and all(e.fields["interrupts_enabled"] for e in halts)
        slept = [e for e in run.of_kind("charge") if e.fields["reason"] == "halted until the next event"]
        assert len(slept) == ROUNDTRIP_COMMANDS
        assert sum(e.fields["cycles"] for e in slept) > ROUNDTRIP_COMMANDS * LATENCY * 9 // 10
        # Each interrupt woke the hlt: it returns after the hlt, never to it.
        for event in delivered:
            assert run.machine.memory.read(event.fields["return_pc"] - 1, 1) == b"\xf4"
    else:
        assert not run.of_kind("cpu_halt")


@pytest.mark.parametrize("mode", (64, 32))
def test_sleeping_costs_no_instructions_while_polling_spins(tmp_path: Path, mode: int) -> None:
    """With 50 000-cycle completions the interrupt-driven guest executes about as many
    instructions as with synchronous completion; the polling guest spins for them."""
    counts = {}
    for program in ("demo_irq.s", "demo_poll_async.s"):
        for asynchronous in (False, True):
            share = tmp_path / f"{program}-{asynchronous}"
            share.mkdir()
            run = Run(program, mode, asynchronous=asynchronous, share=share)
            run.check_exit()
            counts[program, asynchronous] = run.result.instructions
    irq_extra = counts["demo_irq.s", True] - counts["demo_irq.s", False]
    poll_extra = counts["demo_poll_async.s", True] - counts["demo_poll_async.s", False]
    assert 0 <= irq_extra < 20 * ROUNDTRIP_COMMANDS
    assert poll_extra > 10_000
    assert poll_extra > 100 * irq_extra


# --- demo_poll_async.s: polling ---------------------------------------------------------------

@pytest.mark.parametrize("mode", (64, 32))
@pytest.mark.parametrize("asynchronous", (False, True))
def test_demo_poll_async_polls_done(tmp_path: Path, mode: int, asynchronous: bool) -> None:
    run = Run("demo_poll_async.s", mode, asynchronous=asynchronous, share=tmp_path)
    run.check_exit()
    assert run.result.log_lines == STEPS
    assert (tmp_path / "hello.txt").read_bytes() == MESSAGE
    assert not run.of_kind("interrupt_delivered"), "interrupts stay off"
    assert not run.of_kind("cpu_halt")
    if asynchronous:
        _check_completion_cycles(run, LATENCY, sleeping=False)
        # The line goes up with the first completion and nobody acknowledges it.
        assert [e.fields["asserted"] for e in run.of_kind("irq_line")] == [True]


# --- pci_probe.s: discovery ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", (64, 32))
@pytest.mark.parametrize("port", (0xD020, 0xE000))
@pytest.mark.parametrize("asynchronous", (False, True))
def test_pci_probe_finds_vmmdev_and_uses_the_discovered_port(tmp_path: Path, mode: int, port: int,
                                                             asynchronous: bool) -> None:
    run = Run("pci_probe.s", mode, asynchronous=asynchronous, share=tmp_path, vmmdev_port=port)
    run.check_exit()
    mmio = run.machine.vmmdev.mmio_base
    assert run.result.log_lines == [
        "pci: id CAFE80EE bdf 00000020",
        f"pci: bar0 port {port:08X} size 00000020",
        f"pci: bar1 mmio {mmio:08X} size 00400000",
        "pci: irq 11 pin 1",
    ] + STEPS
    assert (tmp_path / "hello.txt").read_bytes() == MESSAGE
    # Every request reached the device through the discovered port.
    outs = [e for e in run.of_kind("port_io") if e.fields.get("range") == "request"]
    assert outs and {e.fields["port"] for e in outs} == {port}
    assert not run.of_kind("port_unclaimed")
    assert len(run.of_kind("hgcm_complete")) == ROUNDTRIP_COMMANDS
    # The BARs were sized (all ones written) and restored; decoding is on afterwards.
    function = run.machine.pci.functions[(0, 4, 0)]
    assert function.bars[0].address == port and function.bars[1].address == mmio
    assert function.command & 0x3 == 0x3
    assert not run.of_kind("pci_bar_moved")
    config_writes = [e.fields["value"] for e in run.of_kind("port_io")
                     if e.fields["direction"] == "out" and e.fields["port"] == 0xCFC]
    assert config_writes.count(0xFFFFFFFF) == 2
    assert run.u32("vmmdev_port") == port and run.u32("vmmdev_mmio") == mmio and run.u32("vmmdev_irq") == 11
    if asynchronous:
        _check_completion_cycles(run, LATENCY, sleeping=False)


def test_pci_probe_reports_a_missing_device(tmp_path: Path) -> None:
    run = Run("pci_probe.s", 64, asynchronous=False, share=tmp_path,
              prepare=lambda machine: machine.pci.functions.pop((0, 4, 0)))
    run.check_exit(21)
    assert run.u32("vmmdev_port") == 0xD020, "unchanged by a failed probe"


@pytest.mark.parametrize("mode", (64, 32))
def test_pci_probe_refuses_a_bad_vmmdev_memory_page(tmp_path: Path, mode: int) -> None:
    def corrupt(machine: Machine) -> None:
        machine.vmmdev.events.mmio.write(4, (2).to_bytes(4, "little"))  # u32Version 2

    run = Run("pci_probe.s", mode, asynchronous=False, share=tmp_path, prepare=corrupt)
    run.check_exit(24)
    assert run.u32("vmmdev_mmio") == 0


# --- cancel.s ---------------------------------------------------------------------------------

CANCEL_LOG = [
    "cancel: wait with a stale version 0",
    "cancel: cancel2 of a completed request -78",
    "cancel: cancel2 of address 0 -2",
    "cancel: wait started 2903",
    "cancel: cancel2 0",
    "cancel: cancel2 again {again}",
    "cancel: no completion, no event",
    "cancel: cancel2 after the cancelled completion -78",
    "cancel: wait started 2903",
    "cancel: legacy cancel 0",
    "cancel: no completion, no event",
    "cancel: legacy cancel after the cancelled completion -78",
    "cancel: wait with a stale version 0",
    "cancel: disconnect 0",
]


@pytest.mark.parametrize("mode", (64, 32))
@pytest.mark.parametrize("asynchronous", (False, True))
def test_cancel_statuses(tmp_path: Path, mode: int, asynchronous: bool) -> None:
    # Cancelling again at once still finds the command while its (suppressed) completion
    # is pending; with synchronous timing the completion already happened.
    again = 0 if asynchronous else VERR_NOT_FOUND
    run = Run("cancel.s", mode, asynchronous=asynchronous, share=tmp_path, defines={"RECANCEL_EXPECT": again})
    run.check_exit()
    assert run.result.log_lines == [line.format(again=again) for line in CANCEL_LOG]
    waits = [e for e in run.of_kind("hgcm_call") if e.fields["function_name"] == "WAIT_FOR_MAPPINGS_CHANGES"]
    assert len(waits) == 4
    cancelled = [e for e in run.of_kind("hgcm_complete") if e.fields["cancelled"]]
    assert len(cancelled) == 2 and all(e.fields["result"] == -70 for e in cancelled), "VERR_CANCELLED"
    # Nothing but the cancelled completions for the two cancelled waits, and no events.
    address = waits[1].fields["address"]
    assert [e.fields["cancelled"] for e in run.of_kind("hgcm_complete") if e.fields["address"] == address
            and waits[1].cycle <= e.cycle < waits[3].cycle] == [True, True]
    first_cancel = run.of_kind("hgcm_cancel")[0].cycle
    before_last_wait = waits[3].cycle
    assert not [e for e in run.of_kind("interrupt_delivered") if first_cancel <= e.cycle < before_last_wait]
    assert [e.fields["again"] for e in run.of_kind("hgcm_cancel")] == (
        [False, True, False] if asynchronous else [False, False])
    assert [e.fields["rc"] for e in run.requests("HGCMCancel")] == [0, -2], "legacy: found, then not found"
    if asynchronous:
        slack = CostProfile().max_cost - 1  # the guest spins (rdtsc) meanwhile
        assert all(LATENCY <= e.fields["latency"] <= LATENCY + slack for e in cancelled)


CANCEL_FALLBACK = """
.include "ccall.s"
_start:
    ccall0 vmmdev_report_guest_info
    ccall1 hgcm_connect, service
    mov dword ptr [client], edx
    ccall3 hgcm_call_begin, [client], SHFL_FN_WAIT_FOR_MAPPINGS_CHANGES, SHFL_CPARMS_WAIT_FOR_MAPPINGS_CHANGES
    ccall2 hgcm_parm_u32, 0, [version]
    ccall0 hgcm_call_start
    cmp eax, VINF_HGCM_ASYNC_EXECUTE
    jne bad
    ccall1 hgcm_cancel2, hgcm_call_req
    mov dword ptr [status], eax
    ccall1 hgcm_cancel2, hgcm_call_req
    mov dword ptr [status + 4], eax
    ccall1 exit, 0
bad:
    ccall1 exit, 1
.include "hgcm.s"
.include "shflstring.s"
.include "log.s"
service: .asciz "VBoxSharedFolders"
.align 8
client: .quad 0
version: .quad 0
status: .long 1, 1
"""


@pytest.mark.parametrize("mode", (64, 32))
def test_cancel2_falls_back_to_the_legacy_cancel_on_an_old_host(mode: int) -> None:
    """A host without HGCMCancel2 answers VERR_NOT_IMPLEMENTED: hgcm_cancel2 then retypes
    the request to HGCMCancel, and maps the second cancel's VERR_INVALID_PARAMETER to
    VERR_NOT_FOUND."""
    def old_host(machine: Machine) -> None:
        del machine.vmmdev._handlers[RequestType.HGCMCancel2]

    run = Run(CANCEL_FALLBACK, mode, asynchronous=False, prepare=old_host)
    run.check_exit()
    status = run.program.symbols["status"]
    assert run.machine.memory.read_i32(status) == 0
    assert run.machine.memory.read_i32(status + 4) == VERR_NOT_FOUND
    assert [e.fields["rc"] for e in run.requests("HGCMCancel2")] == [VERR_NOT_IMPLEMENTED] * 2
    assert [e.fields["rc"] for e in run.requests("HGCMCancel")] == [0, -2]
    request = run.program.symbols["hgcm_call_req"]
    flags = run.machine.memory.read_u32(request + 24)
    assert flags & 0x3 == 0x2, "CANCELLED set, DONE never"
    assert run.machine.memory.read_u32(request + 8) == RequestType.HGCMCancel


# --- the wakeup race ----------------------------------------------------------------------

WAIT_ONE = """
.include "ccall.s"
_start:
    ccall0 vmmdev_driver_init
    ccall1 vmmdev_irq_setup, 0
    ccall1 hgcm_connect, service
    test eax, eax
    jnz bad
    ccall1 exit, 0
bad:
    ccall1 exit, 1
.include "vmmdev_init.s"
.include "irq.s"
.include "log.s"
service: .asciz "VBoxSharedFolders"
"""


@pytest.mark.parametrize("mode", (64, 32))
def test_a_completion_landing_anywhere_in_the_wait_loop_still_wakes_the_guest(mode: int) -> None:
    """hgcm_wait_irq tests DONE with interrupts off, then `sti; hlt`: a completion between
    the test and the hlt must wake the hlt (x86 delays interrupts by one instruction after
    sti).  Latencies from 1 to 150 cycles put the completion on every instruction of the
    loop."""
    program = assemble(WAIT_ONE, mode=mode)
    lost = []
    for latency in range(1, 151):
        config = VMMDevConfig(timing=HgcmTiming(call_cycles=latency, byte_cycles=0, force_async=True, declared_costs=False))
        machine = vbox_board(mode, vmmdev_config=config)
        machine.load(program)
        result = machine.run()
        if (result.end, result.exit_code) != (RunEnd.EXIT, 0):
            lost.append((latency, result.end.value))
    assert not lost, f"wakeups lost at latencies {lost}"


# --- determinism ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", (64, 32))
@pytest.mark.parametrize("program", ("demo_irq.s", "demo_poll_async.s", "pci_probe.s", "cancel.s"))
def test_example_programs_are_deterministic(tmp_path: Path, mode: int, program: str) -> None:
    def once(index: int) -> tuple[list[str], int, int, list[str]]:
        share = tmp_path / str(index)
        share.mkdir()
        run = Run(program, mode, asynchronous=True, share=share)
        run.check_exit()
        events = [e.host_independent().to_json().replace(str(share), "<share>") for e in run.sink.events]
        return events, run.result.cycles, run.result.instructions, run.result.log_lines

    first, second = once(1), once(2)
    assert first == second


# --- the routine files on their own ---------------------------------------------------------

NEW_ROUTINES = {
    "pci.s": ["pci_config_read32", "pci_config_write32", "pci_bar_probe", "pci_find_device", "vmmdev_pci_probe"],
    "irq.s": ["irq_install", "irq_enable", "irq_disable", "vmmdev_isr", "vmmdev_isr_fast", "vmmdev_irq_setup"],
    "vmmdev_init.s": ["vmmdev_driver_init", "vmmdev_simple_build", "vmmdev_simple_request"],
    "hgcm.s": ["hgcm_await", "hgcm_wait_irq", "hgcm_set_wait_mode", "hgcm_call_start", "hgcm_cancel2",
               "hgcm_cancel_legacy"],
    "vmmdev.s": ["vmmdev_port", "vmmdev_mmio", "vmmdev_irq", "vmmdev_host_features"],
}


@pytest.mark.parametrize("mode", (64, 32))
@pytest.mark.parametrize("name", sorted(NEW_ROUTINES))
def test_new_routine_files_assemble_alone(mode: int, name: str) -> None:
    program = assemble(f'.include "{name}"\n', mode=mode)
    assert set(NEW_ROUTINES[name]) <= program.symbols.keys()


@pytest.mark.parametrize("mode", (64, 32))
def test_hgcm_wait_irq_define_selects_the_interrupt_wait(mode: int) -> None:
    default = assemble('.include "hgcm.s"\n', mode=mode)
    chosen = assemble('.include "hgcm.s"\n', mode=mode, defines={"HGCM_WAIT_IRQ": 1})
    for program, expected in ((default, 0), (chosen, 1)):
        offset = program.symbols["hgcm_wait_mode"] - program.base
        assert int.from_bytes(program.code[offset:offset + 4], "little") == expected
