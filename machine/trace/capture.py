"""Fill in HGCM call parameters (``params``) on ``hgcm_call`` and ``hgcm_complete`` events.

An interim trace transform, until the VMMDev emits ``params`` itself: when an ``hgcm_call``
event passes, it re-reads the request from guest RAM (the device has already taken its
private copy; nothing runs in between), parses it with the device's own parser and adds
``params``; when the call's ``hgcm_complete`` passes, it reads what was written back and
adds ``client``, ``function``, ``function_name`` and ``params``.  Events that already carry
``params`` pass unchanged.  The format is described in ``machine/trace/shfl.py``.

Opt-in: ``capture_hgcm_params(machine)``.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import TYPE_CHECKING, Any

from devices.vmmdev.abi import HGCM_CALL_OFF_PARMS, HgcmParmDirection, RequestType
from devices.vmmdev.params import ParsedCall, ParsedParam, parse_call
from machine.memory import GuestMemory
from machine.tracing import TraceEvent
from runtime.status import RtError
from services.hgcm import SvcParmType

if TYPE_CHECKING:
    from machine.machine import Machine

#: Buffer bytes kept per parameter (the rest is summarised by ``size``).
DEFAULT_PREVIEW = 256

_DIRECTIONS = {0: "none", 1: "in", 2: "out", 3: "inout"}



def describe_param(param: ParsedParam, data: bytes | None, value: int | None = None) -> dict[str, Any]:
    """The trace representation of one parameter (``data``: the preview bytes to record)."""
    svc = param.svc
    if svc.type in (SvcParmType.U32, SvcParmType.U64):
        return {"type": "u32" if svc.type is SvcParmType.U32 else "u64",
                "value": svc.value if value is None else value}
    record: dict[str, Any] = {"type": "pages" if svc.type is SvcParmType.PAGES else "ptr",
                              "guest": param.guest_type.name, "dir": _DIRECTIONS[int(param.direction) & 3],
                              "size": param.guest_size}
    if data is not None:
        record["data"] = data.hex()
    return record


class HgcmParamCapture:
    """The transform; keeps the parsed layout of each pending call by request address."""

    def __init__(self, memory: GuestMemory, preview: int = DEFAULT_PREVIEW) -> None:
        self._memory = memory
        self._preview = preview
        self._pending: dict[int, tuple[ParsedCall, dict[str, Any]]] = {}

    def __call__(self, event: TraceEvent) -> TraceEvent:
        if event.kind == "hgcm_call" and "params" not in event.fields:
            return self._on_call(event)
        if event.kind == "hgcm_complete" and event.fields.get("command") == "call":
            return self._on_complete(event)
        return event

    def _on_call(self, event: TraceEvent) -> TraceEvent:
        address = event.fields.get("address")
        memory = self._memory
        try:
            request_type = RequestType[str(event.fields.get("type"))]
            size = memory.read_u32(address)
            parsed = parse_call(memory.read(address, size), request_type, memory)
        except (KeyError, ValueError, RtError, TypeError):
            return event
        params = []
        for param in parsed.params:
            data = None
            if param.svc.type in (SvcParmType.PTR, SvcParmType.PAGES) and param.direction & HgcmParmDirection.TO_HOST:
                data = bytes(param.svc.buffer[:self._preview])
            params.append(describe_param(param, data))
        identity = {"client": parsed.client_id, "function": parsed.function,
                    "function_name": event.fields.get("function_name"), "service": event.fields.get("service")}
        self._pending[address] = (parsed, identity)
        return dataclasses.replace(event, fields={**event.fields, "params": params})

    def _on_complete(self, event: TraceEvent) -> TraceEvent:
        entry = self._pending.pop(event.fields.get("address"), None)
        if entry is None or "params" in event.fields:
            return event
        parsed, identity = entry
        memory = self._memory
        address = event.fields["address"]
        params = []
        for param in parsed.params:
            base = address + HGCM_CALL_OFF_PARMS + param.index * parsed.parm_size
            value = None
            data = None
            if param.svc.type is SvcParmType.U32:
                value = memory.read_u32(base + 4) if memory.contains(base + 4, 4) else None
            elif param.svc.type is SvcParmType.U64:
                value = struct.unpack("<Q", memory.read(base + 4, 8))[0] if memory.contains(base + 4, 8) else None
            elif param.direction & HgcmParmDirection.FROM_HOST and not event.fields.get("cancelled"):
                take = min(param.guest_size, self._preview)
                if param.embedded_offset is not None:
                    start = address + param.embedded_offset
                    data = memory.read(start, take) if memory.contains(start, take) else None
                elif param.target is not None:
                    data = bytes(param.target.read(memory, take))
            params.append(describe_param(param, data, value))
        return dataclasses.replace(event, fields={**event.fields, **identity, "params": params})


def capture_hgcm_params(machine: Machine, preview: int = DEFAULT_PREVIEW) -> HgcmParamCapture:
    """Add ``params`` to the machine's HGCM call and completion events from now on."""
    capture = HgcmParamCapture(machine.memory, preview)
    machine.tracer.add_transform(capture)
    return capture
