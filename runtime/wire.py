"""Wire layouts derived from ctypes declarations: the one place offsets and formats come from.

The ABI modules (``devices/vmmdev/abi.py``, ``services/*/abi.py``) declare every wire
structure once, as a ctypes structure.  Code that reads or writes those structures inside a
byte buffer either maps the structure (``Struct.from_buffer``) or, on hot paths, uses a
``FieldRun``: a run of consecutive fields of a declared structure compiled once into a
``struct.Struct``, with its offset taken from the declaration.  No format string or offset
is typed anywhere else, so a layout change moves every reader and writer with it.
"""

from __future__ import annotations

import ctypes
import functools
import struct
from dataclasses import dataclass
from typing import Any

#: struct format letter of an integer by its size (lower case: signed).
_INT_CODES = {1: "b", 2: "h", 4: "i", 8: "q"}
_Buffer = bytes | bytearray | memoryview


def _field_types(layout: type[ctypes.Structure]) -> dict[str, Any]:
    """Field name -> ctypes type (bit-field entries carry a third item, the width)."""
    return {entry[0]: entry[1] for entry in layout._fields_}


def _resolve(layout: type[ctypes.Structure], path: str) -> tuple[type[ctypes.Structure], int, str]:
    """(structure holding the last component of ``path``, its offset in ``layout``, the
    last component's name)."""
    *parents, name = path.split(".")
    offset = 0
    for parent in parents:
        offset += getattr(layout, parent).offset
        layout = _field_types(layout)[parent]
    return layout, offset, name


def field_offset(layout: type[ctypes.Structure], path: str) -> int:
    """Byte offset of a (dotted) field path inside ``layout``, e.g. ``"header.rc"``."""
    parent, offset, name = _resolve(layout, path)
    return offset + getattr(parent, name).offset


def _code(ctype: Any) -> str:
    """The struct format of one ctypes field type (scalars, char arrays, scalar arrays)."""
    length = getattr(ctype, "_length_", None)
    if length is not None:
        element = ctype._type_
        return f"{length}s" if element is ctypes.c_char else f"{length}{_code(element)}"
    if ctype is ctypes.c_char:
        return "c"
    kind = getattr(ctype, "_type_", None)
    if not isinstance(kind, str) or kind in "fdgc?P":
        raise TypeError(f"{ctype.__name__} is not a plain integer field")
    letter = _INT_CODES[ctypes.sizeof(ctype)]
    return letter if kind.islower() else letter.upper()


def run_format(layout: type[ctypes.Structure], first: str, last: str | None = None) -> str:
    """Little-endian struct format of the fields ``first`` .. ``last`` (inclusive, siblings
    in ``layout``, ``first`` possibly dotted), padding between them included."""
    parent, _, first_name = _resolve(layout, first)
    names = [entry[0] for entry in parent._fields_]
    stop = names.index(last.rsplit(".", 1)[-1] if last else first_name)
    codes = ["<"]
    position = getattr(parent, first_name).offset
    for entry in parent._fields_[names.index(first_name):stop + 1]:
        if len(entry) != 2:
            raise TypeError(f"{parent.__name__}.{entry[0]} is a bit-field: map the structure instead")
        name, ctype = entry
        gap = getattr(parent, name).offset - position
        if gap:
            codes.append(f"{gap}x")
        codes.append(_code(ctype))
        position = getattr(parent, name).offset + ctypes.sizeof(ctype)
    return "".join(codes)


@dataclass(frozen=True, slots=True)
class FieldRun:
    """Consecutive fields of a declared structure as one precompiled ``struct.Struct``.

    ``offset`` is where the first field lies in the structure; ``codec`` packs and unpacks
    the fields in declaration order.  Build with ``field_run``."""

    offset: int
    codec: struct.Struct

    @property
    def size(self) -> int:
        """Bytes the run spans."""
        return self.codec.size

    def unpack(self, buffer: _Buffer, base: int = 0) -> tuple[Any, ...]:
        """The fields' values from the structure starting at ``base`` in ``buffer``."""
        return self.codec.unpack_from(buffer, base + self.offset)

    def get(self, buffer: _Buffer, base: int = 0) -> Any:
        """The value of a one-field run."""
        return self.codec.unpack_from(buffer, base + self.offset)[0]

    def pack(self, buffer: bytearray | memoryview, base: int, *values: Any) -> None:
        """Write the fields' values into the structure starting at ``base`` in ``buffer``."""
        self.codec.pack_into(buffer, base + self.offset, *values)

    def packed(self, *values: Any) -> bytes:
        """The run's bytes for ``values`` (for building a structure piece by piece)."""
        return self.codec.pack(*values)


def field_run(layout: type[ctypes.Structure], first: str, last: str | None = None) -> FieldRun:
    """The run of fields ``first`` .. ``last`` of ``layout`` (one field when ``last`` is None)."""
    return FieldRun(field_offset(layout, first), struct.Struct(run_format(layout, first, last)))


@functools.lru_cache(maxsize=256)
def array_codec(ctype: Any, count: int) -> struct.Struct:
    """A little-endian ``struct.Struct`` of ``count`` consecutive ``ctype`` elements (the
    most recent 256 kept, so a page list per call costs no format building)."""
    return struct.Struct(f"<{count}{_code(ctype)}")
