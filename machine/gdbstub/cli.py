"""The ``--gdb [HOST:]PORT`` option of ``hgcmlab run``: ``add_gdb_option`` adds it to the
parser; ``gdb_runner`` gives the function that replaces the plain run when it is given
(``DebugRunEnded``, re-exported here, when gdb ends the run: print it, exit status 3)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.guest_asm.c.compiler import build as build_c, define_flags
from hgcmlab.guest_asm.errors import AssemblyError
from hgcmlab.machine.gdbstub.server import DebugRunEnded, GdbServer, exec_file_for, parse_listen_address, run_under_gdb
from hgcmlab.machine.gdbstub.session import ExecFile
from hgcmlab.machine.loader import LoadError
from hgcmlab.machine.machine import Machine, RunResult


def add_gdb_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--gdb [HOST:]PORT`` to ``hgcmlab run``'s parser."""
    parser.add_argument("--gdb", metavar="[HOST:]PORT",
                        help="wait for gdb on PORT (host 127.0.0.1 unless given) and stop before the first "
                             "instruction; see docs/debugging.md")


class GdbRunner:
    """Runs a machine under the gdb that connects to the listening socket; ``close`` stops
    listening (also when the run never started)."""

    def __init__(self, machine: Machine, server: GdbServer, exec_file: ExecFile | None, err: TextIO) -> None:
        self._machine = machine
        self._server = server
        self._exec_file = exec_file
        self._err = err

    def __call__(self, max_instructions: int | None) -> RunResult:
        """Announce the address, wait for gdb, run; ``DebugRunEnded`` when gdb ends the run
        or Ctrl-C interrupts it."""
        server = self._server
        print(f"hgcmlab: waiting for gdb on {server.host}:{server.port} "
              f"(gdb -ex 'target remote {server.host}:{server.port}')", file=self._err, flush=True)
        try:
            return run_under_gdb(self._machine, server, max_instructions=max_instructions, exec_file=self._exec_file)
        except KeyboardInterrupt:
            raise DebugRunEnded("interrupted (Ctrl-C)") from None
        finally:
            server.close()

    def close(self) -> None:
        """Stop listening (idempotent)."""
        self._server.close()


def gdb_runner(machine: Machine, args: argparse.Namespace, err: TextIO) -> GdbRunner:
    """Listen where ``args.gdb`` says (ValueError with a one-line reason when that is
    impossible) and return the runner for ``machine``'s loaded program."""
    host, port = parse_listen_address(args.gdb)
    path: Path = args.program
    program = None
    if path.suffix.lower() == ".c":
        try:
            # The run built it with the same flags: this is a cache hit.
            built = build_c(path, mode=args.mode, extra_flags=define_flags(dict(args.define)),
                            higher_half=args.paging)
        except LoadError as error:
            raise ValueError(f"{path}: cannot build it again: {error}") from None
        return GdbRunner(machine, GdbServer(host, port), ExecFile(str(built.path), built.elf), err)
    if path.suffix.lower() in (".s", ".asm"):
        try:
            program = assemble(path, mode=args.mode, defines=dict(args.define))
        except (AssemblyError, UnicodeDecodeError, OSError) as error:  # assembled once already: only
            raise ValueError(f"{path}: cannot assemble it again: {error}") from None  # if it changed since
    return GdbRunner(machine, GdbServer(host, port), exec_file_for(program, path), err)


__all__ = ["DebugRunEnded", "GdbRunner", "add_gdb_option", "gdb_runner"]
