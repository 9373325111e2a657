# hello_log.s - log one line on the backdoor log port and exit with code 0.
.include "ccall.s"

_start:
    ccall1 log_string, hello_message
    ccall1 exit, 0

hello_message: .asciz "hello from the guest\n"

.include "log.s"
