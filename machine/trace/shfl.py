"""Shared Folders-aware formatting of HGCM call parameters in trace events.

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

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntFlag
from typing import Any

from hgcmlab.services.sharedfolders.abi import (
    SHFL_HANDLE_NIL,
    SHFL_ROOT_NIL,
    SHFLSTRING_HEADER_SIZE,
    ShflCf,
    ShflCreateParms,
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

#: Argument kinds and how each is shown.
ROOT, HANDLE, U32, U64, OFFSET, COUNT, STRING, BUFFER = "root", "handle", "u32", "u64", "offset", "count", "str", "buf"
CREATE_PARMS, FEATURES, ERROR_STYLE = "create_parms", "features", "error_style"

#: Parameter names per function, in order, with their kind (``shflsvc.h`` SHFL_CPARMS_* layouts).
SIGNATURES: dict[int, tuple[tuple[str, str], ...]] = {
    ShflFn.QUERY_MAPPINGS: (("flags", "flags:mf"), ("count", COUNT), ("mappings", BUFFER)),
    ShflFn.QUERY_MAP_NAME: (("root", ROOT), ("name", STRING)),
    ShflFn.CREATE: (("root", ROOT), ("path", STRING), ("parms", CREATE_PARMS)),
    ShflFn.CLOSE: (("root", ROOT), ("handle", HANDLE)),
    ShflFn.READ: (("root", ROOT), ("handle", HANDLE), ("offset", OFFSET), ("cb", COUNT), ("buffer", BUFFER)),
    ShflFn.WRITE: (("root", ROOT), ("handle", HANDLE), ("offset", OFFSET), ("cb", COUNT), ("buffer", BUFFER)),
    ShflFn.LOCK: (("root", ROOT), ("handle", HANDLE), ("offset", OFFSET), ("length", COUNT), ("flags", "flags:lock")),
    ShflFn.LIST: (("root", ROOT), ("handle", HANDLE), ("flags", "flags:list"), ("cb", COUNT), ("path", STRING),
                  ("buffer", BUFFER), ("resume_point", U32), ("files", COUNT)),
    ShflFn.INFORMATION: (("root", ROOT), ("handle", HANDLE), ("flags", "flags:info"), ("cb", COUNT),
                         ("info", BUFFER)),
    ShflFn.REMOVE: (("root", ROOT), ("path", STRING), ("flags", "flags:remove")),
    ShflFn.MAP_FOLDER_OLD: (("path", STRING), ("root", ROOT), ("delimiter", "char")),
    ShflFn.UNMAP_FOLDER: (("root", ROOT),),
    ShflFn.RENAME: (("root", ROOT), ("src", STRING), ("dest", STRING), ("flags", "flags:rename")),
    ShflFn.FLUSH: (("root", ROOT), ("handle", HANDLE)),
    ShflFn.SET_UTF8: (),
    ShflFn.MAP_FOLDER: (("path", STRING), ("root", ROOT), ("delimiter", "char"), ("case_sensitive", U32)),
    ShflFn.READLINK: (("root", ROOT), ("path", STRING), ("buffer", BUFFER)),
    ShflFn.SYMLINK: (("root", ROOT), ("new_path", STRING), ("old_path", STRING), ("info", BUFFER)),
    ShflFn.SET_SYMLINKS: (),
    ShflFn.QUERY_MAP_INFO: (("root", ROOT), ("name", STRING), ("mount_point", STRING), ("flags", "flags:mif"),
                            ("version", U32)),
    ShflFn.WAIT_FOR_MAPPINGS_CHANGES: (("version", U32),),
    ShflFn.CANCEL_MAPPINGS_CHANGES_WAITS: (),
    ShflFn.SET_FILE_SIZE: (("root", ROOT), ("handle", HANDLE), ("size", COUNT)),
    ShflFn.QUERY_FEATURES: (("features", FEATURES), ("last_function", U32)),
    ShflFn.COPY_FILE: (("src_root", ROOT), ("src_path", STRING), ("dst_root", ROOT), ("dst_path", STRING),
                       ("flags", U32)),
    ShflFn.COPY_FILE_PART: (("src_root", ROOT), ("src_handle", HANDLE), ("src_offset", OFFSET),
                            ("dst_root", ROOT), ("dst_handle", HANDLE), ("dst_offset", OFFSET), ("cb", COUNT),
                            ("flags", U32)),
    ShflFn.CLOSE_AND_REMOVE: (("root", ROOT), ("path", STRING), ("flags", "flags:remove"), ("handle", HANDLE)),
    ShflFn.SET_ERROR_STYLE: (("style", ERROR_STYLE), ("reserved", U32)),
}

#: Parameters that are outputs of the call, shown after the arrow (function -> names).
OUTPUTS: dict[int, frozenset[str]] = {
    ShflFn.QUERY_MAPPINGS: frozenset({"count"}),
    ShflFn.QUERY_MAP_NAME: frozenset({"name"}),
    ShflFn.CREATE: frozenset({"parms"}),
    ShflFn.READ: frozenset({"cb"}),
    ShflFn.WRITE: frozenset({"cb"}),
    ShflFn.LIST: frozenset({"cb", "resume_point", "files"}),
    ShflFn.INFORMATION: frozenset({"cb"}),
    ShflFn.MAP_FOLDER: frozenset({"root"}),
    ShflFn.MAP_FOLDER_OLD: frozenset({"root"}),
    ShflFn.READLINK: frozenset({"buffer"}),
    ShflFn.QUERY_MAP_INFO: frozenset({"name", "mount_point", "flags", "version"}),
    ShflFn.WAIT_FOR_MAPPINGS_CHANGES: frozenset({"version"}),
    ShflFn.QUERY_FEATURES: frozenset({"features", "last_function"}),
    ShflFn.COPY_FILE_PART: frozenset({"cb"}),
}


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
    _size, length = struct.unpack_from("<HH", data, 0)
    body = data[SHFLSTRING_HEADER_SIZE:SHFLSTRING_HEADER_SIZE + length]
    if utf8 is None:
        utf8 = not (len(body) >= 2 and len(body) % 2 == 0 and body[1::2].count(0) * 2 >= len(body) // 2)
    text = body.decode("utf-8" if utf8 else "utf-16-le", errors="backslashreplace")
    return text + "..." if len(body) < length else text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _int(value: int) -> str:
    return str(value) if value < 0x10000 else f"{value:#x}"


@dataclass
class DecodedCall:
    """A call's parameters as (name, text) pairs: what went in and what came back."""

    function: str
    inputs: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)

    def format_inputs(self) -> str:
        """``SHFL_FN_X(name=value, ...)``."""
        return f"{self.function}({', '.join(f'{n}={v}' for n, v in self.inputs)})"

    def format_outputs(self) -> str:
        """``name=value, ...`` of the results (empty when there are none)."""
        return ", ".join(f"{n}={v}" for n, v in self.outputs)


def _data(param: dict[str, Any]) -> bytes | None:
    text = param.get("data")
    if not isinstance(text, str):
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


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
        if kind == "char":
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
    if kind == CREATE_PARMS and data is not None and len(data) >= 16:
        handle, result, flags = struct.unpack_from("<QII", data, 0)
        if output:
            try:
                result_name = ShflCreateResult(result).name
            except ValueError:
                result_name = str(result)
            parts = [f"handle={'NIL' if handle == SHFL_HANDLE_NIL else hex(handle)}", f"result={result_name}"]
            if len(data) >= ShflCreateParms.Info.offset + 8:
                parts.append(f"size={struct.unpack_from('<q', data, ShflCreateParms.Info.offset)[0]}")
            return "{" + ", ".join(parts) + "}"
        return "{flags=" + create_flags(flags) + "}"
    return f"<{param.get('type', '?')} {size} bytes>"


def decode_call(function: int, params: Sequence[dict[str, Any]] | None, *, utf8: bool | None = None,
                written_back: Sequence[dict[str, Any]] | None = None) -> DecodedCall:
    """Name and format a Shared Folders call's parameters.

    ``params`` are the ``params`` of the ``hgcm_call`` event, ``written_back`` those of its
    ``hgcm_complete`` (optional: then ``outputs`` holds the function's results).  Unknown
    functions and surplus parameters are shown as ``p<index>``."""
    signature = SIGNATURES.get(function, ())
    outputs = OUTPUTS.get(function, frozenset())
    decoded = DecodedCall(function_name(function))
    for index, param in enumerate(params or ()):
        name, kind = signature[index] if index < len(signature) else (f"p{index}", U32)
        if name in outputs and _value(param) is None and not (kind == CREATE_PARMS and _data(param)):
            if kind in (STRING, BUFFER):
                decoded.inputs.append((name, f"<{param.get('size', 0)} bytes>"))
            continue
        decoded.inputs.append((name, format_param(kind, param, utf8=utf8)))
    for index, param in enumerate(written_back or ()):
        if index >= len(signature) or signature[index][0] not in outputs:
            continue
        name, kind = signature[index]
        if kind == BUFFER:
            continue
        decoded.outputs.append((name, format_param(kind, param, utf8=utf8, output=True)))
    return decoded


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
