# cp.s - copy a file with a READ/WRITE loop (either mode).
# usage: cp SRC DST              e.g. cp d:/notes.txt d:/copy.txt   (shares may differ)
# SRC is opened like Linux open(O_RDONLY); DST like open(O_WRONLY|O_CREAT|O_TRUNC)
# (CREATE_IF_NEW|OVERWRITE_IF_EXISTS|ACCESS_WRITE) with SRC's permission bits.  Copies
# CP_CHUNK bytes per READ until a read returns 0 bytes; each chunk is written completely
# (WRITE again for the rest after a short write).
# Exit codes: 0 done, 1 usage, 2 connect/map failed, 3 open/create/read/write/close failed
# ("error: create r:/copy.txt: -113" on a read-only share).

.include "tool.s"

.equ CP_CHUNK, 65536
.equ CP_MODE_BITS, 0x1FF

_start:
    ccall2 tool_start, 2, cp_usage
    ccall2 tool_open_arg, cp_src, 0
    ccall2 tool_open_arg, cp_dst, 1
    ccall3 tool_create, cp_src, SHFL_CF_ACT_OPEN_IF_EXISTS|SHFL_CF_ACT_FAIL_IF_NEW|SHFL_CF_ACCESS_READ, 0
    tool_check TOOL_EXIT_FAILED, cp_msg_open, cp_src
    mov ecx, tool_parms
    mov eax, dword ptr [ecx + SHFLCREATEPARMS_OFF_FMODE]
    and eax, CP_MODE_BITS
    or eax, RTFS_TYPE_FILE
    mov dword ptr [cp_mode], eax
    ccall3 tool_create, cp_dst, SHFL_CF_ACT_CREATE_IF_NEW|SHFL_CF_ACT_OVERWRITE_IF_EXISTS|SHFL_CF_ACCESS_WRITE, [cp_mode]
    tool_check TOOL_EXIT_FAILED, cp_msg_create, cp_dst
cp_read:
    ccall3 tool_read, cp_src, cp_buf, CP_CHUNK
    tool_check TOOL_EXIT_FAILED, cp_msg_read, cp_src
    test edx, edx
    jz cp_done
    mov dword ptr [cp_left], edx
    mov dword ptr [cp_next], cp_buf
cp_write:
    ccall3 tool_write, cp_dst, [cp_next], [cp_left]
    tool_check TOOL_EXIT_FAILED, cp_msg_write, cp_dst
    test edx, edx
    jz cp_stuck
    add dword ptr [cp_next], edx
    sub dword ptr [cp_left], edx
    jnz cp_write
    jmp cp_read
cp_stuck:
    ccall4 tool_die, TOOL_EXIT_FAILED, cp_msg_write, cp_dst, VERR_GENERAL_FAILURE
cp_done:
    ccall1 tool_close, cp_dst
    tool_check TOOL_EXIT_FAILED, cp_msg_close, cp_dst
    ccall1 tool_close, cp_src
    tool_check TOOL_EXIT_FAILED, cp_msg_close, cp_src
    call tool_finish

cp_usage:      .asciz "cp SHARE:SRC SHARE:DST"
cp_msg_open:   .asciz "open"
cp_msg_create: .asciz "create"
cp_msg_read:   .asciz "read"
cp_msg_write:  .asciz "write"
cp_msg_close:  .asciz "close"
.align 8
cp_mode: .quad 0
cp_left: .quad 0
cp_next: .quad 0
.align 8
cp_src:  .space TF_SIZE
.align 8
cp_dst:  .space TF_SIZE
.align 4096
cp_buf:  .space CP_CHUNK
