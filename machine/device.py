"""The device plugin interface.

A device declares named port ranges as offsets with the access sizes it accepts; the
machine chooses the base and the port bus enforces the sizes (rule 1: devices see
offsets, not addresses).  At attach time a device receives an ``AttachContext`` with guest
memory, the tracer and run control; it never sees the CPU (rule 2), so it can be driven
without one in tests.

Lifecycle (optional methods, with safe defaults when a device lacks them; ``DeviceBase``
provides them for subclassing): ``reset()`` returns the device to its power-on state,
``close()`` releases host resources, ``save_state() -> dict`` returns its state as plain
data (dicts with str keys, lists, str, int, bool, None, bytes: no closures, files or
descriptors) and ``load_state(state) -> list[str]`` restores it, returning one line per
problem.  Guest-visible memory (RAM, MMIO regions) and port placements are saved by the
machine, not by devices.  The machine calls them through ``close_device``,
``save_device`` and ``load_device``.

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


class DeviceFailure(RuntimeError):
    """A device raised while handling a port access: the run stops, and the message names
    the device, the access and the device's own error (which is chained as the cause).  A
    guest cannot cause this through a correct device; it reports a broken device (a plugin's
    bug, or ours) in one line instead of a Python traceback."""


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
    #: The guest's linear -> physical translation as it is now: None while the guest runs
    #: unpaged (linear = physical); else a function from a page-aligned linear address to
    #: its physical page, None for a page that does not translate (the tables are only
    #: read, as VirtualBox's PGMPhysGCPtr2GCPhys does).
    page_translator: Callable[[], Callable[[int], int | None] | None] = field(default=lambda: None)


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


class DeviceBase:
    """Default lifecycle for devices that subclass it: nothing to reset, close or save."""

    def reset(self) -> None:
        """Return to the power-on state (the default device keeps none)."""

    def close(self) -> None:
        """Release host resources (the default device holds none)."""

    def save_state(self) -> dict:
        """The device's state as plain data (the default device has none)."""
        return {}

    def load_state(self, state: dict) -> list[str]:
        """Restore ``save_state``'s output; one line per problem (none by default)."""
        return []


def close_device(device: Device) -> None:
    """``device.close()`` if it has one."""
    close = getattr(device, "close", None)
    if close is not None:
        close()


def save_device(device: Device) -> dict:
    """``device.save_state()``, or no state for a device without one."""
    save = getattr(device, "save_state", None)
    return {} if save is None else save()


def load_device(device: Device, state: dict) -> list[str]:
    """``device.load_state(state)``, or nothing to restore for a device without one."""
    load = getattr(device, "load_state", None)
    return [] if load is None else load(state)
