"""VMMDev configuration: what VirtualBox reads from its CFGM tree, and our time model.

Defaults give VirtualBox 7.0.14 behaviour except where the project documents otherwise
(``require_guest_info``: see docs/deviations.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hgcmlab.machine.layout import VMMDEV_IRQ

#: The machine's clock runs at 1 GHz: one cycle is one nanosecond of guest time.
CYCLES_PER_MILLISECOND = 1_000_000
#: Default host time at cycle 0: 2024-01-01T00:00:00Z in milliseconds since the epoch.
DEFAULT_EPOCH_MS = 1_704_067_200_000


@dataclass(frozen=True)
class HgcmTiming:
    """What HGCM commands cost in virtual cycles.

    A command costs ``call_cycles`` plus ``byte_cycles`` per byte of buffer parameters; a
    call's base cost is instead ``function_cycles[function]`` when given here, else what the
    service declares for that function (``HgcmService.function_cycles``) unless
    ``declared_costs`` is off (then every command costs ``call_cycles``).  A synchronous
    command charges its cost to the `out` that submitted it; an asynchronous one answers
    VINF_HGCM_ASYNC_EXECUTE at once and completes that many cycles later.  Calls are
    asynchronous when ``force_async`` is set or their function is in ``async_functions``.
    """

    call_cycles: int = 2000
    byte_cycles: int = 1
    function_cycles: dict[int, int] = field(default_factory=dict)
    force_async: bool = False
    async_functions: frozenset[int] = frozenset()
    declared_costs: bool = True

    def __post_init__(self) -> None:
        values = [self.call_cycles, self.byte_cycles, *self.function_cycles.values()]
        if any(value < 0 for value in values):
            raise ValueError("HGCM costs must not be negative")

    def cost(self, function: int | None, byte_count: int, declared: int | None = None) -> int:
        """Cycles for one command (``function`` None for connect/disconnect; ``declared``:
        the service's own cost for the function)."""
        base = self.call_cycles
        if function is not None:
            if declared is not None and self.declared_costs:
                base = declared
            base = self.function_cycles.get(function, base)
        return base + self.byte_cycles * byte_count

    def is_async(self, function: int | None) -> bool:
        """Whether a command completes after its latency instead of inside the `out`."""
        return self.force_async or (function is not None and function in self.async_functions)


@dataclass(frozen=True)
class VMMDevConfig:
    """Device options."""

    #: Refuse requests before a successful ReportGuestInfo, as VirtualBox does.
    require_guest_info: bool = False
    timing: HgcmTiming = field(default_factory=HgcmTiming)
    #: Host UTC (ms since 1970) that GetHostTime reports at cycle 0.
    epoch_ms: int = DEFAULT_EPOCH_MS
    #: Cycles one access to the request port costs beyond the `out` itself.
    request_port_cycles: int = 100
    #: The interrupt line the device's INTA# is routed to (PCI interrupt line register).
    irq: int = VMMDEV_IRQ
    #: Hand buffers of the functions a service declares in ``direct_buffers`` to it as views
    #: of guest memory when the guest cannot tell the difference (devices/vmmdev/direct.py):
    #: a speed-up only; False makes every call take the bounce-buffer path (to compare).
    direct_buffers: bool = True
    #: Complete Shared Folders READ/WRITE calls in the CPU's OUT hook, before the device's
    #: request path, when nobody could tell (devices/vmmdev/accel.py): a speed-up only;
    #: False sends every call through the device's path (to compare).
    accelerator: bool = True
    #: The accelerator's hook in C when it can be built here, else its Python twin
    #: (devices/vmmdev/accel_python.py); False always takes the Python twin.
    native: bool = True
