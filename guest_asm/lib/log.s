# log.s - VirtualBox backdoor log (BACKDOOR_LOG_PORT, one byte per `out`; a line ends at
# '\n') and the exit device.  Calling convention: see vmmdev.s.
#
# log_char(c)              write one byte.                 Clobbers rax rdx / eax edx.
# log_string(str)          write a NUL-terminated string.  Clobbers rax rcx rdx / eax ecx edx.
# log_hex32(value)         write 8 upper-case hex digits.  Clobbers rax rcx rdx / eax ecx edx.
# exit(code)               32-bit `out` of code to EXIT_PORT: the run ends with that exit
#                          code.  Does not return (halts if the machine goes on).

.if MODE == 64
log_char:
    mov eax, edi
    mov edx, BACKDOOR_LOG_PORT
    out dx, al
    ret

log_string:
    mov rcx, rdi
    mov edx, BACKDOOR_LOG_PORT
log_string_next:
    mov al, byte ptr [rcx]
    test al, al
    jz log_string_done
    out dx, al
    inc rcx
    jmp log_string_next
log_string_done:
    ret

log_hex32:
    mov edx, BACKDOOR_LOG_PORT
    mov ecx, 8
log_hex32_digit:
    rol edi, 4
    mov eax, edi
    and eax, 0xF
    add al, '0'
    cmp al, '9'
    jbe log_hex32_out
    add al, 'A' - '0' - 10
log_hex32_out:
    out dx, al
    dec ecx
    jnz log_hex32_digit
    ret

exit:
    mov eax, edi
    out EXIT_PORT, eax
exit_halt:
    hlt
    jmp exit_halt
.else
log_char:
    mov eax, dword ptr [esp + 4]
    mov edx, BACKDOOR_LOG_PORT
    out dx, al
    ret

log_string:
    mov ecx, dword ptr [esp + 4]
    mov edx, BACKDOOR_LOG_PORT
log_string_next:
    mov al, byte ptr [ecx]
    test al, al
    jz log_string_done
    out dx, al
    inc ecx
    jmp log_string_next
log_string_done:
    ret

log_hex32:
    push ebx
    mov ebx, dword ptr [esp + 8]
    mov edx, BACKDOOR_LOG_PORT
    mov ecx, 8
log_hex32_digit:
    rol ebx, 4
    mov eax, ebx
    and eax, 0xF
    add al, '0'
    cmp al, '9'
    jbe log_hex32_out
    add al, 'A' - '0' - 10
log_hex32_out:
    out dx, al
    dec ecx
    jnz log_hex32_digit
    pop ebx
    ret

exit:
    mov eax, dword ptr [esp + 4]
    out EXIT_PORT, eax
exit_halt:
    hlt
    jmp exit_halt
.endif
