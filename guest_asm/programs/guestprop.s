# guestprop.s - read, write, list and wait for guest properties (either mode), like
# VBoxControl guestproperty.
# usage: guestprop get NAME
#        guestprop set NAME VALUE [FLAGS]     (without FLAGS: SET_PROP_VALUE, flags none)
#        guestprop del NAME
#        guestprop enum [PATTERNS]            ('|'-separated; none: all)
#        guestprop wait PATTERNS              (waits for the next matching change)
# Output (log lines):
#   get:  "Value: V", "Timestamp: T", "Flags: F"
#   enum: "Name: N, value: V, timestamp: T, flags: F" per property, in the host's order
#   wait: "Name: N, value: V, timestamp: T, flags: F" or "Name: N, timestamp: T, deleted"
# Exit codes: 0 done, 1 usage, 2 connect failed, 3 the call failed
# ("error: get NAME: -78").

.include "gp.s"
.include "log.s"
.include "mem.s"

.equ GPT_EXIT_USAGE, 1
.equ GPT_EXIT_CONNECT, 2
.equ GPT_EXIT_FAILED, 3
.equ GPT_BUF_SIZE, 65536

# Jump to `target` when argument 0 is the NUL-terminated word at `word` (n bytes with NUL).
.macro gpt_command word, n, target
    ccall3 mem_equal, [gpt_cmd], \word, \n
    test eax, eax
    jnz \target
.endm
# When eax (a status) is negative: log "error: <what> <arg 1>: <status>", exit 3.
.macro gpt_check what
    test eax, eax
    jns gpt_check_ok_\@
    mov dword ptr [gpt_status], eax
    ccall1 gpt_die, \what
gpt_check_ok_\@:
.endm
# Store argument i (pointer, 0 when absent) at `slot`.
.macro gpt_arg i, slot
    ccall1 args_get, \i
    mov dword ptr [\slot], eax
.endm

_start:
    call args_count
    mov dword ptr [gpt_argc], eax
    cmp eax, 1
    jb gpt_usage
    gpt_arg 0, gpt_cmd
    gpt_arg 1, gpt_a1
    gpt_arg 2, gpt_a2
    gpt_arg 3, gpt_a3
    call gp_connect
    test eax, eax
    jns gpt_connected
    mov dword ptr [gpt_status], eax
    ccall1 log_string, gpt_msg_connect
    ccall1 log_dec32, [gpt_status]
    ccall1 log_char, 10
    ccall1 exit, GPT_EXIT_CONNECT
gpt_connected:
    mov dword ptr [gpt_client], edx
    gpt_command gpt_word_get, 4, gpt_get
    gpt_command gpt_word_set, 4, gpt_set
    gpt_command gpt_word_del, 4, gpt_del
    gpt_command gpt_word_enum, 5, gpt_enum
    gpt_command gpt_word_wait, 5, gpt_wait
gpt_usage:
    ccall1 log_string, gpt_msg_usage
    ccall1 exit, GPT_EXIT_USAGE

gpt_need:                       # eax = the argument count the command needs
    cmp dword ptr [gpt_argc], eax
    jb gpt_usage
    ret

gpt_get:
    mov eax, 2
    call gpt_need
    ccall6 gp_get_prop, [gpt_client], [gpt_a1], gpt_buf, GPT_BUF_SIZE, gpt_timestamp, gpt_size
    gpt_check gpt_word_get
    ccall1 log_string, gpt_msg_value
    ccall1 log_string, gpt_buf
    ccall1 log_char, 10
    ccall1 log_string, gpt_msg_timestamp
    ccall1 log_dec64p, gpt_timestamp
    ccall1 log_char, 10
    ccall1 str_len, gpt_buf
    lea eax, [eax + gpt_buf + 1]
    mov dword ptr [gpt_p], eax
    ccall1 log_string, gpt_msg_flags
    ccall1 log_string, [gpt_p]
    ccall1 log_char, 10
    jmp gpt_done

gpt_set:
    mov eax, 3
    call gpt_need
    ccall4 gp_set_prop, [gpt_client], [gpt_a1], [gpt_a2], [gpt_a3]
    gpt_check gpt_word_set
    jmp gpt_done

gpt_del:
    mov eax, 2
    call gpt_need
    ccall2 gp_del_prop, [gpt_client], [gpt_a1]
    gpt_check gpt_word_del
    jmp gpt_done

gpt_enum:
    mov eax, gpt_empty
    cmp dword ptr [gpt_a1], 0
    jne gpt_enum_patterns
    mov dword ptr [gpt_a1], eax
gpt_enum_patterns:
    ccall1 str_len, [gpt_a1]
    inc eax
    mov dword ptr [gpt_size], eax
    ccall6 gp_enum_props, [gpt_client], [gpt_a1], [gpt_size], gpt_buf, GPT_BUF_SIZE, gpt_size
    gpt_check gpt_word_enum
    mov dword ptr [gpt_p], gpt_buf
gpt_enum_next:
    mov ecx, dword ptr [gpt_p]
    cmp byte ptr [ecx], 0
    je gpt_done
    call gpt_fields
    ccall1 log_string, gpt_msg_name
    ccall1 log_string, [gpt_f0]
    ccall1 log_string, gpt_msg_comma_value
    ccall1 log_string, [gpt_f1]
    ccall1 log_string, gpt_msg_comma_timestamp
    ccall1 log_string, [gpt_f2]
    ccall1 log_string, gpt_msg_comma_flags
    ccall1 log_string, [gpt_f3]
    ccall1 log_char, 10
    jmp gpt_enum_next

gpt_wait:
    mov eax, 2
    call gpt_need
    ccall6 gp_get_notification, [gpt_client], [gpt_a1], gpt_timestamp, gpt_buf, GPT_BUF_SIZE, gpt_size
    gpt_check gpt_word_wait
    mov dword ptr [gpt_p], gpt_buf
    call gpt_fields
    ccall1 log_string, gpt_msg_name
    ccall1 log_string, [gpt_f0]
    mov ecx, dword ptr [gpt_f3]
    cmp byte ptr [ecx], '1'
    je gpt_wait_deleted
    ccall1 log_string, gpt_msg_comma_value
    ccall1 log_string, [gpt_f1]
    ccall1 log_string, gpt_msg_comma_timestamp
    ccall1 log_dec64p, gpt_timestamp
    ccall1 log_string, gpt_msg_comma_flags
    ccall1 log_string, [gpt_f2]
    jmp gpt_wait_end
gpt_wait_deleted:
    ccall1 log_string, gpt_msg_comma_timestamp
    ccall1 log_dec64p, gpt_timestamp
    ccall1 log_string, gpt_msg_deleted
gpt_wait_end:
    ccall1 log_char, 10
    jmp gpt_done

# Split four NUL-terminated strings starting at [gpt_p] into gpt_f0..gpt_f3; [gpt_p]
# then points after the fourth.
gpt_fields:
    mov dword ptr [gpt_i], 0
gpt_fields_next:
    mov ecx, dword ptr [gpt_i]
    mov eax, dword ptr [gpt_p]
    mov dword ptr [gpt_f0 + ecx*8], eax
    ccall1 str_len, [gpt_p]
    inc eax
    add dword ptr [gpt_p], eax
    inc dword ptr [gpt_i]
    cmp dword ptr [gpt_i], 4
    jb gpt_fields_next
    ret

# gpt_die(what): log "error: <what> <arg 1>: <gpt_status>" and exit 3.
gpt_die:
.if MODE == 64
    mov dword ptr [gpt_what], edi
.else
    mov eax, dword ptr [esp + 4]
    mov dword ptr [gpt_what], eax
.endif
    ccall1 log_string, gpt_msg_error
    ccall1 log_string, [gpt_what]
    cmp dword ptr [gpt_a1], 0
    je gpt_die_status
    ccall1 log_char, ' '
    ccall1 log_string, [gpt_a1]
gpt_die_status:
    ccall1 log_string, gpt_msg_colon
    ccall1 log_dec32, [gpt_status]
    ccall1 log_char, 10
    ccall1 exit, GPT_EXIT_FAILED

gpt_done:
    ccall1 hgcm_disconnect, [gpt_client]
    ccall1 exit, 0

gpt_word_get:  .asciz "get"
gpt_word_set:  .asciz "set"
gpt_word_del:  .asciz "del"
gpt_word_enum: .asciz "enum"
gpt_word_wait: .asciz "wait"
gpt_empty:     .asciz ""
gpt_msg_usage: .asciz "usage: guestprop get NAME | set NAME VALUE [FLAGS] | del NAME | enum [PATTERNS] | wait PATTERNS\n"
gpt_msg_connect: .asciz "error: connect: "
gpt_msg_error: .asciz "error: "
gpt_msg_colon: .asciz ": "
gpt_msg_value: .asciz "Value: "
gpt_msg_timestamp: .asciz "Timestamp: "
gpt_msg_flags: .asciz "Flags: "
gpt_msg_name:  .asciz "Name: "
gpt_msg_comma_value: .asciz ", value: "
gpt_msg_comma_timestamp: .asciz ", timestamp: "
gpt_msg_comma_flags: .asciz ", flags: "
gpt_msg_deleted: .asciz ", deleted"
.align 8
gpt_argc:   .quad 0
gpt_cmd:    .quad 0
gpt_a1:     .quad 0
gpt_a2:     .quad 0
gpt_a3:     .quad 0
gpt_client: .quad 0
gpt_status: .quad 0
gpt_what:   .quad 0
gpt_p:      .quad 0
gpt_i:      .quad 0
gpt_size:   .quad 0
gpt_timestamp: .quad 0
gpt_f0:     .quad 0
gpt_f1:     .quad 0
gpt_f2:     .quad 0
gpt_f3:     .quad 0
.align 4096
gpt_buf:    .space GPT_BUF_SIZE
