# demo.s - the program behind `hgcmlab demo` (64- or 32-bit).
# Expects a writable share named "demo".  Creates hello.txt in it, writes MESSAGE, reads
# it back, compares, closes; logs one line per step.  Exit code 0 on success, otherwise
# the failing step's code (see lib/sf_roundtrip.s: 1 guest info ... 14 disconnect).

.include "ccall.s"

_start:
    ccall4 sf_roundtrip, demo_share, demo_file, demo_message, demo_message_end - demo_message
.if MODE == 64
    ccall1 exit, rax
.else
    ccall1 exit, eax
.endif

.include "sf_roundtrip.s"

demo_share:   .asciz "demo"
demo_file:    .asciz "hello.txt"
demo_message: .ascii "Hello from the hgcmlab guest!\n"
demo_message_end:
