"""The x86 port-I/O bus: devices claim port ranges, the bus enforces access sizes.

Machine-wide policy for everything no device accepts (rule 1): a read returns all ones
(masked to the access size), a write is dropped, and both are traced as ``port_unclaimed``.

A device's claims are all-or-nothing (``claim_all``), and ``free_base`` finds where a
device's relocatable ranges fit when nobody chose a base: the lowest free base from
``PLUGIN_PORT_START`` upwards, aligned like a PCI I/O BAR to the block's size rounded up to
a power of two (at least 4).  The choice depends only on the ports already claimed, so it
is the same on every run of the same configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hgcmlab.machine.device import Device, DeviceFailure, PortRange
from hgcmlab.machine.tracing import SinkError, Tracer

PORT_SPACE_SIZE = 0x10000
#: Where the search for a free base starts (ports above the legacy ISA ones, below the
#: VMMDev's default 0xD020 block).
PLUGIN_PORT_START = 0xC000


class PortConflictError(ValueError):
    """A device's ports overlap another device's or leave the port space (a configuration
    error; a ``ValueError``, so configuration code can treat it like other bad values)."""


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
        #: Changes whenever a claim is made or released (so a placement can be cached).
        self.generation = 0

    def claim(self, device: Device, port_range: PortRange, base: int) -> None:
        """Give ``device`` the ports ``base .. base + length - 1`` for ``port_range``."""
        self.claim_all(device, [(port_range, base)])

    def claim_all(self, device: Device, placements: list[tuple[PortRange, int]]) -> None:
        """Claim every (range, base) of ``placements`` for ``device``, or none of them:
        raises ``PortConflictError`` naming the first port in the way."""
        wanted: dict[int, PortRange] = {}
        for port_range, base in placements:
            if port_range.length < 1 or base < 0 or base + port_range.length > PORT_SPACE_SIZE:
                raise PortConflictError(f"{device.name}: port range {port_range.name} at {base:#x} "
                                        f"({port_range.length} ports) lies outside the port space")
            for port in range(base, base + port_range.length):
                other = self._claims.get(port)
                if other is not None:
                    raise PortConflictError(
                        f"{device.name}: port {port:#x} ({port_range.name}) is already claimed by "
                        f"{other.device.name} ({other.port_range.name})")
                if port in wanted:
                    raise PortConflictError(f"{device.name}: port {port:#x} is in two of its ranges "
                                            f"({wanted[port].name}, {port_range.name})")
                wanted[port] = port_range
        for port_range, base in placements:
            claim = _Claim(device, port_range, base)
            for port in range(base, base + port_range.length):
                self._claims[port] = claim
        self.generation += 1

    def free_base(self, ranges: list[PortRange], start: int = PLUGIN_PORT_START) -> int:
        """The lowest base at or above ``start`` (aligned to the block size rounded up to a
        power of two, at least 4) where every range of ``ranges`` (offsets from the base)
        is unclaimed; raises ``PortConflictError`` when the port space has no room."""
        span = max((r.offset + r.length for r in ranges), default=1)
        if span > PORT_SPACE_SIZE or any(r.offset < 0 or r.length < 1 for r in ranges):
            raise PortConflictError(f"port ranges {[r.name for r in ranges]} cannot be placed "
                                    f"(negative offset, empty range or larger than the port space)")
        alignment = max(4, 1 << (span - 1).bit_length())
        base = (start + alignment - 1) & ~(alignment - 1)
        while base + span <= PORT_SPACE_SIZE:
            if all(port not in self._claims
                   for r in ranges for port in range(base + r.offset, base + r.offset + r.length)):
                return base
            base += alignment
        raise PortConflictError(f"no free block of {span} ports at or above {start:#x}")

    def release(self, device: Device, range_name: str) -> None:
        """Give up the ports ``device`` claimed for ``range_name`` (to move them elsewhere)."""
        for port in [p for p, c in self._claims.items()
                     if c.device is device and c.port_range.name == range_name]:
            del self._claims[port]
        self.generation += 1

    def base_of(self, device: Device, range_name: str) -> int | None:
        """Where ``device``'s range ``range_name`` currently starts."""
        for claim in self._claims.values():
            if claim.device is device and claim.port_range.name == range_name:
                return claim.base
        return None

    def ports_of(self, device: Device) -> list[int]:
        """Every port ``device`` claims now, ascending."""
        return sorted(port for port, claim in self._claims.items() if claim.device is device)

    def placements(self) -> list[list[object]]:
        """Every claim as [device name, range name, base], sorted (a snapshot's port map)."""
        seen = {(c.device.name, c.port_range.name, c.base) for c in self._claims.values()}
        return [list(entry) for entry in sorted(seen)]

    def restore_placements(self, devices: dict[str, Device], placements: list[list[object]]) -> None:
        """Move the claims of ``devices`` (by name) to ``placements`` (``placements()``'s
        output): ranges listed there are claimed at their base, the others released."""
        ranges = {(c.device.name, c.port_range.name): c.port_range for c in self._claims.values()}
        for device in devices.values():
            for port_range in device.port_ranges():
                ranges.setdefault((device.name, port_range.name), port_range)
                self.release(device, port_range.name)
        for name, range_name, base in placements:
            if name not in devices or (name, range_name) not in ranges:
                raise ValueError(f"port range {name}.{range_name} is not on this machine")
            self.claim(devices[str(name)], ranges[(str(name), str(range_name))], int(base))  # type: ignore[arg-type]

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
            if self._tracer.wants("port_unclaimed"):
                self._tracer.emit("port_unclaimed", direction="in", port=port, size=size,
                                  owner=self.owner(port))
            return mask
        self._charge_access(claim)
        try:
            value = claim.device.io_read(claim.port_range.name, claim.offset_of(port), size) & mask
        except (SinkError, DeviceFailure):
            raise
        except Exception as error:  # noqa: BLE001 - any device bug becomes one report
            raise _failure(claim, port, f"IN of {size} byte(s) from", error) from error
        if self._tracer.wants("port_io"):
            self._tracer.emit("port_io", direction="in", port=port, size=size, value=value,
                              device=claim.device.name, range=claim.port_range.name,
                              offset=claim.offset_of(port))
        return value

    def write(self, port: int, size: int, value: int) -> None:
        """Perform an OUT of ``size`` bytes of ``value`` to ``port``."""
        value &= (1 << (8 * size)) - 1
        claim = self._accepting_claim(port, size)
        if claim is None:
            if self._tracer.wants("port_unclaimed"):
                self._tracer.emit("port_unclaimed", direction="out", port=port, size=size, value=value,
                                  owner=self.owner(port))
            return
        # Event fields are built only when some sink takes port_io events.
        if self._tracer.wants("port_io"):
            self._tracer.emit("port_io", direction="out", port=port, size=size, value=value,
                              device=claim.device.name, range=claim.port_range.name,
                              offset=claim.offset_of(port))
        self._charge_access(claim)
        try:
            claim.device.io_write(claim.port_range.name, claim.offset_of(port), size, value)
        except (SinkError, DeviceFailure):
            raise
        except Exception as error:  # noqa: BLE001 - any device bug becomes one report
            raise _failure(claim, port, f"OUT of {size} byte(s) ({value:#x}) to", error) from error

    def _charge_access(self, claim: _Claim) -> None:
        if claim.port_range.cost and self._charge is not None:
            self._charge(claim.port_range.cost, f"port {claim.device.name}.{claim.port_range.name}")


def _failure(claim: _Claim, port: int, access: str, error: Exception) -> DeviceFailure:
    return DeviceFailure(f"device {claim.device.name!r} failed on {access} port {port:#x} "
                         f"(range {claim.port_range.name!r}, offset {claim.offset_of(port)}): "
                         f"{type(error).__name__}: {error}")
