# args.s - the program argument block (filled by `hgcmlab run PROG -- ARG...` or
# Machine.set_arguments).  Layout at guest address ARGS_BASE (0x1000): +0 u32 argc,
# +4 u32 total block size, +8 argc x u32 offsets (from ARGS_BASE) of NUL-terminated UTF-8
# strings, the strings follow.  On entry rdi/edi = argc and rsi/esi = ARGS_BASE; these
# routines read the block itself, so a program need not keep those registers.
# Calling convention: see vmmdev.s.
#
# args_count() -> eax = argc                                  Clobbers nothing else.
# args_get(i) -> rax/eax = pointer to argument i, or 0 when i >= argc.
#   Clobbers rcx rdx / ecx edx.
# str_len(s) -> eax = bytes before the NUL.                   Clobbers rcx/ecx.
# (Pointers are below 4 GiB: the 64-bit forms return zero-extended 32-bit pointers.)
# args_split_spec(spec) -> rax/eax = pointer to PATH, edx = length of SHARE
#   For "SHARE:PATH" (split at the first ':'): PATH is the text after the ':' (may be
#   empty); the string is not modified.  Without a ':' (or with an empty SHARE) -> 0.
#   Clobbers rcx/ecx.

.ifndef ARGS_BASE
.equ ARGS_BASE, 0x1000
.endif
.equ ARGS_OFF_ARGC, 0
.equ ARGS_OFF_SIZE, 4
.equ ARGS_OFF_OFFSETS, 8

args_count:
    mov eax, ARGS_BASE
    mov eax, dword ptr [eax + ARGS_OFF_ARGC]
    ret

# The bodies below address through 32-bit registers (memory is below 4 GiB), so one text
# serves both modes once the argument is in edx / eax.
args_get:
.if MODE == 64
    mov edx, edi
.else
    mov edx, dword ptr [esp + 4]
.endif
    xor eax, eax
    mov ecx, ARGS_BASE
    cmp edx, dword ptr [ecx + ARGS_OFF_ARGC]
    jae args_get_done
    mov eax, dword ptr [ecx + edx * 4 + ARGS_OFF_OFFSETS]
    add eax, ecx
args_get_done:
    ret

str_len:
.if MODE == 64
    mov ecx, edi
.else
    mov ecx, dword ptr [esp + 4]
.endif
    xor eax, eax
str_len_next:
    cmp byte ptr [ecx + eax], 0
    je str_len_done
    inc eax
    jmp str_len_next
str_len_done:
    ret

args_split_spec:
.if MODE == 64
    mov eax, edi
.else
    mov eax, dword ptr [esp + 4]
.endif
    xor edx, edx
args_split_next:
    mov cl, byte ptr [eax + edx]
    test cl, cl
    jz args_split_none
    cmp cl, ':'
    je args_split_found
    inc edx
    jmp args_split_next
args_split_found:
    test edx, edx
    jz args_split_none
    lea eax, [eax + edx + 1]
    ret
args_split_none:
    xor eax, eax
    ret
