"""``hgcmlab build PROG.c -o PROG.elf``: build a C guest program with the C guest kit
(guest_asm/c, docs/c-guests.md) into an ELF executable with symbols and DWARF debug
information, for gdb, objdump or ``hgcmlab run PROG.elf``; and the reporting of compile
errors shared with ``hgcmlab run PROG.c``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from hgcmlab.guest_asm.c.compiler import CompileError, build, define_flags
from hgcmlab.machine.asmcli import add_elf_build_arguments, overwrites_source, write_elf
from hgcmlab.machine.loader import LoadError


def report_compile_error(error: CompileError, err: TextIO) -> None:
    """The compiler's diagnostics as it printed them; the one-line summary follows from the caller."""
    err.write(error.diagnostics if error.diagnostics.endswith("\n") or not error.diagnostics
              else error.diagnostics + "\n")


def register_build_command(commands: Any, parse_define: Any) -> None:
    """Add the ``build`` subcommand to the CLI's subparsers."""
    command = commands.add_parser(
        "build", help="build a C guest program into an ELF executable",
        description="Compile PROGRAM (.c) with the system's gcc or clang (HGCMLAB_CC overrides), "
                    "freestanding, with the C guest kit (crt0, libc, HGCM and Shared Folders library) "
                    "and debug information, into an ELF executable loaded at 0x10000. "
                    "'hgcmlab run PROGRAM.c' does the same before running; builds are cached by content.")
    add_elf_build_arguments(command, parse_define, program_help="C source (.c)",
                            mode_help="64-bit (x86-64) or 32-bit (i386) program (default 64)",
                            define_help="integer macro for the program, as -DNAME=VALUE (repeatable)")
    command.add_argument("--paging", action="store_true",
                         help="build a higher-half kernel-like image (linked at 0xffffffff80100000, 32-bit "
                              "0xC0100000, loaded at 1 MiB) for 'hgcmlab run --paging'")

def run_build_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Build and write the ELF file; 0, or 2 with the diagnostics and a one-line message on stderr."""
    source: Path = args.program
    output: Path = args.output or source.with_suffix(".elf")
    if overwrites_source(source, output, err):
        return 2
    try:
        program = build(source, mode=args.mode, extra_flags=define_flags(dict(args.define)), higher_half=args.paging)
    except CompileError as error:
        report_compile_error(error, err)
        print(f"hgcmlab: error: {error}", file=err)
        return 2
    except LoadError as error:
        print(f"hgcmlab: error: {error}", file=err)
        return 2
    if not write_elf(output, program.elf, err):
        return 2
    print(f"{output}: {len(program.elf)} bytes, {len(program.lines)} line-table rows", file=out)
    return 0
