# hgcm.s - HGCM connect, disconnect and calls (HGCMCall64 in 64-bit mode, HGCMCall32 in
# 32-bit mode), with the asynchronous-completion wait every guest driver does.
# Calling convention: see vmmdev.s.  Not reentrant: one static request per kind.
#
# hgcm_submit(req) -> eax = status                                      (internal helper)
#   OUT the request, then hgcm_await(req, header.rc).
# hgcm_await(req, rc) -> eax = status
#   If rc == VINF_HGCM_ASYNC_EXECUTE wait until fu32Flags & VBOX_HGCM_REQ_DONE (in the
#   style `hgcm_wait_mode` selects), then return `result`; a negative rc is returned as the
#   status (as Linux does); any other rc returns `result`.
# Waiting styles (u32 variable `hgcm_wait_mode`; the define HGCM_WAIT_IRQ makes 1 the
# initial value):
#   0  poll: spin with `pause` until DONE (the default; works with interrupts off).
#   1  interrupt: hgcm_wait_irq.  Needs an IDT gate for the VMMDev vector (irq.s
#      vmmdev_irq_setup) and a device that raises events (a successful ReportGuestInfo).
# hgcm_set_wait_mode(mode) -> eax = the previous mode.
# hgcm_wait_irq(req)
#   Linux-style wait: `cli`, test DONE, and if it is clear `sti; hlt` (the STI shadow lets
#   no interrupt in before the hlt, so a completion after the test wakes the hlt: no lost
#   wakeup), then test again after every wakeup.  Restores the caller's IF.  Counts sleeps
#   in the u32 `hgcm_wait_sleeps`.  Preserves every register.
# hgcm_call_start() -> eax = header.rc
#   Submit the built call (like hgcm_call) without waiting: VINF_HGCM_ASYNC_EXECUTE means
#   it is in flight (wait with hgcm_await(hgcm_call_req, rc) or cancel it).
# hgcm_cancel2(req) -> eax = status
#   What Linux's hgcm_cancel_call does: HGCMCancel2 with physReqToCancel = req (a static
#   request); on VERR_NOT_IMPLEMENTED fall back to hgcm_cancel_legacy; on success OR
#   VBOX_HGCM_REQ_CANCELLED into the request's fu32Flags.  VINF_SUCCESS: the host will not
#   touch the request again (no DONE, no event); VERR_NOT_FOUND: it already completed or
#   was never in flight (wait for DONE); VERR_INVALID_PARAMETER: req is 0 or 0xFFFFFFFF.
# hgcm_cancel_legacy(req) -> eax = status
#   The pre-Cancel2 protocol: set CANCELLED in fu32Flags, retype the request itself to
#   VMMDevReq_HGCMCancel and resubmit it; VERR_INVALID_PARAMETER becomes VERR_NOT_FOUND.
#   The request keeps the HGCMCancel type afterwards (rebuild it before reuse).
# hgcm_connect(name) -> eax = status, edx = client id (valid when eax >= 0)
#   `name` is a NUL-terminated service name (at most 127 bytes are sent).
# hgcm_disconnect(client) -> eax = status
# hgcm_call_begin(client, function, cparms)
#   Start building a call in the static request `hgcm_call_req` (0xAA-filled, flags and
#   result 0).  Page lists go to the extra area after the cparms parameters.
# hgcm_parm_u32(index, value) / hgcm_parm_u64(index, value64)
# hgcm_parm_linaddr(index, type, ptr, size)     type: VMMDevHGCMParmType_LinAddr{,_In,_Out}
# hgcm_parm_pagelist(index, flags, ptr, size)   flags: VBOX_HGCM_F_PARM_DIRECTION_*
#   Appends an HGCMPageListInfo (page-aligned page addresses) to the extra area.  The
#   addresses are the buffer's own (identity: linear = physical); a paged program sets the
#   pointer variable `hgcm_pagelist_fixup` (64: .quad, 32: .long; 0 = none) to a routine
#   called with the HGCMPageListInfo's address right after it is built, which turns them
#   into frames (paging.s: pg_translate_page_list).  The parameter type is the u32
#   variable `hgcm_pagelist_type`: VMMDevHGCMParmType_PageList (the initial value),
#   _ContiguousPageList (a buffer within one page) or _NoBouncePageList.
# hgcm_parm_buf(index, flags, ptr, size)
#   What the Linux driver sends: a PageList, or for size 0 the linear-address type of that
#   direction with size 0 and address 0.  Assembled with the define HGCM_USE_LINADDR, it
#   sends LinAddr/LinAddr_In/LinAddr_Out parameters instead of page lists.
# hgcm_parm_embedded(index, flags, ptr, size) -> eax = 0, or VERR_BUFFER_OVERFLOW (nothing
#   built) when the data does not fit the static request.  An Embedded parameter
#   (VMMDevHGCMParmType_Embedded): `size` bytes of data inside the request itself, after the
#   parameters (offData counts from the request's start, so the device finds them in its
#   copy of the physically addressed request whatever the guest's paging); with
#   VBOX_HGCM_F_PARM_DIRECTION_TO_HOST in `flags` the bytes are copied from `ptr`.
# hgcm_parm_embedded_get(index, ptr) -> eax = cbData (the bytes the host returned)
#   After the call: copy the Embedded parameter's returned cbData bytes to `ptr`.
# hgcm_call() -> eax = status
#   Set header.size to the built length and submit the call.
# hgcm_parm_get_u32(index) -> eax;  hgcm_parm_get_u64(index) -> rax (64) / edx:eax (32)
# Clobbers: 64-bit rax rcx rdx rsi rdi r8-r11; 32-bit eax ecx edx (hgcm_wait_irq: none).

.if MODE == 64
.equ HGCM_PARM_SIZE, HGCMPARAM64_SIZE
.equ HGCM_CALL_TYPE, VMMDevReq_HGCMCall64
.else
.equ HGCM_PARM_SIZE, HGCMPARAM32_SIZE
.equ HGCM_CALL_TYPE, VMMDevReq_HGCMCall32
.endif
.equ HGCM_CALL_REQ_CAPACITY, PAGE_SIZE
# An .equ, because keystone encodes `and rdx, -PAGE_SIZE` as a memory operand.
.equ HGCM_PAGE_MASK, -PAGE_SIZE

.include "vmmdev.s"

.if MODE == 64
hgcm_submit:
    call vmmdev_request
    mov esi, eax
hgcm_await:
    mov eax, esi
    cmp eax, VINF_HGCM_ASYNC_EXECUTE
    jne hgcm_submit_not_async
    cmp dword ptr [rip + hgcm_wait_mode], 0
    je hgcm_submit_wait
    call hgcm_wait_irq
    jmp hgcm_submit_result
hgcm_submit_wait:
    test dword ptr [rdi + HGCMREQUESTHEADER_OFF_FU32FLAGS], VBOX_HGCM_REQ_DONE
    jnz hgcm_submit_result
    pause
    jmp hgcm_submit_wait
hgcm_submit_not_async:
    test eax, eax
    js hgcm_submit_done
hgcm_submit_result:
    mov eax, dword ptr [rdi + HGCMREQUESTHEADER_OFF_RESULT]
hgcm_submit_done:
    ret

hgcm_wait_irq:
    pushfq
hgcm_wait_irq_check:
    cli
    test dword ptr [rdi + HGCMREQUESTHEADER_OFF_FU32FLAGS], VBOX_HGCM_REQ_DONE
    jnz hgcm_wait_irq_done
    inc dword ptr [rip + hgcm_wait_sleeps]
    sti
    hlt
    jmp hgcm_wait_irq_check
hgcm_wait_irq_done:
    popfq
    ret

hgcm_set_wait_mode:
    mov eax, dword ptr [rip + hgcm_wait_mode]
    mov dword ptr [rip + hgcm_wait_mode], edi
    ret

hgcm_call_start:
    lea rdi, [rip + hgcm_call_req]
    mov eax, dword ptr [rip + hgcm_call_extra]
    mov dword ptr [rdi + REQUESTHEADER_OFF_SIZE], eax
    jmp vmmdev_request

hgcm_cancel2:
    push rbx
    mov rbx, rdi
    lea rdi, [rip + hgcm_cancel2_req]
    mov esi, HGCMCANCEL2_SIZE
    mov edx, VMMDevReq_HGCMCancel2
    call vmmdev_req_init
    mov dword ptr [rdi + HGCMCANCEL2_OFF_PHYSREQTOCANCEL], ebx
    call vmmdev_request
    cmp eax, VERR_NOT_IMPLEMENTED
    jne hgcm_cancel2_sent
    mov rdi, rbx
    call hgcm_cancel_legacy
hgcm_cancel2_sent:
    test eax, eax
    js hgcm_cancel2_done
    or dword ptr [rbx + HGCMREQUESTHEADER_OFF_FU32FLAGS], VBOX_HGCM_REQ_CANCELLED
hgcm_cancel2_done:
    pop rbx
    ret

hgcm_cancel_legacy:
    or dword ptr [rdi + HGCMREQUESTHEADER_OFF_FU32FLAGS], VBOX_HGCM_REQ_CANCELLED
    mov dword ptr [rdi + REQUESTHEADER_OFF_REQUESTTYPE], VMMDevReq_HGCMCancel
    call vmmdev_request
    cmp eax, VERR_INVALID_PARAMETER
    jne hgcm_cancel_legacy_done
    mov eax, VERR_NOT_FOUND
hgcm_cancel_legacy_done:
    ret

hgcm_connect:
    push rbx
    mov rbx, rdi
    lea rdi, [rip + hgcm_connect_req]
    mov esi, HGCMCONNECT_SIZE
    mov edx, VMMDevReq_HGCMConnect
    call vmmdev_req_init
    mov dword ptr [rdi + HGCMCONNECT_OFF_FU32FLAGS], 0
    mov dword ptr [rdi + HGCMCONNECT_OFF_LOC_TYPE], VMMDevHGCMLoc_LocalHost_Existing
    xor ecx, ecx
hgcm_connect_copy:
    mov al, byte ptr [rbx + rcx]
    cmp ecx, HGCM_SERVICE_NAME_SIZE - 1
    jb hgcm_connect_store
    xor eax, eax
hgcm_connect_store:
    mov byte ptr [rdi + rcx + HGCMCONNECT_OFF_LOC_ACHNAME], al
    inc ecx
    test al, al
    jnz hgcm_connect_copy
    call hgcm_submit
    mov edx, dword ptr [rdi + HGCMCONNECT_OFF_U32CLIENTID]
    pop rbx
    ret

hgcm_disconnect:
    push rbx
    mov ebx, edi
    lea rdi, [rip + hgcm_disconnect_req]
    mov esi, HGCMDISCONNECT_SIZE
    mov edx, VMMDevReq_HGCMDisconnect
    call vmmdev_req_init
    mov dword ptr [rdi + HGCMDISCONNECT_OFF_FU32FLAGS], 0
    mov dword ptr [rdi + HGCMDISCONNECT_OFF_U32CLIENTID], ebx
    call hgcm_submit
    pop rbx
    ret

# Stores are what guest code costs most under Unicorn (tens of ns each, several times that
# for an 8-byte store that is not 8-aligned), so the request is built with as few as the
# layout allows: neighbouring u32 fields that share an 8-aligned quadword (the request is
# 16-aligned) go out in one store.  vmmdev_req_init leaves r9-r11 alone.
hgcm_call_begin:
    mov r9d, edi
    mov r10d, esi
    mov r11d, edx
    lea rdi, [rip + hgcm_call_req]
    imul esi, r11d, HGCM_PARM_SIZE
    add esi, HGCMCALL_SIZE
    mov edx, HGCM_CALL_TYPE
    call vmmdev_req_init
    mov dword ptr [rip + hgcm_call_extra], esi
    mov qword ptr [rdi + HGCMCALL_OFF_FU32FLAGS], 0  # fu32Flags and result
    shl r10, 32
    or r10, r9
    mov qword ptr [rdi + HGCMCALL_OFF_U32CLIENTID], r10  # u32ClientID and u32Function
    mov dword ptr [rdi + HGCMCALL_OFF_CPARMS], r11d
    ret

# rax = address of parameter edi (internal; clobbers rax, rcx)
hgcm_parm_addr:
    imul eax, edi, HGCM_PARM_SIZE
    lea rcx, [rip + hgcm_call_req]
    lea rax, [rcx + rax + HGCM_CALL_OFF_PARMS]
    ret

# A parameter starts at 4 mod 8 (44 + 16 x index), so its value or size (offset 4) is
# 8-aligned and its 8-byte address (offset 8) is not: the size and the address's low half
# go out in one aligned store.
hgcm_parm_u32:
    call hgcm_parm_addr
    mov dword ptr [rax + HGCM_PARM_OFF_TYPE], VMMDevHGCMParmType_Bit32
    mov esi, esi
    mov qword ptr [rax + HGCM_PARM_OFF_VALUE], rsi  # the value, zero-extended
    ret

hgcm_parm_u64:
    call hgcm_parm_addr
    mov dword ptr [rax + HGCM_PARM_OFF_TYPE], VMMDevHGCMParmType_Bit64
    mov qword ptr [rax + HGCM_PARM_OFF_VALUE], rsi
    ret

hgcm_parm_linaddr:
    push rcx
    call hgcm_parm_addr
    pop rcx
    mov dword ptr [rax + HGCM_PARM_OFF_TYPE], esi
    mov r8, rdx
    shl r8, 32
    mov ecx, ecx
    or r8, rcx
    mov qword ptr [rax + HGCM_PARM_OFF_SIZE], r8  # size and the address's low half
    shr rdx, 32
    mov dword ptr [rax + HGCM_PARM_OFF_ADDR + 4], edx
    ret

hgcm_parm_pagelist:
    mov r8d, ecx
    call hgcm_parm_addr
    mov ecx, dword ptr [rip + hgcm_pagelist_type]
    mov dword ptr [rax + HGCM_PARM_OFF_TYPE], ecx
    mov ecx, dword ptr [rip + hgcm_call_extra]
    mov r11, rcx
    shl r11, 32
    or r11, r8
    mov qword ptr [rax + HGCM_PARM_OFF_SIZE], r11  # size and offset (its high half is 0)
    mov dword ptr [rax + HGCM_PARM_OFF_ADDR + 4], 0
    lea r9, [rip + hgcm_call_req]
    add r9, rcx
    mov r10, r9
    mov dword ptr [r9 + HGCMPAGELISTINFO_OFF_FLAGS], esi
    mov eax, edx
    and eax, PAGE_SIZE - 1
    mov word ptr [r9 + HGCMPAGELISTINFO_OFF_OFFFIRSTPAGE], ax
    lea eax, [eax + r8d + PAGE_SIZE - 1]
    shr eax, 12
    mov word ptr [r9 + HGCMPAGELISTINFO_OFF_CPAGES], ax
    lea ecx, [ecx + eax * 8 + HGCMPAGELISTINFO_SIZE]
    mov dword ptr [rip + hgcm_call_extra], ecx
    and rdx, HGCM_PAGE_MASK
    lea r9, [r9 + HGCMPAGELISTINFO_SIZE]
    test eax, eax
    jz hgcm_parm_pagelist_done
    mov dword ptr [r9], edx
    dec eax
    jz hgcm_parm_pagelist_last
hgcm_parm_pagelist_page:
    mov rcx, rdx
    shr rcx, 32
    add rdx, PAGE_SIZE
    mov r11, rdx
    shl r11, 32
    or rcx, r11
    mov qword ptr [r9 + 4], rcx
    add r9, 8
    dec eax
    jnz hgcm_parm_pagelist_page
hgcm_parm_pagelist_last:
    shr rdx, 32
    mov dword ptr [r9 + 4], edx
hgcm_parm_pagelist_done:
    mov rax, qword ptr [rip + hgcm_pagelist_fixup]
    test rax, rax
    jz hgcm_parm_pagelist_fixed
    mov rdi, r10
    jmp rax
hgcm_parm_pagelist_fixed:
    ret

hgcm_parm_buf:
    test ecx, ecx
    jz hgcm_parm_buf_empty
.ifdef HGCM_USE_LINADDR
    and esi, VBOX_HGCM_F_PARM_DIRECTION_MASK
    lea rax, [rip + hgcm_linaddr_types]
    movzx esi, byte ptr [rax + rsi]
    jmp hgcm_parm_linaddr
.else
    jmp hgcm_parm_pagelist
.endif
hgcm_parm_buf_empty:
    and esi, VBOX_HGCM_F_PARM_DIRECTION_MASK
    lea rax, [rip + hgcm_linaddr_types]
    movzx esi, byte ptr [rax + rsi]
    xor edx, edx
    jmp hgcm_parm_linaddr

hgcm_parm_embedded:
    mov r8d, ecx
    mov r9d, dword ptr [rip + hgcm_call_extra]
    lea eax, [r9d + r8d]
    cmp eax, HGCM_CALL_REQ_CAPACITY
    ja hgcm_parm_embedded_overflow
    mov dword ptr [rip + hgcm_call_extra], eax
    mov r10, rdx
    call hgcm_parm_addr
    mov dword ptr [rax + HGCM_PARM_OFF_TYPE], VMMDevHGCMParmType_Embedded
    mov ecx, r9d
    shl ecx, 8
    or ecx, esi
    mov dword ptr [rax + HGCM_PARM_OFF_SIZE], ecx  # u0: fFlags (8 bits) | offData << 8
    mov dword ptr [rax + HGCMPARAMEMBEDDED_OFF_CBDATA], r8d
    test esi, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST
    jz hgcm_parm_embedded_done
    lea rdi, [rip + hgcm_call_req]
    add rdi, r9
    mov rsi, r10
    mov ecx, r8d
    rep movsb
hgcm_parm_embedded_done:
    xor eax, eax
    ret

hgcm_parm_embedded_get:
    mov r8, rsi
    call hgcm_parm_addr
    mov ecx, dword ptr [rax + HGCMPARAMEMBEDDED_OFF_CBDATA]
    mov esi, dword ptr [rax + HGCM_PARM_OFF_SIZE]  # u0: fFlags (8 bits) | offData << 8
    shr esi, 8
    lea rdx, [rip + hgcm_call_req]
    add rsi, rdx
    mov rdi, r8
    mov eax, ecx
    rep movsb
    ret

hgcm_call:
    lea rdi, [rip + hgcm_call_req]
    mov eax, dword ptr [rip + hgcm_call_extra]
    mov dword ptr [rdi + REQUESTHEADER_OFF_SIZE], eax
    jmp hgcm_submit

hgcm_parm_get_u32:
    call hgcm_parm_addr
    mov eax, dword ptr [rax + HGCM_PARM_OFF_VALUE]
    ret

hgcm_parm_get_u64:
    call hgcm_parm_addr
    mov rax, qword ptr [rax + HGCM_PARM_OFF_VALUE]
    ret
.else
hgcm_submit:
    mov ecx, dword ptr [esp + 4]
    push ecx
    call vmmdev_request
    pop ecx
    push eax
    push ecx
    call hgcm_await
    add esp, 8
    ret

hgcm_await:
    push ebx
    mov ebx, dword ptr [esp + 8]
    mov eax, dword ptr [esp + 12]
    cmp eax, VINF_HGCM_ASYNC_EXECUTE
    jne hgcm_submit_not_async
    cmp dword ptr [hgcm_wait_mode], 0
    je hgcm_submit_wait
    push ebx
    call hgcm_wait_irq
    add esp, 4
    jmp hgcm_submit_result
hgcm_submit_wait:
    test dword ptr [ebx + HGCMREQUESTHEADER_OFF_FU32FLAGS], VBOX_HGCM_REQ_DONE
    jnz hgcm_submit_result
    pause
    jmp hgcm_submit_wait
hgcm_submit_not_async:
    test eax, eax
    js hgcm_submit_done
hgcm_submit_result:
    mov eax, dword ptr [ebx + HGCMREQUESTHEADER_OFF_RESULT]
hgcm_submit_done:
    pop ebx
    ret

hgcm_wait_irq:
    pushfd
    push eax
    mov eax, dword ptr [esp + 12]
hgcm_wait_irq_check:
    cli
    test dword ptr [eax + HGCMREQUESTHEADER_OFF_FU32FLAGS], VBOX_HGCM_REQ_DONE
    jnz hgcm_wait_irq_done
    inc dword ptr [hgcm_wait_sleeps]
    sti
    hlt
    jmp hgcm_wait_irq_check
hgcm_wait_irq_done:
    pop eax
    popfd
    ret

hgcm_set_wait_mode:
    mov ecx, dword ptr [esp + 4]
    mov eax, dword ptr [hgcm_wait_mode]
    mov dword ptr [hgcm_wait_mode], ecx
    ret

hgcm_call_start:
    mov eax, dword ptr [hgcm_call_extra]
    mov ecx, hgcm_call_req
    mov dword ptr [ecx + REQUESTHEADER_OFF_SIZE], eax
    push ecx
    call vmmdev_request
    add esp, 4
    ret

hgcm_cancel2:
    push ebx
    mov ebx, dword ptr [esp + 8]
    sub esp, 12
    mov dword ptr [esp], hgcm_cancel2_req
    mov dword ptr [esp + 4], HGCMCANCEL2_SIZE
    mov dword ptr [esp + 8], VMMDevReq_HGCMCancel2
    call vmmdev_req_init
    mov ecx, hgcm_cancel2_req
    mov dword ptr [ecx + HGCMCANCEL2_OFF_PHYSREQTOCANCEL], ebx
    call vmmdev_request
    add esp, 12
    cmp eax, VERR_NOT_IMPLEMENTED
    jne hgcm_cancel2_sent
    push ebx
    call hgcm_cancel_legacy
    add esp, 4
hgcm_cancel2_sent:
    test eax, eax
    js hgcm_cancel2_done
    or dword ptr [ebx + HGCMREQUESTHEADER_OFF_FU32FLAGS], VBOX_HGCM_REQ_CANCELLED
hgcm_cancel2_done:
    pop ebx
    ret

hgcm_cancel_legacy:
    mov ecx, dword ptr [esp + 4]
    or dword ptr [ecx + HGCMREQUESTHEADER_OFF_FU32FLAGS], VBOX_HGCM_REQ_CANCELLED
    mov dword ptr [ecx + REQUESTHEADER_OFF_REQUESTTYPE], VMMDevReq_HGCMCancel
    push ecx
    call vmmdev_request
    add esp, 4
    cmp eax, VERR_INVALID_PARAMETER
    jne hgcm_cancel_legacy_done
    mov eax, VERR_NOT_FOUND
hgcm_cancel_legacy_done:
    ret

hgcm_connect:
    push esi
    push edi
    sub esp, 12
    mov dword ptr [esp], hgcm_connect_req
    mov dword ptr [esp + 4], HGCMCONNECT_SIZE
    mov dword ptr [esp + 8], VMMDevReq_HGCMConnect
    call vmmdev_req_init
    add esp, 12
    mov edi, hgcm_connect_req
    mov esi, dword ptr [esp + 12]
    mov dword ptr [edi + HGCMCONNECT_OFF_FU32FLAGS], 0
    mov dword ptr [edi + HGCMCONNECT_OFF_LOC_TYPE], VMMDevHGCMLoc_LocalHost_Existing
    xor ecx, ecx
hgcm_connect_copy:
    mov al, byte ptr [esi + ecx]
    cmp ecx, HGCM_SERVICE_NAME_SIZE - 1
    jb hgcm_connect_store
    xor eax, eax
hgcm_connect_store:
    mov byte ptr [edi + ecx + HGCMCONNECT_OFF_LOC_ACHNAME], al
    inc ecx
    test al, al
    jnz hgcm_connect_copy
    push edi
    call hgcm_submit
    add esp, 4
    mov edx, dword ptr [edi + HGCMCONNECT_OFF_U32CLIENTID]
    pop edi
    pop esi
    ret

hgcm_disconnect:
    sub esp, 12
    mov dword ptr [esp], hgcm_disconnect_req
    mov dword ptr [esp + 4], HGCMDISCONNECT_SIZE
    mov dword ptr [esp + 8], VMMDevReq_HGCMDisconnect
    call vmmdev_req_init
    add esp, 12
    mov ecx, dword ptr [esp + 4]
    mov edx, hgcm_disconnect_req
    mov dword ptr [edx + HGCMDISCONNECT_OFF_FU32FLAGS], 0
    mov dword ptr [edx + HGCMDISCONNECT_OFF_U32CLIENTID], ecx
    sub esp, 4
    mov dword ptr [esp], hgcm_disconnect_req
    call hgcm_submit
    add esp, 4
    ret

hgcm_call_begin:
    mov eax, dword ptr [esp + 12]
    imul eax, eax, HGCM_PARM_SIZE
    add eax, HGCMCALL_SIZE
    mov dword ptr [hgcm_call_extra], eax
    sub esp, 12
    mov dword ptr [esp], hgcm_call_req
    mov dword ptr [esp + 4], eax
    mov dword ptr [esp + 8], HGCM_CALL_TYPE
    call vmmdev_req_init
    add esp, 12
    mov edx, hgcm_call_req
    mov dword ptr [edx + HGCMCALL_OFF_FU32FLAGS], 0
    mov dword ptr [edx + HGCMCALL_OFF_RESULT], 0
    mov eax, dword ptr [esp + 4]
    mov dword ptr [edx + HGCMCALL_OFF_U32CLIENTID], eax
    mov eax, dword ptr [esp + 8]
    mov dword ptr [edx + HGCMCALL_OFF_U32FUNCTION], eax
    mov eax, dword ptr [esp + 12]
    mov dword ptr [edx + HGCMCALL_OFF_CPARMS], eax
    ret

# eax = address of the parameter whose index is at [esp + 8] of the caller (internal)
hgcm_parm_addr:
    mov eax, dword ptr [esp + 8]
    imul eax, eax, HGCM_PARM_SIZE
    add eax, HGCM_CALL_OFF_PARMS
    add eax, hgcm_call_req
    ret

hgcm_parm_u32:
    call hgcm_parm_addr
    mov dword ptr [eax + HGCM_PARM_OFF_TYPE], VMMDevHGCMParmType_Bit32
    mov ecx, dword ptr [esp + 8]
    mov dword ptr [eax + HGCM_PARM_OFF_VALUE], ecx
    mov dword ptr [eax + HGCM_PARM_OFF_VALUE + 4], 0
    ret

hgcm_parm_u64:
    call hgcm_parm_addr
    mov dword ptr [eax + HGCM_PARM_OFF_TYPE], VMMDevHGCMParmType_Bit64
    mov ecx, dword ptr [esp + 8]
    mov dword ptr [eax + HGCM_PARM_OFF_VALUE], ecx
    mov ecx, dword ptr [esp + 12]
    mov dword ptr [eax + HGCM_PARM_OFF_VALUE + 4], ecx
    ret

hgcm_parm_linaddr:
    call hgcm_parm_addr
    mov ecx, dword ptr [esp + 8]
    mov dword ptr [eax + HGCM_PARM_OFF_TYPE], ecx
    mov ecx, dword ptr [esp + 16]
    mov dword ptr [eax + HGCM_PARM_OFF_SIZE], ecx
    mov ecx, dword ptr [esp + 12]
    mov dword ptr [eax + HGCM_PARM_OFF_ADDR], ecx
    ret

hgcm_parm_pagelist:
    call hgcm_parm_addr
    push ebx
    push esi
    push edi
    mov ecx, dword ptr [hgcm_pagelist_type]
    mov dword ptr [eax + HGCM_PARM_OFF_TYPE], ecx
    mov ecx, dword ptr [esp + 28]
    mov dword ptr [eax + HGCM_PARM_OFF_SIZE], ecx
    mov esi, dword ptr [hgcm_call_extra]
    mov dword ptr [eax + HGCM_PARM_OFF_ADDR], esi
    mov ebx, hgcm_call_req
    add ebx, esi
    mov eax, dword ptr [esp + 20]
    mov dword ptr [ebx + HGCMPAGELISTINFO_OFF_FLAGS], eax
    mov edx, dword ptr [esp + 24]
    mov eax, edx
    and eax, PAGE_SIZE - 1
    mov word ptr [ebx + HGCMPAGELISTINFO_OFF_OFFFIRSTPAGE], ax
    lea eax, [eax + ecx + PAGE_SIZE - 1]
    shr eax, 12
    mov word ptr [ebx + HGCMPAGELISTINFO_OFF_CPAGES], ax
    lea esi, [esi + eax * 8 + HGCMPAGELISTINFO_SIZE]
    mov dword ptr [hgcm_call_extra], esi
    and edx, HGCM_PAGE_MASK
    lea edi, [ebx + HGCMPAGELISTINFO_SIZE]
    test eax, eax
    jz hgcm_parm_pagelist_done
hgcm_parm_pagelist_page:
    mov dword ptr [edi], edx
    mov dword ptr [edi + 4], 0
    add edx, PAGE_SIZE
    add edi, 8
    dec eax
    jnz hgcm_parm_pagelist_page
hgcm_parm_pagelist_done:
    mov eax, dword ptr [hgcm_pagelist_fixup]
    test eax, eax
    jz hgcm_parm_pagelist_fixed
    push ebx
    call eax
    add esp, 4
hgcm_parm_pagelist_fixed:
    pop edi
    pop esi
    pop ebx
    ret

hgcm_parm_buf:
    mov eax, dword ptr [esp + 8]
    and eax, VBOX_HGCM_F_PARM_DIRECTION_MASK
    mov ecx, hgcm_linaddr_types
    movzx eax, byte ptr [ecx + eax]
    cmp dword ptr [esp + 16], 0
    jne hgcm_parm_buf_data
    mov dword ptr [esp + 12], 0
    mov dword ptr [esp + 8], eax
    jmp hgcm_parm_linaddr
hgcm_parm_buf_data:
.ifdef HGCM_USE_LINADDR
    mov dword ptr [esp + 8], eax
    jmp hgcm_parm_linaddr
.else
    jmp hgcm_parm_pagelist
.endif

hgcm_parm_embedded:
    mov eax, dword ptr [esp + 16]
    add eax, dword ptr [hgcm_call_extra]
    cmp eax, HGCM_CALL_REQ_CAPACITY
    ja hgcm_parm_embedded_overflow
    call hgcm_parm_addr
    push esi
    push edi
    mov dword ptr [eax + HGCM_PARM_OFF_TYPE], VMMDevHGCMParmType_Embedded
    mov edi, dword ptr [hgcm_call_extra]
    mov ecx, edi
    shl ecx, 8
    or ecx, dword ptr [esp + 16]
    mov dword ptr [eax + HGCM_PARM_OFF_SIZE], ecx  # u0: fFlags (8 bits) | offData << 8
    mov ecx, dword ptr [esp + 24]
    mov dword ptr [eax + HGCMPARAMEMBEDDED_OFF_CBDATA], ecx
    add dword ptr [hgcm_call_extra], ecx
    test dword ptr [esp + 16], VBOX_HGCM_F_PARM_DIRECTION_TO_HOST
    jz hgcm_parm_embedded_done
    add edi, hgcm_call_req
    mov esi, dword ptr [esp + 20]
    rep movsb
hgcm_parm_embedded_done:
    pop edi
    pop esi
    xor eax, eax
    ret

hgcm_parm_embedded_get:
    call hgcm_parm_addr
    push esi
    push edi
    mov ecx, dword ptr [eax + HGCMPARAMEMBEDDED_OFF_CBDATA]
    mov esi, dword ptr [eax + HGCM_PARM_OFF_SIZE]  # u0: fFlags (8 bits) | offData << 8
    shr esi, 8
    add esi, hgcm_call_req
    mov edi, dword ptr [esp + 16]
    mov eax, ecx
    rep movsb
    pop edi
    pop esi
    ret

hgcm_call:
    mov eax, dword ptr [hgcm_call_extra]
    mov ecx, hgcm_call_req
    mov dword ptr [ecx + REQUESTHEADER_OFF_SIZE], eax
    sub esp, 4
    mov dword ptr [esp], hgcm_call_req
    call hgcm_submit
    add esp, 4
    ret

hgcm_parm_get_u32:
    call hgcm_parm_addr
    mov eax, dword ptr [eax + HGCM_PARM_OFF_VALUE]
    ret

hgcm_parm_get_u64:
    call hgcm_parm_addr
    mov edx, dword ptr [eax + HGCM_PARM_OFF_VALUE + 4]
    mov eax, dword ptr [eax + HGCM_PARM_OFF_VALUE]
    ret
.endif

hgcm_parm_embedded_overflow:
    mov eax, VERR_BUFFER_OVERFLOW
    ret

# Linear-address parameter type for each direction value 0..3 (0 unused).
hgcm_linaddr_types:
    .byte VMMDevHGCMParmType_LinAddr, VMMDevHGCMParmType_LinAddr_In
    .byte VMMDevHGCMParmType_LinAddr_Out, VMMDevHGCMParmType_LinAddr
.align 8
hgcm_pagelist_fixup:
.if MODE == 64
    .quad 0
.else
    .long 0
.endif
hgcm_call_extra:
    .long 0
hgcm_pagelist_type:
    .long VMMDevHGCMParmType_PageList
hgcm_wait_mode:
.ifdef HGCM_WAIT_IRQ
    .long 1
.else
    .long 0
.endif
hgcm_wait_sleeps:
    .long 0
.align 8
hgcm_cancel2_req:
    .space HGCMCANCEL2_SIZE
.align 8
hgcm_connect_req:
    .space HGCMCONNECT_SIZE
.align 8
hgcm_disconnect_req:
    .space HGCMDISCONNECT_SIZE
# A page of its own: a guest store to a page that also holds code takes Unicorn's slow
# path (it may modify code: machine/cpu.py, _install_fast_stores), and building a request
# is hundreds of stores (the 0xAA fill, a page list's entries).
.align PAGE_SIZE
hgcm_call_req:
    .space HGCM_CALL_REQ_CAPACITY
