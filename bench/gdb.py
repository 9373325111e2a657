"""Execution speed with the gdb stub's hooks installed (a breakpoint and a watchpoint set but
never hit, polls for Ctrl-C) against the same machine without a debugger, in the same
process."""

from __future__ import annotations

from bench.core import Row, median_seconds
from bench.execution import COMPUTE, MEMCPY
from hgcmlab.guest_asm.assembler import AssembledProgram, assemble
from hgcmlab.machine.gdbstub.control import Debugger, Resume, Watchpoint, WatchKind
from hgcmlab.machine.boards import vbox_board


def _run(program: AssembledProgram, debugged: bool) -> int:
    machine = vbox_board(64)
    machine.load(program)
    if debugged:
        debugger = Debugger(machine, lambda _stop: Resume.CONTINUE, lambda: False)
        debugger.attach()
        debugger.add_breakpoint(0x1000)                                  # never executed
        debugger.add_watchpoint(Watchpoint(WatchKind.ACCESS, 0x2000, 4))  # never accessed
    result = machine.run(10**10)
    machine.close()
    return result.instructions


def run(quick: bool, repeat: int) -> list[Row]:
    rows = []
    iterations = 20_000 if quick else 1_000_000
    for name, template in (("compute loop", COMPUTE), ("memcpy loop", MEMCPY)):
        program = assemble(template.format(n=iterations), mode=64)
        instructions = _run(program, True)
        plain = median_seconds(lambda: _run(program, False), repeat)
        debugged = median_seconds(lambda: _run(program, True), repeat)
        ours, baseline = instructions / debugged / 1e6, instructions / plain / 1e6
        rows.append(Row("gdb", f"{name} under the stub (breakpoint + watchpoint set): M instructions/s",
                        ours, "M/s", baseline, "same machine, no debugger", ">= 25% of no debugger",
                        ours >= 0.25 * baseline))
    return rows
