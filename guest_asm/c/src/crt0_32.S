/* crt0_32.S - entry of 32-bit C guests.  The machine enters _start in flat protected mode
 * with edi = argc, esi = ARGS_BASE and esp at the top of RAM (the public contract). */
    .text
    .globl _start
    .type _start, @function
_start:
    movl %esp, %eax          /* the top of RAM, before any push */
    andl $-16, %esp
    xorl %ebp, %ebp
    subl $4, %esp            /* keep 16-byte alignment after the three pushes */
    pushl %eax               /* ram top */
    pushl %esi               /* block */
    pushl %edi               /* argc */
    call hg_cstart           /* cdecl; never returns */
1:  hlt
    jmp 1b
    .size _start, . - _start
    .section .note.GNU-stack, "", @progbits
