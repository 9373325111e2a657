"""The fuzz target: raw guest bytes driven through the VMMDev request port.

One input is a small guest "program", a sequence of records

    op:u8  length:u16le  payload[length]

interpreted against 256 KiB of guest RAM (zeroed per input), a fresh VMMDev device and a
fresh Shared Folders service over the §5.1 host tree:

* ``op & 3 == 0`` — RAM write: payload = offset:u16le (times 4) then the bytes to store
  (clipped at the end of RAM).  Sets up strings, buffers and page lists.
* ``op & 3 == 1`` — request: the payload is written at ``0x1000 * (op >> 2)`` (slot 0 is
  the last page of RAM, so a request may run off its end) and that address is OUT to the
  request port.
* ``op & 3 == 2`` — raw port write: the first four payload bytes are the value OUT to the
  request port (any address, inside RAM or not).
* ``op & 3 == 3`` — other: ``op >> 2`` even reads the fast IRQ-acknowledge port; odd makes
  the host remove mapping "sf" (guests must cope with a share vanishing under them).

Before the program runs, client 1 is connected, switched to UTF-8 and has mapped "sf"
(root 0) and "ro" (root 1) through ordinary requests, so fuzzed calls reach the service
at once.  After it, every invariant of the issue is checked; a violation raises
``Finding``.  An exception from the device is a finding by itself (it escapes ``run``).
"""

from __future__ import annotations

import ctypes
import os
import tempfile
from pathlib import Path

from hgcmlab.devices.vmmdev import builder
from hgcmlab.devices.vmmdev.abi import (
    HGCM_CALL_OFF_PARMS,
    HGCM_CONNECT_CLIENT,
    HGCM_PARM_U0,
    HgcmCall,
    HgcmParam64,
    HgcmParamEmbedded,
    HgcmParmType,
)
from hgcmlab.devices.vmmdev.builder import CallBuilder, Param
from hgcmlab.devices.vmmdev.device import VMMDevDevice
from fuzz.tree import Tree, build_tree
from hgcmlab.machine.device import AttachContext
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.tracing import Tracer
from hgcmlab.services.sharedfolders import strings
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflCreateParms, ShflFn
from hgcmlab.services.sharedfolders.service import SharedFoldersService

RAM_SIZE = 0x40000
#: Records executed per input at most (bounds the work of one input).
MAX_RECORDS = 64
#: Where the harness's own requests and buffers live (the program may overwrite them).
_PRELUDE_ADDRESS = 0x20000
_CHECK_ADDRESS = 0x30000
_CHECK_BUFFER = 0x38000


class Finding(AssertionError):
    """An invariant of "a hostile guest gets nothing" did not hold."""


def _u16(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset:offset + 2], "little")


def shfl_call(client: int, function: int, *params: Param | bytes) -> bytearray:
    """An HGCMCall64 request; ``bytes`` arguments become embedded in+out buffers."""
    call = CallBuilder(client, int(function))
    for param in params:
        if isinstance(param, Param):
            call.add(param)
        else:
            call.add_embedded(param, flags=3)
    return call.build()


def utf8(text: str) -> bytes:
    """A UTF-8 SHFLSTRING."""
    return strings.build(text, utf8=True)


def create_parms(flags: int) -> bytes:
    """A SHFLCREATEPARMS block with NIL handle and ``flags``."""
    parms = ShflCreateParms()
    parms.Handle = 0xFFFFFFFFFFFFFFFF
    parms.CreateFlags = flags
    return bytes(parms)


class Harness:
    """Reusable target: one host tree and one RAM block, fresh device and service per input."""

    def __init__(self, base: Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="hgcmlab-fuzz-") if base is None else None
        root = Path(self._tmp.name) if self._tmp is not None else base
        assert root is not None
        (root / "T").mkdir()
        self.tree: Tree = build_tree(root / "T")
        self.baseline = self.tree.fingerprint()
        self.share_baseline = _walk(self.tree.share)
        self.memory = GuestMemory(RAM_SIZE)
        self.fd_baseline = self._fd_count()
        self.runs = 0

    def close(self) -> None:
        self.memory.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    @staticmethod
    def _fd_count() -> int:
        return len(os.listdir("/proc/self/fd"))

    # --- one input ------------------------------------------------------------------------

    def run(self, data: bytes) -> None:
        """Execute one input and check the invariants (raises ``Finding``)."""
        self.runs += 1
        self.memory.fill(0, RAM_SIZE, 0)
        service = SharedFoldersService()
        service.add_mapping("sf", str(self.tree.share))
        service.add_mapping("ro", str(self.tree.ro), writable=False)
        device = VMMDevDevice()
        device.register_service(service)
        device.attach(AttachContext(self.memory, Tracer()))
        try:
            self._prelude(device)
            self._program(device, service, data)
            self._check_answers(device)
        finally:
            service.close()
        self._check_host()

    def _submit(self, device: VMMDevDevice, request: bytes | bytearray, address: int) -> bytes:
        self.memory.write(address, request)
        device.io_write("request", 0, 4, address)
        return self.memory.read(address, len(request))

    def _prelude(self, device: VMMDevDevice) -> None:
        for request in _PRELUDE:
            self._submit(device, request, _PRELUDE_ADDRESS)

    def _program(self, device: VMMDevDevice, service: SharedFoldersService, data: bytes) -> None:
        pos = 0
        for _ in range(MAX_RECORDS):
            if pos + 3 > len(data):
                return
            op, length = data[pos], _u16(data, pos + 1)
            payload = data[pos + 3:pos + 3 + length]
            pos += 3 + length
            kind, arg = op & 3, op >> 2
            if kind == 0:
                offset = _u16(payload, 0) * 4
                chunk = payload[2:][:RAM_SIZE - offset]
                self.memory.write(offset, chunk)
            elif kind == 1:
                address = 0x1000 * arg if arg else RAM_SIZE - 0x1000
                self.memory.write(address, payload[:RAM_SIZE - address])
                device.io_write("request", 0, 4, address)
            elif kind == 2:
                value = int.from_bytes(payload[:4].ljust(4, b"\0"), "little")
                device.io_write("request", 0, 4, value)
            elif arg % 2 == 0:
                device.io_read("request_fast", 8, 4)
            else:
                service.remove_mapping("sf")

    # --- invariants -----------------------------------------------------------------------

    def _check_answers(self, device: VMMDevDevice) -> None:
        """A new client can still connect, map "ro", open and read its file (the service
        closes the handle and the client when it is unloaded)."""
        at = _CHECK_ADDRESS
        after = self._submit(device, builder.connect(SharedFoldersService.name), at)
        if builder.result_of(after) != 0:
            raise Finding(f"benign connect failed: {builder.result_of(after)}")
        client = HGCM_CONNECT_CLIENT.get(after)
        mapped = self._call_ok(device, _for_client(_CHECK_MAP, client))
        root = HGCM_PARM_U0.get(mapped, _parm_base(1))
        created = self._call_ok(device, _for_client(_CHECK_CREATE, client))
        handle = ShflCreateParms.from_buffer_copy(created, _embedded_offset(created, 2)).Handle
        self.memory.fill(_CHECK_BUFFER, 16, 0)
        self._call_ok(device, shfl_call(client, ShflFn.READ, Param.u32(root), Param.u64(handle),
                                        Param.u64(0), Param.u32(16),
                                        Param.linaddr(_CHECK_BUFFER, 16, HgcmParmType.LinAddr_Out)))
        if self.memory.read(_CHECK_BUFFER, 7) != b"ro-data":
            raise Finding("benign read returned the wrong bytes")

    def _call_ok(self, device: VMMDevDevice, request: bytearray) -> bytes:
        after = self._submit(device, request, _CHECK_ADDRESS)
        if builder.result_of(after) != 0 or builder.rc_of(after) < 0:
            raise Finding(f"benign request failed: rc={builder.rc_of(after)} "
                          f"result={builder.result_of(after)}")
        return after

    def _check_host(self) -> None:
        if self.tree.fingerprint() != self.baseline:
            raise Finding("host state outside the writable share changed")
        if self._fd_count() != self.fd_baseline:
            raise Finding(f"fd count {self._fd_count()} after close, baseline {self.fd_baseline}")
        if _walk(self.tree.share) != self.share_baseline:
            self.tree.reset_share()
            self.share_baseline = _walk(self.tree.share)


def _walk(top: Path) -> list[tuple[object, ...]]:
    """Everything under ``top`` (names, types, modes, sizes, mtimes)."""
    rows: list[tuple[object, ...]] = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            rows.append((dirpath, name, st.st_mode, st.st_size, st.st_mtime_ns))
    return sorted(rows)


def _for_client(request: bytes, client: int) -> bytearray:
    out = bytearray(request)
    HgcmCall.from_buffer(out).u32ClientID = client
    return out


def _map(client: int, name: str) -> bytearray:
    return shfl_call(client, ShflFn.MAP_FOLDER, utf8(name), Param.u32(0), Param.u32(ord("/")),
                     Param.u32(1))


_PRELUDE = (bytes(builder.connect(SharedFoldersService.name)), bytes(shfl_call(1, ShflFn.SET_UTF8)),
            bytes(_map(1, "sf")), bytes(_map(1, "ro")))
#: The benign check is a fresh UTF-16 client (no SET_UTF8 needed) reading "ro"/file.txt;
#: "ro" is root id 1 in every run (the program cannot add mappings).
_CHECK_MAP = bytes(shfl_call(0, ShflFn.MAP_FOLDER, strings.build("ro", utf8=False), Param.u32(0),
                             Param.u32(ord("/")), Param.u32(1)))
_CHECK_CREATE = bytes(shfl_call(0, ShflFn.CREATE, Param.u32(1), strings.build("file.txt", utf8=False),
                                create_parms(ShflCf.ACCESS_READ | ShflCf.ACT_FAIL_IF_NEW)))


def _embedded_offset(request: bytes, index: int) -> int:
    """Offset of embedded parameter ``index``'s data inside an HGCMCall64 request."""
    return HgcmParamEmbedded.from_buffer_copy(request, _parm_base(index)).offData


def _parm_base(index: int) -> int:
    """Offset of parameter ``index`` inside an HGCMCall64 request."""
    return HGCM_CALL_OFF_PARMS + index * ctypes.sizeof(HgcmParam64)
