"""Reproducible mode seen from guest code: what a guest reads back after creating and
writing a file, and for a file that existed before the run.

The guest brackets each call with rdtsc (the virtual clock, 1 cycle = 1 ns) and checks the
returned SHFLFSOBJINFO itself: times are the epoch plus the virtual time of the call that
set them, an unchanged pre-existing file shows the epoch, node ids count objects by first
use, owner ids are 0.  Each failed check exits with its own code.
"""

from __future__ import annotations

import os
from pathlib import Path

from hgcmlab.devices.vmmdev.config import CYCLES_PER_MILLISECOND, DEFAULT_EPOCH_MS
from hgcmlab.guest_asm import assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import RunEnd

EPOCH_NS = DEFAULT_EPOCH_MS * CYCLES_PER_MILLISECOND

PROGRAM = r"""
.include "tool.s"

.macro read_tsc dst
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov qword ptr [\dst], rax
.endm
# exit with `code` unless lo < [base + off] - EPOCH_NS <= hi
.macro check_window base, off, lo, hi, code
    mov r15d, \code
    mov rbx, \base
    mov rax, qword ptr [rbx + \off]
    mov rcx, EPOCH_NS
    sub rax, rcx
    cmp rax, qword ptr [\lo]
    jbe rp_fail
    cmp rax, qword ptr [\hi]
    ja rp_fail
.endm
# exit with `code` unless the u64 at [base + off] equals the one at [other]
.macro check_same base, off, other, code
    mov r15d, \code
    mov rbx, \base
    mov rax, qword ptr [rbx + \off]
    cmp rax, qword ptr [\other]
    jne rp_fail
.endm
# exit with `code` unless the u64 at [base + off] equals EPOCH_NS
.macro check_epoch base, off, code
    mov r15d, \code
    mov rbx, \base
    mov rax, qword ptr [rbx + \off]
    mov rcx, EPOCH_NS
    cmp rax, rcx
    jne rp_fail
.endm
# exit with `code` unless the u32 at [base + off] equals value
.macro check_u32 base, off, value, code
    mov r15d, \code
    mov rbx, \base
    cmp dword ptr [rbx + \off], \value
    jne rp_fail
.endm

_start:
    ccall2 tool_start, 2, rp_usage
    ccall2 tool_open_arg, rp_new, 0
    ccall2 tool_open_arg, rp_old, 1
    read_tsc rp_t0
    ccall3 tool_create, rp_new, SHFL_CF_ACT_CREATE_IF_NEW|SHFL_CF_ACT_FAIL_IF_EXISTS|SHFL_CF_ACCESS_READWRITE, RTFS_TYPE_FILE|0x1A4
    mov dword ptr [rp_status], eax
    read_tsc rp_t1
    mov eax, dword ptr [rp_status]
    tool_check TOOL_EXIT_FAILED, rp_m_create, rp_new
    # the new file: all four times are the virtual time of CREATE
    check_window tool_parms, SHFLCREATEPARMS_OFF_INFO_ACCESSTIME, rp_t0, rp_t1, 10
    check_window tool_parms, SHFLCREATEPARMS_OFF_INFO_MODIFICATIONTIME, rp_t0, rp_t1, 11
    check_window tool_parms, SHFLCREATEPARMS_OFF_INFO_CHANGETIME, rp_t0, rp_t1, 12
    check_window tool_parms, SHFLCREATEPARMS_OFF_INFO_BIRTHTIME, rp_t0, rp_t1, 13
    # first object the run used: node 1 of share 1, owned by 0:0
    check_u32 tool_parms, SHFLCREATEPARMS_OFF_INFO_ATTR_U_INODEID, 1, 14
    check_u32 tool_parms, SHFLCREATEPARMS_OFF_INFO_ATTR_U_INODEIDDEVICE, 1, 15
    check_u32 tool_parms, SHFLCREATEPARMS_OFF_INFO_ATTR_U_UID, 0, 16
    check_u32 tool_parms, SHFLCREATEPARMS_OFF_INFO_ATTR_U_GID, 0, 17
    mov rbx, tool_parms
    mov rax, qword ptr [rbx + SHFLCREATEPARMS_OFF_INFO_BIRTHTIME]
    mov qword ptr [rp_created], rax

    read_tsc rp_t2
    ccall3 tool_write, rp_new, rp_data, 5
    mov dword ptr [rp_status], eax
    read_tsc rp_t3
    mov eax, dword ptr [rp_status]
    tool_check TOOL_EXIT_FAILED, rp_m_write, rp_new
    ccall2 tool_fsinfo, rp_new, rp_info
    tool_check TOOL_EXIT_FAILED, rp_m_info, rp_new
    # the write moved modification and change time to its own virtual time, nothing else
    check_window rp_info, SHFLFSOBJINFO_OFF_MODIFICATIONTIME, rp_t2, rp_t3, 20
    check_window rp_info, SHFLFSOBJINFO_OFF_CHANGETIME, rp_t2, rp_t3, 21
    check_same rp_info, SHFLFSOBJINFO_OFF_ACCESSTIME, rp_created, 22
    check_same rp_info, SHFLFSOBJINFO_OFF_BIRTHTIME, rp_created, 23
    check_u32 rp_info, SHFLFSOBJINFO_OFF_CBOBJECT, 5, 24
    check_u32 rp_info, SHFLFSOBJINFO_OFF_CBALLOCATED, 4096, 25
    check_u32 rp_info, SHFLFSOBJINFO_OFF_INODEID, 1, 26

    # a file that existed before the run: the epoch, whatever the host says;
    # node 3 (node 2 is the share root, whose entry list CREATE changed)
    ccall3 tool_create, rp_old, SHFL_CF_LOOKUP|SHFL_CF_ACT_FAIL_IF_NEW, 0
    tool_check TOOL_EXIT_FAILED, rp_m_lookup, rp_old
    check_epoch tool_parms, SHFLCREATEPARMS_OFF_INFO_ACCESSTIME, 30
    check_epoch tool_parms, SHFLCREATEPARMS_OFF_INFO_MODIFICATIONTIME, 31
    check_epoch tool_parms, SHFLCREATEPARMS_OFF_INFO_CHANGETIME, 32
    check_epoch tool_parms, SHFLCREATEPARMS_OFF_INFO_BIRTHTIME, 33
    check_u32 tool_parms, SHFLCREATEPARMS_OFF_INFO_ATTR_U_INODEID, 3, 34
    call tool_finish

rp_fail:
    ccall1 exit, r15

rp_usage: .asciz "reproducible NEW OLD"
rp_m_create: .asciz "create"
rp_m_write: .asciz "write"
rp_m_info: .asciz "info"
rp_m_lookup: .asciz "lookup"
rp_data: .ascii "hello"
.align 8
rp_t0: .quad 0
rp_t1: .quad 0
rp_t2: .quad 0
rp_t3: .quad 0
rp_created: .quad 0
rp_status: .quad 0
rp_info: .space SHFLFSOBJINFO_SIZE
.align 8
rp_new: .space TF_SIZE
rp_old: .space TF_SIZE
"""


def _run(share: Path, *, reproducible: bool) -> tuple[int, list[str]]:
    program = assemble(PROGRAM, mode=64, defines={"EPOCH_NS": EPOCH_NS})
    machine = vbox_board(64, reproducible=reproducible)
    try:
        machine.add_share("d", share)
        machine.load(program)
        machine.set_arguments(["d:/new.txt", "d:/old.txt"])
        result = machine.run()
    finally:
        machine.close()
    assert result.end is RunEnd.EXIT, result.fault
    return result.exit_code, result.log_lines


def _share_with_old_file(root: Path) -> Path:
    share = root / "share"
    share.mkdir()
    old = share / "old.txt"
    old.write_text("from before the run\n")
    os.utime(old, ns=(946_684_800_000_000_000, 2_000_000_000_000_000_000))  # 2000 and 2033
    return share


def test_guest_sees_virtual_times_node_ids_and_the_epoch(tmp_path: Path) -> None:
    code, log = _run(_share_with_old_file(tmp_path), reproducible=True)
    assert code == 0, log


def test_without_the_option_the_guest_sees_host_times(tmp_path: Path) -> None:
    # The same checks fail at the first one when the share shows the host's times (the
    # host created the file in 2026 by the wall clock, not at the epoch plus a few cycles).
    code, log = _run(_share_with_old_file(tmp_path), reproducible=False)
    assert code == 10, log
