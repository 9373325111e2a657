"""Snapshots taken in the middle of a Shared Folders session (issue 13).

Two guests, run as tools with a ``d:`` share, in both modes: a reader (the bundled cat.s
reading 8 bytes per READ, so its file handle is open over many calls) and a lister (the
bundled ls.s with a LIST buffer that holds one entry, so its directory handle keeps a
cursor over many calls).  Paused where the handle is open, saved, and resumed on a
machine rebuilt from the snapshot alone (Python API: ``Machine.snapshot`` and
``hgcmlab.machine.boards.restore``; CLI: ``run --save-at`` and ``resume``), the rest of the
run is exactly the uninterrupted run's: every trace event with its cycle, instruction
count and pc, and the same end; with synchronous HGCM and with asynchronous HGCM (the
call just made still in flight in the scheduler at the pause).

When the host file changed or disappeared between save and resume, the restore cannot
re-open the handle's object (services/sharedfolders/saved_state.py:_reopen): ``resume``
prints one line per affected handle and the guest's next call on it answers
VERR_INVALID_HANDLE, as every handle does after a VirtualBox restore
(VBoxSharedFoldersSvc.cpp:svcLoadState keeps no handles; docs/deviations.md SF21).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.guest_asm import assemble
from hgcmlab.guest_asm.assembler import AssembledProgram
from hgcmlab.guest_asm.source import LIB_DIR
from hgcmlab.machine.boards import VBoxMachine, restore, vbox_board
from hgcmlab.machine.machine import RunEnd, RunResult
from hgcmlab.machine.snapshot import Snapshot
from hgcmlab.machine.tracing import ListSink, TraceEvent
from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import ShflFn
from tests.machine.test_snapshot_cli import _events, cli


SHFL_FN_READ, SHFL_FN_LIST = int(ShflFn.READ), int(ShflFn.LIST)
PROGRAMS = Path(LIB_DIR).parent / "programs"
RAM = 4 * 1024 * 1024
LATENCY = 5_000
CONTENT = b"".join(b"line %02d of the file being read\n" % number for number in range(6))
NAMES = [f"entry{number:02d}.txt" for number in range(8)]


def _bundled(name: str, chunk_equ: str, small: str) -> str:
    """A bundled tool's source with its buffer size made small (so one session spans many calls)."""
    source = (PROGRAMS / name).read_text()
    assert chunk_equ in source, f"{name} no longer declares {chunk_equ!r}"
    return source.replace(chunk_equ, small)


READER = _bundled("cat.s", ".equ CAT_CHUNK, 16384", ".equ CAT_CHUNK, 8")
#: One SHFLDIRINFO record (126 bytes + the UTF-16 name with its terminator) fits, two do not.
LISTER = _bundled("ls.s", ".equ LS_BUF_SIZE, 65536", ".equ LS_BUF_SIZE, 160")

GUESTS = {"reader": (READER, "d:/data.txt", SHFL_FN_READ), "lister": (LISTER, "d:/dir", SHFL_FN_LIST)}


@pytest.fixture
def share(tmp_path: Path) -> Path:
    folder = tmp_path / "share"
    (folder / "dir").mkdir(parents=True)
    (folder / "data.txt").write_bytes(CONTENT)
    for name in NAMES:
        (folder / "dir" / name).write_bytes(name.encode())
    return folder


@pytest.fixture(scope="module", params=[(guest, mode) for guest in GUESTS for mode in (64, 32)],
                ids=lambda param: f"{param[0]}-{param[1]}")
def guest(request) -> tuple[str, AssembledProgram]:
    name, mode = request.param
    return name, assemble(GUESTS[name][0], mode=mode)


def _machine(program: AssembledProgram, folder: Path, argument: str,
             asynchronous: bool = False) -> tuple[VBoxMachine, ListSink]:
    config = (VMMDevConfig(timing=HgcmTiming(call_cycles=LATENCY, byte_cycles=0, force_async=True,
                                             declared_costs=False)) if asynchronous else None)
    machine = vbox_board(program.mode, RAM, vmmdev_config=config, reproducible=True, shares=[("d", folder)])
    sink = ListSink()
    machine.tracer.add_sink(sink)
    machine.set_arguments([argument])
    machine.load(program)
    return machine, sink


def _session_cycles(events: list[TraceEvent], function: int) -> list[int]:
    """Cycles just after the first, a middle and the next-to-last call of ``function``:
    the handle is open and a read position or list cursor is in use."""
    calls = [event.cycle for event in events if event.kind == "hgcm_call" and event.fields["function"] == function]
    assert len(calls) >= 5, calls
    return [calls[0] + 1, calls[len(calls) // 2] + 1, calls[-2] + 1]


def _expected_log(name: str) -> list[str]:
    if name == "reader":
        return CONTENT.decode().splitlines()
    return NAMES


def _sorted_if_listing(name: str, lines: list[str]) -> list[str]:
    return sorted(lines) if name == "lister" else lines


def _uninterrupted(name: str, program: AssembledProgram, folder: Path,
                   asynchronous: bool) -> tuple[list[TraceEvent], RunResult]:
    machine, sink = _machine(program, folder, GUESTS[name][1], asynchronous)
    try:
        result = machine.run()
    finally:
        machine.close()
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.log_lines
    assert _sorted_if_listing(name, result.log_lines) == _expected_log(name)
    return sink.events, result


def _open_handles(snapshot: Snapshot) -> list[dict]:
    return snapshot.state["devices"]["vmmdev"]["services"]["VBoxSharedFolders"]["handles"]["live"]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_run_resumed_mid_session_is_the_rest_of_the_uninterrupted_run(guest, share: Path,
                                                                        asynchronous: bool) -> None:
    name, program = guest
    reference, expected = _uninterrupted(name, program, share, asynchronous)
    in_flight = False
    for cycle in _session_cycles(reference, GUESTS[name][2]):
        first, sink = _machine(program, share, GUESTS[name][1], asynchronous)
        try:
            assert first.run(until_cycle=cycle).end is RunEnd.PAUSED
            in_flight |= len(first.scheduler) > 0
            snapshot = Snapshot.from_bytes(first.snapshot().to_bytes())
            before = sink.events[:-1]  # without the pause's own run_end
        finally:
            first.close()
        assert len(_open_handles(snapshot)) == 1, f"no open handle at cycle {cycle}"
        second, problems = restore(snapshot)
        resumed = ListSink()
        second.tracer.add_sink(resumed)
        try:
            assert problems == []
            assert second.run() == expected  # end, exit code, counts, every log line
        finally:
            second.close()
        assert before + resumed.events == reference, f"paused at {cycle}"
    # With asynchronous HGCM (completions after LATENCY cycles) a call was in flight at a pause.
    assert in_flight or not asynchronous


def _program_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.s"
    path.write_text(GUESTS[name][0])
    return path


def _middle_call_cycle(trace: Path, function: int) -> int:
    return _session_cycles([TraceEvent(e["kind"], e["cycle"], 0, 0, e) for e in _events(trace)
                            if e["kind"] == "hgcm_call"], function)[1]


@pytest.mark.parametrize("mode", [64, 32])
@pytest.mark.parametrize("name", list(GUESTS))
def test_save_at_and_resume_mid_session_continue_the_run_exactly(tmp_path: Path, share: Path, name: str,
                                                                  mode: int) -> None:
    program, argument = _program_file(tmp_path, name), GUESTS[name][1]
    whole = tmp_path / "whole.jsonl"
    status, whole_out, err = cli("run", program, "--mode", mode, "--share", f"d={share}", "--reproducible",
                                 "--trace", whole, "--", argument)
    assert status == 0, err
    cycle = _middle_call_cycle(whole, GUESTS[name][2])
    snapshot, first, resumed = tmp_path / "s.snap", tmp_path / "first.jsonl", tmp_path / "resumed.jsonl"
    status, _out, err = cli("run", program, "--mode", mode, "--share", f"d={share}", "--reproducible",
                            "--save-at", cycle, snapshot, "--trace", first, "--", argument)
    assert status == 0, err
    status, resumed_out, err = cli("resume", snapshot, "--trace", resumed)
    assert status == 0 and err == "", err
    events = _events(first)
    pause = next(index for index, event in enumerate(events) if event.get("end") == "paused")
    assert events[:pause] + _events(resumed) == _events(whole)
    # The summary line: same end, instructions and cycles as the uninterrupted run.
    assert resumed_out.splitlines()[-2:] == whole_out.splitlines()[-2:]


def _damage_file(folder: Path) -> None:
    (folder / "data.txt").write_bytes(CONTENT + b"appended\n")


def _delete_file(folder: Path) -> None:
    (folder / "data.txt").unlink()


@pytest.mark.parametrize("mode", [64, 32])
@pytest.mark.parametrize(("change", "reason"), [
    (_damage_file, f"host object changed since the save (size {len(CONTENT)} -> {len(CONTENT) + 9})"),
    (_delete_file, "host object cannot be re-opened: VERR_FILE_NOT_FOUND"),
], ids=["changed", "deleted"])
def test_resume_after_the_host_file_changed_reports_the_handle_and_the_guest_gets_invalid_handle(
        tmp_path: Path, share: Path, mode: int, change, reason: str) -> None:
    program = _program_file(tmp_path, "reader")
    whole = tmp_path / "whole.jsonl"
    status, _out, err = cli("run", program, "-q", "--mode", mode, "--share", f"d={share}", "--reproducible",
                            "--trace", whole, "--", "d:/data.txt")
    assert status == 0, err
    snapshot = tmp_path / "s.snap"
    status, _out, err = cli("run", program, "-q", "--mode", mode, "--share", f"d={share}", "--reproducible",
                            "--save-at", _middle_call_cycle(whole, SHFL_FN_READ), snapshot, "--", "d:/data.txt")
    assert status == 0, err
    change(share)
    resumed = tmp_path / "resumed.jsonl"
    status, out, err = cli("resume", snapshot, "-q", "--trace", resumed)
    # One line for the one handle; then cat.s's failure line and exit code 3
    # (TOOL_EXIT_FAILED) after the READ that failed.
    assert err.splitlines() == [f"hgcmlab: {snapshot}: service VBoxSharedFolders: handle 0x1 of client 1 "
                                f"(d:/data.txt): {reason}; it now answers VERR_INVALID_HANDLE"], err
    assert status == 3
    # The log port is line-buffered: the failure line follows the part of a line read before.
    assert out.splitlines()[-1].endswith(f"error: read d:/data.txt: {int(Status.VERR_INVALID_HANDLE)}"), out
    reads = [event for event in _events(resumed) if event["kind"] == "hgcm_complete"
             and event.get("function") == SHFL_FN_READ]
    assert reads and reads[0]["result"] == int(Status.VERR_INVALID_HANDLE), reads[:1]


def test_resume_after_the_listed_directory_went_reports_the_handle(tmp_path: Path, share: Path) -> None:
    program = _program_file(tmp_path, "lister")
    whole = tmp_path / "whole.jsonl"
    status, _out, err = cli("run", program, "-q", "--share", f"d={share}", "--reproducible", "--trace", whole,
                            "--", "d:/dir")
    assert status == 0, err
    snapshot = tmp_path / "s.snap"
    status, _out, err = cli("run", program, "-q", "--share", f"d={share}", "--reproducible",
                            "--save-at", _middle_call_cycle(whole, SHFL_FN_LIST), snapshot, "--", "d:/dir")
    assert status == 0, err
    for name in NAMES:
        (share / "dir" / name).unlink()
    (share / "dir").rmdir()
    status, out, err = cli("resume", snapshot, "-q")
    assert status == 3
    assert err.splitlines() == [f"hgcmlab: {snapshot}: service VBoxSharedFolders: handle 0x1 of client 1 "
                                "(d:/dir): host object cannot be re-opened: VERR_FILE_NOT_FOUND; "
                                "it now answers VERR_INVALID_HANDLE"], err
    assert out.splitlines()[-1] == f"[guest] error: list d:/dir: {int(Status.VERR_INVALID_HANDLE)}"
