# ln_s.s - create a symbolic link (either mode).
# usage: ln_s TARGET SHARE:LINKPATH   e.g. ln_s notes.txt d:/link
# TARGET is the raw link text (not SHARE:PATH; the host stores it unchanged).  SYMLINK
# like Linux vboxsf symlink; the share must allow symlink creation
# (Machine.add_share(..., create_symlinks=True)), else VERR_WRITE_PROTECT.
# Exit codes: 0 done, 1 usage, 2 connect/map failed, 3 SYMLINK failed
# ("error: ln_s d:/link: -105" when LINKPATH exists).

.include "tool.s"

_start:
    ccall2 tool_start, 2, ln_usage
    ccall2 tool_open_arg, ln_link, 1
    ccall1 args_get, 0
    mov dword ptr [ln_target], eax
    ccall3 tool_symlink, ln_link, [ln_target], ln_info
    tool_check TOOL_EXIT_FAILED, ln_msg, ln_link
    call tool_finish

ln_usage: .asciz "ln_s TARGET SHARE:LINKPATH"
ln_msg:   .asciz "ln_s"
.align 8
ln_target: .quad 0
.align 8
ln_info: .space SHFLFSOBJINFO_SIZE
.align 8
ln_link: .space TF_SIZE
