"""HGCM commands in flight: submission, timed completion, write-back and cancellation.

Reference §4.9-4.10.  An accepted command is pending (by request address) until it
completes; completion writes outputs and ``result``, sets DONE with a last separate write
and raises VMMDEV_EVENT_HGCM, unless the command was cancelled, in which case nothing is
written and no event is raised.  Commands are timed by ``HgcmTiming``: synchronous ones
charge their cost to the submitting `out`; asynchronous ones complete that many cycles
later, through the machine's scheduler.

A command is plain data: what to write back is derived from its fields at completion, and
nothing it refers to refers back to it (the service's call reaches the queue through the
command's serial number, not a closure).  So a completed command, its parsed parameters and
its bounce buffers are freed by reference counting the moment the queue lets go of them,
without waiting for the cyclic garbage collector.

Heap budget (VMMDevHGCM.cpp: vmmdevR3HgcmCmdAlloc, vmmdevR3HgcmCallMemAllocEx,
vmmdevR3HgcmCmdFree): every command charges ``COMMAND_HEAP_COST`` plus its bounce buffers to
the budget of its requestor's heap category while it is in flight, and gives it back when
it completes; a command that does not fit fails synchronously with VERR_NO_MEMORY.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from hgcmlab.devices.vmmdev.abi import (
    HGCM_CONNECT_CLIENT,
    HGCM_FLAGS,
    HGCM_RESULT,
    REQUEST_TYPE,
    VBOX_HGCM_REQ_DONE,
    VMMDEV_REQUESTOR_LEGACY,
    RequestType,
)
from hgcmlab.devices.vmmdev.config import HgcmTiming
from hgcmlab.devices.vmmdev.params import ParsedCall, describe, write_back
from hgcmlab.devices.vmmdev.physical import PhysicalMemory
from hgcmlab.devices.vmmdev.saved import call_from_data, call_to_data
from hgcmlab.machine.clock import Clock, Scheduler
from hgcmlab.runtime.status import Status, status_name
from hgcmlab.services.hgcm import HgcmCall

#: The scheduler owner name of the queue's events (an asynchronous completion is the
#: event "complete" with the command's serial).
EVENT_OWNER = "vmmdev.hgcm"
_COMPLETE = "complete"

#: Heap bytes one command costs besides its bounce buffers (our estimate of a command's
#: host footprint; VirtualBox charges the size of its VBOXHGCMCMD structure).
COMMAND_HEAP_COST = 1024
#: Default heap budget of each heap category, in bytes (VirtualBox derives its default from
#: the host's RAM; we use a fixed value so that runs do not depend on the host: see
#: docs/deviations.md).
DEFAULT_HEAP_BUDGET = 256 * 1024 * 1024


class HeapCategory(IntEnum):
    """The device's heap-accounting categories (VMMDEV_HGCM_CATEGORY_*)."""

    KERNEL = 0
    ROOT = 1
    USER = 2


def heap_category(requestor: int) -> HeapCategory:
    """The heap category of a request from its requestor value (vmmdevR3HgcmCmdAlloc):
    legacy and VMMDEV_REQUESTOR_USR_NOT_GIVEN/DRV/DRV_OTHER are kernel, ROOT/SYSTEM root,
    everything else user."""
    if requestor == VMMDEV_REQUESTOR_LEGACY:
        return HeapCategory.KERNEL
    usr = requestor & 0x7
    if usr <= 2:
        return HeapCategory.KERNEL
    if usr <= 4:
        return HeapCategory.ROOT
    return HeapCategory.USER


@dataclass(eq=False)
class Command:
    """One accepted HGCM command (plain data: no callables, nothing pointing back to it)."""

    address: int
    size: int
    request_type: int
    kind: str                       # "connect", "disconnect" or "call"
    submitted_cycle: int = 0
    #: connect: the new client's id (written back on success); disconnect/call: the client.
    client_id: int = 0
    call: HgcmCall | None = None
    parsed: ParsedCall | None = None
    function: int | None = None
    cancelled: bool = False
    status: int | None = None       # set once the host finished the work
    cost: int = 0                   # cycles, from HgcmTiming
    #: The cycle an asynchronous completion is scheduled for (None: not scheduled).
    due: int | None = None
    #: Names for the completion trace event.
    service_name: str = ""
    function_name: str = ""
    heap_category: HeapCategory = HeapCategory.KERNEL
    heap_cost: int = 0
    serial: int = field(default=0, repr=False)


#: Command fields saved as they are (the call and its parsed parameters are saved apart).
_PLAIN_FIELDS = ("address", "size", "request_type", "kind", "submitted_cycle", "client_id", "function",
                 "cancelled", "status", "cost", "due", "service_name", "function_name", "heap_cost", "serial")


def command_to_data(command: Command) -> dict:
    """``command`` as plain data (``command_from_data`` rebuilds it)."""
    data: dict = {name: getattr(command, name) for name in _PLAIN_FIELDS}
    data["heap_category"] = int(command.heap_category)
    data["call"] = None if command.call is None else call_to_data(command.call, command.parsed)
    return data


def command_from_data(data: dict) -> Command:
    """The command ``command_to_data`` saved (its call without ``on_complete``)."""
    command = Command(**{name: data[name] for name in _PLAIN_FIELDS})
    command.heap_category = HeapCategory(data["heap_category"])
    if data["call"] is not None:
        command.call, command.parsed = call_from_data(data["call"])
    return command


class CommandQueue:
    """Pending commands, their completion and the heap budget they are charged to."""

    def __init__(self, memory: Callable[[], PhysicalMemory], clock: Callable[[], Clock | None],
                 timing: HgcmTiming, notify_hgcm: Callable[[], None], trace: Callable[..., None],
                 tracing: Callable[[str], bool] = lambda kind: True, *,
                 heap_budget: int = DEFAULT_HEAP_BUDGET) -> None:
        if heap_budget < 0:
            raise ValueError("the HGCM heap budget must not be negative")
        self._memory = memory
        self._tracing = tracing
        self._clock = clock
        self.timing = timing
        self._notify_hgcm = notify_hgcm
        self._trace = trace
        self.pending: dict[int, Command] = {}
        #: Commands whose completion has not run yet, by serial (a command whose address was
        #: reused by a newer request is no longer in ``pending`` but still here).
        self._in_flight: dict[int, Command] = {}
        self._serial = 0
        self.heap_budget = heap_budget
        #: Heap bytes in use per category.
        self.heap_used: dict[HeapCategory, int] = {category: 0 for category in HeapCategory}

    def _now(self) -> int:
        clock = self._clock()
        return clock.now() if clock is not None else 0

    # --- heap budget ----------------------------------------------------------------------

    def heap_available(self, category: HeapCategory) -> int:
        """Bytes still free in the budget of ``category``."""
        return self.heap_budget - self.heap_used[category]

    def reserve(self, command: Command, category: HeapCategory, cost: int) -> bool:
        """Charge ``cost`` bytes of ``category`` to ``command``; False when they do not fit."""
        if cost > self.heap_available(category):
            return False
        command.heap_category = category
        command.heap_cost = cost
        self.heap_used[category] += cost
        return True

    def _release(self, command: Command) -> None:
        self.heap_used[command.heap_category] -= command.heap_cost
        command.heap_cost = 0

    # --- lifecycle ------------------------------------------------------------------------

    def submit(self, command: Command, byte_count: int, declared_cycles: int | None = None) -> None:
        """Track an accepted command; its host work is started by the caller."""
        self._serial += 1
        command.serial = self._serial
        self.pending[command.address] = command
        self._in_flight[command.serial] = command
        # The clock is read only where the cycle is used: an asynchronous completion's due
        # cycle, a disconnect's (it may wait for earlier calls), a traced latency.  A
        # synchronous untraced call completes inside this `out` and never needs it.
        if (command.kind != "call" or self.timing.is_async(command.function)
                or self._tracing("hgcm_complete")):
            command.submitted_cycle = self._now()
        command.cost = self.timing.cost(command.function, byte_count, declared_cycles)

    def charge(self, cycles: int, reason: str) -> None:
        """Charge a synchronous command's ``cycles`` to the current instruction, as
        ``host_done`` does (nothing without a clock)."""
        clock = self._clock()
        if clock is not None:
            clock.charge(cycles, reason)

    def in_flight(self) -> list[Command]:
        """Commands whose completion has not run yet, in submission order."""
        return list(self._in_flight.values())

    def register_events(self, scheduler: Scheduler) -> None:
        """Receive the queue's scheduled completions from ``scheduler``."""
        scheduler.add_owner(EVENT_OWNER, self._on_event)

    def _on_event(self, kind: str, args: tuple[int | str, ...]) -> None:
        command = self._in_flight.get(int(args[0]))
        if kind == _COMPLETE and command is not None:
            self._complete(command)

    def save_state(self) -> dict:
        """Commands in flight (plain data, in submission order), the serial counter and the
        heap in use; pending ones are those ``pending`` maps to by address."""
        return {"serial": self._serial,
                "in_flight": [command_to_data(command) for command in self._in_flight.values()],
                "pending": sorted(command.serial for command in self.pending.values()),
                "heap_used": [self.heap_used[category] for category in HeapCategory]}

    def load_state(self, state: dict) -> None:
        """Replace the queue by ``save_state``'s output; calls still with their service get
        ``completion_for`` again (the caller hands them to the service's load_state)."""
        self._serial = int(state["serial"])
        commands = [command_from_data(data) for data in state["in_flight"]]
        self._in_flight = {command.serial: command for command in commands}
        pending = set(state["pending"])
        self.pending = {command.address: command for command in commands if command.serial in pending}
        self.heap_used = {category: int(used) for category, used in zip(HeapCategory, state["heap_used"], strict=True)}
        for command in commands:
            if command.call is not None and not command.call.completed:
                command.call.on_complete = self.completion_for(command)

    def completion_for(self, command: Command) -> Callable[[HgcmCall, int], None]:
        """The ``HgcmCall.on_complete`` of ``command``'s call: refers to the queue and the
        command's serial only, so call and command form no reference cycle."""
        return functools.partial(self._call_done, command.serial)

    def _call_done(self, serial: int, call: HgcmCall, status: int) -> None:
        command = self._in_flight.get(serial)
        if command is not None and command.status is None:
            self.host_done(command, status)

    def of_client(self, client_id: int) -> Iterator[Command]:
        """The client's calls not completed yet, in submission order."""
        return (command for command in self._in_flight.values()
                if command.kind == "call" and command.client_id == client_id)

    def host_done(self, command: Command, status: int, *, not_before: int | None = None) -> None:
        """The host finished the command with ``status``: complete it now (synchronous
        timing: its cost is charged to the current instruction) or when its latency ends.
        ``not_before``: a cycle the completion must wait for (it then is asynchronous)."""
        command.status = int(status)
        clock = self._clock()
        if clock is None:
            self._complete(command)
            return
        if self.timing.is_async(command.function) or not_before is not None:
            due = command.submitted_cycle + max(command.cost, 1)
            if not_before is not None:
                due = max(due, not_before)
            command.due = due
            clock.schedule_at(due, f"hgcm {command.kind} done", EVENT_OWNER, _COMPLETE, (command.serial,))
        else:
            self.charge(command.cost, f"hgcm {command.kind}")
            self._complete(command)

    def _complete(self, command: Command) -> None:
        """Write back (unless cancelled), DONE last, raise the HGCM event."""
        if self.pending.get(command.address) is command:
            del self.pending[command.address]
        self._in_flight.pop(command.serial, None)
        self._release(command)
        status = command.status if command.status is not None else Status.VERR_HGCM_INTERNAL
        traced = self._tracing("hgcm_complete")
        latency = self._now() - command.submitted_cycle if traced else 0
        if command.cancelled:
            if traced:
                self._trace("hgcm_complete", address=command.address, command=command.kind, cancelled=True,
                            result=int(status), result_name=status_name(status), latency=latency)
            self._drop(command)
            return
        physical = self._memory()
        memory = physical.ram  # the request itself lies in RAM (checked at submission)
        data = bytearray(memory.read(command.address, command.size))
        current_type = REQUEST_TYPE.get(data)
        if current_type in (command.request_type, RequestType.HGCMCancel):
            self._apply(command, data, physical)
        else:
            status = Status.VERR_INVALID_PARAMETER
        HGCM_RESULT.pack(data, 0, int(status))
        memory.write(command.address, data)
        flags = memory.read_u32(command.address + HGCM_FLAGS.offset)
        memory.write_u32(command.address + HGCM_FLAGS.offset, flags | VBOX_HGCM_REQ_DONE)
        if traced:
            self._trace("hgcm_complete", address=command.address, command=command.kind, cancelled=False,
                        result=int(status), result_name=status_name(status), latency=latency,
                        **self._details(command))
        self._drop(command)
        self._notify_hgcm()

    @staticmethod
    def _apply(command: Command, data: bytearray, memory: PhysicalMemory) -> None:
        """The command's outputs into ``data`` (a fresh copy of the request) and guest memory."""
        if command.kind == "connect":
            if command.status is not None and command.status >= 0:
                HGCM_CONNECT_CLIENT.pack(data, 0, command.client_id)
        elif command.kind == "call" and command.parsed is not None:
            write_back(command.parsed, data, memory)

    @staticmethod
    def _details(command: Command) -> dict[str, object]:
        """Decoded results of a call for its completion event."""
        if command.kind != "call" or command.parsed is None:
            return {}
        parsed = command.parsed
        return {"client": parsed.client_id, "function": parsed.function, "function_name": command.function_name,
                "service": command.service_name, "params": [describe(p, returned=True) for p in parsed.params]}

    @staticmethod
    def _drop(command: Command) -> None:
        """Let go of the parsed parameters now, even if someone still holds the command."""
        command.parsed = None

    def cancel(self, address: int) -> bool:
        """Mark the command at ``address`` cancelled; False when none is pending there."""
        command = self.pending.get(address)
        if command is None:
            return False
        self._trace("hgcm_cancel", address=address, command=command.kind, again=command.cancelled)
        command.cancelled = True
        return True

    def orphan(self, command: Command) -> None:
        """``command``'s client is gone and the service kept its call: whenever it completes,
        nothing is written to guest memory (like a cancelled command)."""
        self._trace("hgcm_orphaned", address=command.address, client=command.client_id)
        command.cancelled = True
