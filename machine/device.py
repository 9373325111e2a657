"""The device plugin interface.

A device declares named port ranges as offsets with the access sizes it accepts; the
machine chooses the base and the port bus enforces the sizes (rule 1: devices see
offsets, not addresses).  At attach time a device receives an ``AttachContext`` with guest
memory, the tracer and run control; it never sees the CPU (rule 2), so it can be driven
without one in tests.

Third-party devices implement ``Device`` and can be registered under the Python
entry-point group ``hgcmlab.devices``; the CLI loads them by name with ``--device NAME[@PORT]``
(docs/design.md, "Device plugins", has a complete example).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from hgcmlab.machine.clock import Clock
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.tracing import Tracer

#: The entry-point group third-party devices register under.
DEVICE_ENTRY_POINT_GROUP = "hgcmlab.devices"


@dataclass(frozen=True)
class PortRange:
    """A block of ``length`` ports at ``offset`` from the device's base.

    ``sizes`` lists the access widths (1, 2, 4 bytes) the device accepts; other widths
    get the machine-wide unclaimed-port policy (reads all ones, writes dropped, traced).
    ``fixed_base`` pins the range to an absolute port (legacy ISA conventions such as
    0x504 or 0xF4) instead of the device's configurable base.  ``cost`` is the virtual
    cycles one accepted access costs beyond the instruction itself (declared next to the
    device, charged by the bus).
    """

    name: str
    offset: int
    length: int = 1
    sizes: frozenset[int] = frozenset({1, 2, 4})
    fixed_base: int | None = None
    cost: int = 0


@dataclass(frozen=True)
class MmioRegion:
    """A block of device memory the machine maps into the guest-physical address space.

    The guest reads and writes it like RAM (VirtualBox's MMIO2); the device sees the same
    bytes through the ``GuestMemory`` it gets back in ``AttachContext.mmio``.
    """

    name: str
    size: int


@dataclass
class AttachContext:
    """What a device gets from the machine when it is attached."""

    memory: GuestMemory
    tracer: Tracer
    #: End the run with this exit code after the current instruction.
    request_exit: Callable[[int], None] = field(default=lambda code: None)
    #: Report a guest log line (the machine forwards it to the tracer and listeners).
    log_line: Callable[[str], None] = field(default=lambda line: None)
    #: The machine's clock (None for a device driven without a machine).
    clock: Clock | None = None
    #: Drive an interrupt line: (irq number, asserted?).
    set_irq: Callable[[int, bool], None] = field(default=lambda irq, level: None)
    #: Halt the vCPU after the current instruction, as `hlt` does (VMMDev Idle).
    request_halt: Callable[[], None] = field(default=lambda: None)
    #: The device's mapped MMIO regions by name: (guest-physical base, memory).
    mmio: dict[str, tuple[int, GuestMemory]] = field(default_factory=dict)


@runtime_checkable
class Device(Protocol):
    """A device plugin.

    ``port_ranges`` is read once at attach time.  ``io_read``/``io_write`` receive the
    range name, the offset inside that range, and the access size; they are only called
    for sizes the range declared.  ``io_read`` returns the value to put in the register
    (the bus masks it to the access size).
    """

    name: str

    def port_ranges(self) -> list[PortRange]: ...

    def attach(self, context: AttachContext) -> None: ...

    def io_read(self, range_name: str, offset: int, size: int) -> int: ...

    def io_write(self, range_name: str, offset: int, size: int, value: int) -> None: ...
