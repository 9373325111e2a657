"""Page tables the loader builds for a program that starts paged (``Machine.load(image,
paging=True)``, ``hgcmlab run --paging``).  The layout is a public contract
(docs/paging.md):

* the tables live in the reserved area ``[paging_area(ram_size), + PAGING_AREA_SIZE)``,
  the root table (CR3) first, just below the top ``PAGING_STACK_RESERVE`` bytes of RAM that
  the stack starts at the top of;
* 32-bit: 32-bit paging with CR4.PSE, the whole 4 GiB identity-mapped with 4 MiB pages
  (RAM, the MMIO window and the firmware page holding the GDT), and each segment mapped
  from ``p_vaddr`` to ``p_paddr`` with 4 KiB pages (a 4 MiB region holding a segment
  mapping loses its identity mapping);
* 64-bit: 4-level paging, the low 4 GiB identity-mapped with 2 MiB pages, segments mapped
  with 4 KiB pages in the same way;
* every entry is present, writable and supervisor; accessed and dirty bits start clear.
"""

from __future__ import annotations

from dataclasses import dataclass

from hgcmlab.machine.loader import PAGING_AREA_SIZE, LoadError, paging_area
from hgcmlab.machine.paging import CR0_PG, CR4_PAE, CR4_PSE, PTE_P, PTE_PS, PTE_RW

_PAGE = 4096
_TABLE_FLAGS = PTE_P | PTE_RW


@dataclass
class PageTables:
    """Tables to write into guest RAM and the control-register bits that enable them."""

    cr3: int
    cr0_set: int
    cr4_set: int
    pages: dict[int, bytearray]


class _Builder:
    def __init__(self, base: int) -> None:
        self.base = base
        self.pages: dict[int, bytearray] = {}
        self.next = base

    def table(self) -> int:
        """A new zeroed table page from the area; LoadError when the area is full."""
        if self.next + _PAGE > self.base + PAGING_AREA_SIZE:
            raise LoadError(f"the program's mappings need more page tables than the {PAGING_AREA_SIZE // 1024} KiB "
                            "reserved for them")
        address = self.next
        self.pages[address] = bytearray(_PAGE)
        self.next += _PAGE
        return address

    def entry(self, table: int, index: int, size: int) -> int:
        return int.from_bytes(self.pages[table][index * size:(index + 1) * size], "little")

    def set(self, table: int, index: int, size: int, value: int) -> None:
        self.pages[table][index * size:(index + 1) * size] = value.to_bytes(size, "little")

    def child(self, table: int, index: int, size: int) -> int:
        """The table an entry points at, created (replacing a large-page entry) if needed."""
        value = self.entry(table, index, size)
        if value & PTE_P and not value & PTE_PS:
            return value & ~0xFFF & ((1 << 52) - 1)
        created = self.table()
        self.set(table, index, size, created | _TABLE_FLAGS)
        return created


def build(mode: int, ram_size: int, mappings: list[tuple[int, int, int]]) -> PageTables:
    """Tables identity-mapping the address space described above plus ``mappings``
    (virtual address, physical address, size) with 4 KiB pages."""
    builder = _Builder(paging_area(ram_size))
    root = builder.table()
    if mode == 32:
        for index in range(1024):
            builder.set(root, index, 4, (index << 22) | _TABLE_FLAGS | PTE_PS)
        for virtual, physical, size in mappings:
            for offset in range(0, size, _PAGE):
                linear = virtual + offset
                table = builder.child(root, linear >> 22, 4)
                builder.set(table, (linear >> 12) & 0x3FF, 4, (physical + offset) | _TABLE_FLAGS)
        return PageTables(root, CR0_PG, CR4_PSE, builder.pages)
    low = builder.table()
    builder.set(root, 0, 8, low | _TABLE_FLAGS)
    for gib in range(4):
        directory = builder.table()
        builder.set(low, gib, 8, directory | _TABLE_FLAGS)
        for index in range(512):
            builder.set(directory, index, 8, ((gib << 30) + (index << 21)) | _TABLE_FLAGS | PTE_PS)
    for virtual, physical, size in mappings:
        for offset in range(0, size, _PAGE):
            linear = virtual + offset
            table = root
            for shift in (39, 30, 21):
                table = builder.child(table, (linear >> shift) & 0x1FF, 8)
            builder.set(table, (linear >> 12) & 0x1FF, 8, (physical + offset) | _TABLE_FLAGS)
    return PageTables(root, CR0_PG, CR4_PAE, builder.pages)


def table_bytes(tables: PageTables) -> list[tuple[int, bytes]]:
    """(physical address, bytes) of every table page, in address order."""
    return [(address, bytes(tables.pages[address])) for address in sorted(tables.pages)]


__all__ = ["PageTables", "build", "table_bytes"]
