"""Shared Folders saved state seen from guest code: guest tools (ls, cat) run on the
machine, paused several times mid-run; at each pause the service's state is saved, put
through a JSON round trip and loaded back (handles re-opened, list cursors restored).  The
guest must not notice: same output, exit code and cycle count as the uninterrupted run.
(Machine-wide snapshots build on this; the service-level cases are in
tests/service/test_sf_state.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.guest_asm import assemble
from hgcmlab.guest_asm.source import LIB_DIR
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import RunEnd, RunResult
from tests.service.test_sf_state import json_round_trip

PROGRAMS = Path(LIB_DIR).parent / "programs"
PAUSES = 7


def run(program: str, args: list[str], share: Path, mode: int, reproducible: bool,
        pause_every: int | None = None) -> tuple[RunResult, list[dict]]:
    """Run ``program``; with ``pause_every``, reload the Shared Folders state at every
    pause.  Returns the final result and the states reloaded."""
    machine = vbox_board(mode=mode, reproducible=reproducible)
    try:
        machine.add_share("d", share)
        machine.set_arguments(args)
        machine.load(assemble(PROGRAMS / program, mode=mode))
        reloaded: list[dict] = []
        while True:
            result = machine.run(max_cycles=pause_every)  # log lines: all since the start
            if result.end is not RunEnd.PAUSED:
                return result, reloaded
            state = json_round_trip(machine.shared_folders.save_state())
            assert machine.shared_folders.load_state(state, {}) == []
            reloaded.append(state)
    finally:
        machine.close()


def same_run(paused: RunResult, plain: RunResult, pauses: int) -> None:
    """The paused run ended as the plain one: same end, exit code, cycles, instructions and
    log lines (a pause does not flush the log device's partial line: ``pauses`` reloads
    leave no trace in the log)."""
    assert (paused.end, paused.exit_code, paused.cycles, paused.instructions) == \
        (plain.end, plain.exit_code, plain.cycles, plain.instructions)
    assert paused.log_lines == plain.log_lines, f"{pauses} reloads changed the log"


def mid_listing(state: dict) -> bool:
    """True when a directory handle is part-way through its listing, with an entry parked
    for the next LIST (the one that did not fit the last buffer)."""
    return any(h["stream"] is not None and h["stream"]["names"] is not None
               and 0 < h["stream"]["pos"] < len(h["stream"]["names"]) and h["saved"] is not None
               for h in state["handles"]["live"])


@pytest.mark.parametrize(("mode", "reproducible"), [(64, True), (32, False)],
                         ids=["64-reproducible", "32-host-info"])
def test_ls_continues_its_listing_across_reloads(tmp_path: Path, mode: int,
                                                 reproducible: bool) -> None:
    # Several 64 KiB LISTs (ls.s's buffer): 1500 records of 181 bytes.
    names = {f"entry_{i:04d}_{'x' * 40}.dat" for i in range(1500)}
    for name in names:
        (tmp_path / name).touch()
    plain, _ = run("ls.s", ["d:/"], tmp_path, mode, reproducible)
    assert plain.exit_code == 0 and sorted(plain.log_lines) == sorted(names)
    paused, states = run("ls.s", ["d:/"], tmp_path, mode, reproducible,
                         pause_every=plain.cycles // PAUSES)
    same_run(paused, plain, len(states))
    assert len(states) >= PAUSES - 1
    assert any(mid_listing(s) for s in states)  # a reload really happened mid-listing


def test_cat_reads_on_through_reloads(tmp_path: Path) -> None:
    text = "".join(f"line {i:05d} of a file read in many chunks\n" for i in range(2000))
    (tmp_path / "big.txt").write_text(text)
    plain, _ = run("cat.s", ["d:/big.txt"], tmp_path, 64, reproducible=False)
    assert plain.exit_code == 0 and "\n".join(plain.log_lines) == text.rstrip("\n")
    paused, states = run("cat.s", ["d:/big.txt"], tmp_path, 64, reproducible=False,
                         pause_every=plain.cycles // PAUSES)
    same_run(paused, plain, len(states))
    assert any(h["kind"] == "file" for s in states for h in s["handles"]["live"])
