/* crt0_64.S - entry of 64-bit C guests.  The machine enters _start in long mode with
 * rdi = argc, rsi = ARGS_BASE and rsp at the top of RAM (the public contract). */
    .text
    .globl _start
    .type _start, @function
_start:
    movq %rsp, %rdx          /* the top of RAM, before any push */
    andq $-16, %rsp          /* the SysV ABI wants 16-byte alignment at the call */
    xorl %ebp, %ebp          /* the outermost frame, for debuggers */
    call hg_cstart           /* (argc, block, ram top) in rdi, rsi, rdx; never returns */
1:  hlt
    jmp 1b
    .size _start, . - _start
    .section .note.GNU-stack, "", @progbits
