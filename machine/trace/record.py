"""Recording what host services return to the guest, in the trace (``--record``).

A recording is made at the host-service boundary: ``RecordingService`` sits in front of a
real service, passes every operation through (connect, disconnect, call, cancel) and emits
one ``hgcm_record`` trace event per operation, holding what the guest sent (client,
function, parameter types, values, sizes and a digest of input bytes, the cycle it arrived
at) and everything the service gave back (statuses, returned values and bytes, whether a
call went asynchronous, and which calls completed during the operation).  The device, the
clock and the guest are left to behave as they do: replaying the service's answers at the
same points (``machine/replay.py``) gives the same trace.

One ``hgcm_recording`` event (``header_event``) at the start of the trace names the
program, its image digest and the machine settings a replay needs.  ``load_recording``
reads both back, checks every field and bounds every size; anything malformed is one
``RecordingError`` line.  The format is in docs/tracing.md ("Record and replay").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hgcmlab.machine.loader import Image
from hgcmlab.machine.trace.files import TraceFileError, read_trace
from hgcmlab.machine.tracing import TraceEvent
from hgcmlab.runtime.trace_catalog import SERVICE_KINDS
from hgcmlab.services.hgcm import ASYNC, HgcmCall, HgcmService, ServiceTracer, SvcParm, SvcParmType, _AsyncMarker

if TYPE_CHECKING:
    from hgcmlab.machine.machine import Machine

#: Kind of the per-operation record event and of the header event.
RECORD_KIND = "hgcm_record"
HEADER_KIND = "hgcm_recording"
#: Version of the recording fields; a reader refuses versions it does not know.
RECORDING_VERSION = 1
#: Largest buffer a recorded parameter may describe (the device's own bound on a guest
#: buffer is lower; a larger value can only come from a damaged file).
MAX_RECORDED_BUFFER = 1 << 32
#: Input buffers up to this size are recorded byte for byte (hex), not only by digest, so a
#: divergence report can show both sides (paths, names and small structures fit).
MAX_INLINE_INPUT = 128
#: Largest number of parameters of one recorded call (HGCM allows at most 61 in VirtualBox).
MAX_RECORDED_PARMS = 64

_TYPE_NAMES = {SvcParmType.U32: "u32", SvcParmType.U64: "u64", SvcParmType.PTR: "ptr", SvcParmType.PAGES: "pages"}
_TYPES_BY_NAME = {name: kind for kind, name in _TYPE_NAMES.items()}
_VALUE_LIMITS = {"u32": 0xFFFFFFFF, "u64": 0xFFFFFFFFFFFFFFFF}


class RecordingError(Exception):
    """A recording that cannot be replayed; the message is one line naming the file."""


def image_digest(image: Image) -> str:
    """SHA-256 of what a program places in memory: entry point and every segment."""
    digest = hashlib.sha256(f"entry={image.entry:#x};mode={image.mode}".encode())
    for address, content in image.segments:
        digest.update(f";{address:#x}:{len(content)}:".encode())
        digest.update(content)
    return digest.hexdigest()


def bytes_digest(data: bytes | bytearray | memoryview) -> str:
    """Short digest of input bytes (the first 16 bytes of SHA-256, hex)."""
    return hashlib.sha256(data).hexdigest()[:32]


def describe_inputs(params: Iterable[SvcParm]) -> list[dict[str, Any]]:
    """What the guest sent, as recorded and compared: value parameters by value, buffers
    by size and the digest of their bytes (out-only buffers arrive zero-filled)."""
    described: list[dict[str, Any]] = []
    for parm in params:
        name = _TYPE_NAMES.get(parm.type, "invalid")
        if name in _VALUE_LIMITS:
            described.append({"type": name, "value": int(parm.value)})
        else:
            content = memoryview(parm.buffer)[:parm.size]
            entry = {"type": name, "size": int(parm.size), "len": len(parm.buffer), "digest": bytes_digest(content)}
            if parm.size <= MAX_INLINE_INPUT:
                entry["data"] = bytes(content).hex()
            described.append(entry)
    return described


def _snapshot(params: list[SvcParm]) -> list[bytes | int]:
    """Input state of each parameter, to tell later which ones the service changed."""
    return [int(p.value) if _TYPE_NAMES.get(p.type) in _VALUE_LIMITS else bytes(memoryview(p.buffer)[:p.size])
            for p in params]


def describe_outputs(params: list[SvcParm], before: list[bytes | int]) -> list[dict[str, Any] | None]:
    """What the service left in each parameter, None where nothing changed: ``value``, or
    ``size`` plus ``data`` (hex of the first ``size`` bytes, trailing zeros dropped)."""
    outputs: list[dict[str, Any] | None] = []
    for parm, old in zip(params, before, strict=True):
        if isinstance(old, int):
            outputs.append(None if int(parm.value) == old else {"value": int(parm.value)})
            continue
        now = bytes(memoryview(parm.buffer)[:parm.size])
        if now == old:
            outputs.append(None)
        else:
            outputs.append({"size": int(parm.size), "data": now.rstrip(b"\0").hex()})
    return outputs


@dataclass
class _Op:
    """The operation in progress: its record fields and the completions it caused."""

    fields: dict[str, Any]
    done: list[dict[str, Any]] = field(default_factory=list)


class RecordingService(HgcmService):
    """A host service passed through unchanged, with an ``hgcm_record`` event per operation.

    ``emit(kind, **fields)`` is the machine's tracer; ``now()`` its virtual clock.  Calls
    the service keeps (ASYNC) are remembered by their record index until they complete, so
    memory stays bounded by the calls pending on the device.
    """

    def __init__(self, inner: HgcmService, emit: Callable[..., None], now: Callable[[], int]) -> None:
        self.inner = inner
        self.name = inner.name
        self.function_names = inner.function_names
        for limits in ("call_limits", "client_limits"):
            if hasattr(inner, limits):
                setattr(self, limits, getattr(inner, limits))
        self._emit = emit
        self._now = now
        self._index = 0
        self._current: _Op | None = None
        self._pending: dict[int, tuple[int, list[bytes | int]]] = {}

    def close(self) -> None:
        """Close the wrapped service (the recorder owns it while it stands in front)."""
        self.inner.close()

    def attach_tracer(self, tracer: ServiceTracer) -> None:
        """The wrapped service emits its own events (their place in the trace is the
        recorded run's, so a replay re-emits them: machine/replay.py)."""
        self.inner.attach_tracer(tracer)

    def function_cycles(self, function: int) -> int | None:
        """The wrapped service's declared cost."""
        return self.inner.function_cycles(function)

    def _begin(self, op: str, client: int, **fields: Any) -> _Op:
        record = _Op({"index": self._index, "op": op, "service": self.name, "client": client,
                      "at": self._now(), **fields})
        self._index += 1
        self._current = record
        return record

    def _end(self, record: _Op) -> None:
        self._current = None
        self._emit(RECORD_KIND, **record.fields, done=record.done)

    def connect(self, client_id: int, requestor: int) -> int:
        """Pass through; record the status."""
        record = self._begin("connect", client_id, requestor=requestor)
        status = int(self.inner.connect(client_id, requestor))
        record.fields["status"] = status
        self._end(record)
        return status

    def disconnect(self, client_id: int) -> None:
        """Pass through; record the calls it completed."""
        record = self._begin("disconnect", client_id)
        self.inner.disconnect(client_id)
        self._end(record)

    def call(self, call: HgcmCall) -> int | _AsyncMarker:
        """Pass through; record inputs, the result and the outputs of a synchronous answer."""
        record = self._begin("call", call.client_id, function=call.function, requestor=call.requestor,
                             params=describe_inputs(call.params))
        index = record.fields["index"]
        before = _snapshot(call.params)
        self._pending[id(call)] = (index, before)
        device_completion = call.on_complete

        def completed(finished: HgcmCall, status: int) -> None:
            self._completed(finished, status)
            if device_completion is not None:
                device_completion(finished, status)

        call.on_complete = completed
        outcome = self.inner.call(call)
        if outcome is ASYNC:
            record.fields["result"] = "async"
        else:
            self._pending.pop(id(call), None)
            record.fields["result"] = int(outcome)  # type: ignore[arg-type]
            record.fields["out"] = describe_outputs(call.params, before)
        self._end(record)
        return outcome

    def _completed(self, call: HgcmCall, status: int) -> None:
        """A call completed (during some operation, or later by the host)."""
        entry = self._pending.pop(id(call), None)
        if entry is None:
            return  # a synchronous answer: recorded with its operation
        index, before = entry
        done = {"call": index, "status": int(status), "out": describe_outputs(call.params, before)}
        if self._current is not None:
            self._current.done.append(done)
        else:
            record = self._begin("host", 0)
            record.done.append(done)
            self._end(record)

    def cancel(self, call: HgcmCall) -> None:
        """Pass through; record which call and what completed."""
        entry = self._pending.get(id(call))
        record = self._begin("cancel", call.client_id, call=entry[0] if entry else -1)
        self.inner.cancel(call)
        self._end(record)


def record_front(machine: Machine, service: HgcmService) -> HgcmService:
    """A ``vbox_board(hgcm_front=...)`` hook: ``service`` behind a ``RecordingService`` that
    emits on the machine's tracer and reads its clock."""
    return RecordingService(service, machine.tracer.emit, machine.clock.now)


def header_event_fields(*, program: str, image: Image, mode: int, ram_size: int, arguments: list[str],
                        services: Iterable[HgcmService], settings: Mapping[str, Any]) -> dict[str, Any]:
    """Fields of the ``hgcm_recording`` header: what a replay needs to rebuild the run."""
    tables = []
    for service in services:
        inner = getattr(service, "inner", service)
        numbers = sorted(int(n) for n in inner.function_names)
        tables.append({"name": service.name,
                       "functions": [[n, inner.function_name(n), inner.function_cycles(n)] for n in numbers]})
    return {"version": RECORDING_VERSION, "program": program, "image_sha256": image_digest(image), "mode": mode,
            "ram": ram_size, "arguments": list(arguments), "services": tables, "settings": dict(settings)}


# --- reading ------------------------------------------------------------------------------------


@dataclass
class Recording:
    """A recording read back: the header fields, the operation records in order, the
    fields of the trace's last ``run_end`` event (None when it has none), and per record
    the events the service itself emitted during that operation (kind, fields), in order."""

    path: str
    header: dict[str, Any]
    records: list[dict[str, Any]]
    run_end: dict[str, Any] | None = None
    service_events: list[list[tuple[str, dict[str, Any]]]] = field(default_factory=list)

    @property
    def services(self) -> list[dict[str, Any]]:
        """Service tables of the header: name and [number, name, cycles] per function."""
        return self.header["services"]


def load_recording(path: str | Path) -> Recording:
    """Read and check the recording in trace file ``path``; RecordingError (one line) for a
    file that is missing, not a trace, holds no recording, or a damaged one."""
    name = str(path)
    header: dict[str, Any] | None = None
    records: list[dict[str, Any]] = []
    service_events: list[list[tuple[str, dict[str, Any]]]] = []
    emitted: list[tuple[str, dict[str, Any]]] = []
    run_end: dict[str, Any] | None = None
    try:
        for event in read_trace(path):
            if event.kind == "run_end":
                run_end = dict(event.fields)
            elif event.kind in SERVICE_KINDS:
                # A service emits during an operation, before the recorder's record of it.
                emitted.append((event.kind, dict(event.fields)))
            elif event.kind == HEADER_KIND:
                if header is not None:
                    raise RecordingError(f"{name}: more than one {HEADER_KIND} event")
                header = _check_header(name, event)
            elif event.kind == RECORD_KIND:
                if header is None:
                    raise RecordingError(f"{name}: {RECORD_KIND} event before the {HEADER_KIND} header")
                records.append(_check_record(name, event, len(records)))
                service_events.append(emitted)
                emitted = []
    except TraceFileError as error:
        raise RecordingError(str(error)) from None
    except OSError as error:
        raise RecordingError(f"cannot read {name}: {error.strerror or error}") from None
    if header is None:
        raise RecordingError(f"{name} holds no recording (make one with: hgcmlab run PROGRAM --trace FILE --record)")
    return Recording(name, header, records, run_end, service_events)


def _need(condition: bool, name: str, where: str, what: str) -> None:
    if not condition:
        raise RecordingError(f"{name}: {where}: {what}")


def _is_int(value: object, low: int = 0, high: int = 0xFFFFFFFFFFFFFFFF) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_header(name: str, event: TraceEvent) -> dict[str, Any]:
    fields = event.fields
    where = f"{HEADER_KIND} header"
    _need(fields.get("version") == RECORDING_VERSION, name, where,
          f"recording version {fields.get('version')!r} is not {RECORDING_VERSION}")
    _need(isinstance(fields.get("program"), str), name, where, "program is not a string")
    _need(isinstance(fields.get("image_sha256"), str), name, where, "image_sha256 is not a string")
    _need(fields.get("mode") in (32, 64), name, where, "mode is not 32 or 64")
    _need(_is_int(fields.get("ram"), 1), name, where, "ram is not a positive integer")
    arguments = fields.get("arguments")
    _need(isinstance(arguments, list) and all(isinstance(a, str) for a in arguments), name, where,
          "arguments is not a list of strings")
    _need(isinstance(fields.get("settings"), dict), name, where, "settings is not an object")
    services = fields.get("services")
    _need(isinstance(services, list), name, where, "services is not a list")
    for service in services:
        _need(isinstance(service, dict) and isinstance(service.get("name"), str) and service["name"]
              and isinstance(service.get("functions"), list), name, where, "a service entry is malformed")
        for entry in service["functions"]:
            _need(isinstance(entry, list) and len(entry) == 3 and _is_int(entry[0], 0, 0xFFFFFFFF)
                  and isinstance(entry[1], str) and (entry[2] is None or _is_int(entry[2])),
                  name, where, f"function entry {entry!r} of {service['name']} is malformed")
    return dict(fields)


def _check_outputs(name: str, where: str, outputs: object, count: int | None) -> None:
    _need(isinstance(outputs, list) and (count is None or len(outputs) == count), name, where,
          "out is not a list with one entry per parameter")
    for entry in outputs:  # type: ignore[union-attr]
        if entry is None:
            continue
        _need(isinstance(entry, dict), name, where, "an out entry is not an object")
        if "value" in entry:
            _need(_is_int(entry["value"]), name, where, "an out value is not an integer")
            continue
        _need(_is_int(entry.get("size"), 0, MAX_RECORDED_BUFFER), name, where, "an out size is not valid")
        data = entry.get("data")
        _need(isinstance(data, str) and len(data) % 2 == 0 and len(data) // 2 <= entry["size"], name, where,
              "an out data field is not hex of at most size bytes")
        try:
            bytes.fromhex(data)  # type: ignore[arg-type]
        except ValueError:
            raise RecordingError(f"{name}: {where}: an out data field is not hex") from None


def _check_record(name: str, event: TraceEvent, position: int) -> dict[str, Any]:
    fields = dict(event.fields)
    where = f"{RECORD_KIND} #{position}"
    _need(fields.get("index") == position, name, where, f"index {fields.get('index')!r} is not {position}")
    op = fields.get("op")
    _need(op in ("connect", "disconnect", "call", "cancel", "host"), name, where, f"unknown op {op!r}")
    _need(isinstance(fields.get("service"), str), name, where, "service is not a string")
    _need(_is_int(fields.get("client"), 0, 0xFFFFFFFF), name, where, "client is not a 32-bit integer")
    _need(_is_int(fields.get("at")), name, where, "at is not a cycle count")
    done = fields.get("done")
    _need(isinstance(done, list), name, where, "done is not a list")
    for entry in done:
        _need(isinstance(entry, dict) and _is_int(entry.get("call"), 0, position)
              and _is_int(entry.get("status"), -(1 << 31), (1 << 31) - 1), name, where, "a done entry is malformed")
        _check_outputs(name, where, entry.get("out"), None)
    if op == "connect":
        _need(_is_int(fields.get("requestor"), 0, 0xFFFFFFFF), name, where, "requestor is not a 32-bit integer")
        _need(_is_int(fields.get("status"), -(1 << 31), (1 << 31) - 1), name, where, "status is not a status")
    elif op == "cancel":
        _need(_is_int(fields.get("call"), -1, position), name, where, "call is not an earlier record index")
    elif op == "call":
        _need(_is_int(fields.get("function"), 0, 0xFFFFFFFF), name, where, "function is not a 32-bit integer")
        _need(_is_int(fields.get("requestor"), 0, 0xFFFFFFFF), name, where, "requestor is not a 32-bit integer")
        params = fields.get("params")
        _need(isinstance(params, list) and len(params) <= MAX_RECORDED_PARMS, name, where, "params is not a list")
        for parm in params:
            _need(isinstance(parm, dict) and parm.get("type") in (*_TYPES_BY_NAME, "invalid"), name, where,
                  "a parameter is malformed")
            if parm["type"] in _VALUE_LIMITS:
                _need(_is_int(parm.get("value"), 0, _VALUE_LIMITS[parm["type"]]), name, where, "a value is not valid")
            else:
                _need(_is_int(parm.get("size"), 0, MAX_RECORDED_BUFFER) and _is_int(parm.get("len"), 0,
                      MAX_RECORDED_BUFFER) and isinstance(parm.get("digest"), str)
                      and isinstance(parm.get("data", ""), str), name, where, "a buffer parameter is malformed")
        result = fields.get("result")
        _need(result == "async" or _is_int(result, -(1 << 31), (1 << 31) - 1), name, where,
              "result is neither a status nor \"async\"")
        if result != "async":
            _check_outputs(name, where, fields.get("out"), len(params))
    return fields


__all__ = ["RECORD_KIND", "HEADER_KIND", "RECORDING_VERSION", "RecordingError", "RecordingService", "Recording",
           "load_recording", "header_event_fields", "image_digest", "describe_inputs", "describe_outputs",
           "record_front"]
