"""Replaying a recording: host services answered from the trace, no host directory.

``ReplayService`` takes the place of a recorded service (same name, same function names,
same declared function costs, so the device charges the same cycles).  Each operation the
guest causes (connect, call, cancel, disconnect) is compared with the next record: the
operation, client, requestor, function, parameter types, values, sizes and input-byte
digests, and the cycle it arrives at.  A match gets the recorded answer: status or ASYNC,
returned values and bytes, and the completions of other calls the recorded operation
caused.  The device, the clock and the guest then behave exactly as in the recorded run.

The first mismatch is a divergence: the service stops the run (``Machine.stop_run``, the run
ends as ``RunEnd.DIVERGED``) with a report of both sides, the record index and the last
matched operations; ``Divergence`` holds it.  A replay allocates nothing beyond what the
recording holds: returned bytes must fit the guest's buffer or the replay diverges.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hgcmlab.machine.clock import Clock
from hgcmlab.machine.trace.record import RECORD_KIND, Recording, describe_inputs
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import ASYNC, HgcmCall, HgcmService, SvcParm, _AsyncMarker

if TYPE_CHECKING:
    from hgcmlab.machine.machine import Machine

#: The scheduler owner of a replay's host completions (event "host", the record's position).
_EVENT_OWNER = "replay"

#: Matched operations a divergence report shows before the mismatch.
CONTEXT_OPERATIONS = 5


@dataclass(frozen=True)
class Divergence:
    """The first point where the guest asked something the recording does not hold."""

    index: int
    expected: str
    actual: str
    reason: str
    context: tuple[str, ...]

    def report(self) -> str:
        """Multi-line report: reason, both sides, the matched operations before."""
        lines = [f"replay diverged at recorded operation #{self.index}: {self.reason}",
                 f"  recording: {self.expected}",
                 f"  guest:     {self.actual}"]
        if self.context:
            lines.append("  last matched operations:")
            lines.extend(f"    {line}" for line in self.context)
        return "\n".join(lines)


def summarize(record: dict[str, Any] | None, names: dict[int, str]) -> str:
    """One line for a recorded (or observed) operation."""
    if record is None:
        return "nothing (the recording ends here)"
    op = record["op"]
    head = f"#{record.get('index', '?')} {op} client {record['client']} at cycle {record['at']}"
    if op == "connect":
        return f"{head} requestor {record['requestor']:#x}"
    if op == "cancel":
        return f"{head} of call #{record['call']}"
    if op == "call":
        parms = ", ".join(_parm_text(p) for p in record["params"])
        return f"{head} {names.get(record['function'], str(record['function']))}({parms})"
    return head


def _parm_text(parm: dict[str, Any]) -> str:
    if "value" in parm:
        return f"{parm['type']} {parm['value']:#x}"
    if "data" in parm and parm["size"]:
        data = bytes.fromhex(parm["data"])
        text = _printable(data)
        if sum(32 <= b < 127 for b in data) * 2 >= len(data):
            return f"{parm['type']}[{parm['size']}] {text!r}"
        return f"{parm['type']}[{parm['size']}] {data[:24].hex()}{'...' if len(data) > 24 else ''}"
    return f"{parm['type']}[{parm['size']}] sha256:{parm['digest'][:12]}"


def _printable(data: bytes) -> str:
    """Bytes as text for a report: UTF-16 when it looks like it (every odd byte zero)."""
    if len(data) >= 2 and len(data) % 2 == 0 and not any(data[1::2]):
        data = data[0::2]
    return "".join(chr(b) if 32 <= b < 127 else "." for b in data)


class ReplayService(HgcmService):
    """Answers one service's operations from ``recording``; ``stop(report)`` ends the run on
    a divergence, ``now()`` is the machine's virtual clock."""

    def __init__(self, name: str, recording: Recording, cursor: ReplayCursor) -> None:
        self.name = name
        table = next(s for s in recording.services if s["name"] == name)
        self.function_names = {number: text for number, text, _ in table["functions"]}
        self._cycles = {number: cycles for number, _, cycles in table["functions"]}
        self.cursor = cursor

    def function_cycles(self, function: int) -> int | None:
        """The cost the recorded service declared for ``function``."""
        return self._cycles.get(function)

    def connect(self, client_id: int, requestor: int) -> int:
        """The recorded connect status."""
        record = self.cursor.expect({"op": "connect", "service": self.name, "client": client_id,
                                      "requestor": requestor}, self.function_names)
        if record is None:
            return Status.VERR_HGCM_SERVICE_NOT_FOUND
        return int(record["status"])

    def disconnect(self, client_id: int) -> None:
        """Completes what the recorded disconnect completed."""
        self.cursor.expect({"op": "disconnect", "service": self.name, "client": client_id}, self.function_names)

    def call(self, call: HgcmCall) -> int | _AsyncMarker:
        """The recorded answer: outputs written into the parameters, status or ASYNC."""
        record = self.cursor.expect({"op": "call", "service": self.name, "client": call.client_id,
                                      "function": call.function, "requestor": call.requestor,
                                      "params": describe_inputs(call.params)}, self.function_names, call)
        if record is None:
            return ASYNC  # the run stops; the call never completes
        if record["result"] == "async":
            return ASYNC
        if not self.cursor.apply_outputs(call, record["out"], record["index"]):
            return ASYNC
        return int(record["result"])

    def cancel(self, call: HgcmCall) -> None:
        """Completes what the recorded cancel completed."""
        self.cursor.expect({"op": "cancel", "service": self.name, "client": call.client_id,
                             "call": self.cursor.index_of(call)}, self.function_names)


class ReplayCursor:
    """The position in a recording, shared by the replay services of one machine."""

    def __init__(self, recording: Recording, now: Callable[[], int], stop: Callable[[str], None],
                 emit: Callable[..., None], clock: Clock | None = None) -> None:
        self.recording = recording
        self._emit = emit
        self._clock = clock
        if clock is not None:
            clock.scheduler.add_owner(_EVENT_OWNER, self._on_event)
        self._now = now
        self._stop = stop
        self.position = 0
        self.divergence: Divergence | None = None
        self._pending: dict[int, HgcmCall] = {}
        self._indices: dict[int, int] = {}
        self._matched: deque[str] = deque(maxlen=CONTEXT_OPERATIONS)
        self._schedule_host_completion()

    def _schedule_host_completion(self) -> None:
        """When the next record is a completion the host made on its own (a share added
        between runs completing a wait), make it at its recorded cycle."""
        records = self.recording.records
        if self._clock is None or self.position >= len(records) or records[self.position]["op"] != "host":
            return
        position = self.position
        self._clock.schedule_at(records[position]["at"], "replay: host completion", _EVENT_OWNER, "host",
                                (position,))

    def _on_event(self, kind: str, args: tuple[int | str, ...]) -> None:
        self._host_completion(int(args[0]))

    def _host_completion(self, position: int) -> None:
        if self.divergence is not None or self.position != position:
            return
        record = self.recording.records[position]
        self.position += 1
        # The recorder emits a host record before the device sees the completion.
        self._emit_record(position)
        self._matched.append(summarize(record, {}))
        for done in record["done"]:
            if not self._complete(done):
                return
        self._schedule_host_completion()

    @property
    def finished(self) -> bool:
        """Every recorded operation has been matched."""
        return self.position >= len(self.recording.records)

    def index_of(self, call: HgcmCall) -> int:
        """The record index of a pending call (-1 when unknown)."""
        return self._indices.get(id(call), -1)

    def diverge(self, reason: str, expected: dict[str, Any] | None, actual: str,
                names: dict[int, str] | None = None, index: int | None = None) -> None:
        """Record the first divergence (at record ``index``, default the next one) and stop
        the run (later ones are consequences)."""
        if self.divergence is not None:
            return
        if names is None and expected is not None:
            names = next(({number: text for number, text, _ in service["functions"]}
                          for service in self.recording.services if service["name"] == expected["service"]), {})
        self.divergence = Divergence(self.position if index is None else index, summarize(expected, names or {}),
                                     actual, reason, tuple(self._matched))
        self._stop(self.divergence.report())

    def expect(self, observed: dict[str, Any], names: dict[int, str],
               call: HgcmCall | None = None) -> dict[str, Any] | None:
        """Match ``observed`` with the next record; on success apply the completions it
        caused and return it, else diverge and return None."""
        if self.divergence is not None:
            return None
        observed = {"index": self.position, **observed, "at": self._now()}
        observed_text = summarize(observed, names)
        records = self.recording.records
        expected = records[self.position] if self.position < len(records) else None
        reason = _difference(expected, observed)
        if reason is not None:
            self.diverge(reason, expected, observed_text, names)
            return None
        assert expected is not None
        self.position += 1
        if call is not None and expected["result"] == "async":
            self._pending[expected["index"]] = call
            self._indices[id(call)] = expected["index"]
        for done in expected["done"]:
            if not self._complete(done):
                return None
        self._matched.append(summarize(expected, names))
        self._emit_record(expected["index"])
        self._schedule_host_completion()
        return expected

    def _emit_record(self, index: int) -> None:
        """The recorded events again, where the recorded run emitted them (the service's own
        during the operation, then the recorder's record): the traces stay equal."""
        events = self.recording.service_events
        for kind, fields in events[index] if index < len(events) else ():
            self._emit(kind, **fields)
        self._emit(RECORD_KIND, **self.recording.records[index])

    def _complete(self, done: dict[str, Any]) -> bool:
        call = self._pending.pop(done["call"], None)
        if call is None:
            self.diverge(f"the recording completes call #{done['call']}, which is not pending in this run",
                         self.recording.records[done["call"]], "no such call pending", index=done["call"])
            return False
        self._indices.pop(id(call), None)
        if not self.apply_outputs(call, done["out"], done["call"]):
            return False
        call.complete(int(done["status"]))
        return True

    def apply_outputs(self, call: HgcmCall, outputs: list[dict[str, Any] | None], index: int) -> bool:
        """Put recorded outputs into ``call``'s parameters; diverge if they do not fit."""
        if len(outputs) != len(call.params):
            self.diverge(f"call #{index}: the recording returns {len(outputs)} parameters, the call has "
                         f"{len(call.params)}", self.recording.records[index], _call_text(call), index=index)
            return False
        for number, (parm, output) in enumerate(zip(call.params, outputs, strict=True)):
            if output is None:
                continue
            problem = _apply_one(parm, output)
            if problem is not None:
                self.diverge(f"call #{index} parameter {number}: {problem}", self.recording.records[index],
                             _call_text(call), index=index)
                return False
        return True


def _call_text(call: HgcmCall) -> str:
    """The guest's side of an output that does not fit: its parameters' types and sizes."""
    parms = ", ".join(f"{p.type.name.lower()}[{len(p.buffer)}]" if p.buffer else p.type.name.lower()
                      for p in call.params)
    return f"call of function {call.function} by client {call.client_id} ({parms})"


def _apply_one(parm: SvcParm, output: dict[str, Any]) -> str | None:
    """Write one recorded output into ``parm``; a description of why it cannot, else None."""
    if "value" in output:
        parm.value = int(output["value"])
        return None
    size = int(output["size"])
    data = bytes.fromhex(output["data"])
    if size > len(parm.buffer) or len(data) > size:
        return f"{size} returned bytes do not fit the guest's {len(parm.buffer)}-byte buffer"
    parm.buffer[0:size] = data + bytes(size - len(data))
    parm.size = size
    return None


def _byte_difference(recorded_hex: str, guest_hex: str) -> str:
    """Where two byte strings first differ, with 8 bytes of each from there."""
    recorded, guest = bytes.fromhex(recorded_hex), bytes.fromhex(guest_hex)
    offset = next(i for i in range(max(len(recorded), len(guest)))
                  if i >= len(recorded) or i >= len(guest) or recorded[i] != guest[i])
    return (f"from byte {offset}: recorded {recorded[offset:offset + 8].hex() or '(end)'}, "
            f"guest {guest[offset:offset + 8].hex() or '(end)'}")


_COMPARED = ("op", "service", "client", "requestor", "function", "call")


def _difference(expected: dict[str, Any] | None, observed: dict[str, Any]) -> str | None:
    """Why ``observed`` does not match ``expected`` (None: it does)."""
    if expected is None:
        return "the guest asks more than the recording holds"
    if expected["op"] == "host":
        return (f"the recording's host completion at cycle {expected['at']} (made by the host on its own) "
                "comes before this")
    for key in _COMPARED:
        if expected.get(key) != observed.get(key):
            return f"different {key}: recorded {expected.get(key)!r}, guest {observed.get(key)!r}"
    if "params" in expected:
        want, got = expected["params"], observed["params"]
        if len(want) != len(got):
            return f"different parameter count: recorded {len(want)}, guest {len(got)}"
        for number, (a, b) in enumerate(zip(want, got, strict=True)):
            if a != b:
                which = next(k for k in ("type", "value", "size", "len", "digest", "data") if a.get(k) != b.get(k))
                if which in ("digest", "data") and "data" in a and "data" in b:
                    return f"parameter {number} has different bytes: {_byte_difference(a['data'], b['data'])}"
                return f"parameter {number} has a different {which}"
    if expected["at"] != observed["at"]:
        return f"different cycle: recorded {expected['at']}, guest {observed['at']}"
    return None


def replay_front(recording: Recording) -> Callable[[Machine, HgcmService], HgcmService]:
    """A ``vbox_board(hgcm_front=...)`` hook: the recorded service's name answered by replay
    (``ReplayService.cursor`` tells how far it got).  The real service given to the hook
    stays unregistered and never sees a guest."""
    def front(machine: Machine, service: HgcmService) -> HgcmService:
        if not any(s["name"] == service.name for s in recording.services):
            raise ValueError(f"{recording.path}: the recording holds no service named {service.name!r}")
        cursor = ReplayCursor(recording, machine.clock.now, machine.stop_run, machine.tracer.emit,
                              machine.clock)
        replay = ReplayService(service.name, recording, cursor)
        for limits in ("call_limits", "client_limits"):
            if hasattr(service, limits):
                setattr(replay, limits, getattr(service, limits))
        return replay
    return front


__all__ = ["ReplayService", "ReplayCursor", "Divergence", "replay_front", "summarize", "CONTEXT_OPERATIONS"]
