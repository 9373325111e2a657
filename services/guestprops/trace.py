"""Guest property calls in trace events, decoded from the function table (functions.py)
through ``framework.decode_call``.

Strings show as quoted text; a result buffer as its NUL-separated fields
(``["value", "FLAGS"]``) within the size the service reported, cut where the event's data
preview ends; values (sizes, timestamps) as decimal.  Sizes and timestamps the service
only writes show among the results only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hgcmlab.services.framework import CallDecoder, DecodedCall, Parm, decode_call, param_data
from hgcmlab.services.guestprops.abi import SERVICE_NAME
from hgcmlab.services.guestprops.functions import FUNCTIONS, SHOW_FIELDS, SHOW_RESULT, SHOW_STRING


def _text(data: bytes) -> str:
    return repr(data.decode("utf-8", errors="backslashreplace"))


def _format(show: str | None, param: Mapping[str, Any], produced: int | None) -> str:
    """A value; a string's text; a result buffer's fields within the ``produced`` bytes the
    service reported (its size output); else the buffer's size."""
    value = param.get("value")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    data = param_data(param)
    if data is not None and show == SHOW_STRING:
        return _text(data.split(b"\0", 1)[0])
    if data is not None and show == SHOW_FIELDS and produced is not None:
        fields = data[:produced].split(b"\0")
        return "[" + ", ".join(_text(f) for f in fields[:-1]) + "]"
    return f"<{param.get('size', 0)} bytes>"


def _produced(function: int, written_back: Sequence[dict[str, Any]] | None) -> int | None:
    """The size the service reported in the call's ``size`` result, if it wrote one."""
    row = FUNCTIONS.get(function)
    for spec, param in zip(row.parms if row is not None else (), written_back or ()):
        if spec.name == "size" and isinstance(param.get("value"), int):
            return int(param["value"])
    return None


class GuestPropDecoder(CallDecoder):
    """VBoxGuestPropSvc calls (no per-stream memory: every call decodes alone)."""

    service = SERVICE_NAME

    def decode(self, call: Mapping[str, Any], written_back: Sequence[dict[str, Any]] | None = None) -> DecodedCall:
        """Inputs (strings, the timestamp, buffer sizes) and, with ``written_back``, what
        the service wrote.  Unknown functions and surplus parameters show as ``p<index>``."""
        function = int(call.get("function", -1))
        produced = _produced(function, written_back)

        def render(spec: Parm | None, param: dict[str, Any], output: bool) -> str | None:
            if spec is not None and spec.show == SHOW_RESULT and not output:
                return None
            return _format(spec.show if spec is not None else None, param, produced)

        row = FUNCTIONS.get(function)
        label = f"GUEST_PROP_FN_{row.name}" if row is not None else f"fn {function}"
        return decode_call(FUNCTIONS, function, label, call.get("params"), render, written_back=written_back)
