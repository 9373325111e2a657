"""INFORMATION SET of modes from an assembled 64-bit guest (conformance with VirtualBox 7.0.14).

VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSetFileInfo, Runtime/generic/RTDirSetMode-generic.cpp:RTDirSetMode,
Runtime/r3/posix/fileio-posix.cpp:RTFileSetMode, Runtime/r3/fs.cpp:rtFsModeNormalize
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hgcmlab.guest_asm import assemble
from hgcmlab.machine.boards import vbox_board

PROGRAM = r"""
.include "tool.s"
.include "sf_client.s"

.macro show2 name
    mov dword ptr [w_status], eax
    mov dword ptr [w_second], edx
    ccall1 log_string, \name
    ccall1 log_dec32, [w_status]
    ccall1 log_char, ' '
    ccall1 log_dec32, [w_second]
    ccall1 log_char, 10
.endm
.macro set_mode obj, fmode
    mov ecx, w_info
    mov dword ptr [ecx + SHFLFSOBJINFO_OFF_FMODE], \fmode
    mov dword ptr [w_cb], SHFLFSOBJINFO_SIZE
    mov ebx, \obj
    mov edi, dword ptr [tool_client]
    mov esi, dword ptr [rbx + TF_ROOT]
    mov rdx, qword ptr [rbx + TF_HANDLE]
    mov ecx, SHFL_INFO_SET|SHFL_INFO_FILE
    mov r8d, w_cb
    mov r9d, w_info
    call sf_information
    mov edx, dword ptr [w_cb]
.endm

_start:
    ccall2 tool_start, 2, w_usage
    ccall2 tool_open_arg, w_d, 0
    ccall2 tool_open_arg, w_f, 1
    ccall3 tool_create, w_d, SHFL_CF_DIRECTORY|SHFL_CF_ACT_OPEN_IF_EXISTS|SHFL_CF_ACT_FAIL_IF_NEW|SHFL_CF_ACCESS_READ, 0
    ccall3 tool_create, w_f, SHFL_CF_ACT_OPEN_IF_EXISTS|SHFL_CF_ACT_FAIL_IF_NEW|SHFL_CF_ACCESS_READWRITE, 0
    set_mode w_d, RTFS_DOS_READONLY
    show2 w_m_dir
    mov ecx, w_info
    mov eax, dword ptr [ecx + SHFLFSOBJINFO_OFF_FMODE]
    mov edx, eax
    show2 w_m_mode
    set_mode w_f, 0x1A4
    show2 w_m_file
    call tool_finish

w_usage: .asciz "setmode DIR FILE"
w_m_dir: .asciz "dir "
w_m_mode: .asciz "mode "
w_m_file: .asciz "file "
.align 8
w_status: .quad 0
w_second: .quad 0
w_cb: .quad 0
.align 8
w_info: .space SHFLFSOBJINFO_SIZE
.align 8
w_d: .space TF_SIZE
.align 8
w_f: .space TF_SIZE
"""


@pytest.mark.shfl("INFORMATION")
def test_set_mode_on_a_directory_and_a_typeless_mode_on_a_file_from_a_guest(tmp_path: Path) -> None:
    """A guest sets DOS read-only on a directory (IPRT makes it 0777) and typeless 0644 on a file (ignored).

    RTDirSetMode marks a DOS-only mode DIRECTORY and rtFsModeFromDos ignores read-only on
    directories; RTFileSetMode refuses a Unix mode without type or DOS bits, which
    vbsfSetFileInfo turns into success.  Both calls answer 0 with cb 92.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSetFileInfo, Runtime/generic/RTDirSetMode-generic.cpp:RTDirSetMode, Runtime/r3/fs.cpp:rtFsModeFromDos, Runtime/r3/posix/fileio-posix.cpp:RTFileSetMode
    """
    (tmp_path / "dir").mkdir(mode=0o700)
    os.chmod(tmp_path / "dir", 0o700)
    (tmp_path / "f.bin").write_bytes(b"x")
    os.chmod(tmp_path / "f.bin", 0o600)
    machine = vbox_board(mode=64)
    machine.add_share("d", tmp_path)
    machine.set_arguments(["d:/dir", "d:/f.bin"])
    machine.load(assemble(PROGRAM, mode=64))
    result = machine.run()
    assert result.fault is None, result.fault.format()
    assert result.exit_code == 0, result.log_lines
    # fMode written back: DOS_DIRECTORY | TYPE_DIRECTORY | 0777 = 0x104000 | 0o777.
    assert result.log_lines == ["dir 0 92", f"mode {0x100000 | 0o40777} {0x100000 | 0o40777}", "file 0 92"]
    assert os.stat(tmp_path / "dir").st_mode & 0o7777 == 0o777
    assert os.stat(tmp_path / "f.bin").st_mode & 0o7777 == 0o600
