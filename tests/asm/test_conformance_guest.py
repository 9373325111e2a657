"""Shared Folders conformance pinned from guest code: assembled 64- and 32-bit guest
programs drive CREATE through the VMMDev request port and see VirtualBox 7.0.14's answers.

These complement tests/conformance/ (which drives the service directly): the same
VirtualBox branches, observed the way a guest driver observes them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import RunEnd
from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCf, ShflCreateResult

CF = ShflCf
READ_REPLACE = int(CF.ACCESS_READ | CF.ACT_REPLACE_IF_EXISTS | CF.ACT_FAIL_IF_NEW)
READ_OVERWRITE = int(CF.ACCESS_READ | CF.ACT_OVERWRITE_IF_EXISTS | CF.ACT_FAIL_IF_NEW)
READ_OPEN = int(CF.ACCESS_READ | CF.ACT_OPEN_IF_EXISTS | CF.ACT_FAIL_IF_NEW)

# Each CREATE logs: status, Result, Handle low and high dword (unsigned decimal).  The last
# open is followed by a READ of the file: its status, the count and the bytes themselves.
PROGRAM = """
.include "tool.s"

_start:
    ccall2 tool_start, 0, usage
    ccall2 tool_open_spec, obj, spec_file
    ccall3 tool_create, obj, {read_replace}, 0
    call report_create
    ccall3 tool_create, obj, {read_overwrite}, 0
    call report_create
    ccall3 tool_create, obj, {read_open}, 0
    call report_create
    ccall3 tool_read, obj, buffer, 64
    mov dword ptr [saved], eax
    mov dword ptr [count], edx
    ccall1 log_dec32, [saved]
    ccall1 log_char, 10
    ccall1 log_udec32, [count]
    ccall1 log_char, 10
    ccall2 log_bytes, buffer, [count]
    ccall1 log_char, 10
    call tool_finish

# report_create: log eax (the CREATE status), then Result and Handle from tool_parms.
report_create:
    mov dword ptr [saved], eax
    ccall1 log_dec32, [saved]
    ccall1 log_char, 10
    mov ecx, tool_parms
    mov eax, dword ptr [ecx + SHFLCREATEPARMS_OFF_RESULT]
    mov dword ptr [saved], eax
    ccall1 log_udec32, [saved]
    ccall1 log_char, 10
    mov ecx, tool_parms
    mov eax, dword ptr [ecx + SHFLCREATEPARMS_OFF_HANDLE]
    mov dword ptr [saved], eax
    ccall1 log_udec32, [saved]
    ccall1 log_char, 10
    mov ecx, tool_parms
    mov eax, dword ptr [ecx + SHFLCREATEPARMS_OFF_HANDLE + 4]
    mov dword ptr [saved], eax
    ccall1 log_udec32, [saved]
    ccall1 log_char, 10
    ret

usage: .asciz "conformance"
spec_file: .asciz "d:/keep.txt"
.align 8
saved: .quad 0
count: .quad 0
.align 16
obj: .space 1056
buffer: .space 64
"""

_NIL_LO, _NIL_HI = SHFL_HANDLE_NIL & 0xFFFFFFFF, SHFL_HANDLE_NIL >> 32


@pytest.mark.shfl("CREATE", "READ")
@pytest.mark.parametrize("mode", [64, 32])
def test_guest_read_only_replace_is_refused_and_the_file_keeps_its_bytes(tmp_path: Path, mode: int) -> None:
    """Read-only access with REPLACE_IF_EXISTS / OVERWRITE_IF_EXISTS and FAIL_IF_NEW, from a guest.

    VirtualBox maps these to RTFILE_O_OPEN | RTFILE_O_TRUNCATE with RTFILE_O_READ, which
    IPRT's flag validation refuses (truncation needs write access): VERR_INVALID_PARAMETER,
    Result NO_RESULT, Handle NIL, nothing on the host touched.  The handle was allocated
    before RTFileOpenEx and freed again, so the two refusals move the allocation cursor:
    the following open gets handle 3 (slots 1 and 2 were taken and freed).
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfConvertFileOpenFlags, HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile, Runtime/r3/fileio.cpp:rtFileRecalcAndValidateFlags, HostServices/SharedFolders/shflhandle.cpp:vbsfAllocHandle
    """
    share = tmp_path / "share"
    share.mkdir()
    (share / "keep.txt").write_bytes(b"precious bytes")
    machine = vbox_board(mode)
    machine.add_share("d", share)
    source = PROGRAM.format(read_replace=READ_REPLACE, read_overwrite=READ_OVERWRITE,
                            read_open=READ_OPEN)
    machine.load(assemble(source, mode=mode, filename="conformance_create.s"))
    result = machine.run()
    assert result.end is RunEnd.EXIT and result.exit_code == 0, result.log_lines
    refused = [str(int(Status.VERR_INVALID_PARAMETER)), str(int(ShflCreateResult.NO_RESULT)),
               str(_NIL_LO), str(_NIL_HI)]
    assert result.log_lines == refused + refused + [
        "0", str(int(ShflCreateResult.FILE_EXISTS)), "3", "0",   # opened: handle 3
        "0", "14", "precious bytes",                             # READ sees every byte
    ]
    assert (share / "keep.txt").read_bytes() == b"precious bytes"


DIR_OPEN = int(CF.DIRECTORY | CF.ACCESS_READ | CF.ACT_OPEN_IF_EXISTS | CF.ACT_FAIL_IF_NEW)
LOOKUP = int(CF.LOOKUP)

# Logs: LOOKUP of "keep.txt/" (status, Result), a directory handle used for READ (status),
# closing it (status), READ with SHFL_HANDLE_ROOT (status).
HANDLE_PROGRAM = """
.include "tool.s"

_start:
    ccall2 tool_start, 0, usage
    ccall2 tool_open_spec, obj_slash, spec_slash
    ccall3 tool_create, obj_slash, {lookup}, 0
    mov ecx, tool_parms
    mov eax, dword ptr [ecx + SHFLCREATEPARMS_OFF_RESULT]
    mov dword ptr [saved], eax
    ccall1 log_udec32, [saved]
    ccall1 log_char, 10
    ccall2 tool_open_spec, obj_dir, spec_dir
    ccall3 tool_create, obj_dir, {dir_open}, 0
    call report
    ccall3 tool_read, obj_dir, buffer, 4
    call report
    ccall1 tool_close, obj_dir
    call report
    mov ebx, obj_dir
    mov dword ptr [ebx + TF_HANDLE], 0
    mov dword ptr [ebx + TF_HANDLE + 4], 0
    ccall3 tool_read, obj_dir, buffer, 4
    call report
    call tool_finish

report:
    mov dword ptr [saved], eax
    ccall1 log_dec32, [saved]
    ccall1 log_char, 10
    ret

usage: .asciz "conformance"
spec_slash: .asciz "d:/keep.txt/"
spec_dir: .asciz "d:/sub"
.align 8
saved: .quad 0
.align 16
obj_slash: .space 1056
obj_dir: .space 1056
buffer: .space 64
"""


@pytest.mark.shfl("CREATE", "READ", "CLOSE")
@pytest.mark.parametrize("mode", [64, 32])
def test_guest_trailing_delimiter_and_handle_checks(tmp_path: Path, mode: int) -> None:
    """From a guest: LOOKUP of "file/" is PATH_NOT_FOUND (the host stats "file/": ENOTDIR);
    READ through a directory handle is VERR_INVALID_HANDLE (no file handle of that value),
    CLOSE of it succeeds; READ with SHFL_HANDLE_ROOT is svcCall's VERR_INVALID_PARAMETER.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfLookupFile, HostServices/SharedFolders/vbsf.cpp:vbsfRead, HostServices/SharedFolders/vbsf.cpp:vbsfClose, HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    share = tmp_path / "share"
    (share / "sub").mkdir(parents=True)
    (share / "keep.txt").write_bytes(b"precious bytes")
    machine = vbox_board(mode)
    machine.add_share("d", share)
    source = HANDLE_PROGRAM.format(lookup=LOOKUP, dir_open=DIR_OPEN)
    machine.load(assemble(source, mode=mode, filename="conformance_handles.s"))
    result = machine.run()
    assert result.end is RunEnd.EXIT and result.exit_code == 0, result.log_lines
    assert result.log_lines == [
        str(int(ShflCreateResult.PATH_NOT_FOUND)),
        "0",                                        # the directory opened
        str(int(Status.VERR_INVALID_HANDLE)),       # READ through it
        "0",                                        # CLOSE
        str(int(Status.VERR_INVALID_PARAMETER)),    # READ with SHFL_HANDLE_ROOT
    ]
    assert (share / "keep.txt").read_bytes() == b"precious bytes"
