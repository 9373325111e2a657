# log.s - VirtualBox backdoor log (BACKDOOR_LOG_PORT, one byte per `out`; a line ends at
# '\n') and the exit device.  Calling convention: see vmmdev.s.
#
# log_char(c)              write one byte.                 Clobbers rax rdx / eax edx.
# log_string(str)          write a NUL-terminated string.  Clobbers rax rcx rdx / eax ecx edx.
# log_hex32(value)         write 8 upper-case hex digits.  Clobbers rax rcx rdx / eax ecx edx.
# log_bytes(ptr, n)        write n bytes (any values).    Clobbers rax rcx rdx / eax ecx edx.
# log_dec32(value)         signed decimal (no padding).
# log_udec32(value)        unsigned decimal.
# log_octal(value)         unsigned octal, no prefix.
# log_dec64p(ptr)          signed decimal of the 64-bit integer at ptr (a pointer, so the
#                          call is the same in both modes).
#   The number routines clobber rax rcx rdx rsi rdi r8 (64) / eax ecx edx (32).
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

log_bytes:
    mov rcx, rsi
    mov edx, BACKDOOR_LOG_PORT
log_bytes_next:
    test rcx, rcx
    jz log_bytes_done
    mov al, byte ptr [rdi]
    out dx, al
    inc rdi
    dec rcx
    jmp log_bytes_next
log_bytes_done:
    ret

log_dec32:
    movsxd rax, edi
    jmp log_signed
log_dec64p:
    mov rax, qword ptr [rdi]
log_signed:
    mov ecx, 10
    test rax, rax
    jns log_num
    mov rsi, rax
    mov edx, BACKDOOR_LOG_PORT
    mov al, '-'
    out dx, al
    mov rax, rsi
    neg rax
    jmp log_num
log_udec32:
    mov eax, edi
    mov ecx, 10
    jmp log_num
log_octal:
    mov eax, edi
    mov ecx, 8
# rax = unsigned value, ecx = base (<= 10)
log_num:
    mov r8, rcx
    xor esi, esi
log_num_div:
    xor edx, edx
    div r8
    push rdx
    inc esi
    test rax, rax
    jnz log_num_div
    mov edx, BACKDOOR_LOG_PORT
log_num_out:
    pop rax
    add al, '0'
    out dx, al
    dec esi
    jnz log_num_out
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

log_bytes:
    mov ecx, dword ptr [esp + 4]
    mov edx, BACKDOOR_LOG_PORT
log_bytes_next:
    cmp dword ptr [esp + 8], 0
    je log_bytes_done
    mov al, byte ptr [ecx]
    out dx, al
    inc ecx
    dec dword ptr [esp + 8]
    jmp log_bytes_next
log_bytes_done:
    ret

log_dec32:
    mov eax, dword ptr [esp + 4]
    cdq
    jmp log_signed
log_dec64p:
    mov ecx, dword ptr [esp + 4]
    mov eax, dword ptr [ecx]
    mov edx, dword ptr [ecx + 4]
log_signed:
    mov ecx, 10
    test edx, edx
    jns log_num
    push eax
    push edx
    mov edx, BACKDOOR_LOG_PORT
    mov al, '-'
    out dx, al
    pop edx
    pop eax
    neg eax
    adc edx, 0
    neg edx
    jmp log_num
log_udec32:
    mov eax, dword ptr [esp + 4]
    xor edx, edx
    mov ecx, 10
    jmp log_num
log_octal:
    mov eax, dword ptr [esp + 4]
    xor edx, edx
    mov ecx, 8
# edx:eax = unsigned value, ecx = base (<= 10)
log_num:
    push ebx
    push esi
    push edi
    mov ebx, ecx
    mov esi, eax
    mov edi, edx
    xor ecx, ecx
log_num_div:
    xor edx, edx
    mov eax, edi
    div ebx
    mov edi, eax
    mov eax, esi
    div ebx
    mov esi, eax
    push edx
    inc ecx
    or eax, edi
    jnz log_num_div
    mov edx, BACKDOOR_LOG_PORT
log_num_out:
    pop eax
    add al, '0'
    out dx, al
    dec ecx
    jnz log_num_out
    pop edi
    pop esi
    pop ebx
    ret

exit:
    mov eax, dword ptr [esp + 4]
    out EXIT_PORT, eax
exit_halt:
    hlt
    jmp exit_halt
.endif
