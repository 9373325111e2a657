"""The accelerator's hook in Python: ``native/hgcm_accel.c``'s twin, for hosts without it.

Where the native hook cannot be built (no C compiler, another platform, ``HGCMLAB_NATIVE=0``,
``VMMDevConfig(native=False)``), the accelerator (devices/vmmdev/accel.py) installs this hook
instead: the same decision, check for check and in the same order, and the same effects,
made in Python from the same mirror (``AccelState``).  It skips what makes the device's own
request path costly (the request copied and re-read, parameter objects, the port bus, the
trace and clock machinery, the service's dispatch and validation), so a small READ costs
a few microseconds of Python instead of tens.  Whatever it does not take goes to the CPU's
Python OUT hook unchanged, exactly as from the native hook.

It is registered through Unicorn's C API as a ctypes callback (``Cpu.install_native_out_hook``),
not through the binding's hook wrapper, which would cost as much again per ``out``.
Every offset and constant comes from the ABI declarations (``accel_layout.wire_constants``,
the table the native prelude is generated from), so the two hooks cannot read different wires.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from hgcmlab.devices.vmmdev import abi
from hgcmlab.devices.vmmdev.accel_layout import MAX_HANDLES, wire_constants
from hgcmlab.devices.vmmdev.commands import heap_category
from hgcmlab.devices.vmmdev.direct import consecutive_start, page_list_head
from hgcmlab.machine import fastblock
from hgcmlab.runtime.wire import array_codec

if TYPE_CHECKING:
    from hgcmlab.devices.vmmdev.accel import Accelerator
    from hgcmlab.machine.cpu import Cpu
    from hgcmlab.machine.memory import GuestMemory

# The ABI's field runs, bound to their codecs and offsets (request-relative, or
# parameter-relative for the parameter words).
_ENTRY = array_codec(abi.HgcmPageListEntry, 1).unpack_from
_HEAD, _HEAD_AT = abi.REQUEST_HEAD.codec.unpack_from, abi.REQUEST_HEAD.offset
_CALL_HEAD, _CALL_HEAD_AT = abi.HGCM_CALL_HEAD.codec.unpack_from, abi.HGCM_CALL_HEAD.offset
_REQUESTOR, _REQUESTOR_AT = abi.REQUEST_REQUESTOR.codec.unpack_from, abi.REQUEST_REQUESTOR.offset
_PUT_RC, _RC_AT = abi.REQUEST_RC.codec.pack_into, abi.REQUEST_RC.offset
_PUT_RESULT, _RESULT_AT = abi.HGCM_RESULT.codec.pack_into, abi.HGCM_RESULT.offset
_FLAGS, _PUT_FLAGS, _FLAGS_AT = abi.HGCM_FLAGS.codec.unpack_from, abi.HGCM_FLAGS.codec.pack_into, abi.HGCM_FLAGS.offset
_PUT_U0, _U0_AT = abi.HGCM_PARM_U0.codec.pack_into, abi.HGCM_PARM_U0.offset
_PUT_VALUE64, _VALUE64_AT = abi.HGCM_PARM_VALUE64.codec.pack_into, abi.HGCM_PARM_VALUE64.offset

# The table the native prelude is generated from, bound to module globals (the per-call
# work then reads no dictionary).
_C = wire_constants()
_HEADER_SIZE, _VERSION, _MAX_REQUEST = _C["REQ_HEADER_SIZE"], _C["REQUEST_HEADER_VERSION"], _C["MAX_REQUEST_SIZE"]
_CALL_SIZE, _OFF_PARMS, _PARM64_SIZE = _C["CALL_SIZE"], _C["CALL_OFF_PARMS"], _C["PARM64_SIZE"]
_PARM_SIZES = {_C["REQ_TYPE_CALL32"]: _C["PARM32_SIZE"], _C["REQ_TYPE_CALL64"]: _PARM64_SIZE}
_READ, _WRITE, _TRANSFER_PARMS = _C["SHFL_FN_READ"], _C["SHFL_FN_WRITE"], _C["SHFL_TRANSFER_PARMS"]
#: The five parameters' (type, u0, u1) words in one unpack, by parameter size.
_PARMS = {size: struct.Struct(abi.hgcm_parms_format(size, _TRANSFER_PARMS)).unpack_from
          for size in _PARM_SIZES.values()}
_BIT32, _BIT64, _PAGE_LIST = _C["PARM_BIT32"], _C["PARM_BIT64"], _C["PARM_PAGE_LIST"]
_TO_HOST, _FROM_HOST = _C["DIRECTION_TO_HOST"], _C["DIRECTION_FROM_HOST"]
_LINADDR_DIRECTION = {_C["PARM_LINADDR"]: _C["DIRECTION_BOTH"], _C["PARM_LINADDR_IN"]: _TO_HOST,
                      _C["PARM_LINADDR_OUT"]: _FROM_HOST}
_MAX_DATA, _MAX_CALL_HEAP, _COMMAND_HEAP_COST = _C["MAX_HGCM_DATA_SIZE"], _C["MAX_CALL_HEAP"], _C["COMMAND_HEAP_COST"]
_DONE = _C["REQ_DONE"]
_ASYNC_EXECUTE, _LEGACY = _C["STATUS_ASYNC_EXECUTE"], _C["REQUESTOR_LEGACY"]
_HANDLE_ROOT, _HANDLE_NIL = _C["SHFL_HANDLE_ROOT"], _C["SHFL_HANDLE_NIL"]
_PAGE, _ENTRY_SIZE = _C["GUEST_PAGE_SIZE"], _C["PL_ENTRY_SIZE"]
_PL_PAGES = _C["PL_OFF_PAGES"]
_MAX_SCATTER = _C["MAX_SCATTER_PAGES"]
_NO_DEADLINE = _C["NO_DEADLINE"]
#: Counter positions in ``PythonHook.counts`` (``AccelState``'s reads, writes,
#: scattered_reads, scattered_writes).
READS, WRITES, SCATTERED_READS, SCATTERED_WRITES = range(4)


class PythonHook:
    """The OUT hook of one accelerator, in Python (see the module doc).  ``out`` has
    Unicorn's OUT hook signature; it never raises (a failure ends the run through
    ``Cpu.abort_run``, as the binding's hooks do).  ``refresh`` copies the accelerator's
    mirror into Python values after every change (``Accelerator.sync``)."""

    def __init__(self, accelerator: Accelerator, cpu: Cpu, memory: GuestMemory) -> None:
        self._accelerator = accelerator
        self._state = accelerator.state
        self._cpu = cpu
        self._counters = fastblock.State.from_address(cpu.counters_address)
        self._ram = memory.view
        self._ram_size = memory.size
        self._fallback = cpu.python_out_hook
        self._generation = accelerator.generation_counter
        state = self._state
        # The frozen configuration's costs (read once by the accelerator, too).
        self._port_cycles, self._byte_cycles = state.port_cycles, state.byte_cycles
        self._base_cycles = {_READ: state.read_cycles, _WRITE: state.write_cycles}
        #: The calls taken, by kind (READS, WRITES, SCATTERED_READS, SCATTERED_WRITES).
        self.counts = [0, 0, 0, 0]
        self._armed, self._port = False, -1
        self._requestor_info = self._event_pending = False
        self._heap_available: tuple[int, ...] = ()
        self._pending: tuple[int, ...] = ()
        #: (client, root, handle) -> ((generation, fd, writable, admitted), ...) in slot order.
        self._handles: dict[tuple[int, int, int], tuple[tuple[int, int, bool, bool], ...]] = {}
        self._handle_edits = -1
        self.refresh()

    def refresh(self) -> None:
        """Copy the mirror (``AccelState``) into the values ``out`` reads (only ``armed``
        while it is off: nothing else is read then)."""
        state = self._state
        self._armed = bool(state.armed)
        if not self._armed:
            return
        self._port = state.port
        self._requestor_info, self._event_pending = bool(state.requestor_info), bool(state.event_pending)
        self._heap_available = tuple(state.heap_available)
        self._pending = tuple(state.pending[:min(state.pending_count, len(state.pending))])
        if self._handle_edits == self._accelerator.handle_edits:
            return
        self._handle_edits = self._accelerator.handle_edits
        handles: dict[tuple[int, int, int], tuple[tuple[int, int, bool, bool], ...]] = {}
        for index in range(min(state.handle_count, MAX_HANDLES)):
            entry = state.handles[index]
            key = (entry.client, entry.root, entry.handle)
            handles[key] = (*handles.get(key, ()), (entry.generation, entry.fd, bool(entry.writable),
                                                    bool(entry.admitted)))
        self._handles = handles

    def out(self, uc: int, port: int, size: int, value: int, _user: int) -> None:
        """Unicorn's OUT hook: take the call or pass the access to Python's hook."""
        if self._armed and port == self._port and size == 4:
            try:
                if self._try_call(value):
                    return
            except BaseException as error:  # noqa: BLE001 - re-raised after emu_start
                self._cpu.abort_run(error)
                return
        self._fallback(uc, port, size, value, 0)

    def _try_call(self, address: int) -> bool:
        """hgcm_accel.c: decide and try_call: complete the call at ``address`` when the
        device's path would complete it successfully, checks first and in the same order;
        False, having done nothing, otherwise."""
        ram, ram_size = self._ram, self._ram_size
        # The request (decide).
        if address > ram_size or ram_size - address < _HEADER_SIZE:
            return False
        size, version, request_type = _HEAD(ram, address + _HEAD_AT)
        if version != _VERSION or size > _MAX_REQUEST:
            return False
        parm_size = _PARM_SIZES.get(request_type)
        if parm_size is None or size < _CALL_SIZE or ram_size - address < size:
            return False
        client, function, c_parms = _CALL_HEAD(ram, address + _CALL_HEAD_AT)
        if (function != _READ and function != _WRITE) or c_parms != _TRANSFER_PARMS:
            return False
        if c_parms * parm_size > size - _OFF_PARMS:
            return False
        parms = address + _OFF_PARMS
        (root_type, root, _, handle_type, handle_low, handle_high, offset_type, offset_low, offset_high,
         count_type, count, _, buffer_type, buffer_size, buffer_word) = _PARMS[parm_size](ram, parms)
        if root_type != _BIT32 or handle_type != _BIT64 or offset_type != _BIT64 or count_type != _BIT32:
            return False
        if buffer_size == 0 or buffer_size > _MAX_DATA:
            return False
        pieces: list[tuple[int, int]] | None = None
        direction = _LINADDR_DIRECTION.get(buffer_type)
        if direction is not None:
            # A paged guest's buffer is translated (and traced) by Python.
            if self._cpu.paging_enabled():
                return False
            start = buffer_word if parm_size == _PARM64_SIZE else buffer_word & 0xFFFFFFFF
        elif buffer_type == _PAGE_LIST:
            found = self._page_list(address, size, buffer_word & 0xFFFFFFFF, buffer_size,
                                    _OFF_PARMS + c_parms * parm_size)
            if found is None:
                return False
            direction, start, pieces = found
        else:
            return False
        scattered = pieces is not None
        # A scattered buffer read into that also travels to the host: the general path's
        # copy-back restores a page listed twice (hgcm_accel.c says why); Python takes it.
        if scattered and function == _READ and direction & _TO_HOST:
            return False
        if not direction & (_FROM_HOST if function == _READ else _TO_HOST):
            return False
        if pieces is None:
            if start > ram_size or buffer_size > ram_size - start:
                return False
            if start < address + size and address < start + buffer_size:
                return False
            pieces = [(start, buffer_size)]
        # The device: heap budget, no command pending at this address, the call limit.
        requestor = _REQUESTOR(ram, address + _REQUESTOR_AT)[0] if self._requestor_info else _LEGACY
        if (buffer_size > _MAX_CALL_HEAP
                or _COMMAND_HEAP_COST + buffer_size > self._heap_available[heap_category(requestor)]):
            return False
        if address in self._pending:
            return False
        # The service: a current handle of this client, access, counts.
        handle = handle_low | (handle_high & 0xFFFFFFFF) << 32
        offset = offset_low | (offset_high & 0xFFFFFFFF) << 32
        if handle == _HANDLE_ROOT or handle == _HANDLE_NIL:
            return False
        exported = self._find_handle(client, root, handle)
        if exported is None:
            return False
        _generation, fd, writable, admitted = exported
        if not admitted or (function == _WRITE and not writable):
            return False
        if count == 0 or count > buffer_size or offset >> 63:
            return False
        # The cycles (charge_for): -1 when they would reach the pending deadline.
        cycles = self._port_cycles + self._base_cycles[function] + self._byte_cycles * buffer_size
        counters = self._counters
        if counters.inexact:
            return False
        deadline = counters.deadline
        if deadline != _NO_DEADLINE and counters.cycles + counters.charged + cycles >= deadline:
            return False
        # Decided: the transfer (try_call).
        count_parm, offset_parm = parms + 3 * parm_size, parms + 2 * parm_size
        windows = [ram[start:start + length] for start, length in pieces]
        try:
            if function == _READ:
                moved = _read_at(fd, windows, count, offset)
                if moved < 0:
                    return False   # nothing happened: Python repeats it and reports the status
                if not direction & _TO_HOST and moved < buffer_size:
                    _zero_from(windows, moved)   # a bounce buffer is copied back whole
            else:
                moved = _write_at(fd, windows, count, offset)
                if moved < 0:
                    return False   # nothing was written: Python repeats it and reports the status
                if moved:
                    _PUT_VALUE64(ram, offset_parm + _VALUE64_AT, offset + moved)
        finally:
            for window in windows:
                window.release()
        if moved != count:
            _PUT_U0(ram, count_parm + _U0_AT, moved)
        self.counts[(SCATTERED_READS if function == _READ else SCATTERED_WRITES) if scattered
                    else (READS if function == _READ else WRITES)] += 1
        _PUT_RC(ram, address + _RC_AT, _ASYNC_EXECUTE)
        _PUT_RESULT(ram, address + _RESULT_AT, 0)
        _PUT_FLAGS(ram, address + _FLAGS_AT, _FLAGS(ram, address + _FLAGS_AT)[0] | _DONE)
        counters.charged += cycles
        if not self._event_pending:
            self._accelerator.raise_event()
            self._event_pending = bool(self._state.event_pending)
        return True

    def _page_list(self, address: int, size: int, offset: int, buffer_size: int,
                   off_extra: int) -> tuple[int, int, list[tuple[int, int]] | None] | None:
        """(direction, start, None) of a page list of one consecutive run, (direction, -1,
        pieces as (RAM offset, length)) of scattered RAM pages the native hook takes, else
        None (hgcm_accel.c: page_list, page_list_head; the header and the consecutive run
        checked by direct.py's own functions, on a copy of the request)."""
        data = self._ram[address:address + size].tobytes()
        head = page_list_head(data, offset, buffer_size, off_extra)
        if head is None:
            return None
        direction, off_first, pages = head
        first = consecutive_start(data, offset, pages)
        if first is not None:
            return direction, first + off_first, None
        used = (off_first + buffer_size + _PAGE - 1) // _PAGE
        if used > _MAX_SCATTER:
            return None
        ram_size = self._ram_size
        entries = offset + _PL_PAGES
        pieces = []
        remaining = buffer_size
        for index in range(used):
            page = _ENTRY(data, entries + index * _ENTRY_SIZE)[0]
            within = off_first if index == 0 else 0
            take = min(remaining, _PAGE - within)
            if page & (_PAGE - 1) or page > ram_size or ram_size - page < _PAGE:
                return None
            if page < address + size and address < page + _PAGE:
                return None
            pieces.append((page + within, take))
            remaining -= take
        return direction, -1, pieces

    def _find_handle(self, client: int, root: int, value: int) -> tuple[int, int, bool, bool] | None:
        """The exported handle that is still current, or None (the miss recorded for
        Python to export it, as hgcm_accel.c: find_handle does)."""
        generation = self._generation.value
        for exported in self._handles.get((client, root, value), ()):
            if exported[0] == generation:
                return exported
        state = self._state
        state.miss_client, state.miss_root, state.miss_handle = client, root, value
        state.miss_valid = 1
        return None


def _first_bytes(windows: list[memoryview], count: int) -> list[memoryview]:
    """The windows holding the buffer's first ``count`` bytes (the last one cut)."""
    taken = []
    for window in windows:
        if count <= 0:
            break
        taken.append(window if len(window) <= count else window[:count])
        count -= len(window)
    return taken


def _read_at(fd: int, windows: list[memoryview], count: int, offset: int) -> int:
    """Positional read into the buffer's first ``count`` bytes: the count read, or -1 when
    it failed (nothing was read)."""
    try:
        return os.preadv(fd, _first_bytes(windows, count), offset)
    except OSError:
        return -1


def _write_at(fd: int, windows: list[memoryview], count: int, offset: int) -> int:
    """Positional write of the buffer's first ``count`` bytes, continued after short writes
    (runtime/fs.py: HostFile.write_at): the bytes written, or -1 when the first write
    failed (nothing was written)."""
    pieces = _first_bytes(windows, count)
    done = 0
    while done < count:
        try:
            step = os.pwritev(fd, pieces, offset + done)
        except OSError:
            return done if done else -1
        if step == 0:
            break
        done += step
        while pieces and step >= len(pieces[0]):
            step -= len(pieces[0])
            pieces.pop(0)
        if pieces and step:
            pieces[0] = pieces[0][step:]
    return done


def _zero_from(windows: list[memoryview], start: int) -> None:
    """Zero the buffer from byte ``start`` on (what a zero-filled bounce buffer leaves)."""
    for window in windows:
        length = len(window)
        if start < length:
            window[start:] = bytes(length - start)
        start = start - length if start > length else 0
