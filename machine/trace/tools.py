"""What ``hgcmlab trace`` does: show, stats, diff and export, over streams of events.

Every function takes an iterable of ``TraceEvent`` and streams it (only what the output
needs is kept: open calls by request address, per-function counters, diff context).
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from hgcmlab.machine.tracing import TraceEvent
from hgcmlab.services.decoders import decoder_for
from hgcmlab.services.framework import CallDecoder, DecodedCall

# --- shared helpers --------------------------------------------------------------------------

_VMMDEV_KINDS = ("vmmdev_", "hgcm_")


def device_of(event: TraceEvent) -> str | None:
    """The device an event belongs to: its ``device`` field, ``vmmdev`` for VMMDev/HGCM
    events, ``debuglog`` for guest log lines."""
    device = event.fields.get("device")
    if isinstance(device, str):
        return device
    if event.kind.startswith(_VMMDEV_KINDS):
        return "vmmdev"
    if event.kind == "guest_log":
        return "debuglog"
    return None


class CallTracker:
    """Pairs ``hgcm_call`` with its ``hgcm_complete`` (by request address) and decodes
    calls with their service's decoder (services/decoders.py), one per service per stream,
    told of every completion so it can remember what calls switched."""

    def __init__(self) -> None:
        self.open: dict[int, TraceEvent] = {}
        self._decoders: dict[object, CallDecoder | None] = {}

    def feed(self, event: TraceEvent) -> TraceEvent | None:
        """Note ``event``; for a call's completion, return the ``hgcm_call`` it completes."""
        if event.kind == "hgcm_call":
            self.open[event.fields.get("address", -1)] = event
            return None
        if event.kind == "hgcm_complete" and event.fields.get("command") == "call":
            call = self.open.pop(event.fields.get("address", -1), None)
            decoder = self.decoder(call) if call is not None else None
            if call is not None and decoder is not None:
                decoder.completed(call.fields, int(event.fields.get("result", -1)))
            return call
        return None

    def decoder(self, call: TraceEvent) -> CallDecoder | None:
        """The decoder of ``call``'s service in this stream (None: nobody decodes it)."""
        service = call.fields.get("service")
        if service not in self._decoders:
            self._decoders[service] = decoder_for(service)
        return self._decoders[service]

    def decode(self, call: TraceEvent, written_back: Sequence[dict[str, Any]] | None = None) -> DecodedCall | None:
        """``call``'s parameters (and with ``written_back`` its results) by name; None when
        the call carries no parameters or its service has no decoder."""
        decoder = self.decoder(call)
        if decoder is None or "params" not in call.fields:
            return None
        return decoder.decode(call.fields, written_back)

    def bytes_moved(self, call: TraceEvent, written_back: Sequence[dict[str, Any]] | None) -> tuple[int, int]:
        """(bytes written to the host, bytes read from it) by ``call`` as its decoder counts."""
        decoder = self.decoder(call)
        return decoder.bytes_moved(call.fields, written_back) if decoder is not None else (0, 0)


def _function_label(call: TraceEvent) -> str:
    name = call.fields.get("function_name")
    return str(name) if name is not None else f"fn {call.fields.get('function')}"


# --- show ------------------------------------------------------------------------------------


@dataclass
class ShowFilter:
    """Which events ``show`` prints (every condition given must hold)."""

    kinds: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()
    functions: frozenset[str] = frozenset()
    from_cycle: int | None = None
    to_cycle: int | None = None

    def matches(self, event: TraceEvent, call: TraceEvent | None) -> bool:
        if self.kinds and event.kind not in self.kinds:
            return False
        if self.devices and device_of(event) not in self.devices:
            return False
        if self.functions:
            subject = event if event.kind == "hgcm_call" else call
            if subject is None or not _function_matches(subject, self.functions):
                return False
        if self.from_cycle is not None and event.cycle < self.from_cycle:
            return False
        return self.to_cycle is None or event.cycle <= self.to_cycle


def _function_matches(call: TraceEvent, wanted: frozenset[str]) -> bool:
    name = _function_label(call).upper()
    return any(w.upper() in (name, f"SHFL_FN_{name}", str(call.fields.get("function"))) for w in wanted)


def _fields_text(fields: dict[str, Any], skip: Sequence[str] = ()) -> str:
    parts = []
    for key, value in fields.items():
        if key in skip:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and key in ("address", "port", "value", "base",
                                                                               "return_pc", "end", "entry"):
            value = f"{value:#x}"
        elif isinstance(value, (list, dict)):
            value = json.dumps(value, separators=(",", ":"))
            if len(value) > 80:
                value = value[:77] + "..."
        parts.append(f"{key}={value}")
    return " ".join(parts)


def describe(event: TraceEvent, call: TraceEvent | None = None, tracker: CallTracker | None = None) -> str:
    """One event as human text (no stamp); ``call`` is the ``hgcm_call`` an ``hgcm_complete``
    completes."""
    f = event.fields
    kind = event.kind
    tracker = tracker if tracker is not None else CallTracker()
    if kind == "hgcm_call":
        decoded = tracker.decode(event)
        if decoded is not None:
            text = decoded.format_inputs()
        else:
            text = f"{_function_label(event)}({f.get('parms', '?')} parms, {f.get('bytes', 0)} bytes)"
        return f"client {f.get('client')} {f.get('service', '')}: {text}"
    if kind == "hgcm_complete":
        head = f"{f.get('command')} at {f.get('address', 0):#x} -> {f.get('result_name', f.get('result'))}"
        if f.get("cancelled"):
            head += " (cancelled)"
        if call is not None:
            head = f"client {call.fields.get('client')} {_function_label(call)} " + head
            decoded = tracker.decode(call, f["params"]) if "params" in f else None
            results = decoded.format_outputs() if decoded is not None else ""
            head += f" {results}" if results else ""
        return f"{head}, latency {f.get('latency')}"
    if kind == "hgcm_connect":
        return f"{f.get('service')} -> client {f.get('client')} {f.get('status_name')}"
    if kind == "hgcm_disconnect":
        return f"client {f.get('client')} {f.get('status_name')}"
    if kind == "hgcm_service_error":
        return f"client {f.get('client')} {f.get('service')} {f.get('function_name')}: {f.get('status_name')} ({f.get('reason')})"
    if kind == "guest_log":
        return repr(f.get("line"))
    if kind in ("port_io", "port_unclaimed"):
        arrow = "<-" if f.get("direction") == "in" else "->"
        where = f.get("device", f.get("owner")) or "unclaimed"
        return f"{f.get('direction')}{f.get('size')} port {f.get('port', 0):#x} {arrow} {f.get('value', 0):#x} ({where})"
    if kind == "block":
        text = f"{f.get('address', 0):#x} {f.get('size')} bytes, {f.get('count')} instructions"
        if "disasm" in f:
            text += "".join(f"\n      {addr:#x}: {insn}" for addr, insn in f["disasm"])
        return text
    if kind == "vmmdev_request":
        return f"{f.get('type')} at {f.get('address', 0):#x} size {f.get('size')} -> {f.get('rc_name', f.get('rc'))}"
    return _fields_text(f)


def show(events: Iterable[TraceEvent], out: IO[str], selection: ShowFilter | None = None,
         limit: int | None = None) -> int:
    """Print matching events as ``cycle instructions pc kind details``; returns how many."""
    selection = selection or ShowFilter()
    tracker = CallTracker()
    shown = 0
    for event in events:
        call = tracker.feed(event)
        if event.kind == "hgcm_call":
            call = event
        if not selection.matches(event, call):
            continue
        if limit is not None and shown >= limit:
            break
        text = describe(event, call if event.kind == "hgcm_complete" else None, tracker)
        out.write(f"{event.cycle:>12} {event.instructions:>10} {event.pc:#10x}  {event.kind:<18} {text}\n")
        shown += 1
    return shown


# --- stats -----------------------------------------------------------------------------------


@dataclass
class FunctionStats:
    """Calls of one HGCM function."""

    calls: int = 0
    completed: int = 0
    failed: int = 0
    latencies: list[int] = field(default_factory=list)
    bytes_in: int = 0        # guest buffer bytes handed to the call (hgcm_call ``bytes``)
    written: int = 0         # file bytes written (WRITE, from the returned count)
    read: int = 0            # file bytes read (READ, from the returned count)


@dataclass
class Phase:
    """The run between two guest log lines (named after the line that starts it)."""

    name: str
    start_cycle: int
    start_instructions: int
    cycles: int = 0
    instructions: int = 0


@dataclass
class TraceStats:
    """Everything ``stats`` reports."""

    events: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    functions: dict[str, FunctionStats] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    cycles: int = 0
    instructions: int = 0
    interrupts: int = 0
    pending: int = 0


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return 0
    rank = max(1, -(-int(fraction * 1000) * len(sorted_values) // 1000))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def compute_stats(events: Iterable[TraceEvent]) -> TraceStats:
    """Calls per function, latency, bytes moved, instructions and cycles per phase."""
    stats = TraceStats()
    tracker = CallTracker()
    phase = Phase("(start)", 0, 0)
    for event in events:
        stats.events += 1
        stats.kinds[event.kind] += 1
        stats.cycles = max(stats.cycles, event.cycle)
        stats.instructions = max(stats.instructions, event.instructions)
        call = tracker.feed(event)
        if event.kind == "hgcm_call":
            entry = stats.functions.setdefault(_function_label(event), FunctionStats())
            entry.calls += 1
            entry.bytes_in += int(event.fields.get("bytes", 0))
        elif event.kind == "hgcm_complete" and call is not None:
            entry = stats.functions.setdefault(_function_label(call), FunctionStats())
            entry.completed += 1
            entry.latencies.append(int(event.fields.get("latency", event.cycle - call.cycle)))
            if int(event.fields.get("result", 0)) < 0 or event.fields.get("cancelled"):
                entry.failed += 1
            written, read = tracker.bytes_moved(call, event.fields.get("params"))
            entry.written += written
            entry.read += read
        elif event.kind == "interrupt_delivered":
            stats.interrupts += 1
        elif event.kind == "guest_log":
            _close_phase(stats, phase, event)
            phase = Phase(str(event.fields.get("line", "")), event.cycle, event.instructions)
    end = TraceEvent("run_end", stats.cycles, stats.instructions, 0)
    _close_phase(stats, phase, end)
    stats.pending = len(tracker.open)
    return stats


def _close_phase(stats: TraceStats, phase: Phase, at: TraceEvent) -> None:
    phase.cycles = at.cycle - phase.start_cycle
    phase.instructions = at.instructions - phase.start_instructions
    if phase.cycles or phase.instructions or phase.name != "(start)":
        stats.phases.append(phase)


def format_stats(stats: TraceStats) -> str:
    """``stats`` as text tables."""
    lines = [f"{stats.events} events, {stats.instructions} instructions, {stats.cycles} cycles, "
             f"{stats.interrupts} interrupts delivered"]
    lines.append("events by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(stats.kinds.items())))
    if stats.functions:
        lines.append("")
        lines.append(f"{'HGCM function':<28}{'calls':>6}{'failed':>7}{'lat min':>9}{'p50':>9}{'p95':>9}"
                     f"{'max':>9}{'mean':>10}{'buf bytes':>11}{'written':>9}{'read':>9}")
        for name, entry in sorted(stats.functions.items()):
            values = sorted(entry.latencies)
            mean = f"{sum(values) / len(values):.1f}" if values else "-"
            lines.append(f"{name:<28}{entry.calls:>6}{entry.failed:>7}{values[0] if values else '-':>9}"
                         f"{percentile(values, 0.5):>9}{percentile(values, 0.95):>9}"
                         f"{values[-1] if values else '-':>9}{mean:>10}{entry.bytes_in:>11}"
                         f"{entry.written:>9}{entry.read:>9}")
        if stats.pending:
            lines.append(f"({stats.pending} call(s) never completed)")
    if stats.phases:
        lines.append("")
        lines.append(f"{'phase (from guest log line)':<44}{'instructions':>14}{'cycles':>14}")
        for phase in stats.phases:
            name = phase.name if len(phase.name) <= 42 else phase.name[:39] + "..."
            lines.append(f"{name:<44}{phase.instructions:>14}{phase.cycles:>14}")
    return "\n".join(lines) + "\n"


# --- diff ------------------------------------------------------------------------------------


def normalize(event: TraceEvent, *, stamps: bool = True, ignore: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The comparable content of an event: kind, stamps (optional) and fields minus ``ignore``."""
    record: dict[str, Any] = {"kind": event.kind}
    if stamps:
        for key in ("cycle", "instructions", "pc"):
            if key not in ignore:
                record[key] = getattr(event, key)
    record.update((k, v) for k, v in event.fields.items() if k not in ignore)
    return record


@dataclass
class Divergence:
    """The first difference between two traces."""

    index: int                      # 0-based position among the compared events
    left: TraceEvent | None         # None: the left trace ended here
    right: TraceEvent | None
    context: list[TraceEvent]       # the compared events just before (identical on both sides)
    #: A differing HGCM call or completion as its service decodes it, per side (else None).
    decoded: tuple[str | None, str | None] = (None, None)

    def format(self, left_name: str = "A", right_name: str = "B") -> str:
        lines = [f"traces differ at event {self.index + 1}"]
        if self.context:
            lines.append(f"  common context (last {len(self.context)}):")
            lines += [f"    {_line(event)}" for event in self.context]
        for name, event in ((left_name, self.left), (right_name, self.right)):
            lines.append(f"  {name}: " + (_line(event) if event is not None else "<end of trace>"))
        for name, text in zip((left_name, right_name), self.decoded):
            if text is not None:
                lines.append(f"  {name} decoded: {text}")
        if self.left is not None and self.right is not None:
            a, b = normalize(self.left), normalize(self.right)
            changed = [key for key in dict.fromkeys([*a, *b]) if a.get(key, _ABSENT) != b.get(key, _ABSENT)]
            lines.append("  differing: " + ", ".join(
                f"{key}: {_short(a.get(key, _ABSENT))} != {_short(b.get(key, _ABSENT))}" for key in changed))
        return "\n".join(lines) + "\n"


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, (list, dict)) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _line(event: TraceEvent) -> str:
    return f"#{event.cycle} i{event.instructions} pc={event.pc:#x} {event.kind} {_fields_text(event.fields)}"


def first_divergence(left: Iterable[TraceEvent], right: Iterable[TraceEvent], *, kinds: frozenset[str] = frozenset(),
                     stamps: bool = True, ignore: frozenset[str] = frozenset(),
                     context: int = 5) -> Divergence | None:
    """The first position where the (filtered) traces differ, or None when they are equal.
    Every event (filtered or not) goes through a ``CallTracker`` per side, so a differing
    HGCM call or completion is also shown decoded by its service."""
    def select(events: Iterable[TraceEvent], tracker: CallTracker) -> Iterator[tuple[TraceEvent, TraceEvent | None]]:
        for event in events:
            call = tracker.feed(event)
            if not kinds or event.kind in kinds:
                yield event, call

    def decoded(event: TraceEvent | None, call: TraceEvent | None, tracker: CallTracker) -> str | None:
        hgcm = event is not None and (event.kind == "hgcm_call" or (event.kind == "hgcm_complete" and call is not None))
        return describe(event, call, tracker) if event is not None and hgcm else None

    recent: deque[TraceEvent] = deque(maxlen=context)
    a_tracker, b_tracker = CallTracker(), CallTracker()
    a_iter, b_iter = select(left, a_tracker), select(right, b_tracker)
    index = 0
    while True:
        a, a_call = next(a_iter, (None, None))
        b, b_call = next(b_iter, (None, None))
        if a is None and b is None:
            return None
        if a is None or b is None or (normalize(a, stamps=stamps, ignore=ignore)
                                      != normalize(b, stamps=stamps, ignore=ignore)):
            return Divergence(index, a, b, list(recent),
                              (decoded(a, a_call, a_tracker), decoded(b, b_call, b_tracker)))
        recent.append(a)
        index += 1


# --- Perfetto (Chrome trace-event JSON) ------------------------------------------------------

_PID = 1
_CPU_TID = 1
_DEVICE_TID = 2
_CLIENT_TID_BASE = 100


def export_perfetto(events: Iterable[TraceEvent], out: IO[str], *, name: str = "hgcmlab") -> int:
    """Write Chrome trace-event JSON (opens in ui.perfetto.dev and chrome://tracing).

    Time is virtual: 1 cycle is shown as 1 microsecond.  HGCM calls, connects and
    disconnects are complete slices ("X") on a per-client track, from submission to
    completion; interrupts, guest log lines, halts and the run's end are instants on the
    guest CPU track; other VMMDev events are instants on the VMMDev track.  Returns the
    number of trace events written.  Streams: only open calls are kept in memory."""
    written = 0
    first = True

    def put(record: dict[str, Any]) -> None:
        nonlocal written, first
        out.write(("" if first else ",\n") + json.dumps(record, separators=(",", ":")))
        first = False
        written += 1

    out.write('{"displayTimeUnit":"ns","otherData":{"generator":"hgcmlab","time_unit":"1 us = 1 virtual cycle"},'
              '"traceEvents":[\n')
    put({"ph": "M", "pid": _PID, "tid": 0, "name": "process_name", "args": {"name": name}})
    put({"ph": "M", "pid": _PID, "tid": _CPU_TID, "name": "thread_name", "args": {"name": "guest CPU"}})
    put({"ph": "M", "pid": _PID, "tid": _DEVICE_TID, "name": "thread_name", "args": {"name": "VMMDev"}})
    tracker = CallTracker()
    named_clients: set[int] = set()
    pending_connects: dict[int, TraceEvent] = {}
    open_other: dict[int, TraceEvent] = {}
    last_cycle = 0

    def client_track(client: Any, service: Any = None) -> int:
        number = client if isinstance(client, int) else 0
        tid = _CLIENT_TID_BASE + number
        if number not in named_clients:
            named_clients.add(number)
            label = f"HGCM client {number}" + (f" ({service})" if service else "")
            put({"ph": "M", "pid": _PID, "tid": tid, "name": "thread_name", "args": {"name": label}})
            put({"ph": "M", "pid": _PID, "tid": tid, "name": "thread_sort_index", "args": {"sort_index": tid}})
        return tid

    def instant(event: TraceEvent, tid: int, label: str, scope: str = "t") -> None:
        put({"ph": "i", "s": scope, "pid": _PID, "tid": tid, "ts": event.cycle, "name": label,
             "args": {"pc": f"{event.pc:#x}", "instructions": event.instructions, **_plain(event.fields)}})

    for event in events:
        last_cycle = max(last_cycle, event.cycle)
        call = tracker.feed(event)
        kind = event.kind
        f = event.fields
        if kind == "hgcm_connect":
            pending_connects[f.get("address", -1)] = event
        elif kind == "hgcm_disconnect":
            open_other[f.get("address", -1)] = event
        elif kind == "hgcm_complete":
            address = f.get("address", -1)
            start = call or pending_connects.pop(address, None) or open_other.pop(address, None)
            if start is None:
                instant(event, _DEVICE_TID, f"hgcm_complete {f.get('command')}")
                continue
            client = start.fields.get("client")
            tid = client_track(client, start.fields.get("service"))
            if start.kind == "hgcm_call":
                label = _function_label(start)
                args: dict[str, Any] = {"result": f.get("result_name"), "latency_cycles": f.get("latency"),
                                        "bytes": start.fields.get("bytes"), "address": f"{address:#x}"}
                decoded = tracker.decode(start, f.get("params"))
                if decoded is not None:
                    args.update({"call": decoded.format_inputs(), "results": decoded.format_outputs()})
            else:
                label = start.kind.removeprefix("hgcm_")
                args = {"result": f.get("result_name"), "latency_cycles": f.get("latency")}
            if f.get("cancelled"):
                args["cancelled"] = True
            put({"ph": "X", "pid": _PID, "tid": tid, "ts": start.cycle, "dur": max(0, event.cycle - start.cycle),
                 "name": label, "cat": "hgcm", "args": args})
        elif kind == "hgcm_call":
            client_track(f.get("client"), f.get("service"))
        elif kind == "interrupt_delivered":
            instant(event, _CPU_TID, f"IRQ {f.get('irq')} (vector {f.get('vector')})")
        elif kind == "guest_log":
            instant(event, _CPU_TID, f"log: {f.get('line')}")
        elif kind in ("cpu_halt", "run_end"):
            instant(event, _CPU_TID, kind, "p" if kind == "run_end" else "t")
        elif kind in ("hgcm_cancel", "hgcm_rejected", "vmmdev_event", "vmmdev_ack", "irq_line",
                      "vmmdev_request_dropped"):
            instant(event, _DEVICE_TID, kind)
    for start in [*tracker.open.values(), *pending_connects.values(), *open_other.values()]:
        tid = client_track(start.fields.get("client"), start.fields.get("service"))
        label = _function_label(start) if start.kind == "hgcm_call" else start.kind.removeprefix("hgcm_")
        put({"ph": "X", "pid": _PID, "tid": tid, "ts": start.cycle, "dur": max(0, last_cycle - start.cycle),
             "name": label + " (not completed)", "cat": "hgcm", "args": {}})
    out.write("\n]}\n")
    return written


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if not isinstance(v, (list, dict))}

