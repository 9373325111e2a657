# ccall.s - mode-neutral call macros for programs: ccall0 .. ccall6 fn, args...
# 64-bit: args go to rdi, rsi, rdx, rcx, r8, r9.  32-bit: args are stored into a cdecl
# frame through eax, then popped after the call.  Arguments are registers, immediates,
# labels or bracketed memory without spaces (e.g. [ebp+8]); eax/rax may not be an argument
# (it is the scratch register of the 32-bit form) and 64-bit register args must not be
# overwritten by earlier ones (pass them in rdi, rsi, ... order or use callee-saved regs).
# ccall5/ccall6 (64-bit) load r8/r9 first, so those arguments may not use rdi..rcx either
# way round: keep them in memory, immediates or callee-saved registers.

.if MODE == 64
.macro ccall0 fn
    call \fn
.endm
.macro ccall1 fn, a
    mov rdi, \a
    call \fn
.endm
.macro ccall2 fn, a, b
    mov rdi, \a
    mov rsi, \b
    call \fn
.endm
.macro ccall3 fn, a, b, c
    mov rdi, \a
    mov rsi, \b
    mov rdx, \c
    call \fn
.endm
.macro ccall4 fn, a, b, c, d
    mov rdi, \a
    mov rsi, \b
    mov rdx, \c
    mov rcx, \d
    call \fn
.endm
.macro ccall5 fn, a, b, c, d, e
    mov r8, \e
    ccall4 \fn, \a, \b, \c, \d
.endm
.macro ccall6 fn, a, b, c, d, e, f
    mov r8, \e
    mov r9, \f
    ccall4 \fn, \a, \b, \c, \d
.endm
.else
.macro ccarg slot, value
    mov eax, \value
    mov [esp+\slot], eax
.endm
.macro ccall0 fn
    call \fn
.endm
.macro ccall1 fn, a
    sub esp, 4
    ccarg 0, \a
    call \fn
    add esp, 4
.endm
.macro ccall2 fn, a, b
    sub esp, 8
    ccarg 0, \a
    ccarg 4, \b
    call \fn
    add esp, 8
.endm
.macro ccall3 fn, a, b, c
    sub esp, 12
    ccarg 0, \a
    ccarg 4, \b
    ccarg 8, \c
    call \fn
    add esp, 12
.endm
.macro ccall4 fn, a, b, c, d
    sub esp, 16
    ccarg 0, \a
    ccarg 4, \b
    ccarg 8, \c
    ccarg 12, \d
    call \fn
    add esp, 16
.endm
.macro ccall5 fn, a, b, c, d, e
    sub esp, 20
    ccarg 0, \a
    ccarg 4, \b
    ccarg 8, \c
    ccarg 12, \d
    ccarg 16, \e
    call \fn
    add esp, 20
.endm
.macro ccall6 fn, a, b, c, d, e, f
    sub esp, 24
    ccarg 0, \a
    ccarg 4, \b
    ccarg 8, \c
    ccarg 12, \d
    ccarg 16, \e
    ccarg 20, \f
    call \fn
    add esp, 24
.endm
.endif
