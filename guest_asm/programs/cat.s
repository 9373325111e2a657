# cat.s - print a file to the log port (either mode).
# usage: cat SHARE:PATH          e.g. cat d:/notes.txt
# Opens the file like Linux vboxsf open(O_RDONLY) (CREATE OPEN_IF_EXISTS|FAIL_IF_NEW|
# ACCESS_READ), READs CAT_CHUNK bytes at a time until a read returns 0 bytes and writes
# every byte to the log port, which is line-buffered: each '\n' (or '\r') ends a log line,
# so empty lines do not appear as log lines.  A last line without '\n' gets one.
# Exit codes: 0 done, 1 usage, 2 connect/map failed, 3 open/read failed
# ("error: open d:/x: -102").

.include "tool.s"

.equ CAT_CHUNK, 16384

_start:
    ccall2 tool_start, 1, cat_usage
    ccall2 tool_open_arg, cat_file, 0
    ccall3 tool_create, cat_file, SHFL_CF_ACT_OPEN_IF_EXISTS|SHFL_CF_ACT_FAIL_IF_NEW|SHFL_CF_ACCESS_READ, 0
    tool_check TOOL_EXIT_FAILED, cat_msg_open, cat_file
cat_loop:
    ccall3 tool_read, cat_file, cat_buf, CAT_CHUNK
    tool_check TOOL_EXIT_FAILED, cat_msg_read, cat_file
    test edx, edx
    jz cat_eof
    mov dword ptr [cat_count], edx
    mov eax, cat_buf
    mov cl, byte ptr [eax + edx - 1]
    mov byte ptr [cat_last], cl
    ccall2 log_bytes, cat_buf, [cat_count]
    jmp cat_loop
cat_eof:
    mov al, byte ptr [cat_last]
    test al, al
    jz cat_close
    cmp al, 10
    je cat_close
    ccall1 log_char, 10
cat_close:
    ccall1 tool_close, cat_file
    tool_check TOOL_EXIT_FAILED, cat_msg_close, cat_file
    call tool_finish

cat_usage:     .asciz "cat SHARE:PATH"
cat_msg_open:  .asciz "open"
cat_msg_read:  .asciz "read"
cat_msg_close: .asciz "close"
.align 8
cat_count: .quad 0
cat_last:  .quad 0
.align 8
cat_file:  .space TF_SIZE
.align 4096
cat_buf:   .space CAT_CHUNK
