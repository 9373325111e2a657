# shflstring.s - build Shared Folders structures in guest memory.
# Calling convention: see vmmdev.s.
#
# shfl_string_init(dst, str) -> eax = total bytes (header + u16Size)
#   UTF-8 SHFLSTRING from a NUL-terminated string: u16Length = strlen, u16Size = strlen + 1,
#   bytes and terminator copied.  Clobbers rcx rdx (64) / ecx edx (32).
# shfl_string_init_n(dst, str, n) -> eax = total bytes
#   Like shfl_string_init from the first n bytes of str (not NUL-terminated).
#   Clobbers rcx rdx (64) / ecx edx (32).
# shfl_string_init_buffer(dst, total) -> eax = total
#   An empty output string of `total` bytes: u16Size = total - 4, u16Length = 0, NUL.
# shfl_create_parms_init(parms, create_flags, mode)
#   Zeroed SHFLCREATEPARMS with Handle = SHFL_HANDLE_NIL, CreateFlags, Info.Attr.fMode =
#   mode and enmAdditional = SHFLFSOBJATTRADD_NOTHING (what Linux vboxsf sends).
#   Clobbers rax rcx (64) / eax ecx (32).
# shfl_string_total(str) -> eax = SHFLSTRING_HEADER_SIZE + u16Size

.if MODE == 64
shfl_string_init:
    xor ecx, ecx
shfl_string_init_copy:
    mov al, byte ptr [rsi + rcx]
    mov byte ptr [rdi + rcx + SHFLSTRING_HEADER_SIZE], al
    inc ecx
    test al, al
    jnz shfl_string_init_copy
    mov word ptr [rdi + SHFLSTRINGHEADER_OFF_U16SIZE], cx
    lea eax, [ecx + SHFLSTRING_HEADER_SIZE]
    dec ecx
    mov word ptr [rdi + SHFLSTRINGHEADER_OFF_U16LENGTH], cx
    ret

shfl_string_init_n:
    mov edx, edx
    mov word ptr [rdi + SHFLSTRINGHEADER_OFF_U16LENGTH], dx
    lea eax, [edx + 1]
    mov word ptr [rdi + SHFLSTRINGHEADER_OFF_U16SIZE], ax
    mov byte ptr [rdi + rdx + SHFLSTRING_HEADER_SIZE], 0
shfl_string_init_n_copy:
    test edx, edx
    jz shfl_string_init_n_done
    dec edx
    mov cl, byte ptr [rsi + rdx]
    mov byte ptr [rdi + rdx + SHFLSTRING_HEADER_SIZE], cl
    jmp shfl_string_init_n_copy
shfl_string_init_n_done:
    add eax, SHFLSTRING_HEADER_SIZE
    ret

shfl_string_init_buffer:
    # Not `lea eax, [esi - SHFLSTRING_HEADER_SIZE]`: keystone drops the minus before a
    # symbol inside brackets (it encoded [esi + 4]; the front end now rejects that).
    mov eax, esi
    sub eax, SHFLSTRING_HEADER_SIZE
    mov word ptr [rdi + SHFLSTRINGHEADER_OFF_U16SIZE], ax
    mov word ptr [rdi + SHFLSTRINGHEADER_OFF_U16LENGTH], 0
    mov byte ptr [rdi + SHFLSTRING_HEADER_SIZE], 0
    mov eax, esi
    ret

shfl_string_total:
    movzx eax, word ptr [rdi + SHFLSTRINGHEADER_OFF_U16SIZE]
    add eax, SHFLSTRING_HEADER_SIZE
    ret

shfl_create_parms_init:
    xor eax, eax
    mov ecx, SHFLCREATEPARMS_SIZE - 1
shfl_create_parms_zero:
    mov byte ptr [rdi + rcx], al
    dec ecx
    jns shfl_create_parms_zero
    mov qword ptr [rdi + SHFLCREATEPARMS_OFF_HANDLE], -1
    mov dword ptr [rdi + SHFLCREATEPARMS_OFF_CREATEFLAGS], esi
    mov dword ptr [rdi + SHFLCREATEPARMS_OFF_FMODE], edx
    mov dword ptr [rdi + SHFLCREATEPARMS_OFF_ENMADDITIONAL], SHFLFSOBJATTRADD_NOTHING
    ret
.else
shfl_string_init:
    push esi
    push edi
    mov edi, dword ptr [esp + 12]
    mov esi, dword ptr [esp + 16]
    xor ecx, ecx
shfl_string_init_copy:
    mov al, byte ptr [esi + ecx]
    mov byte ptr [edi + ecx + SHFLSTRING_HEADER_SIZE], al
    inc ecx
    test al, al
    jnz shfl_string_init_copy
    mov word ptr [edi + SHFLSTRINGHEADER_OFF_U16SIZE], cx
    lea eax, [ecx + SHFLSTRING_HEADER_SIZE]
    dec ecx
    mov word ptr [edi + SHFLSTRINGHEADER_OFF_U16LENGTH], cx
    pop edi
    pop esi
    ret

shfl_string_init_n:
    push esi
    push edi
    mov edi, dword ptr [esp + 12]
    mov esi, dword ptr [esp + 16]
    mov edx, dword ptr [esp + 20]
    mov word ptr [edi + SHFLSTRINGHEADER_OFF_U16LENGTH], dx
    lea eax, [edx + 1]
    mov word ptr [edi + SHFLSTRINGHEADER_OFF_U16SIZE], ax
    mov byte ptr [edi + edx + SHFLSTRING_HEADER_SIZE], 0
shfl_string_init_n_copy:
    test edx, edx
    jz shfl_string_init_n_done
    dec edx
    mov cl, byte ptr [esi + edx]
    mov byte ptr [edi + edx + SHFLSTRING_HEADER_SIZE], cl
    jmp shfl_string_init_n_copy
shfl_string_init_n_done:
    add eax, SHFLSTRING_HEADER_SIZE
    pop edi
    pop esi
    ret

shfl_string_init_buffer:
    mov ecx, dword ptr [esp + 4]
    mov eax, dword ptr [esp + 8]
    sub eax, SHFLSTRING_HEADER_SIZE
    mov word ptr [ecx + SHFLSTRINGHEADER_OFF_U16SIZE], ax
    mov word ptr [ecx + SHFLSTRINGHEADER_OFF_U16LENGTH], 0
    mov byte ptr [ecx + SHFLSTRING_HEADER_SIZE], 0
    mov eax, dword ptr [esp + 8]
    ret

shfl_string_total:
    mov ecx, dword ptr [esp + 4]
    movzx eax, word ptr [ecx + SHFLSTRINGHEADER_OFF_U16SIZE]
    add eax, SHFLSTRING_HEADER_SIZE
    ret

shfl_create_parms_init:
    push edi
    mov edi, dword ptr [esp + 8]
    xor eax, eax
    mov ecx, SHFLCREATEPARMS_SIZE - 1
shfl_create_parms_zero:
    mov byte ptr [edi + ecx], al
    dec ecx
    jns shfl_create_parms_zero
    mov dword ptr [edi + SHFLCREATEPARMS_OFF_HANDLE], -1
    mov dword ptr [edi + SHFLCREATEPARMS_OFF_HANDLE + 4], -1
    mov eax, dword ptr [esp + 12]
    mov dword ptr [edi + SHFLCREATEPARMS_OFF_CREATEFLAGS], eax
    mov eax, dword ptr [esp + 16]
    mov dword ptr [edi + SHFLCREATEPARMS_OFF_FMODE], eax
    mov dword ptr [edi + SHFLCREATEPARMS_OFF_ENMADDITIONAL], SHFLFSOBJATTRADD_NOTHING
    pop edi
    ret
.endif
