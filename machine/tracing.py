"""Typed trace events, the tracer that stamps them, and sinks that store or write them.

Library code never prints: it emits events.  The machine stamps each event with the
current cycle, instruction count and guest pc; sinks decide what to do with them.
Nothing here reads wall time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol


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


class TraceSink(Protocol):
    """Receives every event the tracer emits."""

    def __call__(self, event: TraceEvent) -> None: ...


class Stamp(Protocol):
    """Supplies the (cycle, instructions, pc) stamp for new events."""

    def __call__(self) -> tuple[int, int, int]: ...


class Tracer:
    """Stamps events and hands them to the attached sinks.

    A tracer with no sinks costs one attribute check per event; ``enabled`` lets hot
    paths skip building event fields altogether.
    """

    def __init__(self, stamp: Stamp | None = None) -> None:
        self._stamp: Stamp = stamp or (lambda: (0, 0, 0))
        self._sinks: list[TraceSink] = []
        self._transforms: list[Callable[[TraceEvent], TraceEvent]] = []

    def set_stamp(self, stamp: Stamp) -> None:
        """Use ``stamp`` for the virtual-time stamp of future events."""
        self._stamp = stamp

    def add_sink(self, sink: TraceSink) -> None:
        """Send every future event to ``sink``."""
        self._sinks.append(sink)

    def remove_sink(self, sink: TraceSink) -> None:
        """Stop sending events to ``sink``."""
        self._sinks.remove(sink)

    def add_transform(self, transform: Callable[[TraceEvent], TraceEvent]) -> None:
        """Pass every future event through ``transform`` (in the order added) before the
        sinks see it; a transform returns the event itself or an enriched copy."""
        self._transforms.append(transform)

    def remove_transform(self, transform: Callable[[TraceEvent], TraceEvent]) -> None:
        """Stop applying ``transform``."""
        self._transforms.remove(transform)

    @property
    def enabled(self) -> bool:
        """True when at least one sink listens."""
        return bool(self._sinks)

    def emit(self, kind: str, **fields: Any) -> None:
        """Stamp and deliver one event of ``kind`` with ``fields``."""
        if not self._sinks:
            return
        cycle, instructions, pc = self._stamp()
        event = TraceEvent(kind, cycle, instructions, pc, fields)
        for transform in self._transforms:
            event = transform(event)
        for sink in self._sinks:
            sink(event)


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
    """Calls ``callback`` for events whose kind is in ``kinds`` (e.g. live guest log lines)."""

    def __init__(self, kinds: set[str], callback: Callable[[TraceEvent], None]) -> None:
        self._kinds = kinds
        self._callback = callback

    def __call__(self, event: TraceEvent) -> None:
        if event.kind in self._kinds:
            self._callback(event)
