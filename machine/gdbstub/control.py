"""Execution control for a debugger: breakpoints, watchpoints, single steps and interrupts,
without changing what the guest computes.

The debugger never rewrites guest code and never ends a run early to stop: when the guest
must stop, the hook that notices it calls ``on_stop`` and that call *is* the stop - it
returns only when the debugger resumes, and the run goes on exactly where it was.  A run
stopped and resumed any number of times therefore executes, counts cycles and traces
exactly like one that was never stopped.

Where stops happen (always before an instruction, reported with its address as pc):

* breakpoints (gdb's Z0 and Z1 alike): before the instruction at the address executes;
* single step: before the next instruction that executes after at least one instruction
  completed or the pc changed (an interrupt taken before the stepped instruction stops at
  its handler);
* watchpoints: guest loads and stores are seen by Unicorn memory hooks, writes by devices
  and the machine (HGCM results, the DONE flag, interrupt frames) by the guest memory's
  write observer; the stop comes before the next instruction, after the access - as x86
  debug registers report data breakpoints.  Read and access watchpoints see guest loads
  only, not device reads;
* an interrupt request (gdb's Ctrl-C): the stop comes within ``POLL_INTERVAL`` instructions.

When the machine itself stops a run before an instruction (a device deadline, an
interrupt, the instruction count), Unicorn does not call that instruction's code hooks
until it really executes it, so every stop is reported once per execution:
tests/machine/test_gdb_equivalence.py counts the stops at every label against single steps
through the whole program, with device deadlines and interrupts landing everywhere.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from hgcmlab.machine.gdbstub import native
from hgcmlab.machine.machine import Machine

#: Instructions between two polls for an interrupt request while the guest runs.
POLL_INTERVAL = 1 << 16
#: Breakpoints a debugger may set (gdb asks for one per location).
MAX_BREAKPOINTS = 4096
#: Watchpoints a debugger may set (like debug registers, but more of them).
MAX_WATCHPOINTS = native.MAX_RANGES

_UC_MEM_WRITE = 17


class WatchKind(Enum):
    """What a watchpoint reacts to (gdb's Z2, Z3, Z4)."""

    WRITE = "watch"
    READ = "rwatch"
    ACCESS = "awatch"


@dataclass(frozen=True)
class Watchpoint:
    """A watched range."""

    kind: WatchKind
    address: int
    length: int


class StopReason(Enum):
    """Why the guest stopped."""

    START = "start"             # before the first instruction
    BREAKPOINT = "breakpoint"
    HW_BREAKPOINT = "hw_breakpoint"
    STEP = "step"
    WATCHPOINT = "watchpoint"
    INTERRUPT = "interrupt"     # the debugger asked for a stop


@dataclass(frozen=True)
class Stop:
    """One stop: why, where (pc) and, for watchpoints, which one was hit."""

    reason: StopReason
    pc: int
    watchpoint: Watchpoint | None = None


class Resume(Enum):
    """How ``on_stop`` tells the guest to go on."""

    CONTINUE = "continue"
    STEP = "step"
    DETACH = "detach"           # continue without the debugger: no more stops


class DebuggerAbort(Exception):
    """Raised by ``on_stop`` or ``poll`` to end the run (gdb killed it or went away)."""


class Debugger:
    """Breakpoints, watchpoints and stepping for one machine.

    ``on_stop(stop)`` is called at every stop and returns how to resume; ``poll()`` is
    called every ``POLL_INTERVAL`` instructions while the guest runs and returns True to
    request a stop.  Either may raise ``DebuggerAbort`` to end the run (``Machine.run``
    raises it).  ``attach`` must be called before the run starts."""

    def __init__(self, machine: Machine, on_stop: Callable[[Stop], Resume], poll: Callable[[], bool]) -> None:
        self.machine = machine
        self._on_stop = on_stop
        self._poll = poll
        self.breakpoints: dict[int, bool] = {}           # address -> hardware (Z1)
        self.watchpoints: list[Watchpoint] = []
        self._code_state = native.CodeState()
        self._table = (ctypes.c_uint64 * native.TABLE_SIZE)(*([native.EMPTY] * native.TABLE_SIZE))
        self._code_state.table = ctypes.addressof(self._table)
        self._code_state.mask = native.TABLE_SIZE - 1
        self._read_state = native.MemoryState()
        self._write_state = native.MemoryState()
        self._table_collides = False
        #: A stop to report at the next instruction that executes, and the position
        #: (instructions, pc) the guest must have left first (single steps only).
        self._pending: Stop | None = None
        self._leave: tuple[int, int] | None = None
        #: Where the guest was resumed from: a breakpoint there is not hit again at once.
        self._resumed_at: tuple[int, int] | None = None
        self._detached = False
        self._attached = False
        self._seen = 0

    # --- installation ---------------------------------------------------------------------

    def attach(self) -> None:
        """Install the hooks (before the run: they need translated code flushed)."""
        if self._attached:
            return
        self._attached = True
        cpu = self.machine.cpu
        self._code_callback = native.CODE_CALLBACK(self._code_hook)
        self._memory_callback = native.MEMORY_CALLBACK(self._memory_hook)
        self._code_state.python = ctypes.cast(self._code_callback, ctypes.c_void_p).value or 0
        memory_python = ctypes.cast(self._memory_callback, ctypes.c_void_p).value or 0
        self._read_state.python = self._write_state.python = memory_python
        code, memory = native.code_hook_address(), native.memory_hook_address()
        if code is None or memory is None:
            # No native gate on this host: Python sees every instruction and access.
            self._gate_code = native.CODE_CALLBACK(self._python_code_gate)
            self._gate_memory = native.MEMORY_CALLBACK(self._python_memory_gate)
            code = ctypes.cast(self._gate_code, ctypes.c_void_p).value or 0
            memory = ctypes.cast(self._gate_memory, ctypes.c_void_p).value or 0
        self._reset_countdown()
        cpu.add_native_hook("code", code, ctypes.addressof(self._code_state))
        cpu.add_native_hook("read", memory, ctypes.addressof(self._read_state))
        cpu.add_native_hook("write", memory, ctypes.addressof(self._write_state))
        self.machine.memory.write_observer = self._device_write

    def detach(self) -> None:
        """Forget every breakpoint and watchpoint and never stop or poll again (the hooks
        stay installed: they cost a Python call every ``POLL_INTERVAL`` instructions)."""
        self._detached = True
        self.breakpoints.clear()
        self.watchpoints.clear()
        self._pending = None
        self._rebuild()
        self.machine.memory.write_observer = None

    # --- breakpoints and watchpoints --------------------------------------------------------

    def add_breakpoint(self, address: int, hardware: bool = False) -> bool:
        """Stop before the instruction at ``address``; False when too many are set."""
        if address not in self.breakpoints and len(self.breakpoints) >= MAX_BREAKPOINTS:
            return False
        self.breakpoints[address] = hardware
        self._rebuild()
        return True

    def remove_breakpoint(self, address: int) -> None:
        """Remove the breakpoint at ``address`` (nothing when there is none)."""
        self.breakpoints.pop(address, None)
        self._rebuild()

    def add_watchpoint(self, watchpoint: Watchpoint) -> bool:
        """Watch a range; False when ``MAX_WATCHPOINTS`` are set or the range is empty."""
        if watchpoint.length <= 0 or watchpoint.address + watchpoint.length > 1 << 64:
            return False
        if watchpoint not in self.watchpoints:
            if len(self.watchpoints) >= MAX_WATCHPOINTS:
                return False
            self.watchpoints.append(watchpoint)
        self._rebuild()
        return True

    def remove_watchpoint(self, watchpoint: Watchpoint) -> None:
        """Remove a watchpoint (nothing when it is not set)."""
        if watchpoint in self.watchpoints:
            self.watchpoints.remove(watchpoint)
        self._rebuild()

    def _rebuild(self) -> None:
        for slot in range(native.TABLE_SIZE):
            self._table[slot] = native.EMPTY
        self._table_collides = False
        for address in self.breakpoints:
            slot = address & (native.TABLE_SIZE - 1)
            if self._table[slot] != native.EMPTY:
                self._table_collides = True
            self._table[slot] = address
        for state, kinds in ((self._read_state, (WatchKind.READ, WatchKind.ACCESS)),
                             (self._write_state, (WatchKind.WRITE, WatchKind.ACCESS))):
            ranges = [w for w in self.watchpoints if w.kind in kinds]
            for index, watchpoint in enumerate(ranges):
                state.ranges[index].start = watchpoint.address
                state.ranges[index].end = watchpoint.address + watchpoint.length
            state.count = len(ranges)
        self._reset_countdown()

    def _reset_countdown(self) -> None:
        # Colliding breakpoints or a stop waiting for the next instruction: see every one.
        busy = self._table_collides or self._pending is not None
        self._code_state.countdown = 1 if busy else POLL_INTERVAL

    def _poll_due(self) -> bool:
        """Count one countdown expiry; True every ``POLL_INTERVAL`` instructions."""
        self._seen += 1 if self._code_state.countdown == 1 else POLL_INTERVAL
        if self._seen < POLL_INTERVAL:
            return False
        self._seen = 0
        return True

    # --- stopping and resuming --------------------------------------------------------------

    def start(self) -> None:
        """Report the stop before the first instruction and resume as told."""
        self._stop(Stop(StopReason.START, self.machine.cpu.pc), inside_hook=False)

    def request_stop(self) -> None:
        """Stop before the next instruction that executes (gdb's Ctrl-C)."""
        self._pend(Stop(StopReason.INTERRUPT, 0))

    def _pend(self, stop: Stop, leave: tuple[int, int] | None = None) -> None:
        if self._detached or self._pending is not None:
            return
        self._pending, self._leave = stop, leave
        self._reset_countdown()

    def _stop(self, stop: Stop, inside_hook: bool) -> None:
        cpu = self.machine.cpu
        pc = stop.pc
        instructions = cpu.instructions_at(pc) if inside_hook else cpu.instructions
        resume = self._on_stop(stop)
        if not inside_hook:
            pc = cpu.pc         # before the first instruction the debugger may move it
        self._resumed_at = (instructions, pc)
        if resume is Resume.DETACH:
            self.detach()
        elif resume is Resume.STEP:
            self._pend(Stop(StopReason.STEP, 0), leave=(instructions, pc))

    def _code_hook(self, _uc: int, address: int, _size: int, _user: int) -> None:
        # Called from C: an exception must not unwind through Unicorn.
        try:
            self._on_instruction(address)
        except BaseException as error:  # noqa: BLE001 - Machine.run raises it
            self.machine.cpu.abort_run(error)

    def _on_instruction(self, address: int) -> None:
        state = self._code_state
        counted_out = state.countdown == 0
        if counted_out:
            self._reset_countdown()
            counted_out = self._poll_due()
        cpu = self.machine.cpu
        if self._detached:
            return
        position = (cpu.instructions_at(address), address)
        if counted_out and self._pending is None and self._poll():
            self._pend(Stop(StopReason.INTERRUPT, 0))
        pending = self._pending
        if pending is not None and (self._leave is None or position != self._leave):
            self._pending = self._leave = None
            self._reset_countdown()
            self._stop(Stop(pending.reason, address, pending.watchpoint), inside_hook=True)
            return
        hardware = self.breakpoints.get(address)
        if hardware is not None and position != self._resumed_at:
            reason = StopReason.HW_BREAKPOINT if hardware else StopReason.BREAKPOINT
            self._stop(Stop(reason, address), inside_hook=True)

    def _memory_hook(self, _uc: int, access: int, address: int, size: int, _value: int, _user: int) -> None:
        try:
            self._watch_hit(address, size, write=access == _UC_MEM_WRITE)
        except BaseException as error:  # noqa: BLE001 - Machine.run raises it
            self.machine.cpu.abort_run(error)

    def _device_write(self, address: int, size: int) -> None:
        self._watch_hit(address, size, write=True)

    def _watch_hit(self, address: int, size: int, *, write: bool) -> None:
        kinds = (WatchKind.WRITE, WatchKind.ACCESS) if write else (WatchKind.READ, WatchKind.ACCESS)
        for watchpoint in self.watchpoints:
            if (watchpoint.kind in kinds and address < watchpoint.address + watchpoint.length
                    and watchpoint.address < address + size):
                pending = self._pending
                if pending is not None and pending.reason is StopReason.STEP:
                    # The stepped instruction hit it: the step's stop reports the watchpoint.
                    self._pending = Stop(StopReason.WATCHPOINT, 0, watchpoint)
                else:
                    self._pend(Stop(StopReason.WATCHPOINT, 0, watchpoint))
                return

    # --- fallback gates (hosts without the native hooks) ------------------------------------

    def _python_code_gate(self, uc: int, address: int, size: int, user: int) -> None:
        state = self._code_state
        state.countdown -= 1
        if state.countdown == 0 or self._table[address & state.mask] == address:
            self._code_hook(uc, address, size, user)

    def _python_memory_gate(self, uc: int, access: int, address: int, size: int, value: int, user: int) -> None:
        state = self._write_state if access == _UC_MEM_WRITE else self._read_state
        if any(address < state.ranges[i].end and state.ranges[i].start < address + size for i in range(state.count)):
            self._memory_hook(uc, access, address, size, value, user)
