"""Asynchronous HGCM, VMMDev events and interrupt delivery, driven by guest code."""

from __future__ import annotations

import pytest

from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.clock import CostProfile
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import IRQ_VECTOR_BASE, Machine, RunEnd
from hgcmlab.machine.tracing import ListSink

IDT = 0x30000
IDTR = 0x2F000
CONNECT_REQ = 0x40000
ACK_REQ = 0x41000
INFO_REQ = 0x42000
WOKEN = 0x43000

# Guest: install an IDT gate for the VMMDev vector, report guest info, submit an HGCM
# connect, then either sleep in `sti; hlt` until the handler saw DONE, or poll DONE.
PROGRAM = """
_start:
.if MODE == 64
    lea rax, [rip + irq_handler]
    mov rdi, {gate64}
    mov word ptr [rdi], ax
    mov word ptr [rdi + 2], 8
    mov word ptr [rdi + 4], 0x8E00
    shr rax, 16
    mov word ptr [rdi + 6], ax
    shr rax, 16
    mov dword ptr [rdi + 8], eax
    mov dword ptr [rdi + 12], 0
    mov word ptr [{idtr}], 4095
    mov qword ptr [{idtr} + 2], {idt}
.else
    lea eax, [irq_handler]
    mov edi, {gate32}
    mov word ptr [edi], ax
    mov word ptr [edi + 2], 8
    mov word ptr [edi + 4], 0x8E00
    shr eax, 16
    mov word ptr [edi + 6], ax
    mov word ptr [{idtr}], 2047
    mov dword ptr [{idtr} + 2], {idt}
.endif
    lidt [{idtr}]
    # ReportGuestInfo (type 50, 32 bytes), interface 1.4
    mov dword ptr [{info}], 32
    mov dword ptr [{info} + 4], 0x10001
    mov dword ptr [{info} + 8], 50
    mov dword ptr [{info} + 12], -1
    mov dword ptr [{info} + 16], 0
    mov dword ptr [{info} + 20], 2
    mov dword ptr [{info} + 24], 0x10004
    mov dword ptr [{info} + 28], 0x53100
    mov eax, {info}
    mov dx, 0xd020
    out dx, eax
    # HGCM connect to VBoxSharedFolders (168 bytes), flags and result preset
    mov dword ptr [{connect}], 168
    mov dword ptr [{connect} + 4], 0x10001
    mov dword ptr [{connect} + 8], 60
    mov dword ptr [{connect} + 12], -1
    mov dword ptr [{connect} + 16], 0
    mov dword ptr [{connect} + 20], 2
    mov dword ptr [{connect} + 24], 0
    mov dword ptr [{connect} + 28], 0
    mov dword ptr [{connect} + 32], 2
{name_stores}    mov eax, {connect}
    mov dx, 0xd020
    out dx, eax
    cmp dword ptr [{connect} + 12], 2903
    jne fail_rc
    test dword ptr [{connect} + 24], 1
    jnz fail_done_early
.if {use_irq}
    sti
wait:
    hlt
    test dword ptr [{connect} + 24], 1
    jz wait
    cli
.else
poll:
    pause
    test dword ptr [{connect} + 24], 1
    jz poll
.endif
    cmp dword ptr [{connect} + 28], 0
    jne fail_result
    mov eax, [{woken}]
    shl eax, 8
    or eax, [{connect} + 164]
    out 0xf4, eax
fail_rc:
    mov al, 0xf1
    out 0xf4, al
fail_done_early:
    mov al, 0xf2
    out 0xf4, al
fail_result:
    mov al, 0xf3
    out 0xf4, al

irq_handler:
    push rax_or_eax
    push rdx_or_edx
    # AcknowledgeEvents (type 41, 28 bytes)
    mov dword ptr [{ack}], 28
    mov dword ptr [{ack} + 4], 0x10001
    mov dword ptr [{ack} + 8], 41
    mov dword ptr [{ack} + 12], -1
    mov dword ptr [{ack} + 16], 0
    mov dword ptr [{ack} + 20], 2
    mov dword ptr [{ack} + 24], 0
    mov eax, {ack}
    mov dx, 0xd020
    out dx, eax
    test dword ptr [{ack} + 24], 2
    jz not_hgcm
    inc dword ptr [{woken}]
not_hgcm:
    pop rdx_or_edx
    pop rax_or_eax
    iret_insn
"""


def program(mode: int, use_irq: bool) -> str:
    vector = IRQ_VECTOR_BASE + VMMDevConfig().irq
    name = b"VBoxSharedFolders".ljust(20, b"\0")
    stores = "".join(f"    mov dword ptr [{CONNECT_REQ + 36 + i}], {int.from_bytes(name[i:i + 4], 'little')}\n"
                     for i in range(0, len(name), 4))
    text = PROGRAM.format(name_stores=stores, gate64=IDT + vector * 16, gate32=IDT + vector * 8, idt=IDT, idtr=IDTR, connect=CONNECT_REQ,
                          ack=ACK_REQ, info=INFO_REQ, woken=WOKEN, use_irq=int(use_irq))
    regs = {"rax_or_eax": "rax", "rdx_or_edx": "rdx", "iret_insn": "iretq"} if mode == 64 else \
        {"rax_or_eax": "eax", "rdx_or_edx": "edx", "iret_insn": "iretd"}
    for placeholder, register in regs.items():
        text = text.replace(placeholder, register)
    return text


LATENCY = 50_000


def async_machine(mode: int) -> tuple[Machine, ListSink]:
    config = VMMDevConfig(timing=HgcmTiming(call_cycles=LATENCY, byte_cycles=0, force_async=True))
    machine = vbox_board(mode, vmmdev_config=config)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    return machine, sink


@pytest.mark.parametrize("mode", [64, 32])
def test_guest_sleeps_in_hlt_takes_the_interrupt_and_acknowledges(mode: int) -> None:
    machine, sink = async_machine(mode)
    machine.load(assemble(program(mode, use_irq=True), mode=mode))
    result = machine.run()
    assert result.end is RunEnd.EXIT, result.fault and result.fault.format()
    woken, client = result.exit_code >> 8, result.exit_code & 0xFF
    assert (woken, client) == (1, 1)
    connect = next(e for e in sink.events if e.kind == "hgcm_connect")
    complete = next(e for e in sink.events if e.kind == "hgcm_complete")
    assert complete.fields["latency"] == LATENCY
    assert complete.cycle == connect.cycle + LATENCY, "DONE is written exactly at the modelled cycle"
    kinds = [e.kind for e in sink.events if e.kind in (
        "cpu_halt", "event", "hgcm_complete", "irq_line", "interrupt_delivered", "vmmdev_ack")]
    assert kinds[:7] == ["cpu_halt", "event", "hgcm_complete", "irq_line", "interrupt_delivered",
                         "vmmdev_ack", "irq_line"]
    delivered = sink.of_kind("interrupt_delivered")[0]
    assert delivered.fields["vector"] == IRQ_VECTOR_BASE + 11
    assert sink.of_kind("irq_line")[-1].fields["asserted"] is False
    halted = sink.of_kind("charge")
    assert any(e.fields["reason"] == "halted until the next event" for e in halted)


@pytest.mark.parametrize("mode", [64, 32])
def test_guest_polling_done_sees_it_at_the_modelled_cycle(mode: int) -> None:
    machine, sink = async_machine(mode)
    machine.load(assemble(program(mode, use_irq=False), mode=mode))
    result = machine.run()
    assert result.end is RunEnd.EXIT and result.exit_code == 1, result
    connect = sink.of_kind("hgcm_connect")[0]
    complete = sink.of_kind("hgcm_complete")[0]
    # A running guest sees events at the first instruction boundary at or after their cycle.
    assert 0 <= complete.cycle - (connect.cycle + LATENCY) < CostProfile().max_cost
    assert not sink.of_kind("interrupt_delivered"), "interrupts stayed disabled"


def test_interrupt_without_a_usable_idt_is_a_clear_fault() -> None:
    machine, _ = async_machine(64)
    text = program(64, use_irq=True).replace("    lidt [", "    nop # lidt [")
    machine.load(assemble(text, mode=64))
    result = machine.run()
    assert result.end is RunEnd.FAULT
    assert result.fault is not None and "cannot deliver IRQ 11" in result.fault.description


@pytest.mark.parametrize("use_irq", [True, False])
def test_async_runs_are_deterministic(use_irq: bool) -> None:
    def once() -> tuple[list[str], int]:
        machine, sink = async_machine(64)
        machine.load(assemble(program(64, use_irq), mode=64))
        result = machine.run()
        return [e.to_json() for e in sink.events], result.cycles

    assert once() == once()
