"""The ``--gdb [HOST:]PORT`` option of ``hgcmlab run``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from guest_asm.assembler import assemble
from guest_asm.errors import AssemblyError
from machine.gdbstub.server import DebugRunEnded, GdbServer, exec_file_for, parse_listen_address, run_under_gdb
from machine.machine import Machine, RunResult


def gdb_runner(machine: Machine, args: argparse.Namespace, err: TextIO) -> Callable[[int], RunResult]:
    """Listen where ``args.gdb`` says and return the function that runs ``machine`` under
    the gdb that connects.  ValueError (one line) when the address is unusable; the
    returned function raises ``DebugRunEnded`` when gdb ends the run (or Ctrl-C stops the
    wait)."""
    host, port = parse_listen_address(args.gdb)
    path: Path = args.program
    program = None
    if path.suffix.lower() in (".s", ".asm"):
        try:
            program = assemble(path, mode=args.mode, defines=dict(args.define))
        except AssemblyError as error:      # already assembled once: cannot fail differently
            raise ValueError(f"assembly failed: {error}") from None
    exec_file = exec_file_for(program, path)
    server = GdbServer(host, port)

    def run(max_instructions: int) -> RunResult:
        print(f"hgcmlab: waiting for gdb on {server.host}:{server.port} "
              f"(gdb -ex 'target remote {server.host}:{server.port}')", file=err, flush=True)
        try:
            return run_under_gdb(machine, server, max_instructions=max_instructions, exec_file=exec_file)
        except KeyboardInterrupt:
            raise DebugRunEnded("interrupted (Ctrl-C)") from None
        finally:
            server.close()

    return run
