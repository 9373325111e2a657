# df.s - show a share's volume information (either mode).
# usage: df SHARE:[PATH]         e.g. df d:     (PATH is ignored: the volume of the share)
# INFORMATION GET|VOLUME with handle 0 (what Linux vboxsf statfs sends); logs:
#   total: <ullTotalAllocationBytes>
#   free: <ullAvailableAllocationBytes>
#   unit: <ulBytesPerAllocationUnit>
#   sector: <ulBytesPerSector>
# Exit codes: 0 done, 1 usage, 2 connect/map failed, 3 INFORMATION failed
# ("error: df d:: -12").

.include "tool.s"

# log "<label>" then the value at df_info + offset (64-bit signed or 32-bit unsigned)
.macro df_line label, offset, wide
    ccall1 log_string, \label
    mov ecx, df_info
.if \wide
    add ecx, \offset
    mov dword ptr [df_ptr], ecx
    ccall1 log_dec64p, [df_ptr]
.else
    mov eax, dword ptr [ecx + \offset]
    mov dword ptr [df_ptr], eax
    ccall1 log_udec32, [df_ptr]
.endif
    ccall1 log_char, 10
.endm

_start:
    ccall2 tool_start, 1, df_usage
    ccall2 tool_open_arg, df_obj, 0
    ccall2 tool_volinfo, df_obj, df_info
    tool_check TOOL_EXIT_FAILED, df_msg, df_obj
    df_line df_total, SHFLVOLINFO_OFF_ULLTOTALALLOCATIONBYTES, 1
    df_line df_free, SHFLVOLINFO_OFF_ULLAVAILABLEALLOCATIONBYTES, 1
    df_line df_unit, SHFLVOLINFO_OFF_ULBYTESPERALLOCATIONUNIT, 0
    df_line df_sector, SHFLVOLINFO_OFF_ULBYTESPERSECTOR, 0
    call tool_finish

df_usage:  .asciz "df SHARE:[PATH]"
df_msg:    .asciz "df"
df_total:  .asciz "total: "
df_free:   .asciz "free: "
df_unit:   .asciz "unit: "
df_sector: .asciz "sector: "
.align 8
df_ptr:  .quad 0
.align 8
df_info: .space SHFLVOLINFO_SIZE
.align 8
df_obj:  .space TF_SIZE
