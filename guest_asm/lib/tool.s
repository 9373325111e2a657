# tool.s - the command-line layer of the example programs (ls, cat, cp, ...): arguments
# of the form SHARE:PATH, one "file object" per argument, uniform errors and exit codes.
# Mode-neutral for callers (call with ccallN: every argument is a pointer or a 32-bit
# value).  Not reentrant (state in static variables).  Calling convention: see vmmdev.s.
#
# Exit codes used by every program: TOOL_EXIT_OK 0, TOOL_EXIT_USAGE 1 (bad arguments),
# TOOL_EXIT_CONNECT 2 (guest info, connect, SET_UTF8 or mapping the share failed),
# TOOL_EXIT_FAILED 3 (the operation failed).  A failure logs one line
#   error: <what> <SHARE:PATH>: <status as signed decimal>     (or "error: <what>: <status>")
#
# File object (TF_SIZE bytes, 8-aligned, one per path argument): TF_ROOT u32 root,
# TF_SPEC u32 pointer to the SHARE:PATH text, TF_HANDLE u64 (SHFL_HANDLE_NIL when closed),
# TF_OFFSET u64 (next read/write position), TF_PATH SHFLSTRING of PATH (<= TOOL_PATH_MAX).
#
# tool_start(min_args, usage)   argc < min_args: log "usage: <usage>", exit 1.  Then
#   ReportGuestInfo, connect to VBoxSharedFolders, SET_UTF8 (failure: exit 2).
# tool_open_spec(obj, spec)     split SHARE:PATH (no ':' or too long: exit 1), map SHARE
#   (MAP_FOLDER, '/' delimiter, case-sensitive; failure: exit 2), keep PATH in obj.
# tool_open_arg(obj, i)        tool_open_spec(obj, argument i)
# tool_create(obj, flags, mode) -> eax status: CREATE with SHFL_CF_* flags and fMode `mode`;
#   the handle goes to obj (offset 0), the SHFLCREATEPARMS stay in `tool_parms` (Info at
#   tool_parms + SHFLCREATEPARMS_OFF_INFO).  A success without the wanted object is turned
#   into a status like Linux vboxsf does: Result FILE_NOT_FOUND -> VERR_FILE_NOT_FOUND,
#   PATH_NOT_FOUND -> VERR_PATH_NOT_FOUND, and (not LOOKUP) no handle -> VERR_ALREADY_EXISTS
#   for FILE_EXISTS, else VERR_GENERAL_FAILURE.
# tool_close(obj) -> eax
# tool_read(obj, buf, cb) / tool_write(obj, buf, cb) -> eax status, edx bytes done
#   at obj's offset, which advances by the bytes done.
# tool_list(obj, buf, cb) -> eax status, edx entries   LIST on obj's directory handle
#   (flags 0, no filter); VERR_NO_MORE_FILES at the end.
# tool_fsinfo(obj, info) -> eax     INFORMATION GET|FILE on obj's handle (92 bytes)
# tool_volinfo(obj, info) -> eax    INFORMATION GET|VOLUME of obj's share (40 bytes)
# tool_remove(obj, flags) -> eax    REMOVE obj's path (SHFL_REMOVE_*)
# tool_rename(src, dst, flags) -> eax   RENAME; different shares -> VERR_NOT_SAME_DEVICE
# tool_copy_file(src, dst) -> eax   COPY_FILE
# tool_symlink(obj, target, info) -> eax   SYMLINK at obj's path to the NUL-terminated
#   target text; info: 92 bytes out
# tool_readlink(obj, buf, cb) -> eax   READLINK into buf (NUL-terminated)
# tool_die(code, what, obj, status)   log the error line (obj 0: without SHARE:PATH), exit
# tool_finish()                       disconnect and exit 0
# Macro tool_check code, what, obj: when eax (a status) is negative, tool_die with it.

.include "sf.s"
.include "sf_file.s"
.include "sf_path.s"
.include "sf_dir.s"
.include "log.s"
.include "args.s"

.equ TOOL_EXIT_OK, 0
.equ TOOL_EXIT_USAGE, 1
.equ TOOL_EXIT_CONNECT, 2
.equ TOOL_EXIT_FAILED, 3
.equ TOOL_PATH_MAX, 1024
.equ TOOL_SHARE_MAX, 255
.equ TF_ROOT, 0
.equ TF_SPEC, 4
.equ TF_HANDLE, 8
.equ TF_OFFSET, 16
.equ TF_PATH, 24
.equ TF_SIZE, TF_PATH + SHFLSTRING_HEADER_SIZE + TOOL_PATH_MAX + 4

.if MODE == 64
.macro tool_enter n
    push rbx
    mov qword ptr [tool_a0], rdi
    mov qword ptr [tool_a1], rsi
    mov qword ptr [tool_a2], rdx
    mov qword ptr [tool_a3], rcx
.endm
.macro tool_leave
    pop rbx
    ret
.endm
# Call fn(client, obj root, obj handle, x3, x4, x5, x6, x7) with obj in ebx; q = 1 when
# x3 is a 64-bit value (it takes two stack slots in 32-bit mode).
.macro tool_hcall fn, q
    mov edi, dword ptr [tool_client]
    mov esi, dword ptr [ebx + TF_ROOT]
    mov rdx, qword ptr [ebx + TF_HANDLE]
    mov rcx, qword ptr [tool_x3]
    mov r8, qword ptr [tool_x4]
    mov r9, qword ptr [tool_x5]
    sub rsp, 16
    mov rax, qword ptr [tool_x6]
    mov qword ptr [rsp], rax
    mov rax, qword ptr [tool_x7]
    mov qword ptr [rsp + 8], rax
    call \fn
    add rsp, 16
.endm
.else
.macro tool_enter n
    push ebx
.if \n > 0
    mov eax, dword ptr [esp + 8]
    mov dword ptr [tool_a0], eax
.endif
.if \n > 1
    mov eax, dword ptr [esp + 12]
    mov dword ptr [tool_a1], eax
.endif
.if \n > 2
    mov eax, dword ptr [esp + 16]
    mov dword ptr [tool_a2], eax
.endif
.if \n > 3
    mov eax, dword ptr [esp + 20]
    mov dword ptr [tool_a3], eax
.endif
.endm
.macro tool_leave
    pop ebx
    ret
.endm
.macro tool_hcall fn, q
    push dword ptr [tool_x7]
    push dword ptr [tool_x6]
    push dword ptr [tool_x5]
    push dword ptr [tool_x4]
    mov eax, tool_x3
.if \q
    push dword ptr [eax + 4]
.endif
    push dword ptr [eax]
    push dword ptr [ebx + TF_HANDLE + 4]
    push dword ptr [ebx + TF_HANDLE]
    push dword ptr [ebx + TF_ROOT]
    push dword ptr [tool_client]
    call \fn
    add esp, 36 + 4 * \q
.endm
.endif

# tool_x<n> := value (a 32-bit value, zero-extended; value may not be eax or ecx)
.macro tool_setx n, value
    mov eax, \value
    mov ecx, tool_x\n
    mov dword ptr [ecx], eax
    mov dword ptr [ecx + 4], 0
.endm

.macro tool_check code, what, obj
    test eax, eax
    jns tool_check_ok_\@
    mov dword ptr [tool_status], eax
    ccall4 tool_die, \code, \what, \obj, [tool_status]
tool_check_ok_\@:
.endm

tool_start:
    tool_enter 2
    call args_count
    cmp eax, dword ptr [tool_a0]
    jae tool_start_connect
    ccall1 log_string, tool_msg_usage
    ccall1 log_string, [tool_a1]
    ccall1 log_char, 10
    ccall1 exit, TOOL_EXIT_USAGE
tool_start_connect:
    call vmmdev_report_guest_info
    tool_check TOOL_EXIT_CONNECT, tool_msg_guest_info, 0
    ccall1 hgcm_connect, tool_service
    tool_check TOOL_EXIT_CONNECT, tool_msg_connect, 0
    mov dword ptr [tool_client], edx
    ccall1 sf_set_utf8, [tool_client]
    tool_check TOOL_EXIT_CONNECT, tool_msg_set_utf8, 0
    tool_leave

tool_open_spec:
    tool_enter 2
    mov ebx, dword ptr [tool_a0]
    mov eax, dword ptr [tool_a1]
    mov dword ptr [ebx + TF_SPEC], eax
    mov dword ptr [ebx + TF_HANDLE], -1
    mov dword ptr [ebx + TF_HANDLE + 4], -1
    ccall1 args_split_spec, [tool_a1]
    test eax, eax
    jz tool_open_spec_bad
    cmp edx, TOOL_SHARE_MAX
    ja tool_open_spec_bad
    mov dword ptr [tool_p1], eax
    mov dword ptr [tool_p2], edx
    ccall1 str_len, [tool_p1]
    cmp eax, TOOL_PATH_MAX
    ja tool_open_spec_long
    ccall3 shfl_string_init_n, tool_str, [tool_a1], [tool_p2]
    ccall2 sf_map_folder, [tool_client], tool_str
    tool_check TOOL_EXIT_CONNECT, tool_msg_map, [tool_a0]
    mov dword ptr [ebx + TF_ROOT], edx
    lea ecx, [ebx + TF_PATH]
    mov dword ptr [tool_p2], ecx
    ccall2 shfl_string_init, [tool_p2], [tool_p1]
    tool_leave
tool_open_spec_bad:
    ccall4 tool_die, TOOL_EXIT_USAGE, tool_msg_bad_spec, [tool_a0], VERR_INVALID_NAME
tool_open_spec_long:
    ccall4 tool_die, TOOL_EXIT_USAGE, tool_msg_long, [tool_a0], VERR_FILENAME_TOO_LONG

tool_open_arg:
    tool_enter 2
    ccall1 args_get, [tool_a1]
    mov dword ptr [tool_p1], eax
    ccall2 tool_open_spec, [tool_a0], [tool_p1]
    tool_leave

tool_create:
    tool_enter 3
    mov ebx, dword ptr [tool_a0]
    ccall3 shfl_create_parms_init, tool_parms, [tool_a1], [tool_a2]
    lea ecx, [ebx + TF_PATH]
    mov dword ptr [tool_p1], ecx
    ccall4 sf_create, [tool_client], [ebx + TF_ROOT], [tool_p1], tool_parms
    mov ecx, tool_parms
    mov edx, dword ptr [ecx + SHFLCREATEPARMS_OFF_HANDLE]
    mov dword ptr [ebx + TF_HANDLE], edx
    mov edx, dword ptr [ecx + SHFLCREATEPARMS_OFF_HANDLE + 4]
    mov dword ptr [ebx + TF_HANDLE + 4], edx
    mov dword ptr [ebx + TF_OFFSET], 0
    mov dword ptr [ebx + TF_OFFSET + 4], 0
    test eax, eax
    js tool_create_done
    mov edx, dword ptr [ecx + SHFLCREATEPARMS_OFF_RESULT]
    mov eax, VERR_FILE_NOT_FOUND
    cmp edx, SHFL_FILE_NOT_FOUND
    je tool_create_done
    mov eax, VERR_PATH_NOT_FOUND
    cmp edx, SHFL_PATH_NOT_FOUND
    je tool_create_done
    xor eax, eax
    test dword ptr [tool_a1], SHFL_CF_LOOKUP
    jnz tool_create_done
    mov ecx, dword ptr [ebx + TF_HANDLE]
    and ecx, dword ptr [ebx + TF_HANDLE + 4]
    cmp ecx, -1
    jne tool_create_done
    mov eax, VERR_ALREADY_EXISTS
    cmp edx, SHFL_FILE_EXISTS
    je tool_create_done
    mov eax, VERR_GENERAL_FAILURE
tool_create_done:
    tool_leave

tool_close:
    tool_enter 1
    mov ebx, dword ptr [tool_a0]
    tool_hcall sf_close, 0
    mov dword ptr [ebx + TF_HANDLE], -1
    mov dword ptr [ebx + TF_HANDLE + 4], -1
    tool_leave

tool_read:
    tool_enter 3
    mov dword ptr [tool_rw_write], 0
    jmp tool_rw
tool_write:
    tool_enter 3
    mov dword ptr [tool_rw_write], 1
tool_rw:
    mov ebx, dword ptr [tool_a0]
    mov eax, dword ptr [tool_a2]
    mov dword ptr [tool_count], eax
    mov eax, dword ptr [ebx + TF_OFFSET]
    mov dword ptr [tool_x3], eax
    mov eax, dword ptr [ebx + TF_OFFSET + 4]
    mov ecx, tool_x3
    mov dword ptr [ecx + 4], eax
    tool_setx 4, tool_count
    tool_setx 5, [tool_a1]
    cmp dword ptr [tool_rw_write], 0
    jne tool_rw_write_call
    tool_hcall sf_read, 1
    jmp tool_rw_called
tool_rw_write_call:
    tool_hcall sf_write, 1
tool_rw_called:
    mov edx, dword ptr [tool_count]
    test eax, eax
    js tool_rw_done
    add dword ptr [ebx + TF_OFFSET], edx
    adc dword ptr [ebx + TF_OFFSET + 4], 0
tool_rw_done:
    tool_leave

tool_list:
    tool_enter 3
    mov ebx, dword ptr [tool_a0]
    mov eax, dword ptr [tool_a2]
    mov dword ptr [tool_count], eax
    tool_setx 3, 0
    tool_setx 4, 0
    tool_setx 5, tool_count
    tool_setx 6, [tool_a1]
    tool_setx 7, tool_entries
    tool_hcall sf_list, 0
    mov edx, dword ptr [tool_entries]
    tool_leave

tool_fsinfo:
    tool_enter 2
    mov ebx, dword ptr [tool_a0]
    tool_setx 3, [tool_a1]
    tool_hcall sf_fsinfo_get, 0
    tool_leave

tool_volinfo:
    tool_enter 2
    mov ebx, dword ptr [tool_a0]
    ccall3 sf_volume_info, [tool_client], [ebx + TF_ROOT], [tool_a1]
    tool_leave

tool_remove:
    tool_enter 2
    mov ebx, dword ptr [tool_a0]
    lea ecx, [ebx + TF_PATH]
    mov dword ptr [tool_p1], ecx
    ccall4 sf_remove, [tool_client], [ebx + TF_ROOT], [tool_p1], [tool_a1]
    tool_leave

# tool_p1 := path of obj tool_a0, tool_p2 := path of obj tool_a1; ebx = obj tool_a0
tool_two_paths:
    mov ebx, dword ptr [tool_a1]
    lea ecx, [ebx + TF_PATH]
    mov dword ptr [tool_p2], ecx
    mov ebx, dword ptr [tool_a0]
    lea ecx, [ebx + TF_PATH]
    mov dword ptr [tool_p1], ecx
    ret

tool_rename:
    tool_enter 3
    call tool_two_paths
    mov ecx, dword ptr [tool_a1]
    mov eax, dword ptr [ecx + TF_ROOT]
    cmp eax, dword ptr [ebx + TF_ROOT]
    mov eax, VERR_NOT_SAME_DEVICE
    jne tool_rename_done
    ccall5 sf_rename, [tool_client], [ebx + TF_ROOT], [tool_p1], [tool_p2], [tool_a2]
tool_rename_done:
    tool_leave

tool_copy_file:
    tool_enter 2
    call tool_two_paths
    mov ecx, dword ptr [tool_a1]
    mov eax, dword ptr [ecx + TF_ROOT]
    mov dword ptr [tool_count], eax
    ccall6 sf_copy_file, [tool_client], [ebx + TF_ROOT], [tool_p1], [tool_count], [tool_p2], 0
    tool_leave

tool_symlink:
    tool_enter 3
    mov ebx, dword ptr [tool_a0]
    ccall2 shfl_string_init, tool_str, [tool_a1]
    lea ecx, [ebx + TF_PATH]
    mov dword ptr [tool_p1], ecx
    ccall5 sf_symlink, [tool_client], [ebx + TF_ROOT], [tool_p1], tool_str, [tool_a2]
    tool_leave

tool_readlink:
    tool_enter 3
    mov ebx, dword ptr [tool_a0]
    lea ecx, [ebx + TF_PATH]
    mov dword ptr [tool_p1], ecx
    ccall5 sf_readlink, [tool_client], [ebx + TF_ROOT], [tool_p1], [tool_a2], [tool_a1]
    tool_leave

tool_die:
    tool_enter 4
    ccall1 log_string, tool_msg_error
    ccall1 log_string, [tool_a1]
    mov ebx, dword ptr [tool_a2]
    test ebx, ebx
    jz tool_die_status
    ccall1 log_char, ' '
    mov eax, dword ptr [ebx + TF_SPEC]
    mov dword ptr [tool_p1], eax
    ccall1 log_string, [tool_p1]
tool_die_status:
    ccall1 log_string, tool_msg_colon
    ccall1 log_dec32, [tool_a3]
    ccall1 log_char, 10
    ccall1 exit, [tool_a0]

tool_finish:
    ccall1 hgcm_disconnect, [tool_client]
    ccall1 exit, TOOL_EXIT_OK

tool_service:       .asciz "VBoxSharedFolders"
tool_msg_usage:     .asciz "usage: "
tool_msg_error:     .asciz "error: "
tool_msg_colon:     .asciz ": "
tool_msg_guest_info: .asciz "guest info"
tool_msg_connect:   .asciz "connect"
tool_msg_set_utf8:  .asciz "SET_UTF8"
tool_msg_map:       .asciz "map"
tool_msg_bad_spec:  .asciz "bad path (want SHARE:PATH)"
tool_msg_long:      .asciz "path too long"
.align 8
tool_a0:      .quad 0
tool_a1:      .quad 0
tool_a2:      .quad 0
tool_a3:      .quad 0
tool_x3:      .quad 0
tool_x4:      .quad 0
tool_x5:      .quad 0
tool_x6:      .quad 0
tool_x7:      .quad 0
tool_p1:      .quad 0
tool_p2:      .quad 0
tool_client:  .quad 0
tool_status:  .quad 0
tool_count:   .quad 0
tool_entries: .quad 0
tool_rw_write: .quad 0
.align 8
tool_parms:   .space SHFLCREATEPARMS_SIZE
.align 8
tool_str:     .space SHFLSTRING_HEADER_SIZE + TOOL_PATH_MAX + 4
