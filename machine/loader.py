"""Program images: flat binaries, ELF executables and assembled programs.

Whatever the source, a program becomes an ``Image``: bytes to place at guest-physical
addresses, an entry point, symbols, and (for assembled programs) a way to find the source
line of an address.  Conventions (a public contract): flat code loads at 0x10000 and starts
there; ELF executables load their PT_LOAD segments at their (identity-mapped) addresses and
start at ``e_entry``; assembled programs start at ``_start`` when it exists.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from guest_asm.source import SourceLocation

#: Where flat binaries and assembled programs are loaded.
DEFAULT_LOAD_ADDRESS = 0x10000
#: Where the machine writes the program's argument block (below the load address).
ARGS_BASE = 0x1000
#: The argument block never grows past this many bytes (it must end below 0x10000).
ARGS_MAX_SIZE = 0xE000

_ELF_MAGIC = b"\x7fELF"
_EM_386 = 3
_EM_X86_64 = 62
_PT_LOAD = 1
_PT_INTERP = 3
_SHT_SYMTAB = 2


class LoadError(Exception):
    """A program file that cannot be loaded, with the reason."""


#: Where an address came from in an assembly source (file, line, text).
SourceLine = SourceLocation


@dataclass
class Image:
    """A program ready to be placed in guest memory."""

    segments: list[tuple[int, bytes]]
    entry: int
    mode: int | None = None
    symbols: dict[str, int] = field(default_factory=dict)
    name: str = "<program>"
    source_lookup: Callable[[int], SourceLine | None] | None = None

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


def flat_image(data: bytes, *, base: int = DEFAULT_LOAD_ADDRESS, name: str = "<flat>") -> Image:
    """A flat binary: loaded at ``base`` and entered at its first byte."""
    if not data:
        raise LoadError(f"{name}: the flat binary is empty")
    return Image([(base, bytes(data))], base, None, {}, name)


def elf_image(data: bytes, *, name: str = "<elf>") -> Image:
    """An x86 or x86-64 ELF executable (statically linked, identity-mapped segments)."""
    if data[:4] != _ELF_MAGIC:
        raise LoadError(f"{name}: not an ELF file")
    if len(data) < 52:
        raise LoadError(f"{name}: truncated ELF header")
    elf_class, byte_order = data[4], data[5]
    if byte_order != 1:
        raise LoadError(f"{name}: big-endian ELF is not an x86 program")
    if elf_class == 1:
        header = struct.unpack_from("<HHIIIIIHHHHHH", data, 16)
        mode, ph_fmt, sh_fmt, sym_fmt = 32, "<IIIIIIII", "<IIIIIIIIII", "<IIIBBH"
        e_type, e_machine, _ver, entry, phoff, shoff, _flags, _ehsize, phentsize, phnum, shentsize, shnum, _shstrndx = header
        expected_machine = _EM_386
    elif elf_class == 2:
        if len(data) < 64:
            raise LoadError(f"{name}: truncated ELF header")
        header = struct.unpack_from("<HHIQQQIHHHHHH", data, 16)
        mode, ph_fmt, sh_fmt, sym_fmt = 64, "<IIQQQQQQ", "<IIQQQQIIQQ", "<IBBHQQ"
        e_type, e_machine, _ver, entry, phoff, shoff, _flags, _ehsize, phentsize, phnum, shentsize, shnum, _shstrndx = header
        expected_machine = _EM_X86_64
    else:
        raise LoadError(f"{name}: unknown ELF class {elf_class}")
    if e_machine != expected_machine:
        raise LoadError(f"{name}: ELF machine {e_machine} is not x86 ({expected_machine} expected for ELF{mode})")
    if e_type not in (2, 3):
        raise LoadError(f"{name}: ELF type {e_type} is not an executable")
    segments: list[tuple[int, bytes]] = []
    for index in range(phnum):
        offset = phoff + index * phentsize
        if offset + struct.calcsize(ph_fmt) > len(data):
            raise LoadError(f"{name}: program header {index} lies outside the file")
        fields = struct.unpack_from(ph_fmt, data, offset)
        if mode == 32:
            p_type, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, _pflags, _align = fields
        else:
            p_type, _pflags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, _align = fields
        if p_type == _PT_INTERP:
            raise LoadError(f"{name}: a dynamically linked program needs an operating system; "
                            "build it freestanding (e.g. gcc -static -nostdlib -ffreestanding)")
        if p_type != _PT_LOAD or p_memsz == 0:
            continue
        if p_offset + p_filesz > len(data) or p_filesz > p_memsz:
            raise LoadError(f"{name}: segment {index} has inconsistent sizes")
        content = data[p_offset:p_offset + p_filesz] + bytes(p_memsz - p_filesz)
        segments.append((p_vaddr, content))
    if not segments:
        raise LoadError(f"{name}: no loadable segment")
    symbols = _elf_symbols(data, shoff, shentsize, shnum, sh_fmt, sym_fmt, mode)
    return Image(segments, entry, mode, symbols, name)


def _elf_symbols(data: bytes, shoff: int, shentsize: int, shnum: int, sh_fmt: str, sym_fmt: str,
                 mode: int) -> dict[str, int]:
    """Named symbols from the first SHT_SYMTAB, best effort (a stripped binary has none)."""
    sections = []
    for index in range(shnum):
        offset = shoff + index * shentsize
        if offset + struct.calcsize(sh_fmt) > len(data):
            return {}
        sections.append(struct.unpack_from(sh_fmt, data, offset))
    symbols: dict[str, int] = {}
    for section in sections:
        _name, sh_type, _flags, _addr, sh_offset, sh_size, sh_link, _info, _align, sh_entsize = section
        if sh_type != _SHT_SYMTAB or sh_entsize == 0 or sh_link >= len(sections):
            continue
        strtab = sections[sh_link]
        str_off, str_size = strtab[4], strtab[5]
        for position in range(sh_offset, min(sh_offset + sh_size, len(data)) - sh_entsize + 1, sh_entsize):
            entry = struct.unpack_from(sym_fmt, data, position)
            if mode == 32:
                st_name, st_value = entry[0], entry[1]
            else:
                st_name, st_value = entry[0], entry[4]
            if st_name == 0 or st_name >= str_size:
                continue
            end = data.find(b"\0", str_off + st_name, str_off + str_size)
            symbol = data[str_off + st_name:end if end >= 0 else str_off + str_size].decode("utf-8", "replace")
            if symbol:
                symbols[symbol] = st_value
        break
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


def image_from_file(path: Path, *, mode: int, defines: dict[str, int] | None = None) -> Image:
    """Load a program file: ``.s``/``.asm`` sources are assembled for ``mode``, ELF files by
    their header, anything else as a flat binary."""
    if not path.exists():
        raise LoadError(f"{path}: no such program file")
    if not path.is_file():
        raise LoadError(f"{path}: not a regular file")
    if path.suffix.lower() in (".s", ".asm"):
        from machine.programs import assembled_image

        return assembled_image(path, mode=mode, defines=defines)
    data = path.read_bytes()
    if data[:4] == _ELF_MAGIC:
        return elf_image(data, name=str(path))
    return flat_image(data, name=str(path))
