"""The VMMDev device: request ports, the request-type table, events and HGCM.

An OUT of a request's guest-physical address to the request port (base + 0) makes the
device process it exactly as VirtualBox's ``vmmdevRequestHandler`` does (reference §2.3):
header read and checked (size, version, size limit, additions gate), the whole request
copied once into a private buffer, dispatched by type with the type's size rule, and
written back.  HGCM connect, disconnect and call follow §4.9: VINF_HGCM_ASYNC_EXECUTE is
written into the guest's header before parsing; synchronous failures write the request
back with the error; accepted commands complete through ``CommandQueue``.  A 32-bit IN
from base + 8 is the fast IRQ acknowledge.  The VMMDevMemory page lives in an MMIO region.
"""

from __future__ import annotations

import ctypes
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from hgcmlab.devices.vmmdev.abi import (
    HGCM_CONNECT_NAME,
    HGCM_FLAGS,
    HGCM_PARM_VALUE64,
    HGCM_RESULT,
    HOST_FEATURES,
    HOST_VERSION_BUILD,
    HOST_VERSION_MAJOR,
    HOST_VERSION_MINOR,
    HOST_VERSION_REVISION,
    REQUEST_HEAD,
    REQUEST_RC,
    REQUEST_REQUESTOR,
    VMMDEV_MAX_VMMDEVREQ_SIZE,
    VMMDEV_PCI_DEVICE_ID,
    VMMDEV_PCI_VENDOR,
    VMMDEV_PORT_RANGE_SIZE,
    VMMDEV_REQUEST_HEADER_VERSION,
    VMMDEV_REQUESTOR_LEGACY,
    VBOXGSTINFO2_F_REQUESTOR_INFO,
    HgcmCancel,
    HgcmCancel2,
    HgcmConnect,
    HgcmDisconnect,
    HgcmLocationType,
    ReportGuestInfo,
    ReportGuestInfo2,
    ReportGuestStatus,
    ReqCtlGuestFilterMask,
    ReqEvents,
    ReqGuestCapabilities2,
    ReqHeartbeat,
    ReqHostTime,
    ReqHostVersion,
    ReqHypervisorInfo,
    ReqLogString,
    ReqMouseStatus,
    ReqSessionId,
    RequestHeader,
    RequestType,
)
from hgcmlab.devices.vmmdev.abi import HgcmCall as HgcmCallLayout
from hgcmlab.devices.vmmdev.abi import (
    HGCM_CALL_OFF_PARMS,
    HGCM_PARM_OFF_VALUE,
    VBOX_HGCM_REQ_DONE,
    VMMDEV_EVENT_HGCM,
    VMMDEV_RAM_SIZE,
    HgcmParmDirection,
    HgcmParmType,
)
from hgcmlab.devices.vmmdev.commands import (
    COMMAND_HEAP_COST,
    DEFAULT_HEAP_BUDGET,
    Command,
    CommandQueue,
    heap_category,
)
from hgcmlab.devices.vmmdev.config import CYCLES_PER_MILLISECOND, VMMDevConfig
from hgcmlab.devices.vmmdev.events import EventState
from hgcmlab.devices.vmmdev.hgcm import HgcmHost
from hgcmlab.devices.vmmdev.direct import DirectCall, call_header, plan
from hgcmlab.devices.vmmdev.params import MAX_CALL_HEAP, ParsedParam, describe, parse_call
from hgcmlab.devices.vmmdev.physical import PhysicalMemory
from hgcmlab.machine.device import AttachContext, MmioRegion, PortRange
from hgcmlab.machine.pci import PciIdentity
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.runtime.status import RtError, Status, status_name
from hgcmlab.services.hgcm import ASYNC, DirectBuffer, HgcmCall, HgcmService, SvcParm, SvcParmType

_HEADER_SIZE = ctypes.sizeof(RequestHeader)

#: Request types VirtualBox accepts before the guest reported its additions version.
_ALLOWED_BEFORE_GUEST_INFO = frozenset({
    RequestType.ReportGuestInfo, RequestType.ReportGuestInfo2,
    RequestType.WriteCoreDump, RequestType.GetHostVersion,
})
#: HeartbeatConfigure's default interval (2 s in nanoseconds).
_HEARTBEAT_INTERVAL_NS = 2_000_000_000
#: What the device answers GetSessionId with (deterministic; VirtualBox uses a random id).
SESSION_ID = 0x48474D4C41420001
_GUEST_INFO2_SUFFIX = re.compile(
    rb"(?:_(?:RC|BETA|ALPHA)(?:[0-9]{1,3})?)?(?:_[A-Za-z0-9()\[\]{}+\-.,]+)?")


@dataclass(frozen=True)
class _SizeRule:
    """A request type's size check: exactly or at least ``size`` bytes."""

    size: int
    exact: bool

    def accepts(self, size: int) -> bool:
        return size == self.size if self.exact else size >= self.size


def _exactly(layout: type[ctypes.Structure]) -> _SizeRule:
    return _SizeRule(ctypes.sizeof(layout), True)


def _at_least(layout: type[ctypes.Structure]) -> _SizeRule:
    return _SizeRule(ctypes.sizeof(layout), False)


_S = TypeVar("_S", bound=ctypes.Structure)
# Plain ints and members for the direct path's per-call work (enum operators are slow).
_BIT32 = int(HgcmParmType.Bit32)
_TO_HOST = int(HgcmParmDirection.TO_HOST)
_SVC_PTR, _SVC_U32, _SVC_U64 = SvcParmType.PTR, SvcParmType.U32, SvcParmType.U64


@dataclass
class HgcmCounts:
    """What a run's summary reports, counted by the device whether or not anyone traces:
    one ``connects`` per ``hgcm_connect`` event and one ``calls[function name]`` per
    ``hgcm_call`` event the device emits (or would emit, with a sink attached)."""

    connects: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    #: Sum of ``calls`` (read by the progress display's thread without iterating).
    total_calls: int = 0

    def count_call(self, function_name: str, times: int = 1) -> None:
        self.calls[function_name] += times
        self.total_calls += times


@dataclass
class _Request:
    """A request being processed: where it lives and the device's private copy."""

    address: int
    type: int
    data: bytearray

    @property
    def size(self) -> int:
        return len(self.data)

    def set_rc(self, status: int) -> None:
        REQUEST_RC.pack(self.data, 0, int(status))

    def answer(self, status: int) -> bool:
        """Set ``rc`` and ask for the request to be written back."""
        self.set_rc(status)
        return True

    def view(self, layout: type[_S]) -> _S:
        """The private copy seen through a request structure (writes go to the copy)."""
        return layout.from_buffer(self.data)


class VMMDevDevice:
    """VirtualBox's VMM device (I/O BAR0, VMMDevMemory MMIO) with its HGCM host.

    ``config.require_guest_info``: when True, every request except GetHostVersion,
    ReportGuestInfo(2) and WriteCoreDump answers VERR_NOT_SUPPORTED until the guest sent a
    successful ReportGuestInfo, as VirtualBox does; the default lets small guest programs
    skip that handshake (docs/deviations.md).

    ``heap_budget``: bytes of host heap (bounce buffers plus ``COMMAND_HEAP_COST`` per
    command) the commands in flight of each requestor heap category may use together;
    beyond it a connect, disconnect or call fails with VERR_NO_MEMORY (VirtualBox's
    HGCMHeapBudget* settings; docs/security.md).
    """

    name = "vmmdev"

    def __init__(self, hgcm: HgcmHost | None = None, *, config: VMMDevConfig | None = None,
                 require_guest_info: bool | None = None, heap_budget: int = DEFAULT_HEAP_BUDGET) -> None:
        self.config = config or VMMDevConfig()
        self.require_guest_info = (self.config.require_guest_info if require_guest_info is None
                                   else require_guest_info)
        self.hgcm = hgcm or HgcmHost()
        self._context: AttachContext | None = None
        self._guest_info: tuple[int, int] | None = None
        self.guest_info2: bytes = b""
        self.guest_capabilities = 0
        self.mouse_features = 0
        self.heartbeat_enabled = False
        self.hgcm_enabled = False
        self.requestor_info = False
        self.mmio_base: int | None = None
        #: HGCM calls the direct path took so far (devices/vmmdev/direct.py), for tests and
        #: benchmarks; every other call went through bounce buffers.
        self.direct_calls = 0
        self.counts = HgcmCounts()
        #: Calls the native accelerator took that ``counts`` does not hold yet (it sets this).
        self.native_unfolded: Callable[[], int] = lambda: 0
        self.events = EventState(self._set_line, self._trace)
        self.commands = CommandQueue(lambda: self._physical, lambda: self._context.clock if self._context else None,
                                     self.config.timing, lambda: self.events.notify(VMMDEV_EVENT_HGCM), self._trace,
                                     self._wants, heap_budget=heap_budget)
        self._handlers: dict[int, tuple[_SizeRule, Callable[[_Request], bool]]] = {
            RequestType.GetMouseStatus: (_exactly(ReqMouseStatus), self._get_mouse_status),
            RequestType.SetMouseStatus: (_exactly(ReqMouseStatus), self._set_mouse_status),
            RequestType.GetHostVersion: (_exactly(ReqHostVersion), self._get_host_version),
            RequestType.Idle: (_at_least(RequestHeader), self._idle),
            RequestType.GetHostTime: (_exactly(ReqHostTime), self._get_host_time),
            RequestType.GetHypervisorInfo: (_exactly(ReqHypervisorInfo), self._get_hypervisor_info),
            RequestType.AcknowledgeEvents: (_exactly(ReqEvents), self._acknowledge_events),
            RequestType.CtlGuestFilterMask: (_exactly(ReqCtlGuestFilterMask), self._ctl_guest_filter_mask),
            RequestType.ReportGuestInfo: (_exactly(ReportGuestInfo), self._report_guest_info),
            RequestType.SetGuestCapabilities: (_exactly(ReqGuestCapabilities2), self._set_guest_capabilities),
            RequestType.ReportGuestInfo2: (_exactly(ReportGuestInfo2), self._report_guest_info2),
            RequestType.ReportGuestStatus: (_exactly(ReportGuestStatus), self._report_guest_status),
            RequestType.HGCMConnect: (_at_least(HgcmConnect), self._hgcm_connect),
            RequestType.HGCMDisconnect: (_at_least(HgcmDisconnect), self._hgcm_disconnect),
            RequestType.HGCMCall32: (_at_least(HgcmCallLayout), self._hgcm_call),
            RequestType.HGCMCall64: (_at_least(HgcmCallLayout), self._hgcm_call),
            RequestType.HGCMCancel: (_at_least(HgcmCancel), self._hgcm_cancel),
            RequestType.HGCMCancel2: (_at_least(HgcmCancel2), self._hgcm_cancel2),
            RequestType.LogString: (_at_least(ReqLogString), self._log_string),
            RequestType.GetSessionId: (_exactly(ReqSessionId), self._get_session_id),
            RequestType.GuestHeartbeat: (_at_least(RequestHeader), self._guest_heartbeat),
            RequestType.HeartbeatConfigure: (_exactly(ReqHeartbeat), self._heartbeat_configure),
        }

    @property
    def additions_ok(self) -> bool:
        """Whether the guest reported a supported additions interface version."""
        return self.events.additions_ok

    @property
    def pending(self) -> dict[int, Command]:
        """Accepted HGCM commands not completed yet, by request address."""
        return self.commands.pending

    def register_service(self, service: HgcmService) -> None:
        """Make an HGCM service reachable by guests."""
        self.hgcm.register(service)

    # --- device plugin interface ----------------------------------------------------------

    def port_ranges(self) -> list[PortRange]:
        return [
            PortRange("request", 0, 1, frozenset({4}), cost=self.config.request_port_cycles),
            PortRange("request_fast", 8, 1, frozenset({4}), cost=self.config.request_port_cycles),
        ]

    def mmio_regions(self) -> list[MmioRegion]:
        return [MmioRegion("vmmdev_memory", VMMDEV_RAM_SIZE)]

    def pci_identity(self) -> PciIdentity:
        """VMMDev's PCI identity (reference §1.1): 80EE:CAFE, class 08/80, BAR0 the I/O
        ports, BAR1 the VMMDevMemory MMIO, INTA# routed to the device's IRQ."""
        return PciIdentity(VMMDEV_PCI_VENDOR, VMMDEV_PCI_DEVICE_ID, 0x08, 0x80, interrupt_pin=1,
                           interrupt_line=self.config.irq, io_bar=(0, VMMDEV_PORT_RANGE_SIZE),
                           mmio_bars=((1, "vmmdev_memory"),))

    def attach(self, context: AttachContext) -> None:
        self._context = context
        # The regions are mapped once, at attach (a memory BAR move does not remap them).
        self._physical_space = PhysicalMemory(context.memory, list(context.mmio.values()))
        self.hgcm.attach_tracer(context.tracer)
        if context.clock is not None:
            self.commands.register_events(context.clock.scheduler)
        region = context.mmio.get("vmmdev_memory")
        if region is not None:
            self.mmio_base, memory = region
            self.events.init_memory(memory)

    # --- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Close every registered service (their host files and handles)."""
        for service in self.hgcm.services:
            service.close()

    def save_state(self) -> dict:
        """Guest-reported state, events, commands in flight, HGCM clients and each
        service's ``save_state`` by name (plain data)."""
        return {"guest_info": None if self._guest_info is None else list(self._guest_info),
                "guest_info2": self.guest_info2, "guest_capabilities": self.guest_capabilities,
                "mouse_features": self.mouse_features, "heartbeat_enabled": self.heartbeat_enabled,
                "hgcm_enabled": self.hgcm_enabled, "requestor_info": self.requestor_info,
                "direct_calls": self.direct_calls, "connects": self.counts.connects,
                "calls": sorted(self.counts.calls.items()), "events": self.events.save_state(),
                "commands": self.commands.save_state(), "hgcm": self.hgcm.save_state(),
                "services": {service.name: service.save_state() for service in self.hgcm.services}}

    def load_state(self, state: dict) -> list[str]:
        """Restore ``save_state``'s output; each service gets the calls it had kept (by
        tag).  Returns the services' problem lines."""
        info = state["guest_info"]
        self._guest_info = None if info is None else (int(info[0]), int(info[1]))
        self.guest_info2 = bytes(state["guest_info2"])
        self.guest_capabilities, self.mouse_features = int(state["guest_capabilities"]), int(state["mouse_features"])
        self.heartbeat_enabled, self.hgcm_enabled = bool(state["heartbeat_enabled"]), bool(state["hgcm_enabled"])
        self.requestor_info, self.direct_calls = bool(state["requestor_info"]), int(state["direct_calls"])
        self.counts = HgcmCounts(int(state["connects"]), Counter(dict(state["calls"])))
        self.counts.total_calls = sum(self.counts.calls.values())
        self.events.load_state(state["events"])
        self.hgcm.load_state(state["hgcm"])
        self.commands.load_state(state["commands"])
        problems = []
        for service in self.hgcm.services:
            kept = {command.call.tag: command.call for command in self.commands.in_flight()
                    if command.call is not None and not command.call.completed
                    and command.service_name == service.name}
            saved = state["services"].get(service.name)
            if saved is None:
                problems.append(f"service {service.name}: not in the snapshot")
                continue
            problems += [f"service {service.name}: {line}" for line in service.load_state(saved, kept)]
        return problems

    def io_read(self, range_name: str, offset: int, size: int) -> int:
        if range_name == "request_fast" and self.events.additions_ok and not self.events.legacy:
            return self.events.acknowledge()
        return 0xFFFFFFFF

    def io_write(self, range_name: str, offset: int, size: int, value: int) -> None:
        self.handle_request(value)

    def calls_so_far(self) -> int:
        """Every HGCM call so far, the native accelerator's not yet in ``counts`` included
        (it only reads: safe from another thread while the guest runs)."""
        return self.counts.total_calls + self.native_unfolded()

    def count_native_calls(self, service: HgcmService, calls: dict[int, int], *, direct: int) -> None:
        """Count calls of ``service`` the native accelerator completed
        (devices/vmmdev/accel.py), by function number; ``direct`` of them are the direct
        path's kind and count as such (``direct_calls``)."""
        self.direct_calls += direct
        for function, times in calls.items():
            if times:
                self.counts.count_call(service.function_name(function), times)

    @property
    def attached_memory(self) -> GuestMemory:
        """Guest RAM as the machine attached it."""
        return self._memory

    @property
    def _memory(self) -> GuestMemory:
        assert self._context is not None, "VMMDev used before attach"
        return self._context.memory

    @property
    def _physical(self) -> PhysicalMemory:
        """Guest RAM and this device's MMIO memory, where HGCM buffers are copied from and to
        (PGMPhysRead/-Write reach MMIO2 pages too)."""
        assert self._context is not None, "VMMDev used before attach"
        return self._physical_space

    def _trace(self, kind: str, **fields: object) -> None:
        if self._context is not None:
            self._context.tracer.emit(kind, **fields)

    def _wants(self, kind: str) -> bool:
        """Whether anyone listens to events of ``kind`` (expensive fields are built only then)."""
        return self._context is not None and self._context.tracer.wants(kind)

    def _set_line(self, level: bool) -> None:
        if self._context is not None:
            self._context.set_irq(self.config.irq, level)

    def _now(self) -> int:
        clock = self._context.clock if self._context else None
        return clock.now() if clock is not None else 0

    # --- request port ---------------------------------------------------------------------

    def handle_request(self, address: int) -> None:
        """Process the request at guest-physical ``address`` (the value OUT to the port)."""
        memory = self._memory
        address &= 0xFFFFFFFF
        if not memory.contains(address, _HEADER_SIZE):
            self._trace("vmmdev_request_dropped", address=address, reason="header outside guest RAM")
            return
        header = bytearray(memory.read(address, _HEADER_SIZE))
        size, version, request_type = REQUEST_HEAD.unpack(header)
        if size < _HEADER_SIZE:
            self._trace("vmmdev_request_dropped", address=address, type=_type_name(request_type), size=size,
                        reason="size below the header size")
            return
        if version != VMMDEV_REQUEST_HEADER_VERSION:
            self._trace("vmmdev_request_dropped", address=address, type=_type_name(request_type), size=size,
                        reason=f"header version {version:#x}")
            return
        if size > VMMDEV_MAX_VMMDEVREQ_SIZE:
            self._answer_header(address, header, Status.VERR_NOT_SUPPORTED, request_type, size)
            return
        if (self.require_guest_info and not self.events.additions_ok
                and request_type not in _ALLOWED_BEFORE_GUEST_INFO):
            self._answer_header(address, header, Status.VERR_NOT_SUPPORTED, request_type, size)
            return
        if not memory.contains(address, size):
            # VirtualBox would read unassigned memory here; we refuse the request instead.
            self._answer_header(address, header, Status.VERR_INVALID_PARAMETER, request_type, size,
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
        if self._wants("vmmdev_request"):
            rc = REQUEST_RC.get(request.data) if write else memory.read_i32(address + REQUEST_RC.offset)
            self._trace("vmmdev_request", address=address, type=_type_name(request_type), size=size, rc=rc,
                        rc_name=status_name(rc))

    def _answer_header(self, address: int, header: bytearray, status: int, request_type: int, size: int,
                       reason: str = "") -> None:
        REQUEST_RC.pack(header, 0, int(status))
        self._memory.write(address, header)
        self._trace("vmmdev_request", address=address, type=_type_name(request_type), size=size, rc=int(status),
                    rc_name=status_name(status), header_only=True, reason=reason)

    # --- simple requests ------------------------------------------------------------------

    def _get_host_version(self, request: _Request) -> bool:
        body = request.view(ReqHostVersion)
        body.major, body.minor, body.build = HOST_VERSION_MAJOR, HOST_VERSION_MINOR, HOST_VERSION_BUILD
        body.revision, body.features = HOST_VERSION_REVISION, HOST_FEATURES
        return request.answer(Status.VINF_SUCCESS)

    def _idle(self, request: _Request) -> bool:
        # VirtualBox halts the vCPU until the next interrupt and leaves rc untouched.
        if self._context is not None:
            self._context.request_halt()
        return True

    def _get_host_time(self, request: _Request) -> bool:
        request.view(ReqHostTime).time = self.config.epoch_ms + self._now() // CYCLES_PER_MILLISECOND
        return request.answer(Status.VINF_SUCCESS)

    def _get_hypervisor_info(self, request: _Request) -> bool:
        body = request.view(ReqHypervisorInfo)
        body.hypervisorStart, body.hypervisorSize = 0, 0
        return request.answer(Status.VINF_SUCCESS)

    def _get_mouse_status(self, request: _Request) -> bool:
        body = request.view(ReqMouseStatus)
        body.mouseFeatures, body.pointerXPos, body.pointerYPos = self.mouse_features & 0x1FF, 0, 0
        return request.answer(Status.VINF_SUCCESS)

    def _set_mouse_status(self, request: _Request) -> bool:
        self.mouse_features = request.view(ReqMouseStatus).mouseFeatures
        return request.answer(Status.VINF_SUCCESS)

    def _acknowledge_events(self, request: _Request) -> bool:
        events = self.events.acknowledge()
        if not self.events.legacy:
            request.view(ReqEvents).events = events
        return request.answer(Status.VINF_SUCCESS)

    def _ctl_guest_filter_mask(self, request: _Request) -> bool:
        body = request.view(ReqCtlGuestFilterMask)
        # The guest can never mask HGCM events.
        self.events.change_filter(body.u32OrMask, body.u32NotMask & ~VMMDEV_EVENT_HGCM)
        return request.answer(Status.VINF_SUCCESS)

    def _report_guest_info(self, request: _Request) -> bool:
        body = request.view(ReportGuestInfo)
        info = (body.interfaceVersion, body.osType)
        if info != self._guest_info:
            self._guest_info = info
            version = body.interfaceVersion
            self.events.guest_reported(version, version >> 16 == 1 and version & 0xFFFF <= 4)
        if not self.events.additions_ok:
            return request.answer(Status.VERR_VERSION_MISMATCH)
        self.events.lower_line()
        return request.answer(Status.VINF_SUCCESS)

    def _report_guest_info2(self, request: _Request) -> bool:
        body = request.view(ReportGuestInfo2)
        name = bytes(request.data[ReportGuestInfo2.szName.offset:])
        status = _check_guest_info2(body.additionsMajor, body.additionsMinor, body.additionsBuild, name)
        if status == Status.VINF_SUCCESS:
            self.guest_info2 = bytes(request.data[_HEADER_SIZE:])
            self.requestor_info = bool(body.additionsFeatures & VBOXGSTINFO2_F_REQUESTOR_INFO)
            self.events.lower_line()
        return request.answer(status)

    def _report_guest_status(self, request: _Request) -> bool:
        body = request.view(ReportGuestStatus)
        if not 1 <= body.facility <= 0x7FFFFFFE:
            return request.answer(Status.VERR_INVALID_PARAMETER)
        if body.status > 0xFFFF:
            return request.answer(Status.VERR_OUT_OF_RANGE)
        return request.answer(Status.VINF_SUCCESS)

    def _set_guest_capabilities(self, request: _Request) -> bool:
        body = request.view(ReqGuestCapabilities2)
        self.guest_capabilities = (self.guest_capabilities | body.u32OrMask) & ~body.u32NotMask & 0xFFFFFFFF
        return request.answer(Status.VINF_SUCCESS)

    def _log_string(self, request: _Request) -> bool:
        # Handled as a debug build of the device does (release builds answer NOT_IMPLEMENTED).
        if request.data[-1] != 0:
            return request.answer(Status.VERR_INVALID_PARAMETER)
        text = bytes(request.data[ReqLogString.szString.offset:]).split(b"\0", 1)[0]
        if self._context is not None:
            for line in text.decode("utf-8", errors="replace").splitlines() or [""]:
                self._context.log_line(line)
        return request.answer(Status.VINF_SUCCESS)

    def _get_session_id(self, request: _Request) -> bool:
        request.view(ReqSessionId).idSession = SESSION_ID
        return request.answer(Status.VINF_SUCCESS)

    def _guest_heartbeat(self, request: _Request) -> bool:
        return request.answer(Status.VINF_SUCCESS)

    def _heartbeat_configure(self, request: _Request) -> bool:
        body = request.view(ReqHeartbeat)
        self.heartbeat_enabled = bool(body.fEnabled)
        body.cNsInterval = _HEARTBEAT_INTERVAL_NS
        return request.answer(Status.VINF_SUCCESS)

    # --- HGCM -----------------------------------------------------------------------------

    def _accept(self, request: _Request) -> None:
        """Mark the command as being executed: rc = VINF_HGCM_ASYNC_EXECUTE in guest memory."""
        self._memory.write_i32(request.address + REQUEST_RC.offset, Status.VINF_HGCM_ASYNC_EXECUTE)

    def _requestor(self, request: _Request) -> int:
        return REQUEST_REQUESTOR.get(request.data) if self.requestor_info else VMMDEV_REQUESTOR_LEGACY

    def _enable_hgcm(self) -> None:
        if not self.hgcm_enabled:
            self.hgcm_enabled = True
            self.events.change_filter(VMMDEV_EVENT_HGCM, 0)

    def _fail_sync(self, request: _Request, status: int, why: str) -> bool:
        request.set_rc(status)
        self._trace("hgcm_rejected", address=request.address, type=_type_name(request.type),
                    status=int(status), status_name=status_name(status), reason=why)
        return True

    def _new_command(self, request: _Request, kind: str, heap: int = 0) -> Command | None:
        """A command for ``request`` charged to its heap category (COMMAND_HEAP_COST plus
        ``heap`` buffer bytes); None when the budget cannot take it (VMMDevHGCM.cpp:
        vmmdevR3HgcmCmdAlloc returns NULL, the request fails with VERR_NO_MEMORY)."""
        command = Command(request.address, request.size, request.type, kind)
        if not self.commands.reserve(command, heap_category(self._requestor(request)), COMMAND_HEAP_COST + heap):
            return None
        return command

    def _start(self, command: Command, *, byte_count: int = 0, declared_cycles: int | None = None) -> Command:
        self.commands.submit(command, byte_count, declared_cycles)
        self._enable_hgcm()
        return command

    def _over_budget(self, request: _Request) -> bool:
        return self._fail_sync(request, Status.VERR_NO_MEMORY, "HGCM heap budget exhausted")

    def _hgcm_connect(self, request: _Request) -> bool:
        self._accept(request)
        request.view(HgcmConnect).loc.type = HgcmLocationType.LocalHost_Existing
        raw_name = HGCM_CONNECT_NAME.get(request.data)
        if b"\0" not in raw_name:
            return self._fail_sync(request, Status.VERR_INVALID_PARAMETER, "service name not NUL-terminated")
        name = raw_name.split(b"\0", 1)[0].decode("latin-1")
        command = self._new_command(request, "connect")
        if command is None:
            return self._over_budget(request)
        status, client_id = self.hgcm.connect(name, self._requestor(request))
        self.counts.connects += 1
        self._trace("hgcm_connect", address=request.address, service=name, status=int(status),
                    status_name=status_name(status), client=client_id)
        command.client_id = client_id
        self.commands.host_done(self._start(command), status)
        return False

    def _hgcm_disconnect(self, request: _Request) -> bool:
        self._accept(request)
        client_id = request.view(HgcmDisconnect).u32ClientID
        if client_id == 0:
            return self._fail_sync(request, Status.VERR_INVALID_PARAMETER, "client id 0")
        command = self._new_command(request, "disconnect")
        if command is None:
            return self._over_budget(request)
        command.client_id = client_id
        # The service disconnects the client only after the calls it submitted before: its
        # thread handles messages in order (HGCM.cpp: HGCMService::DisconnectClient sends
        # SVC_MSG_DISCONNECT behind the client's SVC_MSG_GUESTCALLs), and the service
        # completes the calls it kept (e.g. waits) while disconnecting.  So every earlier
        # call of the client completes, results and DONE written, before the disconnect
        # does; nothing is written for the client once its disconnect is DONE.
        status = self.hgcm.disconnect(client_id)
        self._trace("hgcm_disconnect", address=request.address, client=client_id, status=int(status),
                    status_name=status_name(status))
        self._start(command)
        latest: int | None = None
        for earlier in list(self.commands.of_client(client_id)):
            if earlier.status is None:
                self.commands.orphan(earlier)  # the service kept it past the disconnect
            elif earlier.due is not None:
                latest = earlier.due if latest is None else max(latest, earlier.due)
        self.commands.host_done(command, status, not_before=latest)
        return False

    def _hgcm_call(self, request: _Request) -> bool:
        self._accept(request)
        if self.config.direct_buffers and self._direct_call(request):
            return False
        category = heap_category(self._requestor(request))
        translate = self._context.page_translator() if self._context is not None else None
        try:
            parsed = parse_call(bytes(request.data), request.type, self._physical,
                                self.commands.heap_available(category) - COMMAND_HEAP_COST, translate)
        except RtError as error:
            return self._fail_sync(request, error.status, str(error))
        if translate is not None and self._wants("linaddr_translation"):
            for param in parsed.params:
                if param.target is not None and param.target.translation is not None:
                    self._trace("linaddr_translation", address=request.address, parameter=param.index,
                               runs=[[linear, physical, length] for linear, physical, length
                                     in param.target.translation])
        if parsed.client_id == 0:
            return self._fail_sync(request, Status.VERR_INVALID_PARAMETER, "client id 0")
        client = self.hgcm.client(parsed.client_id)
        if client is None:
            return self._fail_sync(request, Status.VERR_HGCM_INVALID_CLIENT_ID,
                                   f"client {parsed.client_id} is not connected")
        admitted = self.hgcm.admit_call(client, (c.call for c in self.commands.pending.values()))
        if admitted < 0:
            return self._fail_sync(request, admitted, f"client {parsed.client_id} has too many pending calls")
        command = self._new_command(request, "call", parsed.heap)
        if command is None:
            return self._over_budget(request)
        call = HgcmCall(parsed.client_id, parsed.function, [p.svc for p in parsed.params],
                        self._requestor(request))
        byte_count = sum(p.guest_size for p in parsed.params)
        command.client_id, command.function, command.call, command.parsed = (
            parsed.client_id, parsed.function, call, parsed)
        self._start(command, byte_count=byte_count,
                    declared_cycles=client.service.function_cycles(parsed.function))
        call.tag = command.serial
        call.on_complete = self.commands.completion_for(command)
        command.service_name = client.service.name
        command.function_name = client.service.function_name(parsed.function)
        self.counts.count_call(command.function_name)
        if self._wants("hgcm_call"):
            self._trace("hgcm_call", address=request.address, client=parsed.client_id,
                        service=command.service_name, function=parsed.function,
                        function_name=command.function_name, parms=len(parsed.params),
                        bytes=byte_count, type=_type_name(request.type),
                        params=[describe(param, returned=False) for param in parsed.params])
        outcome = client.service.call(call)
        if outcome is not ASYNC:
            call.complete(int(outcome))
        return False

    def _direct_call(self, request: _Request) -> bool:
        """Run the call with its buffer as a view of guest memory when that cannot make a
        difference to anyone (devices/vmmdev/direct.py); False, having done nothing, when
        the general path must take it.

        Beyond the request's shape it takes only calls the general path would accept and
        complete inside this `out`: a connected client under its call limit, a function
        its service declares, synchronous timing, no command pending at this address, room
        in the heap budget.  It then does what the general path does, in its order
        (commands.py: submit, host_done, _complete): HGCM events enabled, ``hgcm_call``
        traced, the service called, the cost charged, the buffer's tail zeroed where a
        bounce buffer would have been copied back, the changed values and the result
        written, DONE last, ``hgcm_complete`` traced, the HGCM event raised.
        """
        data = request.data
        client_id, function, _ = call_header(data)
        client = self.hgcm.client(client_id)
        if client is None:
            return False
        service = client.service
        spec = service.direct_buffers.get(function)
        commands = self.commands
        address = request.address
        if spec is None or commands.timing.is_async(function) or address in commands.pending:
            return False
        context = self._context
        assert context is not None, "VMMDev used before attach"
        memory = context.memory
        direct = plan(data, request.type, address, memory.size, spec, context.page_translator())
        if direct is None:
            return False
        requestor = self._requestor(request)
        heap = COMMAND_HEAP_COST + direct.size
        if direct.size > MAX_CALL_HEAP or heap > commands.heap_available(heap_category(requestor)):
            return False
        pending = commands.pending
        if self.hgcm.admit_call(client, (command.call for command in pending.values()) if pending else ()) < 0:
            return False
        # Decided: from here on the call runs exactly once, on this path.
        self.direct_calls += 1
        self._enable_hgcm()
        wants = context.tracer.wants
        trace_completion = wants("hgcm_complete")
        submitted = self._now() if trace_completion else 0
        cost = commands.timing.cost(function, direct.size, service.function_cycles(function))
        function_name = service.function_name(function)
        # Checked against the budget as the general path would, but not charged: no bounce
        # buffer is allocated, and the call is over before anything else could be charged.
        window = memory.window(direct.address, direct.size)
        try:
            buffer_index = direct.buffer_index
            params = [SvcParm(_SVC_PTR, 0, window, direct.size) if index == buffer_index  # type: ignore[arg-type]
                      else SvcParm(_SVC_U32 if guest_type == _BIT32 else _SVC_U64, value)
                      for index, (guest_type, value) in enumerate(direct.params)]
            self.counts.count_call(function_name)
            if wants("hgcm_call"):
                self._trace("hgcm_call", address=address, client=client_id, service=service.name,
                            function=function, function_name=function_name,
                            parms=len(params), bytes=direct.size, type=_type_name(request.type),
                            params=[describe(param, returned=False) for param in _described(direct, params)])
            outcome = service.call(HgcmCall(client_id, function, params, requestor))
            if outcome is ASYNC:
                raise RuntimeError(f"service {service.name} answered ASYNC for function {function}, "
                                   "which it declared in direct_buffers")
            status = int(outcome)
            commands.charge(cost, "hgcm call")
            self._complete_direct(memory, address, direct, spec, params, status)
            if trace_completion:
                self._trace("hgcm_complete", address=address, command="call", cancelled=False,
                            result=status, result_name=status_name(status), latency=self._now() - submitted,
                            client=client_id, function=function, function_name=function_name,
                            service=service.name,
                            params=[describe(param, returned=True) for param in _described(direct, params)])
        finally:
            window.release()
        self.events.notify(VMMDEV_EVENT_HGCM)
        return True

    @staticmethod
    def _complete_direct(memory: GuestMemory, address: int, direct: DirectCall, spec: DirectBuffer,
                         params: list[SvcParm], status: int) -> None:
        """A direct call's write-back: what params.py: write_back and commands.py: _complete
        would change, and only that (the rest of the request is as the guest left it)."""
        if spec.stored is not None and not direct.direction & _TO_HOST:
            # The general path copies its whole zero-filled bounce buffer back.
            stored = params[spec.stored].value if status >= 0 else 0
            stored = min(max(stored, 0), direct.size)
            if stored < direct.size:
                memory.fill(direct.address + stored, direct.size - stored, 0)
        values = address + HGCM_CALL_OFF_PARMS + HGCM_PARM_OFF_VALUE
        buffer_index, parm_size = direct.buffer_index, direct.parm_size
        # Found in one comprehension: most calls change one value or none.
        changed = [(index, guest_type, parm.value)
                   for index, ((guest_type, value), parm) in enumerate(zip(direct.params, params))
                   if parm.value != value and index != buffer_index]
        for index, guest_type, new in changed:
            offset = values + index * parm_size
            if guest_type == _BIT32:
                memory.write_u32(offset, new)
            else:
                memory.write(offset, HGCM_PARM_VALUE64.packed(new & 0xFFFFFFFFFFFFFFFF))
        memory.write_i32(address + HGCM_RESULT.offset, status)
        flags = memory.read_u32(address + HGCM_FLAGS.offset)
        memory.write_u32(address + HGCM_FLAGS.offset, flags | VBOX_HGCM_REQ_DONE)

    def _cancel_command(self, address: int) -> bool:
        command = self.commands.pending.get(address)
        if command is None:
            return False
        first = not command.cancelled
        self.commands.cancel(address)
        if first and command.call is not None and not command.call.completed:
            client = self.hgcm.client(command.call.client_id)
            if client is not None:
                client.service.cancel(command.call)
        return True

    def _hgcm_cancel2(self, request: _Request) -> bool:
        target = request.view(HgcmCancel2).physReqToCancel
        if target in (0, 0xFFFFFFFF):
            request.set_rc(Status.VERR_INVALID_PARAMETER)
        else:
            request.set_rc(Status.VINF_SUCCESS if self._cancel_command(target) else Status.VERR_NOT_FOUND)
        return True

    def _hgcm_cancel(self, request: _Request) -> bool:
        # Legacy cancel: the guest resubmits the original buffer retyped to HGCMCancel; the
        # device looks up this very address and remaps "not found" to INVALID_PARAMETER.
        found = self._cancel_command(request.address)
        request.set_rc(Status.VINF_SUCCESS if found else Status.VERR_INVALID_PARAMETER)
        return True


def _check_guest_info2(major: int, minor: int, build: int, name: bytes) -> int:
    """ReportGuestInfo2's validation, in VirtualBox's order."""
    if major < 3:
        return Status.VERR_INVALID_PARAMETER
    if major > 255 or minor > 255 or build > 65535:
        return Status.VERR_OUT_OF_RANGE
    if b"\0" not in name:
        return Status.VERR_INVALID_PARAMETER
    text = name.split(b"\0", 1)[0]
    prefix = f"{major}.{minor}.{build}".encode()
    if not text.startswith(prefix):
        return Status.VERR_INVALID_PARAMETER
    suffix = text[len(prefix):]
    new_enough = (major, minor, build) >= (4, 1, 50)
    if suffix and not _GUEST_INFO2_SUFFIX.fullmatch(suffix) and new_enough:
        return Status.VERR_INVALID_PARAMETER
    return Status.VINF_SUCCESS


def _described(direct: DirectCall, params: list[SvcParm]) -> list[ParsedParam]:
    """A direct call's parameters as the general path's parsed parameters (for the trace
    events, which then carry the same fields on both paths)."""
    described = []
    for index, ((guest_type, _value), svc) in enumerate(zip(direct.params, params)):
        if index == direct.buffer_index:
            described.append(ParsedParam(index, HgcmParmType(guest_type), svc, direct.direction, direct.size))
        else:
            described.append(ParsedParam(index, HgcmParmType(guest_type), svc))
    return described


def _type_name(request_type: int) -> str:
    try:
        return RequestType(request_type).name
    except ValueError:
        return f"type {request_type}"
