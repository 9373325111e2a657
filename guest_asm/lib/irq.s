# irq.s - interrupt descriptor table, the VMMDev interrupt service routine and the setup
# that switches HGCM waits to interrupts.  Calling convention: see vmmdev.s.
#
# irq_install(vector, handler)
#   Write a present ring-0 interrupt gate (IF cleared on entry) for `vector` pointing at
#   `handler` into the library's IDT (256 entries, 16 bytes each in 64-bit mode, 8 in
#   32-bit mode; other vectors stay not-present) with the current code selector, then
#   `lidt` it.  External IRQ n arrives as vector IRQ_VECTOR_BASE + n.
#   Clobbers rax rcx (64) / eax ecx edx (32).
# irq_enable() / irq_disable()     sti / cli.
# vmmdev_isr                       (an interrupt handler, not a routine: install it)
#   Linux's vbg_core_isr: count the interrupt; if the VMMDevMemory fHaveEvents byte
#   (vmmdev_mmio + MMIO_OFF_HAVE_EVENTS) is 0 it is not ours (counted as spurious; when
#   vmmdev_mmio is 0 - no PCI probe - the check is skipped); otherwise acknowledge with an
#   AcknowledgeEvents request (its own static request: rc preset VERR_INTERNAL_ERROR,
#   events 0) through the request port; rc < 0 counts a failure; the acknowledged events
#   are OR-ed into vmmdev_events, and an HGCM event bumps vmmdev_hgcm_events (which is
#   what wakes hgcm_wait_irq: it re-checks DONE after the hlt).  Preserves all registers.
# vmmdev_isr_fast                  (an interrupt handler)
#   The VirtualBox Additions' variant: when vmmdev_host_features (vmmdev_init.s sets it
#   from GetHostVersion) has VMMDEV_HVF_FAST_IRQ_ACK, acknowledge with a 32-bit IN from
#   vmmdev_port + VMMDEV_PORT_OFF_REQUEST_FAST (0xFFFFFFFF = failure), else as vmmdev_isr.
# An interrupt the ISR cannot acknowledge leaves the level-triggered line asserted: it
# is delivered again after the iret (the run ends on its instruction budget).
# vmmdev_irq_setup(fast)
#   irq_install(IRQ_VECTOR_BASE + vmmdev_irq, fast ? vmmdev_isr_fast : vmmdev_isr), make
#   hgcm_wait_irq the HGCM wait (hgcm_set_wait_mode(1)), sti.  Call after the device
#   reported OK (vmmdev_driver_init), as Linux registers its handler after init.
# Counters (u32): vmmdev_irq_count (ISR entries), vmmdev_irq_spurious, vmmdev_irq_failed,
# vmmdev_ack_requests (AcknowledgeEvents sent), vmmdev_ack_fast (fast INs),
# vmmdev_hgcm_events, vmmdev_events (OR of all acknowledged event bits).

.include "hgcm.s"

# Gate attributes: present, DPL 0, interrupt gate (type 0xE), in the word at offset 4.
.equ IRQ_GATE_ATTRIBUTES, 0x8E00
.equ VMMDEV_EVENTS_REQ_SIZE, 28
.equ VMMDEV_EVENTS_OFF_EVENTS, 24
.if MODE == 64
.equ IRQ_GATE_SIZE, 16
.else
.equ IRQ_GATE_SIZE, 8
.endif
.equ IRQ_IDT_LIMIT, 256 * IRQ_GATE_SIZE - 1

.if MODE == 64
irq_install:
    lea rax, [rip + irq_idt]
    mov ecx, edi
    shl ecx, 4
    add rax, rcx
    mov word ptr [rax], si
    mov cx, cs
    mov word ptr [rax + 2], cx
    mov word ptr [rax + 4], IRQ_GATE_ATTRIBUTES
    mov rcx, rsi
    shr rcx, 16
    mov word ptr [rax + 6], cx
    shr rcx, 16
    mov dword ptr [rax + 8], ecx
    mov dword ptr [rax + 12], 0
    lea rax, [rip + irq_idtr]
    mov word ptr [rax], IRQ_IDT_LIMIT
    lea rcx, [rip + irq_idt]
    mov qword ptr [rax + 2], rcx
    lidt [rax]
    ret

vmmdev_isr:
    push rsi
    xor esi, esi
    jmp vmmdev_isr_common
vmmdev_isr_fast:
    push rsi
    mov esi, 1
vmmdev_isr_common:
    push rax
    push rcx
    push rdx
    push rdi
    push r8
    inc dword ptr [rip + vmmdev_irq_count]
    mov eax, dword ptr [rip + vmmdev_mmio]
    test eax, eax
    jz vmmdev_isr_ack
    cmp byte ptr [rax + MMIO_OFF_HAVE_EVENTS], 0
    jne vmmdev_isr_ack
    inc dword ptr [rip + vmmdev_irq_spurious]
    jmp vmmdev_isr_out
vmmdev_isr_ack:
    test esi, esi
    jz vmmdev_isr_ack_request
    test dword ptr [rip + vmmdev_host_features], VMMDEV_HVF_FAST_IRQ_ACK
    jz vmmdev_isr_ack_request
    mov edx, dword ptr [rip + vmmdev_port]
    add edx, VMMDEV_PORT_OFF_REQUEST_FAST
    in eax, dx
    cmp eax, -1
    je vmmdev_isr_failed
    inc dword ptr [rip + vmmdev_ack_fast]
    jmp vmmdev_isr_events
vmmdev_isr_ack_request:
    lea rdi, [rip + vmmdev_isr_ack_req]
    mov esi, VMMDEV_EVENTS_REQ_SIZE
    mov edx, VMMDevReq_AcknowledgeEvents
    call vmmdev_req_init
    mov dword ptr [rdi + REQUESTHEADER_OFF_RC], VERR_INTERNAL_ERROR
    mov dword ptr [rdi + VMMDEV_EVENTS_OFF_EVENTS], 0
    call vmmdev_request
    inc dword ptr [rip + vmmdev_ack_requests]
    test eax, eax
    js vmmdev_isr_failed
    mov eax, dword ptr [rdi + VMMDEV_EVENTS_OFF_EVENTS]
vmmdev_isr_events:
    or dword ptr [rip + vmmdev_events], eax
    test eax, VMMDEV_EVENT_HGCM
    jz vmmdev_isr_out
    inc dword ptr [rip + vmmdev_hgcm_events]
    jmp vmmdev_isr_out
vmmdev_isr_failed:
    inc dword ptr [rip + vmmdev_irq_failed]
vmmdev_isr_out:
    pop r8
    pop rdi
    pop rdx
    pop rcx
    pop rax
    pop rsi
    iretq

vmmdev_irq_setup:
    lea rsi, [rip + vmmdev_isr]
    test edi, edi
    jz vmmdev_irq_setup_install
    lea rsi, [rip + vmmdev_isr_fast]
vmmdev_irq_setup_install:
    mov edi, dword ptr [rip + vmmdev_irq]
    add edi, IRQ_VECTOR_BASE
    call irq_install
    mov edi, 1
    call hgcm_set_wait_mode
    sti
    ret
.else
irq_install:
    mov eax, dword ptr [esp + 4]
    shl eax, 3
    add eax, irq_idt
    mov ecx, dword ptr [esp + 8]
    mov word ptr [eax], cx
    mov dx, cs
    mov word ptr [eax + 2], dx
    mov word ptr [eax + 4], IRQ_GATE_ATTRIBUTES
    shr ecx, 16
    mov word ptr [eax + 6], cx
    mov eax, irq_idtr
    mov word ptr [eax], IRQ_IDT_LIMIT
    mov dword ptr [eax + 2], irq_idt
    lidt [eax]
    ret

vmmdev_isr:
    pushad
    xor esi, esi
    jmp vmmdev_isr_common
vmmdev_isr_fast:
    pushad
    mov esi, 1
vmmdev_isr_common:
    inc dword ptr [vmmdev_irq_count]
    mov eax, dword ptr [vmmdev_mmio]
    test eax, eax
    jz vmmdev_isr_ack
    cmp byte ptr [eax + MMIO_OFF_HAVE_EVENTS], 0
    jne vmmdev_isr_ack
    inc dword ptr [vmmdev_irq_spurious]
    jmp vmmdev_isr_out
vmmdev_isr_ack:
    test esi, esi
    jz vmmdev_isr_ack_request
    test dword ptr [vmmdev_host_features], VMMDEV_HVF_FAST_IRQ_ACK
    jz vmmdev_isr_ack_request
    mov edx, dword ptr [vmmdev_port]
    add edx, VMMDEV_PORT_OFF_REQUEST_FAST
    in eax, dx
    cmp eax, -1
    je vmmdev_isr_failed
    inc dword ptr [vmmdev_ack_fast]
    jmp vmmdev_isr_events
vmmdev_isr_ack_request:
    sub esp, 12
    mov dword ptr [esp], vmmdev_isr_ack_req
    mov dword ptr [esp + 4], VMMDEV_EVENTS_REQ_SIZE
    mov dword ptr [esp + 8], VMMDevReq_AcknowledgeEvents
    call vmmdev_req_init
    mov edi, vmmdev_isr_ack_req
    mov dword ptr [edi + REQUESTHEADER_OFF_RC], VERR_INTERNAL_ERROR
    mov dword ptr [edi + VMMDEV_EVENTS_OFF_EVENTS], 0
    call vmmdev_request
    add esp, 12
    inc dword ptr [vmmdev_ack_requests]
    test eax, eax
    js vmmdev_isr_failed
    mov eax, dword ptr [edi + VMMDEV_EVENTS_OFF_EVENTS]
vmmdev_isr_events:
    or dword ptr [vmmdev_events], eax
    test eax, VMMDEV_EVENT_HGCM
    jz vmmdev_isr_out
    inc dword ptr [vmmdev_hgcm_events]
    jmp vmmdev_isr_out
vmmdev_isr_failed:
    inc dword ptr [vmmdev_irq_failed]
vmmdev_isr_out:
    popad
    iretd

vmmdev_irq_setup:
    mov ecx, vmmdev_isr
    cmp dword ptr [esp + 4], 0
    je vmmdev_irq_setup_install
    mov ecx, vmmdev_isr_fast
vmmdev_irq_setup_install:
    mov eax, dword ptr [vmmdev_irq]
    add eax, IRQ_VECTOR_BASE
    sub esp, 8
    mov dword ptr [esp], eax
    mov dword ptr [esp + 4], ecx
    call irq_install
    mov dword ptr [esp], 1
    call hgcm_set_wait_mode
    add esp, 8
    sti
    ret
.endif

irq_enable:
    sti
    ret

irq_disable:
    cli
    ret

.align 4
vmmdev_irq_count:     .long 0
vmmdev_irq_spurious:  .long 0
vmmdev_irq_failed:    .long 0
vmmdev_ack_requests:  .long 0
vmmdev_ack_fast:      .long 0
vmmdev_hgcm_events:   .long 0
vmmdev_events:        .long 0
.align 8
vmmdev_isr_ack_req:
    .space VMMDEV_EVENTS_REQ_SIZE
.align 16
irq_idtr:
    .space 16
.align 16
irq_idt:
    .space 256 * IRQ_GATE_SIZE
