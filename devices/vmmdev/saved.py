"""An HGCM call in flight as plain data, for snapshots.

A pending command holds the call its service sees (``HgcmCall`` with its parameters and
bounce buffers) and the parsed layout the device writes results back through
(``ParsedCall``); both share the same ``SvcParm`` objects.  Saving keeps that sharing: the
parameters are saved once, and each parsed parameter refers to its call parameter by
index.  Buffers are saved as bytes (a zero-filled anonymous map comes back as a bytearray
of the same content: the same buffer protocol to the service).
"""

from __future__ import annotations

from hgcmlab.devices.vmmdev.abi import HgcmParmType
from hgcmlab.devices.vmmdev.params import GuestBuffer, ParsedCall, ParsedParam
from hgcmlab.services.hgcm import HgcmCall, SvcParm, SvcParmType


def _runs(buffer: GuestBuffer | None) -> list[list[int]] | None:
    return None if buffer is None else [[address, length] for address, length in buffer.runs]


def _buffer(runs: list[list[int]] | None) -> GuestBuffer | None:
    return None if runs is None else GuestBuffer([(int(address), int(length)) for address, length in runs])


def call_to_data(call: HgcmCall, parsed: ParsedCall | None) -> dict:
    """``call`` (and its parsed layout, if the command still has it) as plain data."""
    params = [{"type": int(p.type), "value": p.value, "buffer": bytes(p.buffer), "size": p.size}
              for p in call.params]
    layout = None
    if parsed is not None:
        index_of = {id(param): number for number, param in enumerate(call.params)}
        layout = {"request_type": parsed.request_type, "client_id": parsed.client_id, "function": parsed.function,
                  "heap": parsed.heap,
                  "params": [{"index": p.index, "guest_type": int(p.guest_type), "svc": index_of[id(p.svc)],
                              "direction": int(p.direction), "guest_size": p.guest_size,
                              "target": _runs(p.target), "embedded_offset": p.embedded_offset,
                              "source": _runs(p.source)} for p in parsed.params]}
    return {"client_id": call.client_id, "function": call.function, "requestor": call.requestor,
            "completed": call.completed, "tag": call.tag, "params": params, "parsed": layout}


def call_from_data(data: dict) -> tuple[HgcmCall, ParsedCall | None]:
    """The call and parsed layout ``call_to_data`` saved (the call without ``on_complete``)."""
    params = [SvcParm(SvcParmType(p["type"]), int(p["value"]), bytearray(p["buffer"]), int(p["size"]))
              for p in data["params"]]
    call = HgcmCall(int(data["client_id"]), int(data["function"]), params, int(data["requestor"]),
                    completed=bool(data["completed"]), tag=int(data["tag"]))
    layout = data["parsed"]
    if layout is None:
        return call, None
    parsed = ParsedCall(int(layout["request_type"]), int(layout["client_id"]), int(layout["function"]),
                        [ParsedParam(int(p["index"]), HgcmParmType(p["guest_type"]), params[p["svc"]],
                                     int(p["direction"]), int(p["guest_size"]), _buffer(p["target"]),
                                     p["embedded_offset"], _buffer(p["source"])) for p in layout["params"]],
                        int(layout["heap"]))
    return call, parsed
