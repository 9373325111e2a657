"""Per-function costs declared in functions.py, and what the VMMDev charges for them."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev import builder
from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.devices.vmmdev.device import VMMDevDevice
from hgcmlab.machine.clock import Clock, Scheduler
from hgcmlab.machine.device import AttachContext
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.tracing import ListSink, Tracer
from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import SERVICE_NAME, ShflFn
from hgcmlab.services.sharedfolders.functions import FUNCTIONS
from hgcmlab.services.sharedfolders.service import SharedFoldersService

REQ, BUF = 0x2000, 0x8000


def test_every_guest_function_declares_a_positive_cost() -> None:
    svc = SharedFoldersService()
    try:
        for fn in ShflFn:
            cycles = svc.function_cycles(int(fn))
            assert isinstance(cycles, int) and cycles > 0, fn
            assert cycles == FUNCTIONS[fn].cycles
        for unknown in (0, 10, 30, 0xFFFFFFFF):
            assert svc.function_cycles(unknown) is None
    finally:
        svc.close()


def test_relative_weights() -> None:
    """The model's ordering: toggles < handle I/O < path work < copies < fsync."""
    c = {fn: FUNCTIONS[fn].cycles for fn in ShflFn}
    assert c[ShflFn.QUERY_FEATURES] < c[ShflFn.READ] == c[ShflFn.WRITE] < c[ShflFn.CREATE]
    assert c[ShflFn.CREATE] < c[ShflFn.COPY_FILE] < c[ShflFn.FLUSH]


class CostRig:
    """VMMDev with the Shared Folders service, a clock that adds up charges, and a tracer."""

    def __init__(self, share: Path, timing: HgcmTiming | None = None) -> None:
        self.memory = GuestMemory(1024 * 1024)
        self.sink = ListSink()
        tracer = Tracer()
        tracer.add_sink(self.sink)
        self.charged = 0
        clock = Clock(lambda: self.charged, self._charge, Scheduler(), tracer.emit)
        self.timing = timing or HgcmTiming()
        self.device = VMMDevDevice(config=VMMDevConfig(timing=self.timing))
        self.svc = SharedFoldersService()
        assert self.svc.add_mapping("sf", str(share)) == 0
        self.device.register_service(self.svc)
        self.device.attach(AttachContext(self.memory, tracer, clock=clock))
        after = self.submit(builder.connect(SERVICE_NAME))
        assert builder.flags_of(after) & 1 and builder.result_of(after) == Status.VINF_SUCCESS
        self.client = struct.unpack_from("<I", after, 164)[0]

    def _charge(self, cycles: int) -> None:
        self.charged += cycles

    def submit(self, request: bytearray) -> bytes:
        self.memory.write(REQ, request)
        self.device.io_write("request", 0, 4, REQ)
        return self.memory.read(REQ, len(request))

    def call(self, function: int, *params: builder.Param) -> tuple[int, list[int]]:
        """One synchronous call: (its HGCM result, the 'hgcm call' charges it caused)."""
        seen = len(self.sink.events)
        after = self.submit(builder.CallBuilder(self.client, function, params=list(params)).build())
        assert builder.flags_of(after) & 1, "synchronous call completes inside the out"
        charges = [e.fields["cycles"] for e in self.sink.events[seen:]
                   if e.kind == "charge" and e.fields["reason"] == "hgcm call"]
        return builder.result_of(after), charges


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[CostRig]:
    r = CostRig(tmp_path)
    yield r
    r.svc.close()


def test_call_charges_declared_cost_without_buffers(rig: CostRig) -> None:
    P = builder.Param
    assert rig.call(ShflFn.QUERY_FEATURES, P.u64(0), P.u32(0)) == (0, [FUNCTIONS[ShflFn.QUERY_FEATURES].cycles])
    # A failing call costs the same: the host did the work of refusing it.
    assert rig.call(ShflFn.FLUSH, P.u32(0), P.u64(0x123)) == (Status.VERR_INVALID_HANDLE,
                                                              [FUNCTIONS[ShflFn.FLUSH].cycles])


def test_call_charges_declared_cost_plus_bytes(rig: CostRig) -> None:
    P = builder.Param
    for size in (16, 64, 4096):
        result, charges = rig.call(ShflFn.QUERY_MAPPINGS, P.u32(0), P.u32(size // 8), P.linaddr(BUF, size))
        assert result == 0
        assert charges == [FUNCTIONS[ShflFn.QUERY_MAPPINGS].cycles + rig.timing.byte_cycles * size]


def test_unknown_function_gets_the_device_default(rig: CostRig) -> None:
    assert rig.call(99) == (Status.VERR_NOT_IMPLEMENTED, [rig.timing.call_cycles])


def test_timing_override_beats_the_declared_cost(tmp_path: Path) -> None:
    r = CostRig(tmp_path, HgcmTiming(function_cycles={int(ShflFn.QUERY_FEATURES): 7}, byte_cycles=2))
    try:
        P = builder.Param
        assert r.call(ShflFn.QUERY_FEATURES, P.u64(0), P.u32(0)) == (0, [7])
        assert r.call(ShflFn.QUERY_MAPPINGS, P.u32(0), P.u32(2), P.linaddr(BUF, 16)) == \
            (0, [FUNCTIONS[ShflFn.QUERY_MAPPINGS].cycles + 2 * 16])
    finally:
        r.svc.close()
