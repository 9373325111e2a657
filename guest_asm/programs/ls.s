# ls.s - list a directory, one name per log line (either mode).
# usage: ls SHARE:DIR            e.g. ls d:/   or   ls d:
# Opens the directory like Linux vboxsf opendir (CREATE DIRECTORY|OPEN_IF_EXISTS|
# FAIL_IF_NEW|ACCESS_READ), then calls LIST with a LS_BUF_SIZE buffer again and again until
# it answers VERR_NO_MORE_FILES, walking the packed SHFLDIRINFO records of each answer
# (126 + name.u16Size bytes each).  Every name except "." and ".." is logged once, in the
# host's order (like `ls -A -f`).  Names are logged as bytes; a name containing '\n' or
# '\r' would span log lines.
# Exit codes: 0 done, 1 usage, 2 connect/map failed, 3 open/LIST failed
# ("error: list d:/x: -12").

.include "tool.s"

.equ LS_BUF_SIZE, 65536

_start:
    ccall2 tool_start, 1, ls_usage
    ccall2 tool_open_arg, ls_dir, 0
    ccall3 tool_create, ls_dir, SHFL_CF_DIRECTORY|SHFL_CF_ACT_OPEN_IF_EXISTS|SHFL_CF_ACT_FAIL_IF_NEW|SHFL_CF_ACCESS_READ, 0
    tool_check TOOL_EXIT_FAILED, ls_msg_open, ls_dir
ls_call:
    ccall3 tool_list, ls_dir, ls_buf, LS_BUF_SIZE
    cmp eax, VERR_NO_MORE_FILES
    je ls_end
    tool_check TOOL_EXIT_FAILED, ls_msg_list, ls_dir
    mov dword ptr [ls_left], edx
    mov dword ptr [ls_record], ls_buf
ls_next:
    cmp dword ptr [ls_left], 0
    je ls_call
    dec dword ptr [ls_left]
    mov ecx, dword ptr [ls_record]
    movzx eax, word ptr [ecx + SHFLDIRINFOHEADER_OFF_NAME_U16LENGTH]
    mov dword ptr [ls_length], eax
    movzx edx, word ptr [ecx + SHFLDIRINFOHEADER_OFF_NAME_U16SIZE]
    lea edx, [ecx + edx + SHFLDIRINFOHEADER_SIZE]
    mov dword ptr [ls_record], edx
    lea edx, [ecx + SHFLDIRINFOHEADER_SIZE]
    mov dword ptr [ls_name], edx
    cmp eax, 1
    jne ls_not_dot
    cmp byte ptr [edx], '.'
    je ls_next
ls_not_dot:
    cmp eax, 2
    jne ls_print
    cmp word ptr [edx], 0x2E2E
    je ls_next
ls_print:
    ccall2 log_bytes, [ls_name], [ls_length]
    ccall1 log_char, 10
    jmp ls_next
ls_end:
    ccall1 tool_close, ls_dir
    tool_check TOOL_EXIT_FAILED, ls_msg_close, ls_dir
    call tool_finish

ls_usage:     .asciz "ls SHARE:DIR"
ls_msg_open:  .asciz "open"
ls_msg_list:  .asciz "list"
ls_msg_close: .asciz "close"
.align 8
ls_left:   .quad 0
ls_record: .quad 0
ls_name:   .quad 0
ls_length: .quad 0
.align 8
ls_dir:    .space TF_SIZE
.align 4096
ls_buf:    .space LS_BUF_SIZE
