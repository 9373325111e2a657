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

LinAddr buffers of a paged guest are translated page by page through its page tables at the
moment of the call, as VMMDevHGCM.cpp's vmmdevR3HgcmCallFetchGuestParms does with
PGMPhysGCPtr2GCPhys: a page that does not translate becomes NIL and is skipped (its bytes
reach the host as zeros, vmmdevR3HgcmGuestBufferRead; nothing is written back to it,
vmmdevR3HgcmGuestBufferWrite); a page the guest mapped read-only translates like any
other, so results are written into it (the walk does not look at the R/W bit).  When the
pages are physically contiguous VirtualBox reads them with one PDMDevHlpPhysRead from the
first page: a one-page buffer whose page does not translate is read from NIL_RTGCPHYS,
unassigned memory, which reads as 0xFF bytes (PGMPhysRead); physical pages outside guest
RAM read as 0xFF and drop writes the same way.  Device memory (the VMMDev's RAM BAR, an
MMIO2 range to PGM) is copied to and from like RAM (devices/vmmdev/physical.py).

An unpaged guest's linear addresses are physical (PGM's walk is the identity), so its
pages are always contiguous: the part of a buffer beyond guest RAM is unassigned memory
(0xFF, writes dropped), as in VirtualBox.
"""

from __future__ import annotations

import ctypes
import mmap
from collections.abc import Callable
from dataclasses import dataclass, field

from hgcmlab.devices.vmmdev.abi import (
    HGCM_CALL_HEAD,
    HGCM_CALL_OFF_PARMS,
    HGCM_PAGE_LIST_HEAD,
    HGCM_PAGE_LIST_MIN_SIZE,
    HGCM_PAGE_LIST_OFF_PAGES,
    HGCM_PARM_EMBEDDED_CB,
    HGCM_PARM_U0,
    HGCM_PARM_VALUE64,
    HGCM_PARM_WORDS,
    PAGE_SIZE,
    VBOX_HGCM_F_PARM_DIRECTION_MASK,
    VMMDEV_MAX_HGCM_DATA_SIZE,
    VMMDEV_MAX_HGCM_PARMS,
    HgcmPageListEntry,
    HgcmParamEmbedded,
    HgcmParmDirection,
    HgcmParmType,
    hgcm_parm_size,
)
from hgcmlab.devices.vmmdev.physical import PhysicalMemory
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.runtime.status import RtError, Status
from hgcmlab.runtime.wire import array_codec
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
_ENTRY_SIZE = ctypes.sizeof(HgcmPageListEntry)
#: Raw type number -> enum member, without an Enum call per parameter on the hot path.
_PARM_TYPES = {int(member): member for member in HgcmParmType}


#: A run address standing for unassigned physical memory: reads as 0xFF, writes dropped.
UNASSIGNED = -1
#: A run address standing for a page VirtualBox skips (NIL_RTGCPHYS): the zero-filled
#: bounce buffer keeps its zeros, nothing is written back.
SKIPPED = -2
#: VirtualBox's NIL_RTGCPHYS, the page address vmmdevR3HgcmGuestBuffer{Read,Write} skip.
NIL_RTGCPHYS = 0xFFFFFFFFFFFFFFFF


@dataclass
class GuestBuffer:
    """Where a pointer parameter's bytes live in the guest: a list of (physical address,
    length) runs; ``UNASSIGNED`` runs read as 0xFF, ``SKIPPED`` runs as zeros, and
    neither is written."""

    runs: list[tuple[int, int]]
    #: A paged LinAddr buffer's translation: (linear, physical or None, length) per page run.
    translation: list[tuple[int, int | None, int]] | None = None

    def read(self, memory: PhysicalMemory, size: int) -> bytearray:
        """Copy up to ``size`` bytes from the runs."""
        out = bytearray(size)
        position = 0
        with memoryview(out) as view:  # released before the service may resize ``out``
            for address, length in self.runs:
                take = min(length, size - position)
                if take <= 0:
                    break
                if address == UNASSIGNED:
                    view[position:position + take] = b"\xff" * take
                elif memory.contains(address, take):
                    memory.copy_into(address, view[position:position + take])
                position += take
        return out

    def write(self, memory: PhysicalMemory, data: bytes | bytearray) -> None:
        """Copy ``data`` into the runs (writes to unassigned pages are dropped)."""
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


def _physical_runs(physical: int, length: int, space: PhysicalMemory) -> list[tuple[int, int]]:
    """A physical range as runs: the parts inside guest RAM or device memory, and the parts
    in neither, which are unassigned memory (0xFF, writes dropped: PGMPhysRead,
    PGMPhysWrite)."""
    return [(UNASSIGNED if address is None else address, take) for address, take in space.areas(physical, length)]


def _linear_runs(address: int, size: int, space: PhysicalMemory) -> GuestBuffer:
    """An unpaged guest's buffer: the part inside guest RAM and the part beyond it.

    Without paging every page translates to itself, so VirtualBox's buffer is contiguous
    and moved with one PDMDevHlpPhysRead/-Write (vmmdevR3HgcmGuestBufferRead): the part
    beyond RAM is unassigned memory, read as 0xFF (PGMPhysRead), writes skipped
    (PGMPhysWrite).  Two runs, not one per page."""
    return GuestBuffer(_physical_runs(address, size, space))


def _paged_runs(address: int, size: int, translate: Callable[[int], int | None],
                space: PhysicalMemory) -> GuestBuffer:
    """A LinAddr buffer of a paged guest, translated page by page as VirtualBox does (see
    the module docstring): NIL pages become ``SKIPPED`` runs (zeros, writes dropped), and a
    physically contiguous buffer that does not lie wholly in RAM is read from unassigned
    memory (0xFF) as VirtualBox's single PDMDevHlpPhysRead does."""
    if not size:
        return GuestBuffer([], [])
    first = address & ~(PAGE_SIZE - 1)
    count = (address - first + size + PAGE_SIZE - 1) // PAGE_SIZE
    frames = [translate(first + index * PAGE_SIZE) for index in range(count)]
    translation: list[tuple[int, int | None, int]] = []
    position = address
    for frame in frames:
        take = min(address + size, (position | (PAGE_SIZE - 1)) + 1) - position
        physical = None if frame is None else frame + (position & (PAGE_SIZE - 1))
        last = translation[-1] if translation else None
        if last is not None and last[1] is not None and physical is not None and last[1] + last[2] == physical:
            translation[-1] = (last[0], last[1], last[2] + take)
        elif last is not None and last[1] is None and physical is None:
            translation[-1] = (last[0], None, last[2] + take)
        else:
            translation.append((position, physical, take))
        position += take
    if count == 1 and translation[0][1] is None:
        return GuestBuffer([(UNASSIGNED, size)], translation)
    runs: list[tuple[int, int]] = []
    for _linear, physical, length in translation:
        runs += [(SKIPPED, length)] if physical is None else _physical_runs(physical, length, space)
    return GuestBuffer(runs, translation)


def _page_list(request: bytes, param_type: HgcmParmType, cb_data: int, offset: int,
               off_extra: int, space: PhysicalMemory) -> tuple[int, GuestBuffer, GuestBuffer]:
    """Validate a page list (§4.6 checks 1-7); returns direction, read runs, write runs.

    The runs follow vmmdevR3HgcmGuestBufferRead/-Write: physically consecutive entries (or
    a ContiguousPageList) are one copy from ``aPages[0] | offFirstPage``; otherwise page by
    page from ``aPages[i] + offset``, skipping NIL_RTGCPHYS entries.  Frames beyond guest
    RAM and device memory are unassigned memory (0xFF, writes dropped).  A
    NoBouncePageList's entries are page addresses (its locking path masks the offset
    bits), and each must be RAM or device memory: PGMR3PhysBulkGCPhys2CCPtrExternal
    (PGMPhys.cpp) fails on any other page with VERR_PGM_INVALID_GC_PHYSICAL_ADDRESS, which
    vmmdevR3HgcmCallFetchGuestParms returns for the call."""
    size = len(request)
    if cb_data > VMMDEV_MAX_HGCM_DATA_SIZE:
        raise _fail(Status.VERR_INVALID_PARAMETER, f"page list of {cb_data} bytes exceeds 128 MiB")
    if not (offset >= off_extra and size >= HGCM_PAGE_LIST_MIN_SIZE and offset <= size - HGCM_PAGE_LIST_MIN_SIZE):
        raise _fail(Status.VERR_INVALID_PARAMETER, f"page list offset {offset:#x} outside the extra area")
    flags, off_first, c_pages = HGCM_PAGE_LIST_HEAD.unpack(request, offset)
    if not (0 < c_pages <= 1 + (size - offset - HGCM_PAGE_LIST_MIN_SIZE) // _ENTRY_SIZE):
        raise _fail(Status.VERR_INVALID_PARAMETER, f"page list page count {c_pages} does not fit the request")
    if not _flags_valid(flags):
        raise _fail(Status.VERR_INVALID_FLAGS, f"page list flags {flags:#x} invalid")
    if off_first >= PAGE_SIZE:
        raise _fail(Status.VERR_INVALID_PARAMETER, f"offFirstPage {off_first:#x} not below the page size")
    pages = list(array_codec(HgcmPageListEntry, c_pages).unpack_from(request, offset + HGCM_PAGE_LIST_OFF_PAGES))
    if param_type == HgcmParmType.ContiguousPageList and c_pages != 1:
        raise _fail(Status.VERR_INVALID_PARAMETER, "contiguous page list must have exactly one page")
    if param_type == HgcmParmType.NoBouncePageList:
        if c_pages != (off_first + cb_data + PAGE_SIZE - 1) // PAGE_SIZE:
            raise _fail(Status.VERR_INVALID_PARAMETER, "no-bounce page list page count does not match its size")
        first_low = pages[0] & (PAGE_SIZE - 1)
        if (first_low not in (0, off_first)) or any(page & (PAGE_SIZE - 1) for page in pages[1:]):
            raise _fail(Status.VERR_INVALID_POINTER, "no-bounce page list entry is not page aligned")
        for page in pages:
            if not space.contains(page & ~(PAGE_SIZE - 1), PAGE_SIZE):
                raise _fail(Status.VERR_PGM_INVALID_GC_PHYSICAL_ADDRESS,
                            f"no-bounce page list frame {page:#x} is neither RAM nor device memory")
    direction = flags & VBOX_HGCM_F_PARM_DIRECTION_MASK
    walk: list[tuple[int, int]] = []
    remaining = cb_data
    no_bounce = param_type == HgcmParmType.NoBouncePageList
    for index, page in enumerate(pages):
        if remaining <= 0:
            break
        within = off_first if index == 0 else 0
        take = min(remaining, PAGE_SIZE - within)
        remaining -= take
        if page == NIL_RTGCPHYS:
            walk.append((SKIPPED, take))
            continue
        start = ((page & ~(PAGE_SIZE - 1) if no_bounce else page) + within) & 0xFFFFFFFFFFFFFFFF
        for run in _physical_runs(start, take, space):
            last = walk[-1] if walk else None
            if last is not None and last[0] >= 0 and run[0] >= 0 and last[0] + last[1] == run[0]:
                walk[-1] = (last[0], last[1] + run[1])  # physically adjacent: one copy
            else:
                walk.append(run)
    consecutive = all(pages[i + 1] == pages[i] + PAGE_SIZE for i in range(len(pages) - 1))
    if param_type == HgcmParmType.ContiguousPageList or consecutive:
        # One contiguous copy from the first page on (VirtualBox reads past a single page
        # when offFirstPage + size exceeds it).
        read_runs = GuestBuffer(_physical_runs((pages[0] | off_first) & 0xFFFFFFFFFFFFFFFF, cb_data, space))
    else:
        read_runs = GuestBuffer(walk)
    write_runs = read_runs if param_type == HgcmParmType.ContiguousPageList else GuestBuffer(walk)
    return direction, read_runs, write_runs


def parse_call(request: bytes, request_type: int, memory: GuestMemory | PhysicalMemory,
               heap_available: int | None = None, translate: Callable[[int], int | None] | None = None) -> ParsedCall:
    """Validate the parameters of an HGCMCall32/64 request copy and build service values.

    Raises ``RtError`` with the synchronous status VirtualBox gives for the first problem:
    parameter checks first, then VERR_NO_MEMORY when the call's buffers exceed
    ``MAX_CALL_HEAP`` or ``heap_available`` (the budget left, None: unlimited); only then
    are the bounce buffers allocated and guest bytes copied in.  ``translate`` is the
    guest's page translation when it runs paged (``AttachContext.page_translator``).
    ``memory`` is guest RAM, or RAM with the device memory buffers may also lie in.
    """
    space = memory if isinstance(memory, PhysicalMemory) else PhysicalMemory(memory)
    size = len(request)
    client_id, function, c_parms = HGCM_CALL_HEAD.unpack(request)
    parm_size = hgcm_parm_size(request_type)
    words = HGCM_PARM_WORDS[parm_size]
    if c_parms > VMMDEV_MAX_HGCM_PARMS:
        raise _fail(Status.VERR_INVALID_PARAMETER, f"{c_parms} parameters (at most {VMMDEV_MAX_HGCM_PARMS})")
    if c_parms * parm_size > size - HGCM_CALL_OFF_PARMS:
        raise _fail(Status.VERR_INVALID_PARAMETER, f"{c_parms} parameters do not fit a {size}-byte request")
    off_extra = HGCM_CALL_OFF_PARMS + c_parms * parm_size
    call = ParsedCall(request_type, client_id, function)
    heap = 0
    for index in range(c_parms):
        base = HGCM_CALL_OFF_PARMS + index * parm_size
        raw_type, word0, word1 = words.unpack(request, base)
        param_type = _PARM_TYPES.get(raw_type)
        if param_type is None:
            raise _fail(Status.VERR_INVALID_PARAMETER, f"parameter {index}: unknown type {raw_type}")
        if param_type == HgcmParmType.Bit32:
            call.params.append(ParsedParam(index, param_type, SvcParm.u32(word0)))
        elif param_type == HgcmParmType.Bit64:
            call.params.append(ParsedParam(index, param_type, SvcParm.u64(HGCM_PARM_VALUE64.get(request, base))))
        elif param_type in _LINADDR_DIRECTION:
            cb = word0
            if cb > VMMDEV_MAX_HGCM_DATA_SIZE:
                raise _fail(Status.VERR_INVALID_PARAMETER, f"parameter {index}: {cb} bytes exceed 128 MiB")
            address = word1
            direction = _LINADDR_DIRECTION[param_type]
            target = (_linear_runs(address, cb, space) if translate is None
                      else _paged_runs(address, cb, translate, space))
            call.params.append(_pointer(index, param_type, direction, cb, target, target))
            heap += cb
        elif param_type in _PAGE_LIST_TYPES:
            cb = word0
            offset = word1 & 0xFFFFFFFF
            direction, read_runs, write_runs = _page_list(request, param_type, cb, offset, off_extra, space)
            parsed = _pointer(index, param_type, direction, cb, read_runs, write_runs)
            if param_type == HgcmParmType.NoBouncePageList:
                parsed.svc.type = SvcParmType.PAGES
            call.params.append(parsed)
            heap += cb
        elif param_type == HgcmParmType.Embedded:
            embedded = HgcmParamEmbedded.from_buffer_copy(request, base)
            flags, off_data, cb = embedded.fFlags, embedded.offData, embedded.cbData
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
        param.svc.buffer = _bounce(param, request, space)
    return call


_VALUE_TYPES = (HgcmParmType.Bit32, HgcmParmType.Bit64)


def _pointer(index: int, param_type: HgcmParmType, direction: int, cb: int,
             read_runs: GuestBuffer, write_runs: GuestBuffer) -> ParsedParam:
    """A pointer parameter whose bounce buffer is allocated once the whole call is valid."""
    return ParsedParam(index, param_type, SvcParm(SvcParmType.PTR, 0, bytearray(), cb), direction, cb,
                       write_runs, source=read_runs)


def _bounce(param: ParsedParam, request: bytes, memory: PhysicalMemory) -> bytearray:
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


def write_back(call: ParsedCall, request: bytearray, memory: GuestMemory | PhysicalMemory) -> None:
    """Apply the service's results: values and size fields into ``request`` (a fresh copy of
    the guest request), buffer bytes into guest memory or the embedded area."""
    space = memory if isinstance(memory, PhysicalMemory) else PhysicalMemory(memory)
    for param in call.params:
        base = call.param_offset(param.index)
        svc = param.svc
        if param.guest_type == HgcmParmType.Bit32:
            HGCM_PARM_U0.pack(request, base, svc.value & 0xFFFFFFFF)
            continue
        if param.guest_type == HgcmParmType.Bit64:
            HGCM_PARM_VALUE64.pack(request, base, svc.value & 0xFFFFFFFFFFFFFFFF)
            continue
        returned = max(0, min(svc.size, len(svc.buffer)))
        copy = min(returned, param.guest_size)
        if param.guest_type == HgcmParmType.Embedded:
            HGCM_PARM_EMBEDDED_CB.pack(request, base, returned)
            if param.guest_size and param.direction & HgcmParmDirection.FROM_HOST:
                assert param.embedded_offset is not None
                request[param.embedded_offset:param.embedded_offset + copy] = svc.buffer[:copy]
            continue
        if param.guest_size and param.direction & HgcmParmDirection.FROM_HOST and param.target is not None:
            with memoryview(svc.buffer) as whole, whole[:copy] as returned_bytes:  # no copy of the buffer
                param.target.write(space, returned_bytes)
        if param.guest_type in (HgcmParmType.ContiguousPageList, HgcmParmType.NoBouncePageList):
            HGCM_PARM_U0.pack(request, base, returned)
