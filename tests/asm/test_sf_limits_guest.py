"""Shared Folders' own HGCM limits, from guest code.

VBoxSharedFoldersSvc.cpp:VBoxHGCMSvcLoad replaces HGCM's defaults (HGCM.cpp:
HGCMService::loadServiceDLL: 2K/1K/1K clients, 8K/4K/2K calls per client) with its own:
``acMaxClients[i] = SHFL_MAX_MAPPINGS + 2`` in every category and ``acMaxCallsPerClient``
64K kernel / 16K root / 1K user.  HGCM.cpp:HGCMService::CreateAndConnectClient refuses the
client past the limit with VERR_HGCM_TOO_MANY_CLIENTS.  A guest without requestor
information is a legacy client, counted as a kernel one (``idxLegacyClientCategory``).
"""

from __future__ import annotations

import pytest

from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import RunEnd
from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import SHFL_MAX_MAPPINGS

GUEST = """
.include "ccall.s"
.include "hgcm.s"
_start:
    mov dword ptr [connected], 0
again:
    ccall1 hgcm_connect, {service}
    test eax, eax
    js refused
    inc dword ptr [connected]
    cmp dword ptr [connected], {attempts}
    jb again
    mov dword ptr [status], 0
    jmp other
refused:
    mov dword ptr [status], eax
other:
    ccall1 hgcm_connect, other_service
    mov dword ptr [other_status], eax
    mov eax, dword ptr [connected]
    out 0xf4, al
sf_service: .asciz "VBoxSharedFolders"
other_service: .asciz "VBoxGuestPropSvc"
.align 4
connected: .long 0
status: .long 0
other_status: .long 0
"""


@pytest.mark.parametrize("mode", [64, 32])
def test_the_sixty_seventh_shared_folders_client_is_refused(mode: int) -> None:
    program = assemble(GUEST.format(service="sf_service", attempts=SHFL_MAX_MAPPINGS + 10), mode=mode)
    machine = vbox_board(mode)
    machine.load(program)
    result = machine.run()
    status, other_status = (int.from_bytes(machine.memory.read(program.symbols[name], 4), "little", signed=True)
                            for name in ("status", "other_status"))
    machine.close()
    assert result.end is RunEnd.EXIT
    assert result.exit_code == SHFL_MAX_MAPPINGS + 2 == 66
    assert status == Status.VERR_HGCM_TOO_MANY_CLIENTS
    # Another service's clients are counted apart (HGCM's default limit there).
    assert other_status == Status.VINF_SUCCESS
