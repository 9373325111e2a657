"""Virtual time: the cost model, the clock and the event scheduler.

One clock serves the whole machine.  Every executed instruction is charged by its class in
a ``CostProfile`` (data, overridable by the user); devices and services charge declared
costs (per port range, per HGCM function, per byte) through ``Clock.charge``, each charge
carrying a reason that shows up in the trace.  Nothing here, or anywhere, reads wall time.

The scheduler holds device events at future cycles.  Events due at the same cycle fire in
the order they were scheduled (a sequence number breaks ties), so runs are deterministic.
An event is plain data (cycle, sequence, owner, kind, args) handed to the handler its owner
registered, never a closure, so the queue can be saved in a snapshot.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

#: Instruction classes of the cost model, in the order they are documented.
INSTRUCTION_CLASSES = ("alu", "multiply", "divide", "memory", "string", "branch", "port_io", "system")

_STRING_OPS = ("movs", "stos", "lods", "cmps", "scas", "ins", "outs")
_PREFIXES = ("rep ", "repe ", "repne ", "repz ", "repnz ", "lock ", "bnd ", "notrack ")
_SYSTEM = frozenset({"hlt", "cli", "sti", "lidt", "lgdt", "sidt", "sgdt", "rdtsc", "rdtscp", "cpuid",
                     "iret", "iretd", "iretq", "int", "int3", "into", "invlpg", "wbinvd", "pause",
                     "rdmsr", "wrmsr", "ltr", "lldt", "clts", "xgetbv", "xsetbv"})
_BRANCH_PREFIXES = ("j", "call", "ret", "loop")


def classify(mnemonic: str, has_memory_operand: bool) -> str:
    """The cost class of one instruction from its capstone mnemonic and operands."""
    base = mnemonic
    for prefix in _PREFIXES:
        if base.startswith(prefix):
            base = base[len(prefix):]
    if base in ("in", "out"):
        return "port_io"
    if base.startswith(_STRING_OPS) and base.rstrip("bwdq") in _STRING_OPS:
        return "string"
    if base in ("div", "idiv"):
        return "divide"
    if base in ("mul", "imul", "mulx"):
        return "multiply"
    if base in _SYSTEM:
        return "system"
    if base.startswith(_BRANCH_PREFIXES) and base not in ("lea",):
        return "branch"
    if has_memory_operand and base not in ("lea", "nop"):
        return "memory"
    return "alu"


@dataclass(frozen=True)
class CostProfile:
    """Cycles charged per executed instruction, by class.

    The defaults model a simple in-order core; they are a documented model, not a
    measurement of any real CPU.  Every cost must be a positive integer.
    """

    alu: int = 1
    multiply: int = 3
    divide: int = 25
    memory: int = 2
    string: int = 3
    branch: int = 2
    port_io: int = 40
    system: int = 10

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"cost of {item.name!r} must be a positive integer, not {value!r}")

    def cost(self, instruction_class: str) -> int:
        """Cycles for one instruction of ``instruction_class``."""
        return int(getattr(self, instruction_class))

    @property
    def max_cost(self) -> int:
        """The most any single instruction costs."""
        return max(asdict(self).values())

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> CostProfile:
        """A profile with the given classes overridden; unknown class names are an error."""
        unknown = set(values) - set(INSTRUCTION_CLASSES)
        if unknown:
            raise ValueError(f"unknown instruction classes {sorted(unknown)}; known: {', '.join(INSTRUCTION_CLASSES)}")
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_file(cls, path: Path) -> CostProfile:
        """Read overrides from a JSON object such as ``{"divide": 40, "port_io": 100}``."""
        try:
            values = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read cost profile {path}: {error}") from None
        if not isinstance(values, dict):
            raise ValueError(f"cost profile {path} must hold a JSON object")
        return cls.from_mapping(values)


@dataclass(order=True)
class ScheduledEvent:
    """A device event due at ``cycle`` (plain data: it can be saved and restored).

    ``sequence`` orders events due at the same cycle.  When it fires, the scheduler hands
    ``kind`` and ``args`` to the handler its ``owner`` registered; ``name`` is what the
    trace calls it.
    """

    cycle: int
    sequence: int
    name: str = field(compare=False)
    owner: str = field(compare=False)
    kind: str = field(compare=False)
    args: tuple[int | str, ...] = field(default=(), compare=False)
    cancelled: bool = field(default=False, compare=False)


#: What an owner registers to receive its events: handler(kind, args).
EventHandler = Callable[[str, tuple[int | str, ...]], None]


class Scheduler:
    """Device events at future cycles, as data dispatched to their owners' handlers."""

    def __init__(self) -> None:
        self._queue: list[ScheduledEvent] = []
        self._sequence = 0
        self._owners: dict[str, EventHandler] = {}

    def add_owner(self, owner: str, handler: EventHandler) -> None:
        """Route the events of ``owner`` to ``handler`` (wiring, not state: a restored
        machine's parts register again before its events are loaded)."""
        self._owners[owner] = handler

    def schedule(self, cycle: int, name: str, owner: str, kind: str,
                 args: tuple[int | str, ...] = ()) -> ScheduledEvent:
        """Queue event ``kind`` of ``owner`` for ``cycle``; returns a cancellable handle."""
        if owner not in self._owners:
            raise ValueError(f"no event handler registered for {owner!r}")
        self._sequence += 1
        event = ScheduledEvent(cycle, self._sequence, name, owner, kind, tuple(args))
        heapq.heappush(self._queue, event)
        return event

    def fire(self, event: ScheduledEvent) -> None:
        """Hand ``event`` to its owner's handler."""
        self._owners[event.owner](event.kind, event.args)

    def next_cycle(self) -> int | None:
        """When the next live event is due, or None."""
        while self._queue and self._queue[0].cancelled:
            heapq.heappop(self._queue)
        return self._queue[0].cycle if self._queue else None

    def pop_due(self, now: int) -> list[ScheduledEvent]:
        """Remove and return the live events due at or before ``now``, in firing order."""
        due: list[ScheduledEvent] = []
        while self._queue and self._queue[0].cycle <= now:
            event = heapq.heappop(self._queue)
            if not event.cancelled:
                due.append(event)
        return due

    def __len__(self) -> int:
        return sum(1 for event in self._queue if not event.cancelled)

    def save_state(self) -> dict:
        """The live events and the sequence counter as plain data."""
        live = sorted(event for event in self._queue if not event.cancelled)
        return {"sequence": self._sequence,
                "events": [[e.cycle, e.sequence, e.name, e.owner, e.kind, list(e.args)] for e in live]}

    def load_state(self, state: dict) -> None:
        """Replace the queue by ``save_state``'s output; every owner must be registered."""
        events = [ScheduledEvent(int(cycle), int(sequence), str(name), str(owner), str(kind), tuple(args))
                  for cycle, sequence, name, owner, kind, args in state["events"]]
        unknown = sorted({event.owner for event in events} - set(self._owners))
        if unknown:
            raise ValueError(f"scheduled events of unknown owners: {', '.join(unknown)}")
        self._queue = events
        heapq.heapify(self._queue)
        self._sequence = int(state["sequence"])


class Clock:
    """The machine's one clock as devices see it.

    ``now`` is exact inside device callbacks (the cycle at the start of the current
    instruction plus everything charged so far).  ``charge`` adds declared costs, traced
    with their reason; ``schedule_in``/``schedule_at`` queue device events.
    """

    def __init__(self, now: Callable[[], int], charge: Callable[[int], None], scheduler: Scheduler,
                 trace: Callable[..., None], on_schedule: Callable[[int], None] = lambda cycle: None) -> None:
        self._now = now
        self._charge = charge
        self.scheduler = scheduler
        self._trace = trace
        self._on_schedule = on_schedule

    def now(self) -> int:
        """Current virtual cycle."""
        return self._now()

    def charge(self, cycles: int, reason: str) -> None:
        """Spend ``cycles`` of virtual time for ``reason`` (e.g. ``"port vmmdev.request"``)."""
        if cycles <= 0:
            return
        self._charge(cycles)
        self._trace("charge", cycles=cycles, reason=reason)

    def schedule_at(self, cycle: int, name: str, owner: str, kind: str,
                    args: tuple[int | str, ...] = ()) -> ScheduledEvent:
        """Fire event ``kind`` of ``owner`` (with ``args``) when the clock reaches ``cycle``
        (at once if that has passed); ``name`` labels it in the trace."""
        event = self.scheduler.schedule(cycle, name, owner, kind, args)
        self._on_schedule(cycle)
        return event

    def schedule_in(self, cycles: int, name: str, owner: str, kind: str,
                    args: tuple[int | str, ...] = ()) -> ScheduledEvent:
        """Fire event ``kind`` of ``owner`` ``cycles`` from now."""
        return self.schedule_at(self.now() + cycles, name, owner, kind, args)
