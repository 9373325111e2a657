"""The x86 port-I/O bus: devices claim port ranges, the bus enforces access sizes.

Machine-wide policy for everything no device accepts (rule 1): a read returns all ones
(masked to the access size), a write is dropped, and both are traced as ``port_unclaimed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from machine.device import Device, PortRange
from machine.tracing import Tracer

PORT_SPACE_SIZE = 0x10000


class PortConflictError(Exception):
    """Two devices tried to claim the same port (a configuration error)."""


@dataclass(frozen=True)
class _Claim:
    device: Device
    port_range: PortRange
    base: int

    def offset_of(self, port: int) -> int:
        return port - self.base


class PortBus:
    """Routes IN/OUT accesses to the device that claimed the port."""

    def __init__(self, tracer: Tracer, charge: Callable[[int, str], None] | None = None) -> None:
        self._tracer = tracer
        self._charge = charge
        self._claims: dict[int, _Claim] = {}

    def claim(self, device: Device, port_range: PortRange, base: int) -> None:
        """Give ``device`` the ports ``base .. base + length - 1`` for ``port_range``."""
        if base < 0 or base + port_range.length > PORT_SPACE_SIZE:
            raise PortConflictError(
                f"{device.name}: port range {port_range.name} at {base:#x} lies outside the port space"
            )
        for port in range(base, base + port_range.length):
            if port in self._claims:
                other = self._claims[port]
                raise PortConflictError(
                    f"{device.name}: port {port:#x} ({port_range.name}) is already claimed by "
                    f"{other.device.name} ({other.port_range.name})"
                )
        claim = _Claim(device, port_range, base)
        for port in range(base, base + port_range.length):
            self._claims[port] = claim

    def release(self, device: Device, range_name: str) -> None:
        """Give up the ports ``device`` claimed for ``range_name`` (to move them elsewhere)."""
        for port in [p for p, c in self._claims.items()
                     if c.device is device and c.port_range.name == range_name]:
            del self._claims[port]

    def base_of(self, device: Device, range_name: str) -> int | None:
        """Where ``device``'s range ``range_name`` currently starts."""
        for claim in self._claims.values():
            if claim.device is device and claim.port_range.name == range_name:
                return claim.base
        return None

    def owner(self, port: int) -> str | None:
        """Name of the device that claimed ``port``, if any."""
        claim = self._claims.get(port)
        return claim.device.name if claim else None

    def _accepting_claim(self, port: int, size: int) -> _Claim | None:
        claim = self._claims.get(port)
        if claim is None or size not in claim.port_range.sizes:
            return None
        if claim.offset_of(port) + size > claim.port_range.length and claim.port_range.length > 1:
            return None
        return claim

    def read(self, port: int, size: int) -> int:
        """Perform an IN of ``size`` bytes from ``port``."""
        mask = (1 << (8 * size)) - 1
        claim = self._accepting_claim(port, size)
        if claim is None:
            self._tracer.emit("port_unclaimed", direction="in", port=port, size=size,
                              owner=self.owner(port))
            return mask
        self._charge_access(claim)
        value = claim.device.io_read(claim.port_range.name, claim.offset_of(port), size) & mask
        if self._tracer.enabled:
            self._tracer.emit("port_io", direction="in", port=port, size=size, value=value,
                              device=claim.device.name, range=claim.port_range.name,
                              offset=claim.offset_of(port))
        return value

    def write(self, port: int, size: int, value: int) -> None:
        """Perform an OUT of ``size`` bytes of ``value`` to ``port``."""
        value &= (1 << (8 * size)) - 1
        claim = self._accepting_claim(port, size)
        if claim is None:
            self._tracer.emit("port_unclaimed", direction="out", port=port, size=size, value=value,
                              owner=self.owner(port))
            return
        if self._tracer.enabled:
            self._tracer.emit("port_io", direction="out", port=port, size=size, value=value,
                              device=claim.device.name, range=claim.port_range.name,
                              offset=claim.offset_of(port))
        self._charge_access(claim)
        claim.device.io_write(claim.port_range.name, claim.offset_of(port), size, value)

    def _charge_access(self, claim: _Claim) -> None:
        if claim.port_range.cost and self._charge is not None:
            self._charge(claim.port_range.cost, f"port {claim.device.name}.{claim.port_range.name}")
