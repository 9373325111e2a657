"""Program images: flat binaries, ELF executables and assembled programs.

Whatever the source, a program becomes an ``Image``: bytes to place at guest-physical
addresses, an entry point, symbols, and (for assembled programs) a way to find the source
line of an address.  Conventions (a public contract): flat code loads at 0x10000 and starts
there; ELF executables load their PT_LOAD segments at their (identity-mapped) addresses and
start at ``e_entry``; assembled programs start at ``_start`` when it exists.  Loaded for a
paged start (``paging=True``), an ELF's segments are placed at ``p_paddr`` and mapped at
``p_vaddr`` (``Image.mappings``); the page tables then occupy the area ``paging_area``
gives (docs/paging.md).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hgcmlab.guest_asm.assembler import AssembledProgram, assemble
from hgcmlab.guest_asm.c.compiler import build as build_c
from hgcmlab.guest_asm.c.compiler import define_flags
from hgcmlab.guest_asm.errors import AssemblyError, LoadError
from hgcmlab.guest_asm.source import SourceLocation
# The layout numbers stay importable from here: the loader's callers and tests use them.
from hgcmlab.machine.layout import (
    ARGS_BASE,
    ARGS_MAX_SIZE,
    DEFAULT_LOAD_ADDRESS,
    MAX_GUEST_RAM,
    PAGING_AREA_SIZE,
    PAGING_STACK_RESERVE,
    STACK_RESERVE,
)
#: At most this many ELF symbols are read (a symbol table cannot make us allocate more).
MAX_SYMBOLS = 1 << 16

_ELF_MAGIC = b"\x7fELF"
_EM_386 = 3
_EM_X86_64 = 62
_ET_EXEC = 2
_ET_DYN = 3
_PT_LOAD = 1
_PT_INTERP = 3
_SHT_SYMTAB = 2


#: Where an address came from in an assembly source (file, line, text).
SourceLine = SourceLocation


def paging_area(ram_size: int) -> int:
    """The physical address of the page tables of a paged start on ``ram_size`` bytes of RAM."""
    return ram_size - PAGING_STACK_RESERVE - PAGING_AREA_SIZE


@dataclass
class Image:
    """A program ready to be placed in guest memory: ``segments`` at physical addresses;
    ``mappings`` (virtual, physical, size) for a paged start (an ELF loaded with
    ``paging=True``; empty otherwise: identity)."""

    segments: list[tuple[int, bytes]]
    entry: int
    mode: int | None = None
    symbols: dict[str, int] = field(default_factory=dict)
    name: str = "<program>"
    source_lookup: Callable[[int], SourceLine | None] | None = None
    mappings: list[tuple[int, int, int]] = field(default_factory=list)

    def linear_ranges(self) -> list[tuple[int, int]]:
        """(linear address, size) of what the program occupies: its mappings for a paged
        start, else its segments (identity)."""
        if self.mappings:
            return [(virtual, size) for virtual, _physical, size in self.mappings]
        return [(address, len(content)) for address, content in self.segments]

    def source_at(self, address: int) -> SourceLine | None:
        """The source line an address was assembled from, when known."""
        return self.source_lookup(address) if self.source_lookup else None

    def symbol_at(self, address: int) -> str | None:
        """``name+offset`` of the nearest symbol at or below ``address``."""
        best: tuple[int, str] | None = None
        for name, value in self.symbols.items():
            if value <= address and (best is None or value > best[0] or (value == best[0] and name < best[1])):
                best = (value, name)
        if best is None:
            return None
        offset = address - best[0]
        return best[1] if offset == 0 else f"{best[1]}+{offset:#x}"


def _check_placement(name: str, segments: list[tuple[int, int]], ram_size: int, paging: bool = False) -> None:
    """Refuse (address, size) segments that leave guest RAM, overlap each other, the
    argument block or the stack page (with ``paging``, the page-table area and the stack
    reserve above it), before any of their bytes is allocated."""
    if paging:
        area = paging_area(ram_size)
        for address, size in segments:
            if address + size > area:
                raise LoadError(f"{name}: segment at physical {address:#x} ({size} bytes) reaches into the page-table "
                                f"area and stack reserve of a paged start ({area:#x}-{ram_size - 1:#x})")
    placed: list[tuple[int, int]] = []
    for address, size in segments:
        end = address + size
        if address < 0 or end > ram_size:
            raise LoadError(f"{name}: segment at {address:#x} ({size} bytes) does not fit in "
                            f"{ram_size // 1024} KiB of guest RAM")
        if address < ARGS_BASE + ARGS_MAX_SIZE and end > ARGS_BASE:
            raise LoadError(f"{name}: segment at {address:#x} ({size} bytes) overlaps the argument block "
                            f"({ARGS_BASE:#x}-{ARGS_BASE + ARGS_MAX_SIZE - 1:#x})")
        if end > ram_size - STACK_RESERVE:
            raise LoadError(f"{name}: segment at {address:#x} ({size} bytes) reaches into the stack page "
                            f"(the last {STACK_RESERVE // 1024} KiB of RAM, below the initial stack pointer)")
        for other, other_size in placed:
            if address < other + other_size and other < end:
                raise LoadError(f"{name}: segments at {other:#x} and {address:#x} overlap")
        placed.append((address, size))


def flat_image(data: bytes, *, base: int = DEFAULT_LOAD_ADDRESS, name: str = "<flat>",
               ram_size: int = MAX_GUEST_RAM) -> Image:
    """A flat binary: loaded at ``base`` and entered at its first byte.  Raises LoadError
    when it is empty or does not fit below the stack page of ``ram_size`` bytes of RAM."""
    if not data:
        raise LoadError(f"{name}: the flat binary is empty")
    _check_placement(name, [(base, len(data))], ram_size)
    return Image([(base, bytes(data))], base, None, {}, name)


@dataclass(frozen=True)
class _ElfLayout:
    """The struct formats of one ELF class."""

    mode: int
    header: str
    program_header: str
    section_header: str
    symbol: str
    machine: int


_ELF32 = _ElfLayout(32, "<HHIIIIIHHHHHH", "<IIIIIIII", "<IIIIIIIIII", "<IIIBBH", _EM_386)
_ELF64 = _ElfLayout(64, "<HHIQQQIHHHHHH", "<IIQQQQQQ", "<IIQQQQIIQQ", "<IBBHQQ", _EM_X86_64)


def elf_image(data: bytes, *, name: str = "<elf>", ram_size: int = MAX_GUEST_RAM, paging: bool = False) -> Image:
    """An x86 or x86-64 ELF executable (statically linked, identity-mapped segments; with
    ``paging``, placed at ``p_paddr`` and mapped at ``p_vaddr``).

    Every header field is checked against the file and against ``ram_size`` bytes of
    guest RAM before anything is allocated: a malformed file raises ``LoadError`` with a
    one-line reason, never another exception.  Segments must fit in RAM and keep clear of
    the argument block, the stack page and each other; the entry point must lie in one.
    The symbol table is best effort: a malformed or missing one gives no symbols."""
    if data[:4] != _ELF_MAGIC:
        raise LoadError(f"{name}: not an ELF file")
    if len(data) < 6:
        raise LoadError(f"{name}: truncated ELF header")
    elf_class, byte_order = data[4], data[5]
    if elf_class == 1:
        layout = _ELF32
    elif elf_class == 2:
        layout = _ELF64
    else:
        raise LoadError(f"{name}: unknown ELF class {elf_class}")
    if byte_order != 1:
        raise LoadError(f"{name}: big-endian ELF is not an x86 program")
    if len(data) < 16 + struct.calcsize(layout.header):
        raise LoadError(f"{name}: truncated ELF header")
    (e_type, e_machine, _version, entry, phoff, shoff, _flags, _ehsize, phentsize, phnum, shentsize,
     shnum, _shstrndx) = struct.unpack_from(layout.header, data, 16)
    mode = layout.mode
    if e_machine != layout.machine:
        raise LoadError(f"{name}: ELF machine {e_machine} is not x86 ({layout.machine} expected for ELF{mode})")
    if e_type not in (_ET_EXEC, _ET_DYN):
        raise LoadError(f"{name}: ELF type {e_type} is not an executable")
    placements = _elf_load_segments(data, name, layout, phoff, phentsize, phnum)
    if not placements:
        raise LoadError(f"{name}: no loadable segment")
    mappings = _elf_mappings(name, placements, mode) if paging else []
    if not paging:
        _refuse_higher_half(name, placements, ram_size)
    _check_placement(name, [(paddr if paging else vaddr, memsz) for vaddr, paddr, memsz, _offset, _filesz
                            in placements], ram_size, paging)
    if not any(vaddr <= entry < vaddr + memsz for vaddr, _paddr, memsz, _offset, _filesz in placements):
        raise LoadError(f"{name}: entry point {entry:#x} is not inside a loadable segment")
    segments = [(paddr if paging else vaddr, data[offset:offset + filesz] + bytes(memsz - filesz))
                for vaddr, paddr, memsz, offset, filesz in placements]
    symbols = _elf_symbols(data, shoff, shentsize, shnum, layout)
    return Image(segments, entry, mode, symbols, name, mappings=mappings)


def _refuse_higher_half(name: str, placements: list[tuple[int, int, int, int, int]], ram_size: int) -> None:
    """A segment linked at a virtual address beyond RAM but with a physical address in it
    is a program that expects to start paged: say so rather than "does not fit"."""
    for vaddr, paddr, memsz, _offset, _filesz in placements:
        if vaddr != paddr and vaddr + memsz > ram_size and paddr + memsz <= ram_size:
            raise LoadError(f"{name}: segment linked at virtual {vaddr:#x} (physical {paddr:#x}) expects paging; "
                            "load it with --paging (Machine.load(image, paging=True))")


def _elf_mappings(name: str, placements: list[tuple[int, int, int, int, int]], mode: int) -> list[tuple[int, int, int]]:
    """(virtual, physical, size) of each segment, widened to whole pages; virtual and
    physical addresses must share their offset in the page (and be canonical in 64-bit)."""
    mappings = []
    for vaddr, paddr, memsz, _offset, _filesz in placements:
        if (vaddr ^ paddr) & 0xFFF:
            raise LoadError(f"{name}: segment at virtual {vaddr:#x} and physical {paddr:#x} differ in their page "
                            "offset; they cannot be mapped with 4 KiB pages")
        top = vaddr + memsz - 1
        if mode == 64 and not all(address < 1 << 47 or address >= 0xFFFF800000000000 for address in (vaddr, top)):
            raise LoadError(f"{name}: segment at virtual {vaddr:#x} is not a canonical 48-bit address range")
        start = vaddr & ~0xFFF
        mappings.append((start, paddr & ~0xFFF, ((top | 0xFFF) + 1) - start))
    return mappings


def _elf_load_segments(data: bytes, name: str, layout: _ElfLayout, phoff: int, phentsize: int,
                       phnum: int) -> list[tuple[int, int, int, int, int]]:
    """(vaddr, paddr, memsz, file offset, filesz) of each non-empty PT_LOAD segment, checked
    against the file; sizes are not yet checked against RAM."""
    entry_size = struct.calcsize(layout.program_header)
    if phnum and phentsize < entry_size:
        raise LoadError(f"{name}: program header size {phentsize} is smaller than {entry_size}")
    if phnum and phoff + phnum * phentsize > len(data):
        raise LoadError(f"{name}: the program headers lie outside the file")
    placements: list[tuple[int, int, int, int, int]] = []
    for index in range(phnum):
        fields = struct.unpack_from(layout.program_header, data, phoff + index * phentsize)
        if layout.mode == 32:
            p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, _pflags, _align = fields
        else:
            p_type, _pflags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, _align = fields
        if p_type == _PT_INTERP:
            raise LoadError(f"{name}: a dynamically linked program needs an operating system; "
                            "build it freestanding (e.g. gcc -static -nostdlib -ffreestanding)")
        if p_type != _PT_LOAD or p_memsz == 0:
            continue
        if p_filesz > p_memsz:
            raise LoadError(f"{name}: segment {index} has more file bytes ({p_filesz}) than memory bytes ({p_memsz})")
        if p_offset + p_filesz > len(data):
            raise LoadError(f"{name}: segment {index} lies outside the file")
        placements.append((p_vaddr, p_paddr, p_memsz, p_offset, p_filesz))
    return placements


def _elf_symbols(data: bytes, shoff: int, shentsize: int, shnum: int, layout: _ElfLayout) -> dict[str, int]:
    """Named symbols from the first SHT_SYMTAB, best effort: a stripped binary, or one whose
    section headers or symbol table do not fit the file or their declared sizes, has none.
    At most ``MAX_SYMBOLS`` are read."""
    header_size = struct.calcsize(layout.section_header)
    symbol_size = struct.calcsize(layout.symbol)
    if shnum == 0 or shentsize < header_size or shoff + shnum * shentsize > len(data):
        return {}
    sections = [struct.unpack_from(layout.section_header, data, shoff + index * shentsize)
                for index in range(shnum)]
    symtab = next((section for section in sections if section[1] == _SHT_SYMTAB), None)
    if symtab is None:
        return {}
    _name, _type, _flags, _addr, sh_offset, sh_size, sh_link, _info, _align, sh_entsize = symtab
    if sh_entsize < symbol_size or sh_link >= len(sections) or sh_offset + sh_size > len(data):
        return {}
    str_offset, str_size = sections[sh_link][4], sections[sh_link][5]
    if str_offset + str_size > len(data):
        return {}
    symbols: dict[str, int] = {}
    count = min(sh_size // sh_entsize, MAX_SYMBOLS)
    for position in range(sh_offset, sh_offset + count * sh_entsize, sh_entsize):
        entry = struct.unpack_from(layout.symbol, data, position)
        st_name, st_value = (entry[0], entry[1]) if layout.mode == 32 else (entry[0], entry[4])
        if st_name == 0 or st_name >= str_size:
            continue
        end = data.find(b"\0", str_offset + st_name, str_offset + str_size)
        symbol = data[str_offset + st_name:end if end >= 0 else str_offset + str_size].decode("utf-8", "replace")
        if symbol:
            symbols[symbol] = st_value
    return symbols


def argument_block(arguments: list[str]) -> bytes:
    """Lay out the argument block: u32 argc, u32 total size, argc u32 offsets (from the
    block start) of NUL-terminated UTF-8 strings, then the strings.  Raises ValueError when
    it would exceed ``ARGS_MAX_SIZE``."""
    header_size = 8 + 4 * len(arguments)
    offsets: list[int] = []
    strings = bytearray()
    for argument in arguments:
        encoded = argument.encode("utf-8")
        if b"\0" in encoded:
            raise ValueError(f"program argument {argument!r} contains a NUL character")
        offsets.append(header_size + len(strings))
        strings += encoded + b"\0"
    size = header_size + len(strings)
    if size > ARGS_MAX_SIZE:
        raise ValueError(f"program arguments need {size} bytes; at most {ARGS_MAX_SIZE} fit")
    return struct.pack(f"<II{len(arguments)}I", len(arguments), size, *offsets) + bytes(strings)


def image_from_assembled(program: AssembledProgram) -> Image:
    """Wrap an assembled program as a loadable image (entry ``_start``, source lines kept)."""

    return Image(list(program.segments), program.entry, program.mode, dict(program.symbols),
                 program.name, program.source_at)


def assembled_image(path: Path, *, mode: int, defines: dict[str, int] | None = None) -> Image:
    """Assemble the source file at ``path`` for ``mode``; assembly errors, and a source (or
    an included file) that cannot be read or is not UTF-8 text, become LoadError."""
    try:
        program = assemble(path, mode=mode, defines=dict(defines or {}))
    except AssemblyError as error:
        raise LoadError(f"assembly failed: {error}") from None
    except UnicodeDecodeError as error:
        raise LoadError(f"{path}: the source (or a file it includes) is not UTF-8 text: {error.reason} "
                        f"at byte {error.start}") from None
    except OSError as error:
        raise LoadError(f"{path}: cannot read: {error.strerror or error}") from None
    return image_from_assembled(program)


def image_from_file(path: Path, *, mode: int, defines: dict[str, int] | None = None,
                    ram_size: int = MAX_GUEST_RAM, paging: bool = False) -> Image:
    """Load a program file for a ``mode``-bit machine with ``ram_size`` bytes of RAM:
    ``.s``/``.asm`` sources are assembled for ``mode``, ``.c`` sources built with the C guest
    kit (``c_image``), ELF files by their header, anything
    else as a flat binary.  Every problem (missing, unreadable or not a regular file, a
    source that is not UTF-8, assembly errors; for binaries also too large for RAM,
    malformed, misplaced segments, an ELF of the other mode) raises ``LoadError`` with a
    one-line reason; a binary larger than RAM is refused unread.  (Where an assembled
    program lands is checked by ``Machine.load``.)"""
    try:
        if not path.exists():
            raise LoadError(f"{path}: no such program file")
        if not path.is_file():
            raise LoadError(f"{path}: not a regular file")
        if path.suffix.lower() in (".s", ".asm"):
            return assembled_image(path, mode=mode, defines=defines)
        if path.suffix.lower() == ".c":

            return c_image(path, mode=mode, defines=defines, ram_size=ram_size, paging=paging)
        size = path.stat().st_size
        if size > ram_size:
            raise LoadError(f"{path}: {size} bytes do not fit in {ram_size // 1024} KiB of guest RAM")
        with path.open("rb") as stream:
            data = stream.read(ram_size + 1)  # bounded even if the file grows meanwhile
    except OSError as error:
        raise LoadError(f"{path}: cannot read: {error.strerror or error}") from None
    if data[:4] != _ELF_MAGIC:
        return flat_image(data, name=str(path), ram_size=ram_size)
    image = elf_image(data, name=str(path), ram_size=ram_size, paging=paging)
    if image.mode != mode:
        raise LoadError(f"{path}: a {image.mode}-bit ELF program cannot run on a {mode}-bit machine "
                        f"(run it in {image.mode}-bit mode)")
    return image


def c_image(path: Path, *, mode: int, defines: dict[str, int] | None = None, flags: Sequence[str] = (),
            ram_size: int = MAX_GUEST_RAM, paging: bool = False) -> Image:
    """Build the C source at ``path`` for ``mode`` with the C guest kit (guest_asm/c; cached
    by content) and load the ELF; ``defines`` become ``-DNAME=VALUE``, ``flags`` follow them
    on the compiler's command line.  With ``paging`` the program is built as a higher-half
    kernel-like image for the loader's paged start (load it with ``paging=True``).  Source lines come
    from its DWARF line table.  Raises ``CompilerMissing``/``CompileError`` (both LoadError,
    the latter with the compiler's diagnostics) or LoadError."""
    program = build_c(path, mode=mode, extra_flags=[*define_flags(defines), *flags], higher_half=paging)
    image = elf_image(program.elf, name=str(path), ram_size=ram_size, paging=paging)
    image.source_lookup = program.source_at
    return image
