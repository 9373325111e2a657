"""What the ``hgcmlab`` subcommands share: the usage error every command reports in one
line, the option parsers, the VMMDev settings the options give, and the supervised run
with its trace file, guest log printing and end-of-run report.

It lives apart from machine/cli.py, which registers the subcommand modules
(machine/replaycli.py, machine/trace/cli.py, ...), so that those modules can use it
without importing the main CLI back (tests/structure/test_imports.py: no import cycle).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import re
import sys
from pathlib import Path
from typing import TextIO

from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.devices.vmmdev.device import HgcmCounts
from hgcmlab.machine.gdbstub.cli import GdbRunner
from hgcmlab.machine.machine import Machine, RunEnd, RunResult
from hgcmlab.machine.runcontrol import Budgets, ProgressLine, end_report, run_supervised
from hgcmlab.machine.snapshotcli import SaveAtError, parse_save_at, run_saving
from hgcmlab.machine.trace.files import TraceWriteError, TraceWriter
from hgcmlab.machine.trace.record import HEADER_KIND
from hgcmlab.machine.tracing import SinkError, TraceEvent

_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


class UsageError(Exception):
    """Something the user supplied is wrong; the message says what."""

def parse_size(text: str) -> int:
    """Parse a RAM size such as ``65536``, ``64M``, ``64MiB`` or ``1G``."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (examples: 64M, 1G, 131072)")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]


def parse_share(text: str) -> tuple[str, Path, bool]:
    """Parse ``NAME=DIR`` or ``NAME=DIR:ro`` (``:rw`` is accepted too) into (name, dir, writable)."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise argparse.ArgumentTypeError(f"invalid share {text!r}: expected NAME=DIR or NAME=DIR:ro")
    writable = True
    lowered = rest.lower()
    if lowered.endswith(":ro"):
        writable, rest = False, rest[:-3]
    elif lowered.endswith(":rw"):
        rest = rest[:-3]
    directory = Path(rest).expanduser()
    if not directory.is_dir():
        raise argparse.ArgumentTypeError(f"share {name!r}: {rest!r} is not an existing directory")
    return name, directory, writable


def parse_define(text: str) -> tuple[str, int]:
    """Parse ``NAME=VALUE`` with an integer value (decimal, 0x.., 0o.., 0b..)."""
    name, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise argparse.ArgumentTypeError(f"invalid define {text!r}: expected NAME=INTEGER")
    try:
        return name, int(value, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid define {text!r}: {value!r} is not an integer") from None

def vmmdev_config(args: argparse.Namespace) -> VMMDevConfig:
    timing = HgcmTiming()
    cycles = getattr(args, "hgcm_cycles", None)
    if cycles is not None:
        if cycles < 0:
            raise UsageError("--hgcm-cycles must not be negative")
        timing = dataclasses.replace(timing, call_cycles=cycles, declared_costs=False)
    if getattr(args, "async_hgcm", False):
        timing = dataclasses.replace(timing, force_async=True)
    return VMMDevConfig(require_guest_info=getattr(args, "strict_guest_info", False), timing=timing,
                        native=not getattr(args, "no_native", False),
                        accelerator=not getattr(args, "no_accelerator", False))


class OutputRefused(SinkError):
    """Standard output refused a guest log line (a closed pipe, a full disk).  Raised as a
    sink error so that the port bus lets it pass unchanged (it is not the log device's
    failure); ``main`` re-raises the ``OSError`` itself for the console entry point."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def print_log(event: TraceEvent, out: TextIO) -> None:
    try:
        print(f"[guest] {event.fields['line']}", file=out, flush=True)
    except OSError as error:
        raise OutputRefused(error) from error


def summary(result: RunResult, counts: HgcmCounts) -> list[str]:
    ending = {
        RunEnd.EXIT: f"exit device, code {result.exit_code}",
        RunEnd.HALT: "hlt",
        RunEnd.BUDGET: _budget_name(result),
        RunEnd.FAULT: "guest fault",
        RunEnd.INTERRUPTED: "interrupt (Ctrl-C)",
        RunEnd.DIVERGED: "replay divergence",
    }[result.end]
    calls = counts.calls
    lines = [f"run ended by {ending} after {result.instructions} instructions, {result.cycles} cycles"]
    connects = counts.connects
    total = counts.total_calls
    detail = ", ".join(f"{name} x{count}" for name, count in sorted(calls.items()))
    lines.append(f"HGCM: {connects} connect(s), {total} call(s){': ' + detail if detail else ''}")
    return lines


def _budget_name(result: RunResult) -> str:
    """The budget that ended the run, e.g. 'instruction budget of 500'."""
    description = result.fault.description if result.fault is not None else "budget exhausted"
    return description.removesuffix(" exhausted")


def report_end(result: RunResult, err: TextIO) -> None:
    """The fault or budget report, or the one-line interruption message, on stderr."""
    report = end_report(result)
    if report is not None:
        print(report, file=err)


def run_machine(machine: Machine, args: argparse.Namespace, budgets: Budgets,
                 progress: ProgressLine | None = None,
                 gdb: GdbRunner | None = None,
                 header: dict[str, object] | None = None,
                 err: TextIO = sys.stderr) -> tuple[RunResult, HgcmCounts]:
    """Run within ``budgets`` (Ctrl-C stops it; ``progress`` is kept up to date), or under
    ``gdb`` when given (which honours the instruction budget only), with an optional trace
    file (JSON Lines, gzip-compressed when its name ends in ``.gz``), which starts with an
    ``hgcm_recording`` event holding ``header`` when given; also returns the VMMDev's call
    counts for the summary (kept by the device, so that a run without a trace file has no
    trace listener but the guest log's).  A trace file that cannot be written stops the run
    and becomes a ``UsageError`` naming the file and the reason."""
    collected = machine.vmmdev.counts

    save_at = getattr(args, "save_at", None)

    def run() -> RunResult:
        if gdb is not None:
            return gdb(budgets.instructions)
        if save_at is not None:
            try:
                return run_saving(machine, budgets, progress, *parse_save_at(save_at), err)
            except (SaveAtError, argparse.ArgumentTypeError) as error:
                raise UsageError(str(error)) from None
        return run_supervised(machine, budgets, progress)

    trace_path: Path | None = getattr(args, "trace", None)
    if trace_path is None:
        return run(), collected
    try:
        writer = TraceWriter(trace_path)
    except TraceWriteError as error:
        raise UsageError(str(error)) from None
    machine.tracer.add_sink(writer)
    try:
        if header is not None:
            machine.tracer.emit(HEADER_KIND, **header)
        result = run()
    except TraceWriteError as error:
        raise UsageError(f"{error}; run stopped after {machine.cpu.instructions} instructions") from None
    except BaseException:
        with contextlib.suppress(TraceWriteError):  # the run's own error is the one to report
            writer.close()
        raise
    finally:
        machine.tracer.remove_sink(writer)
    try:
        writer.close()
    except TraceWriteError as error:
        raise UsageError(f"{error}; the run ended ({result.end.value}) but the trace is incomplete") from None
    return result, collected

