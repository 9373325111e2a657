# mkdir.s - create a directory (either mode).
# usage: mkdir SHARE:DIR         e.g. mkdir d:/newdir
# CREATE like Linux vboxsf mkdir: DIRECTORY|CREATE_IF_NEW|FAIL_IF_EXISTS|ACCESS_READWRITE,
# mode 0755 (the host applies its own default), then CLOSE.
# Exit codes: 0 done, 1 usage, 2 connect/map failed, 3 failed
# ("error: mkdir d:/newdir: -105" when it exists, -113 on a read-only share).

.include "tool.s"

_start:
    ccall2 tool_start, 1, mkdir_usage
    ccall2 tool_open_arg, mkdir_dir, 0
    ccall3 tool_create, mkdir_dir, SHFL_CF_DIRECTORY|SHFL_CF_ACT_CREATE_IF_NEW|SHFL_CF_ACT_FAIL_IF_EXISTS|SHFL_CF_ACCESS_READWRITE, RTFS_TYPE_DIRECTORY|0x1ED
    tool_check TOOL_EXIT_FAILED, mkdir_msg, mkdir_dir
    ccall1 tool_close, mkdir_dir
    tool_check TOOL_EXIT_FAILED, mkdir_msg_close, mkdir_dir
    call tool_finish

mkdir_usage:     .asciz "mkdir SHARE:DIR"
mkdir_msg:       .asciz "mkdir"
mkdir_msg_close: .asciz "close"
.align 8
mkdir_dir: .space TF_SIZE
