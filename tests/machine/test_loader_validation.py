"""Issue 12, loader part: every program file the user hands us either loads and runs or is
refused with a one-line LoadError (CLI: one line on stderr, exit status 2) before anything
is allocated.  ELF field meanings: System V gABI (Elf*_Ehdr, Elf*_Phdr, Elf*_Shdr, Elf*_Sym)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from fuzz.elf import PT_INTERP, ElfSpec, Segment, build_elf, loader_seeds
from hgcmlab.guest_asm import assemble
from hgcmlab.machine import machine as machine_module
from hgcmlab.machine.cli import EXIT_USAGE, main
from hgcmlab.machine.loader import (ARGS_BASE, ARGS_MAX_SIZE, MAX_GUEST_RAM, STACK_RESERVE, LoadError, elf_image,
                                    flat_image, image_from_file)
from hgcmlab.machine.boards import vbox_board

RAM = 0x200000  # a 2 MiB machine


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def _exit_with(code: int, mode: int, base: int) -> bytes:
    return assemble(f"_start:\n mov al, {code}\n out 0xf4, al\n", mode=mode, base=base).code


def _elf(mode: int = 64, **changes: object) -> bytes:
    spec = ElfSpec(mode, 0x100000, [Segment(0x100000, _exit_with(7, mode, 0x100000))])
    for name, value in changes.items():
        setattr(spec, name, value)
    return build_elf(spec)


def test_max_guest_ram_is_the_machines_maximum() -> None:
    assert MAX_GUEST_RAM == machine_module.MAX_RAM_SIZE


@pytest.mark.parametrize("mode", [64, 32])
def test_well_formed_elf_runs(mode: int) -> None:
    machine = vbox_board(mode, RAM)
    machine.load(elf_image(_elf(mode), ram_size=RAM))
    assert machine.run().exit_code == 7


@pytest.mark.parametrize("mode, memsz", [(64, 1 << 62), (64, (1 << 64) - 1), (32, 0xFFFFFFFF), (64, RAM)])
def test_huge_memsz_is_refused_before_allocating(mode: int, memsz: int) -> None:
    # The old loader built bytes(p_memsz - p_filesz): MemoryError, OverflowError or gigabytes.
    data = build_elf(ElfSpec(mode, 0x100000, [Segment(0x100000, b"\xf4", memsz=memsz)]))
    with pytest.raises(LoadError, match=f"does not fit in {RAM // 1024} KiB of guest RAM"):
        elf_image(data, ram_size=RAM)


def test_segment_address_beyond_ram_is_refused() -> None:
    data = build_elf(ElfSpec(64, 0xFFFF_FFFF_0000_0000, [Segment(0xFFFF_FFFF_0000_0000, b"\xf4")]))
    with pytest.raises(LoadError, match="does not fit"):
        elf_image(data, ram_size=RAM)


@pytest.mark.parametrize("entsize", [0, 1, 5, 15])
@pytest.mark.parametrize("mode", [64, 32])
def test_bad_symbol_entsize_gives_no_symbols_and_the_program_still_runs(mode: int, entsize: int) -> None:
    # The old loader raised struct.error for an sh_entsize smaller than Elf*_Sym.
    data = _elf(mode, symbols={"_start": 0x100000}, sym_entsize_override=entsize)
    image = elf_image(data, ram_size=RAM)
    assert image.symbols == {}
    machine = vbox_board(mode, RAM)
    machine.load(image)
    assert machine.run().exit_code == 7


def test_symbols_are_read_when_well_formed() -> None:
    image = elf_image(_elf(64, symbols={"_start": 0x100000, "table": 0x100040}), ram_size=RAM)
    assert image.symbols == {"_start": 0x100000, "table": 0x100040}


@pytest.mark.parametrize("changes", [
    {"symtab_size_override": 1 << 40},   # table runs past the end of the file
    {"shentsize_override": 8},           # section headers smaller than Elf64_Shdr
    # 1-byte entries running past the end of the file: the old loader raised struct.error
    {"symtab_size_override": 1 << 20, "sym_entsize_override": 1},
])
def test_malformed_section_tables_give_no_symbols(changes: dict[str, int]) -> None:
    image = elf_image(_elf(64, symbols={"_start": 0x100000}, **changes), ram_size=RAM)
    assert image.symbols == {}


@pytest.mark.parametrize("changes, message", [
    ({"phentsize_override": 8}, "program header size 8 is smaller than 56"),
    ({"phentsize_override": 0xFFFF}, "program headers lie outside the file"),
    ({"machine_override": 3}, "ELF machine 3 is not x86 (62 expected for ELF64)"),
    ({"e_type": 1}, "ELF type 1 is not an executable"),
    ({"entry": 0x200000}, "entry point 0x200000 is not inside a loadable segment"),
    ({"segments": []}, "no loadable segment"),
    ({"segments": [Segment(0x100000, b"\xf4", offset_override=1 << 40)]}, "segment 0 lies outside the file"),
    ({"segments": [Segment(0x100000, b"\xf4", filesz_override=2, memsz=1)]},
     "segment 0 has more file bytes (2) than memory bytes (1)"),
    ({"segments": [Segment(0x100000, b"\xf4", p_type=PT_INTERP)]}, "dynamically linked"),
])
def test_malformed_headers_are_one_line_load_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(LoadError) as raised:
        elf_image(_elf(64, **changes), name="bad.elf", ram_size=RAM)
    assert str(raised.value).startswith("bad.elf: ") and message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("address", [ARGS_BASE, ARGS_BASE + ARGS_MAX_SIZE - 1, 0x0FF0])
def test_segments_overlapping_the_argument_block_are_refused(address: int) -> None:
    # Machine.load writes the argument block after the segments: it would overwrite them.
    data = build_elf(ElfSpec(64, address, [Segment(address, b"\xf4" * 32)]))
    with pytest.raises(LoadError, match="overlaps the argument block"):
        elf_image(data, ram_size=RAM)


def test_segments_reaching_into_the_stack_page_are_refused() -> None:
    address = RAM - STACK_RESERVE - 15
    data = build_elf(ElfSpec(64, address, [Segment(address, b"\xf4" * 16)]))
    with pytest.raises(LoadError, match="stack page"):
        elf_image(data, ram_size=RAM)


def test_overlapping_segments_are_refused() -> None:
    data = build_elf(ElfSpec(64, 0x100000, [Segment(0x100000, b"\xf4" * 64), Segment(0x100020, b"\x90")]))
    with pytest.raises(LoadError, match="segments at 0x100000 and 0x100020 overlap"):
        elf_image(data, ram_size=RAM)


@pytest.mark.parametrize("mode", [64, 32])
def test_segment_ending_right_below_the_stack_page_runs_and_pushes(mode: int) -> None:
    # Guest view of the boundary: the last allowed byte is zero-filled bss, and the stack
    # page above it is free for pushes that do not disturb it.
    end = RAM - STACK_RESERVE
    base = end - 0x1000
    wide = mode == 64
    reg, acc = ("rax", "rbx") if wide else ("eax", "ebx")
    code = assemble(f"""
_start:
    mov {acc}, {end - 1}
    mov byte ptr [{acc} - 1], 0x55
    push {reg}
    push {reg}
    pop {reg}
    pop {reg}
    mov al, [{acc}]
    add al, [{acc} - 1]
    out 0xf4, al
""", mode=mode, base=base).code
    data = build_elf(ElfSpec(mode, base, [Segment(base, code, memsz=end - base)]))
    machine = vbox_board(mode, RAM)
    machine.memory.fill(end - 16, 16, 0xEE)  # stale RAM: the loader must zero the bss
    machine.load(elf_image(data, ram_size=RAM))
    assert machine.run().exit_code == 0x55


def test_every_truncation_of_a_valid_elf_is_a_load_error_or_loads() -> None:
    for seed in loader_seeds():
        for length in range(len(seed)):
            try:
                elf_image(seed[:length], ram_size=RAM)
            except LoadError as error:
                assert "\n" not in str(error)


def test_flat_binary_boundaries() -> None:
    room = RAM - STACK_RESERVE - 0x10000
    assert flat_image(b"\xf4" * room, ram_size=RAM).segments[0][0] == 0x10000
    with pytest.raises(LoadError, match="stack page"):
        flat_image(b"\xf4" * (room + 1), ram_size=RAM)
    with pytest.raises(LoadError, match="empty"):
        flat_image(b"", ram_size=RAM)


# --- through the command line: one line on stderr, exit status 2 ---------------------------


def _one_line_usage_error(result: tuple[int, str, str], fragment: str) -> None:
    status, _out, err = result
    assert status == EXIT_USAGE, err
    assert err.count("\n") == 1 and err.startswith("hgcmlab: error: ") and fragment in err, err
    assert "Traceback" not in err


def test_cli_flat_binary_larger_than_ram(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as stream:  # sparse: 2 MiB + 1 without writing them
        stream.truncate(RAM + 1)
    _one_line_usage_error(cli("run", str(big), "--ram", "2M"), f"{RAM + 1} bytes do not fit in 2048 KiB")


def test_cli_flat_binary_that_fits_runs(tmp_path: Path) -> None:
    flat = tmp_path / "prog.bin"
    flat.write_bytes(_exit_with(9, 64, 0x10000))
    assert cli("run", str(flat), "--ram", "2M", "-q") == (9, "", "")


@pytest.mark.parametrize("elf_mode, machine_mode", [(32, 64), (64, 32)])
def test_cli_elf_of_the_other_mode(tmp_path: Path, elf_mode: int, machine_mode: int) -> None:
    program = tmp_path / "prog.elf"
    program.write_bytes(_elf(elf_mode))
    _one_line_usage_error(cli("run", str(program), "--mode", str(machine_mode)),
                          f"a {elf_mode}-bit ELF program cannot run on a {machine_mode}-bit machine")
    assert cli("run", str(program), "--mode", str(elf_mode), "-q") == (7, "", "")


def test_cli_elf_with_huge_memsz(tmp_path: Path) -> None:
    program = tmp_path / "huge.elf"
    program.write_bytes(build_elf(ElfSpec(64, 0x100000, [Segment(0x100000, b"\xf4", memsz=1 << 62)])))
    _one_line_usage_error(cli("run", str(program)), "does not fit in 65536 KiB of guest RAM")


def test_cli_elf_over_the_argument_block(tmp_path: Path) -> None:
    program = tmp_path / "low.elf"
    program.write_bytes(build_elf(ElfSpec(64, 0x2000, [Segment(0x2000, b"\xf4")])))
    _one_line_usage_error(cli("run", str(program)), "overlaps the argument block (0x1000-0xefff)")


@pytest.mark.parametrize("cut", [4, 20, 60, 100])
def test_cli_truncated_elf(tmp_path: Path, cut: int) -> None:
    program = tmp_path / "cut.elf"
    program.write_bytes(_elf(64)[:cut])
    status, _out, err = cli("run", str(program))
    assert status == EXIT_USAGE and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("name", ["dir.s", "dir.elf", "dir"])
def test_cli_directory_as_program(tmp_path: Path, name: str) -> None:
    (tmp_path / name).mkdir()
    _one_line_usage_error(cli("run", str(tmp_path / name)), "not a regular file")


def test_cli_source_that_is_not_utf8(tmp_path: Path) -> None:
    source = tmp_path / "latin1.s"
    source.write_bytes(b"_start:\n hlt # caf\xe9\n")
    _one_line_usage_error(cli("run", str(source)), "is not UTF-8 text")


def test_cli_unreadable_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A program file whose open fails (EACCES; simulated, since CI runs as root and root
    reads files whatever their mode) is one line and status 2."""
    program = tmp_path / "secret.bin"
    program.write_bytes(b"\xf4")
    real_open = Path.open

    def refusing_open(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if self == program:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", refusing_open)
    _one_line_usage_error(cli("run", str(program)), "cannot read: Permission denied")


def test_image_from_file_reads_no_more_than_ram(tmp_path: Path) -> None:
    big = tmp_path / "big.elf"
    with big.open("wb") as stream:
        stream.write(_elf(64))
        stream.truncate(RAM + 1)
    with pytest.raises(LoadError, match="do not fit"):
        image_from_file(big, mode=64, ram_size=RAM)
