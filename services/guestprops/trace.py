"""Guest property calls in trace events, decoded from the function table (functions.py).

Pure functions over the ``params`` of ``hgcm_call`` events (as sent to the host) and of
``hgcm_complete`` events (as written back); see services/sharedfolders/decode.py for their shape.
Strings show as quoted text; a result buffer as its NUL-separated fields
(``["value", "FLAGS"]``), cut where the event's data preview ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.guestprops.functions import FUNCTIONS, Parm
from services.framework import DecodedCall, param_data


def _text(data: bytes) -> str:
    return repr(data.decode("utf-8", errors="backslashreplace"))


def _format(kind: Parm, param: dict[str, Any], produced: int | None = None) -> str:
    """A value; a string's text; a result buffer's fields within the ``produced`` bytes the
    service reported (its size output); else the buffer's size."""
    value = param.get("value")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    data = param_data(param)
    if data is not None and kind is Parm.CSTR:
        return _text(data.split(b"\0", 1)[0])
    if data is not None and produced is not None:
        fields = data[:produced].split(b"\0")
        return "[" + ", ".join(_text(f) for f in fields[:-1]) + "]"
    return f"<{param.get('size', 0)} bytes>"


def decode_call(function: int, params: Sequence[dict[str, Any]] | None,
                written_back: Sequence[dict[str, Any]] | None = None) -> DecodedCall:
    """Name and format a guest property call's parameters: its inputs (strings, the
    timestamp, buffer sizes) and, with ``written_back``, what the service wrote.  Unknown
    functions and surplus parameters show as ``p<index>``."""
    spec = FUNCTIONS.get(function)
    kinds = spec.parms if spec is not None else ()
    names = spec.names if spec is not None else ()
    decoded = DecodedCall(spec.name if spec is not None else f"fn {function}")
    for index, param in enumerate(params or ()):
        if index >= len(kinds):
            decoded.inputs.append((f"p{index}", _format(Parm.U64, param)))
        elif kinds[index] in (Parm.CSTR, Parm.U64, Parm.BUF):
            decoded.inputs.append((names[index], _format(kinds[index], param)))
    back = list(written_back or ())[:len(kinds)]
    sizes = [p.get("value") for kind, p in zip(kinds, back) if kind is Parm.OUT_U32]
    produced = sizes[0] if sizes and isinstance(sizes[0], int) else None
    for index, param in enumerate(back):
        if kinds[index].is_output:
            decoded.outputs.append((names[index], _format(kinds[index], param, produced)))
    return decoded
