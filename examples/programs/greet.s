# greet.s - the smallest useful guest: log a line, exit with code 7.
.include "ccall.s"

_start:
    ccall1 log_string, greeting
    ccall1 exit, 7

greeting: .asciz "hello from examples/programs/greet.s\n"

.include "log.s"
