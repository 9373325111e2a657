"""``hgcmlab asm``: assembled programs as ELF executables with symbols and DWARF line
information (guest_asm/elfout.py), checked with an independent reader of the DWARF 4 line
program written from the standard (section 6.2), with the loader, and with gdb."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from hgcmlab.guest_asm.assembler import AssembledProgram, assemble
from hgcmlab.guest_asm.elfout import elf_image, sleb128, uleb128
from hgcmlab.machine.cli import main
from hgcmlab.machine.loader import elf_image as load_elf
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import RunEnd
from hgcmlab.machine.programs import PROGRAMS_DIR


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def test_leb128_matches_the_dwarf_standard_examples() -> None:
    # DWARF 4, section 7.6, figures 22 and 23.
    for value, encoded in [(2, "02"), (127, "7f"), (128, "8001"), (129, "8101"), (130, "8201"), (12857, "b964")]:
        assert uleb128(value).hex() == encoded
    for value, encoded in [(2, "02"), (-2, "7e"), (127, "ff00"), (-127, "817f"), (128, "8001"), (-128, "807f"),
                           (129, "8101"), (-129, "ff7e")]:
        assert sleb128(value).hex() == encoded


def sections(data: bytes) -> dict[str, tuple[int, int, int, int]]:
    """name -> (type, address, offset, size), read with the ELF layout of either class."""
    wide = data[4] == 2
    if wide:
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        header = "<IIQQQQIIQQ"
    else:
        shoff, = struct.unpack_from("<I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
        header = "<IIIIIIIIII"
    raw = [struct.unpack_from(header, data, shoff + i * shentsize) for i in range(shnum)]
    names_offset = raw[shstrndx][4]
    result = {}
    for name, kind, _flags, address, offset, size, *_rest in raw:
        end = data.index(b"\0", names_offset + name)
        result[data[names_offset + name:end].decode()] = (kind, address, offset, size)
    return result


def decode_line_program(section: bytes, address_size: int) -> list[tuple[int, str, int]]:
    """The rows (address, file, line) of a DWARF 4 line program, end_sequence excluded."""
    length, version, header_length = struct.unpack_from("<IHI", section, 0)
    assert version == 4
    position = 10
    _min_length, _max_ops, _default_is_stmt, line_base, line_range, opcode_base = struct.unpack_from(
        "<BBBbBB", section, position)
    position += 6
    lengths = list(section[position:position + opcode_base - 1])
    position += opcode_base - 1
    while section[position] != 0:                        # include directories
        position = section.index(b"\0", position) + 1
    position += 1
    files = []

    def leb(signed: bool) -> int:
        nonlocal position
        value = shift = 0
        while True:
            byte = section[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if signed and byte & 0x40:
            value -= 1 << shift
        return value

    while section[position] != 0:
        end = section.index(b"\0", position)
        files.append(section[position:end].decode())
        position = end + 1
        leb(False), leb(False), leb(False)
    position += 1
    assert position == 10 + header_length
    rows = []
    address, file, line = 0, 1, 1
    while position < 4 + length:
        opcode = section[position]
        position += 1
        if opcode >= opcode_base:
            adjusted = opcode - opcode_base
            address += adjusted // line_range
            line += line_base + adjusted % line_range
            rows.append((address, files[file - 1], line))
        elif opcode == 0:
            size = leb(False)
            extended = section[position]
            if extended == 1:
                return rows
            assert extended == 2 and size == 1 + address_size
            address = int.from_bytes(section[position + 1:position + 1 + address_size], "little")
            position += size
        elif opcode == 1:
            rows.append((address, files[file - 1], line))
        elif opcode == 2:
            address += leb(False)
        elif opcode == 3:
            line += leb(True)
        elif opcode == 4:
            file = leb(False)
        else:
            for _ in range(lengths[opcode - 1]):
                leb(False)
    raise AssertionError("no end_sequence")


@pytest.mark.parametrize("mode", [64, 32])
def test_elf_holds_the_program_symbols_and_every_source_line(mode: int) -> None:
    program = assemble(PROGRAMS_DIR / "demo.s", mode=mode)
    data = elf_image(program)
    assert data[:4] == b"\x7fELF" and data[4] == (2 if mode == 64 else 1)
    assert struct.unpack_from("<H", data, 18)[0] == (62 if mode == 64 else 3)
    image = load_elf(data, name="demo.elf")
    assert image.mode == mode and image.entry == program.entry
    assert image.segments == [(program.base, program.code)]
    assert image.symbols == program.symbols
    table = sections(data)
    assert table[".text"][1:2] == (program.base,)
    _kind, _address, offset, size = table[".debug_line"]
    rows = decode_line_program(data[offset:offset + size], 8 if mode == 64 else 4)
    lib = (PROGRAMS_DIR.parent / "lib").resolve()
    expected = []
    for start, _end, location in program.lines.entries:
        name = str((PROGRAMS_DIR / "demo.s").resolve()) if location.file.endswith("demo.s") else \
            str(lib / location.file.removeprefix("lib/"))
        expected.append((start, name, location.line))
    assert rows == expected
    info = data[table[".debug_info"][2]:table[".debug_info"][2] + table[".debug_info"][3]]
    assert struct.unpack_from("<IHIB", info, 0)[1:] == (4, 0, 8 if mode == 64 else 4)


def test_elf_output_is_deterministic() -> None:
    program = assemble(PROGRAMS_DIR / "ls.s")
    assert elf_image(program) == elf_image(assemble(PROGRAMS_DIR / "ls.s"))


def test_asm_command_writes_an_elf_that_runs_like_the_source(tmp_path: Path) -> None:
    output = tmp_path / "demo.elf"
    status, out, err = cli("asm", str(PROGRAMS_DIR / "demo.s"), "-o", str(output))
    assert (status, err) == (0, "")
    program = assemble(PROGRAMS_DIR / "demo.s")
    assert out == (f"{output}: {len(program.code)} bytes at 0x10000, entry 0x10000, {len(program.symbols)} symbols, "
                   f"{len(program.lines)} source lines\n")
    assert output.read_bytes() == elf_image(program)
    share = tmp_path / "share"
    share.mkdir()
    status, out, err = cli("run", str(output), "--share", f"demo={share}", "-q")
    assert status == 0 and "[guest] sf: done" in out
    results = []
    for loaded in (program, load_elf(output.read_bytes(), name="demo.elf")):
        folder = tmp_path / f"s{len(results)}"
        folder.mkdir()
        machine = vbox_board(64)
        machine.add_share("demo", folder)
        machine.load(loaded)
        result = machine.run()
        machine.close()
        results.append((result.end, result.instructions, result.cycles))
    assert results[0] == results[1] and results[0][0] is RunEnd.EXIT


def test_asm_command_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.s"
    bad.write_text("_start:\n    mov eax, \n")
    status, out, err = cli("asm", str(bad))
    assert status == 2 and out == "" and err.startswith(f"hgcmlab: error: assembly failed: {bad}:2: ")
    assert err == cli("run", str(bad))[2]       # the same report as hgcmlab run gives
    assert not (tmp_path / "bad.elf").exists()
    status, _out, err = cli("asm", str(tmp_path / "missing.s"))
    assert status == 2 and err == f"hgcmlab: error: {tmp_path / 'missing.s'}: no such program file\n"
    good = tmp_path / "good.s"
    good.write_text("_start:\n    hlt\n")
    status, _out, err = cli("asm", str(good), "-o", str(good))
    assert status == 2 and "would overwrite the source" in err and good.read_text() == "_start:\n    hlt\n"
    status, _out, err = cli("asm", str(good), "-o", str(tmp_path / "no" / "dir.elf"))
    assert status == 2 and err.startswith("hgcmlab: error: cannot write ") and err.count("\n") == 1
    latin = tmp_path / "latin.s"
    latin.write_bytes(b"_start:\n    hlt # \xff\n")
    status, _out, err = cli("asm", str(latin))
    assert status == 2 and err.startswith(f"hgcmlab: error: {latin}: the source (or a file it includes) is not UTF-8")
    assert err.count("\n") == 1
    status, _out, err = cli("asm", str(tmp_path))
    assert status == 2 and err == f"hgcmlab: error: {tmp_path}: not a regular file\n"
    status, out, _err = cli("asm", str(good), "--mode", "32")
    assert status == 0 and (tmp_path / "good.elf").read_bytes()[4] == 1


def test_gdb_reads_lines_and_symbols_from_the_elf(tmp_path: Path) -> None:
    gdb = shutil.which("gdb")
    assert gdb is not None, "gdb is required for these tests (apt-get install gdb; .ci/run installs it)"
    output = tmp_path / "demo.elf"
    assert cli("asm", str(PROGRAMS_DIR / "demo.s"), "-o", str(output))[0] == 0
    program: AssembledProgram = assemble(PROGRAMS_DIR / "demo.s")
    connect = program.symbols["hgcm_connect"]
    location = program.source_at(connect)
    assert location is not None
    completed = subprocess.run([gdb, "-nx", "-batch", "-ex", "info line hgcm_connect", "-ex", "info symbol 0x10000",
                                str(output)], capture_output=True, text=True, timeout=120)
    assert (f'Line {location.line} of "{(PROGRAMS_DIR.parent / "lib" / "hgcm.s").resolve()}" starts at address '
            f"{connect:#x} <hgcm_connect>") in completed.stdout
    assert "_start in section .text" in completed.stdout
