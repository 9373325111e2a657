"""``hgcmlab asm PROG.s -o PROG.elf``: assemble a program into an ELF executable with its
symbol table and DWARF line information (guest_asm/elfout.py), for gdb, objdump, or
``hgcmlab run PROG.elf``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.guest_asm.elfout import elf_image
from hgcmlab.guest_asm.errors import AssemblyError


def add_elf_build_arguments(command: argparse.ArgumentParser, parse_define: Any, *, program_help: str,
                            mode_help: str, define_help: str) -> None:
    """The arguments every command that builds an ELF file from a source takes (``asm``,
    ``build``): PROGRAM, ``-o FILE``, ``--mode``, ``-D NAME=VALUE``."""
    command.add_argument("program", type=Path, help=program_help)
    command.add_argument("-o", "--output", type=Path, metavar="FILE",
                         help="ELF file to write (default: PROGRAM with the suffix .elf)")
    command.add_argument("--mode", type=int, choices=(64, 32), default=64, help=mode_help)
    command.add_argument("--define", "-D", action="append", default=[], type=parse_define, metavar="NAME=VALUE",
                         help=define_help)


def overwrites_source(source: Path, output: Path, err: TextIO) -> bool:
    """Whether ``output`` is ``source`` itself (then a one-line error is printed)."""
    if source.exists() and output.resolve() == source.resolve():
        print(f"hgcmlab: error: the output {output} would overwrite the source", file=err)
        return True
    return False


def write_elf(output: Path, data: bytes, err: TextIO) -> bool:
    """Write the built ELF file; False (after a one-line error) when it cannot be written."""
    try:
        output.write_bytes(data)
    except OSError as error:
        print(f"hgcmlab: error: cannot write {output}: {error.strerror}", file=err)
        return False
    return True


def register_asm_command(commands: Any, parse_define: Any) -> None:
    """Add the ``asm`` subcommand to the CLI's subparsers."""
    asm = commands.add_parser(
        "asm", help="assemble a program into an ELF executable with symbols and line information",
        description="Assemble PROGRAM (.s/.asm, the same assembler as 'run') into an ELF executable loaded "
                    "at 0x10000 with a symbol table and DWARF line information, so gdb and objdump show "
                    "the assembly source. 'hgcmlab run' runs the result like the source.")
    add_elf_build_arguments(asm, parse_define, program_help="assembly source (.s/.asm)",
                            mode_help="64-bit (ELF64, x86-64) or 32-bit (ELF32, i386) program (default 64)",
                            define_help="integer constant for the assembler (repeatable)")

def run_asm_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Assemble and write the ELF file; 0, or 2 with a one-line message on stderr."""
    source: Path = args.program
    output: Path = args.output or source.with_suffix(".elf")
    if not source.is_file():
        print(f"hgcmlab: error: {source}: no such program file" if not source.exists()
              else f"hgcmlab: error: {source}: not a regular file", file=err)
        return 2
    if overwrites_source(source, output, err):
        return 2
    try:
        program = assemble(source, mode=args.mode, defines=dict(args.define))
    except AssemblyError as error:
        print(f"hgcmlab: error: assembly failed: {error}", file=err)
        return 2
    except UnicodeDecodeError as error:
        print(f"hgcmlab: error: {source}: the source (or a file it includes) is not UTF-8 text: "
              f"{error.reason} at byte {error.start}", file=err)
        return 2
    except OSError as error:
        print(f"hgcmlab: error: {source}: cannot read: {error.strerror or error}", file=err)
        return 2
    if not write_elf(output, elf_image(program), err):
        return 2
    print(f"{output}: {len(program.code)} bytes at {program.base:#x}, entry {program.entry:#x}, "
          f"{len(program.symbols)} symbols, {len(program.lines)} source lines", file=out)
    return 0
