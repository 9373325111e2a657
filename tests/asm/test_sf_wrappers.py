"""The Shared Folders wrappers the example programs do not use, called from a 64-bit guest."""

from __future__ import annotations

from pathlib import Path

from hgcmlab.guest_asm import assemble
from hgcmlab.machine.boards import vbox_board

PROGRAM = r"""
.include "tool.s"
.include "sf_client.s"

.macro show name
    mov dword ptr [w_status], eax
    ccall1 log_string, \name
    ccall1 log_dec32, [w_status]
    ccall1 log_char, 10
.endm
.macro show2 name
    mov dword ptr [w_status], eax
    mov dword ptr [w_second], edx
    ccall1 log_string, \name
    ccall1 log_dec32, [w_status]
    ccall1 log_char, ' '
    ccall1 log_dec32, [w_second]
    ccall1 log_char, 10
.endm
.macro handle_args obj
    mov ebx, \obj
    mov edi, dword ptr [tool_client]
    mov esi, dword ptr [rbx + TF_ROOT]
    mov rdx, qword ptr [rbx + TF_HANDLE]
.endm

_start:
    ccall2 tool_start, 2, w_usage
    ccall2 tool_open_arg, w_f, 0
    ccall2 tool_open_arg, w_g, 1
    ccall3 tool_create, w_f, SHFL_CF_ACT_OPEN_IF_EXISTS|SHFL_CF_ACT_FAIL_IF_NEW|SHFL_CF_ACCESS_READWRITE, 0
    show w_m_create
    handle_args w_f
    xor ecx, ecx
    mov r8d, 100
    mov r9d, SHFL_LOCK_SHARED
    call sf_lock
    show w_m_lock
    handle_args w_f
    mov ecx, 1000
    call sf_set_file_size
    show w_m_set_file_size
    handle_args w_f
    mov ecx, w_info
    call sf_fsinfo_get
    mov rcx, w_info
    mov edx, dword ptr [rcx]
    show2 w_m_fsinfo_get
    mov rcx, w_info
    mov qword ptr [rcx], 10
    handle_args w_f
    mov ecx, w_info
    call sf_fsinfo_set_size
    show w_m_set_size
    mov dword ptr [w_cb], SHFLFSOBJINFO_SIZE
    handle_args w_f
    mov ecx, SHFL_INFO_GET|SHFL_INFO_FILE
    mov r8d, w_cb
    mov r9d, w_info
    call sf_information
    mov edx, dword ptr [w_cb]
    show2 w_m_information
    ccall3 tool_create, w_g, SHFL_CF_ACT_CREATE_IF_NEW|SHFL_CF_ACT_FAIL_IF_EXISTS|SHFL_CF_ACCESS_READWRITE, RTFS_TYPE_FILE|0x1A4
    show w_m_create
    mov qword ptr [w_cb], 10
    mov ebx, w_g
    push 0
    push 0
    push w_cb
    push 0
    mov r9, qword ptr [rbx + TF_HANDLE]
    mov r8d, dword ptr [rbx + TF_ROOT]
    handle_args w_f
    xor ecx, ecx
    call sf_copy_file_part
    add rsp, 32
    mov edx, dword ptr [w_cb]
    show2 w_m_copy_part
    mov ebx, w_g
    lea edx, [rbx + TF_PATH]
    mov edi, dword ptr [tool_client]
    mov esi, dword ptr [rbx + TF_ROOT]
    mov ecx, SHFL_REMOVE_FILE
    mov r8, qword ptr [rbx + TF_HANDLE]
    call sf_close_and_remove
    show w_m_close_and_remove
    ccall2 sf_query_features, [tool_client], w_features
    show2 w_m_features
    ccall2 sf_set_error_style, [tool_client], SHFL_ERROR_STYLE_LINUX
    show w_m_style
    ccall2 sf_set_error_style, [tool_client], 7
    show w_m_style
    ccall1 sf_set_symlinks, [tool_client]
    show w_m_symlinks
    ccall2 shfl_string_init, tool_str, w_share
    ccall2 sf_map_folder_old, [tool_client], tool_str
    show2 w_m_map_old
    ccall2 shfl_string_init_buffer, w_name, 64
    ccall2 shfl_string_init_buffer, w_mount, 64
    ccall5 sf_query_map_info, [tool_client], [w_f], w_name, w_mount, w_features
    mov edx, dword ptr [w_features]
    show2 w_m_map_info
    ccall1 log_string, w_name + SHFLSTRING_HEADER_SIZE
    ccall1 log_char, 10
    ccall1 sf_cancel_mappings_changes_waits, [tool_client]
    show w_m_cancel
    ccall2 sf_wait_for_mappings_changes, [tool_client], w_version
    show w_m_wait
    call tool_finish

w_usage: .asciz "wrappers F G"
w_share: .asciz "d"
w_m_create: .asciz "create "
w_m_lock: .asciz "lock "
w_m_set_file_size: .asciz "set_file_size "
w_m_fsinfo_get: .asciz "fsinfo_get "
w_m_set_size: .asciz "fsinfo_set_size "
w_m_information: .asciz "information "
w_m_copy_part: .asciz "copy_file_part "
w_m_close_and_remove: .asciz "close_and_remove "
w_m_features: .asciz "query_features "
w_m_style: .asciz "set_error_style "
w_m_symlinks: .asciz "set_symlinks "
w_m_map_old: .asciz "map_folder_old "
w_m_map_info: .asciz "query_map_info "
w_m_cancel: .asciz "cancel_waits "
w_m_wait: .asciz "wait "
.align 8
w_status: .quad 0
w_second: .quad 0
w_cb: .quad 0
w_features: .quad 0
w_version: .quad 0
.align 8
w_info: .space SHFLFSOBJINFO_SIZE
.align 8
w_name: .space 64
.align 8
w_mount: .space 64
.align 8
w_f: .space TF_SIZE
.align 8
w_g: .space TF_SIZE
"""


def test_remaining_wrappers_from_a_guest(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"0123456789abcdef")
    machine = vbox_board(mode=64)
    machine.add_share("d", tmp_path)
    machine.set_arguments(["d:/f.bin", "d:/g.bin"])
    machine.load(assemble(PROGRAM, mode=64))
    result = machine.run()
    assert result.fault is None, result.fault.format()
    assert result.exit_code == 0, result.log_lines
    lines = result.log_lines
    assert lines[:5] == ["create 0", "lock 0", "set_file_size 0", "fsinfo_get 0 1000", "fsinfo_set_size 0"]
    assert lines[5:9] == ["information 0 92", "create 0", "copy_file_part 0 10", "close_and_remove 0"]
    assert lines[9:13] == ["query_features 0 29", "set_error_style 0", "set_error_style -22416",
                           "set_symlinks 0"]
    # MAP_FOLDER_OLD maps case-insensitively; the share is already mapped case-sensitively
    # by tool_open_spec, so the host refuses with VERR_INCOMPATIBLE_CONFIG.
    assert lines[13].startswith("map_folder_old -22420 ")
    assert lines[14].startswith("query_map_info 0 ") and lines[15] == "d"
    assert lines[16:] == ["cancel_waits 0", "wait -70"]
    assert (tmp_path / "f.bin").read_bytes() == b"0123456789"
    assert not (tmp_path / "g.bin").exists()
