# rmdir.s - remove an empty directory (either mode).
# usage: rmdir SHARE:DIR         e.g. rmdir d:/olddir
# REMOVE with SHFL_REMOVE_DIR (what Linux vboxsf rmdir sends).
# Exit codes: 0 done, 1 usage, 2 connect/map failed, 3 failed
# ("error: rmdir d:/x: -125" when not empty, -102 missing, -126 not a directory).

.include "tool.s"

_start:
    ccall2 tool_start, 1, rmdir_usage
    ccall2 tool_open_arg, rmdir_dir, 0
    ccall2 tool_remove, rmdir_dir, SHFL_REMOVE_DIR
    tool_check TOOL_EXIT_FAILED, rmdir_msg, rmdir_dir
    call tool_finish

rmdir_usage: .asciz "rmdir SHARE:DIR"
rmdir_msg:   .asciz "rmdir"
.align 8
rmdir_dir: .space TF_SIZE
