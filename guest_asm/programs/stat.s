# stat.s - show a file's or directory's size, mode and times (either mode).
# usage: stat SHARE:PATH         e.g. stat d:/notes.txt
# CREATE LOOKUP|FAIL_IF_NEW (what Linux vboxsf_stat sends); logs from the returned
# SHFLFSOBJINFO (symlinks are followed):
#   size: <cbObject>
#   mode: <fMode & 0xFFFF, octal: type and permission bits, e.g. 100644>
#   atime: / mtime: / ctime: / btime: <nanoseconds since the Unix epoch, signed decimal>
# Exit codes: 0 done, 1 usage, 2 connect/map failed, 3 lookup failed
# ("error: stat d:/x: -102").

.include "tool.s"

.equ STAT_INFO, SHFLCREATEPARMS_OFF_INFO

# log "<label>" then the signed 64-bit value at tool_parms + offset, then a newline
.macro stat_line label, offset
    ccall1 log_string, \label
    mov eax, tool_parms
    add eax, \offset
    mov dword ptr [stat_ptr], eax
    ccall1 log_dec64p, [stat_ptr]
    ccall1 log_char, 10
.endm

_start:
    ccall2 tool_start, 1, stat_usage
    ccall2 tool_open_arg, stat_obj, 0
    ccall3 tool_create, stat_obj, SHFL_CF_LOOKUP|SHFL_CF_ACT_FAIL_IF_NEW, 0
    tool_check TOOL_EXIT_FAILED, stat_msg, stat_obj
    stat_line stat_size, STAT_INFO+SHFLFSOBJINFO_OFF_CBOBJECT
    ccall1 log_string, stat_mode
    mov ecx, tool_parms
    movzx eax, word ptr [ecx + SHFLCREATEPARMS_OFF_FMODE]
    mov dword ptr [stat_ptr], eax
    ccall1 log_octal, [stat_ptr]
    ccall1 log_char, 10
    stat_line stat_atime, STAT_INFO+SHFLFSOBJINFO_OFF_ACCESSTIME
    stat_line stat_mtime, STAT_INFO+SHFLFSOBJINFO_OFF_MODIFICATIONTIME
    stat_line stat_ctime, STAT_INFO+SHFLFSOBJINFO_OFF_CHANGETIME
    stat_line stat_btime, STAT_INFO+SHFLFSOBJINFO_OFF_BIRTHTIME
    call tool_finish

stat_usage: .asciz "stat SHARE:PATH"
stat_msg:   .asciz "stat"
stat_size:  .asciz "size: "
stat_mode:  .asciz "mode: "
stat_atime: .asciz "atime: "
stat_mtime: .asciz "mtime: "
stat_ctime: .asciz "ctime: "
stat_btime: .asciz "btime: "
.align 8
stat_ptr: .quad 0
.align 8
stat_obj: .space TF_SIZE
