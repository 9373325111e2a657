# sf.s - Shared Folders calls, mirroring Linux fs/vboxsf/vboxsf_wrappers.c.
# Calling convention: see vmmdev.s (handles and offsets are 64-bit arguments: one register
# in 64-bit mode, two stack slots low dword first in 32-bit mode).  Every routine returns
# eax = status (VINF_/VERR_ value: the HGCM result, or a negative header.rc).
# Buffers go out through hgcm_parm_buf (page lists like Linux, or LinAddr parameters when
# assembled with the define HGCM_USE_LINADDR).  Clobbers: the caller-saved registers.
#
# sf_set_utf8(client)
# sf_map_folder(client, name_shflstring) -> eax status, edx root   ('/' delimiter,
#                                            case-sensitive, like Linux)
# sf_unmap_folder(client, root)
# sf_create(client, root, path_shflstring, create_parms)
# sf_close(client, root, handle64)
# sf_read(client, root, handle64, offset64, pcb, buf)   *pcb in: bytes wanted, out: read
# sf_write(client, root, handle64, offset64, pcb, buf)  *pcb in: bytes to write, out: written
# sf_flush(client, root, handle64)
# sf_query_mappings(client, flags, pcount, mappings)    *pcount in: capacity, out: total
# sf_query_map_name(client, root, name_shflstring)      name: an output SHFLSTRING buffer

.include "hgcm.s"
.include "shflstring.s"
.include "ccall.s"

.if MODE == 64
.macro sf_prologue
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rbp
    sub rsp, 8
.endm
.macro sf_epilogue
    add rsp, 8
    pop rbp
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    ret
.endm

sf_set_utf8:
    mov esi, SHFL_FN_SET_UTF8
    mov edx, SHFL_CPARMS_SET_UTF8
    call hgcm_call_begin
    jmp hgcm_call

sf_map_folder:
    sf_prologue
    mov rbx, rsi
    mov esi, SHFL_FN_MAP_FOLDER
    mov edx, SHFL_CPARMS_MAP_FOLDER
    call hgcm_call_begin
    mov rdi, rbx
    call shfl_string_total
    mov ecx, eax
    mov rdx, rbx
    mov esi, VBOX_HGCM_F_PARM_DIRECTION_BOTH
    mov edi, 0
    call hgcm_parm_buf
    ccall2 hgcm_parm_u32, 1, 0
    ccall2 hgcm_parm_u32, 2, '/'
    ccall2 hgcm_parm_u32, 3, 1
    call hgcm_call
    mov ebx, eax
    ccall1 hgcm_parm_get_u32, 1
    mov edx, eax
    mov eax, ebx
    sf_epilogue

sf_unmap_folder:
    sf_prologue
    mov ebx, esi
    mov esi, SHFL_FN_UNMAP_FOLDER
    mov edx, SHFL_CPARMS_UNMAP_FOLDER
    call hgcm_call_begin
    ccall2 hgcm_parm_u32, 0, rbx
    call hgcm_call
    sf_epilogue

sf_create:
    sf_prologue
    mov ebx, esi
    mov r12, rdx
    mov r13, rcx
    mov esi, SHFL_FN_CREATE
    mov edx, SHFL_CPARMS_CREATE
    call hgcm_call_begin
    ccall2 hgcm_parm_u32, 0, rbx
    mov rdi, r12
    call shfl_string_total
    mov ecx, eax
    ccall3 hgcm_parm_buf, 1, VBOX_HGCM_F_PARM_DIRECTION_BOTH, r12
    mov ecx, SHFLCREATEPARMS_SIZE
    ccall3 hgcm_parm_buf, 2, VBOX_HGCM_F_PARM_DIRECTION_BOTH, r13
    call hgcm_call
    sf_epilogue

# sf_handle_call(client=edi, function=esi, cparms=edx, root=ecx, handle=r8): begin a call
# whose first two parameters are root and handle (internal; keeps rbx r12..r15).
sf_handle_begin:
    push rbx
    push r12
    sub rsp, 8
    mov ebx, ecx
    mov r12, r8
    call hgcm_call_begin
    ccall2 hgcm_parm_u32, 0, rbx
    ccall2 hgcm_parm_u64, 1, r12
    add rsp, 8
    pop r12
    pop rbx
    ret

sf_close:
    sf_prologue
    mov ecx, esi
    mov r8, rdx
    mov esi, SHFL_FN_CLOSE
    mov edx, SHFL_CPARMS_CLOSE
    call sf_handle_begin
    call hgcm_call
    sf_epilogue

sf_flush:
    sf_prologue
    mov ecx, esi
    mov r8, rdx
    mov esi, SHFL_FN_FLUSH
    mov edx, SHFL_CPARMS_FLUSH
    call sf_handle_begin
    call hgcm_call
    sf_epilogue

sf_read:
    sf_prologue
    mov ebp, SHFL_FN_READ
    mov r15d, VBOX_HGCM_F_PARM_DIRECTION_FROM_HOST
    jmp sf_rw
sf_write:
    sf_prologue
    mov ebp, SHFL_FN_WRITE
    mov r15d, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST
sf_rw:
    mov r12, rcx
    mov r13, r8
    mov r14, r9
    mov ecx, esi
    mov r8, rdx
    mov esi, ebp
    mov edx, SHFL_CPARMS_READ
    call sf_handle_begin
    ccall2 hgcm_parm_u64, 2, r12
    mov esi, dword ptr [r13]
    ccall1 hgcm_parm_u32, 3
    mov ecx, dword ptr [r13]
    ccall3 hgcm_parm_buf, 4, r15, r14
    call hgcm_call
    mov ebx, eax
    ccall1 hgcm_parm_get_u32, 3
    mov dword ptr [r13], eax
    mov eax, ebx
    sf_epilogue

sf_query_mappings:
    sf_prologue
    mov ebx, esi
    mov r12, rdx
    mov r13, rcx
    mov esi, SHFL_FN_QUERY_MAPPINGS
    mov edx, SHFL_CPARMS_QUERY_MAPPINGS
    call hgcm_call_begin
    ccall2 hgcm_parm_u32, 0, rbx
    mov esi, dword ptr [r12]
    ccall1 hgcm_parm_u32, 1
    mov ecx, dword ptr [r12]
    shl ecx, 3
    ccall3 hgcm_parm_buf, 2, VBOX_HGCM_F_PARM_DIRECTION_FROM_HOST, r13
    call hgcm_call
    mov ebx, eax
    ccall1 hgcm_parm_get_u32, 1
    mov dword ptr [r12], eax
    mov eax, ebx
    sf_epilogue

sf_query_map_name:
    sf_prologue
    mov ebx, esi
    mov r12, rdx
    mov esi, SHFL_FN_QUERY_MAP_NAME
    mov edx, SHFL_CPARMS_QUERY_MAP_NAME
    call hgcm_call_begin
    ccall2 hgcm_parm_u32, 0, rbx
    mov rdi, r12
    call shfl_string_total
    mov ecx, eax
    ccall3 hgcm_parm_buf, 1, VBOX_HGCM_F_PARM_DIRECTION_BOTH, r12
    call hgcm_call
    sf_epilogue
.else
# 32-bit: ebp frame; argument n (0-based, in 4-byte slots) is at [ebp+8+4*n].
.macro sf_prologue
    push ebp
    mov ebp, esp
    push ebx
    push esi
    push edi
.endm
.macro sf_epilogue
    pop edi
    pop esi
    pop ebx
    pop ebp
    ret
.endm

sf_set_utf8:
    sf_prologue
    ccall3 hgcm_call_begin, [ebp+8], SHFL_FN_SET_UTF8, SHFL_CPARMS_SET_UTF8
    call hgcm_call
    sf_epilogue

sf_map_folder:
    sf_prologue
    ccall3 hgcm_call_begin, [ebp+8], SHFL_FN_MAP_FOLDER, SHFL_CPARMS_MAP_FOLDER
    ccall1 shfl_string_total, [ebp+12]
    mov ebx, eax
    ccall4 hgcm_parm_buf, 0, VBOX_HGCM_F_PARM_DIRECTION_BOTH, [ebp+12], ebx
    ccall2 hgcm_parm_u32, 1, 0
    ccall2 hgcm_parm_u32, 2, '/'
    ccall2 hgcm_parm_u32, 3, 1
    call hgcm_call
    mov ebx, eax
    ccall1 hgcm_parm_get_u32, 1
    mov edx, eax
    mov eax, ebx
    sf_epilogue

sf_unmap_folder:
    sf_prologue
    ccall3 hgcm_call_begin, [ebp+8], SHFL_FN_UNMAP_FOLDER, SHFL_CPARMS_UNMAP_FOLDER
    ccall2 hgcm_parm_u32, 0, [ebp+12]
    call hgcm_call
    sf_epilogue

sf_create:
    sf_prologue
    ccall3 hgcm_call_begin, [ebp+8], SHFL_FN_CREATE, SHFL_CPARMS_CREATE
    ccall2 hgcm_parm_u32, 0, [ebp+12]
    ccall1 shfl_string_total, [ebp+16]
    mov ebx, eax
    ccall4 hgcm_parm_buf, 1, VBOX_HGCM_F_PARM_DIRECTION_BOTH, [ebp+16], ebx
    ccall4 hgcm_parm_buf, 2, VBOX_HGCM_F_PARM_DIRECTION_BOTH, [ebp+20], SHFLCREATEPARMS_SIZE
    call hgcm_call
    sf_epilogue

# Begin a call whose parameters 0 and 1 are root and handle, from an sf_* frame whose
# args are (client, root, handle_lo, handle_hi, ...): esi = function, edi = cparms.
.macro sf_handle_begin
    ccall3 hgcm_call_begin, [ebp+8], esi, edi
    ccall2 hgcm_parm_u32, 0, [ebp+12]
    ccall3 hgcm_parm_u64, 1, [ebp+16], [ebp+20]
.endm

sf_close:
    sf_prologue
    mov esi, SHFL_FN_CLOSE
    mov edi, SHFL_CPARMS_CLOSE
    sf_handle_begin
    call hgcm_call
    sf_epilogue

sf_flush:
    sf_prologue
    mov esi, SHFL_FN_FLUSH
    mov edi, SHFL_CPARMS_FLUSH
    sf_handle_begin
    call hgcm_call
    sf_epilogue

sf_read:
    sf_prologue
    mov esi, SHFL_FN_READ
    mov ebx, VBOX_HGCM_F_PARM_DIRECTION_FROM_HOST
    jmp sf_rw
sf_write:
    sf_prologue
    mov esi, SHFL_FN_WRITE
    mov ebx, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST
sf_rw:
    mov edi, SHFL_CPARMS_READ
    sf_handle_begin
    ccall3 hgcm_parm_u64, 2, [ebp+24], [ebp+28]
    mov ecx, [ebp+32]
    mov esi, [ecx]
    ccall2 hgcm_parm_u32, 3, esi
    ccall4 hgcm_parm_buf, 4, ebx, [ebp+36], esi
    call hgcm_call
    mov ebx, eax
    ccall1 hgcm_parm_get_u32, 3
    mov ecx, [ebp+32]
    mov [ecx], eax
    mov eax, ebx
    sf_epilogue

sf_query_mappings:
    sf_prologue
    ccall3 hgcm_call_begin, [ebp+8], SHFL_FN_QUERY_MAPPINGS, SHFL_CPARMS_QUERY_MAPPINGS
    ccall2 hgcm_parm_u32, 0, [ebp+12]
    mov ecx, [ebp+16]
    mov esi, [ecx]
    ccall2 hgcm_parm_u32, 1, esi
    shl esi, 3
    ccall4 hgcm_parm_buf, 2, VBOX_HGCM_F_PARM_DIRECTION_FROM_HOST, [ebp+20], esi
    call hgcm_call
    mov ebx, eax
    ccall1 hgcm_parm_get_u32, 1
    mov ecx, [ebp+16]
    mov [ecx], eax
    mov eax, ebx
    sf_epilogue

sf_query_map_name:
    sf_prologue
    ccall3 hgcm_call_begin, [ebp+8], SHFL_FN_QUERY_MAP_NAME, SHFL_CPARMS_QUERY_MAP_NAME
    ccall2 hgcm_parm_u32, 0, [ebp+12]
    ccall1 shfl_string_total, [ebp+16]
    mov ebx, eax
    ccall4 hgcm_parm_buf, 1, VBOX_HGCM_F_PARM_DIRECTION_BOTH, [ebp+16], ebx
    call hgcm_call
    sf_epilogue
.endif
