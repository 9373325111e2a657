"""Drive a machine's devices directly from a test, qtest style.

``QTest(machine)`` loads a tiny idle guest (``pause; jmp`` with interrupts off) so virtual
time can advance, and gives a test the device-facing view of the machine: port I/O
(``outb``/``outw``/``outl``, ``inb``/``inw``/``inl``, through the real port bus, traced and
charged like guest I/O), memory access (``readb``..``readq``/``writeb``..``writeq`` on guest
RAM or the VMMDev MMIO page at ``machine.vmmdev.mmio_base``), virtual time (``step``,
``clock_step``, ``run_until``) and the interrupt lines (``irq_asserted``, ``wait_irq``).
Addresses are guest-physical, as a device sees them: a paged guest's tables play no part.

Example::

    qt = QTest(vbox_board(64))
    qt.write(0x20000, request_bytes)
    qt.outl(qt.vmmdev_port, 0x20000)      # submit a VMMDev request
    qt.wait_irq(11)                       # the HGCM completion raises IRQ 11
"""

from __future__ import annotations

import struct

from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.machine import Machine, RunEnd, RunResult
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.tracing import ListSink, TraceEvent

#: The idle guest: spins with interrupts disabled, so asserted lines stay visible.
IDLE_SOURCE = "_start:\n    cli\nidle:\n    pause\n    jmp idle\n"
_FORMATS = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}


class QTestError(AssertionError):
    """A qtest expectation failed (e.g. no interrupt within the allowed cycles)."""


class QTest:
    """The device-facing driver of ``machine`` (which it loads with the idle guest)."""

    def __init__(self, machine: Machine, *, load_idle: bool = True) -> None:
        self.machine = machine
        self.events = ListSink()
        self._lines: dict[int, bool] = {}
        self._asserted_at: dict[int, int] = {}
        machine.tracer.add_sink(self.events)
        machine.tracer.add_sink(self._watch_lines)
        if load_idle:
            machine.load(assemble(IDLE_SOURCE, mode=machine.mode))

    def _watch_lines(self, event: TraceEvent) -> None:
        if event.kind == "irq_line":
            self._lines[event.fields["irq"]] = bool(event.fields["asserted"])
            if event.fields["asserted"]:
                self._asserted_at[event.fields["irq"]] = event.cycle

    # --- ports -------------------------------------------------------------------------------

    @property
    def vmmdev_port(self) -> int:
        """The VMMDev request port (BAR0 + 0), wherever the PCI BAR currently places it."""
        base = self.machine.bus.base_of(self.machine.vmmdev, "request")
        assert base is not None, "the VMMDev request port is not mapped"
        return base

    def outb(self, port: int, value: int) -> None:
        self.machine.bus.write(port, 1, value)

    def outw(self, port: int, value: int) -> None:
        self.machine.bus.write(port, 2, value)

    def outl(self, port: int, value: int) -> None:
        self.machine.bus.write(port, 4, value)

    def inb(self, port: int) -> int:
        return self.machine.bus.read(port, 1)

    def inw(self, port: int) -> int:
        return self.machine.bus.read(port, 2)

    def inl(self, port: int) -> int:
        return self.machine.bus.read(port, 4)

    # --- memory ------------------------------------------------------------------------------

    def _region(self, address: int, size: int) -> tuple[GuestMemory, int]:
        machine = self.machine
        if machine.memory.contains(address, size):
            return machine.memory, address
        base = machine.vmmdev.mmio_base
        mmio = machine.vmmdev.events.mmio
        if base is not None and mmio is not None and mmio.contains(address - base, size) and address >= base:
            return mmio, address - base
        raise QTestError(f"{size} bytes at {address:#x} are neither guest RAM nor the VMMDev MMIO page")

    def read(self, address: int, size: int) -> bytes:
        """``size`` bytes at guest-physical ``address`` (RAM or VMMDev MMIO)."""
        memory, offset = self._region(address, size)
        return memory.read(offset, size)

    def write(self, address: int, data: bytes | bytearray) -> None:
        """Store ``data`` at guest-physical ``address`` (RAM or VMMDev MMIO)."""
        memory, offset = self._region(address, len(data))
        memory.write(offset, data)

    def _readn(self, address: int, size: int) -> int:
        return int(struct.unpack(_FORMATS[size], self.read(address, size))[0])

    def _writen(self, address: int, size: int, value: int) -> None:
        self.write(address, struct.pack(_FORMATS[size], value & ((1 << (8 * size)) - 1)))

    def readb(self, address: int) -> int:
        return self._readn(address, 1)

    def readw(self, address: int) -> int:
        return self._readn(address, 2)

    def readl(self, address: int) -> int:
        return self._readn(address, 4)

    def readq(self, address: int) -> int:
        return self._readn(address, 8)

    def writeb(self, address: int, value: int) -> None:
        self._writen(address, 1, value)

    def writew(self, address: int, value: int) -> None:
        self._writen(address, 2, value)

    def writel(self, address: int, value: int) -> None:
        self._writen(address, 4, value)

    def writeq(self, address: int, value: int) -> None:
        self._writen(address, 8, value)

    # --- time --------------------------------------------------------------------------------

    @property
    def cycle(self) -> int:
        """Virtual cycles so far."""
        return self.machine.cycles

    def step(self, instructions: int = 1) -> RunResult:
        """Run the guest for ``instructions`` instructions (due device events fire)."""
        return self.machine.run(instructions)

    def clock_step(self, cycles: int) -> int:
        """Advance virtual time by at least ``cycles``; returns the new cycle."""
        return self.run_until(self.machine.cycles + cycles)

    def run_until(self, cycle: int) -> int:
        """Run until virtual cycle ``cycle`` (first instruction boundary at or after it)."""
        if self.machine.cycles < cycle:
            result = self.machine.run(until_cycle=cycle)
            if result.end is not RunEnd.PAUSED:
                raise QTestError(f"the guest stopped ({result.end.value}) before cycle {cycle}")
        return self.machine.cycles

    # --- interrupts --------------------------------------------------------------------------

    def irq_asserted(self, irq: int | None = None) -> bool:
        """Whether line ``irq`` (any line when None) is asserted now."""
        if irq is None:
            return any(self._lines.values())
        return self._lines.get(irq, False)

    def wait_irq(self, irq: int | None = None, max_cycles: int = 1_000_000, slice_cycles: int = 1000) -> int:
        """Advance time until line ``irq`` (any line when None) is asserted; returns the cycle
        at which it was asserted.  Raises ``QTestError`` when that does not happen within ``max_cycles``."""
        deadline = self.machine.cycles + max_cycles
        while not self.irq_asserted(irq):
            if self.machine.cycles >= deadline:
                which = "any IRQ line" if irq is None else f"IRQ {irq}"
                raise QTestError(f"{which} not asserted within {max_cycles} cycles (now at cycle "
                                 f"{self.machine.cycles})")
            self.run_until(min(deadline, self.machine.cycles + slice_cycles))
        lines = [irq] if irq is not None else [n for n, up in self._lines.items() if up]
        return min(self._asserted_at[n] for n in lines)
