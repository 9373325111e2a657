# gp.s - guest property calls (VBoxGuestPropSvc), one wrapper per guest function, for
# both modes.  Strings are NUL-terminated UTF-8; a name or value parameter is sent with
# its terminator (size = length + 1), as VbglR3GuestPropRead/Write do.
# Calling convention: see vmmdev.s.  Every wrapper returns eax = status.  Clobbers the
# caller-saved registers.  Not reentrant (one static request, see hgcm.s).
#
# gp_connect() -> eax status, edx client id
# gp_get_prop(client, name, buf, cb, ptimestamp64, psize) -> eax
#   GET_PROP: buf gets "value\0flags\0"; *ptimestamp64 (u64) out: the property's
#   timestamp; *psize (u32) out: the bytes needed (also on VERR_BUFFER_OVERFLOW).
# gp_set_prop(client, name, value, flags) -> eax
#   SET_PROP with the flags string, or SET_PROP_VALUE (no flags: they become none) when
#   flags is 0.
# gp_del_prop(client, name) -> eax
# gp_enum_props(client, patterns, cbpatterns, buf, cb, psize) -> eax
#   ENUM_PROPS: patterns is a buffer of cbpatterns bytes ('|' or NUL separated, the last
#   byte a NUL; "" = all); buf gets name\0value\0timestamp\0flags\0 per property and four
#   NULs; *psize (u32) out: the bytes needed.
# gp_get_notification(client, patterns, ptimestamp64, buf, cb, psize) -> eax
#   GET_NOTIFICATION: *ptimestamp64 (u64) in: the last change seen (0: wait for the next),
#   out: this change's; buf gets name\0value\0flags\0 and "1\0" for a deletion ("0\0"
#   otherwise); *psize (u32) out: the bytes needed.  May complete asynchronously: the call
#   waits (hgcm.s) until the host completes it.
# gp_get_notification_start(client, patterns, ptimestamp64, buf, cb) -> eax = header.rc
#   The same call submitted without waiting (hgcm_call_start): VINF_HGCM_ASYNC_EXECUTE
#   while the host keeps it; then wait with hgcm_await(hgcm_call_req, rc) and read the
#   timestamp and size with hgcm_parm_get_u64(1) / hgcm_parm_get_u32(3), or cancel it with
#   hgcm_cancel2(hgcm_call_req).

.include "sfwrap.s"
.include "args.s"

# Buffer size of the NUL-terminated string at argument ARG: str_len + 1.
.if MODE == 64
.macro gpw_size_cstr arg
    mov rdi, qword ptr [rbp+\arg]
    call str_len
    lea r12d, [eax+1]
.endm
.else
.macro gpw_size_cstr arg
    ccall1 str_len, [ebp+\arg]
    lea esi, [eax+1]
.endm
.endif
.macro gpw_cstr idx, arg
    gpw_size_cstr \arg
    sfw_buf \idx, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, \arg
.endm

gp_connect:
    ccall1 hgcm_connect, gp_service_name
    ret

sfw_arg GP_NAME, 1, 1
sfw_arg GP_ARG2, 2, 2
sfw_arg GP_ARG3, 3, 3
sfw_arg GP_ARG4, 4, 4
sfw_arg GP_ARG5, 5, 5

gp_get_prop:
    sfw_enter
    sfw_begin GUEST_PROP_FN_GET_PROP, GUEST_PROP_CPARMS_GET_PROP
    gpw_cstr 0, GP_NAME
    sfw_size_u32 GP_ARG3
    sfw_buf 1, VBOX_HGCM_F_PARM_DIRECTION_FROM_HOST, GP_ARG2
    sfw_u64_zero 2
    sfw_u32i 3, 0
    sfw_call
    sfw_out64 2, GP_ARG4
    sfw_out32 3, GP_ARG5
    sfw_return

gp_set_prop:
    sfw_enter
.if MODE == 64
    cmp qword ptr [rbp+GP_ARG3], 0
.else
    cmp dword ptr [ebp+GP_ARG3], 0
.endif
    je gp_set_prop_value
    sfw_begin GUEST_PROP_FN_SET_PROP, GUEST_PROP_CPARMS_SET_PROP
    gpw_cstr 2, GP_ARG3
    jmp gp_set_prop_common
gp_set_prop_value:
    sfw_begin GUEST_PROP_FN_SET_PROP_VALUE, GUEST_PROP_CPARMS_SET_PROP_VALUE
gp_set_prop_common:
    gpw_cstr 0, GP_NAME
    gpw_cstr 1, GP_ARG2
    sfw_call
    sfw_return

gp_del_prop:
    sfw_enter
    sfw_begin GUEST_PROP_FN_DEL_PROP, GUEST_PROP_CPARMS_DEL_PROP
    gpw_cstr 0, GP_NAME
    sfw_call
    sfw_return

gp_enum_props:
    sfw_enter
    sfw_begin GUEST_PROP_FN_ENUM_PROPS, GUEST_PROP_CPARMS_ENUM_PROPS
    sfw_size_u32 GP_ARG2
    sfw_buf 0, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, GP_NAME
    sfw_size_u32 GP_ARG4
    sfw_buf 1, VBOX_HGCM_F_PARM_DIRECTION_FROM_HOST, GP_ARG3
    sfw_u32i 2, 0
    sfw_call
    sfw_out32 2, GP_ARG5
    sfw_return

.macro gpw_notification_parms
    sfw_begin GUEST_PROP_FN_GET_NOTIFICATION, GUEST_PROP_CPARMS_GET_NOTIFICATION
    gpw_cstr 0, GP_NAME
    sfw_u64p 1, GP_ARG2
    sfw_size_u32 GP_ARG4
    sfw_buf 2, VBOX_HGCM_F_PARM_DIRECTION_FROM_HOST, GP_ARG3
    sfw_u32i 3, 0
.endm

gp_get_notification_start:
    sfw_enter
    gpw_notification_parms
    call hgcm_call_start
    mov ebx, eax
    sfw_return

gp_get_notification:
    sfw_enter
    gpw_notification_parms
    sfw_call
    sfw_out64 1, GP_ARG2
    sfw_out32 3, GP_ARG5
    sfw_return

gp_service_name: .asciz "VBoxGuestPropSvc"
