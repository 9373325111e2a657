"""The direct path of HGCM calls: zero-copy buffers for functions a service declares.

A call qualifies when its service declares the function in ``direct_buffers`` (see
``hgcmlab.services.hgcm.DirectBuffer``) and the request is the plain shape the general path would
accept without a second thought: value parameters plus the one buffer parameter, a LinAddr
(any direction) or a PageList whose pages are page aligned and physically consecutive, so
the buffer is one run lying wholly in guest RAM and not overlapping the request.  Such a
buffer is handed to the service as a view of guest RAM (the host file is read into, or
written from, guest memory by ``preadv``/``pwrite``), and only the fields that changed are
written back.

``plan`` only reads the device's private copy of the request: it decides before anything
happens.  Whenever anything is unusual (a check the general path would fail, a buffer
outside RAM or split over runs, Embedded or other page-list types, a direction the
function's promise does not cover) it returns None and the general path handles the call,
statuses and all; so the direct path never has to reproduce a failure.  The caller adds
the device-level conditions (synchronous timing, a free request address, the client's
call limit, the heap budget).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from dataclasses import dataclass

from hgcmlab.devices.vmmdev.abi import (
    HGCM_CALL_HEAD,
    HGCM_CALL_OFF_PARMS,
    HGCM_PAGE_LIST_HEAD,
    HGCM_PAGE_LIST_MIN_SIZE,
    HGCM_PAGE_LIST_OFF_PAGES,
    PAGE_SIZE,
    VBOX_HGCM_F_PARM_DIRECTION_MASK,
    VMMDEV_MAX_HGCM_DATA_SIZE,
    VMMDEV_MAX_HGCM_PARMS,
    HgcmPageListEntry,
    HgcmParmDirection,
    HgcmParmType,
    RequestType,
    hgcm_parm_size,
    hgcm_parms_format,
)
from hgcmlab.runtime.wire import array_codec
from hgcmlab.services.hgcm import DirectBuffer

# The codecs and offsets bound to module globals: the per-call work stays plain struct calls.
_CALL_HEAD = HGCM_CALL_HEAD.codec
_OFF_CLIENT = HGCM_CALL_HEAD.offset
_PAGE_LIST_HEAD = HGCM_PAGE_LIST_HEAD.codec
_ENTRY_SIZE = ctypes.sizeof(HgcmPageListEntry)
_LINADDR_DIRECTION = {
    int(HgcmParmType.LinAddr): int(HgcmParmDirection.BOTH),
    int(HgcmParmType.LinAddr_In): int(HgcmParmDirection.TO_HOST),
    int(HgcmParmType.LinAddr_Out): int(HgcmParmDirection.FROM_HOST),
}
_BIT32, _BIT64, _PAGE_LIST = int(HgcmParmType.Bit32), int(HgcmParmType.Bit64), int(HgcmParmType.PageList)
_TO_HOST, _FROM_HOST = int(HgcmParmDirection.TO_HOST), int(HgcmParmDirection.FROM_HOST)
# Plain ints: comparing against enum members costs more than the rest of a small call's plan.
_HGCM_CALL64 = int(RequestType.HGCMCall64)
_PARM_SIZE_64, _PARM_SIZE_32 = hgcm_parm_size(_HGCM_CALL64), hgcm_parm_size(int(RequestType.HGCMCall32))
#: A parameter unpacks to (type, u0, u1) words (``hgcm_parms_format``): their positions.
_WORDS_PER_PARM, _U0, _U1 = 3, 1, 2
_layouts: dict[tuple[int, int], struct.Struct] = {}


def _layout(parm_size: int, c_parms: int) -> struct.Struct:
    """The compiled layout of ``c_parms`` parameters of ``parm_size`` bytes (made once)."""
    key = (parm_size, c_parms)
    layout = _layouts.get(key)
    if layout is None:
        layout = _layouts[key] = struct.Struct(hgcm_parms_format(parm_size, c_parms))
    return layout


@dataclass(slots=True)
class DirectCall:
    """A call the direct path takes: its values and where its buffer lives."""

    client_id: int
    function: int
    #: (guest type, value) of each parameter; the buffer's value is its byte count.
    params: list[tuple[int, int]]
    #: Index of the buffer parameter, its guest-physical start, size and direction bits.
    buffer_index: int
    address: int
    size: int
    direction: int
    #: Bytes per parameter in the request (HGCMCall32: 12, HGCMCall64: 16).
    parm_size: int


def call_header(data: bytes | bytearray) -> tuple[int, int, int]:
    """(client id, function, parameter count) of an HGCMCall request copy."""
    return _CALL_HEAD.unpack_from(data, _OFF_CLIENT)


def plan(data: bytes | bytearray, request_type: int, request_address: int, ram_size: int,
         spec: DirectBuffer, translate: Callable[[int], int | None] | None = None) -> DirectCall | None:
    """The direct form of the call in ``data`` (the device's private copy of an HGCMCall
    request at ``request_address``) for a function using its buffer as ``spec`` declares,
    or None when the general path must handle it.  ``translate`` is a paged guest's page
    translation: a LinAddr buffer goes direct only when every page translates and the
    frames are physically consecutive (the general path traces the translation)."""
    size = len(data)
    client_id, function, c_parms = _CALL_HEAD.unpack_from(data, _OFF_CLIENT)
    parm_size = _PARM_SIZE_64 if request_type == _HGCM_CALL64 else _PARM_SIZE_32
    if c_parms > VMMDEV_MAX_HGCM_PARMS or c_parms * parm_size > size - HGCM_CALL_OFF_PARMS:
        return None
    buffer_base = _WORDS_PER_PARM * spec.buffer
    if not 0 <= spec.buffer < c_parms:
        return None
    # The flat (type, u0, u1) words of all parameters (hgcm_parms_format's order); the
    # buffer's u0 is its size.
    layout = _layouts.get((parm_size, c_parms)) or _layout(parm_size, c_parms)
    words = layout.unpack_from(data, HGCM_CALL_OFF_PARMS)
    types = words[::_WORDS_PER_PARM]
    # Every parameter but the buffer must be a value: counted in C, not checked one by one.
    # (A buffer typed Bit32 or Bit64 may hide one other bad type here; the buffer's own
    # type check below refuses it.)
    if types.count(_BIT32) + types.count(_BIT64) != c_parms - 1:
        return None
    raw_type, cb, word1 = words[buffer_base:buffer_base + _WORDS_PER_PARM]
    params = [(kind, low | (high & 0xFFFFFFFF) << 32) if kind == _BIT64 else (kind, low)
              for kind, low, high in zip(types, words[_U0::_WORDS_PER_PARM], words[_U1::_WORDS_PER_PARM])]
    if cb == 0 or cb > VMMDEV_MAX_HGCM_DATA_SIZE:
        return None
    direction = _LINADDR_DIRECTION.get(raw_type)
    if direction is not None:
        start = word1 if translate is None else _contiguous_frames(word1, cb, translate)
        if start is None:
            return None
    elif raw_type == _PAGE_LIST:
        found = _consecutive_pages(data, word1 & 0xFFFFFFFF, cb, HGCM_CALL_OFF_PARMS + c_parms * parm_size)
        if found is None:
            return None
        direction, start = found
    else:
        return None
    if spec.reads and not direction & _TO_HOST:
        return None  # the general path would hand the service zeros, not the guest's bytes
    if spec.stored is not None and not direction & _FROM_HOST:
        return None  # what the service stores must not reach the guest
    if start + cb > ram_size:
        return None  # the part beyond RAM is unassigned memory (0xFF, writes dropped): general path
    if start < request_address + size and request_address < start + cb:
        return None  # the buffer overlaps the request: its write-back order matters
    return DirectCall(client_id, function, params, spec.buffer, start, cb, direction, parm_size)


def _contiguous_frames(linear: int, cb: int, translate: Callable[[int], int | None]) -> int | None:
    """The physical address of a paged LinAddr buffer whose pages all translate to
    consecutive frames, else None."""
    first = linear & ~(PAGE_SIZE - 1)
    base = translate(first)
    if base is None:
        return None
    for page in range(first + PAGE_SIZE, linear + cb, PAGE_SIZE):
        if translate(page) != base + (page - first):
            return None
    return base + (linear & (PAGE_SIZE - 1))


#: Page counts whose run pattern is kept (a 1 MiB buffer at any offset needs 257 pages);
#: longer lists get theirs computed per call, so a guest cannot grow the cache.
_KEPT_PATTERNS = 257
_patterns: dict[int, tuple[int, int]] = {}
_ENTRY = array_codec(HgcmPageListEntry, 1)
#: The entries of the last run built: (first page, count, their bytes).  A guest moving
#: data through one buffer sends the same list call after call, which then costs one byte
#: comparison instead of a conversion of the list to an integer (about 0.3 against 6 µs
#: for 257 entries).  One entry, at most a request long.
_last_run: tuple[int, int, bytes] = (-1, 0, b"")


def _run_pattern(count: int) -> tuple[int, int]:
    """(ones, steps): ``count`` little-endian u64 entries read as one integer are
    ``first * ones + steps`` exactly when entry i is ``first + i * PAGE_SIZE`` (given that
    no entry passes 2**64)."""
    pattern = _patterns.get(count)
    if pattern is None:
        ones = int.from_bytes(_ENTRY.pack(1) * count, "little")
        steps = int.from_bytes(array_codec(HgcmPageListEntry, count).pack(*range(0, count * PAGE_SIZE, PAGE_SIZE)),
                               "little")
        pattern = (ones, steps)
        if count <= _KEPT_PATTERNS:
            _patterns[count] = pattern
    return pattern


def _run_bytes(first: int, count: int) -> bytes:
    """The ``count`` little-endian u64 entries ``first``, ``first + PAGE_SIZE``, ... (none
    of them past 2**64)."""
    global _last_run
    last_first, last_count, run = _last_run
    if first != last_first or count != last_count:
        ones, steps = _run_pattern(count)
        run = (first * ones + steps).to_bytes(_ENTRY_SIZE * count, "little")
        _last_run = (first, count, run)
    return run


def page_list_head(data: bytes | bytearray, offset: int, cb: int, off_extra: int) -> tuple[int, int, int] | None:
    """(direction, offFirstPage, cPages) of the PageList at ``offset`` of the request copy
    ``data`` (its parameters end at ``off_extra``) when its header passes every check of
    the general path (params.py: _page_list) for a buffer of ``cb`` bytes; else None."""
    size = len(data)
    if not (offset >= off_extra and size >= HGCM_PAGE_LIST_MIN_SIZE and offset <= size - HGCM_PAGE_LIST_MIN_SIZE):
        return None
    flags, off_first, c_pages = _PAGE_LIST_HEAD.unpack_from(data, offset)
    if not 0 < c_pages <= 1 + (size - offset - HGCM_PAGE_LIST_MIN_SIZE) // _ENTRY_SIZE:
        return None
    if flags & VBOX_HGCM_F_PARM_DIRECTION_MASK == 0 or flags & ~VBOX_HGCM_F_PARM_DIRECTION_MASK:
        return None
    if off_first >= PAGE_SIZE or c_pages * PAGE_SIZE - off_first < cb:
        return None
    return flags & VBOX_HGCM_F_PARM_DIRECTION_MASK, off_first, c_pages


def consecutive_start(data: bytes | bytearray, offset: int, c_pages: int) -> int | None:
    """The first page of the ``c_pages`` entries of the PageList at ``offset`` of ``data``
    when they are page aligned and each follows the one before (none past 2**64); else
    None."""
    entries = offset + HGCM_PAGE_LIST_OFF_PAGES
    first = _ENTRY.unpack_from(data, entries)[0]
    if first & (PAGE_SIZE - 1) or first + (c_pages - 1) * PAGE_SIZE >= 1 << 64:
        return None
    if not data.startswith(_run_bytes(first, c_pages), entries):  # one comparison for the whole list
        return None
    return first


def _consecutive_pages(data: bytes | bytearray, offset: int, cb: int,
                       off_extra: int) -> tuple[int, int] | None:
    """(direction, start) of a PageList that passes every check of the general path
    (params.py: _page_list) and covers ``cb`` bytes with page-aligned, consecutive pages,
    so that its read and write runs are both the one run (start, cb); else None."""
    head = page_list_head(data, offset, cb, off_extra)
    if head is None:
        return None
    direction, off_first, c_pages = head
    first = consecutive_start(data, offset, c_pages)
    return None if first is None else (direction, first + off_first)
