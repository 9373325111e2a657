"""Events, the IRQ line, the MMIO page and the load-time requests of a guest driver, no CPU."""

from __future__ import annotations

import struct

import pytest

from hgcmlab.devices.vmmdev import builder
from hgcmlab.devices.vmmdev.abi import (
    MMIO_OFF_HAVE_EVENTS,
    VMMDEV_EVENT_HGCM,
    VMMDEV_EVENT_MOUSE_POSITION_CHANGED,
    VMMDEV_MEMORY_SIZE,
    RequestType,
)
from hgcmlab.devices.vmmdev.config import CYCLES_PER_MILLISECOND, DEFAULT_EPOCH_MS, VMMDevConfig
from hgcmlab.devices.vmmdev.device import SESSION_ID, VMMDevDevice
from hgcmlab.machine.clock import Clock, Scheduler
from hgcmlab.machine.device import AttachContext
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.tracing import ListSink, Tracer
from hgcmlab.runtime.status import Status

REQ = 0x2000


class EventRig:
    """VMMDev with an MMIO page, an IRQ line recorder and a settable clock."""

    def __init__(self) -> None:
        self.memory = GuestMemory(1024 * 1024)
        self.mmio = GuestMemory(4 * 1024 * 1024)
        self.mmio.fill(0, 64, 0xEE)
        self.sink = ListSink()
        tracer = Tracer()
        tracer.add_sink(self.sink)
        self.cycle = 0
        self.charged = 0
        self.clock = Clock(lambda: self.cycle + self.charged, self._charge, Scheduler(), tracer.emit)
        self.irq: list[tuple[int, bool]] = []
        self.halts = 0
        self.log: list[str] = []
        self.device = VMMDevDevice(config=VMMDevConfig())
        self.device.attach(AttachContext(self.memory, tracer, log_line=self.log.append, clock=self.clock,
                                         set_irq=lambda irq, level: self.irq.append((irq, level)),
                                         request_halt=self._halt, mmio={"vmmdev_memory": (0xE0000000, self.mmio)}))

    def _charge(self, cycles: int) -> None:
        self.charged += cycles

    def _halt(self) -> None:
        self.halts += 1

    def request(self, request_type: int, size: int, body: bytes = b"") -> bytes:
        data = builder.poisoned(size, request_type)
        data[24:24 + len(body)] = body
        self.memory.write(REQ, data)
        self.device.io_write("request", 0, 4, REQ)
        return self.memory.read(REQ, size)

    def report_guest_info(self, version: int = 0x00010004) -> int:
        return builder.rc_of(self.request(RequestType.ReportGuestInfo, 32, struct.pack("<II", version, 0x53100)))

    def ack(self) -> int:
        after = self.request(RequestType.AcknowledgeEvents, 28, b"\0" * 4)
        assert builder.rc_of(after) == Status.VINF_SUCCESS
        return struct.unpack_from("<I", after, 24)[0]

    def filter(self, or_mask: int, not_mask: int) -> None:
        after = self.request(RequestType.CtlGuestFilterMask, 32, struct.pack("<II", or_mask, not_mask))
        assert builder.rc_of(after) == Status.VINF_SUCCESS

    @property
    def have_events(self) -> int:
        return self.mmio.read(MMIO_OFF_HAVE_EVENTS, 1)[0]


@pytest.fixture
def rig() -> EventRig:
    return EventRig()


def test_mmio_page_is_initialised_with_size_and_version(rig: EventRig) -> None:
    size, version, have_events = struct.unpack_from("<IIB", rig.mmio.read(0, 9))
    assert (size, version, have_events) == (VMMDEV_MEMORY_SIZE, 1, 0)
    assert rig.device.mmio_base == 0xE0000000


def test_events_before_guest_info_accumulate_without_irq(rig: EventRig) -> None:
    rig.filter(VMMDEV_EVENT_MOUSE_POSITION_CHANGED, 0)
    rig.device.events.notify(VMMDEV_EVENT_MOUSE_POSITION_CHANGED)
    assert rig.irq == [] and rig.have_events == 0
    assert rig.report_guest_info() == Status.VINF_SUCCESS
    assert rig.irq == [(11, False)], "ReportGuestInfo forces the line low"


def test_filtered_event_raises_irq_and_acknowledge_clears_it(rig: EventRig) -> None:
    rig.report_guest_info()
    rig.filter(VMMDEV_EVENT_MOUSE_POSITION_CHANGED, 0)
    rig.irq.clear()
    rig.device.events.notify(VMMDEV_EVENT_MOUSE_POSITION_CHANGED | 0x40)
    assert rig.irq == [(11, True)] and rig.have_events == 1
    assert rig.ack() == VMMDEV_EVENT_MOUSE_POSITION_CHANGED
    assert rig.irq[-1] == (11, False) and rig.have_events == 0
    assert rig.device.events.pending == 0x40, "unfiltered events stay pending"
    assert rig.ack() == 0


def test_filter_change_while_events_pending_is_deferred_to_the_next_acknowledge(rig: EventRig) -> None:
    rig.report_guest_info()
    rig.filter(0x1, 0)
    rig.device.events.notify(0x1 | 0x4)
    rig.filter(0x4, 0x1)
    assert rig.device.events.filter == 0x1 and rig.device.events.new_filter_valid
    assert rig.ack() == 0x4, "the new filter applies at this acknowledge"
    assert rig.device.events.filter == 0x4


def test_guest_cannot_mask_hgcm_events(rig: EventRig) -> None:
    rig.report_guest_info()
    rig.filter(VMMDEV_EVENT_HGCM, 0)
    rig.filter(0, 0xFFFFFFFF)
    assert rig.device.events.filter == VMMDEV_EVENT_HGCM


def test_fast_irq_acknowledge_port(rig: EventRig) -> None:
    assert rig.device.io_read("request_fast", 0, 4) == 0xFFFFFFFF, "before additions report in"
    rig.report_guest_info()
    rig.filter(0x1, 0)
    rig.device.events.notify(0x1)
    assert rig.device.io_read("request_fast", 0, 4) == 0x1
    assert rig.have_events == 0 and rig.irq[-1] == (11, False)


def test_legacy_1_03_guest_gets_host_events_word(rig: EventRig) -> None:
    assert rig.report_guest_info(0x00010003) == Status.VINF_SUCCESS
    rig.mmio.write(12, struct.pack("<I", 0x1))
    rig.device.events.notify(0x1 | 0x2)
    assert struct.unpack_from("<I", rig.mmio.read(8, 4))[0] == 0x1
    assert rig.irq[-1] == (11, True)
    assert rig.device.io_read("request_fast", 0, 4) == 0xFFFFFFFF


def test_get_host_time_is_epoch_plus_virtual_time(rig: EventRig) -> None:
    rig.cycle = 5 * CYCLES_PER_MILLISECOND + 17
    after = rig.request(RequestType.GetHostTime, 32)
    assert builder.rc_of(after) == Status.VINF_SUCCESS
    assert struct.unpack_from("<Q", after, 24)[0] == DEFAULT_EPOCH_MS + 5


@pytest.mark.parametrize(("major", "minor", "build", "name", "expected"), [
    (6, 0, 0, b"6.0.0", Status.VINF_SUCCESS),
    (7, 0, 14, b"7.0.14_RC1", Status.VINF_SUCCESS),
    (7, 0, 14, b"7.0.14_OSE", Status.VINF_SUCCESS),
    (2, 0, 0, b"2.0.0", Status.VERR_INVALID_PARAMETER),
    (256, 0, 0, b"256.0.0", Status.VERR_OUT_OF_RANGE),
    (6, 0, 70000, b"6.0.70000", Status.VERR_OUT_OF_RANGE),
    (6, 0, 0, b"6.1.0", Status.VERR_INVALID_PARAMETER),
    (6, 0, 0, b"6.0.0 bad suffix", Status.VERR_INVALID_PARAMETER),
    (4, 0, 0, b"4.0.0 old suffix dropped", Status.VINF_SUCCESS),
    (6, 0, 0, b"6" * 128, Status.VERR_INVALID_PARAMETER),
])
def test_report_guest_info2_validation(rig: EventRig, major: int, minor: int, build: int, name: bytes,
                                        expected: Status) -> None:
    body = struct.pack("<HHIII", major, minor, build, 127566, 1) + name.ljust(128, b"\0")[:128]
    assert builder.rc_of(rig.request(RequestType.ReportGuestInfo2, 168, body)) == expected


def test_report_guest_info2_is_allowed_before_guest_info_in_strict_mode() -> None:
    rig = EventRig()
    rig.device.require_guest_info = True
    body = struct.pack("<HHIII", 6, 0, 0, 127566, 1) + b"6.0.0".ljust(128, b"\0")
    assert builder.rc_of(rig.request(RequestType.ReportGuestInfo2, 168, body)) == Status.VINF_SUCCESS
    assert builder.rc_of(rig.request(RequestType.GetHostTime, 32)) == Status.VERR_NOT_SUPPORTED


def test_requests_a_linux_driver_sends_at_load(rig: EventRig) -> None:
    assert builder.rc_of(rig.request(RequestType.SetGuestCapabilities, 32, struct.pack("<II", 0x5, 0))) == 0
    assert builder.rc_of(rig.request(RequestType.SetGuestCapabilities, 32, struct.pack("<II", 0, 0x1))) == 0
    assert rig.device.guest_capabilities == 0x4
    assert builder.rc_of(rig.request(RequestType.SetMouseStatus, 36, struct.pack("<I", 0xFFFF))) == 0
    mouse = rig.request(RequestType.GetMouseStatus, 36)
    assert struct.unpack_from("<Iii", mouse, 24) == (0x1FF, 0, 0)
    info = rig.request(RequestType.GetHypervisorInfo, 32)
    assert builder.rc_of(info) == 0 and struct.unpack_from("<II", info, 24) == (0, 0)
    heartbeat = rig.request(RequestType.HeartbeatConfigure, 36, struct.pack("<QB", 0, 1))
    assert struct.unpack_from("<Q", heartbeat, 24)[0] == 2_000_000_000 and rig.device.heartbeat_enabled
    assert builder.rc_of(rig.request(RequestType.GuestHeartbeat, 24)) == 0
    assert builder.rc_of(rig.request(RequestType.ReportGuestStatus, 36, struct.pack("<III", 20, 50, 0))) == 0
    assert builder.rc_of(rig.request(RequestType.ReportGuestStatus, 36, struct.pack("<III", 0, 50, 0))) == -2
    assert builder.rc_of(rig.request(RequestType.ReportGuestStatus, 36, struct.pack("<III", 20, 0x10000, 0))) == -54
    session = rig.request(RequestType.GetSessionId, 32)
    assert struct.unpack_from("<Q", session, 24)[0] == SESSION_ID


@pytest.mark.parametrize(("request_type", "size"), [
    (RequestType.GetHostTime, 36), (RequestType.AcknowledgeEvents, 32), (RequestType.CtlGuestFilterMask, 28),
    (RequestType.ReportGuestInfo2, 160), (RequestType.SetGuestCapabilities, 28), (RequestType.GetMouseStatus, 40),
    (RequestType.HeartbeatConfigure, 40), (RequestType.GetSessionId, 24),
])
def test_size_rules_reject_wrong_sizes(rig: EventRig, request_type: int, size: int) -> None:
    assert builder.rc_of(rig.request(request_type, size)) == Status.VERR_INVALID_PARAMETER


def test_log_string_becomes_guest_log_lines(rig: EventRig) -> None:
    after = rig.request(RequestType.LogString, 24 + 12, b"hello\nworld\0")
    assert builder.rc_of(after) == Status.VINF_SUCCESS
    assert rig.log == ["hello", "world"]
    unterminated = rig.request(RequestType.LogString, 30, b"abcdef")
    assert builder.rc_of(unterminated) == Status.VERR_INVALID_PARAMETER


def test_idle_halts_and_leaves_rc_untouched(rig: EventRig) -> None:
    after = rig.request(RequestType.Idle, 24)
    assert builder.rc_of(after) == -1 and rig.halts == 1


def test_request_port_access_costs_are_declared_on_the_port_range(rig: EventRig) -> None:
    ranges = {r.name: r for r in rig.device.port_ranges()}
    assert ranges["request"].cost == VMMDevConfig().request_port_cycles > 0
