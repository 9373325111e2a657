"""The ``hgcmlab`` command line.

``hgcmlab run PROGRAM`` runs an assembly source, flat binary or ELF executable;
``hgcmlab demo`` runs the bundled shared-folder demo against a temporary folder;
``hgcmlab devices`` lists the device plugins installed under the ``hgcmlab.devices``
entry-point group; ``hgcmlab replay`` re-runs a recording (``run --trace FILE --record``)
without shares (machine/replaycli.py); ``hgcmlab resume`` continues a run from a snapshot
``run --save-at`` wrote (machine/snapshotcli.py).  Errors in what the user typed or supplied end with a one-line message
and exit status 2, never a traceback.  Runs are unbounded unless a budget option says
otherwise, stop promptly on Ctrl-C (status 130) and give the exit statuses documented in
machine/runcontrol.py.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TextIO

from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.devices.vmmdev.device import HgcmCounts
from hgcmlab.machine.asmcli import register_asm_command, run_asm_command
from hgcmlab.machine.ccli import CompileError, register_build_command, report_compile_error, run_build_command
from hgcmlab.machine.clock import INSTRUCTION_CLASSES, CostProfile
from hgcmlab.machine.gdbstub.cli import DebugRunEnded, GdbRunner, add_gdb_option, gdb_runner
from hgcmlab.machine.device import DEVICE_ENTRY_POINT_GROUP, Device, DeviceFailure
from hgcmlab.machine.guestpropcli import add_dump_option, add_guest_property_option, apply_guest_properties, dump_lines
from hgcmlab.machine.loader import LoadError, image_from_file
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import DEFAULT_RAM_SIZE, Machine, RunEnd, RunResult
from hgcmlab.machine.runcontrol import (
    EXIT_BUDGET,
    EXIT_DEVICE_FAILURE,
    EXIT_GUEST_FAULT,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Budgets,
    ProgressLine,
    add_budget_options,
    budgets_from_args,
    end_report,
    exit_status,
    run_supervised,
)
from hgcmlab.machine.replaycli import record_header, register_replay_command, run_replay_command
from hgcmlab.machine.snapshot import SnapshotError
from hgcmlab.machine.snapshotcli import (
    SaveAtError,
    add_save_option,
    parse_save_at,
    register_resume_command,
    resumed_machine,
    run_saving,
)
from hgcmlab.machine.trace.cli import register_trace_commands, run_trace_command
from hgcmlab.machine.trace.record import HEADER_KIND, record_front
from hgcmlab.machine.trace.files import TraceWriteError, TraceWriter
from hgcmlab.machine.tracing import CallbackSink, SinkError, TraceEvent
from hgcmlab.services.hgcm import HgcmService

#: ``vbox_board(hgcm_front=...)``: the service registered in place of Shared Folders.
HgcmFront = Callable[[Machine, HgcmService], HgcmService]

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
        description="Run an assembly source (.s/.asm, assembled with keystone), a C source (.c, built "
                    "with gcc or clang and the C guest kit, as 'hgcmlab build'), a flat binary "
                    "(loaded and entered at 0x10000) or an ELF executable. Guest log lines "
                    "(port 0x504) are printed as they come; the exit status is the guest's exit "
                    f"code (port 0xF4; 0 after hlt; codes above 255 become 255), {EXIT_USAGE} for "
                    f"usage errors, {EXIT_BUDGET} when a budget runs out, {EXIT_GUEST_FAULT} after a "
                    f"guest fault, {EXIT_INTERRUPTED} after Ctrl-C, {EXIT_DEVICE_FAILURE} when a device "
                    "fails. Runs have no budget unless given one.")
    run.add_argument("program", type=Path, help="program file (.s/.asm or .c source, flat binary or ELF)")
    run.add_argument("arguments", nargs="*", metavar="ARG",
                     help="arguments for the program, after --, e.g. -- d:/notes.txt (written to the "
                          "argument block at 0x1000: u32 argc, u32 size, u32 offsets, strings)")
    _add_machine_options(run)
    add_gdb_option(run)
    run.add_argument("--define", "-D", action="append", default=[], type=parse_define, metavar="NAME=VALUE",
                     help="integer constant for assembly sources, -DNAME=VALUE for C sources (repeatable)")
    run.add_argument("--paging", action="store_true",
                     help="start the program paged: page tables identity-map the address space, an ELF's "
                          "segments are placed at their physical and mapped at their virtual addresses "
                          "(e.g. a higher-half kernel); layout in docs/paging.md")
    run.add_argument("--trace", type=Path, metavar="FILE",
                     help="write every trace event to FILE (JSON Lines; gzip-compressed if FILE ends in .gz)")
    run.add_argument("--record", action="store_true",
                     help="keep in the --trace file everything the host services returned to the guest, "
                          "so that 'hgcmlab replay FILE' can re-run the program without the shares")
    add_dump_option(run)
    run.add_argument("--quiet", "-q", action="store_true",
                     help="print only guest log lines: no summary, no progress line")
    add_save_option(run)

    demo = commands.add_parser(
        "demo", help="run the bundled shared-folder demo",
        description="Assemble the bundled demo guest program, share a temporary host folder as "
                    "'demo', run the program (it creates hello.txt through HGCM calls, writes, "
                    "reads back and compares), and show what happened and the host file.")
    demo.add_argument("--mode", type=int, choices=(64, 32), default=64, help="CPU mode (default 64)")
    demo.add_argument("--keep", type=Path, metavar="DIR",
                      help="share this existing directory instead of a temporary one")
    demo.add_argument("--trace", type=Path, metavar="FILE",
                      help="write every trace event to FILE (JSON Lines; gzip-compressed if FILE ends in .gz)")
    add_budget_options(demo)

    commands.add_parser("devices", help="list installed device plugins",
                        description=f"List device plugins registered under the '{DEVICE_ENTRY_POINT_GROUP}' "
                                    "entry-point group (usable with run --device).")
    register_trace_commands(commands)
    register_asm_command(commands, parse_define)
    register_build_command(commands, parse_define)
    register_replay_command(commands)
    register_resume_command(commands)
    return parser


def _add_machine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", type=int, choices=(64, 32), default=64,
                        help="CPU mode: 64-bit long mode or 32-bit flat protected mode (default 64)")
    parser.add_argument("--share", action="append", default=[], type=parse_share, metavar="NAME=DIR[:ro]",
                        help="share host directory DIR as NAME, read-only with :ro (repeatable)")
    parser.add_argument("--ram", type=parse_size, default=DEFAULT_RAM_SIZE, metavar="SIZE",
                        help="guest RAM size, e.g. 64M or 1G (default 64M)")
    add_budget_options(parser)
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
    parser.add_argument("--reproducible", action="store_true",
                        help="shares show the guest no host-dependent file times, inode/device "
                             "numbers, owners, directory sizes or volume figures, so two runs give "
                             "identical traces (see docs/tracing.md)")
    add_guest_property_option(parser)
    parser.add_argument("--device", action="append", default=[], metavar="NAME[@PORT]",
                        help="attach an installed device plugin at I/O base PORT, or where the machine finds "
                             "room (first free aligned block from 0xc000; printed) (repeatable)")


def _version() -> str:
    try:
        return metadata.version("hgcmlab")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _plugin_devices() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=DEVICE_ENTRY_POINT_GROUP)}


def _builtin_ports(machine: Machine, device: Device) -> str:
    """Where a machine's own ``device`` sits, e.g. ``port 0xf4`` or ``ports 0xd020, 0xd028``."""
    bases = [machine.bus.base_of(device, r.name) for r in device.port_ranges()]
    text = ", ".join(f"{base:#x}" for base in bases if base is not None)
    return f"port{'s' if len(bases) > 1 else ''} {text}"


def _load_plugin(name: str, entry_point: metadata.EntryPoint) -> Device:
    """Import and instantiate the plugin ``name``; anything that goes wrong (import error,
    constructor failure, not a ``Device``) is a one-line UsageError."""
    try:
        device = entry_point.load()()
    except Exception as error:  # noqa: BLE001 - third-party code: any failure is reported in one line
        raise UsageError(f"device {name!r} ({entry_point.value}) cannot be loaded: "
                         f"{type(error).__name__}: {error}") from None
    if not isinstance(device, Device):
        raise UsageError(f"device {name!r} ({entry_point.value}) is not a hgcmlab.machine.device.Device "
                         "(it needs name, port_ranges, attach, io_read and io_write)")
    return device


def _attach_plugins(machine: Machine, specs: Sequence[str], out: TextIO, quiet: bool) -> None:
    """Attach ``--device NAME[@PORT]`` plugins; without PORT the machine picks the first free
    block (``PortBus.free_base``) and the choice is printed (unless ``quiet``)."""
    available = _plugin_devices()
    builtin = {device.name: device for device in machine.devices}
    for spec in specs:
        name, _, port_text = spec.partition("@")
        if name in builtin:
            raise UsageError(f"device {name!r} is already on this board ({_builtin_ports(machine, builtin[name])}) "
                             "and a board has one of it; guest programs use it without --device")
        if name not in available:
            known = ", ".join(sorted(n for n in available if n not in builtin)) or "none"
            raise UsageError(f"unknown device {name!r} (installed plugins: {known})")
        try:
            base = int(port_text, 0) if port_text else None
        except ValueError:
            raise UsageError(f"device {spec!r}: {port_text!r} is not a port number") from None
        device = _load_plugin(name, available[name])
        try:
            machine.add_device(device, base)
        except ValueError as error:
            raise UsageError(f"device {spec!r}: {error}") from None
        except Exception as error:  # noqa: BLE001 - a plugin's port_ranges/attach is third-party code
            raise UsageError(f"device {spec!r} cannot be attached: {type(error).__name__}: {error}") from None
        if not quiet:
            placed = ", ".join(f"{r.name} {machine.bus.base_of(device, r.name):#x}" for r in device.port_ranges())
            print(f"device {name}: {placed or 'no ports'}", file=out)


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


def _make_machine(args: argparse.Namespace, out: TextIO, hgcm_front: HgcmFront | None = None) -> Machine:
    """The machine the options describe; ``hgcm_front`` as in ``Machine``."""
    costs = None
    costs_path: Path | None = getattr(args, "costs", None)
    try:
        if costs_path is not None:
            costs = CostProfile.from_file(costs_path)
        machine = vbox_board(args.mode, getattr(args, "ram", DEFAULT_RAM_SIZE), costs=costs,
                          vmmdev_config=_vmmdev_config(args),
                          reproducible=getattr(args, "reproducible", False), hgcm_front=hgcm_front)
    except ValueError as error:
        raise UsageError(str(error)) from None
    for name, directory, writable in getattr(args, "share", []):
        try:
            machine.add_share(name, directory, writable=writable)
        except ValueError as error:
            raise UsageError(str(error)) from None
    try:
        apply_guest_properties(machine, getattr(args, "guest_property", []))
    except ValueError as error:
        machine.close()
        raise UsageError(str(error)) from None
    _attach_plugins(machine, getattr(args, "device", []), out, getattr(args, "quiet", False))
    machine.tracer.add_sink(CallbackSink({"guest_log"}, lambda event: _print_log(event, out)))
    return machine


class _OutputRefused(SinkError):
    """Standard output refused a guest log line (a closed pipe, a full disk).  Raised as a
    sink error so that the port bus lets it pass unchanged (it is not the log device's
    failure); ``main`` re-raises the ``OSError`` itself for the console entry point."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _print_log(event: TraceEvent, out: TextIO) -> None:
    try:
        print(f"[guest] {event.fields['line']}", file=out, flush=True)
    except OSError as error:
        raise _OutputRefused(error) from error


def _summary(result: RunResult, counts: HgcmCounts) -> list[str]:
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


def _report_end(result: RunResult, err: TextIO) -> None:
    """The fault or budget report, or the one-line interruption message, on stderr."""
    report = end_report(result)
    if report is not None:
        print(report, file=err)


def _run_machine(machine: Machine, args: argparse.Namespace, budgets: Budgets,
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


def _cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    budgets = budgets_from_args(args)
    progress = None if args.quiet or args.gdb is not None else ProgressLine(err)
    if progress is not None:
        out = progress.guard(out)
    try:
        image = image_from_file(args.program, mode=args.mode, defines=dict(args.define), ram_size=args.ram,
                                paging=args.paging)
    except CompileError as error:
        report_compile_error(error, err)
        raise UsageError(str(error)) from None
    except LoadError as error:
        raise UsageError(str(error)) from None
    if args.record and args.trace is None:
        raise UsageError("--record keeps the recording in the trace: give --trace FILE too")
    if args.save_at is not None and (args.record or args.gdb is not None or args.device):
        raise UsageError("--save-at cannot be combined with --record, --gdb or --device "
                         "(a snapshot holds the vbox board's own devices only)")
    if args.save_at is not None:
        try:
            parse_save_at(args.save_at)
        except argparse.ArgumentTypeError as error:
            raise UsageError(f"--save-at: {error}") from None
    machine = _make_machine(args, out, record_front if args.record else None)
    try:
        machine.set_arguments(args.arguments)
        machine.load(image, paging=args.paging)
    except ValueError as error:
        machine.close()
        raise UsageError(str(error)) from None
    header = record_header(args, machine, image) if args.record else None
    gdb = None
    try:
        if args.gdb is not None:
            try:
                gdb = gdb_runner(machine, args, err)
            except ValueError as error:
                raise UsageError(str(error)) from None
        result, collected = _run_machine(machine, args, budgets, progress, gdb, header, err)
        properties = dump_lines(machine) if args.dump_guest_properties else []
    except DebugRunEnded as ended:
        print(f"hgcmlab: {ended}", file=err)
        return EXIT_GUEST_FAULT
    finally:
        if gdb is not None:
            gdb.close()
        machine.close()
    return _ended(result, collected, args.quiet, out, err, properties)


def _ended(result: RunResult, collected: HgcmCounts, quiet: bool, out: TextIO, err: TextIO,
           after: Sequence[str] = ()) -> int:
    """Report how a run of ``run``/``resume`` ended (then print the lines ``after``); its
    exit status."""
    _report_end(result, err)
    if not quiet:
        for line in _summary(result, collected):
            print(line, file=out)
    for line in after:
        print(line, file=out)
    return exit_status(result)


def _cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from hgcmlab.machine.programs import bundled_program

    image = bundled_program("demo.s", mode=args.mode)
    budgets = budgets_from_args(args)
    progress = ProgressLine(err)
    out = progress.guard(out)
    with tempfile.TemporaryDirectory(prefix="hgcmlab-demo-") as temporary:
        folder = args.keep if args.keep is not None else Path(temporary)
        if not folder.is_dir():
            raise UsageError(f"--keep {folder}: not an existing directory")
        args.share = [("demo", folder, True)]
        machine = _make_machine(args, out)
        machine.load(image)
        print(f"sharing {folder} as 'demo'; running the bundled demo.s ({args.mode}-bit)", file=out)
        try:
            result, collected = _run_machine(machine, args, budgets, progress)
        finally:
            machine.close()
        _report_end(result, err)
        for line in _summary(result, collected):
            print(line, file=out)
        host_file = folder / "hello.txt"
        if host_file.is_file():
            content = host_file.read_bytes()
            print(f"host file {host_file} ({len(content)} bytes written):", file=out)
            print(content.decode("utf-8", errors="replace").rstrip("\n"), file=out)
        else:
            print(f"host file {host_file} was not created", file=out)
        return exit_status(result)


def _cmd_resume(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    budgets = budgets_from_args(args)
    progress = None if args.quiet else ProgressLine(err)
    if progress is not None:
        out = progress.guard(out)
    try:
        machine = resumed_machine(args.snapshot, err)
    except SnapshotError as error:
        raise UsageError(str(error)) from None
    machine.tracer.add_sink(CallbackSink({"guest_log"}, lambda event: _print_log(event, out)))
    try:
        result, collected = _run_machine(machine, args, budgets, progress, err=err)
    finally:
        machine.close()
    return _ended(result, collected, args.quiet, out, err)


def _cmd_devices(out: TextIO) -> int:
    """One line per installed device: name, entry point, and for the devices every machine
    already has, where they sit (those cannot be added with --device)."""
    available = _plugin_devices()
    machine = vbox_board(64, 0x20000)
    try:
        builtin = {device.name: device for device in machine.devices}
        for name, entry_point in sorted(available.items()):
            where = (f"\tbuilt in ({_builtin_ports(machine, builtin[name])}), always present"
                     if name in builtin else "")
            print(f"{name}\t{entry_point.value}{where}", file=out)
    finally:
        machine.close()
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
        if args.command == "build":
            return run_build_command(args, out, err)
        if args.command == "replay":
            return run_replay_command(args, out, err)
        if args.command == "resume":
            return _cmd_resume(args, out, err)
        parser.print_help(out)
        return EXIT_USAGE
    except UsageError as error:
        print(f"hgcmlab: error: {error}", file=err)
        return EXIT_USAGE
    except _OutputRefused as refused:
        raise refused.error from None
    except DeviceFailure as error:
        print(f"hgcmlab: error: {error}", file=err)
        return EXIT_DEVICE_FAILURE
    except KeyboardInterrupt:
        # Ctrl-C outside a run (assembling, loading, printing); a run stops by itself.
        print("hgcmlab: interrupted", file=err)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
