"""PCI discovery of VMMDev through configuration mechanism #1, from guest code."""

from __future__ import annotations

import pytest

from hgcmlab.devices.vmmdev.abi import VMMDEV_DEFAULT_PORT_BASE
from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import RunEnd
from hgcmlab.machine.pci import Bar, PciConfigSpace, PciFunction

# Scan bus 0 for 80EE:CAFE; keep devfn in ebp; report BAR0 base, BAR0 size, BAR1 size,
# the interrupt line and the class code through memory at 0x20000, then exit 0.
SCAN = """
_start:
    xor ebp, ebp
scan:
    mov eax, ebp
    shl eax, 8
    or eax, 0x80000000
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in eax, dx
    cmp eax, 0xcafe80ee
    je found
    inc ebp
    cmp ebp, 256
    jne scan
    mov al, 1
    out 0xf4, al
found:
    mov [0x20000], ebp
    # BAR0 (register 0x10): value, then size it
    mov eax, ebp
    shl eax, 8
    or eax, 0x80000010
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in eax, dx
    mov [0x20004], eax
    mov ebx, eax
    mov eax, 0xffffffff
    out dx, eax
    in eax, dx
    mov [0x20008], eax
    mov eax, ebx
    out dx, eax
    # BAR1 (register 0x14): size it
    mov eax, ebp
    shl eax, 8
    or eax, 0x80000014
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in eax, dx
    mov ebx, eax
    mov [0x2000c], eax
    mov eax, 0xffffffff
    out dx, eax
    in eax, dx
    mov [0x20010], eax
    mov eax, ebx
    out dx, eax
    # interrupt line/pin (register 0x3c), class (register 0x08) via byte lanes
    mov eax, ebp
    shl eax, 8
    or eax, 0x8000003c
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in al, dx
    mov [0x20014], al
    mov dx, 0xcfd
    in al, dx
    mov [0x20015], al
    mov eax, ebp
    shl eax, 8
    or eax, 0x80000008
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfe
    in ax, dx
    mov [0x20016], ax
    # use the discovered port: GetHostVersion (type 4, 40 bytes) at 0x21000
    mov dword ptr [0x21000], 40
    mov dword ptr [0x21004], 0x10001
    mov dword ptr [0x21008], 4
    mov dword ptr [0x2100c], -1
    mov edx, [0x20004]
    and edx, 0xfffc
    mov eax, 0x21000
    out dx, eax
    mov al, 0
    out 0xf4, al
"""


@pytest.mark.parametrize("mode", [64, 32])
def test_guest_finds_vmmdev_sizes_its_bars_and_uses_the_port(mode: int) -> None:
    machine = vbox_board(mode)
    machine.load(assemble(SCAN, mode=mode))
    result = machine.run()
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0)
    memory = machine.memory
    assert memory.read_u32(0x20000) == 4 << 3, "device 4, function 0"
    assert memory.read_u32(0x20004) == VMMDEV_DEFAULT_PORT_BASE | 1
    assert memory.read_u32(0x20008) == 0xFFFFFFE1, "32 bytes of I/O"
    assert memory.read_u32(0x2000c) == machine.vmmdev.mmio_base
    assert memory.read_u32(0x20010) == 0xFFC00000, "4 MiB of memory"
    assert memory.read(0x20014, 4) == bytes([11, 1, 0x80, 0x08]), "IRQ 11, INTA#, class 08/80"
    assert memory.read_u32(0x21000 + 12) == 0, "GetHostVersion through the discovered port"
    assert memory.read_u32(0x21000 + 36) == 0x8000000F


def test_moving_the_io_bar_moves_the_request_port() -> None:
    machine = vbox_board(64)
    machine.load(assemble("""
_start:
    mov eax, 0x80002010
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    mov eax, 0xe001
    out dx, eax
    mov dword ptr [0x21000], 40
    mov dword ptr [0x21004], 0x10001
    mov dword ptr [0x21008], 4
    mov dword ptr [0x2100c], -1
    mov eax, 0x21000
    mov dx, 0xd020
    out dx, eax
    mov ebx, [0x2100c]
    mov dx, 0xe000
    out dx, eax
    mov eax, [0x2100c]
    cmp ebx, -1
    jne bad
    cmp eax, 0
    jne bad
    mov al, 0
    out 0xf4, al
bad:
    mov al, 1
    out 0xf4, al
""", mode=64))
    assert machine.run().exit_code == 0
    assert machine.bus.owner(0xE000) == "vmmdev" and machine.bus.owner(0xD020) is None


def test_missing_functions_and_disabled_config_cycles_read_all_ones() -> None:
    space = PciConfigSpace()
    space.add_function(0, 4, 0, PciFunction(0x80EE, 0xCAFE, 8, 0x80, {0: Bar(0x20, True, 0xD020)}))
    space.io_write("config_address", 0, 4, 0x80000000 | (5 << 11))
    assert space.io_read("config_data", 0, 4) == 0xFFFFFFFF
    space.io_write("config_address", 0, 4, 4 << 11)
    assert space.io_read("config_data", 0, 2) == 0xFFFF
    space.io_write("config_address", 0, 4, 0x80000000 | (4 << 11) | 0x04)
    space.io_write("config_data", 0, 2, 0xFFFF)
    assert space.io_read("config_data", 0, 2) == 0x7, "only I/O, memory and bus-master bits stick"
    space.io_write("config_address", 0, 4, 0x80000000 | (4 << 11))
    space.io_write("config_data", 0, 4, 0x12345678)
    assert space.io_read("config_data", 0, 4) == 0xCAFE80EE, "identity registers are read-only"
