# mem.s - memory helpers.  Calling convention: see vmmdev.s.
#
# mem_equal(a, b, n) -> eax = 1 when the n bytes at a and b are equal, else 0.
#   Clobbers rcx rdx rsi rdi (64) / ecx edx (32).

.if MODE == 64
mem_equal:
    mov ecx, edx
    xor eax, eax
    repe cmpsb
    sete al
    ret
.else
mem_equal:
    push esi
    push edi
    mov esi, dword ptr [esp + 12]
    mov edi, dword ptr [esp + 16]
    mov ecx, dword ptr [esp + 20]
    xor eax, eax
    repe cmpsb
    sete al
    pop edi
    pop esi
    ret
.endif
