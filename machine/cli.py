"""The ``hgcmlab`` command line.

``hgcmlab run PROGRAM`` runs an assembly source, flat binary or ELF executable;
``hgcmlab demo`` runs the bundled shared-folder demo against a temporary folder;
``hgcmlab devices`` lists the device plugins installed under the ``hgcmlab.devices``
entry-point group.  Errors in what the user typed or supplied end with a one-line message
and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TextIO

from devices.vmmdev.config import HgcmTiming, VMMDevConfig
from machine.asmcli import register_asm_command, run_asm_command
from machine.clock import INSTRUCTION_CLASSES, CostProfile
from machine.gdbstub.cli import DebugRunEnded, GdbRunner, add_gdb_option, gdb_runner
from machine.device import DEVICE_ENTRY_POINT_GROUP, Device
from machine.loader import LoadError, image_from_file
from machine.machine import DEFAULT_INSTRUCTION_BUDGET, DEFAULT_RAM_SIZE, Machine, RunEnd, RunResult
from machine.trace.cli import register_trace_commands, run_trace_command
from machine.tracing import CallbackSink, JsonLinesSink, ListSink, TraceEvent

#: Process exit status for a guest fault or an exhausted instruction budget.
EXIT_GUEST_FAULT = 3
#: Process exit status for bad usage, unreadable programs and assembly errors.
EXIT_USAGE = 2

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


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hgcmlab",
        description="Run x86 guest programs against a model of VirtualBox's VMMDev, HGCM and "
                    "Shared Folders host service.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run a guest program",
        description="Run an assembly source (.s/.asm, assembled with keystone), a flat binary "
                    "(loaded and entered at 0x10000) or an ELF executable. Guest log lines "
                    "(port 0x504) are printed as they come; the exit status is the guest's exit "
                    f"code (port 0xF4; 0 after hlt; codes above 255 become 255), {EXIT_GUEST_FAULT} "
                    f"after a guest fault or exhausted budget, {EXIT_USAGE} for usage errors.")
    run.add_argument("program", type=Path, help="program file (.s/.asm source, flat binary or ELF)")
    run.add_argument("arguments", nargs="*", metavar="ARG",
                     help="arguments for the program, after --, e.g. -- d:/notes.txt (written to the "
                          "argument block at 0x1000: u32 argc, u32 size, u32 offsets, strings)")
    _add_machine_options(run)
    add_gdb_option(run)
    run.add_argument("--define", "-D", action="append", default=[], type=parse_define, metavar="NAME=VALUE",
                     help="integer constant for assembly sources (repeatable)")
    run.add_argument("--trace", type=Path, metavar="FILE", help="write every trace event to FILE (JSON Lines)")
    run.add_argument("--quiet", "-q", action="store_true", help="print only guest log lines, no summary")

    demo = commands.add_parser(
        "demo", help="run the bundled shared-folder demo",
        description="Assemble the bundled demo guest program, share a temporary host folder as "
                    "'demo', run the program (it creates hello.txt through HGCM calls, writes, "
                    "reads back and compares), and show what happened and the host file.")
    demo.add_argument("--mode", type=int, choices=(64, 32), default=64, help="CPU mode (default 64)")
    demo.add_argument("--keep", type=Path, metavar="DIR",
                      help="share this existing directory instead of a temporary one")
    demo.add_argument("--trace", type=Path, metavar="FILE", help="write every trace event to FILE (JSON Lines)")

    commands.add_parser("devices", help="list installed device plugins",
                        description=f"List device plugins registered under the '{DEVICE_ENTRY_POINT_GROUP}' "
                                    "entry-point group (usable with run --device).")
    register_trace_commands(commands)
    register_asm_command(commands, parse_define)
    return parser


def _add_machine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", type=int, choices=(64, 32), default=64,
                        help="CPU mode: 64-bit long mode or 32-bit flat protected mode (default 64)")
    parser.add_argument("--share", action="append", default=[], type=parse_share, metavar="NAME=DIR[:ro]",
                        help="share host directory DIR as NAME, read-only with :ro (repeatable)")
    parser.add_argument("--ram", type=parse_size, default=DEFAULT_RAM_SIZE, metavar="SIZE",
                        help="guest RAM size, e.g. 64M or 1G (default 64M)")
    parser.add_argument("--max-instructions", type=int, default=DEFAULT_INSTRUCTION_BUDGET, metavar="N",
                        help=f"instruction budget before the run is stopped (default {DEFAULT_INSTRUCTION_BUDGET})")
    parser.add_argument("--strict-guest-info", action="store_true",
                        help="refuse requests before ReportGuestInfo, as VirtualBox does")
    parser.add_argument("--costs", type=Path, metavar="FILE",
                        help="JSON object overriding instruction-class costs in cycles, e.g. "
                             '{"divide": 40, "port_io": 100} (classes: ' + ", ".join(INSTRUCTION_CLASSES) + ")")
    parser.add_argument("--hgcm-cycles", type=int, metavar="N",
                        help=f"cycles every HGCM command costs, plus {HgcmTiming().byte_cycles} per buffer "
                             "byte (default: each service function's declared cost, "
                             f"{HgcmTiming().call_cycles} for connect/disconnect)")
    parser.add_argument("--async-hgcm", action="store_true",
                        help="complete every HGCM command asynchronously, after its cost in cycles "
                             "(the guest sees VINF_HGCM_ASYNC_EXECUTE and waits for DONE)")
    parser.add_argument("--device", action="append", default=[], metavar="NAME[@PORT]",
                        help="attach an installed device plugin, at I/O base PORT if it needs one (repeatable)")


def _version() -> str:
    try:
        return metadata.version("hgcmlab")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _plugin_devices() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=DEVICE_ENTRY_POINT_GROUP)}


def _attach_plugins(machine: Machine, specs: Sequence[str]) -> None:
    available = _plugin_devices()
    builtin = {device.name for device in machine.devices}
    for spec in specs:
        name, _, port_text = spec.partition("@")
        if name in builtin:
            raise UsageError(f"device {name!r} is built into every machine; it cannot be added twice")
        if name not in available:
            known = ", ".join(sorted(available)) or "none"
            raise UsageError(f"unknown device {name!r} (installed: {known})")
        try:
            base = int(port_text, 0) if port_text else None
        except ValueError:
            raise UsageError(f"device {spec!r}: {port_text!r} is not a port number") from None
        device_class = available[name].load()
        device: Device = device_class()
        try:
            machine.add_device(device, base)
        except ValueError as error:
            raise UsageError(str(error)) from None


def _vmmdev_config(args: argparse.Namespace) -> VMMDevConfig:
    timing = HgcmTiming()
    cycles = getattr(args, "hgcm_cycles", None)
    if cycles is not None:
        if cycles < 0:
            raise UsageError("--hgcm-cycles must not be negative")
        timing = dataclasses.replace(timing, call_cycles=cycles, declared_costs=False)
    if getattr(args, "async_hgcm", False):
        timing = dataclasses.replace(timing, force_async=True)
    return VMMDevConfig(require_guest_info=getattr(args, "strict_guest_info", False), timing=timing)


def _make_machine(args: argparse.Namespace, out: TextIO) -> Machine:
    costs = None
    costs_path: Path | None = getattr(args, "costs", None)
    try:
        if costs_path is not None:
            costs = CostProfile.from_file(costs_path)
        machine = Machine(args.mode, getattr(args, "ram", DEFAULT_RAM_SIZE), costs=costs,
                          vmmdev_config=_vmmdev_config(args))
    except ValueError as error:
        raise UsageError(str(error)) from None
    for name, directory, writable in getattr(args, "share", []):
        try:
            machine.add_share(name, directory, writable=writable)
        except ValueError as error:
            raise UsageError(str(error)) from None
    _attach_plugins(machine, getattr(args, "device", []))
    machine.tracer.add_sink(CallbackSink({"guest_log"}, lambda event: _print_log(event, out)))
    return machine


def _print_log(event: TraceEvent, out: TextIO) -> None:
    print(f"[guest] {event.fields['line']}", file=out, flush=True)


def _exit_status(result: RunResult) -> int:
    if result.end in (RunEnd.FAULT, RunEnd.BUDGET):
        return EXIT_GUEST_FAULT
    return result.exit_code if 0 <= result.exit_code <= 255 else 255


def _summary(result: RunResult, events: ListSink) -> list[str]:
    ending = {
        RunEnd.EXIT: f"exit device, code {result.exit_code}",
        RunEnd.HALT: "hlt",
        RunEnd.BUDGET: "instruction budget exhausted",
        RunEnd.FAULT: "guest fault",
    }[result.end]
    calls = Counter(str(e.fields.get("function_name")) for e in events.of_kind("hgcm_call"))
    lines = [f"run ended by {ending} after {result.instructions} instructions, {result.cycles} cycles"]
    connects = len(events.of_kind("hgcm_connect"))
    total = sum(calls.values())
    detail = ", ".join(f"{name} x{count}" for name, count in sorted(calls.items()))
    lines.append(f"HGCM: {connects} connect(s), {total} call(s){': ' + detail if detail else ''}")
    return lines


def _run_machine(machine: Machine, args: argparse.Namespace, max_instructions: int,
                 gdb: GdbRunner | None = None) -> tuple[RunResult, ListSink]:
    """Run (under ``gdb`` when given) with a summary collector and an optional JSON Lines
    trace file."""
    run = gdb or machine.run
    collected = ListSink()
    summary_kinds = {"hgcm_call", "hgcm_connect"}
    machine.tracer.add_sink(lambda event: collected(event) if event.kind in summary_kinds else None)
    trace_path: Path | None = getattr(args, "trace", None)
    if trace_path is None:
        return run(max_instructions), collected
    try:
        stream = trace_path.open("w", encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write trace file {trace_path}: {error.strerror}") from None
    with stream:
        sink = JsonLinesSink(stream)
        machine.tracer.add_sink(sink)
        try:
            return run(max_instructions), collected
        finally:
            machine.tracer.remove_sink(sink)


def _cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.max_instructions <= 0:
        raise UsageError("--max-instructions must be positive")
    try:
        image = image_from_file(args.program, mode=args.mode, defines=dict(args.define))
    except LoadError as error:
        raise UsageError(str(error)) from None
    machine = _make_machine(args, out)
    try:
        machine.set_arguments(args.arguments)
        machine.load(image)
    except ValueError as error:
        machine.close()
        raise UsageError(str(error)) from None
    gdb = None
    try:
        if args.gdb is not None:
            try:
                gdb = gdb_runner(machine, args, err)
            except ValueError as error:
                raise UsageError(str(error)) from None
        result, collected = _run_machine(machine, args, args.max_instructions, gdb)
    except DebugRunEnded as ended:
        print(f"hgcmlab: {ended}", file=err)
        return EXIT_GUEST_FAULT
    finally:
        if gdb is not None:
            gdb.close()
        machine.close()
    if result.fault is not None:
        print(result.fault.format(), file=err)
    if not args.quiet:
        for line in _summary(result, collected):
            print(line, file=out)
    return _exit_status(result)


def _cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from machine.programs import bundled_program

    image = bundled_program("demo.s", mode=args.mode)
    with tempfile.TemporaryDirectory(prefix="hgcmlab-demo-") as temporary:
        folder = args.keep if args.keep is not None else Path(temporary)
        if not folder.is_dir():
            raise UsageError(f"--keep {folder}: not an existing directory")
        args.share = [("demo", folder, True)]
        machine = _make_machine(args, out)
        machine.load(image)
        print(f"sharing {folder} as 'demo'; running the bundled demo.s ({args.mode}-bit)", file=out)
        try:
            result, collected = _run_machine(machine, args, DEFAULT_INSTRUCTION_BUDGET)
        finally:
            machine.close()
        if result.fault is not None:
            print(result.fault.format(), file=err)
        for line in _summary(result, collected):
            print(line, file=out)
        host_file = folder / "hello.txt"
        if host_file.is_file():
            content = host_file.read_bytes()
            print(f"host file {host_file} ({len(content)} bytes written):", file=out)
            print(content.decode("utf-8", errors="replace").rstrip("\n"), file=out)
        else:
            print(f"host file {host_file} was not created", file=out)
        return _exit_status(result)


def _cmd_devices(out: TextIO) -> int:
    available = _plugin_devices()
    for name, entry_point in sorted(available.items()):
        print(f"{name}\t{entry_point.value}", file=out)
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Entry point of the ``hgcmlab`` command; returns the process exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    # Everything after the first "--" belongs to the guest program, wherever the options
    # stand (argparse alone would give the program's positional arguments away early).
    guest_arguments: list[str] = []
    if "--" in words:
        cut = words.index("--")
        words, guest_arguments = words[:cut], words[cut + 1:]
    try:
        # argparse prints help and errors itself; send them to our streams.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(words)
    except SystemExit as exit_request:
        return int(exit_request.code or 0)
    if guest_arguments:
        if not hasattr(args, "arguments"):
            print(f"hgcmlab: error: {args.command or 'this command'} takes no program arguments after --", file=err)
            return EXIT_USAGE
        args.arguments = list(args.arguments) + guest_arguments
    try:
        if args.command == "run":
            return _cmd_run(args, out, err)
        if args.command == "demo":
            return _cmd_demo(args, out, err)
        if args.command == "devices":
            return _cmd_devices(out)
        if args.command == "trace":
            return run_trace_command(args, out, err)
        if args.command == "asm":
            return run_asm_command(args, out, err)
        parser.print_help(out)
        return EXIT_USAGE
    except UsageError as error:
        print(f"hgcmlab: error: {error}", file=err)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
