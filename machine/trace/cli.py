"""``hgcmlab trace``: record, show, stats, diff and export trace files.

Registered into the main parser by ``register_trace_commands``; ``run_trace_command``
runs the chosen action.  Exit status: 0 success (``diff``: traces equal), 1 ``diff``:
traces differ, 2 bad usage, an unreadable/invalid trace file or an output file that cannot
be written (one-line message, no traceback); ``record`` ends like ``hgcmlab run`` (the guest's
code, or the run-control statuses of machine/runcontrol.py: budget, guest fault, Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from hgcmlab.machine.trace.files import TraceFileError, TraceWriteError, TraceWriter, read_trace
from hgcmlab.machine.trace.tools import ShowFilter, compute_stats, export_perfetto, first_divergence, format_stats, show
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.clicommon import parse_define, parse_share, parse_size
from hgcmlab.machine.tracing import STAMP_KEYS
from hgcmlab.runtime.trace_catalog import CATALOG

EXIT_DIFFERENT = 1
EXIT_USAGE = 2


class _TraceUsageError(Exception):
    pass


def _csv(values: list[str]) -> frozenset[str]:
    return frozenset(part.strip() for value in values for part in value.split(",") if part.strip())


def _kinds(values: list[str]) -> frozenset[str]:
    """``--kind`` values: kinds of the event catalog (a typo is an error, not an empty result)."""
    kinds = _csv(values)
    unknown = sorted(kinds - CATALOG.keys())
    if unknown:
        raise _TraceUsageError(f"unknown event kind {unknown[0]!r} (the kinds are listed in docs/tracing.md)")
    return kinds


def _fields(values: list[str]) -> frozenset[str]:
    """``--ignore`` values: stamps or fields some catalogued kind has."""
    names = _csv(values)
    known = {f.name for kind in CATALOG.values() for f in kind.fields} | set(STAMP_KEYS)
    unknown = sorted(names - known)
    if unknown:
        raise _TraceUsageError(f"no event kind has a field {unknown[0]!r} (see docs/tracing.md)")
    return names


def register_trace_commands(commands: Any) -> None:
    """Add the ``trace`` command and its actions to the main parser's subparsers."""
    from hgcmlab.machine.runcontrol import add_budget_options

    trace = commands.add_parser(
        "trace", help="record, show, summarise, compare and export trace files",
        description="Work with trace files (JSON Lines, one event per line; .gz compressed) as written by "
                    "'hgcmlab run --trace FILE' or 'hgcmlab trace record'. See docs/tracing.md.")
    actions = trace.add_subparsers(dest="trace_command", metavar="ACTION")

    record = actions.add_parser(
        "record", help="run a program and write its full trace",
        description="Run PROGRAM like 'hgcmlab run' and write every event, with decoded HGCM call "
                    "parameters (params) and, with --blocks, executed blocks with disassembly.")
    record.add_argument("program", type=Path)
    record.add_argument("arguments", nargs="*", metavar="ARG")
    record.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="trace file to write")
    record.add_argument("--mode", type=int, choices=(64, 32), default=64)
    record.add_argument("--share", action="append", default=[], type=parse_share, metavar="NAME=DIR[:ro]")
    record.add_argument("--ram", type=parse_size, default=None, metavar="SIZE")
    record.add_argument("--define", "-D", action="append", default=[], type=parse_define, metavar="NAME=VALUE")
    record.add_argument("--paging", action="store_true",
                        help="start the program paged, as 'hgcmlab run --paging' does (docs/paging.md)")
    add_budget_options(record)
    record.add_argument("--blocks", action="store_true", help="also trace executed blocks (large traces)")
    record.add_argument("--reproducible", action="store_true",
                        help="shares show no host-dependent object or volume information (as hgcmlab run)")
    record.add_argument("--memory", action="store_true",
                        help="also trace every guest data access (memory events; very large traces)")
    record.add_argument("--instructions", action="store_true",
                        help="also trace every executed instruction with its disassembly (very large traces)")
    record.add_argument("--kind", action="append", default=[], metavar="KIND[,KIND]",
                        help="write only these event kinds (repeatable)")

    show_parser = actions.add_parser("show", help="print events as text",
                                     description="Print the events of FILE, one per line: cycle, instructions, "
                                                 "pc, kind, decoded details. Filters combine with AND.")
    show_parser.add_argument("file", type=Path)
    show_parser.add_argument("--kind", action="append", default=[], metavar="KIND[,KIND]")
    show_parser.add_argument("--device", action="append", default=[], metavar="NAME",
                             help="e.g. vmmdev, debuglog, exit, pci")
    show_parser.add_argument("--function", action="append", default=[], metavar="NAME",
                             help="HGCM function (CREATE, SHFL_FN_CREATE or 3): its calls and completions")
    show_parser.add_argument("--from-cycle", type=int, metavar="N")
    show_parser.add_argument("--to-cycle", type=int, metavar="N")
    show_parser.add_argument("--limit", type=int, metavar="N", help="print at most N events")

    stats = actions.add_parser("stats", help="summarise a trace",
                               description="Calls per HGCM function with latency distribution (cycles) and bytes "
                                           "moved, event counts, and instructions/cycles per phase (a phase "
                                           "starts at each guest log line).")
    stats.add_argument("file", type=Path)

    diff = actions.add_parser("diff", help="first difference between two traces",
                              description="Compare two traces event by event and print the first divergence "
                                          "with context. Exit 0 when equal, 1 when different.")
    diff.add_argument("a", type=Path)
    diff.add_argument("b", type=Path)
    diff.add_argument("--kind", action="append", default=[], metavar="KIND[,KIND]", help="compare only these kinds")
    diff.add_argument("--ignore", action="append", default=[], metavar="FIELD[,FIELD]",
                      help="fields (or cycle/instructions/pc) left out of the comparison")
    diff.add_argument("--no-stamps", action="store_true", help="ignore cycle, instructions and pc")
    diff.add_argument("--context", type=int, default=5, metavar="N", help="events of context (default 5)")

    export = actions.add_parser("export", help="convert a trace for other tools",
                                description="perfetto: Chrome trace-event JSON for ui.perfetto.dev (1 us = 1 "
                                            "cycle); drcov: drcov v2 block coverage (needs block events).")
    export.add_argument("file", type=Path)
    export.add_argument("--format", choices=("perfetto", "drcov"), required=True)
    export.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    trace.set_defaults(trace_parser=trace)


def run_trace_command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``hgcmlab trace ACTION``; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    action = getattr(args, "trace_command", None)
    try:
        if action == "record":
            return _record(args, out, err)
        if action == "show":
            selection = ShowFilter(_kinds(args.kind), frozenset(args.device), _csv(args.function),
                                   args.from_cycle, args.to_cycle)
            show(read_trace(args.file), out, selection, args.limit)
            return 0
        if action == "stats":
            out.write(format_stats(compute_stats(read_trace(args.file))))
            return 0
        if action == "diff":
            divergence = first_divergence(read_trace(args.a), read_trace(args.b), kinds=_kinds(args.kind),
                                          stamps=not args.no_stamps, ignore=_fields(args.ignore),
                                          context=max(0, args.context))
            if divergence is None:
                out.write("traces are equal\n")
                return 0
            out.write(divergence.format(str(args.a), str(args.b)))
            return EXIT_DIFFERENT
        if action == "export":
            return _export(args, out)
        args.trace_parser.print_help(out)
        return EXIT_USAGE
    except (TraceFileError, TraceWriteError, _TraceUsageError) as error:
        print(f"hgcmlab: error: {error}", file=err)
        return EXIT_USAGE
    except BrokenPipeError:  # `hgcmlab trace show big.jsonl | head`
        return 0


def _open_output(path: Path, mode: str) -> Any:
    try:
        return path.open(mode, **({} if "b" in mode else {"encoding": "utf-8"}))
    except OSError as error:
        raise _TraceUsageError(f"cannot write {path}: {error.strerror or error}") from None


@contextlib.contextmanager
def _closing_output(stream: Any, path: Path) -> Iterator[None]:
    """Close ``stream`` at the end; a write or the final flush that the operating system
    refuses (a full disk) becomes a one-line ``TraceWriteError`` naming ``path``."""
    try:
        try:
            yield
        finally:
            stream.close()
    except OSError as error:
        with contextlib.suppress(OSError):
            stream.close()
        raise TraceWriteError(f"cannot write {path}: {error.strerror or error}") from None


def _export(args: argparse.Namespace, out: TextIO) -> int:
    from hgcmlab.machine.trace.blocks import write_drcov

    # Read fully through once first, so a bad input file leaves no half-written output.
    for _ in read_trace(args.file):
        pass
    if args.format == "perfetto":
        stream = _open_output(args.output, "w")
        with _closing_output(stream, args.output):
            count = export_perfetto(read_trace(args.file), stream, name=args.file.name)
        out.write(f"wrote {count} trace events to {args.output} (open it in https://ui.perfetto.dev)\n")
        return 0
    stream = _open_output(args.output, "wb")
    with _closing_output(stream, args.output):
        try:
            count = write_drcov(read_trace(args.file), stream)
        except ValueError as error:
            stream.close()
            args.output.unlink(missing_ok=True)
            raise _TraceUsageError(f"{args.file}: {error}") from None
    out.write(f"wrote {count} basic blocks to {args.output} (drcov version 2)\n")
    return 0


def _record(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from hgcmlab.machine.loader import LoadError, image_from_file
    from hgcmlab.machine.machine import DEFAULT_RAM_SIZE
    from hgcmlab.machine.runcontrol import (
        ProgressLine,
        budgets_from_args,
        end_report,
        exit_status,
        run_supervised,
    )
    from hgcmlab.machine.trace.blocks import trace_blocks

    budgets = budgets_from_args(args)
    progress = ProgressLine(err)
    try:
        image = image_from_file(args.program, mode=args.mode, defines=dict(args.define),
                                ram_size=args.ram or DEFAULT_RAM_SIZE, paging=args.paging)
    except LoadError as error:
        raise _TraceUsageError(str(error)) from None
    try:
        machine = vbox_board(args.mode, args.ram or DEFAULT_RAM_SIZE, trace_memory=args.memory,
                          trace_instructions=args.instructions, reproducible=args.reproducible)
    except ValueError as error:
        raise _TraceUsageError(str(error)) from None
    try:
        for name, directory, writable in args.share:
            machine.add_share(name, directory, writable=writable)
        machine.set_arguments(args.arguments)
        machine.load(image, paging=args.paging)
        kinds = _kinds(args.kind) or None
        writer = TraceWriter(args.output, kinds)
        with writer:
            machine.tracer.add_sink(writer)
            if args.blocks:
                trace_blocks(machine)
            try:
                result = run_supervised(machine, budgets, progress)
            except TraceWriteError as error:
                raise TraceWriteError(f"{error}; run stopped after {machine.cpu.instructions} instructions") from None
    except ValueError as error:
        raise _TraceUsageError(str(error)) from None
    finally:
        machine.close()
    report = end_report(result)
    if report is not None:
        print(report, file=err)
    out.write(f"run ended ({result.end.value}, exit code {result.exit_code}) after {result.instructions} "
              f"instructions, {result.cycles} cycles; wrote {writer.count} events to {args.output}\n")
    return exit_status(result)
