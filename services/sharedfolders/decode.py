"""Shared Folders' trace decoding: its calls' parameters named and shown in SHFL terms.

Parameter names, which parameters are results and how each is shown come from the
function table (functions.FUNCTIONS, the rows dispatch uses); this module only renders.

Pure functions over the ``params`` field of ``hgcm_call`` events (values as sent to the
host) and ``hgcm_complete`` events (values as written back to the guest).  Each entry of
``params`` is one of::

    {"type": "u32" | "u64", "value": int}
    {"type": "ptr" | "pages", "guest": "LinAddr_In" | "Embedded" | ...,
     "dir": "in" | "out" | "inout" | "none", "size": int, "data": "<hex>"}

where ``data`` holds the first bytes of the buffer (at most the preview limit; on
``hgcm_call`` only buffers travelling to the host carry data, on ``hgcm_complete`` only
buffers travelling back).  Names, flag names and structure layouts come from
``services/sharedfolders/abi.py`` (VirtualBox's ``shflsvc.h``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import IntFlag
from typing import Any

from hgcmlab.services import framework
from hgcmlab.services.framework import CallDecoder, DecodedCall, Parm
from hgcmlab.services.framework import param_data as _data
from hgcmlab.services.sharedfolders.abi import (
    SHFL_HANDLE_NIL,
    SHFL_ROOT_NIL,
    SHFLCREATEPARMS_HEAD,
    SHFLCREATEPARMS_OBJECT_SIZE,
    SERVICE_NAME,
    SHFLSTRING_HEADER_SIZE,
    SHFLSTRING_SIZES,
    ShflCf,
    ShflCreateResult,
    ShflErrorStyle,
    ShflFn,
    ShflInfo,
    ShflList,
    ShflLock,
    ShflMf,
    ShflMif,
    ShflRemove,
    ShflRename,
)
from hgcmlab.services.sharedfolders.functions import (
    BUFFER,
    CHAR,
    CREATE_PARMS,
    ERROR_STYLE,
    FEATURES,
    FUNCTIONS,
    HANDLE,
    ROOT,
    STRING,
    U32,
    U64,
)

__all__ = ["DecodedCall", "bytes_moved", "create_flags", "decode_call", "format_param", "shflstring_text"]

def function_name(function: int) -> str:
    """``SHFL_FN_<NAME>`` for a Shared Folders function number, else ``fn <n>``."""
    try:
        return f"SHFL_FN_{ShflFn(function).name}"
    except ValueError:
        return f"fn {function}"


# --- flags --------------------------------------------------------------------------------

_CF_FIELDS: tuple[tuple[int, dict[int, str], bool], ...] = (
    # (mask, value -> name, always shown)
    (0xF0, {0x00: "ACT_OPEN_IF_EXISTS", 0x10: "ACT_FAIL_IF_EXISTS", 0x20: "ACT_REPLACE_IF_EXISTS",
            0x30: "ACT_OVERWRITE_IF_EXISTS"}, True),
    (0xF00, {0x000: "ACT_CREATE_IF_NEW", 0x100: "ACT_FAIL_IF_NEW"}, True),
    (0x3000, {0x0000: "ACCESS_NONE", 0x1000: "ACCESS_READ", 0x2000: "ACCESS_WRITE", 0x3000: "ACCESS_READWRITE"},
     True),
    (0xC000, {0x4000: "ACCESS_DENYREAD", 0x8000: "ACCESS_DENYWRITE", 0xC000: "ACCESS_DENYALL"}, False),
    (0x30000, {0x10000: "ACCESS_ATTR_READ", 0x20000: "ACCESS_ATTR_WRITE", 0x30000: "ACCESS_ATTR_READWRITE"},
     False),
)


def create_flags(value: int) -> str:
    """SHFL_CF_* flags as names joined by ``|`` (action and access fields always shown)."""
    names: list[str] = []
    value = rest = int(value)  # plain ints: ~ on an IntFlag member drops undefined bits
    for member in (ShflCf.LOOKUP, ShflCf.OPEN_TARGET_DIRECTORY, ShflCf.DIRECTORY, ShflCf.ACCESS_APPEND):
        bit = int(member)
        if value & bit:
            names.append(str(member.name))
            rest &= ~bit
    for mask, table, always in _CF_FIELDS:
        part = value & mask
        if part in table and (part or always):
            names.append(table[part])
            rest &= ~part
    if rest:
        names.append(f"{rest:#x}")
    return "|".join(names)


def _bits(value: int, flags: type[IntFlag], *, zero: str | None = None) -> str:
    """Single-bit members of ``flags`` present in ``value``, unknown bits in hex."""
    names: list[str] = []
    value = rest = int(value)
    for member in flags:
        bit = int(member)
        if bit and bit & (bit - 1) == 0 and value & bit and member.name and "MASK" not in member.name:
            names.append(member.name)
            rest &= ~bit
    if rest:
        names.append(f"{rest:#x}")
    return "|".join(names) or (zero if zero is not None else "0")


def _lock_flags(value: int) -> str:
    mode = {0: "CANCEL", 1: "SHARED", 2: "EXCLUSIVE", 3: "mode 3"}[value & ShflLock.MODE_MASK]
    names = [mode, "WAIT" if value & ShflLock.WAIT else "NOWAIT", "ENTIRE" if value & ShflLock.ENTIRE else "PARTIAL"]
    if value & ~0xF:
        names.append(f"{value & ~0xF:#x}")
    return "|".join(names)


def _info_flags(value: int) -> str:
    names = ["SET" if value & ShflInfo.SET else "GET"]
    for member in (ShflInfo.NAME, ShflInfo.SIZE, ShflInfo.FILE, ShflInfo.VOLUME):
        if value & member:
            names.append(str(member.name))
    if value & ~0x1F:
        names.append(f"{value & ~0x1F:#x}")
    return "|".join(names)


def _mf_flags(value: int) -> str:
    names = ["UTF8" if value & ShflMf.UTF8 else "UCS2"]
    if value & ShflMf.AUTOMOUNT:
        names.append("AUTOMOUNT")
    if value & ~0x11:
        names.append(f"{value & ~0x11:#x}")
    return "|".join(names)


FLAG_FORMATTERS: dict[str, Callable[[int], str]] = {
    "cf": create_flags,
    "mf": _mf_flags,
    "list": lambda v: _bits(v, ShflList, zero="NONE"),
    "info": _info_flags,
    "lock": _lock_flags,
    "remove": lambda v: _bits(v, ShflRemove),
    "rename": lambda v: _bits(v, ShflRename),
    "mif": lambda v: _bits(v, ShflMif),
}


# --- values ---------------------------------------------------------------------------------


def shflstring_text(data: bytes, utf8: bool | None = None) -> str | None:
    """The text of an SHFLSTRING (u16 size, u16 length, string bytes); ``None`` if ``data``
    is too short to hold its header.  ``utf8=None`` guesses UTF-16 from the bytes.  A
    string cut by the preview limit ends in ``...``."""
    if len(data) < SHFLSTRING_HEADER_SIZE:
        return None
    _size, length = SHFLSTRING_SIZES.unpack(data)
    body = data[SHFLSTRING_HEADER_SIZE:SHFLSTRING_HEADER_SIZE + length]
    if utf8 is None:
        utf8 = not (len(body) >= 2 and len(body) % 2 == 0 and body[1::2].count(0) * 2 >= len(body) // 2)
    text = body.decode("utf-8" if utf8 else "utf-16-le", errors="backslashreplace")
    return text + "..." if len(body) < length else text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _int(value: int) -> str:
    return str(value) if value < 0x10000 else f"{value:#x}"


def _value(param: dict[str, Any]) -> int | None:
    value = param.get("value")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def format_param(kind: str, param: dict[str, Any], *, utf8: bool | None = None, output: bool = False) -> str:
    """One parameter's value as text, by its Shared Folders ``kind``."""
    value = _value(param)
    if value is not None:
        if kind == ROOT:
            return "NIL" if value == SHFL_ROOT_NIL else str(value)
        if kind == HANDLE:
            return "NIL" if value == SHFL_HANDLE_NIL else f"{value:#x}"
        if kind == CHAR:
            return repr(chr(value)) if 0x20 <= value < 0x7F else _int(value)
        if kind == ERROR_STYLE:
            try:
                return ShflErrorStyle(value).name
            except ValueError:
                return str(value)
        if kind == FEATURES:
            return f"{value:#x}"
        if kind.startswith("flags:"):
            return FLAG_FORMATTERS[kind[6:]](value)
        return _int(value) if kind in (U32, U64) else str(value)
    size = param.get("size", 0)
    data = _data(param)
    if kind == STRING and data is not None:
        text = shflstring_text(data, utf8)
        if text is not None:
            return _quote(text)
    if kind == STRING and param.get("type") in ("ptr", "pages") and size == 0:
        return "NULL"
    if kind == CREATE_PARMS and data is not None and len(data) >= SHFLCREATEPARMS_HEAD.size:
        handle, result, flags = SHFLCREATEPARMS_HEAD.unpack(data)
        if output:
            try:
                result_name = ShflCreateResult(result).name
            except ValueError:
                result_name = str(result)
            parts = [f"handle={'NIL' if handle == SHFL_HANDLE_NIL else hex(handle)}", f"result={result_name}"]
            if len(data) >= SHFLCREATEPARMS_OBJECT_SIZE.offset + SHFLCREATEPARMS_OBJECT_SIZE.size:
                parts.append(f"size={SHFLCREATEPARMS_OBJECT_SIZE.get(data)}")
            return "{" + ", ".join(parts) + "}"
        return "{flags=" + create_flags(flags) + "}"
    return f"<{param.get('type', '?')} {size} bytes>"


def decode_call(function: int, params: Sequence[dict[str, Any]] | None, *, utf8: bool | None = None,
                written_back: Sequence[dict[str, Any]] | None = None) -> DecodedCall:
    """Name and format a Shared Folders call's parameters.

    ``params`` are the ``params`` of the ``hgcm_call`` event, ``written_back`` those of its
    ``hgcm_complete`` (optional: then ``outputs`` holds the function's results).  Unknown
    functions and surplus parameters are shown as ``p<index>``.  A result parameter shows
    as an input only when it carries a value (or CREATE's parameters, which go both ways);
    a string or buffer result as its size."""

    def render(spec: Parm | None, param: dict[str, Any], output: bool) -> str | None:
        kind = spec.show if spec is not None else U32
        if output:
            return None if kind == BUFFER else format_param(kind, param, utf8=utf8, output=True)
        if spec is not None and spec.output and _value(param) is None and not (kind == CREATE_PARMS and _data(param)):
            return f"<{param.get('size', 0)} bytes>" if kind in (STRING, BUFFER) else None
        return format_param(kind, param, utf8=utf8)

    return framework.decode_call(FUNCTIONS, function, function_name(function), params, render,
                                 written_back=written_back)


def bytes_moved(function: int, params: Sequence[dict[str, Any]] | None,
                written_back: Sequence[dict[str, Any]] | None) -> tuple[int, int]:
    """(bytes written to the host, bytes read from it) by READ/WRITE/COPY_FILE_PART, from the
    ``cb`` the host wrote back (0, 0 when unknown or for other functions)."""
    if not written_back or function not in (ShflFn.READ, ShflFn.WRITE):
        return 0, 0
    done = _value(written_back[3]) if len(written_back) > 3 else None
    if done is None:
        return 0, 0
    return (done, 0) if function == ShflFn.WRITE else (0, done)


class ShflDecoder(CallDecoder):
    """Shared Folders calls in one trace stream: remembers which clients switched to UTF-8
    (a successful SET_UTF8) so their SHFLSTRINGs decode as UTF-8; others are guessed."""

    service = SERVICE_NAME

    def __init__(self) -> None:
        self.utf8_clients: set[int] = set()

    def completed(self, call: Mapping[str, Any], result: int) -> None:
        """Note a client's successful SET_UTF8."""
        if call.get("function") == ShflFn.SET_UTF8 and result >= 0:
            self.utf8_clients.add(call.get("client", -1))

    def decode(self, call: Mapping[str, Any], written_back: Sequence[dict[str, Any]] | None = None) -> DecodedCall:
        """``decode_call`` in the calling client's string encoding."""
        utf8 = True if call.get("client") in self.utf8_clients else None
        return decode_call(call.get("function", -1), call.get("params"), utf8=utf8, written_back=written_back)

    def bytes_moved(self, call: Mapping[str, Any], written_back: Sequence[dict[str, Any]] | None) -> tuple[int, int]:
        """READ/WRITE's bytes (``bytes_moved``)."""
        return bytes_moved(call.get("function", -1), call.get("params"), written_back)
