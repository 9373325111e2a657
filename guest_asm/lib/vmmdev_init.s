# vmmdev_init.s - the request sequence a guest driver sends when it loads (Linux's
# vbg_core_init, reference §3.2), with Linux's status handling.
# Calling convention: see vmmdev.s.  Clobbers the caller-saved registers.
#
# vmmdev_driver_init() -> eax = 0 on success, else the failing status; edx = failing step
#   1 GetHostVersion (fatal if rc < 0, and VERR_NOT_SUPPORTED when the host lacks
#     VMMDEV_HVF_HGCM_PHYS_PAGE_LIST, as Linux refuses old hosts); stores the features
#     in vmmdev_host_features (vmmdev.s).
#   2 guest info (fatal): ReportGuestInfo2 then ReportGuestInfo; if Info2 answers
#     VERR_NOT_SUPPORTED or VERR_NOT_IMPLEMENTED: Info first, then Info2 with
#     VERR_NOT_IMPLEMENTED tolerated (vbg_report_guest_info).  Info2 reports additions
#     6.0.0 r127566 "6.0.0" (the in-tree Linux driver's version) with
#     VBOXGUESTINFO2_F_REQUESTOR_INFO; Info is vmmdev_report_guest_info.
#   3 CtlGuestFilterMask(or 0x202 = MOUSE_POSITION_CHANGED | HGCM, not 0xFFFFFDFD) (fatal)
#   4 SetGuestCapabilities(or 0, not 0xFFFFFFFF) (fatal)
#   5 SetMouseStatus(0) (fatal)
#   then, errors not fatal (bits in the u32 vmmdev_init_warnings):
#     GetHypervisorInfo (bit 0), HeartbeatConfigure(false) then (true) (bit 1; Linux
#     stops after the first failure), ReportGuestStatus(facility 20 = VBoxGuest driver,
#     status 50 = active) with VERR_NOT_IMPLEMENTED counted as success (bit 2).
#   No heartbeat timer is started (the library has no timer; the device does not check).
# vmmdev_simple_build(type, size, a, b, c)
#   Build a request of `size` bytes (at most VMMDEV_INIT_REQ_MAX) in the static buffer
#   `vmmdev_init_req`: 0xAA fill, header, u32 a at offset 24, b at 28, c at 32 (stores
#   past `size` are not sent).
# vmmdev_simple_request(type, size, a, b, c) -> eax = header.rc
#   vmmdev_simple_build, then submit; outputs stay in `vmmdev_init_req`.

.include "ccall.s"
.include "vmmdev.s"

# Request layouts (reference §1.7, §3.2; no ctypes structures exist for them yet).
.equ VMMDEV_INIT_REQ_MAX, 168
.equ REQ_OFF_BODY, 24
.equ REPORTGUESTINFO2_SIZE, 168
.equ GUESTINFO2_OFF_MAJOR, 24
.equ GUESTINFO2_OFF_MINOR, 26
.equ GUESTINFO2_OFF_BUILD, 28
.equ GUESTINFO2_OFF_REVISION, 32
.equ GUESTINFO2_OFF_FEATURES, 36
.equ GUESTINFO2_OFF_NAME, 40
.equ VBOXGUESTINFO2_F_REQUESTOR_INFO, 1
.equ LINUX_VBG_VERSION_MAJOR, 6
.equ LINUX_VBG_VERSION_MINOR, 0
.equ LINUX_VBG_VERSION_BUILD, 0
.equ LINUX_VBG_SVN_REV, 127566
.equ CTLGUESTFILTERMASK_SIZE, 32
.equ GUESTCAPABILITIES_SIZE, 32
.equ MOUSESTATUS_SIZE, 36
.equ HYPERVISORINFO_SIZE, 32
.equ HEARTBEATCONFIGURE_SIZE, 36
.equ REPORTGUESTSTATUS_SIZE, 36
.equ LINUX_FIXED_EVENTS, 0x202
.equ LINUX_FIXED_EVENTS_NOT, 0xFFFFFDFD
.equ VBOXGUEST_FACILITY_TYPE_VBOXGUEST_DRIVER, 20
.equ VBOXGUEST_FACILITY_STATUS_ACTIVE, 50
.equ INIT_WARN_HYPERVISOR, 1
.equ INIT_WARN_HEARTBEAT, 2
.equ INIT_WARN_STATUS, 4

.if MODE == 64
vmmdev_simple_build:
    push rbx
    push r12
    push r13
    mov ebx, edx
    mov r12d, ecx
    mov r13d, r8d
    mov edx, edi
    lea rdi, [rip + vmmdev_init_req]
    call vmmdev_req_init
    mov dword ptr [rdi + REQ_OFF_BODY], ebx
    mov dword ptr [rdi + REQ_OFF_BODY + 4], r12d
    mov dword ptr [rdi + REQ_OFF_BODY + 8], r13d
    pop r13
    pop r12
    pop rbx
    ret

vmmdev_simple_request:
    call vmmdev_simple_build
    lea rdi, [rip + vmmdev_init_req]
    jmp vmmdev_request
.else
vmmdev_simple_build:
    sub esp, 12
    mov dword ptr [esp], vmmdev_init_req
    mov eax, dword ptr [esp + 20]
    mov dword ptr [esp + 4], eax
    mov eax, dword ptr [esp + 16]
    mov dword ptr [esp + 8], eax
    call vmmdev_req_init
    add esp, 12
    mov ecx, vmmdev_init_req
    mov eax, dword ptr [esp + 12]
    mov dword ptr [ecx + REQ_OFF_BODY], eax
    mov eax, dword ptr [esp + 16]
    mov dword ptr [ecx + REQ_OFF_BODY + 4], eax
    mov eax, dword ptr [esp + 20]
    mov dword ptr [ecx + REQ_OFF_BODY + 8], eax
    ret

vmmdev_simple_request:
    # Copy the five arguments (each push moves esp, so the same offset reaches the next).
    push dword ptr [esp + 20]
    push dword ptr [esp + 20]
    push dword ptr [esp + 20]
    push dword ptr [esp + 20]
    push dword ptr [esp + 20]
    call vmmdev_simple_build
    mov dword ptr [esp], vmmdev_init_req
    call vmmdev_request
    add esp, 20
    ret
.endif

vmmdev_driver_init:
    mov dword ptr [vmmdev_init_warnings], 0
    # 1: GetHostVersion
    ccall5 vmmdev_simple_request, VMMDevReq_GetHostVersion, REQHOSTVERSION_SIZE, 0, 0, 0
    mov dword ptr [vmmdev_init_step], 1
    test eax, eax
    js vmmdev_driver_init_fail
    mov ecx, vmmdev_init_req
    mov eax, dword ptr [ecx + REQHOSTVERSION_OFF_FEATURES]
    mov dword ptr [vmmdev_host_features], eax
    test eax, VMMDEV_HVF_HGCM_PHYS_PAGE_LIST
    mov eax, VERR_NOT_SUPPORTED
    jz vmmdev_driver_init_fail
    # 2: guest info, Info2 first
    mov dword ptr [vmmdev_init_step], 2
    ccall0 vmmdev_report_guest_info2
    test eax, eax
    js vmmdev_driver_init_info2_failed
    ccall0 vmmdev_report_guest_info
    test eax, eax
    js vmmdev_driver_init_fail
    jmp vmmdev_driver_init_filter
vmmdev_driver_init_info2_failed:
    cmp eax, VERR_NOT_SUPPORTED
    je vmmdev_driver_init_info_first
    cmp eax, VERR_NOT_IMPLEMENTED
    jne vmmdev_driver_init_fail
vmmdev_driver_init_info_first:
    ccall0 vmmdev_report_guest_info
    test eax, eax
    js vmmdev_driver_init_fail
    ccall0 vmmdev_report_guest_info2
    cmp eax, VERR_NOT_IMPLEMENTED
    je vmmdev_driver_init_filter
    test eax, eax
    js vmmdev_driver_init_fail
vmmdev_driver_init_filter:
    # 3: the fixed event filter
    mov dword ptr [vmmdev_init_step], 3
    ccall5 vmmdev_simple_request, VMMDevReq_CtlGuestFilterMask, CTLGUESTFILTERMASK_SIZE, LINUX_FIXED_EVENTS, LINUX_FIXED_EVENTS_NOT, 0
    test eax, eax
    js vmmdev_driver_init_fail
    # 4: no capabilities
    mov dword ptr [vmmdev_init_step], 4
    ccall5 vmmdev_simple_request, VMMDevReq_SetGuestCapabilities, GUESTCAPABILITIES_SIZE, 0, 0xFFFFFFFF, 0
    test eax, eax
    js vmmdev_driver_init_fail
    # 5: mouse status 0
    mov dword ptr [vmmdev_init_step], 5
    ccall5 vmmdev_simple_request, VMMDevReq_SetMouseStatus, MOUSESTATUS_SIZE, 0, 0, 0
    test eax, eax
    js vmmdev_driver_init_fail
    # Not fatal from here on.
    mov dword ptr [vmmdev_init_step], 0
    ccall5 vmmdev_simple_request, VMMDevReq_GetHypervisorInfo, HYPERVISORINFO_SIZE, 0, 0, 0
    test eax, eax
    jns vmmdev_driver_init_heartbeat
    or dword ptr [vmmdev_init_warnings], INIT_WARN_HYPERVISOR
vmmdev_driver_init_heartbeat:
    ccall5 vmmdev_simple_request, VMMDevReq_HeartbeatConfigure, HEARTBEATCONFIGURE_SIZE, 0, 0, 0
    test eax, eax
    js vmmdev_driver_init_heartbeat_failed
    ccall5 vmmdev_simple_request, VMMDevReq_HeartbeatConfigure, HEARTBEATCONFIGURE_SIZE, 0, 0, 1
    test eax, eax
    jns vmmdev_driver_init_status
vmmdev_driver_init_heartbeat_failed:
    or dword ptr [vmmdev_init_warnings], INIT_WARN_HEARTBEAT
vmmdev_driver_init_status:
    ccall5 vmmdev_simple_request, VMMDevReq_ReportGuestStatus, REPORTGUESTSTATUS_SIZE, VBOXGUEST_FACILITY_TYPE_VBOXGUEST_DRIVER, VBOXGUEST_FACILITY_STATUS_ACTIVE, 0
    test eax, eax
    jns vmmdev_driver_init_done
    cmp eax, VERR_NOT_IMPLEMENTED
    je vmmdev_driver_init_done
    or dword ptr [vmmdev_init_warnings], INIT_WARN_STATUS
vmmdev_driver_init_done:
    xor eax, eax
    xor edx, edx
    ret
vmmdev_driver_init_fail:
    mov edx, dword ptr [vmmdev_init_step]
    ret

# ReportGuestInfo2 (internal) -> eax = header.rc
vmmdev_report_guest_info2:
    ccall5 vmmdev_simple_build, VMMDevReq_ReportGuestInfo2, REPORTGUESTINFO2_SIZE, 0, 0, 0
    mov ecx, vmmdev_init_req
    mov word ptr [ecx + GUESTINFO2_OFF_MAJOR], LINUX_VBG_VERSION_MAJOR
    mov word ptr [ecx + GUESTINFO2_OFF_MINOR], LINUX_VBG_VERSION_MINOR
    mov dword ptr [ecx + GUESTINFO2_OFF_BUILD], LINUX_VBG_VERSION_BUILD
    mov dword ptr [ecx + GUESTINFO2_OFF_REVISION], LINUX_VBG_SVN_REV
    mov dword ptr [ecx + GUESTINFO2_OFF_FEATURES], VBOXGUESTINFO2_F_REQUESTOR_INFO
    xor edx, edx
vmmdev_report_guest_info2_name:
    mov al, byte ptr [vmmdev_guest_info2_name + edx]
    mov byte ptr [ecx + edx + GUESTINFO2_OFF_NAME], al
    inc edx
    test al, al
    jnz vmmdev_report_guest_info2_name
    ccall1 vmmdev_request, vmmdev_init_req
    ret

vmmdev_guest_info2_name: .asciz "6.0.0"
.align 4
vmmdev_init_step:     .long 0
vmmdev_init_warnings: .long 0
.align 16
vmmdev_init_req:
    .space VMMDEV_INIT_REQ_MAX
