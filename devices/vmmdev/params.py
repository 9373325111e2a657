"""HGCM call parameters: guest layout -> service values, and results back into the guest.

Parsing reads only the device's private copy of the request (no double fetch); buffer
contents travelling to the host are copied once into zero-filled bounce buffers.  The
checks, their order and their statuses follow VMMDevHGCM.cpp as the reference describes
(§4.4-4.7): any failure is a synchronous status for the whole call.

Bounce buffers are allocated only after every parameter passed validation, as VirtualBox
does (``vmmdevR3HgcmCallFetchGuestParms`` validates, ``vmmdevR3HgcmInitHostParameters``
allocates); the bytes they cost are counted in ``ParsedCall.heap`` and checked against the
per-call limit and the caller's heap budget first (VERR_NO_MEMORY).  A large buffer that only
travels back to the guest is an anonymous mapping: host memory is committed only for the
pages the service writes, so a 128 MiB READ of a 10-byte file costs one page, not 128 MiB.

Guest "linear" addresses are physical here: the machine runs flat, without paging.  Pages
outside guest RAM behave like VirtualBox's untranslatable (NIL) pages: they read as zeros
and writes to them are dropped.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field

from hgcmlab.devices.vmmdev.abi import (
    HGCM_CALL_OFF_PARMS,
    PAGE_SIZE,
    VBOX_HGCM_F_PARM_DIRECTION_MASK,
    VMMDEV_MAX_HGCM_DATA_SIZE,
    VMMDEV_MAX_HGCM_PARMS,
    HgcmParmDirection,
    HgcmParmType,
    hgcm_parm_size,
)
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.hgcm import SvcParm, SvcParmType

#: Total bounce-buffer bytes one call may allocate (VirtualBox's per-call heap limit).
MAX_CALL_HEAP = 128 * 1024 * 1024
#: Host-bound-only ("out") buffers from this size on are lazily committed anonymous mappings
#: (smaller ones are plain bytearrays: a mapping costs two system calls).
LAZY_BUFFER_MIN = 64 * 1024

_LINADDR_DIRECTION = {
    HgcmParmType.LinAddr: HgcmParmDirection.BOTH,
    HgcmParmType.LinAddr_In: HgcmParmDirection.TO_HOST,
    HgcmParmType.LinAddr_Out: HgcmParmDirection.FROM_HOST,
}
_PAGE_LIST_TYPES = (HgcmParmType.PageList, HgcmParmType.ContiguousPageList, HgcmParmType.NoBouncePageList)
#: Raw type number -> enum member, without an Enum call per parameter on the hot path.
_PARM_TYPES = {int(member): member for member in HgcmParmType}


@dataclass
class GuestBuffer:
    """Where a pointer parameter's bytes live in the guest: a list of (address, length) runs."""

    runs: list[tuple[int, int]]

    def read(self, memory: GuestMemory, size: int) -> bytearray:
        """Copy up to ``size`` bytes from the runs (pages outside RAM read as zeros)."""
        out = bytearray(size)
        position = 0
        with memoryview(out) as view:  # released before the service may resize ``out``
            for address, length in self.runs:
                take = min(length, size - position)
                if take <= 0:
                    break
                if memory.contains(address, take):
                    memory.copy_into(address, view[position:position + take])
                position += take
        return out

    def write(self, memory: GuestMemory, data: bytes | bytearray) -> None:
        """Copy ``data`` into the runs (writes to pages outside RAM are dropped)."""
        position = 0
        with memoryview(data) as source:
            for address, length in self.runs:
                take = min(length, len(data) - position)
                if take <= 0:
                    break
                if memory.contains(address, take):
                    memory.write(address, source[position:position + take])
                position += take


@dataclass
class ParsedParam:
    """One parameter: what the service sees and how to write the result back."""

    index: int
    guest_type: HgcmParmType
    svc: SvcParm
    #: VBOX_HGCM_F_PARM_DIRECTION_* bits (an int: built on the hot path).
    direction: int = HgcmParmDirection.NONE
    guest_size: int = 0
    target: GuestBuffer | None = None
    #: Embedded buffers live inside the request at this offset.
    embedded_offset: int | None = None
    #: Where the bytes travelling to the host come from (pointer parameters).
    source: GuestBuffer | None = None


@dataclass
class ParsedCall:
    """A validated call: its parameters and their layout in the request."""

    request_type: int
    client_id: int
    function: int
    params: list[ParsedParam] = field(default_factory=list)
    #: Bounce-buffer bytes the call allocates (what it is charged against the heap budget).
    heap: int = 0

    @property
    def parm_size(self) -> int:
        return hgcm_parm_size(self.request_type)

    def param_offset(self, index: int) -> int:
        return HGCM_CALL_OFF_PARMS + index * self.parm_size


def _flags_valid(flags: int) -> bool:
    return flags & VBOX_HGCM_F_PARM_DIRECTION_MASK != 0 and flags & ~VBOX_HGCM_F_PARM_DIRECTION_MASK == 0


def _fail(status: Status, why: str) -> RtError:
    return RtError(status, why)


def _linear_runs(address: int, size: int, ram_size: int) -> GuestBuffer:
    """A flat guest-linear buffer: the part inside guest RAM and the part beyond it.

    VirtualBox translates it page by page, pages without RAM behind them becoming NIL (read
    as zeros, writes dropped); with flat addressing the pages inside RAM are contiguous, so
    two runs give the same bytes as one run per page, without a list as long as the buffer
    has pages."""
    end = address + size
    runs: list[tuple[int, int]] = []
    if address < ram_size and size:
        runs.append((address, min(end, ram_size) - address))
    if end > ram_size and size:
        beyond = max(address, ram_size)
        runs.append((beyond, end - beyond))
    return GuestBuffer(runs)


def _page_list(request: bytes, param_type: HgcmParmType, cb_data: int, offset: int,
               off_extra: int) -> tuple[int, GuestBuffer, GuestBuffer]:
    """Validate a page list (§4.6 checks 1-7); returns direction, read runs, write runs."""
    size = len(request)
    if cb_data > VMMDEV_MAX_HGCM_DATA_SIZE:
        raise _fail(Status.VERR_INVALID_PARAMETER, f"page list of {cb_data} bytes exceeds 128 MiB")
    if not (offset >= off_extra and size >= 16 and offset <= size - 16):
        raise _fail(Status.VERR_INVALID_PARAMETER, f"page list offset {offset:#x} outside the extra area")
    flags, off_first, c_pages = struct.unpack_from("<IHH", request, offset)
    if not (0 < c_pages <= 1 + (size - offset - 16) // 8):
        raise _fail(Status.VERR_INVALID_PARAMETER, f"page list page count {c_pages} does not fit the request")
    if not _flags_valid(flags):
        raise _fail(Status.VERR_INVALID_FLAGS, f"page list flags {flags:#x} invalid")
    if off_first >= PAGE_SIZE:
        raise _fail(Status.VERR_INVALID_PARAMETER, f"offFirstPage {off_first:#x} not below the page size")
    pages = list(struct.unpack_from(f"<{c_pages}Q", request, offset + 8))
    if param_type == HgcmParmType.ContiguousPageList and c_pages != 1:
        raise _fail(Status.VERR_INVALID_PARAMETER, "contiguous page list must have exactly one page")
    if param_type == HgcmParmType.NoBouncePageList:
        if c_pages != (off_first + cb_data + PAGE_SIZE - 1) // PAGE_SIZE:
            raise _fail(Status.VERR_INVALID_PARAMETER, "no-bounce page list page count does not match its size")
        first_low = pages[0] & (PAGE_SIZE - 1)
        if (first_low not in (0, off_first)) or any(page & (PAGE_SIZE - 1) for page in pages[1:]):
            raise _fail(Status.VERR_INVALID_POINTER, "no-bounce page list entry is not page aligned")
    direction = flags & VBOX_HGCM_F_PARM_DIRECTION_MASK
    walk: list[tuple[int, int]] = []
    remaining = cb_data
    for index, page in enumerate(pages):
        if remaining <= 0:
            break
        start = (page & ~(PAGE_SIZE - 1)) + (off_first if index == 0 else 0)
        take = min(remaining, PAGE_SIZE - (off_first if index == 0 else 0))
        if walk and walk[-1][0] + walk[-1][1] == start:
            walk[-1] = (walk[-1][0], walk[-1][1] + take)  # physically adjacent: one copy
        else:
            walk.append((start, take))
        remaining -= take
    consecutive = all(pages[i + 1] == pages[i] + PAGE_SIZE for i in range(len(pages) - 1))
    if param_type == HgcmParmType.ContiguousPageList or consecutive:
        # One contiguous copy from the first page on (VirtualBox reads past a single page
        # when offFirstPage + size exceeds it).
        read_runs = GuestBuffer([((pages[0] | off_first) & 0xFFFFFFFFFFFFFFFF, cb_data)])
    else:
        read_runs = GuestBuffer(walk)
    write_runs = read_runs if param_type == HgcmParmType.ContiguousPageList else GuestBuffer(walk)
    return direction, read_runs, write_runs


def parse_call(request: bytes, request_type: int, memory: GuestMemory,
               heap_available: int | None = None) -> ParsedCall:
    """Validate the parameters of an HGCMCall32/64 request copy and build service values.

    Raises ``RtError`` with the synchronous status VirtualBox gives for the first problem:
    parameter checks first, then VERR_NO_MEMORY when the call's buffers exceed
    ``MAX_CALL_HEAP`` or ``heap_available`` (the budget left, None: unlimited); only then
    are the bounce buffers allocated and guest bytes copied in.
    """
    size = len(request)
    client_id, function, c_parms = struct.unpack_from("<III", request, 32)
    parm_size = hgcm_parm_size(request_type)
    if c_parms > VMMDEV_MAX_HGCM_PARMS:
        raise _fail(Status.VERR_INVALID_PARAMETER, f"{c_parms} parameters (at most {VMMDEV_MAX_HGCM_PARMS})")
    if c_parms * parm_size > size - HGCM_CALL_OFF_PARMS:
        raise _fail(Status.VERR_INVALID_PARAMETER, f"{c_parms} parameters do not fit a {size}-byte request")
    off_extra = HGCM_CALL_OFF_PARMS + c_parms * parm_size
    call = ParsedCall(request_type, client_id, function)
    heap = 0
    for index in range(c_parms):
        base = HGCM_CALL_OFF_PARMS + index * parm_size
        raw_type, word0 = struct.unpack_from("<II", request, base)
        word1 = struct.unpack_from("<Q" if parm_size == 16 else "<I", request, base + 8)[0]
        param_type = _PARM_TYPES.get(raw_type)
        if param_type is None:
            raise _fail(Status.VERR_INVALID_PARAMETER, f"parameter {index}: unknown type {raw_type}")
        if param_type == HgcmParmType.Bit32:
            call.params.append(ParsedParam(index, param_type, SvcParm.u32(word0)))
        elif param_type == HgcmParmType.Bit64:
            value = struct.unpack_from("<Q", request, base + 4)[0]
            call.params.append(ParsedParam(index, param_type, SvcParm.u64(value)))
        elif param_type in _LINADDR_DIRECTION:
            cb = word0
            if cb > VMMDEV_MAX_HGCM_DATA_SIZE:
                raise _fail(Status.VERR_INVALID_PARAMETER, f"parameter {index}: {cb} bytes exceed 128 MiB")
            address = word1 & (0xFFFFFFFFFFFFFFFF if parm_size == 16 else 0xFFFFFFFF)
            direction = _LINADDR_DIRECTION[param_type]
            target = _linear_runs(address, cb, memory.size)
            call.params.append(_pointer(index, param_type, direction, cb, target, target))
            heap += cb
        elif param_type in _PAGE_LIST_TYPES:
            cb = word0
            offset = word1 & 0xFFFFFFFF
            direction, read_runs, write_runs = _page_list(request, param_type, cb, offset, off_extra)
            parsed = _pointer(index, param_type, direction, cb, read_runs, write_runs)
            if param_type == HgcmParmType.NoBouncePageList:
                parsed.svc.type = SvcParmType.PAGES
            call.params.append(parsed)
            heap += cb
        elif param_type == HgcmParmType.Embedded:
            flags, off_data = word0 & 0xFF, word0 >> 8
            cb = word1 & 0xFFFFFFFF
            if cb > VMMDEV_MAX_HGCM_DATA_SIZE:
                raise _fail(Status.VERR_INVALID_PARAMETER, f"parameter {index}: {cb} bytes exceed 128 MiB")
            if not _flags_valid(flags):
                raise _fail(Status.VERR_INVALID_FLAGS, f"parameter {index}: embedded flags {flags:#x} invalid")
            if not (off_data >= off_extra and off_data <= size and cb <= size - off_data):
                raise _fail(Status.VERR_INVALID_PARAMETER, f"parameter {index}: embedded data outside the request")
            call.params.append(ParsedParam(index, param_type, SvcParm(SvcParmType.PTR, 0, bytearray(), cb),
                                           flags, cb, None, off_data))
            heap += cb
        else:
            raise _fail(Status.VERR_INVALID_PARAMETER, f"parameter {index}: type {param_type.name} not accepted")
    if heap > MAX_CALL_HEAP:
        raise _fail(Status.VERR_NO_MEMORY, f"call buffers exceed {MAX_CALL_HEAP} bytes")
    if heap_available is not None and heap > heap_available:
        raise _fail(Status.VERR_NO_MEMORY, f"call buffers of {heap} bytes exceed the {heap_available} bytes "
                                           "left in the HGCM heap budget")
    call.heap = heap
    for param in call.params:
        if param.guest_type in _VALUE_TYPES:
            continue
        param.svc.buffer = _bounce(param, request, memory)
    return call


_VALUE_TYPES = (HgcmParmType.Bit32, HgcmParmType.Bit64)


def _pointer(index: int, param_type: HgcmParmType, direction: int, cb: int,
             read_runs: GuestBuffer, write_runs: GuestBuffer) -> ParsedParam:
    """A pointer parameter whose bounce buffer is allocated once the whole call is valid."""
    return ParsedParam(index, param_type, SvcParm(SvcParmType.PTR, 0, bytearray(), cb), direction, cb,
                       write_runs, source=read_runs)


def _bounce(param: ParsedParam, request: bytes, memory: GuestMemory) -> bytearray:
    """The zero-filled bounce buffer of a pointer parameter, with the guest's bytes copied in
    when it travels to the host."""
    cb = param.guest_size
    to_host = param.direction & HgcmParmDirection.TO_HOST
    if param.embedded_offset is not None:
        buffer = bytearray(cb)
        if to_host:
            buffer[:] = request[param.embedded_offset:param.embedded_offset + cb]
        return buffer
    if to_host and cb:
        assert param.source is not None
        return param.source.read(memory, cb)
    if cb >= LAZY_BUFFER_MIN:
        # Zero pages until written: what the service does not fill costs no host memory.
        # (A bytearray would be memset, committing all of it.)  Same buffer protocol,
        # length and slicing as a bytearray of that size; it cannot change size.
        return mmap.mmap(-1, cb)  # type: ignore[return-value]
    return bytearray(cb)


#: Buffer bytes a trace event keeps per parameter (``size`` tells the whole length).
TRACE_PREVIEW = 256
_DIRECTION_NAMES = {0: "none", 1: "in", 2: "out", 3: "inout"}


def describe(param: ParsedParam, *, returned: bool) -> dict[str, object]:
    """One parameter for a trace event: a value, or a buffer's kind, direction, size and the
    first ``TRACE_PREVIEW`` bytes travelling in that phase (to the host at submission,
    back to the guest at completion; nothing when that direction is not set)."""
    svc = param.svc
    if svc.type in (SvcParmType.U32, SvcParmType.U64):
        return {"type": "u32" if svc.type is SvcParmType.U32 else "u64", "value": svc.value}
    record: dict[str, object] = {"type": "pages" if svc.type is SvcParmType.PAGES else "ptr",
                                 "guest": param.guest_type.name, "dir": _DIRECTION_NAMES[param.direction & 3],
                                 "size": param.guest_size}
    wanted = HgcmParmDirection.FROM_HOST if returned else HgcmParmDirection.TO_HOST
    if param.direction & wanted:
        limit = min(svc.size, len(svc.buffer)) if returned else len(svc.buffer)
        record["data"] = bytes(svc.buffer[:min(limit, TRACE_PREVIEW)]).hex()
    return record


def write_back(call: ParsedCall, request: bytearray, memory: GuestMemory) -> None:
    """Apply the service's results: values and size fields into ``request`` (a fresh copy of
    the guest request), buffer bytes into guest memory or the embedded area."""
    for param in call.params:
        base = call.param_offset(param.index)
        svc = param.svc
        if param.guest_type == HgcmParmType.Bit32:
            struct.pack_into("<I", request, base + 4, svc.value & 0xFFFFFFFF)
            continue
        if param.guest_type == HgcmParmType.Bit64:
            struct.pack_into("<Q", request, base + 4, svc.value & 0xFFFFFFFFFFFFFFFF)
            continue
        returned = max(0, min(svc.size, len(svc.buffer)))
        copy = min(returned, param.guest_size)
        if param.guest_type == HgcmParmType.Embedded:
            struct.pack_into("<I", request, base + 8, returned)
            if param.guest_size and param.direction & HgcmParmDirection.FROM_HOST:
                assert param.embedded_offset is not None
                request[param.embedded_offset:param.embedded_offset + copy] = svc.buffer[:copy]
            continue
        if param.guest_size and param.direction & HgcmParmDirection.FROM_HOST and param.target is not None:
            with memoryview(svc.buffer) as whole, whole[:copy] as returned_bytes:  # no copy of the buffer
                param.target.write(memory, returned_bytes)
        if param.guest_type in (HgcmParmType.ContiguousPageList, HgcmParmType.NoBouncePageList):
            struct.pack_into("<I", request, base + 4, returned)
