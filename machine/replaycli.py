"""``hgcmlab run --record`` (its header) and ``hgcmlab replay TRACE [PROGRAM]``.

A replay rebuilds the recorded machine (mode, RAM, cost profile, HGCM timing options,
device plugins, program arguments) from the ``hgcm_recording`` header, registers a
``ReplayService`` in place of Shared Folders (no share, no host file is touched) and runs
the program.  PROGRAM defaults to the recorded path; that program must still assemble or
load to the recorded image (its SHA-256), else the replay refuses with one line.  A PROGRAM
given explicitly is run whatever its image: a changed program shows as a divergence.

Exit status: the guest's, as ``hgcmlab run``, when the replay matched the recording
throughout; ``EXIT_DIVERGED`` when it did not (the guest asked something the recording does
not hold, ended before the recorded operations were all asked, or ended differently from
the recorded run), with the report on stderr; ``EXIT_USAGE`` for a bad or malformed file.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from hgcmlab.machine.clock import CostProfile
from hgcmlab.machine.loader import Image, LoadError, image_from_file
from hgcmlab.machine.replay import ReplayService, replay_front, summarize
from hgcmlab.machine.trace.record import RecordingError, header_event_fields, image_digest, load_recording
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.clicommon import UsageError, print_log, report_end, run_machine, summary, vmmdev_config
from hgcmlab.machine.plugincli import attach_plugins

if TYPE_CHECKING:
    from hgcmlab.machine.machine import Machine

#: A replay that left its recording (distinct from the run statuses of machine/runcontrol.py).
EXIT_DIVERGED = 3


def record_header(args: argparse.Namespace, machine: Machine, image: Image) -> dict[str, Any]:
    """The ``hgcm_recording`` fields for ``hgcmlab run --record``: the program (absolute
    path), its image digest and every option a replay needs to rebuild the same machine."""
    settings = {
        "defines": [[name, value] for name, value in args.define],
        "costs": dataclasses.asdict(machine.cpu.costs),
        "hgcm_cycles": args.hgcm_cycles,
        "async_hgcm": bool(args.async_hgcm),
        "strict_guest_info": bool(args.strict_guest_info),
        "reproducible": bool(args.reproducible),
        "devices": list(args.device),
    }
    return header_event_fields(program=str(Path(args.program).resolve()), image=image, mode=machine.mode,
                               ram_size=machine.memory.size, arguments=list(args.arguments),
                               services=[machine.hgcm_service], settings=settings)


def register_replay_command(commands: Any) -> None:
    """Add ``replay`` to the ``hgcmlab`` subcommands."""
    from hgcmlab.machine.runcontrol import add_budget_options

    replay = commands.add_parser(
        "replay", help="re-run a recorded program, answering HGCM calls from the recording",
        description="Re-run the program of a recording made with 'hgcmlab run PROGRAM --trace FILE "
                    "--record', with no shared folder: every HGCM call is answered from the recording. "
                    "The first call the recording does not hold (another function, parameters, order "
                    "or cycle) stops the run with a report of both sides. "
                    f"Exit status: the guest's when everything matched, {EXIT_DIVERGED} on a divergence.")
    replay.add_argument("recording", type=Path, metavar="TRACE", help="trace file holding a recording")
    replay.add_argument("program", type=Path, nargs="?", metavar="PROGRAM",
                        help="program to run (default: the recorded one, which must be unchanged); "
                             "a different program is run and its first divergence reported")
    replay.add_argument("--trace", type=Path, metavar="FILE",
                        help="write the replay's trace to FILE (equal to the recording's when nothing diverges)")
    replay.add_argument("--quiet", "-q", action="store_true",
                        help="print only guest log lines and a divergence report")
    add_budget_options(replay)


class ReplayUsageError(Exception):
    """A recording, program or setting the replay cannot use; the message is one line."""


def _setting(settings: dict[str, Any], key: str, kinds: tuple[type, ...], default: Any) -> Any:
    value = settings.get(key, default)
    if value is not None and not isinstance(value, kinds):
        raise ReplayUsageError(f"recording setting {key!r} is malformed: {value!r}")
    return value


def _load_image(args: argparse.Namespace, header: dict[str, Any], defines: dict[str, int],
                err: TextIO) -> Image:
    recorded = Path(header["program"])
    path = args.program if args.program is not None else recorded
    try:
        image = image_from_file(path, mode=header["mode"], defines=defines, ram_size=header["ram"])
    except LoadError as error:
        if args.program is None:
            raise ReplayUsageError(f"the recorded program cannot be loaded ({error}); give the program: "
                             f"hgcmlab replay {args.recording} PROGRAM") from None
        raise ReplayUsageError(str(error)) from None
    if image_digest(image) != header["image_sha256"]:
        if args.program is None:
            raise ReplayUsageError(f"{recorded} has changed since the recording (its image differs); give it "
                             f"explicitly to replay it anyway: hgcmlab replay {args.recording} {recorded}")
        print(f"hgcmlab: note: {path} is not the recorded program (its image differs); the first "
              "divergence will be reported", file=err)
    return image


def run_replay_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``hgcmlab replay``: bad input (the recording, the program, a setting) is one line
    ``hgcmlab: error: ...`` on ``err`` and ``EXIT_USAGE``."""
    from hgcmlab.machine.runcontrol import EXIT_USAGE

    try:
        return _replay(args, out, err)
    except (ReplayUsageError, UsageError) as error:
        print(f"hgcmlab: error: {error}", file=err)
        return EXIT_USAGE


def _replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from hgcmlab.machine.machine import RunEnd
    from hgcmlab.machine.runcontrol import ProgressLine, budgets_from_args, exit_status
    from hgcmlab.machine.tracing import CallbackSink

    try:
        recording = load_recording(args.recording)
    except RecordingError as error:
        raise ReplayUsageError(str(error)) from None
    header = recording.header
    settings = header["settings"]
    defines_list = _setting(settings, "defines", (list,), [])
    try:
        defines = {str(name): int(value) for name, value in defines_list}
        costs = CostProfile.from_mapping(_setting(settings, "costs", (dict,), {}))
    except (TypeError, ValueError) as error:
        raise ReplayUsageError(f"{args.recording}: recording settings are malformed: {error}") from None
    options = argparse.Namespace(hgcm_cycles=_setting(settings, "hgcm_cycles", (int,), None),
                                 async_hgcm=bool(_setting(settings, "async_hgcm", (bool,), False)),
                                 strict_guest_info=bool(_setting(settings, "strict_guest_info", (bool,), False)))
    if options.hgcm_cycles is not None and options.hgcm_cycles < 0:
        raise ReplayUsageError(f"{args.recording}: recording setting 'hgcm_cycles' is negative")
    devices = _setting(settings, "devices", (list,), [])
    image = _load_image(args, header, defines, err)
    budgets = budgets_from_args(args)
    progress = None if args.quiet else ProgressLine(err)
    if progress is not None:
        out = progress.guard(out)
    try:
        machine = vbox_board(header["mode"], header["ram"], costs=costs, vmmdev_config=vmmdev_config(options),
                          hgcm_front=replay_front(recording))
    except ValueError as error:
        raise ReplayUsageError(f"{args.recording}: {error}") from None
    try:
        attach_plugins(machine, [str(spec) for spec in devices], out, True)
        machine.tracer.add_sink(CallbackSink({"guest_log"}, lambda event: print_log(event, out)))
        machine.set_arguments(header["arguments"])
        machine.load(image)
        result, collected = run_machine(machine, args, budgets, progress, None, header)
    except ValueError as error:
        raise ReplayUsageError(str(error)) from None
    finally:
        machine.close()
    service = machine.hgcm_service
    assert isinstance(service, ReplayService)
    cursor = service.cursor
    total = len(recording.records)
    if result.end is RunEnd.DIVERGED and cursor.divergence is not None:
        print(cursor.divergence.report(), file=err)
        return EXIT_DIVERGED
    if result.ok and not cursor.finished:
        expected = recording.records[cursor.position]
        print(f"replay diverged at recorded operation #{cursor.position}: the guest ended ({result.end.value}, "
              f"exit code {result.exit_code}) before asking it\n  recording: "
              f"{summarize(expected, service.function_names)}", file=err)
        return EXIT_DIVERGED
    ended = recording.run_end
    if result.ok and ended is not None and (ended.get("end"), ended.get("exit_code"), ended.get("instructions")) != (
            result.end.value, result.exit_code, result.instructions):
        print(f"replay diverged after all {total} recorded operations matched: the recorded run ended "
              f"({ended.get('end')}, exit code {ended.get('exit_code')}) after {ended.get('instructions')} "
              f"instructions, the replay ({result.end.value}, exit code {result.exit_code}) after "
              f"{result.instructions}", file=err)
        return EXIT_DIVERGED
    report_end(result, err)
    if not args.quiet:
        for line in summary(result, collected):
            print(line, file=out)
        print(f"replay: {cursor.position} of {total} recorded host operations matched", file=out)
    return exit_status(result)


__all__ = ["EXIT_DIVERGED", "record_header", "register_replay_command", "run_replay_command"]
