# demo_poll_async.s - demo.s after the driver's load sequence (vmmdev_driver_init), with
# interrupts left disabled: every asynchronous HGCM completion is found by polling the
# DONE flag (hgcm.s wait mode 0).  Either mode; the VMMDev at its default port.
# Expects a writable share "demo"; creates hello.txt like demo.s; logs the sf: lines.
# Exit code: sf_roundtrip's (0 success, 1-14), 21 driver init failed.

.include "ccall.s"

_start:
    ccall0 vmmdev_driver_init
    test eax, eax
    jz demo_poll_ready
    ccall1 exit, 21
demo_poll_ready:
    ccall4 sf_roundtrip, demo_share, demo_file, demo_message, demo_message_end - demo_message
.if MODE == 64
    ccall1 exit, rax
.else
    ccall1 exit, eax
.endif

.include "vmmdev_init.s"
.include "sf_roundtrip.s"

demo_share:   .asciz "demo"
demo_file:    .asciz "hello.txt"
demo_message: .ascii "Hello from the hgcmlab guest!\n"
demo_message_end:
