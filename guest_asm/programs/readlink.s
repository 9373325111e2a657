# readlink.s - print a symbolic link's target (either mode).
# usage: readlink SHARE:PATH     e.g. readlink d:/link
# READLINK like Linux vboxsf get_link (a zeroed PATH_MAX buffer); logs the target text
# as one line.
# Exit codes: 0 done, 1 usage, 2 connect/map failed, 3 READLINK failed
# ("error: readlink d:/notes.txt: -19" for a non-link, -102 missing).

.include "tool.s"

.equ RL_BUF_SIZE, 4096

_start:
    ccall2 tool_start, 1, rl_usage
    ccall2 tool_open_arg, rl_obj, 0
    ccall3 tool_readlink, rl_obj, rl_buf, RL_BUF_SIZE
    tool_check TOOL_EXIT_FAILED, rl_msg, rl_obj
    ccall1 log_string, rl_buf
    ccall1 log_char, 10
    call tool_finish

rl_usage: .asciz "readlink SHARE:PATH"
rl_msg:   .asciz "readlink"
.align 8
rl_obj: .space TF_SIZE
.align 4096
rl_buf: .space RL_BUF_SIZE
