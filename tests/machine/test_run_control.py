"""Run control (issue 12): Ctrl-C, budgets, exit statuses and the progress line.

The Ctrl-C tests send a real SIGINT to a child process running an endless guest loop; none
asserts on elapsed time (the machine is shared), each run has a generous wall-time budget
so that a regression fails the test (status 124) instead of hanging it.
"""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import hgcmlab.machine.cli as cli_module
from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.cli import main
from hgcmlab.machine import fastblock
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import DEFAULT_INSTRUCTION_BUDGET, Machine, RunEnd, RunResult
from hgcmlab.machine.runcontrol import (
    EXIT_BUDGET,
    EXIT_GUEST_FAULT,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ProgressLine,
    exit_status,
)
from hgcmlab.machine.trace.files import read_trace

#: Guards a test against hanging when Ctrl-C handling regresses (not a timing assertion).
HANG_GUARD_SECONDS = "120"

#: Logs one line, then spins with no I/O: after the line, only Ctrl-C (or a budget) ends it.
SPIN = """
_start:
    mov dx, 0x504
    mov al, 'L'
    out dx, al
    mov al, 10
    out dx, al
spin:
    jmp spin
"""


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def program(tmp_path: Path):
    def write(text: str, name: str = "prog.s") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


def _spawn(*argv: str, stderr: int | None = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "hgcmlab.machine.cli", *argv], stdout=subprocess.PIPE,
                            stderr=stderr, text=True)


# --- Ctrl-C ------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [
    [],                                    # native block hook: no Python while the loop runs
    ["--max-cycles", "1000000000000"],     # a deadline: every block goes through Python
    ["--mode", "32"],
])
def test_ctrl_c_stops_an_endless_loop_with_status_130_a_summary_and_a_closed_trace(program, tmp_path, extra) -> None:
    trace = tmp_path / "run.jsonl"
    child = _spawn("run", str(program(SPIN)), "--trace", str(trace), "--max-seconds", HANG_GUARD_SECONDS, *extra)
    assert child.stdout is not None
    # The log line is written before the loop, while the run (and its Ctrl-C handling) is on.
    assert child.stdout.readline() == "[guest] L\n"
    child.send_signal(signal.SIGINT)
    out, err = child.communicate()
    assert child.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hgcmlab: interrupted at pc 0x")
    assert "<spin>: jmp" in lines[0]
    assert out.startswith("run ended by interrupt (Ctrl-C) after ")
    assert "HGCM: 0 connect(s), 0 call(s)" in out
    events = list(read_trace(trace))   # every line parses: the file was flushed and closed
    assert events[-1].kind == "run_end" and events[-1].fields["end"] == "interrupted"
    assert [e.fields["line"] for e in events if e.kind == "guest_log"] == ["L"]
    assert not any(e.kind == "guest_fault" for e in events)
    summary_instructions = int(out.split(" after ")[1].split(" instructions")[0])
    assert events[-1].fields["instructions"] == summary_instructions >= 5   # at least the logging part


def _read_until(fd: int, needle: bytes, child: subprocess.Popen[str]) -> bytes:
    """Read the pty until ``needle`` shows up (or the child ends)."""
    seen = b""
    while needle not in seen:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            if child.poll() is not None:
                break
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen


def test_trace_record_on_a_terminal_shows_progress_and_stops_on_ctrl_c(program, tmp_path) -> None:
    trace = tmp_path / "rec.jsonl"
    controller, terminal = pty.openpty()
    try:
        child = _spawn("trace", "record", str(program(SPIN)), "-o", str(trace),
                       "--max-seconds", HANG_GUARD_SECONDS, stderr=terminal)
        os.close(terminal)
        # The progress line appears once the run has gone on for a second.
        shown = _read_until(controller, b"HGCM calls", child)
        assert b"instructions, " in shown and b" cycles, 0 HGCM calls, " in shown and b"M instructions/s" in shown
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate()
        rest = _read_until(controller, b"\n", child)
    finally:
        os.close(controller)
    assert child.returncode == EXIT_INTERRUPTED
    screen = (shown + rest).decode()
    assert "Traceback" not in screen
    # The progress line is erased before the message, which stands on a line of its own.
    _, message = screen.rsplit("\r\x1b[K", 1)
    assert message.startswith("hgcmlab: interrupted at pc 0x") and message.count("\n") == 1
    assert "run ended (interrupted, exit code -1)" in out
    events = list(read_trace(trace))
    assert events[-1].kind == "run_end" and events[-1].fields["end"] == "interrupted"


def test_ctrl_c_outside_a_run_gives_status_130_and_one_line(program, monkeypatch) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "image_from_file", interrupted)
    status, out, err = cli("run", str(program(SPIN)))
    assert (status, out, err) == (EXIT_INTERRUPTED, "", "hgcmlab: interrupted\n")


def _spin_machine() -> Machine:
    machine = vbox_board(64)
    machine.load(assemble(SPIN, mode=64, filename="spin.s"))
    return machine


def test_cancel_from_another_thread_stops_a_native_loop() -> None:
    machine = _spin_machine()
    try:
        def cancel_once_running() -> None:
            while machine.cpu.live_counts()[0] < 1000:
                threading.Event().wait(0.001)
            machine.cancel()

        canceller = threading.Thread(target=cancel_once_running)
        canceller.start()
        # Bounded only so that a regression fails (BUDGET) instead of hanging.
        result = machine.run(4_000_000_000)
        canceller.join()
        assert result.end is RunEnd.INTERRUPTED and result.exit_code == -1
        assert result.fault is not None and result.fault.description == "interrupted"
        assert result.fault.symbol is not None and result.fault.symbol.startswith("spin")
        assert result.instructions == machine.cpu.instructions >= 1000
    finally:
        machine.close()


COUNTDOWN = """
_start:
    mov ecx, 3000
half:
    dec ecx
    cmp ecx, 1500
    jne skip
    mov dx, 0x504
    mov al, 'H'
    out dx, al
    mov al, 10
    out dx, al
skip:
    test ecx, ecx
    jnz half
    mov al, 4
    out 0xf4, al
"""


def _countdown(cancel_on_log: bool) -> tuple[list[RunResult], Machine]:
    machine = vbox_board(64)
    machine.load(assemble(COUNTDOWN, mode=64, filename="countdown.s"))
    if cancel_on_log:
        # As a SIGINT handler does when it runs inside a hook: cancel mid-run.
        machine.tracer.add_sink(lambda event: machine.cancel() if event.kind == "guest_log" else None)
    results = [machine.run(None)]
    if results[0].end is RunEnd.INTERRUPTED:
        results.append(machine.run(None))
    return results, machine


def test_a_cancelled_run_continues_to_the_same_end_with_the_same_counts() -> None:
    (straight,), plain = _countdown(False)
    (stopped, resumed), cancelled = _countdown(True)
    plain.close()
    cancelled.close()
    assert stopped.end is RunEnd.INTERRUPTED
    assert 0 < stopped.instructions < straight.instructions
    assert (resumed.end, resumed.exit_code) == (RunEnd.EXIT, 4) == (straight.end, straight.exit_code)
    assert (resumed.instructions, resumed.cycles) == (straight.instructions, straight.cycles)


@pytest.mark.skipif(fastblock.signal_handler() is None, reason="the native SIGINT handler needs the native page")
def test_ctrl_c_reaches_a_native_loop_of_a_run_that_keeps_to_one_thread(program) -> None:
    """Without a wall-time budget or a progress line the run starts no watcher thread (a
    second thread costs the native path ~40 ns per system call: machine/sigbridge.py); the
    native SIGINT handler sends the loop's next block to Python, where the Python handler
    cancels the run."""
    child = _spawn("run", str(program(SPIN)))
    assert child.stdout is not None
    assert child.stdout.readline() == "[guest] L\n"
    threads = len(os.listdir(f"/proc/{child.pid}/task"))
    child.send_signal(signal.SIGINT)
    try:
        out, err = child.communicate(timeout=int(HANG_GUARD_SECONDS))
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        pytest.fail("Ctrl-C did not stop the run")
    assert threads == 1
    assert child.returncode == EXIT_INTERRUPTED, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hgcmlab: interrupted at pc 0x") and "<spin>: jmp" in lines[0]
    assert out.startswith("run ended by interrupt (Ctrl-C) after ")


def test_a_cancel_unicorn_dropped_is_acted_on_at_the_next_block() -> None:
    """A cancel made while the engine is not running is a stop request Unicorn drops; if the
    engine then starts past ``run``'s check of the flag (a signal handled between the two),
    the first block goes to Python (``State.slow``), which stops it."""
    machine = _spin_machine()
    try:
        assert machine.run(1000).end is RunEnd.BUDGET   # the loop's block is in the native table
        machine.cpu.cancel()
        machine.cpu._set_limit(machine.cpu.instructions + 10_000_000)   # bounds a regression
        machine.cpu._engine(0)
        assert machine.cpu.instructions < 1100
    finally:
        machine.close()


def test_cancel_before_a_run_ends_it_at_once_and_only_once() -> None:
    machine = _spin_machine()
    try:
        machine.cancel()
        first = machine.run(100)
        assert (first.end, first.instructions) == (RunEnd.INTERRUPTED, 0)
        second = machine.run(100)
        assert (second.end, second.instructions) == (RunEnd.BUDGET, 100)
        machine.cancel()
        machine.clear_cancel()
        assert machine.run(50).end is RunEnd.BUDGET
        with pytest.raises(ValueError, match="interrupted or budget"):
            machine.cancel(RunEnd.EXIT)
    finally:
        machine.close()


# --- budgets ------------------------------------------------------------------------------

#: 1 + 2 x 10,500,000 + 2 = 21,000,003 instructions (more than the old 20M default budget
#: allowed), then exit 5.
LONG_WORKLOAD = """
_start:
    mov ecx, 10500000
again:
    dec ecx
    jnz again
    mov al, 5
    out 0xf4, al
"""


@pytest.mark.parametrize("options", [[], ["--max-instructions", "0"]])
def test_command_line_runs_are_unbounded_by_default_and_with_zero(program, options) -> None:
    status, out, err = cli("run", str(program(LONG_WORKLOAD)), *options)
    assert (status, err) == (5, "")
    assert "run ended by exit device, code 5 after 21000003 instructions" in out


def test_the_library_default_budget_stays_finite_for_test_suites() -> None:
    machine = _spin_machine()
    try:
        result = machine.run()
        assert (result.end, result.instructions) == (RunEnd.BUDGET, DEFAULT_INSTRUCTION_BUDGET)
    finally:
        machine.close()


def test_cycle_budget_stops_at_the_first_boundary_at_or_after_it(program, tmp_path) -> None:
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps({"branch": 3}))
    status, out, err = cli("run", "--costs", str(costs), "--max-cycles", "1000",
                           str(program("_start:\n jmp _start\n")))
    assert status == EXIT_BUDGET
    assert err.startswith("run stopped: cycle budget of 1000 exhausted\n  at pc 0x10000 <_start>")
    # Each jmp costs 3 cycles: 333 of them reach 999, the 334th crosses 1000.
    assert "run ended by cycle budget of 1000 after 334 instructions, 1002 cycles" in out


def test_machine_cycle_budget_ends_as_budget_and_the_run_can_continue() -> None:
    machine = _spin_machine()
    try:
        first = machine.run(None, cycle_budget=500)
        assert first.end is RunEnd.BUDGET and first.cycles >= 500
        assert first.fault is not None and first.fault.description == "cycle budget of 500 exhausted"
        second = machine.run(None, cycle_budget=500)
        assert second.end is RunEnd.BUDGET and second.cycles >= first.cycles + 500
    finally:
        machine.close()


def test_wall_time_budget_stops_an_endless_loop(program) -> None:
    status, out, err = cli("run", "--max-seconds", "0.2", str(program(SPIN)))
    assert status == EXIT_BUDGET
    assert err.startswith("run stopped: wall-time budget of 0.2 s exhausted\n")
    assert "run ended by wall-time budget of 0.2 s after " in out


def test_instruction_budget_reports_where_the_guest_was(program) -> None:
    status, out, err = cli("run", "--max-instructions", "500", str(program("_start:\n jmp _start\n")))
    assert status == EXIT_BUDGET
    assert err.startswith("run stopped: instruction budget of 500 exhausted\n  at pc 0x10000 <_start>")
    assert "run ended by instruction budget of 500 after 500 instructions" in out


@pytest.mark.parametrize(("option", "value", "complaint"), [
    ("--max-instructions", "-1", "is negative"),
    ("--max-instructions", "many", "is not a whole number"),
    ("--max-cycles", "-5", "is negative"),
    ("--max-seconds", "nan", "not a finite, non-negative number"),
    ("--max-seconds", "-1", "not a finite, non-negative number"),
    ("--max-seconds", "soon", "is not a number of seconds"),
])
def test_bad_budgets_are_usage_errors(program, option, value, complaint) -> None:
    status, out, err = cli("run", option, value, str(program(SPIN)))
    assert status == EXIT_USAGE and out == "" and "Traceback" not in err
    # argparse's usage line(s), then one line saying what is wrong.
    assert err.splitlines()[-1].startswith(f"hgcmlab run: error: argument {option}: {value!r} ")
    assert complaint in err.splitlines()[-1]


def test_demo_and_trace_record_take_the_same_budgets(program, tmp_path) -> None:
    status, out, err = cli("demo", "--max-instructions", "100")
    assert status == EXIT_BUDGET and "instruction budget of 100 exhausted" in err
    assert "run ended by instruction budget of 100 after 100 instructions" in out
    status, out, err = cli("trace", "record", str(program(SPIN)), "-o", str(tmp_path / "t.jsonl"),
                           "--max-instructions", "100")
    assert status == EXIT_BUDGET and "run ended (budget, exit code -1) after 100 instructions" in out


# --- exit statuses ------------------------------------------------------------------------


def test_machine_outcomes_have_distinct_statuses_and_guest_codes_pass_through(program, tmp_path) -> None:
    exit3, _, _ = cli("run", "-q", str(program("_start:\n mov al, 3\n out 0xf4, al\n", "exit3.s")))
    fault, _, _ = cli("run", "-q", str(program("_start:\n ud2\n", "fault.s")))
    budget, _, _ = cli("run", "-q", "--max-instructions", "10", str(program("_start:\n jmp _start\n", "spin.s")))
    usage, _, _ = cli("run", "-q", str(tmp_path / "missing.s"))
    assert (exit3, fault, budget, usage) == (3, 125, 124, 2)
    assert (EXIT_USAGE, EXIT_BUDGET, EXIT_GUEST_FAULT, EXIT_INTERRUPTED) == (2, 124, 125, 130)
    status, _, _ = cli("trace", "record", str(program("_start:\n ud2\n", "fault.s")), "-o", str(tmp_path / "f.jsonl"))
    assert status == EXIT_GUEST_FAULT


@pytest.mark.parametrize(("end", "code", "status"), [
    (RunEnd.EXIT, 0, 0), (RunEnd.EXIT, 124, 124), (RunEnd.EXIT, 256, 255), (RunEnd.HALT, 0, 0),
    (RunEnd.FAULT, -1, 125), (RunEnd.BUDGET, -1, 124), (RunEnd.INTERRUPTED, -1, 130),
])
def test_exit_status_mapping(end, code, status) -> None:
    assert exit_status(RunResult(end, code, 0, 0)) == status


# --- the progress line --------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _progress() -> tuple[ProgressLine, FakeTerminal, FakeClock]:
    terminal, clock = FakeTerminal(), FakeClock()
    return ProgressLine(terminal, clock=clock), terminal, clock


def test_progress_appears_after_a_second_and_shows_counts_and_rate() -> None:
    progress, terminal, clock = _progress()
    progress.start()
    clock.now += 0.9
    assert not progress.update(1000, 2000, 1) and terminal.getvalue() == ""
    clock.now += 1.1   # 2.0 s in
    assert progress.update(30_000_000, 60_000_000, 7)
    assert terminal.getvalue() == ("\r30,000,000 instructions, 60,000,000 cycles, 7 HGCM calls, "
                                   "15.0 M instructions/s, 2 s\x1b[K")


def test_progress_is_rate_limited() -> None:
    progress, terminal, clock = _progress()
    progress.start()
    clock.now += 1.0
    assert progress.update(1, 1, 0)
    clock.now += 0.4
    assert not progress.update(2, 2, 0)
    clock.now += 0.1
    assert progress.update(3, 3, 0)
    assert terminal.getvalue().count("\r") == 2


def test_progress_is_erased_before_other_output_and_hidden_inside_a_line() -> None:
    progress, terminal, clock = _progress()
    output = progress.guard(terminal)
    progress.start()
    clock.now += 5
    assert progress.update(1, 1, 0)
    print("[guest] part", end="", file=output)
    assert terminal.getvalue().endswith("\r\x1b[K[guest] part")
    clock.now += 5
    assert not progress.update(2, 2, 0)   # the guest's line is incomplete: do not draw over it
    print(" two", file=output)
    clock.now += 5
    assert progress.update(3, 3, 0)
    progress.clear()
    assert terminal.getvalue().endswith("[guest] part two\n\r3 instructions, 3 cycles, 0 HGCM calls, "
                                        "0.0 M instructions/s, 15 s\x1b[K\r\x1b[K")
    progress.clear()   # nothing shown: nothing written
    assert terminal.getvalue().endswith("\x1b[K\r\x1b[K")


def test_progress_is_off_when_the_stream_is_not_a_terminal() -> None:
    stream, clock = io.StringIO(), FakeClock()
    progress = ProgressLine(stream, clock=clock)
    progress.start()
    clock.now += 10
    assert not progress.update(1, 1, 0)
    assert progress.guard(stream) is stream and stream.getvalue() == ""
