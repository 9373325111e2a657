# vmmdev.s - build and submit VMMDev requests.
#
# Calling convention (all lib/ routines): 64-bit = System V AMD64 (args rdi, rsi, rdx,
# rcx, r8, r9; result eax, second result edx; rbx rbp r12-r15 preserved);
# 32-bit = i386 cdecl (args on the stack, a 64-bit arg takes two slots low dword first;
# result eax, second result edx; ebx esi edi ebp preserved; caller pops the args).
#
# vmmdev_req_init(req, size, type)
#   Fill `size` bytes at `req` with 0xAA (like the Linux driver), then write the header:
#   size, VMMDEV_REQUEST_HEADER_VERSION, type, rc = VERR_GENERAL_FAILURE, reserved1 = 0,
#   fRequestor = VMMDEV_REQUESTOR_USR_DRV_OTHER.
#   64-bit: preserves rdi and rsi; clobbers rax, rcx, rdx, r8.  32-bit: clobbers eax ecx edx.
#
# vmmdev_request(req) -> eax = header.rc
#   One 32-bit `out` of the request's physical address to the request port, BAR0 + 0, read
#   from the variable `vmmdev_port` (flat memory is identity-mapped, so the address is the
#   pointer).  64-bit: preserves rdi; clobbers rax, rdx.  32-bit: clobbers eax ecx edx.
#
# vmmdev_report_guest_info() -> eax = header.rc
#   ReportGuestInfo: interfaceVersion VMMDEV_VERSION, osType Linux 2.6 (0x53000, with the
#   x64 flag 0x100 in 64-bit mode).  Programs call it first, as a driver does.
#   Clobbers what vmmdev_request clobbers plus rcx/rsi/r8 (64) or ecx (32).

#
# Device location (u32 variables, read by every routine that touches the device):
#   vmmdev_port   BAR0 base = the request port (default VMMDEV_PORT, 0xD020); the fast
#                 IRQ-ack port is vmmdev_port + VMMDEV_PORT_OFF_REQUEST_FAST.
#   vmmdev_mmio   BAR1 base, the VMMDevMemory page (0 = not known: no PCI probe yet).
#   vmmdev_irq    the interrupt line (default VMMDEV_IRQ); vector IRQ_VECTOR_BASE + line.
#   vmmdev_pci_probe (pci.s) fills all three from PCI configuration space.
#   vmmdev_host_features  the host's VMMDEV_HVF_* bits (vmmdev_driver_init stores them
#                 from GetHostVersion; 0 until then).

.equ VBOXOSTYPE_LINUX26, 0x53000
.equ VBOXOSTYPE_X64_FLAG, 0x100

.if MODE == 64
vmmdev_req_init:
    push rdi
    mov r8d, edx
    mov ecx, esi
    shr ecx, 3
    mov rax, 0xAAAAAAAAAAAAAAAA
    rep stosq
    mov ecx, esi
    and ecx, 7
    rep stosb
    pop rdi
    mov dword ptr [rdi + REQUESTHEADER_OFF_SIZE], esi
    mov dword ptr [rdi + REQUESTHEADER_OFF_VERSION], VMMDEV_REQUEST_HEADER_VERSION
    mov dword ptr [rdi + REQUESTHEADER_OFF_REQUESTTYPE], r8d
    mov dword ptr [rdi + REQUESTHEADER_OFF_RC], VERR_GENERAL_FAILURE
    mov dword ptr [rdi + REQUESTHEADER_OFF_RESERVED1], 0
    mov dword ptr [rdi + REQUESTHEADER_OFF_FREQUESTOR], VMMDEV_REQUESTOR_USR_DRV_OTHER
    ret

vmmdev_request:
    mov eax, edi
    mov edx, dword ptr [rip + vmmdev_port]
    out dx, eax
    mov eax, dword ptr [rdi + REQUESTHEADER_OFF_RC]
    ret

vmmdev_report_guest_info:
    lea rdi, [rip + vmmdev_guest_info_req]
    mov esi, REPORTGUESTINFO_SIZE
    mov edx, VMMDevReq_ReportGuestInfo
    call vmmdev_req_init
    mov dword ptr [rdi + REPORTGUESTINFO_OFF_INTERFACEVERSION], VMMDEV_VERSION
    mov dword ptr [rdi + REPORTGUESTINFO_OFF_OSTYPE], VBOXOSTYPE_LINUX26 | VBOXOSTYPE_X64_FLAG
    jmp vmmdev_request
.else
vmmdev_req_init:
    push edi
    mov edi, dword ptr [esp + 8]
    mov ecx, dword ptr [esp + 12]
    shr ecx, 2
    mov eax, 0xAAAAAAAA
    rep stosd
    mov ecx, dword ptr [esp + 12]
    and ecx, 3
    rep stosb
    mov edi, dword ptr [esp + 8]
    mov ecx, dword ptr [esp + 12]
    mov dword ptr [edi + REQUESTHEADER_OFF_SIZE], ecx
    mov dword ptr [edi + REQUESTHEADER_OFF_VERSION], VMMDEV_REQUEST_HEADER_VERSION
    mov ecx, dword ptr [esp + 16]
    mov dword ptr [edi + REQUESTHEADER_OFF_REQUESTTYPE], ecx
    mov dword ptr [edi + REQUESTHEADER_OFF_RC], VERR_GENERAL_FAILURE
    mov dword ptr [edi + REQUESTHEADER_OFF_RESERVED1], 0
    mov dword ptr [edi + REQUESTHEADER_OFF_FREQUESTOR], VMMDEV_REQUESTOR_USR_DRV_OTHER
    pop edi
    ret

vmmdev_request:
    mov ecx, dword ptr [esp + 4]
    mov eax, ecx
    mov edx, dword ptr [vmmdev_port]
    out dx, eax
    mov eax, dword ptr [ecx + REQUESTHEADER_OFF_RC]
    ret

vmmdev_report_guest_info:
    sub esp, 12
    mov dword ptr [esp], vmmdev_guest_info_req
    mov dword ptr [esp + 4], REPORTGUESTINFO_SIZE
    mov dword ptr [esp + 8], VMMDevReq_ReportGuestInfo
    call vmmdev_req_init
    add esp, 12
    mov ecx, vmmdev_guest_info_req
    mov dword ptr [ecx + REPORTGUESTINFO_OFF_INTERFACEVERSION], VMMDEV_VERSION
    mov dword ptr [ecx + REPORTGUESTINFO_OFF_OSTYPE], VBOXOSTYPE_LINUX26
    sub esp, 4
    mov dword ptr [esp], vmmdev_guest_info_req
    call vmmdev_request
    add esp, 4
    ret
.endif

.align 8
vmmdev_guest_info_req:
    .space REPORTGUESTINFO_SIZE

.align 4
vmmdev_port:
    .long VMMDEV_PORT
vmmdev_mmio:
    .long 0
vmmdev_irq:
    .long VMMDEV_IRQ
vmmdev_host_features:
    .long 0
