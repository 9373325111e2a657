"""A guest disconnects while its asynchronous READ is in flight (issue 12).

VirtualBox's HGCM service thread handles a client's messages in order: the READ's
SVC_MSG_GUESTCALL is handled (Shared Folders completes it inside pfnCall, VMMDevHGCM.cpp
writes results and DONE) before the SVC_MSG_DISCONNECT that HGCMService::DisconnectClient
(Main/src-client/HGCM.cpp) sends behind it; the disconnect completes after that.  So by the
time the guest sees the disconnect DONE, the READ is DONE with its data, and nothing is
written for the client afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev.abi import VBOX_HGCM_REQ_DONE
from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.guest_asm import assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import RunEnd
from hgcmlab.machine.tracing import ListSink
from hgcmlab.services.sharedfolders.abi import ShflFn

READ_LATENCY = 50_000
READ_SIZE = 4 * 1024 * 1024
READ_BUF = 0x800000
POISON = 0x55555555
VINF_HGCM_ASYNC_EXECUTE = 2903

PROGRAM = """
.include "ccall.s"
.equ READ_BUF, {read_buf:#x}
.equ READ_SIZE, {read_size:#x}
.equ WAIT_CYCLES, {wait_cycles}
_start:
    ccall1 hgcm_connect, service
    test eax, eax
    jz connected
    ccall1 exit, 10
connected:
    mov dword ptr [client], edx
    ccall1 sf_set_utf8, [client]
    ccall2 shfl_string_init, name_buf, share
    ccall2 sf_map_folder, [client], name_buf
    test eax, eax
    jz mapped
    ccall1 exit, 11
mapped:
    mov dword ptr [root], edx
    ccall2 shfl_string_init, name_buf, file
    ccall3 shfl_create_parms_init, parms, SHFL_CF_ACT_OPEN_IF_EXISTS | SHFL_CF_ACT_FAIL_IF_NEW | SHFL_CF_ACCESS_READ, 0
    ccall4 sf_create, [client], [root], name_buf, parms
    test eax, eax
    jz opened
    ccall1 exit, 12
opened:
    mov eax, parms
    mov ecx, dword ptr [eax + SHFLCREATEPARMS_OFF_HANDLE]
    mov dword ptr [handle], ecx
    mov ecx, dword ptr [eax + SHFLCREATEPARMS_OFF_HANDLE + 4]
    mov dword ptr [handle + 4], ecx
    # READ(root, handle, offset 0, READ_SIZE, LinAddr_Out buffer), started without waiting.
    ccall3 hgcm_call_begin, [client], SHFL_FN_READ, SHFL_CPARMS_READ
    ccall2 hgcm_parm_u32, 0, [root]
.if MODE == 64
    ccall2 hgcm_parm_u64, 1, [handle]
    ccall2 hgcm_parm_u64, 2, 0
.else
    ccall3 hgcm_parm_u64, 1, [handle], [handle + 4]
    ccall3 hgcm_parm_u64, 2, 0, 0
.endif
    ccall2 hgcm_parm_u32, 3, READ_SIZE
    ccall4 hgcm_parm_linaddr, 4, VMMDevHGCMParmType_LinAddr_Out, READ_BUF, READ_SIZE
    ccall0 hgcm_call_start
    mov dword ptr [read_rc], eax
    # Disconnect (waits for its DONE), then look at the READ request.
    ccall1 hgcm_disconnect, [client]
    mov dword ptr [disconnect_status], eax
    mov ecx, hgcm_call_req
    mov eax, dword ptr [ecx + HGCMCALL_OFF_FU32FLAGS]
    mov dword ptr [read_flags], eax
    mov eax, dword ptr [ecx + HGCMCALL_OFF_RESULT]
    mov dword ptr [read_result], eax
    # Poison what the READ writes, wait well past its latency: nothing may change.
    mov dword ptr [ecx + HGCMCALL_OFF_FU32FLAGS], 0
    mov dword ptr [ecx + HGCMCALL_OFF_RESULT], {poison:#x}
    mov eax, READ_BUF
    mov dword ptr [eax], {poison:#x}
    rdtsc
    mov ecx, eax
wait_loop:
    pause
    rdtsc
    sub eax, ecx
    cmp eax, WAIT_CYCLES
    jb wait_loop
    ccall1 exit, 0
.include "sf.s"
.include "log.s"
service: .asciz "VBoxSharedFolders"
share: .asciz "demo"
file: .asciz "data.bin"
.align 8
client: .quad 0
root: .quad 0
handle: .quad 0
read_rc: .long 0
disconnect_status: .long 1
read_flags: .long 0
read_result: .long 1
.align 8
parms: .space SHFLCREATEPARMS_SIZE
.align 8
name_buf: .space SHFLSTRING_HEADER_SIZE + 64
"""


@pytest.mark.parametrize("mode", (64, 32))
def test_disconnect_completes_after_the_clients_in_flight_read(tmp_path: Path, mode: int) -> None:
    content = bytes(range(256)) * (READ_SIZE // 256)
    (tmp_path / "data.bin").write_bytes(content)
    # The READ completes READ_LATENCY cycles after its submission; the (synchronous)
    # disconnect would cost far less.
    timing = HgcmTiming(call_cycles=1000, byte_cycles=0, function_cycles={ShflFn.READ: READ_LATENCY},
                        async_functions=frozenset({ShflFn.READ}))
    machine = vbox_board(mode, vmmdev_config=VMMDevConfig(timing=timing))
    try:
        sink = ListSink()
        machine.tracer.add_sink(sink)
        machine.add_share("demo", tmp_path)
        source = PROGRAM.format(read_buf=READ_BUF, read_size=READ_SIZE, wait_cycles=4 * READ_LATENCY,
                                poison=POISON)
        program = assemble(source, mode=mode)
        machine.load(program)
        result = machine.run()
        assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.fault and result.fault.format()
        memory = machine.memory

        def u32(symbol: str) -> int:
            return memory.read_u32(program.symbols[symbol])

        assert u32("read_rc") == VINF_HGCM_ASYNC_EXECUTE, "the READ was in flight at the disconnect"
        assert u32("disconnect_status") == 0
        assert u32("read_flags") & VBOX_HGCM_REQ_DONE, "READ DONE before the disconnect's"
        assert u32("read_result") == 0, "VINF_SUCCESS"
        # Nothing was written for the disconnected client afterwards.
        request = program.symbols["hgcm_call_req"]
        assert memory.read_u32(request + 24) == 0
        assert memory.read_u32(request + 28) == POISON
        assert memory.read_u32(READ_BUF) == POISON
        # The data the READ delivered (past the poisoned first dword) is the file's.
        assert memory.read(READ_BUF + 4, 4096) == content[4:4100]
        completions = [(e.fields["command"], e.fields["cancelled"]) for e in sink.of_kind("hgcm_complete")]
        assert completions[-2:] == [("call", False), ("disconnect", False)]
        read_done = [e for e in sink.of_kind("hgcm_complete") if e.fields["command"] == "call"][-1]
        assert read_done.fields["latency"] >= READ_LATENCY, "the READ kept its modelled latency"
    finally:
        machine.close()
