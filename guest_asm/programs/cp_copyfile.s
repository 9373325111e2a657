# cp_copyfile.s - copy a file on the host side with COPY_FILE (either mode).
# usage: cp_copyfile SRC DST     e.g. cp_copyfile d:/notes.txt d:/copy.txt
# One COPY_FILE call (flags 0); DST must not exist yet (else VERR_ALREADY_EXISTS).
# Exit codes: 0 done, 1 usage, 2 connect/map failed, 3 COPY_FILE failed
# ("error: copy d:/notes.txt: -102").

.include "tool.s"

_start:
    ccall2 tool_start, 2, cpf_usage
    ccall2 tool_open_arg, cpf_src, 0
    ccall2 tool_open_arg, cpf_dst, 1
    ccall2 tool_copy_file, cpf_src, cpf_dst
    tool_check TOOL_EXIT_FAILED, cpf_msg_copy, cpf_src
    call tool_finish

cpf_usage:    .asciz "cp_copyfile SHARE:SRC SHARE:DST"
cpf_msg_copy: .asciz "copy"
.align 8
cpf_src: .space TF_SIZE
.align 8
cpf_dst: .space TF_SIZE
