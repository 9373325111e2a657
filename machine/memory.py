"""Guest physical RAM: one host ``mmap`` shared by the CPU and the devices.

The same buffer is mapped into Unicorn (``mem_map_ptr``) and read/written directly by
devices, so device code never calls Unicorn and can be tested without a CPU.  Anonymous
``mmap`` memory is allocated lazily by the host kernel: a large guest costs only the pages
it touches.
"""

from __future__ import annotations

import ctypes
import mmap
import struct
from collections.abc import Callable


class GuestMemoryError(Exception):
    """A guest-physical access outside RAM (the caller turns it into a status or fault)."""

    def __init__(self, address: int, size: int, ram_size: int) -> None:
        self.address = address
        self.size = size
        super().__init__(
            f"guest-physical access of {size} bytes at {address:#x} is outside RAM (0..{ram_size:#x})"
        )


class GuestMemory:
    """Flat guest-physical RAM from address 0 to ``size``.

    Contract: every access is bounds-checked as a whole; an access that does not lie
    entirely inside RAM raises ``GuestMemoryError`` and touches nothing.  ``read`` returns
    a private copy (``bytes``), never an alias of guest memory.
    """

    def __init__(self, size: int) -> None:
        if size <= 0 or size % 4096:
            raise ValueError(f"guest RAM size must be a positive multiple of 4096, not {size}")
        self.size = size
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._view = memoryview(self._map)
        #: Called with (address, size) after every write through this object (device and
        #: machine writes; guest stores go through the CPU and are not seen here).  Used by
        #: the debugger's watchpoints.
        self.write_observer: Callable[[int, int], None] | None = None

    @property
    def host_address(self) -> int:
        """Host virtual address of guest-physical 0 (for mapping into the CPU)."""
        return ctypes.addressof(ctypes.c_char.from_buffer(self._map))

    def contains(self, address: int, size: int) -> bool:
        """True when ``[address, address + size)`` lies inside RAM."""
        return 0 <= address and size >= 0 and address + size <= self.size

    def _check(self, address: int, size: int) -> None:
        # ``contains`` spelled out: every device access of guest RAM passes here.
        if address < 0 or size < 0 or address + size > self.size:
            raise GuestMemoryError(address, size, self.size)

    def read(self, address: int, size: int) -> bytes:
        """Copy ``size`` bytes at ``address`` out of guest RAM."""
        self._check(address, size)
        return bytes(self._view[address:address + size])

    def copy_into(self, address: int, target: memoryview) -> None:
        """Copy ``len(target)`` bytes at ``address`` into ``target`` (one copy, no alias kept)."""
        size = len(target)
        self._check(address, size)
        target[:] = self._view[address:address + size]

    def write(self, address: int, data: bytes | bytearray | memoryview) -> None:
        """Copy ``data`` into guest RAM at ``address``."""
        size = len(data)
        self._check(address, size)
        self._view[address:address + size] = data
        if self.write_observer is not None:
            self.write_observer(address, size)

    @property
    def view(self) -> memoryview:
        """A writable view of all of RAM for hot paths that check their bounds themselves
        (``struct.unpack_from``/``pack_into`` at offsets they validated).  Writes through it
        are not seen by ``write_observer``; slices of it follow ``window``'s rule."""
        return self._view

    def window(self, address: int, size: int) -> memoryview:
        """A writable view of ``size`` bytes at ``address`` (an alias of guest RAM, for
        zero-copy host I/O).  The caller must ``release()`` it before the memory is closed
        and must not keep it past the operation it was made for."""
        self._check(address, size)
        return self._view[address:address + size]

    def read_u32(self, address: int) -> int:
        """Read a little-endian u32."""
        self._check(address, 4)
        return struct.unpack_from("<I", self._map, address)[0]

    def write_u32(self, address: int, value: int) -> None:
        """Write a little-endian u32."""
        self._check(address, 4)
        struct.pack_into("<I", self._map, address, value & 0xFFFFFFFF)
        if self.write_observer is not None:
            self.write_observer(address, 4)

    def read_i32(self, address: int) -> int:
        """Read a little-endian i32."""
        self._check(address, 4)
        return struct.unpack_from("<i", self._map, address)[0]

    def write_i32(self, address: int, value: int) -> None:
        """Write a little-endian i32."""
        self._check(address, 4)
        struct.pack_into("<i", self._map, address, value)
        if self.write_observer is not None:
            self.write_observer(address, 4)

    def fill(self, address: int, size: int, byte: int) -> None:
        """Set ``size`` bytes at ``address`` to ``byte``."""
        self._check(address, size)
        self._view[address:address + size] = bytes([byte]) * size
        if self.write_observer is not None:
            self.write_observer(address, size)

    def close(self) -> None:
        """Release the host mapping; the memory must not be used afterwards."""
        self._view.release()
        self._map.close()
