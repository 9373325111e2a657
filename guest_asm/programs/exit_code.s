# exit_code.s - exit with EXIT_CODE (a define, default 42) through the exit device.
.include "ccall.s"

.ifndef EXIT_CODE
.equ EXIT_CODE, 42
.endif

_start:
    ccall1 exit, EXIT_CODE

.include "log.s"
