# mv.s - rename or move a file or directory within one share (either mode).
# usage: mv SRC DST              e.g. mv d:/a.txt d:/sub/b.txt
# Looks SRC up (CREATE LOOKUP|FAIL_IF_NEW), then RENAME like Linux vboxsf: a directory
# with flags SHFL_RENAME_DIR (an existing DST is an error), anything else with
# SHFL_RENAME_FILE|SHFL_RENAME_REPLACE_IF_EXISTS (an existing file DST is replaced).
# Exit codes: 0 done, 1 usage, 2 connect/map failed, 3 failed ("error: mv d:/a.txt: -102";
# SRC and DST on different shares: -119, VERR_NOT_SAME_DEVICE).

.include "tool.s"

_start:
    ccall2 tool_start, 2, mv_usage
    ccall2 tool_open_arg, mv_src, 0
    ccall2 tool_open_arg, mv_dst, 1
    ccall3 tool_create, mv_src, SHFL_CF_LOOKUP|SHFL_CF_ACT_FAIL_IF_NEW, 0
    tool_check TOOL_EXIT_FAILED, mv_msg, mv_src
    mov ecx, tool_parms
    mov eax, dword ptr [ecx + SHFLCREATEPARMS_OFF_FMODE]
    and eax, RTFS_TYPE_MASK
    mov dword ptr [mv_flags], SHFL_RENAME_FILE|SHFL_RENAME_REPLACE_IF_EXISTS
    cmp eax, RTFS_TYPE_DIRECTORY
    jne mv_rename
    mov dword ptr [mv_flags], SHFL_RENAME_DIR
mv_rename:
    ccall3 tool_rename, mv_src, mv_dst, [mv_flags]
    tool_check TOOL_EXIT_FAILED, mv_msg, mv_src
    call tool_finish

mv_usage: .asciz "mv SHARE:SRC SHARE:DST"
mv_msg:   .asciz "mv"
.align 8
mv_flags: .quad 0
.align 8
mv_src: .space TF_SIZE
.align 8
mv_dst: .space TF_SIZE
