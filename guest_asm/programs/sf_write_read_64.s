# sf_write_read_64.s - write a file and read it back with HGCMCall64 (assemble with mode=64).
# Expects a writable share named "demo".  Creates write_read_64.txt in it, writes MESSAGE, reads
# it back, compares, closes; logs one line per step.  Exit code 0 on success, otherwise
# the failing step's code (see lib/sf_roundtrip.s: 1 guest info ... 14 disconnect).

.include "ccall.s"

_start:
.if MODE != 64
    ud2                 # assembled for the wrong mode: fault at once
.endif
    ccall4 sf_roundtrip, demo_share, demo_file, demo_message, demo_message_end - demo_message
.if MODE == 64
    ccall1 exit, rax
.else
    ccall1 exit, eax
.endif

.include "sf_roundtrip.s"

demo_share:   .asciz "demo"
demo_file:    .asciz "write_read_64.txt"
demo_message: .ascii "HGCMCall64 write/read round trip\n"
demo_message_end:
