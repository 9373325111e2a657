"""Assembled programs as ELF executables with symbols and DWARF line information.

``elf_image(program)`` returns the bytes of a statically linked ELF executable (ELF64 /
x86-64 for 64-bit programs, ELF32 / i386 for 32-bit ones): one loadable segment holding the
program at its base (readable, writable, executable, as the machine maps it), entry
``program.entry``, a ``.symtab`` with every label (absolute addresses, ``STT_NOTYPE``, size
0, global), and DWARF 4 debug information a debugger needs to show the ``.s`` source:
``.debug_line`` (one row per source line that produced bytes, the files by absolute path,
includes included), ``.debug_info`` with one compile unit covering the program and its
``.debug_abbrev``.  The output depends only on the program (no time stamps, no host state
but the absolute paths of its source files).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from hgcmlab.guest_asm.assembler import AssembledProgram
from hgcmlab.guest_asm.source import LIB_DIR

_PAGE = 0x1000
_ET_EXEC, _EM_386, _EM_X86_64 = 2, 3, 62
_PT_LOAD, _PF_RWX = 1, 7
_SHT_PROGBITS, _SHT_SYMTAB, _SHT_STRTAB = 1, 2, 3
_SHF_WRITE, _SHF_ALLOC, _SHF_EXECINSTR = 1, 2, 4
_STB_GLOBAL, _STT_NOTYPE = 1, 0
_SHN_ABS = 0xFFF1

# DWARF constants (DWARF 4, sections 7.5 and 7.22).
_DW_TAG_compile_unit = 0x11
_DW_AT_name, _DW_AT_comp_dir, _DW_AT_producer = 0x03, 0x1B, 0x25
_DW_AT_language, _DW_AT_stmt_list, _DW_AT_low_pc, _DW_AT_high_pc = 0x13, 0x10, 0x11, 0x12
_DW_FORM_addr, _DW_FORM_data2, _DW_FORM_data4, _DW_FORM_string, _DW_FORM_sec_offset = 0x01, 0x05, 0x06, 0x08, 0x17
_DW_LANG_Mips_Assembler = 0x8001
_DW_LNS_copy, _DW_LNS_advance_pc, _DW_LNS_advance_line, _DW_LNS_set_file = 1, 2, 3, 4
_DW_LNE_end_sequence, _DW_LNE_set_address = 1, 2
_OPCODE_BASE = 13
_STANDARD_OPCODE_LENGTHS = bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])
_PRODUCER = "hgcmlab asm"


def uleb128(value: int) -> bytes:
    """Unsigned LEB128."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sleb128(value: int) -> bytes:
    """Signed LEB128."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        out.append(byte if done else byte | 0x80)
        if done:
            return bytes(out)


def _absolute(name: str) -> str:
    """The absolute path of a source file as ``SourceLocation`` names it (bundled routine
    files are named ``lib/NAME``); names of no file (``<source>``) stay as they are."""
    path = Path(name)
    if path.is_file():
        return str(path.resolve())
    if name.startswith("lib/") and (LIB_DIR / name[4:]).is_file():
        return str((LIB_DIR / name[4:]).resolve())
    return name


def debug_line(program: AssembledProgram) -> bytes:
    """The ``.debug_line`` contribution (DWARF 4) of ``program``'s line map."""
    entries = program.lines.entries
    files: dict[str, int] = {}
    for _start, _end, location in entries:
        files.setdefault(_absolute(location.file), len(files) + 1)
    address_size = 8 if program.mode == 64 else 4
    header = bytearray()
    header += bytes([1, 1, 1])                       # min instruction length, max ops, default_is_stmt
    header += struct.pack("<bBB", -5, 14, _OPCODE_BASE)
    header += _STANDARD_OPCODE_LENGTHS
    header += b"\0"                                  # no include directories
    for name in files:
        header += name.encode("utf-8") + b"\0" + uleb128(0) + uleb128(0) + uleb128(0)
    header += b"\0"
    program_bytes = bytearray()
    if entries:
        address, file, line = entries[0][0], 1, 1
        program_bytes += b"\0" + uleb128(1 + address_size) + bytes([_DW_LNE_set_address])
        program_bytes += address.to_bytes(address_size, "little")
        for start, _end, location in entries:
            if start != address:
                program_bytes += bytes([_DW_LNS_advance_pc]) + uleb128(start - address)
                address = start
            index = files[_absolute(location.file)]
            if index != file:
                program_bytes += bytes([_DW_LNS_set_file]) + uleb128(index)
                file = index
            if location.line != line:
                program_bytes += bytes([_DW_LNS_advance_line]) + sleb128(location.line - line)
                line = location.line
            program_bytes += bytes([_DW_LNS_copy])
        end = entries[-1][1]
        if end != address:
            program_bytes += bytes([_DW_LNS_advance_pc]) + uleb128(end - address)
        program_bytes += b"\0" + uleb128(1) + bytes([_DW_LNE_end_sequence])
    body = struct.pack("<HI", 4, len(header)) + header + program_bytes
    return struct.pack("<I", len(body)) + body


def debug_abbrev() -> bytes:
    """The abbreviation table: one compile-unit DIE without children."""
    attributes = [(_DW_AT_name, _DW_FORM_string), (_DW_AT_comp_dir, _DW_FORM_string),
                  (_DW_AT_producer, _DW_FORM_string), (_DW_AT_language, _DW_FORM_data2),
                  (_DW_AT_stmt_list, _DW_FORM_sec_offset), (_DW_AT_low_pc, _DW_FORM_addr),
                  (_DW_AT_high_pc, _DW_FORM_data4)]
    out = bytearray(uleb128(1) + uleb128(_DW_TAG_compile_unit) + b"\0")
    for attribute, form in attributes:
        out += uleb128(attribute) + uleb128(form)
    return bytes(out + b"\0\0" + b"\0")


def debug_info(program: AssembledProgram) -> bytes:
    """One compile unit covering ``[program.base, program.end)`` with its line table."""
    address_size = 8 if program.mode == 64 else 4
    name = _absolute(program.name)
    directory = os.path.dirname(name) if os.path.isabs(name) else ""
    die = bytearray(uleb128(1))
    for text in (name, directory, _PRODUCER):
        die += text.encode("utf-8") + b"\0"
    die += struct.pack("<HI", _DW_LANG_Mips_Assembler, 0)
    die += program.base.to_bytes(address_size, "little") + struct.pack("<I", len(program.code))
    body = struct.pack("<HIB", 4, 0, address_size) + die
    return struct.pack("<I", len(body)) + body


class _Strings:
    """A string table under construction."""

    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self._offsets: dict[str, int] = {"": 0}

    def add(self, text: str) -> int:
        if text not in self._offsets:
            self._offsets[text] = len(self.data)
            self.data += text.encode("utf-8") + b"\0"
        return self._offsets[text]


def elf_image(program: AssembledProgram) -> bytes:
    """``program`` as an ELF executable with symbols and line information (see module doc)."""
    wide = program.mode == 64
    start, end = program.base, program.end
    symbol_names = _Strings()
    symbols = bytearray(bytes(24 if wide else 16))   # entry 0: the null symbol
    for name, value in sorted(program.symbols.items(), key=lambda item: (item[1], item[0])):
        section = 1 if start <= value <= end else _SHN_ABS
        info = (_STB_GLOBAL << 4) | _STT_NOTYPE
        offset = symbol_names.add(name)
        if wide:
            symbols += struct.pack("<IBBHQQ", offset, info, 0, section, value, 0)
        else:
            symbols += struct.pack("<IIIBBH", offset, value, 0, info, 0, section)
    section_names = _Strings()
    header_size, program_header_size = (64, 56) if wide else (52, 32)
    text_offset = _PAGE + (start % _PAGE)
    contents: list[tuple[str, int, int, int, bytes, int, int, int, int]] = []
    # (name, type, flags, address, data, link, info, alignment, entry size)
    contents.append((".text", _SHT_PROGBITS, _SHF_ALLOC | _SHF_WRITE | _SHF_EXECINSTR, start, program.code, 0, 0, 16, 0))
    contents.append((".symtab", _SHT_SYMTAB, 0, 0, bytes(symbols), 3, 1, 8 if wide else 4, 24 if wide else 16))
    contents.append((".strtab", _SHT_STRTAB, 0, 0, bytes(symbol_names.data), 0, 0, 1, 0))
    contents.append((".debug_abbrev", _SHT_PROGBITS, 0, 0, debug_abbrev(), 0, 0, 1, 0))
    contents.append((".debug_info", _SHT_PROGBITS, 0, 0, debug_info(program), 0, 0, 1, 0))
    contents.append((".debug_line", _SHT_PROGBITS, 0, 0, debug_line(program), 0, 0, 1, 0))
    for name, *_rest in contents:
        section_names.add(name)
    section_names.add(".shstrtab")
    contents.append((".shstrtab", _SHT_STRTAB, 0, 0, bytes(section_names.data), 0, 0, 1, 0))
    image = bytearray(text_offset)
    offsets = []
    for _name, _type, _flags, _address, data, *_more in contents:
        if not offsets:
            offsets.append(text_offset)
        else:
            while len(image) % 8:
                image.append(0)
            offsets.append(len(image))
        image += data
    while len(image) % 8:
        image.append(0)
    section_headers_offset = len(image)
    null_header = bytes(64 if wide else 40)
    image += null_header
    for (name, kind, flags, address, data, link, info, alignment, entry_size), offset in zip(contents, offsets):
        fields = (section_names.add(name), kind, flags, address, offset, len(data), link, info, alignment, entry_size)
        image += struct.pack("<IIQQQQIIQQ" if wide else "<IIIIIIIIII", *fields)
    machine = _EM_X86_64 if wide else _EM_386
    identity = b"\x7fELF" + bytes([2 if wide else 1, 1, 1, 0]) + bytes(8)
    section_count, names_index = len(contents) + 1, len(contents)
    if wide:
        header = identity + struct.pack("<HHIQQQIHHHHHH", _ET_EXEC, machine, 1, program.entry, header_size,
                                        section_headers_offset, 0, header_size, program_header_size, 1,
                                        64, section_count, names_index)
        segment = struct.pack("<IIQQQQQQ", _PT_LOAD, _PF_RWX, text_offset, start, start, len(program.code),
                              len(program.code), _PAGE)
    else:
        header = identity + struct.pack("<HHIIIIIHHHHHH", _ET_EXEC, machine, 1, program.entry, header_size,
                                        section_headers_offset, 0, header_size, program_header_size, 1,
                                        40, section_count, names_index)
        segment = struct.pack("<IIIIIIII", _PT_LOAD, text_offset, start, start, len(program.code),
                              len(program.code), _PF_RWX, _PAGE)
    image[:len(header)] = header
    image[header_size:header_size + len(segment)] = segment
    return bytes(image)
