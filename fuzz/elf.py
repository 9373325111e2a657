"""A small ELF writer for loader seeds and loader tests.

Builds x86 (ELF32, EM_386) and x86-64 (ELF64, EM_X86_64) executables field by field from
the ELF specification (System V gABI: Elf{32,64}_Ehdr, _Phdr, _Shdr, _Sym), independent of
``hgcmlab.machine.loader``, so tests can state what a well-formed or deliberately broken file
contains.  Layout: ELF header, program headers, segment contents, then (with symbols) a
section table of [null, .symtab, .strtab] and their data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

PT_LOAD = 1
PT_INTERP = 3
PT_NOTE = 4
SHT_SYMTAB = 2
SHT_STRTAB = 3
ET_EXEC = 2


@dataclass
class Segment:
    """One program header: ``data`` is placed in the file, ``memsz`` defaults to its size."""

    vaddr: int
    data: bytes
    memsz: int | None = None
    p_type: int = PT_LOAD
    #: File offset to declare instead of the real one (for broken files).
    offset_override: int | None = None
    filesz_override: int | None = None
    #: p_paddr, when it differs from vaddr (a higher-half program).
    paddr: int | None = None


@dataclass
class ElfSpec:
    """What to write; the ``*_override`` fields break the matching header field on purpose."""

    mode: int
    entry: int
    segments: list[Segment]
    symbols: dict[str, int] = field(default_factory=dict)
    e_type: int = ET_EXEC
    machine_override: int | None = None
    phentsize_override: int | None = None
    shentsize_override: int | None = None
    sym_entsize_override: int | None = None
    symtab_size_override: int | None = None


def build_elf(spec: ElfSpec) -> bytes:
    """The bytes of the ELF file ``spec`` describes."""
    wide = spec.mode == 64
    ehdr_size, phdr_size, shdr_size, sym_size = (64, 56, 64, 24) if wide else (52, 32, 40, 16)
    machine = spec.machine_override if spec.machine_override is not None else (62 if wide else 3)
    phoff = ehdr_size
    cursor = phoff + phdr_size * len(spec.segments)
    offsets = []
    body = bytearray()
    for segment in spec.segments:
        offsets.append(cursor + len(body))
        body += segment.data
    cursor += len(body)
    sections = b""
    shoff, shnum = 0, 0
    if spec.symbols:
        strtab = bytearray(b"\0")
        symtab = bytearray(sym_size)  # symbol 0 is the null symbol
        for name, value in spec.symbols.items():
            name_offset = len(strtab)
            strtab += name.encode() + b"\0"
            if wide:
                symtab += struct.pack("<IBBHQQ", name_offset, 0, 0, 1, value, 0)
            else:
                symtab += struct.pack("<IIIBBH", name_offset, value, 0, 0, 0, 1)
        symtab_offset = cursor
        strtab_offset = symtab_offset + len(symtab)
        shoff = strtab_offset + len(strtab)
        entsize = spec.sym_entsize_override if spec.sym_entsize_override is not None else sym_size
        symtab_size = spec.symtab_size_override if spec.symtab_size_override is not None else len(symtab)
        headers = [_section_header(wide, 0, 0, 0, 0, 0, 0)]
        headers.append(_section_header(wide, SHT_SYMTAB, symtab_offset, symtab_size, 2, 1, entsize))
        headers.append(_section_header(wide, SHT_STRTAB, strtab_offset, len(strtab), 0, 0, 0))
        sections = bytes(symtab + strtab) + b"".join(headers)
        shnum = 3
    phentsize = spec.phentsize_override if spec.phentsize_override is not None else phdr_size
    shentsize = spec.shentsize_override if spec.shentsize_override is not None else shdr_size
    ident = b"\x7fELF" + bytes([2 if wide else 1, 1, 1, 0]) + bytes(8)
    if wide:
        header = ident + struct.pack("<HHIQQQIHHHHHH", spec.e_type, machine, 1, spec.entry, phoff, shoff, 0,
                                     ehdr_size, phentsize, len(spec.segments), shentsize, shnum, 0)
    else:
        header = ident + struct.pack("<HHIIIIIHHHHHH", spec.e_type, machine, 1, spec.entry, phoff, shoff, 0,
                                     ehdr_size, phentsize, len(spec.segments), shentsize, shnum, 0)
    program_headers = b"".join(_program_header(wide, segment, offset) for segment, offset in zip(spec.segments, offsets))
    return header + program_headers + bytes(body) + sections


def _program_header(wide: bool, segment: Segment, offset: int) -> bytes:
    filesz = segment.filesz_override if segment.filesz_override is not None else len(segment.data)
    memsz = segment.memsz if segment.memsz is not None else len(segment.data)
    file_offset = segment.offset_override if segment.offset_override is not None else offset
    paddr = segment.vaddr if segment.paddr is None else segment.paddr
    if wide:
        return struct.pack("<IIQQQQQQ", segment.p_type, 5, file_offset, segment.vaddr, paddr,
                           filesz, memsz, 0x1000)
    return struct.pack("<IIIIIIII", segment.p_type, file_offset, segment.vaddr, paddr, filesz,
                       memsz, 5, 0x1000)


def _section_header(wide: bool, sh_type: int, offset: int, size: int, link: int, info: int, entsize: int) -> bytes:
    if wide:
        return struct.pack("<IIQQQQIIQQ", 0, sh_type, 0, 0, offset, size, link, info, 8, entsize)
    return struct.pack("<IIIIIIIIII", 0, sh_type, 0, 0, offset, size, link, info, 4, entsize)


#: `hlt` (0xF4): the smallest complete program.
_HLT = b"\xf4"


def loader_seeds() -> list[bytes]:
    """Well-formed ELF executables of both classes (with and without symbols, with bss,
    several segments, non-load headers) that the loader accepts: the fuzz seed corpus of
    the loader target."""
    seeds = []
    for mode in (64, 32):
        seeds.append(build_elf(ElfSpec(mode, 0x100000, [Segment(0x100000, _HLT)])))
        seeds.append(build_elf(ElfSpec(mode, 0x100000, [Segment(0x100000, _HLT + bytes(31), memsz=0x2000)],
                                       symbols={"_start": 0x100000, "data": 0x100010})))
        seeds.append(build_elf(ElfSpec(mode, 0x10000, [
            Segment(0x10000, _HLT + b"\x90" * 15),
            Segment(0x0, b"", memsz=0, p_type=PT_NOTE),
            Segment(0x20000, b"DATA" * 8, memsz=0x100),
        ], symbols={"_start": 0x10000, "table": 0x20000, "end": 0x20100})))
    return seeds
