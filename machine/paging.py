"""The guest's page tables read from Python: one walk from a linear to a physical address.

The CPU (Unicorn) translates guest accesses itself; this module answers the same question
for everything else that meets a guest linear address: the VMMDev translating HGCM LinAddr
buffers at the moment of a call (VirtualBox: ``PGMPhysGCPtr2GCPhys``, which walks the guest
tables without touching them), the machine delivering an interrupt or exception frame onto
the guest's stack (which sets accessed/dirty bits as the CPU does), and fault reports that
name each level's entry.

Paging forms (Intel SDM vol. 3 §4): CR0.PG clear: linear = physical.  EFER.LMA set:
4-level (PML4E, PDPTE with 1 GiB pages, PDE with 2 MiB pages, PTE).  CR4.PAE set: PAE
(4 PDPTEs at CR3 & ~0x1F, PDE with 2 MiB pages, PTE).  Otherwise 32-bit paging (PDE with
4 MiB pages when CR4.PSE is set, PSE-36 high bits included, PTE).  A walk checks the
present bit; access rights are reported, not enforced.  The device's walk (``pgm=True``)
also refuses entries with a must-be-zero bit set, as PGM's guest walk does
(PGMAllGst.h ``Walk``, ``WalkReturnRsvdError``; masks from PGM.cpp ``PGMR3Init`` path and
PGMAll.cpp ``PGMNotifyNxeChanged``): so, as in VirtualBox 7.0.14, a 1 GiB page does not
translate for the device (PS is among the PDPTE's must-be-zero bits there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hgcmlab.machine.paging_regs import (
    CR0_PG,
    CR0_WP,
    CR4_PAE,
    CR4_PSE,
    EFER_LMA,
    EFER_NXE,
    PAGE_SIZE,
    PF_FETCH,
    PF_PROTECTION,
    PF_RESERVED,
    PF_USER,
    PF_WRITE,
    PTE_A,
    PTE_D,
    PTE_NX,
    PTE_P,
    PTE_PS,
    PTE_RW,
    PTE_US,
)

# The architectural bits are re-exported: callers that walk tables take them from here.
__all__ = [
    "CR0_PG", "CR0_WP", "CR4_PAE", "CR4_PSE", "EFER_LMA", "EFER_NXE", "PAGE_SIZE", "PF_FETCH",
    "PF_PROTECTION", "PF_RESERVED", "PF_USER", "PF_WRITE", "PTE_A", "PTE_D", "PTE_NX", "PTE_P",
    "PTE_PS", "PTE_RW", "PTE_US", "MAX_PHYS_ADDR_BITS", "PhysicalRead", "PhysicalWrite",
    "PagingRegisters", "WalkStep", "Walk", "walk", "page_fault_summary",
]

#: Physical-address bits of a 64-bit entry (MAXPHYADDR 52).
_ADDRESS_MASK_64 = 0x000FFFFFFFFFF000
#: The machine CPU's physical-address width (CPUID 0x80000008 EAX[7:0], QEMU's TCG value);
#: PGM takes its guest CPU's width for the must-be-zero frame bits.
MAX_PHYS_ADDR_BITS = 40
_FRAME_MBZ = _ADDRESS_MASK_64 & ~((1 << MAX_PHYS_ADDR_BITS) - 1)
#: Must-be-zero bits PGM checks per (form, level, big page), NX aside (iprt/x86.h
#: X86_*_MBZ_MASK_NX; PGM.cpp adds the frame bits beyond MAXPHYADDR).
_MBZ = {
    ("PAE", "PDPTE", False): _FRAME_MBZ | 0xFFF00000000001E6,
    ("PAE", "PDE", True): _FRAME_MBZ | 0x7FF00000001FE000,
    ("PAE", "PDE", False): _FRAME_MBZ | 0x7FF0000000000080,
    ("PAE", "PTE", False): _FRAME_MBZ | 0x7FF0000000000000,
    ("4-level", "PML4E", False): _FRAME_MBZ | 0x80,
    ("4-level", "PDPTE", False): _FRAME_MBZ | 0x180,
    ("4-level", "PDE", True): _FRAME_MBZ | 0x1FE000,
    ("4-level", "PDE", False): _FRAME_MBZ | 0x80,
    ("4-level", "PTE", False): _FRAME_MBZ,
}
#: 32-bit paging: only a 4 MiB PDE has a must-be-zero bit (X86_PDE4M_MBZ_MASK, bit 21;
#: the PSE-36 bits stay within a 40-bit MAXPHYADDR).
_MBZ_32_BIG_PDE = 1 << 21

#: Reads ``size`` bytes of guest-physical memory (None when not RAM).
PhysicalRead = Callable[[int, int], "bytes | None"]
#: Writes bytes to guest-physical memory (RAM only).
PhysicalWrite = Callable[[int, bytes], None]


@dataclass(frozen=True)
class PagingRegisters:
    """The control registers a walk depends on."""

    cr0: int
    cr3: int
    cr4: int
    efer: int

    @property
    def enabled(self) -> bool:
        return bool(self.cr0 & CR0_PG)

    @property
    def form(self) -> str:
        """``none``, ``32-bit``, ``PAE`` or ``4-level``."""
        if not self.enabled:
            return "none"
        if self.efer & EFER_LMA:
            return "4-level"
        return "PAE" if self.cr4 & CR4_PAE else "32-bit"


@dataclass(frozen=True)
class WalkStep:
    """One level of a walk: its name, the entry's physical address and value (None: the
    entry's address is not in RAM)."""

    level: str
    address: int
    value: int | None

    def format(self) -> str:
        value = "<not in RAM>" if self.value is None else f"{self.value:#x}"
        flags = "" if self.value is None else " " + _flag_names(self.value)
        return f"{self.level} at phys {self.address:#x} = {value}{flags}"


@dataclass(frozen=True)
class Walk:
    """The result of translating ``linear``: ``physical`` (None: not present, with ``reason``),
    the steps taken, the size of the page it lies in and the rights along the way."""

    linear: int
    physical: int | None
    steps: tuple[WalkStep, ...]
    page_size: int = PAGE_SIZE
    writable: bool = True
    user: bool = True
    executable: bool = True
    reason: str = ""

    def describe(self) -> list[str]:
        """One line per level, then the outcome."""
        lines = [step.format() for step in self.steps]
        if self.physical is None:
            lines.append(f"linear {self.linear:#x} does not translate: {self.reason}")
        else:
            rights = ("rw" if self.writable else "ro") + (" user" if self.user else " supervisor") + (
                "" if self.executable else " nx")
            lines.append(f"linear {self.linear:#x} -> phys {self.physical:#x} ({self.page_size // 1024} KiB page, "
                         f"{rights})")
        return lines


def _flag_names(value: int) -> str:
    names = [name for bit, name in ((PTE_P, "P"), (PTE_RW, "RW"), (PTE_US, "US"), (PTE_A, "A"), (PTE_D, "D"),
                                    (PTE_PS, "PS"), (PTE_NX, "NX")) if value & bit]
    return "[" + " ".join(names) + "]" if names else "[]"


def walk(registers: PagingRegisters, linear: int, read: PhysicalRead, *,
         mark: PhysicalWrite | None = None, write: bool = False, pgm: bool = False) -> Walk:
    """Translate ``linear`` through the guest's tables.

    With ``mark`` (a physical writer), the walk sets the accessed bit of every entry it
    uses and, for a ``write``, the dirty bit of the final one, as the CPU does for its own
    accesses; without it the tables are only read (a device's view).  With ``pgm`` an
    entry with a must-be-zero bit set ends the walk untranslated, as in VirtualBox's
    PGMPhysGCPtr2GCPhys (the VMMDev's translation)."""
    form = registers.form
    if form == "none":
        return Walk(linear, linear, ())
    if form == "32-bit":
        return _walk_32(registers, linear & 0xFFFFFFFF, read, mark, write, pgm)
    reserved = _pgm_reserved(form, registers.efer) if pgm else None
    if form == "PAE":
        linear &= 0xFFFFFFFF
        pdpte_address = (registers.cr3 & 0xFFFFFFE0) + ((linear >> 30) & 3) * 8
        levels = [("PDPTE", pdpte_address, 30)]
        return _walk_64(linear, levels, [("PDE", 21), ("PTE", 12)], read, mark, write, pdpte_no_rights=True,
                        reserved=reserved)
    pml4e_address = (registers.cr3 & _ADDRESS_MASK_64) + ((linear >> 39) & 0x1FF) * 8
    return _walk_64(linear, [("PML4E", pml4e_address, 39)], [("PDPTE", 30), ("PDE", 21), ("PTE", 12)],
                    read, mark, write, pdpte_no_rights=False, reserved=reserved)


def _pgm_reserved(form: str, efer: int) -> Callable[[str, int], int]:
    """PGM's must-be-zero bits of an entry at each level of the PAE or 4-level walk
    (PGMGstDefs.h GST_IS_*_VALID); bit 63 too while EFER.NXE is clear
    (PGMNotifyNxeChanged)."""
    nx = 0 if efer & EFER_NXE else PTE_NX

    def bits(level: str, value: int) -> int:
        return _MBZ[(form, level, level == "PDE" and bool(value & PTE_PS))] | nx
    return bits


def _entry(read: PhysicalRead, address: int, size: int) -> int | None:
    data = read(address, size)
    if data is None:
        return None
    return int.from_bytes(data, "little")


def _set_bits(mark: PhysicalWrite | None, address: int, value: int, bits: int, size: int) -> None:
    if mark is not None and value & bits != bits:
        mark(address, (value | bits).to_bytes(size, "little"))


def _walk_32(registers: PagingRegisters, linear: int, read: PhysicalRead, mark: PhysicalWrite | None,
             write: bool, pgm: bool) -> Walk:
    pde_address = (registers.cr3 & 0xFFFFF000) + (linear >> 22) * 4
    pde = _entry(read, pde_address, 4)
    steps = [WalkStep("PDE", pde_address, pde)]
    if pde is None or not pde & PTE_P:
        return Walk(linear, None, tuple(steps), reason="PDE not present")
    writable, user = bool(pde & PTE_RW), bool(pde & PTE_US)
    if pde & PTE_PS and registers.cr4 & CR4_PSE:
        if pgm and pde & _MBZ_32_BIG_PDE:
            return Walk(linear, None, tuple(steps), reason="PDE has a reserved bit set")
        _set_bits(mark, pde_address, pde, PTE_A | (PTE_D if write else 0), 4)
        base = (pde & 0xFFC00000) | (((pde >> 13) & 0xFF) << 32)
        return Walk(linear, base | (linear & 0x3FFFFF), tuple(steps), 4 << 20, writable, user)
    _set_bits(mark, pde_address, pde, PTE_A, 4)
    pte_address = (pde & 0xFFFFF000) + ((linear >> 12) & 0x3FF) * 4
    pte = _entry(read, pte_address, 4)
    steps.append(WalkStep("PTE", pte_address, pte))
    if pte is None or not pte & PTE_P:
        return Walk(linear, None, tuple(steps), reason="PTE not present")
    _set_bits(mark, pte_address, pte, PTE_A | (PTE_D if write else 0), 4)
    return Walk(linear, (pte & 0xFFFFF000) | (linear & 0xFFF), tuple(steps), PAGE_SIZE,
                writable and bool(pte & PTE_RW), user and bool(pte & PTE_US))


def _walk_64(linear: int, first: list[tuple[str, int, int]], rest: list[tuple[str, int]], read: PhysicalRead,
             mark: PhysicalWrite | None, write: bool, *, pdpte_no_rights: bool,
             reserved: Callable[[str, int], int] | None) -> Walk:
    """Walk 8-byte entries: ``first`` gives the top level's entry address, ``rest`` the
    following levels (name, shift).  PAE PDPTEs carry no rights (``pdpte_no_rights``).
    ``reserved`` gives an entry's must-be-zero bits (None: not checked)."""
    steps: list[WalkStep] = []
    writable = user = executable = True
    level, address, shift = first[0]
    chain = [(level, shift)] + rest
    for index, (level, shift) in enumerate(chain):
        value = _entry(read, address, 8)
        steps.append(WalkStep(level, address, value))
        if value is None or not value & PTE_P:
            return Walk(linear, None, tuple(steps), reason=f"{level} not present")
        if reserved is not None and value & reserved(level, value):
            return Walk(linear, None, tuple(steps), reason=f"{level} has a reserved bit set")
        if not (pdpte_no_rights and level == "PDPTE"):
            writable = writable and bool(value & PTE_RW)
            user = user and bool(value & PTE_US)
            executable = executable and not value & PTE_NX
        last = shift == 12 or (level in ("PDPTE", "PDE") and value & PTE_PS and not (pdpte_no_rights and
                                                                                     level == "PDPTE"))
        if last:
            _set_bits(mark, address, value, PTE_A | (PTE_D if write else 0), 8)
            size = 1 << shift
            base = value & _ADDRESS_MASK_64 & ~(size - 1)
            return Walk(linear, base | (linear & (size - 1)), tuple(steps), size, writable, user, executable)
        if not (pdpte_no_rights and level == "PDPTE"):
            _set_bits(mark, address, value, PTE_A, 8)
        next_shift = chain[index + 1][1]
        address = (value & _ADDRESS_MASK_64) + ((linear >> next_shift) & 0x1FF) * 8
    raise AssertionError("unreachable: the last level always returns")





def page_fault_summary(linear: int, error_code: int) -> str:
    """``page fault (#PF): write to linear 0x... (not present, supervisor, error code 0x2)``."""
    access = "instruction fetch from" if error_code & PF_FETCH else (
        "write to" if error_code & PF_WRITE else "read of")
    cause = "protection violation" if error_code & PF_PROTECTION else "not present"
    if error_code & PF_RESERVED:
        cause += ", reserved bit set"
    mode = "user" if error_code & PF_USER else "supervisor"
    return f"page fault (#PF): {access} linear {linear:#x} ({cause}, {mode}, error code {error_code:#x})"
