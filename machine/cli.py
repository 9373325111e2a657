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
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TextIO

from hgcmlab.devices.vmmdev.config import HgcmTiming
from hgcmlab.devices.vmmdev.device import HgcmCounts
from hgcmlab.machine.asmcli import register_asm_command, run_asm_command
from hgcmlab.machine.ccli import CompileError, register_build_command, report_compile_error, run_build_command
from hgcmlab.machine.clicommon import (
    OutputRefused,
    UsageError,
    parse_define,
    parse_share,
    parse_size,
    print_log,
    report_end,
    run_machine,
    summary,
    vmmdev_config,
)
from hgcmlab.machine.clock import INSTRUCTION_CLASSES, CostProfile
from hgcmlab.machine.gdbstub.cli import DebugRunEnded, add_gdb_option, gdb_runner
from hgcmlab.machine.device import DEVICE_ENTRY_POINT_GROUP, DeviceFailure
from hgcmlab.machine.guestpropcli import add_dump_option, add_guest_property_option, apply_guest_properties, dump_lines
from hgcmlab.machine.loader import LoadError, image_from_file
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import DEFAULT_RAM_SIZE, Machine, RunResult
from hgcmlab.machine.plugincli import attach_plugins, run_devices_command
from hgcmlab.machine.runcontrol import (
    EXIT_BUDGET,
    EXIT_DEVICE_FAILURE,
    EXIT_GUEST_FAULT,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ProgressLine,
    add_budget_options,
    budgets_from_args,
    exit_status,
)
from hgcmlab.machine.replaycli import record_header, register_replay_command, run_replay_command
from hgcmlab.machine.snapshot import SnapshotError
from hgcmlab.machine.snapshotcli import add_save_option, parse_save_at, register_resume_command, resumed_machine
from hgcmlab.machine.trace.cli import register_trace_commands, run_trace_command
from hgcmlab.machine.trace.record import record_front
from hgcmlab.machine.tracing import CallbackSink
from hgcmlab.services.hgcm import HgcmService

#: ``vbox_board(hgcm_front=...)``: the service registered in place of Shared Folders.
HgcmFront = Callable[[Machine, HgcmService], HgcmService]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hgcmlab",
        description="Run x86 guest programs against a model of VirtualBox's VMMDev, HGCM and "
                    "Shared Folders host service.",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="show the version and whether the native accelerator is in use, and exit")
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
    parser.add_argument("--no-native", action="store_true",
                        help="complete Shared Folders READ/WRITE calls with the accelerator's Python hook "
                             "instead of its native one (identical results, slower; HGCMLAB_NATIVE=0 does "
                             "the same everywhere)")
    parser.add_argument("--no-accelerator", action="store_true",
                        help="send every HGCM call through the device's request path, without the "
                             "accelerator's hook (identical results, slower: to compare)")
    parser.add_argument("--reproducible", action="store_true",
                        help="shares show the guest no host-dependent file times, inode/device "
                             "numbers, owners, directory sizes or volume figures, so two runs give "
                             "identical traces (see docs/tracing.md)")
    add_guest_property_option(parser)
    parser.add_argument("--device", action="append", default=[], metavar="NAME[@PORT]",
                        help="attach an installed device plugin at I/O base PORT, or where the machine finds "
                             "room (first free aligned block from 0xc000; printed) (repeatable)")


class _VersionAction(argparse.Action):
    """``--version``: the version, and whether machines get the native accelerator (found
    out only when asked: the first time, that may compile it)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        from hgcmlab.devices.vmmdev import accel
        reason = accel.unavailable_reason()
        status = "on" if reason is None else f"off ({reason}; its Python twin is used)"
        # On standard output, as argparse's own version action prints.
        print(f"{parser.prog} {_version()}\nnative HGCM accelerator: {status}", file=sys.stdout)
        parser.exit()


def _version() -> str:
    try:
        return metadata.version("hgcmlab")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _make_machine(args: argparse.Namespace, out: TextIO, hgcm_front: HgcmFront | None = None) -> Machine:
    """The machine the options describe; ``hgcm_front`` as in ``Machine``."""
    costs = None
    costs_path: Path | None = getattr(args, "costs", None)
    try:
        if costs_path is not None:
            costs = CostProfile.from_file(costs_path)
        machine = vbox_board(args.mode, getattr(args, "ram", DEFAULT_RAM_SIZE), costs=costs,
                          vmmdev_config=vmmdev_config(args),
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
    attach_plugins(machine, getattr(args, "device", []), out, getattr(args, "quiet", False))
    machine.tracer.add_sink(CallbackSink({"guest_log"}, lambda event: print_log(event, out)))
    return machine


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
        result, collected = run_machine(machine, args, budgets, progress, gdb, header, err)
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
    report_end(result, err)
    if not quiet:
        for line in summary(result, collected):
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
            result, collected = run_machine(machine, args, budgets, progress)
        finally:
            machine.close()
        report_end(result, err)
        for line in summary(result, collected):
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
    machine.tracer.add_sink(CallbackSink({"guest_log"}, lambda event: print_log(event, out)))
    try:
        result, collected = run_machine(machine, args, budgets, progress, err=err)
    finally:
        machine.close()
    return _ended(result, collected, args.quiet, out, err)


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
            return run_devices_command(out)
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
    except OutputRefused as refused:
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
