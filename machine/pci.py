"""PCI configuration space, mechanism #1 (ports 0xCF8 address / 0xCFC data).

A guest finds devices the way a real driver does: it writes an enable bit, bus, device,
function and register number to CONFIG_ADDRESS and reads or writes CONFIG_DATA (any byte
lane of it).  Functions that do not exist read as all ones.  Each ``PciFunction`` holds a
256-byte configuration header; writes reach only the command register, the interrupt line
and the BARs.  Writing all ones to a BAR and reading it back reports the BAR's size (the
standard sizing protocol); writing an I/O BAR moves the device's ports when the function
offers a ``relocate_io`` hook.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from hgcmlab.machine.device import AttachContext, PortRange
from hgcmlab.machine.pci_regs import (CONFIG_ADDRESS_ENABLE, CONFIG_ADDRESS_PORT, CONFIG_DATA_PORT, COMMAND_IO,
                                      COMMAND_MEMORY, OFF_BAR0, OFF_CLASS, OFF_COMMAND, OFF_INTERRUPT_LINE,
                                      OFF_INTERRUPT_PIN, OFF_SUBCLASS)


@dataclass
class Bar:
    """A base address register: I/O or 32-bit memory, with a power-of-two size."""

    size: int
    io: bool
    address: int
    prefetchable: bool = False

    def encoded(self) -> int:
        low = 0x1 if self.io else (0x8 if self.prefetchable else 0x0)
        return (self.address & ~(self.size - 1) & 0xFFFFFFFF) | low

    def size_mask(self) -> int:
        low = 0x1 if self.io else (0x8 if self.prefetchable else 0x0)
        return (~(self.size - 1) & 0xFFFFFFFF) | low


@dataclass
class PciFunction:
    """One function's configuration header (type 0) and BARs."""

    vendor_id: int
    device_id: int
    class_code: int
    subclass: int
    bars: dict[int, Bar] = field(default_factory=dict)
    interrupt_pin: int = 0
    interrupt_line: int = 0xFF
    command: int = COMMAND_IO | COMMAND_MEMORY
    #: Called with the new base when the guest moves the I/O BAR with this index.
    relocate_io: Callable[[int, int], None] | None = None
    _sizing: set[int] = field(default_factory=set)

    def read_dword(self, register: int) -> int:
        """The 32-bit configuration register at ``register`` (a multiple of 4)."""
        header = bytearray(64)
        struct.pack_into("<HHHH", header, 0, self.vendor_id, self.device_id, self.command, 0)
        header[OFF_SUBCLASS] = self.subclass
        header[OFF_CLASS] = self.class_code
        for index, bar in self.bars.items():
            value = bar.size_mask() if index in self._sizing else bar.encoded()
            struct.pack_into("<I", header, OFF_BAR0 + 4 * index, value)
        header[OFF_INTERRUPT_LINE] = self.interrupt_line
        header[OFF_INTERRUPT_PIN] = self.interrupt_pin
        if register >= len(header):
            return 0
        return struct.unpack_from("<I", header, register)[0]

    def write(self, offset: int, size: int, value: int) -> None:
        """A configuration write of ``size`` bytes at byte ``offset``."""
        register = offset & ~3
        current = self.read_dword(register)
        shift = 8 * (offset & 3)
        mask = ((1 << (8 * size)) - 1) << shift
        merged = (current & ~mask) | ((value << shift) & mask)
        if register == OFF_COMMAND:
            self.command = merged & 0x7
        elif register == OFF_INTERRUPT_LINE & ~3:
            self.interrupt_line = merged & 0xFF
        elif OFF_BAR0 <= register < OFF_BAR0 + 24:
            self._write_bar((register - OFF_BAR0) // 4, merged)

    def _write_bar(self, index: int, value: int) -> None:
        bar = self.bars.get(index)
        if bar is None:
            return
        if value & ~0xF == 0xFFFFFFF0 or value == 0xFFFFFFFF:
            self._sizing.add(index)
            return
        self._sizing.discard(index)
        new_address = value & ~(bar.size - 1) & (0xFFFFFFFC if bar.io else 0xFFFFFFF0)
        if bar.io and new_address != bar.address and self.relocate_io is not None:
            self.relocate_io(index, new_address)
            bar.address = new_address


@dataclass(frozen=True)
class PciIdentity:
    """How a device appears on the PCI bus, declared by the device (``pci_identity()``);
    the machine builds its configuration header from it (``Machine.add_pci``).

    ``io_bar`` is (BAR index, size) of the I/O BAR over the device's relocatable port
    ranges: the guest may move it, and the ports follow.  ``mmio_bars`` are (BAR index,
    MMIO region name) pairs, each BAR as large as its region.
    """

    vendor_id: int
    device_id: int
    class_code: int
    subclass: int
    interrupt_pin: int = 0
    interrupt_line: int = 0xFF
    io_bar: tuple[int, int] | None = None
    mmio_bars: tuple[tuple[int, str], ...] = ()


class PciConfigSpace:
    """The host bridge's configuration mechanism #1 as a port device."""

    name = "pci"

    def __init__(self) -> None:
        self._address = 0
        self.functions: dict[tuple[int, int, int], PciFunction] = {}

    def add_function(self, bus: int, device: int, function: int, config: PciFunction) -> None:
        """Place ``config`` at bus:device.function."""
        self.functions[(bus, device, function)] = config

    def port_ranges(self) -> list[PortRange]:
        return [
            PortRange("config_address", 0, 4, frozenset({4}), fixed_base=CONFIG_ADDRESS_PORT),
            PortRange("config_data", 0, 4, frozenset({1, 2, 4}), fixed_base=CONFIG_DATA_PORT),
        ]

    def attach(self, context: AttachContext) -> None:
        self._context = context

    def _target(self) -> tuple[PciFunction | None, int]:
        if not self._address & CONFIG_ADDRESS_ENABLE:
            return None, 0
        bus = (self._address >> 16) & 0xFF
        device = (self._address >> 11) & 0x1F
        function = (self._address >> 8) & 0x7
        return self.functions.get((bus, device, function)), self._address & 0xFC

    def io_read(self, range_name: str, offset: int, size: int) -> int:
        if range_name == "config_address":
            return self._address
        target, register = self._target()
        if target is None:
            return (1 << (8 * size)) - 1
        return (target.read_dword(register) >> (8 * offset)) & ((1 << (8 * size)) - 1)

    def save_state(self) -> dict:
        """The configuration address and each function's guest-writable registers."""
        return {"address": self._address,
                "functions": [[list(key), config.command, config.interrupt_line,
                               [[index, bar.address] for index, bar in sorted(config.bars.items())],
                               sorted(config._sizing)] for key, config in sorted(self.functions.items())]}

    def load_state(self, state: dict) -> list[str]:
        """Restore ``save_state``'s output onto the same functions (no relocation runs:
        the machine restores port placements itself)."""
        self._address = int(state["address"])
        for key, command, interrupt_line, bars, sizing in state["functions"]:
            config = self.functions.get((int(key[0]), int(key[1]), int(key[2])))
            if config is None:
                raise ValueError(f"PCI function {key} is not on this machine")
            config.command, config.interrupt_line = int(command), int(interrupt_line)
            for index, address in bars:
                config.bars[int(index)].address = int(address)
            config._sizing = {int(index) for index in sizing}
        return []

    def io_write(self, range_name: str, offset: int, size: int, value: int) -> None:
        if range_name == "config_address":
            self._address = value & 0xFFFFFFFC
            return
        target, register = self._target()
        if target is not None:
            target.write(register + offset, size, value)
