# cancel.s - cancel an HGCM call from the guest (reference §4.10), either mode.
# Driver setup as demo_irq.s (PCI probe, vmmdev_driver_init, interrupt-driven waits), a
# connection to VBoxSharedFolders, then:
#   1 WAIT_FOR_MAPPINGS_CHANGES with a stale version (~0) returns at once: VINF_SUCCESS
#     and the current version.
#   2 Cancel2 of that completed request: VERR_NOT_FOUND.   3 Cancel2 of 0: VERR_INVALID_PARAMETER.
#   4 WAIT_FOR_MAPPINGS_CHANGES with the current version, started without waiting
#     (hgcm_call_start): header.rc VINF_HGCM_ASYNC_EXECUTE, DONE clear (the service keeps
#     it until the mappings change).
#   5 hgcm_cancel2: VINF_SUCCESS, CANCELLED now set in fu32Flags.
#   6 Cancel2 again at once: VINF_SUCCESS while the cancelled command is still in the
#     device's list (asynchronous timing), VERR_NOT_FOUND when its completion already
#     happened (synchronous timing).  Checked against the define RECANCEL_EXPECT when
#     given, else only logged.
#   7 after WAIT_CYCLES more cycles (rdtsc; interrupts on): DONE still clear, result and
#     header.rc untouched, and no HGCM event arrived since step 4.
#   8 Cancel2 again: VERR_NOT_FOUND (the command left the list).
#   9 the same with the legacy protocol (hgcm_cancel_legacy: retype to HGCMCancel):
#     VINF_SUCCESS, no DONE after WAIT_CYCLES, then again: VERR_NOT_FOUND (the device's
#     VERR_INVALID_PARAMETER, remapped as Linux does).
#  10 the client still works (stale-version wait: VINF_SUCCESS), disconnect.
# Logs "cancel: <what> <status>" for every status.  Exit code 0 when everything matched,
# else the failing step's number (1-10) or 20 probe / 21 driver init / 22 connect failed.

.include "ccall.s"

.ifndef WAIT_CYCLES
.equ WAIT_CYCLES, 200000
.endif

# Log `msg` and the status in eax (kept in [cancel_status]).
.macro log_status msg
    mov dword ptr [cancel_status], eax
    ccall1 log_string, \msg
    ccall1 log_dec32, [cancel_status]
    ccall1 log_char, 10
.endm

# log_status, then leave with exit code \step unless the status is \want.
.macro expect step, msg, want
    log_status \msg
    cmp dword ptr [cancel_status], \want
    je cancel_ok_\@
    ccall1 exit, \step
cancel_ok_\@:
.endm

# Leave with exit code \step unless the flag test leaves ZF set (the caller's `test`).
.macro require_zero step
    jz cancel_req_\@
    ccall1 exit, \step
cancel_req_\@:
.endm

_start:
    ccall0 vmmdev_pci_probe
    test eax, eax
    jz cancel_probed
    ccall1 exit, 20
cancel_probed:
    ccall0 vmmdev_driver_init
    test eax, eax
    jz cancel_ready
    ccall1 exit, 21
cancel_ready:
    ccall1 vmmdev_irq_setup, 0
    ccall1 hgcm_connect, cancel_service
    test eax, eax
    jz cancel_connected
    ccall1 exit, 22
cancel_connected:
    mov dword ptr [cancel_client], edx

    # 1: learn the current mappings version.
    mov dword ptr [cancel_version], 0xFFFFFFFF
    ccall2 sf_wait_for_mappings_changes, [cancel_client], cancel_version
    expect 1, cancel_msg_stale, VINF_SUCCESS
    # 2, 3: nothing to cancel.
    ccall1 hgcm_cancel2, hgcm_call_req
    expect 2, cancel_msg_completed, VERR_NOT_FOUND
    ccall1 hgcm_cancel2, 0
    expect 3, cancel_msg_null, VERR_INVALID_PARAMETER

    # 4: a wait the host keeps pending.
    call cancel_start_wait
    expect 4, cancel_msg_started, VINF_HGCM_ASYNC_EXECUTE
    mov ecx, hgcm_call_req
    test dword ptr [ecx + HGCMCALL_OFF_FU32FLAGS], VBOX_HGCM_REQ_DONE
    require_zero 4
    mov eax, dword ptr [vmmdev_hgcm_events]
    mov dword ptr [cancel_events], eax

    # 5: Cancel2.
    ccall1 hgcm_cancel2, hgcm_call_req
    expect 5, cancel_msg_cancel2, VINF_SUCCESS
    mov ecx, hgcm_call_req
    test dword ptr [ecx + HGCMCALL_OFF_FU32FLAGS], VBOX_HGCM_REQ_CANCELLED
    jnz cancel_flagged
    ccall1 exit, 5
cancel_flagged:
    # 6: again, at once.
    ccall1 hgcm_cancel2, hgcm_call_req
.ifdef RECANCEL_EXPECT
    expect 6, cancel_msg_again, RECANCEL_EXPECT
.else
    log_status cancel_msg_again
.endif

    # 7: the request is never completed.
    call cancel_wait_cycles
    mov ecx, hgcm_call_req
    test dword ptr [ecx + HGCMCALL_OFF_FU32FLAGS], VBOX_HGCM_REQ_DONE
    require_zero 7
    cmp dword ptr [ecx + HGCMCALL_OFF_RESULT], 0
    require_zero 7
    cmp dword ptr [ecx + HGCMCALL_OFF_RC], VINF_HGCM_ASYNC_EXECUTE
    require_zero 7
    mov eax, dword ptr [vmmdev_hgcm_events]
    cmp eax, dword ptr [cancel_events]
    require_zero 7
    ccall1 log_string, cancel_msg_no_done

    # 8: gone from the device's list.
    ccall1 hgcm_cancel2, hgcm_call_req
    expect 8, cancel_msg_after, VERR_NOT_FOUND

    # 9: the legacy protocol.
    call cancel_start_wait
    expect 9, cancel_msg_started, VINF_HGCM_ASYNC_EXECUTE
    ccall1 hgcm_cancel_legacy, hgcm_call_req
    expect 9, cancel_msg_legacy, VINF_SUCCESS
    call cancel_wait_cycles
    mov ecx, hgcm_call_req
    test dword ptr [ecx + HGCMCALL_OFF_FU32FLAGS], VBOX_HGCM_REQ_DONE
    require_zero 9
    cmp dword ptr [ecx + HGCMCALL_OFF_RESULT], 0
    require_zero 9
    mov eax, dword ptr [vmmdev_hgcm_events]
    cmp eax, dword ptr [cancel_events]
    require_zero 9
    ccall1 log_string, cancel_msg_no_done
    ccall1 hgcm_cancel_legacy, hgcm_call_req
    expect 9, cancel_msg_legacy_after, VERR_NOT_FOUND

    # 10: the client is fine.
    mov dword ptr [cancel_version], 0xFFFFFFFF
    ccall2 sf_wait_for_mappings_changes, [cancel_client], cancel_version
    expect 10, cancel_msg_stale, VINF_SUCCESS
    ccall1 hgcm_disconnect, [cancel_client]
    expect 10, cancel_msg_disconnect, VINF_SUCCESS
    ccall1 exit, 0

# Start WAIT_FOR_MAPPINGS_CHANGES(cancel_version) without waiting -> eax = header.rc.
cancel_start_wait:
    ccall3 hgcm_call_begin, [cancel_client], SHFL_FN_WAIT_FOR_MAPPINGS_CHANGES, SHFL_CPARMS_WAIT_FOR_MAPPINGS_CHANGES
    ccall2 hgcm_parm_u32, 0, [cancel_version]
    ccall0 hgcm_call_start
    ret

# Spin (pause) until WAIT_CYCLES virtual cycles passed (rdtsc).  Clobbers eax ecx edx.
cancel_wait_cycles:
    rdtsc
    mov ecx, eax
cancel_wait_cycles_loop:
    pause
    rdtsc
    sub eax, ecx
    cmp eax, WAIT_CYCLES
    jb cancel_wait_cycles_loop
    ret

.include "pci.s"
.include "vmmdev_init.s"
.include "irq.s"
.include "sf_client.s"
.include "log.s"

cancel_service:          .asciz "VBoxSharedFolders"
cancel_msg_stale:        .asciz "cancel: wait with a stale version "
cancel_msg_completed:    .asciz "cancel: cancel2 of a completed request "
cancel_msg_null:         .asciz "cancel: cancel2 of address 0 "
cancel_msg_started:      .asciz "cancel: wait started "
cancel_msg_cancel2:      .asciz "cancel: cancel2 "
cancel_msg_again:        .asciz "cancel: cancel2 again "
cancel_msg_no_done:      .asciz "cancel: no completion, no event\n"
cancel_msg_after:        .asciz "cancel: cancel2 after the cancelled completion "
cancel_msg_legacy:       .asciz "cancel: legacy cancel "
cancel_msg_legacy_after: .asciz "cancel: legacy cancel after the cancelled completion "
cancel_msg_disconnect:   .asciz "cancel: disconnect "
.align 8
cancel_client:   .quad 0
cancel_version:  .quad 0
cancel_status:   .quad 0
cancel_events:   .quad 0
