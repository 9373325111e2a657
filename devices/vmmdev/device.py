"""The VMMDev device: the request port and the request-type table.

An OUT of a request's guest-physical address to the request port (base + 0) makes the
device process it exactly as VirtualBox's ``vmmdevRequestHandler`` does (reference §2.3):
header read and checked (size, version, size limit, additions gate), the whole request
copied once into a private buffer, dispatched by type, and written back.  HGCM connect,
disconnect and call follow §4.9: VINF_HGCM_ASYNC_EXECUTE is written into the guest's
header before parsing; synchronous failures write the request back with the error; an
accepted command is completed (now or later) by writing outputs and ``result``, then the
DONE flag last.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from devices.vmmdev.abi import (
    HGCM_SERVICE_NAME_SIZE,
    HOST_FEATURES,
    HOST_VERSION_BUILD,
    HOST_VERSION_MAJOR,
    HOST_VERSION_MINOR,
    HOST_VERSION_REVISION,
    VBOX_HGCM_REQ_DONE,
    VMMDEV_MAX_VMMDEVREQ_SIZE,
    VMMDEV_REQUEST_HEADER_VERSION,
    VMMDEV_REQUESTOR_LEGACY,
    HgcmLocationType,
    RequestType,
)
from devices.vmmdev.hgcm import HgcmHost
from devices.vmmdev.params import ParsedCall, parse_call, write_back
from machine.device import AttachContext, PortRange
from machine.memory import GuestMemory
from runtime.status import RtError, Status, status_name
from services.hgcm import ASYNC, HgcmCall, HgcmService

_HEADER_SIZE = 24
_OFF_SIZE, _OFF_TYPE, _OFF_RC = 0, 8, 12
_OFF_HGCM_FLAGS, _OFF_HGCM_RESULT = 24, 28
_OFF_CONNECT_LOC_TYPE, _OFF_CONNECT_NAME, _OFF_CONNECT_CLIENT = 32, 36, 164
_OFF_DISCONNECT_CLIENT = 32

#: Request types VirtualBox accepts before the guest reported its additions version.
_ALLOWED_BEFORE_GUEST_INFO = frozenset({
    RequestType.ReportGuestInfo, RequestType.ReportGuestInfo2,
    RequestType.WriteCoreDump, RequestType.GetHostVersion,
})
_HGCM_TYPES = frozenset({RequestType.HGCMConnect, RequestType.HGCMDisconnect,
                         RequestType.HGCMCall32, RequestType.HGCMCall64})


@dataclass(frozen=True)
class _SizeRule:
    """A request type's size check: exactly or at least ``size`` bytes."""

    size: int
    exact: bool

    def accepts(self, size: int) -> bool:
        return size == self.size if self.exact else size >= self.size


@dataclass
class _Request:
    """A request being processed: where it lives and the device's private copy."""

    address: int
    type: RequestType | int
    data: bytearray

    @property
    def size(self) -> int:
        return len(self.data)

    def set_rc(self, status: int) -> None:
        struct.pack_into("<i", self.data, _OFF_RC, int(status))


class VMMDevDevice:
    """VirtualBox's VMM device (I/O BAR0 part) with its HGCM host.

    ``require_guest_info``: when True, every request except GetHostVersion,
    ReportGuestInfo(2) and WriteCoreDump answers VERR_NOT_SUPPORTED until the guest has sent
    a successful ReportGuestInfo, as VirtualBox does.  The default (False) lets small guest
    programs skip that handshake; see docs/deviations.md.
    """

    name = "vmmdev"

    def __init__(self, hgcm: HgcmHost | None = None, *, require_guest_info: bool = False) -> None:
        self.hgcm = hgcm or HgcmHost()
        self.require_guest_info = require_guest_info
        self.additions_ok = False
        self._guest_info = b""
        self._context: AttachContext | None = None
        #: Accepted HGCM commands not completed yet, by request address.
        self.pending: dict[int, HgcmCall] = {}
        self._handlers: dict[int, tuple[_SizeRule, Callable[[_Request], bool]]] = {
            RequestType.GetHostVersion: (_SizeRule(40, True), self._get_host_version),
            RequestType.ReportGuestInfo: (_SizeRule(32, True), self._report_guest_info),
            RequestType.HGCMConnect: (_SizeRule(168, False), self._hgcm_connect),
            RequestType.HGCMDisconnect: (_SizeRule(36, False), self._hgcm_disconnect),
            RequestType.HGCMCall32: (_SizeRule(44, False), self._hgcm_call),
            RequestType.HGCMCall64: (_SizeRule(44, False), self._hgcm_call),
        }

    def register_service(self, service: HgcmService) -> None:
        """Make an HGCM service reachable by guests."""
        self.hgcm.register(service)

    # --- device plugin interface ----------------------------------------------------------

    def port_ranges(self) -> list[PortRange]:
        return [
            PortRange("request", 0, 1, frozenset({4})),
            PortRange("request_fast", 8, 1, frozenset({4})),
        ]

    def attach(self, context: AttachContext) -> None:
        self._context = context

    def io_read(self, range_name: str, offset: int, size: int) -> int:
        # No IN handler on the request port; the fast IRQ acknowledge answers "failure"
        # (0xFFFFFFFF) while no event machinery is modelled.
        return 0xFFFFFFFF

    def io_write(self, range_name: str, offset: int, size: int, value: int) -> None:
        self.handle_request(value)

    @property
    def _memory(self) -> GuestMemory:
        assert self._context is not None, "VMMDev used before attach"
        return self._context.memory

    def _trace(self, kind: str, **fields: object) -> None:
        assert self._context is not None, "VMMDev used before attach"
        self._context.tracer.emit(kind, **fields)

    # --- request port ---------------------------------------------------------------------

    def handle_request(self, address: int) -> None:
        """Process the request at guest-physical ``address`` (the value OUT to the port)."""
        memory = self._memory
        address &= 0xFFFFFFFF
        if not memory.contains(address, _HEADER_SIZE):
            self._trace("vmmdev_request_dropped", address=address, reason="header outside guest RAM")
            return
        header = bytearray(memory.read(address, _HEADER_SIZE))
        size, version, request_type = struct.unpack_from("<III", header, 0)
        type_name = _type_name(request_type)
        if size < _HEADER_SIZE:
            self._trace("vmmdev_request_dropped", address=address, type=type_name, size=size,
                        reason="size below the header size")
            return
        if version != VMMDEV_REQUEST_HEADER_VERSION:
            self._trace("vmmdev_request_dropped", address=address, type=type_name, size=size,
                        reason=f"header version {version:#x}")
            return
        if size > VMMDEV_MAX_VMMDEVREQ_SIZE:
            self._answer_header(address, header, Status.VERR_NOT_SUPPORTED, type_name, size)
            return
        if (self.require_guest_info and not self.additions_ok
                and request_type not in _ALLOWED_BEFORE_GUEST_INFO):
            self._answer_header(address, header, Status.VERR_NOT_SUPPORTED, type_name, size)
            return
        if not memory.contains(address, size):
            # VirtualBox would read unassigned memory here; we refuse the request instead.
            self._answer_header(address, header, Status.VERR_INVALID_PARAMETER, type_name, size,
                                reason="request extends beyond guest RAM")
            return
        request = _Request(address, request_type, bytearray(memory.read(address, size)))
        handler = self._handlers.get(request_type)
        if handler is None:
            request.set_rc(Status.VERR_NOT_IMPLEMENTED)
            write = True
        else:
            rule, function = handler
            if not rule.accepts(size):
                request.set_rc(Status.VERR_INVALID_PARAMETER)
                write = True
            else:
                write = function(request)
        if write:
            memory.write(address, request.data)
        rc = struct.unpack_from("<i", request.data, _OFF_RC)[0] if write else memory.read_i32(address + _OFF_RC)
        self._trace("vmmdev_request", address=address, type=type_name, size=size, rc=rc,
                    rc_name=status_name(rc))

    def _answer_header(self, address: int, header: bytearray, status: int, type_name: str, size: int,
                       reason: str = "") -> None:
        struct.pack_into("<i", header, _OFF_RC, int(status))
        self._memory.write(address, header)
        self._trace("vmmdev_request", address=address, type=type_name, size=size, rc=int(status),
                    rc_name=status_name(status), header_only=True, reason=reason)

    # --- simple requests ------------------------------------------------------------------

    def _get_host_version(self, request: _Request) -> bool:
        struct.pack_into("<HHIII", request.data, 24, HOST_VERSION_MAJOR, HOST_VERSION_MINOR,
                         HOST_VERSION_BUILD, HOST_VERSION_REVISION, HOST_FEATURES)
        request.set_rc(Status.VINF_SUCCESS)
        return True

    def _report_guest_info(self, request: _Request) -> bool:
        info = bytes(request.data[24:32])
        if info != self._guest_info:
            self._guest_info = info
            interface_version = struct.unpack_from("<I", info, 0)[0]
            self.additions_ok = interface_version >> 16 == 1 and interface_version & 0xFFFF <= 4
        request.set_rc(Status.VINF_SUCCESS if self.additions_ok else Status.VERR_VERSION_MISMATCH)
        return True

    # --- HGCM -----------------------------------------------------------------------------

    def _accept(self, request: _Request) -> None:
        """Mark the command as being executed: rc = VINF_HGCM_ASYNC_EXECUTE in guest memory."""
        self._memory.write_i32(request.address + _OFF_RC, Status.VINF_HGCM_ASYNC_EXECUTE)

    def _fail_sync(self, request: _Request, status: int, why: str) -> bool:
        request.set_rc(status)
        self._trace("hgcm_rejected", address=request.address, type=_type_name(request.type),
                    status=int(status), status_name=status_name(status), reason=why)
        return True

    def _hgcm_connect(self, request: _Request) -> bool:
        self._accept(request)
        struct.pack_into("<I", request.data, _OFF_CONNECT_LOC_TYPE, HgcmLocationType.LocalHost_Existing)
        raw_name = bytes(request.data[_OFF_CONNECT_NAME:_OFF_CONNECT_NAME + HGCM_SERVICE_NAME_SIZE])
        if b"\0" not in raw_name:
            return self._fail_sync(request, Status.VERR_INVALID_PARAMETER, "service name not NUL-terminated")
        name = raw_name.split(b"\0", 1)[0].decode("latin-1")
        requestor = VMMDEV_REQUESTOR_LEGACY
        status, client_id = self.hgcm.connect(name, requestor)
        self._trace("hgcm_connect", address=request.address, service=name, status=int(status),
                    status_name=status_name(status), client=client_id)

        def finish(data: bytearray) -> None:
            if status >= 0:
                struct.pack_into("<I", data, _OFF_CONNECT_CLIENT, client_id)

        self._complete(request, status, finish)
        return False

    def _hgcm_disconnect(self, request: _Request) -> bool:
        self._accept(request)
        client_id = struct.unpack_from("<I", request.data, _OFF_DISCONNECT_CLIENT)[0]
        if client_id == 0:
            return self._fail_sync(request, Status.VERR_INVALID_PARAMETER, "client id 0")
        status = self.hgcm.disconnect(client_id)
        self._trace("hgcm_disconnect", address=request.address, client=client_id, status=int(status),
                    status_name=status_name(status))
        self._complete(request, status, lambda data: None)
        return False

    def _hgcm_call(self, request: _Request) -> bool:
        self._accept(request)
        try:
            parsed = parse_call(bytes(request.data), RequestType(request.type), self._memory)
        except RtError as error:
            return self._fail_sync(request, error.status, str(error))
        if parsed.client_id == 0:
            return self._fail_sync(request, Status.VERR_INVALID_PARAMETER, "client id 0")
        client = self.hgcm.client(parsed.client_id)
        if client is None:
            return self._fail_sync(request, Status.VERR_HGCM_INVALID_CLIENT_ID,
                                   f"client {parsed.client_id} is not connected")
        call = HgcmCall(parsed.client_id, parsed.function, [p.svc for p in parsed.params],
                        VMMDEV_REQUESTOR_LEGACY)
        self.pending[request.address] = call
        call.on_complete = lambda done, status: self._complete_call(request, parsed, status)
        self._trace("hgcm_call", address=request.address, client=parsed.client_id,
                    service=client.service.name, function=parsed.function,
                    function_name=client.service.function_name(parsed.function),
                    parms=len(parsed.params), type=_type_name(request.type))
        outcome = client.service.call(call)
        if outcome is not ASYNC:
            call.complete(int(outcome))
        return False

    def _complete_call(self, request: _Request, parsed: ParsedCall, status: int) -> None:
        self._complete(request, status, lambda data: write_back(parsed, data, self._memory))

    def _complete(self, request: _Request, status: int, apply: Callable[[bytearray], None]) -> None:
        """Finish an accepted command: outputs and result written, DONE set last."""
        self.pending.pop(request.address, None)
        memory = self._memory
        data = bytearray(memory.read(request.address, request.size))
        current_type = struct.unpack_from("<I", data, _OFF_TYPE)[0]
        if current_type in (request.type, RequestType.HGCMCancel):
            apply(data)
        else:
            status = Status.VERR_INVALID_PARAMETER
        struct.pack_into("<i", data, _OFF_HGCM_RESULT, int(status))
        memory.write(request.address, data)
        flags = memory.read_u32(request.address + _OFF_HGCM_FLAGS)
        memory.write_u32(request.address + _OFF_HGCM_FLAGS, flags | VBOX_HGCM_REQ_DONE)
        self._trace("hgcm_complete", address=request.address, type=_type_name(request.type),
                    result=int(status), result_name=status_name(status))


def _type_name(request_type: int) -> str:
    try:
        return RequestType(request_type).name
    except ValueError:
        return f"type {request_type}"
