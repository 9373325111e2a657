"""Typed trace events, the tracer that stamps them, and sinks that store or write them.

Library code never prints: it emits events.  The machine stamps each event with the
current cycle, instruction count and guest pc; sinks decide what to do with them.
Nothing here reads wall time.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from hgcmlab.runtime.trace_catalog import CATALOG, check_event, check_kind


@dataclass(frozen=True)
class TraceEvent:
    """One thing that happened, at a point of virtual time.

    ``kind`` names the event family (``port_io``, ``vmmdev_request``, ``hgcm_connect``,
    ``hgcm_call``, ``hgcm_disconnect``, ``guest_log``, ``guest_fault``, ``run_end`` ...);
    ``fields`` carries its decoded details (JSON-representable values only).
    """

    kind: str
    cycle: int
    instructions: int
    pc: int
    fields: dict[str, Any] = field(default_factory=dict)

    def host_independent(self) -> TraceEvent:
        """This event without the bytes a host service returned (file times, inode numbers,
        listing order come from the host): what two runs against different host folders can
        be compared on."""
        if self.kind != "hgcm_complete" or "params" not in self.fields:
            return self
        params = [{key: value for key, value in param.items() if key != "data"} for param in self.fields["params"]]
        return TraceEvent(self.kind, self.cycle, self.instructions, self.pc, {**self.fields, "params": params})

    def to_json(self) -> str:
        """One JSON object with a stable key order (deterministic output)."""
        record = {"kind": self.kind, "cycle": self.cycle, "instructions": self.instructions,
                  "pc": self.pc, **self.fields}
        return json.dumps(record, sort_keys=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> TraceEvent:
        """The event ``to_json`` wrote (``ValueError`` for anything else).

        A field named like a stamp key is written once, as the stamp; ``run_end`` carries
        such a field (``instructions``) and gets it back here."""
        record = json.loads(line)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        try:
            kind, cycle, instructions, pc = (record.pop(key) for key in STAMP_KEYS)
        except KeyError as missing:
            raise ValueError(f"missing key {missing}") from None
        if not isinstance(kind, str) or not all(type(v) is int for v in (cycle, instructions, pc)):
            raise ValueError("kind must be a string and cycle, instructions, pc integers")
        for key in _STAMP_FIELDS.get(kind, ()):
            record[key] = instructions if key == "instructions" else cycle if key == "cycle" else pc
        return cls(kind, cycle, instructions, pc, record)


#: The keys every serialized event starts with.
STAMP_KEYS = ("kind", "cycle", "instructions", "pc")
#: Kinds whose fields repeat a stamp key (the value is the stamp's).
_STAMP_FIELDS: dict[str, tuple[str, ...]] = {"run_end": ("instructions",)}


class SinkError(Exception):
    """A sink cannot take an event (a trace file that cannot be written, say).  It stops the
    run; devices and the port bus let it pass unchanged, so the front end that installed the
    sink reports it in its own terms."""


class TraceSink(Protocol):
    """Receives every event the tracer emits; may raise ``SinkError``."""

    def __call__(self, event: TraceEvent) -> None: ...


class Stamp(Protocol):
    """Supplies the (cycle, instructions, pc) stamp for new events."""

    def __call__(self) -> tuple[int, int, int]: ...


class Tracer:
    """Stamps events and hands them to the attached sinks.

    Every kind is one of ``hgcmlab.runtime.trace_catalog``: a delivered event of an undeclared kind
    raises ``EventError`` (one dict lookup, paid only when some sink takes the event).  In
    strict mode (``strict=True``, or ``Tracer.strict_default`` which the test suite sets)
    every emitted event is checked against its declaration, fields and types included,
    whether or not a sink wants it; production tracers never pay for that.

    A sink may declare the event kinds it wants (``add_sink(sink, kinds=...)``, or a
    ``wanted_kinds`` attribute on the sink); it then sees only those.  An event no sink
    wants costs one set lookup and is never built into a ``TraceEvent``; ``enabled`` and
    ``wants`` let hot paths skip building event fields altogether.
    """

    #: Strict mode for tracers created without an explicit ``strict`` (tests set it).
    strict_default: bool = False

    def __init__(self, stamp: Stamp | None = None, *, strict: bool | None = None) -> None:
        self._stamp: Stamp = stamp or (lambda: (0, 0, 0))
        self._sinks: list[tuple[TraceSink, frozenset[str] | None]] = []
        self._transforms: list[Callable[[TraceEvent], TraceEvent]] = []
        #: Kinds at least one sink declared; None when some sink takes every kind.
        self._wanted: frozenset[str] | None = frozenset()
        #: Called after every change of the sinks (``add_change_listener``).
        self._change_listeners: list[Callable[[], None]] = []
        if self.strict_default if strict is None else strict:
            # An instance attribute, so the production ``emit`` carries no strictness test.
            self.emit = self._emit_strict  # type: ignore[method-assign]

    def set_stamp(self, stamp: Stamp) -> None:
        """Use ``stamp`` for the virtual-time stamp of future events."""
        self._stamp = stamp

    def add_sink(self, sink: TraceSink, kinds: Iterable[str] | None = None) -> None:
        """Send every future event to ``sink``, or only those of ``kinds`` (default: the
        sink's own ``wanted_kinds`` attribute when it has one, else every kind)."""
        if kinds is None:
            kinds = getattr(sink, "wanted_kinds", None)
        self._sinks.append((sink, None if kinds is None else frozenset(kinds)))
        self._update_wanted()

    def remove_sink(self, sink: TraceSink) -> None:
        """Stop sending events to ``sink`` (``ValueError`` when it is not attached)."""
        for index, (attached, _kinds) in enumerate(self._sinks):
            if attached is sink or attached == sink:
                del self._sinks[index]
                self._update_wanted()
                return
        raise ValueError("sink is not attached")

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every ``add_sink``/``remove_sink`` (something that
        decided not to build events may have to decide again)."""
        self._change_listeners.append(listener)

    def _update_wanted(self) -> None:
        self._wanted = self._wanted_by_sinks()
        for listener in self._change_listeners:
            listener()

    def _wanted_by_sinks(self) -> frozenset[str] | None:
        wanted: set[str] = set()
        for _sink, kinds in self._sinks:
            if kinds is None:
                return None
            wanted |= kinds
        return frozenset(wanted)

    def add_transform(self, transform: Callable[[TraceEvent], TraceEvent]) -> None:
        """Pass every future event through ``transform`` (in the order added) before the
        sinks see it; a transform returns the event itself or an enriched copy."""
        self._transforms.append(transform)

    def remove_transform(self, transform: Callable[[TraceEvent], TraceEvent]) -> None:
        """Stop applying ``transform``."""
        self._transforms.remove(transform)

    @property
    def enabled(self) -> bool:
        """True when at least one sink listens (to any kind)."""
        return bool(self._sinks)

    @property
    def wanted_kinds(self) -> frozenset[str] | None:
        """The kinds some sink wants; None when some sink takes every kind."""
        return self._wanted

    def wants(self, kind: str) -> bool:
        """Whether some sink would receive an event of ``kind``."""
        wanted = self._wanted
        return wanted is None or kind in wanted

    def emit(self, kind: str, **fields: Any) -> None:
        """Stamp and deliver one event of ``kind`` with ``fields`` to the sinks that want it."""
        wanted = self._wanted
        if wanted is not None and kind not in wanted:
            return
        if kind not in CATALOG:
            check_kind(kind)
        cycle, instructions, pc = self._stamp()
        event = TraceEvent(kind, cycle, instructions, pc, fields)
        for transform in self._transforms:
            event = transform(event)
        for sink, kinds in self._sinks:
            if kinds is None or kind in kinds:
                sink(event)


    def _emit_strict(self, kind: str, **fields: Any) -> None:
        """``emit`` after checking the event against the catalog (strict mode)."""
        check_event(kind, fields)
        Tracer.emit(self, kind, **fields)


class ListSink:
    """Keeps every event in memory (tests, summaries)."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []

    def __call__(self, event: TraceEvent) -> None:
        self.events.append(event)

    def of_kind(self, kind: str) -> list[TraceEvent]:
        """The events of one kind, in order."""
        return [event for event in self.events if event.kind == kind]


class JsonLinesSink:
    """Writes one JSON object per line to a text stream (constant memory)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: TraceEvent) -> None:
        self._stream.write(event.to_json())
        self._stream.write("\n")


class CallbackSink:
    """Calls ``callback`` for events whose kind is in ``kinds`` (e.g. live guest log lines);
    the tracer delivers it nothing else."""

    def __init__(self, kinds: set[str], callback: Callable[[TraceEvent], None]) -> None:
        self.wanted_kinds = frozenset(kinds)
        self._callback = callback

    def __call__(self, event: TraceEvent) -> None:
        if event.kind in self.wanted_kinds:
            self._callback(event)


class CountingSink:
    """Counts events of ``kinds`` by kind, and by the value of one field (``by``) per kind,
    without keeping the events (constant memory however long the run)."""

    def __init__(self, kinds: Mapping[str, str | None]) -> None:
        self.wanted_kinds = frozenset(kinds)
        self._by = dict(kinds)
        self.totals: Counter[str] = Counter()
        self.values: dict[str, Counter[str]] = {kind: Counter() for kind, field in kinds.items() if field}

    def __call__(self, event: TraceEvent) -> None:
        kind = event.kind
        if kind not in self.wanted_kinds:
            return
        self.totals[kind] += 1
        field_name = self._by[kind]
        if field_name:
            self.values[kind][str(event.fields.get(field_name))] += 1
