"""HGCMCancel and HGCMCancel2 (reference §4.10): before and after completion, unknown
requests, the legacy form, and cancel racing a timed completion."""

from __future__ import annotations

import struct

from hgcmlab.devices.vmmdev import builder
from hgcmlab.devices.vmmdev.abi import VBOX_HGCM_REQ_CANCELLED, VBOX_HGCM_REQ_DONE, RequestType
from hgcmlab.devices.vmmdev.builder import CallBuilder, Param
from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.devices.vmmdev.device import VMMDevDevice
from hgcmlab.machine.clock import Clock, Scheduler
from hgcmlab.machine.device import AttachContext
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.tracing import ListSink, Tracer
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import ASYNC, HgcmCall
from tests.device.conftest import REQUEST_ADDRESS, DeviceRig, ScriptedService

CANCEL_ADDRESS = 0x8000


def cancel2(rig: DeviceRig, target: int) -> int:
    request = builder.poisoned(28, RequestType.HGCMCancel2)
    struct.pack_into("<I", request, 24, target)
    return builder.rc_of(rig.submit(request, CANCEL_ADDRESS))


def pending_call(rig: DeviceRig) -> tuple[list[HgcmCall], bytes]:
    kept: list[HgcmCall] = []
    rig.service.behaviour = lambda call: kept.append(call) or ASYNC
    cancelled: list[HgcmCall] = []
    rig.service.cancel = cancelled.append  # type: ignore[method-assign]
    rig.cancelled_hints = cancelled  # type: ignore[attr-defined]
    call = CallBuilder(rig.connect(), 9)
    call.add(Param.u32(1))
    after = rig.submit(call.build())
    assert builder.rc_of(after) == Status.VINF_HGCM_ASYNC_EXECUTE and builder.flags_of(after) == 0
    return kept, after


def test_cancel2_before_completion_suppresses_every_write_back(rig: DeviceRig) -> None:
    kept, before = pending_call(rig)
    assert cancel2(rig, REQUEST_ADDRESS) == Status.VINF_SUCCESS
    assert rig.cancelled_hints == [kept[0]], "the service is told"  # type: ignore[attr-defined]
    events_before = len(rig.sink.of_kind("vmmdev_event"))
    kept[0].params[0].value = 99
    kept[0].complete(Status.VINF_SUCCESS)
    after = rig.memory.read(REQUEST_ADDRESS, len(before))
    assert after == before, "no result, no outputs, no DONE"
    assert len(rig.sink.of_kind("vmmdev_event")) == events_before, "no HGCM event either"
    assert rig.sink.of_kind("hgcm_complete")[-1].fields["cancelled"] is True


def test_cancel2_twice_before_completion_succeeds_both_times(rig: DeviceRig) -> None:
    pending_call(rig)
    assert cancel2(rig, REQUEST_ADDRESS) == Status.VINF_SUCCESS
    assert cancel2(rig, REQUEST_ADDRESS) == Status.VINF_SUCCESS
    assert len(rig.cancelled_hints) == 1  # type: ignore[attr-defined]


def test_cancel2_after_completion_is_not_found_and_the_result_stands(rig: DeviceRig) -> None:
    kept, _ = pending_call(rig)
    kept[0].complete(Status.VERR_FILE_NOT_FOUND)
    assert cancel2(rig, REQUEST_ADDRESS) == Status.VERR_NOT_FOUND
    done = rig.memory.read(REQUEST_ADDRESS, 32)
    assert builder.flags_of(done) == VBOX_HGCM_REQ_DONE and builder.result_of(done) == Status.VERR_FILE_NOT_FOUND


def test_cancel2_of_unknown_and_reserved_addresses(rig: DeviceRig) -> None:
    assert cancel2(rig, 0x12340) == Status.VERR_NOT_FOUND
    assert cancel2(rig, 0) == Status.VERR_INVALID_PARAMETER
    assert cancel2(rig, 0xFFFFFFFF) == Status.VERR_INVALID_PARAMETER


def test_cancel2_shorter_than_28_bytes_is_invalid(rig: DeviceRig) -> None:
    request = builder.poisoned(24, RequestType.HGCMCancel2)
    assert builder.rc_of(rig.submit(request, CANCEL_ADDRESS)) == Status.VERR_INVALID_PARAMETER


def test_legacy_cancel_resubmits_the_original_buffer(rig: DeviceRig) -> None:
    kept, before = pending_call(rig)
    retyped = bytearray(before)
    struct.pack_into("<I", retyped, 8, RequestType.HGCMCancel)
    struct.pack_into("<I", retyped, 24, VBOX_HGCM_REQ_CANCELLED)
    after = rig.submit(retyped)
    assert builder.rc_of(after) == Status.VINF_SUCCESS
    assert after[16:] == bytes(retyped[16:]), "the whole buffer is written back as submitted"
    kept[0].complete(Status.VINF_SUCCESS)
    assert builder.flags_of(rig.memory.read(REQUEST_ADDRESS, 32)) == VBOX_HGCM_REQ_CANCELLED, "no DONE"


def test_legacy_cancel_of_a_finished_request_is_invalid_parameter(rig: DeviceRig) -> None:
    kept, before = pending_call(rig)
    kept[0].complete(Status.VINF_SUCCESS)
    retyped = bytearray(rig.memory.read(REQUEST_ADDRESS, len(before)))
    struct.pack_into("<I", retyped, 8, RequestType.HGCMCancel)
    assert builder.rc_of(rig.submit(retyped)) == Status.VERR_INVALID_PARAMETER


class TimedRig(DeviceRig):
    """A rig whose device completes calls after a latency through a real scheduler."""

    def __init__(self, latency: int) -> None:
        self.memory = GuestMemory(1024 * 1024)
        self.sink = ListSink()
        self.tracer = Tracer()
        self.tracer.add_sink(self.sink)
        self.now = 0
        self.scheduler = Scheduler()
        clock = Clock(lambda: self.now, lambda cycles: None, self.scheduler, self.tracer.emit)
        timing = HgcmTiming(call_cycles=latency, byte_cycles=0, async_functions=frozenset({9}))
        self.device = VMMDevDevice(config=VMMDevConfig(timing=timing))
        self.service = ScriptedService()
        self.device.register_service(self.service)
        self.device.attach(AttachContext(self.memory, self.tracer, clock=clock))

    def advance_to(self, cycle: int) -> None:
        self.now = cycle
        for event in self.scheduler.pop_due(cycle):
            self.scheduler.fire(event)


def _timed_call(rig: TimedRig) -> bytes:
    call = CallBuilder(rig.connect(), 9)
    call.add(Param.u32(1))
    after = rig.submit(call.build())
    assert builder.rc_of(after) == Status.VINF_HGCM_ASYNC_EXECUTE and builder.flags_of(after) == 0
    return after


def test_timed_completion_then_cancel_loses_the_race() -> None:
    rig = TimedRig(latency=1000)
    _timed_call(rig)
    rig.advance_to(999)
    assert builder.flags_of(rig.memory.read(REQUEST_ADDRESS, 32)) == 0
    rig.advance_to(1000)
    assert builder.flags_of(rig.memory.read(REQUEST_ADDRESS, 32)) == VBOX_HGCM_REQ_DONE
    assert cancel2(rig, REQUEST_ADDRESS) == Status.VERR_NOT_FOUND


def test_cancel_at_the_completion_cycle_before_the_event_fires_wins() -> None:
    rig = TimedRig(latency=1000)
    before = _timed_call(rig)
    rig.now = 1000
    assert cancel2(rig, REQUEST_ADDRESS) == Status.VINF_SUCCESS
    rig.advance_to(1000)
    assert rig.memory.read(REQUEST_ADDRESS, len(before)) == before
