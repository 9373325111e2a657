"""Guest-physical memory as the VMMDev's buffer copies see it: RAM plus MMIO2 pages.

VirtualBox moves HGCM buffer bytes with PDMDevHlpPhysRead/-Write (PGMAllPhys.cpp
PGMPhysRead, PGMPhysWrite), which copy to and from any RAM range, and MMIO2 ranges (device
memory such as the VMMDev's RAM BAR, VMMDevMemory) are RAM ranges to PGM.  Only addresses
in no range are unassigned memory (reads 0xFF, writes dropped).  The machine's only MMIO
memory is the VMMDev's own RAM BAR, so RAM plus the device's regions is the whole picture.
"""

from __future__ import annotations

from collections.abc import Sequence

from hgcmlab.machine.memory import GuestMemory, GuestMemoryError


class PhysicalMemory:
    """RAM from physical address 0 and device memory regions at their bases.

    Offers the GuestMemory calls buffer copies use (``contains``, ``read``, ``copy_into``,
    ``write``, ``size`` = the RAM size); an access must lie wholly in one area, otherwise
    ``GuestMemoryError`` as for RAM.  ``areas`` splits a range at the areas' edges."""

    def __init__(self, ram: GuestMemory, regions: Sequence[tuple[int, GuestMemory]] = ()) -> None:
        self.ram = ram
        self._areas = sorted([(0, ram), *regions], key=lambda area: area[0])

    @property
    def size(self) -> int:
        return self.ram.size

    def _area(self, address: int, size: int) -> tuple[int, GuestMemory] | None:
        for base, memory in self._areas:
            if memory.contains(address - base, size):
                return base, memory
        return None

    def contains(self, address: int, size: int) -> bool:
        """True when ``[address, address + size)`` lies inside RAM or inside one region."""
        return self._area(address, size) is not None

    def _located(self, address: int, size: int) -> tuple[int, GuestMemory]:
        area = self._area(address, size)
        if area is None:
            raise GuestMemoryError(address, size, self.ram.size)
        return area

    def read(self, address: int, size: int) -> bytes:
        base, memory = self._located(address, size)
        return memory.read(address - base, size)

    def copy_into(self, address: int, target: memoryview) -> None:
        base, memory = self._located(address, len(target))
        memory.copy_into(address - base, target)

    def write(self, address: int, data: bytes | bytearray | memoryview) -> None:
        base, memory = self._located(address, len(data))
        memory.write(address - base, data)

    def areas(self, address: int, length: int) -> list[tuple[int | None, int]]:
        """``[address, address + length)`` cut into (address, length) pieces that lie in one
        area each, and (None, length) pieces that lie in none (unassigned memory)."""
        pieces: list[tuple[int | None, int]] = []
        position, end = address, address + length
        while position < end:
            inside = next(((base, memory) for base, memory in self._areas
                           if base <= position < base + memory.size), None)
            if inside is not None:
                take = min(end, inside[0] + inside[1].size) - position
                pieces.append((position, take))
            else:
                following = min((base for base, _memory in self._areas if base > position), default=end)
                take = min(end, following) - position
                pieces.append((None, take))
            position += take
        return pieces
