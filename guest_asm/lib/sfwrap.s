# sfwrap.s - macros that build the Shared Folders wrappers of sf_file.s, sf_path.s,
# sf_dir.s and sf_client.s once for both modes (internal to lib/; programs use the wrappers).
#
# A wrapper declares where each argument lives with `sfw_arg NAME, i64, s32`: i64 is the
# argument's index in the 64-bit System V order, s32 its first 4-byte cdecl stack slot in
# 32-bit mode (a 64-bit argument takes two slots).  NAME becomes the offset of the argument
# from the frame pointer that `sfw_enter` sets up (rbp / ebp), so the same macro body reads
# it in both modes.  Argument 0 is always the HGCM client id, argument 1 the root,
# argument 2 the handle of handle-based calls (SFW_CLIENT, SFW_ROOT, SFW_HANDLE).
#
# sfw_enter / sfw_return       frame; sfw_return returns eax = the status saved by sfw_call
# sfw_begin fn, cparms         hgcm_call_begin(client, fn, cparms)
# sfw_u32 idx, ARG             parameter idx = 32-bit argument ARG
# sfw_u32i idx, value          parameter idx = immediate value
# sfw_u32p idx, ARG            parameter idx = the u32 that pointer argument ARG points to
# sfw_u64 idx, ARG             parameter idx = 64-bit argument ARG
# sfw_u64p idx, ARG            parameter idx = the u64 that pointer argument ARG points to
# sfw_u64_zero idx             parameter idx = 64-bit 0
# sfw_root_handle              parameters 0 and 1 = root and handle (SFW_ROOT, SFW_HANDLE)
# sfw_size_imm v / sfw_size_u32 ARG / sfw_size_deref ARG / sfw_size_str ARG
#                              set the size register for the next sfw_buf: v, the u32
#                              argument, the u32 it points to, the SHFLSTRING total size
#                              (header + u16Size; 0 for a null pointer)
# sfw_buf idx, dir, ARG        buffer parameter (hgcm_parm_buf) at pointer argument ARG
# sfw_str idx, dir, ARG        SHFLSTRING parameter: sfw_size_str + sfw_buf
# sfw_call                     hgcm_call(); the status is kept for sfw_return
# sfw_out32 idx, ARG / sfw_out64 idx, ARG
#                              store parameter idx's value through pointer argument ARG
# sfw_result32 idx             edx = parameter idx's 32-bit value (second result)
# Frame registers: 64-bit rbx (status) and r12 (size); 32-bit ebx (status), esi (size).

.include "hgcm.s"
.include "shflstring.s"
.include "ccall.s"

.if MODE == 64
.macro sfw_arg name, i64, s32
.if \i64 < 6
.equ \name, -24-8*\i64
.else
.equ \name, 16+8*(\i64-6)
.endif
.endm

.macro sfw_enter
    push rbp
    mov rbp, rsp
    push rbx
    push r12
    sub rsp, 48
    mov qword ptr [rbp-24], rdi
    mov qword ptr [rbp-32], rsi
    mov qword ptr [rbp-40], rdx
    mov qword ptr [rbp-48], rcx
    mov qword ptr [rbp-56], r8
    mov qword ptr [rbp-64], r9
.endm
.macro sfw_return
    mov eax, ebx
    mov rbx, qword ptr [rbp-8]
    mov r12, qword ptr [rbp-16]
    leave
    ret
.endm
.macro sfw_begin fn, cparms
    mov edi, dword ptr [rbp+SFW_CLIENT]
    mov esi, \fn
    mov edx, \cparms
    call hgcm_call_begin
.endm
.macro sfw_u32 idx, arg
    mov edi, \idx
    mov esi, dword ptr [rbp+\arg]
    call hgcm_parm_u32
.endm
.macro sfw_u32p idx, arg
    mov rax, qword ptr [rbp+\arg]
    mov esi, dword ptr [rax]
    mov edi, \idx
    call hgcm_parm_u32
.endm
.macro sfw_u64 idx, arg
    mov edi, \idx
    mov rsi, qword ptr [rbp+\arg]
    call hgcm_parm_u64
.endm
.macro sfw_u64p idx, arg
    mov rax, qword ptr [rbp+\arg]
    mov rsi, qword ptr [rax]
    mov edi, \idx
    call hgcm_parm_u64
.endm
.macro sfw_u64_zero idx
    mov edi, \idx
    xor esi, esi
    call hgcm_parm_u64
.endm
.macro sfw_size_imm value
    mov r12d, \value
.endm
.macro sfw_size_u32 arg
    mov r12d, dword ptr [rbp+\arg]
.endm
.macro sfw_size_deref arg
    mov rax, qword ptr [rbp+\arg]
    mov r12d, dword ptr [rax]
.endm
.macro sfw_size_str arg
    xor r12d, r12d
    mov rdi, qword ptr [rbp+\arg]
    test rdi, rdi
    jz sfw_size_str_null_\@
    call shfl_string_total
    mov r12d, eax
sfw_size_str_null_\@:
.endm
.macro sfw_buf idx, dir, arg
    mov edi, \idx
    mov esi, \dir
    mov rdx, qword ptr [rbp+\arg]
    mov ecx, r12d
    call hgcm_parm_buf
.endm
.macro sfw_out32 idx, arg
    mov edi, \idx
    call hgcm_parm_get_u32
    mov rcx, qword ptr [rbp+\arg]
    mov dword ptr [rcx], eax
.endm
.macro sfw_out64 idx, arg
    mov edi, \idx
    call hgcm_parm_get_u64
    mov rcx, qword ptr [rbp+\arg]
    mov qword ptr [rcx], rax
.endm
.else
.macro sfw_arg name, i64, s32
.equ \name, 8+4*\s32
.endm

.macro sfw_enter
    push ebp
    mov ebp, esp
    push ebx
    push esi
.endm
.macro sfw_return
    mov eax, ebx
    pop esi
    pop ebx
    pop ebp
    ret
.endm
.macro sfw_begin fn, cparms
    ccall3 hgcm_call_begin, [ebp+SFW_CLIENT], \fn, \cparms
.endm
.macro sfw_u32 idx, arg
    ccall2 hgcm_parm_u32, \idx, [ebp+\arg]
.endm
.macro sfw_u32p idx, arg
    mov ecx, dword ptr [ebp+\arg]
    ccall2 hgcm_parm_u32, \idx, [ecx]
.endm
.macro sfw_u64 idx, arg
    ccall3 hgcm_parm_u64, \idx, [ebp+\arg], [ebp+\arg+4]
.endm
.macro sfw_u64p idx, arg
    mov ecx, dword ptr [ebp+\arg]
    push dword ptr [ecx+4]
    push dword ptr [ecx]
    push \idx
    call hgcm_parm_u64
    add esp, 12
.endm
.macro sfw_u64_zero idx
    ccall3 hgcm_parm_u64, \idx, 0, 0
.endm
.macro sfw_size_imm value
    mov esi, \value
.endm
.macro sfw_size_u32 arg
    mov esi, dword ptr [ebp+\arg]
.endm
.macro sfw_size_deref arg
    mov ecx, dword ptr [ebp+\arg]
    mov esi, dword ptr [ecx]
.endm
.macro sfw_size_str arg
    xor esi, esi
    cmp dword ptr [ebp+\arg], 0
    je sfw_size_str_null_\@
    ccall1 shfl_string_total, [ebp+\arg]
    mov esi, eax
sfw_size_str_null_\@:
.endm
.macro sfw_buf idx, dir, arg
    ccall4 hgcm_parm_buf, \idx, \dir, [ebp+\arg], esi
.endm
.macro sfw_out32 idx, arg
    ccall1 hgcm_parm_get_u32, \idx
    mov ecx, dword ptr [ebp+\arg]
    mov dword ptr [ecx], eax
.endm
.macro sfw_out64 idx, arg
    ccall1 hgcm_parm_get_u64, \idx
    mov ecx, dword ptr [ebp+\arg]
    mov dword ptr [ecx], eax
    mov dword ptr [ecx+4], edx
.endm
.endif

sfw_arg SFW_CLIENT, 0, 0
sfw_arg SFW_ROOT, 1, 1
sfw_arg SFW_HANDLE, 2, 2

.macro sfw_u32i idx, value
    ccall2 hgcm_parm_u32, \idx, \value
.endm
.macro sfw_root_handle
    sfw_u32 0, SFW_ROOT
    sfw_u64 1, SFW_HANDLE
.endm
.macro sfw_str idx, dir, arg
    sfw_size_str \arg
    sfw_buf \idx, \dir, \arg
.endm
.macro sfw_call
    call hgcm_call
    mov ebx, eax
.endm
.macro sfw_result32 idx
    ccall1 hgcm_parm_get_u32, \idx
    mov edx, eax
.endm
