# sf_roundtrip.s - the example flow behind the bundled programs: report guest info,
# connect to VBoxSharedFolders, SET_UTF8, map a share, create a file
# (CREATE_IF_NEW | OVERWRITE_IF_EXISTS | ACCESS_READWRITE), write a message, read it back,
# compare in guest memory, close, unmap, disconnect.  Logs one line per step.
#
# sf_roundtrip(share, file, message, length) -> eax = exit code
#   share, file: NUL-terminated names; message: `length` bytes (at most SFR_MAX bytes).
#   Exit codes: 0 success, 1 ReportGuestInfo, 2 connect, 3 SET_UTF8, 4 MAP_FOLDER,
#   5 CREATE status, 6 CREATE gave no handle, 7 WRITE status, 8 short write, 9 READ status,
#   10 short read, 11 data mismatch, 12 CLOSE, 13 UNMAP_FOLDER, 14 disconnect.
#   A failing status is logged as "... failed: XXXXXXXX".
# Calling convention: see vmmdev.s.  Not reentrant (state in static variables).

.include "sf.s"
.include "log.s"
.include "mem.s"

.equ SFR_MAX, 256

# Leave with exit code \code when eax (a status) is negative.
.macro sfr_check code
    mov dword ptr [sfr_status], eax
    test eax, eax
    jns sfr_ok_\@
    mov dword ptr [sfr_exit], \code
    jmp sfr_fail
sfr_ok_\@:
.endm

sf_roundtrip:
.if MODE == 64
    push rbx
    mov qword ptr [sfr_share], rdi
    mov qword ptr [sfr_file], rsi
    mov qword ptr [sfr_message], rdx
    mov qword ptr [sfr_length], rcx
.else
    push ebx
    mov eax, [esp+8]
    mov [sfr_share], eax
    mov eax, [esp+12]
    mov [sfr_file], eax
    mov eax, [esp+16]
    mov [sfr_message], eax
    mov eax, [esp+20]
    mov [sfr_length], eax
.endif
    ccall1 log_string, sfr_msg_start
    ccall0 vmmdev_report_guest_info
    sfr_check 1
    ccall1 hgcm_connect, sfr_service
    sfr_check 2
    mov dword ptr [sfr_client], edx
    ccall1 log_string, sfr_msg_connected
    ccall1 sf_set_utf8, [sfr_client]
    sfr_check 3
    ccall2 shfl_string_init, sfr_name_buf, [sfr_share]
    ccall2 sf_map_folder, [sfr_client], sfr_name_buf
    sfr_check 4
    mov dword ptr [sfr_root], edx
    ccall1 log_string, sfr_msg_mapped
    ccall2 shfl_string_init, sfr_name_buf, [sfr_file]
    ccall3 shfl_create_parms_init, sfr_parms, SHFL_CF_ACT_CREATE_IF_NEW | SHFL_CF_ACT_OVERWRITE_IF_EXISTS | SHFL_CF_ACCESS_READWRITE, RTFS_TYPE_FILE | 0x1A4
    ccall4 sf_create, [sfr_client], [sfr_root], sfr_name_buf, sfr_parms
    sfr_check 5
    mov eax, sfr_parms
    mov ecx, dword ptr [eax + SHFLCREATEPARMS_OFF_HANDLE]
    mov dword ptr [sfr_handle], ecx
    mov edx, dword ptr [eax + SHFLCREATEPARMS_OFF_HANDLE + 4]
    mov dword ptr [sfr_handle + 4], edx
    and ecx, edx
    cmp ecx, -1
    jne sfr_have_handle
    mov dword ptr [sfr_exit], 6
    jmp sfr_fail
sfr_have_handle:
    ccall1 log_string, sfr_msg_created
    mov eax, dword ptr [sfr_length]
    mov dword ptr [sfr_count], eax
.if MODE == 64
    mov rdi, [sfr_client]
    mov rsi, [sfr_root]
    mov rdx, [sfr_handle]
    xor ecx, ecx
    lea r8, [sfr_count]
    mov r9, [sfr_message]
    call sf_write
.else
    sub esp, 32
    ccarg 0, [sfr_client]
    ccarg 4, [sfr_root]
    ccarg 8, [sfr_handle]
    ccarg 12, [sfr_handle+4]
    ccarg 16, 0
    ccarg 20, 0
    ccarg 24, sfr_count
    ccarg 28, [sfr_message]
    call sf_write
    add esp, 32
.endif
    sfr_check 7
    mov eax, dword ptr [sfr_count]
    cmp eax, dword ptr [sfr_length]
    je sfr_written
    mov dword ptr [sfr_exit], 8
    jmp sfr_fail
sfr_written:
    ccall1 log_string, sfr_msg_written
    mov eax, dword ptr [sfr_length]
    mov dword ptr [sfr_count], eax
.if MODE == 64
    mov rdi, [sfr_client]
    mov rsi, [sfr_root]
    mov rdx, [sfr_handle]
    xor ecx, ecx
    lea r8, [sfr_count]
    lea r9, [sfr_read_buf]
    call sf_read
.else
    sub esp, 32
    ccarg 0, [sfr_client]
    ccarg 4, [sfr_root]
    ccarg 8, [sfr_handle]
    ccarg 12, [sfr_handle+4]
    ccarg 16, 0
    ccarg 20, 0
    ccarg 24, sfr_count
    ccarg 28, sfr_read_buf
    call sf_read
    add esp, 32
.endif
    sfr_check 9
    mov eax, dword ptr [sfr_count]
    cmp eax, dword ptr [sfr_length]
    je sfr_read_done
    mov dword ptr [sfr_exit], 10
    jmp sfr_fail
sfr_read_done:
    ccall3 mem_equal, sfr_read_buf, [sfr_message], [sfr_length]
    test eax, eax
    jnz sfr_same
    mov dword ptr [sfr_exit], 11
    jmp sfr_fail
sfr_same:
    ccall1 log_string, sfr_msg_verified
.if MODE == 64
    ccall3 sf_close, [sfr_client], [sfr_root], [sfr_handle]
.else
    ccall4 sf_close, [sfr_client], [sfr_root], [sfr_handle], [sfr_handle+4]
.endif
    sfr_check 12
    ccall2 sf_unmap_folder, [sfr_client], [sfr_root]
    sfr_check 13
    ccall1 hgcm_disconnect, [sfr_client]
    sfr_check 14
    ccall1 log_string, sfr_msg_done
    xor eax, eax
    jmp sfr_return
sfr_fail:
    ccall1 log_string, sfr_msg_failed
    ccall1 log_hex32, [sfr_status]
    ccall1 log_char, 10
    mov eax, dword ptr [sfr_exit]
sfr_return:
.if MODE == 64
    pop rbx
.else
    pop ebx
.endif
    ret

sfr_service:       .asciz "VBoxSharedFolders"
sfr_msg_start:     .asciz "sf: start\n"
sfr_msg_connected: .asciz "sf: connected\n"
sfr_msg_mapped:    .asciz "sf: share mapped\n"
sfr_msg_created:   .asciz "sf: file created\n"
sfr_msg_written:   .asciz "sf: message written\n"
sfr_msg_verified:  .asciz "sf: read back and verified\n"
sfr_msg_done:      .asciz "sf: done\n"
sfr_msg_failed:    .asciz "sf: step failed: "
.align 8
sfr_share:   .quad 0
sfr_file:    .quad 0
sfr_message: .quad 0
sfr_length:  .quad 0
sfr_client:  .quad 0
sfr_root:    .quad 0
sfr_count:   .quad 0
sfr_status:  .quad 0
sfr_exit:    .quad 0
sfr_handle:  .quad 0
.align 8
sfr_parms:    .space SHFLCREATEPARMS_SIZE
.align 8
sfr_name_buf: .space SHFLSTRING_HEADER_SIZE + 256
.align 16
sfr_read_buf: .space SFR_MAX
