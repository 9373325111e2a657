"""HGCM commands in flight: submission, timed completion, write-back and cancellation.

Reference §4.9-4.10.  An accepted command is pending (by request address) until it
completes; completion writes outputs and ``result``, sets DONE with a last separate write
and raises VMMDEV_EVENT_HGCM, unless the command was cancelled, in which case nothing is
written and no event is raised.  Commands are timed by ``HgcmTiming``: synchronous ones
charge their cost to the submitting `out`; asynchronous ones complete that many cycles
later, through the machine's scheduler.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from devices.vmmdev.abi import VBOX_HGCM_REQ_DONE, RequestType
from devices.vmmdev.config import HgcmTiming
from machine.clock import Clock, ScheduledEvent
from machine.memory import GuestMemory
from runtime.status import Status, status_name
from services.hgcm import HgcmCall

OFF_TYPE = 8
OFF_HGCM_FLAGS, OFF_HGCM_RESULT = 24, 28


@dataclass
class Command:
    """One accepted HGCM command."""

    address: int
    size: int
    request_type: int
    kind: str                       # "connect", "disconnect" or "call"
    apply: Callable[[bytearray], None]
    submitted_cycle: int
    call: HgcmCall | None = None
    function: int | None = None
    cancelled: bool = False
    status: int | None = None       # set once the host finished the work
    cost: int = 0                   # cycles, from HgcmTiming
    #: Extra fields for the completion trace event (decoded results), when tracing.
    describe: Callable[[], dict[str, object]] | None = field(default=None, repr=False)
    timer: ScheduledEvent | None = field(default=None, repr=False)


class CommandQueue:
    """Pending commands and their completion."""

    def __init__(self, memory: Callable[[], GuestMemory], clock: Callable[[], Clock | None],
                 timing: HgcmTiming, notify_hgcm: Callable[[], None], trace: Callable[..., None],
                 tracing: Callable[[], bool] = lambda: True) -> None:
        self._memory = memory
        self._tracing = tracing
        self._clock = clock
        self.timing = timing
        self._notify_hgcm = notify_hgcm
        self._trace = trace
        self.pending: dict[int, Command] = {}

    def _now(self) -> int:
        clock = self._clock()
        return clock.now() if clock is not None else 0

    def submit(self, command: Command, byte_count: int, declared_cycles: int | None = None) -> None:
        """Track an accepted command; its host work is started by the caller."""
        self.pending[command.address] = command
        command.submitted_cycle = self._now()
        command.cost = self.timing.cost(command.function, byte_count, declared_cycles)

    def host_done(self, command: Command, status: int) -> None:
        """The host finished the command with ``status``: complete it now (synchronous
        timing: its cost is charged to the current instruction) or when its latency ends."""
        command.status = int(status)
        clock = self._clock()
        if clock is None:
            self._complete(command)
        elif self.timing.is_async(command.function):
            due = command.submitted_cycle + max(command.cost, 1)
            command.timer = clock.schedule_at(due, f"hgcm {command.kind} done", lambda: self._complete(command))
        else:
            clock.charge(command.cost, f"hgcm {command.kind}")
            self._complete(command)

    def _complete(self, command: Command) -> None:
        """Write back (unless cancelled), DONE last, raise the HGCM event."""
        if self.pending.get(command.address) is command:
            del self.pending[command.address]
        status = command.status if command.status is not None else Status.VERR_HGCM_INTERNAL
        latency = self._now() - command.submitted_cycle
        if command.cancelled:
            self._trace("hgcm_complete", address=command.address, command=command.kind, cancelled=True,
                        result=int(status), result_name=status_name(status), latency=latency)
            return
        memory = self._memory()
        data = bytearray(memory.read(command.address, command.size))
        current_type = struct.unpack_from("<I", data, OFF_TYPE)[0]
        if current_type in (command.request_type, RequestType.HGCMCancel):
            command.apply(data)
        else:
            status = Status.VERR_INVALID_PARAMETER
        struct.pack_into("<i", data, OFF_HGCM_RESULT, int(status))
        memory.write(command.address, data)
        flags = memory.read_u32(command.address + OFF_HGCM_FLAGS)
        memory.write_u32(command.address + OFF_HGCM_FLAGS, flags | VBOX_HGCM_REQ_DONE)
        if self._tracing():
            details = command.describe() if command.describe is not None else {}
            self._trace("hgcm_complete", address=command.address, command=command.kind, cancelled=False,
                        result=int(status), result_name=status_name(status), latency=latency, **details)
        self._notify_hgcm()

    def cancel(self, address: int) -> bool:
        """Mark the command at ``address`` cancelled; False when none is pending there."""
        command = self.pending.get(address)
        if command is None:
            return False
        self._trace("hgcm_cancel", address=address, command=command.kind, again=command.cancelled)
        command.cancelled = True
        return True
