"""``hgcmlab run --save-at CYCLE FILE`` and ``hgcmlab resume FILE``: the command-line side
of snapshots (machine/snapshot.py, ``Machine.snapshot``, ``hgcmlab.machine.boards.restore``).

``--save-at CYCLE FILE`` runs until the first instruction boundary at or after CYCLE,
writes the snapshot, then lets the run go on to its end as without the option (the trace
file gets a ``run_end`` event with ``end: paused`` there).  A run that ends before CYCLE
writes no snapshot and says so on stderr.  ``resume FILE`` rebuilds the machine the
snapshot describes (its board, mode, RAM, shares with their host paths, options) and runs
it on from there; the budgets and ``--trace`` of ``run`` apply, counted from the resume.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TextIO

from hgcmlab.machine.boards import restore
from hgcmlab.machine.machine import Machine, RunEnd, RunResult
from hgcmlab.machine.runcontrol import Budgets, ProgressLine, add_budget_options, run_supervised, whole_number
from hgcmlab.machine.snapshot import Snapshot, SnapshotError


class SaveAtError(ValueError):
    """The snapshot could not be taken or written (a one-line message)."""


def parse_save_at(values: list[str]) -> tuple[int, Path]:
    """``--save-at CYCLE FILE`` as (cycle, path); a bad cycle is an ``ArgumentTypeError``."""
    return whole_number(values[0], "is negative (cycles count from 0)"), Path(values[1])


def add_save_option(parser: argparse.ArgumentParser) -> None:
    """``run``'s ``--save-at CYCLE FILE``."""
    parser.add_argument("--save-at", nargs=2, metavar=("CYCLE", "FILE"),
                        help="at the first instruction boundary at or after virtual cycle CYCLE, write a "
                             "snapshot of the whole machine to FILE, then run on to the end "
                             "('hgcmlab resume FILE' continues from it)")


def register_resume_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``resume`` subcommand."""
    resume = commands.add_parser(
        "resume", help="continue a run from a snapshot (run --save-at)",
        description="Rebuild the machine a snapshot describes (board, mode, RAM, shares with their host "
                    "paths, options) in the saved state and run it on: the trace and cycle counts are "
                    "those the original run had from the snapshot's cycle on. Shares whose host files "
                    "changed meanwhile are reported on stderr, one line per problem. Budgets count "
                    "from the resume.")
    resume.add_argument("snapshot", type=Path, metavar="FILE", help="snapshot file written by run --save-at")
    resume.add_argument("--trace", type=Path, metavar="FILE",
                        help="write every trace event from the resume on to FILE (JSON Lines; "
                             "gzip-compressed if FILE ends in .gz)")
    resume.add_argument("--quiet", "-q", action="store_true",
                        help="print only guest log lines: no summary, no progress line")
    add_budget_options(resume)


def run_saving(machine: Machine, budgets: Budgets, progress: ProgressLine | None, cycle: int, path: Path,
               err: TextIO) -> RunResult:
    """Run to ``cycle``, write the snapshot to ``path``, run on within what is left of
    ``budgets``; a run that ends first is returned as it ended, with a note on ``err``."""
    first = run_supervised(machine, budgets, progress, until_cycle=cycle)
    if first.end is not RunEnd.PAUSED:
        print(f"hgcmlab: the run ended before cycle {cycle}; no snapshot written", file=err)
        return first
    try:
        machine.snapshot().save(path)
    except SnapshotError as error:
        raise SaveAtError(str(error)) from None
    print(f"hgcmlab: snapshot at cycle {first.cycles} ({first.instructions} instructions) written to {path}",
          file=err)
    rest = dataclasses.replace(
        budgets,
        instructions=None if budgets.instructions is None else max(budgets.instructions - first.instructions, 0),
        cycles=None if budgets.cycles is None else max(budgets.cycles - first.cycles, 0))
    return run_supervised(machine, rest, progress)


def resumed_machine(path: Path, err: TextIO) -> Machine:
    """The machine of snapshot ``path`` in its saved state; problems of the restore (e.g.
    changed host files) are printed on ``err``, one line each.  Raises ``SnapshotError``."""
    machine, problems = restore(Snapshot.load(path))
    for line in problems:
        print(f"hgcmlab: {path}: {line}", file=err)
    return machine
