"""Run control for the commands that run a guest (``run``, ``demo``, ``trace record``).

- Budgets: ``--max-instructions``, ``--max-cycles`` and ``--max-seconds`` (0, the default,
  means no limit: a command-line run is unbounded unless told otherwise).
- Ctrl-C: ``RunSupervisor`` turns SIGINT into ``Machine.cancel`` for the duration of a run.
  Unicorn executes guest code in C, where a Python signal handler never runs (the native
  block hook does not return to Python in a tight loop).  Where the host has the native
  page, a native SIGINT handler in front of the interpreter's sends the next block the guest
  enters to Python, where the Python handler then runs (machine/sigbridge.py).  Otherwise,
  or when a thread is needed anyway (a wall-time budget, the progress line), the signal is
  also written to a wake-up socket (``signal.set_wakeup_fd``, done by the interpreter's
  C-level handler) that a watcher thread waits on; the thread calls ``Machine.cancel``,
  whose ``uc_emu_stop`` makes the engine leave its current translated block.  (A second
  thread is avoided where it can be: it costs the native path a few percent.)
- The wall-time budget is checked by the watcher thread.  It only decides where a run stops:
  nothing a trace, a cycle count or the guest sees reads the wall clock, but a run stopped by
  it is not reproducible.
- The progress line (stderr, only on a terminal, after the first second, at most twice a
  second) is drawn by the same thread and erased before anything else is printed.
- Exit statuses: the guest's own code (port 0xF4; 0 after ``hlt``; 255 for codes above 255)
  and, for the machine's own outcomes, ``EXIT_USAGE``, ``EXIT_BUDGET``, ``EXIT_GUEST_FAULT``,
  ``EXIT_INTERRUPTED`` and ``EXIT_DEVICE_FAILURE``.  A guest may exit with one of those values too; the one-line
  message on stderr (and the summary) says which happened.
"""

from __future__ import annotations

import argparse
import math
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import TextIO

from hgcmlab.machine.machine import Machine, RunEnd, RunResult
from hgcmlab.machine.sigbridge import SignalBridge

#: Bad usage: options, unreadable programs, assembly errors (argparse's own convention).
EXIT_USAGE = 2
#: An instruction, cycle or wall-time budget ran out (as ``timeout(1)`` reports a timeout).
EXIT_BUDGET = 124
#: The guest faulted (CPU exception, unmapped memory, undeliverable interrupt).
EXIT_GUEST_FAULT = 125
#: The run was interrupted by Ctrl-C (SIGINT): 128 + 2, as shells report it.
EXIT_INTERRUPTED = 130
#: A device failed (raised while handling a port access; ``hgcmlab.machine.device.DeviceFailure``):
#: sysexits' EX_SOFTWARE, an internal error of the machine rather than of the guest.
EXIT_DEVICE_FAILURE = 70

#: Seconds a run goes before the progress line appears, and between two redraws.
PROGRESS_DELAY = 1.0
PROGRESS_INTERVAL = 0.5
#: How often the watcher thread wakes while it has a clock to watch (wall-time budget,
#: progress line, a cancel not yet acted on).
_POLL_SECONDS = 0.05
#: Written to the wake-up socket to end the watcher thread (signal numbers are below 65).
_QUIT = b"\xff"


def exit_status(result: RunResult) -> int:
    """The process exit status for a run that ended with ``result`` (see module doc)."""
    if result.end is RunEnd.FAULT:
        return EXIT_GUEST_FAULT
    if result.end is RunEnd.BUDGET:
        return EXIT_BUDGET
    if result.end is RunEnd.INTERRUPTED:
        return EXIT_INTERRUPTED
    return result.exit_code if 0 <= result.exit_code <= 255 else 255


@dataclass(frozen=True)
class Budgets:
    """Limits for one run; None means no limit."""

    instructions: int | None = None
    cycles: int | None = None
    seconds: float | None = None


def whole_number(text: str, negative: str = "is negative (0 means no limit)") -> int:
    """An option's non-negative integer (decimal, 0x.., 0o.., 0b..); ``negative`` ends the
    message for a negative one.  Raises ``argparse.ArgumentTypeError``."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} {negative}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite, non-negative number of seconds")
    return value


def add_budget_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--max-instructions``, ``--max-cycles`` and ``--max-seconds`` to ``parser``."""
    parser.add_argument("--max-instructions", type=whole_number, default=0, metavar="N",
                        help="stop the run after N instructions (default 0: no limit)")
    parser.add_argument("--max-cycles", type=whole_number, default=0, metavar="N",
                        help="stop the run at the first instruction boundary at or after N virtual "
                             "cycles (default 0: no limit; makes every block go through Python)")
    parser.add_argument("--max-seconds", type=_seconds, default=0.0, metavar="S",
                        help="stop the run after S seconds of wall time (default 0: no limit; "
                             "where such a run stops is not reproducible)")


def budgets_from_args(args: argparse.Namespace) -> Budgets:
    """The budgets chosen by ``add_budget_options``' options (0 → no limit)."""
    return Budgets(getattr(args, "max_instructions", 0) or None, getattr(args, "max_cycles", 0) or None,
                   getattr(args, "max_seconds", 0.0) or None)


def run_supervised(machine: Machine, budgets: Budgets, progress: ProgressLine | None = None, *,
                   until_cycle: int | None = None) -> RunResult:
    """Run ``machine`` within ``budgets``; Ctrl-C (from the main thread) and the wall-time
    budget stop it promptly, and ``progress`` (if given) shows how it goes.  ``until_cycle``
    pauses the run there (``RunEnd.PAUSED``), as ``Machine.run`` does."""
    # The call count comes from the device: a trace sink here would make every run build
    # and stamp events nobody asked for.
    with RunSupervisor(machine, max_seconds=budgets.seconds, progress=progress,
                       hgcm_calls=machine.vmmdev.calls_so_far):
        return machine.run(budgets.instructions, cycle_budget=budgets.cycles, until_cycle=until_cycle)


def end_report(result: RunResult) -> str | None:
    """What to print on stderr when the machine, not the guest, ended the run: the full
    report for a fault or an exhausted budget (headed "guest fault" or "run stopped"), one
    line for an interruption; None when the guest ended it."""
    message = stop_message(result)
    if message is not None or result.fault is None:
        return message
    return result.fault.format("run stopped" if result.end is RunEnd.BUDGET else "guest fault")


def stop_message(result: RunResult) -> str | None:
    """The one-line stderr message for a run the machine (not the guest) ended by
    interruption, else None (faults and budgets print their full report)."""
    if result.end is not RunEnd.INTERRUPTED:
        return None
    where = ""
    if result.fault is not None:
        where = f" at pc {result.fault.pc:#x}"
        if result.fault.symbol:
            where += f" <{result.fault.symbol}>"
        if result.fault.instruction:
            where += f": {result.fault.instruction}"
    return (f"hgcmlab: interrupted{where} after {result.instructions} instructions, "
            f"{result.cycles} cycles")


class ProgressLine:
    """A one-line progress display on ``stream``, redrawn in place.

    Shown only when ``enabled`` (default: ``stream`` is a terminal), not before ``delay``
    seconds of ``clock`` have passed since ``start`` and at most once every ``interval``
    seconds.  Output that shares the terminal goes through ``guard(other_stream)``, which
    erases the line first and keeps it hidden while a printed line is incomplete.
    Thread-safe: the supervisor draws from its thread while the run prints guest lines."""

    def __init__(self, stream: TextIO, *, enabled: bool | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 delay: float = PROGRESS_DELAY, interval: float = PROGRESS_INTERVAL) -> None:
        self._stream = stream
        self.enabled = _isatty(stream) if enabled is None else enabled
        self._clock = clock
        self._delay = delay
        self._interval = interval
        self._lock = threading.RLock()
        self._started = clock()
        self._drawn_at: float | None = None
        self._shown = False
        self._line_open = False

    def start(self) -> None:
        """Start the delay from now."""
        self._started = self._clock()
        self._drawn_at = None

    def update(self, instructions: int, cycles: int, hgcm_calls: int) -> bool:
        """Redraw with these counts if it is time to; returns True when it drew."""
        if not self.enabled:
            return False
        with self._lock:
            now = self._clock()
            elapsed = now - self._started
            if self._line_open or elapsed < self._delay:
                return False
            if self._drawn_at is not None and now - self._drawn_at < self._interval:
                return False
            rate = instructions / elapsed / 1e6 if elapsed > 0 else 0.0
            text = (f"{instructions:,} instructions, {cycles:,} cycles, {hgcm_calls} HGCM calls, "
                    f"{rate:.1f} M instructions/s, {elapsed:.0f} s")
            self._stream.write(f"\r{text}\x1b[K")
            self._stream.flush()
            self._drawn_at = now
            self._shown = True
            return True

    def clear(self) -> None:
        """Erase the line if it is shown (before other output, and at the end of a run)."""
        with self._lock:
            self._clear_locked()

    def _clear_locked(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False

    def write_around(self, stream: TextIO, text: str) -> int:
        """Write ``text`` to ``stream`` with the line erased first; while ``text`` leaves a
        line incomplete, the progress line stays hidden."""
        with self._lock:
            self._clear_locked()
            if text:
                self._line_open = not text.endswith("\n")
            return stream.write(text)

    def guard(self, stream: TextIO) -> TextIO:
        """``stream``, wrapped so that writing to it erases the progress line first."""
        if not self.enabled:
            return stream
        return _GuardedStream(stream, self)


class _GuardedStream:
    """A text stream whose writes go through ``ProgressLine.write_around`` (``write``,
    ``flush`` and attribute pass-through: what ``print`` needs)."""

    def __init__(self, stream: TextIO, progress: ProgressLine) -> None:
        self._stream = stream
        self._progress = progress

    def write(self, text: str) -> int:
        return self._progress.write_around(self._stream, text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class RunSupervisor:
    """Context manager around one run of ``machine``: Ctrl-C and the wall-time budget
    cancel it promptly, and ``progress`` (if given) is kept up to date.

    Ctrl-C is handled only when entered from the main thread (where Python delivers
    signals); the previous SIGINT handler and wake-up fd are restored on exit, and a stop
    request the run did not act on is dropped then.  ``hgcm_calls`` counts HGCM calls for the
    progress line."""

    def __init__(self, machine: Machine, *, max_seconds: float | None = None,
                 progress: ProgressLine | None = None, hgcm_calls: Callable[[], int] = lambda: 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._machine = machine
        self._max_seconds = max_seconds
        self._progress = progress
        self._hgcm_calls = hgcm_calls
        self._clock = clock
        self._started = 0.0
        self._done = False
        self._cancelling = False
        self._previous_handler: signal.Handlers | Callable[[int, FrameType | None], object] | int | None = None
        self._previous_wakeup = -1
        self._handling_signals = False
        self._reader, self._writer = socket.socketpair()
        self._thread: threading.Thread | None = None
        self._bridge = SignalBridge(machine.cpu.counters_address)
        self._bridged = False

    def __enter__(self) -> RunSupervisor:
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._started = self._clock()
        if self._progress is not None:
            self._progress.start()
        watch_clock = self._max_seconds is not None or (self._progress is not None and self._progress.enabled)
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
            self._handling_signals = True
            self._bridged = not watch_clock and self._bridge.install()
            if not self._bridged:
                self._previous_wakeup = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        if not self._bridged:
            self._thread = threading.Thread(target=self._watch, name="hgcmlab-run-control", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._done = True
        if self._thread is not None:
            try:
                self._writer.send(_QUIT)
            except OSError:
                pass  # the socket buffer is full of unread signal bytes: the thread wakes anyway
            self._thread.join()
        if self._bridged:
            self._bridge.remove()
        elif self._handling_signals:
            signal.set_wakeup_fd(self._previous_wakeup)
        if self._handling_signals:
            # None: the previous handler was not installed from Python; the default is closest.
            previous = signal.SIG_DFL if self._previous_handler is None else self._previous_handler
            signal.signal(signal.SIGINT, previous)
        self._reader.close()
        self._writer.close()
        # A Ctrl-C that came after the run had ended by itself must not stop a later run.
        self._machine.clear_cancel()
        if self._progress is not None:
            self._progress.clear()

    def _on_sigint(self, _signum: int, _frame: FrameType | None) -> None:
        # Runs in the main thread whenever it executes Python (a hook, between engine
        # starts); the native bridge or the watcher thread covers the time the engine runs
        # in C.
        self._cancel(RunEnd.INTERRUPTED, "interrupted")

    def _cancel(self, end: RunEnd, description: str) -> None:
        self._cancelling = True
        self._machine.cancel(end, description)

    def _watch(self) -> None:
        while not self._done:
            watching_clock = (self._max_seconds is not None or self._cancelling
                              or (self._progress is not None and self._progress.enabled))
            readable, _, _ = select.select([self._reader], [], [], _POLL_SECONDS if watching_clock else None)
            if readable:
                try:
                    received = self._reader.recv(256)
                except BlockingIOError:
                    received = b""
                if bytes([signal.SIGINT]) in received:
                    self._cancel(RunEnd.INTERRUPTED, "interrupted")
            if self._done:
                return
            elapsed = self._clock() - self._started
            if self._max_seconds is not None and elapsed >= self._max_seconds and not self._cancelling:
                self._cancel(RunEnd.BUDGET, f"wall-time budget of {self._max_seconds:g} s exhausted")
            elif self._cancelling and self._machine.cpu.cancel_requested:
                # Unicorn drops a stop requested just before the engine (re)starts: repeat it
                # until the run has acted on it.
                self._machine.cpu.cancel()
            if self._progress is not None and self._progress.enabled:
                instructions, cycles = self._machine.cpu.live_counts()
                self._progress.update(instructions, cycles, self._hgcm_calls())


__all__ = ["EXIT_USAGE", "EXIT_BUDGET", "EXIT_GUEST_FAULT", "EXIT_INTERRUPTED", "Budgets", "ProgressLine",
           "RunSupervisor", "add_budget_options", "budgets_from_args", "end_report", "exit_status", "run_supervised",
           "stop_message"]
