"""Guest-visible errors from guest code: a write to a read-only mapping, a path escaping
the root, a bad handle, an unknown function and an unknown request type each give the
reference's status and change nothing on the host."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import RunEnd
from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import ShflCf

CREATE_NEW_WRITE = int(ShflCf.ACT_CREATE_IF_NEW | ShflCf.ACT_FAIL_IF_EXISTS | ShflCf.ACCESS_WRITE)
OPEN_EXISTING_RW = int(ShflCf.ACT_OPEN_IF_EXISTS | ShflCf.ACT_FAIL_IF_NEW | ShflCf.ACCESS_READWRITE)

PROGRAM = """
.include "tool.s"

_start:
    ccall2 tool_start, 0, usage
    ccall2 tool_open_spec, obj_ro, spec_ro_new
    ccall3 tool_create, obj_ro, {create_new_write}, 420
    mov [status_ro_create], eax
    ccall2 tool_open_spec, obj_ro2, spec_ro_existing
    ccall3 tool_create, obj_ro2, {open_existing_rw}, 0
    mov [status_ro_open], eax
    ccall3 tool_write, obj_ro2, payload, 5
    mov [status_ro_write], eax
    ccall2 tool_open_spec, obj_escape, spec_escape
    ccall3 tool_create, obj_escape, {create_new_write}, 420
    mov [status_escape], eax
    ccall2 tool_open_spec, obj_bad, spec_rw_file
    mov dword ptr [obj_bad + 8], 0x7777
    mov dword ptr [obj_bad + 12], 0
    ccall3 tool_read, obj_bad, buffer, 16
    mov [status_bad_handle], eax
    ccall3 hgcm_call_begin, [tool_client], 99, 0
    call hgcm_call
    mov [status_bad_function], eax
    ccall1 vmmdev_request, bogus_request
    mov [status_bad_type], eax
    ccall1 log_dec32, [status_ro_create]
    ccall1 log_char, 10
    ccall1 log_dec32, [status_ro_open]
    ccall1 log_char, 10
    ccall1 log_dec32, [status_ro_write]
    ccall1 log_char, 10
    ccall1 log_dec32, [status_escape]
    ccall1 log_char, 10
    ccall1 log_dec32, [status_bad_handle]
    ccall1 log_char, 10
    ccall1 log_dec32, [status_bad_function]
    ccall1 log_char, 10
    ccall1 log_dec32, [status_bad_type]
    ccall1 log_char, 10
    call tool_finish

usage: .asciz "errors"
spec_ro_new: .asciz "ro:/new.txt"
spec_ro_existing: .asciz "ro:/file.txt"
spec_escape: .asciz "rw:/sub/../../outside.txt"
spec_rw_file: .asciz "rw:/file.txt"
payload: .ascii "XXXXX"
.align 8
status_ro_create: .long 0
status_ro_open: .long 0
status_ro_write: .long 0
status_escape: .long 0
status_bad_handle: .long 0
status_bad_function: .long 0
status_bad_type: .long 0
.align 16
bogus_request:
    .long 32, 0x10001, 9999, -1, 0, 2, 0xaaaaaaaa, 0xaaaaaaaa
.align 16
obj_ro: .space 1056
obj_ro2: .space 1056
obj_escape: .space 1056
obj_bad: .space 1056
buffer: .space 64
"""


def _tree(root: Path) -> dict[str, str]:
    snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            snapshot[str(path.relative_to(root))] = digest
    return snapshot


@pytest.mark.parametrize("mode", [64, 32])
def test_reference_statuses_reach_the_guest_and_the_host_is_unchanged(tmp_path: Path, mode: int) -> None:
    (tmp_path / "rw" / "sub").mkdir(parents=True)
    (tmp_path / "rw" / "file.txt").write_bytes(b"writable")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "file.txt").write_bytes(b"read-only data")
    before = _tree(tmp_path)
    machine = vbox_board(mode)
    machine.add_share("rw", tmp_path / "rw")
    machine.add_share("ro", tmp_path / "ro", writable=False)
    source = PROGRAM.format(create_new_write=CREATE_NEW_WRITE, open_existing_rw=OPEN_EXISTING_RW)
    machine.load(assemble(source, mode=mode, filename="errors.s"))
    result = machine.run()
    assert result.end is RunEnd.EXIT and result.exit_code == 0, result.log_lines
    statuses = [int(line) for line in result.log_lines]
    assert statuses == [
        Status.VERR_WRITE_PROTECT,        # CREATE_IF_NEW on a read-only mapping
        Status.VINF_SUCCESS,              # opening an existing file read-write (write dropped)
        Status.VERR_WRITE_PROTECT,        # WRITE through it
        Status.VERR_INVALID_NAME,         # ".." escaping the share root
        Status.VERR_INVALID_HANDLE,       # READ with a handle never opened
        Status.VERR_NOT_IMPLEMENTED,      # function 99
        Status.VERR_NOT_IMPLEMENTED,      # request type 9999
    ]
    assert _tree(tmp_path) == before


def test_guest_tools_cannot_reach_outside_the_share_through_links_or_dotdot(tmp_path: Path) -> None:
    """The same confinement from guest code: cat through an escaping symlink, cat of a
    `..` path, and cp onto an escaping dangling link all fail and the outside is untouched."""
    share, outside = tmp_path / "share", tmp_path / "outside"
    share.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"TOPSECRET")
    (share / "inside.txt").write_bytes(b"inside")
    (share / "rel_out").symlink_to("../outside")
    (share / "dangling").symlink_to(outside / "created.txt")
    before = _tree(tmp_path)
    programs = Path(__file__).resolve().parents[2] / "guest_asm" / "programs"
    outcomes = []
    for program, args in (("cat.s", ["d:/rel_out/secret.txt"]), ("cat.s", ["d:/../outside/secret.txt"]),
                          ("cp.s", ["d:/inside.txt", "d:/dangling"])):
        machine = vbox_board(64)
        machine.add_share("d", share)
        machine.set_arguments(args)
        machine.load(assemble(programs / program, mode=64))
        result = machine.run()
        outcomes.append((result.exit_code, result.log_lines[-1].rsplit(": ", 1)[-1]))
        assert not any("TOPSECRET" in line for line in result.log_lines)
    assert outcomes == [(3, str(int(Status.VERR_ACCESS_DENIED))), (3, str(int(Status.VERR_INVALID_NAME))),
                        (3, str(int(Status.VERR_ACCESS_DENIED)))]
    assert _tree(tmp_path) == before
