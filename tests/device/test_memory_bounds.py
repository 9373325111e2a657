"""Host memory a guest can make the device use is released per call and bounded (issue 12).

Structural checks, no timing: object counts with the cyclic garbage collector off, traced
allocations (tracemalloc), resident pages, and the heap budget's statuses.
"""

from __future__ import annotations

import gc
import os
import struct
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev import builder
from hgcmlab.devices.vmmdev.abi import HgcmParmType
from hgcmlab.devices.vmmdev.builder import CallBuilder, Param
from hgcmlab.devices.vmmdev.commands import COMMAND_HEAP_COST, DEFAULT_HEAP_BUDGET, Command, HeapCategory
from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.devices.vmmdev.device import VMMDevDevice
from hgcmlab.devices.vmmdev.params import ParsedCall
from hgcmlab.machine.device import AttachContext
from hgcmlab.machine.boards import VBoxMachine, vbox_board
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.tracing import Tracer
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import ASYNC, HgcmCall, SvcParm
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCf, ShflCreateParms, ShflFn
from hgcmlab.services.sharedfolders import strings
from hgcmlab.services.sharedfolders.service import SharedFoldersService
from tests.device.conftest import REQUEST_ADDRESS, DeviceRig

MIB = 1024 * 1024
BUFFER = 0x40000
RC_OFFSET, FLAGS_OFFSET, RESULT_OFFSET = 12, 24, 28


@pytest.fixture
def collector_off() -> Iterator[None]:
    """Reference counting only: what a cycle would keep alive stays alive."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _alive(*types: type) -> int:
    return sum(1 for obj in gc.get_objects() if isinstance(obj, types))


def _resident_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _read_call(client: int, size: int, address: int = BUFFER) -> bytearray:
    call = CallBuilder(client, 1)
    call.add(Param.u32(7))
    call.add(Param.linaddr(address, size, HgcmParmType.LinAddr_Out))
    return call.build()


# --- per-call release ---------------------------------------------------------------------

def test_completed_calls_leave_no_command_call_or_buffer_alive(rig: DeviceRig, collector_off: None) -> None:
    """Each call used to be a reference cycle (command -> call -> completion closure ->
    command) holding its parameters and bounce buffers until a collection."""
    def fill(call: HgcmCall) -> int:
        call.params[1].buffer[:5] = b"hello"
        return Status.VINF_SUCCESS

    rig.service.behaviour = fill
    client = rig.connect()
    rig.service.calls = _Discard()  # keep no calls in the test service either
    baseline = _alive(Command, ParsedCall, HgcmCall, SvcParm)
    for _ in range(200):
        after = rig.submit(_read_call(client, 4096))
        assert struct.unpack_from("<i", after, RESULT_OFFSET)[0] == Status.VINF_SUCCESS
    assert rig.memory.read(BUFFER, 5) == b"hello"
    assert _alive(Command, ParsedCall, HgcmCall, SvcParm) == baseline
    assert rig.device.commands.heap_used == {category: 0 for category in HeapCategory}


class _Discard(list):  # type: ignore[type-arg]
    """A list that keeps nothing."""

    def append(self, item: object) -> None:
        pass


def test_asynchronously_completed_calls_are_released_too(collector_off: None) -> None:
    """With latency-modelled completion the scheduler holds the command until it fires,
    and nothing afterwards."""
    timing = HgcmTiming(call_cycles=500, byte_cycles=0, force_async=True)
    machine = vbox_board(64, 1 * MIB, vmmdev_config=VMMDevConfig(timing=timing))
    try:
        rig = _MachineRig(machine)
        client = rig.connect()
        baseline = _alive(Command, ParsedCall, HgcmCall)
        for index in range(50):
            rig.submit(_sf_query_mappings(client), REQUEST_ADDRESS + 0x1000 * (index % 4))
            if index % 4 == 3:
                rig.fire_due()
        rig.fire_due()
        assert not machine.vmmdev.pending
        assert _alive(Command, ParsedCall, HgcmCall) == baseline
    finally:
        machine.close()


# --- lazily committed out buffers ----------------------------------------------------------

class _MeasuringService(SharedFoldersService):
    """Shared Folders, sampling traced and resident memory right after each call's work
    (its bounce buffers are alive then)."""

    def __init__(self) -> None:
        super().__init__()
        self.samples: list[tuple[int, int]] = []

    def call(self, call: HgcmCall) -> int:
        outcome = super().call(call)
        self.samples.append((tracemalloc.get_traced_memory()[0], _resident_bytes()))
        return outcome  # type: ignore[return-value]


def test_a_128_mib_read_of_a_10_byte_file_commits_pages_not_128_mib(tmp_path: Path) -> None:
    (tmp_path / "small.txt").write_bytes(b"0123456789")
    memory = GuestMemory(1 * MIB)
    service = _MeasuringService()
    device = VMMDevDevice()
    device.register_service(service)
    device.attach(AttachContext(memory, Tracer()))
    try:
        assert service.add_mapping("share", str(tmp_path)) == 0
        client = _connect(device, memory, "VBoxSharedFolders")
        root, handle = _open(service, client, "share", "small.txt")
        size = 128 * MIB
        call = CallBuilder(client, ShflFn.READ)
        call.add(Param.u32(root))
        call.add(Param.u64(handle))
        call.add(Param.u64(0))
        call.add(Param.u32(size))
        call.add(Param.linaddr(BUFFER, size, HgcmParmType.LinAddr_Out))
        resident_before = _resident_bytes()
        tracemalloc.start()
        try:
            traced_before = tracemalloc.get_traced_memory()[0]
            after = _submit(device, memory, call.build())
            traced_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert struct.unpack_from("<i", after, RESULT_OFFSET)[0] == Status.VINF_SUCCESS
        assert struct.unpack_from("<I", after, 44 + 3 * 16 + 4)[0] == 10, "cb: what the file had"
        assert memory.read(BUFFER, 12) == b"0123456789\0\0"
        traced_in_call, resident_in_call = service.samples[-1]
        assert traced_peak - traced_before < 1 * MIB
        assert traced_in_call - traced_before < 1 * MIB
        # Guest RAM is 1 MiB: everything beyond it is written nowhere; the bounce buffer
        # had committed only the page the READ wrote.
        assert resident_in_call - resident_before < 16 * MIB
    finally:
        device.hgcm.disconnect(client)
        service.close()


# --- the heap budget ----------------------------------------------------------------------

def _budget_rig(budget: int) -> DeviceRig:
    rig = DeviceRig()
    rig.device = VMMDevDevice(heap_budget=budget)
    rig.device.register_service(rig.service)
    rig.device.attach(AttachContext(rig.memory, rig.tracer))
    return rig


def test_calls_beyond_the_heap_budget_fail_with_no_memory_until_budget_returns() -> None:
    """VMMDevHGCM.cpp: vmmdevR3HgcmCallMemAllocEx fails a buffer beyond the category's
    remaining cbHeapBudget, the call then fails synchronously with VERR_NO_MEMORY;
    vmmdevR3HgcmCmdFree gives the command's cost back when it completes."""
    rig = _budget_rig(2 * COMMAND_HEAP_COST + 100 * 1024)
    kept: list[HgcmCall] = []
    rig.service.behaviour = lambda call: (kept.append(call), ASYNC)[1]
    client = rig.connect()
    first = rig.submit(_read_call(client, 60 * 1024), 0x2000)
    assert struct.unpack_from("<i", first, RC_OFFSET)[0] == Status.VINF_HGCM_ASYNC_EXECUTE
    second = rig.submit(_read_call(client, 60 * 1024), 0x3000)
    assert struct.unpack_from("<i", second, RC_OFFSET)[0] == Status.VERR_NO_MEMORY
    assert struct.unpack_from("<I", second, FLAGS_OFFSET)[0] == 0, "no DONE: a synchronous failure"
    assert len(kept) == 1, "the service never saw the call"
    small = rig.submit(_read_call(client, 30 * 1024), 0x4000)
    assert struct.unpack_from("<i", small, RC_OFFSET)[0] == Status.VINF_HGCM_ASYNC_EXECUTE
    assert rig.device.commands.heap_used[HeapCategory.KERNEL] == 2 * COMMAND_HEAP_COST + 90 * 1024
    kept[0].complete(Status.VINF_SUCCESS)
    kept[1].complete(Status.VINF_SUCCESS)
    assert rig.device.commands.heap_used[HeapCategory.KERNEL] == 0
    again = rig.submit(_read_call(client, 60 * 1024), 0x3000)
    assert struct.unpack_from("<i", again, RC_OFFSET)[0] == Status.VINF_HGCM_ASYNC_EXECUTE


def test_connect_beyond_the_heap_budget_fails_with_no_memory() -> None:
    """vmmdevR3HgcmConnect: no command memory -> VERR_NO_MEMORY, the service is not asked."""
    rig = _budget_rig(COMMAND_HEAP_COST - 1)
    after = rig.submit(builder.connect(rig.service.name))
    assert struct.unpack_from("<i", after, RC_OFFSET)[0] == Status.VERR_NO_MEMORY
    assert rig.service.connected == []


def test_hostile_128_mib_reads_are_bounded_by_the_default_budget() -> None:
    """A guest keeping 128 MiB READs in flight gets VERR_NO_MEMORY once the default budget
    (DEFAULT_HEAP_BUDGET per category) is used up, instead of growing the host."""
    rig = DeviceRig()
    rig.service.behaviour = lambda call: ASYNC
    client = rig.connect()
    accepted = 0
    statuses = []
    for index in range(8):
        after = rig.submit(_read_call(client, 128 * MIB), 0x2000 + 0x100 * index)
        status = struct.unpack_from("<i", after, RC_OFFSET)[0]
        statuses.append(status)
        accepted += status == Status.VINF_HGCM_ASYNC_EXECUTE
    assert accepted == DEFAULT_HEAP_BUDGET // (128 * MIB + COMMAND_HEAP_COST)
    assert statuses[accepted:] == [Status.VERR_NO_MEMORY] * (8 - accepted)


def test_budget_failure_comes_after_the_parameter_checks() -> None:
    """Bounce buffers are allocated (and charged) only once every parameter is valid
    (vmmdevR3HgcmCallFetchGuestParms before vmmdevR3HgcmInitHostParameters)."""
    rig = _budget_rig(COMMAND_HEAP_COST + 1024)
    client = rig.connect()
    call = CallBuilder(client, 1)
    call.add(Param.linaddr(BUFFER, 64 * 1024, HgcmParmType.LinAddr_Out))
    call.add(Param(0xFFFF, 0, 0))
    after = rig.submit(call.build())
    assert struct.unpack_from("<i", after, RC_OFFSET)[0] == Status.VERR_INVALID_PARAMETER


# --- disconnect with calls in flight --------------------------------------------------------

def test_calls_the_service_completes_at_disconnect_are_written_before_the_disconnect(rig: DeviceRig) -> None:
    kept: list[HgcmCall] = []
    rig.service.behaviour = lambda call: (kept.append(call), ASYNC)[1]
    client = rig.connect()

    def disconnect(client_id: int) -> None:
        for call in kept:
            call.complete(Status.VERR_CANCELLED)

    rig.service.disconnect = disconnect  # type: ignore[method-assign]
    rig.submit(_read_call(client, 16), 0x3000)
    rig.submit(builder.disconnect(client), 0x4000)
    completions = [(e.fields["address"], e.fields["result"]) for e in rig.sink.of_kind("hgcm_complete")]
    assert completions[-2:] == [(0x3000, Status.VERR_CANCELLED), (0x4000, Status.VINF_SUCCESS)]


def test_a_call_the_service_keeps_past_the_disconnect_is_never_written(rig: DeviceRig) -> None:
    kept: list[HgcmCall] = []
    rig.service.behaviour = lambda call: (kept.append(call), ASYNC)[1]
    client = rig.connect()
    before = rig.submit(_read_call(client, 16), 0x3000)
    rig.submit(builder.disconnect(client), 0x4000)
    assert [e.fields["address"] for e in rig.sink.of_kind("hgcm_orphaned")] == [0x3000]
    kept[0].params[1].buffer[:4] = b"late"
    kept[0].complete(Status.VINF_SUCCESS)
    assert rig.memory.read(0x3000, len(before)) == before, "request untouched: no result, no DONE"
    assert rig.memory.read(BUFFER, 4) != b"late"


# --- helpers --------------------------------------------------------------------------------

class _MachineRig:
    """Requests poked into a machine's VMMDev without running the CPU; due completions fired
    by hand."""

    def __init__(self, machine: VBoxMachine) -> None:
        self.machine = machine

    def submit(self, request: bytes | bytearray, address: int = REQUEST_ADDRESS) -> bytes:
        self.machine.memory.write(address, request)
        self.machine.vmmdev.handle_request(address)
        return self.machine.memory.read(address, len(request))

    def fire_due(self) -> None:
        self.machine.cpu.charge(1_000_000)
        for event in self.machine.scheduler.pop_due(self.machine.clock.now()):
            self.machine.scheduler.fire(event)

    def connect(self) -> int:
        self.submit(builder.connect("VBoxSharedFolders"))
        self.fire_due()
        return self.machine.memory.read_u32(REQUEST_ADDRESS + 164)


def _sf_query_mappings(client: int) -> bytearray:
    call = CallBuilder(client, ShflFn.QUERY_MAPPINGS)
    call.add(Param.u32(0))
    call.add(Param.u32(4))
    call.add(Param.linaddr(BUFFER, 32, HgcmParmType.LinAddr_Out))
    return call.build()


def _submit(device: VMMDevDevice, memory: GuestMemory, request: bytes | bytearray) -> bytes:
    memory.write(REQUEST_ADDRESS, request)
    device.handle_request(REQUEST_ADDRESS)
    return memory.read(REQUEST_ADDRESS, len(request))


def _connect(device: VMMDevDevice, memory: GuestMemory, name: str) -> int:
    after = _submit(device, memory, builder.connect(name))
    assert struct.unpack_from("<i", after, RESULT_OFFSET)[0] == Status.VINF_SUCCESS
    return struct.unpack_from("<I", after, 164)[0]


def _open(service: SharedFoldersService, client: int, share: str, name: str) -> tuple[int, int]:
    """MAP_FOLDER and CREATE (open for reading) straight on the service, as host setup."""
    def call(function: int, *params: SvcParm) -> int:
        return service.call(HgcmCall(client, int(function), list(params)))  # type: ignore[return-value]

    assert call(ShflFn.SET_UTF8) == 0
    root = SvcParm.u32(0)
    assert call(ShflFn.MAP_FOLDER, SvcParm.ptr(strings.build(share, True)), root, SvcParm.u32(ord("/")),
                SvcParm.u32(1)) == 0
    parms = ShflCreateParms()
    parms.Handle = SHFL_HANDLE_NIL
    parms.CreateFlags = ShflCf.ACCESS_READ | ShflCf.ACT_OPEN_IF_EXISTS | ShflCf.ACT_FAIL_IF_NEW
    parm = SvcParm.ptr(bytes(parms))
    assert call(ShflFn.CREATE, SvcParm.u32(root.value), SvcParm.ptr(strings.build(name, True)), parm) == 0
    handle = ShflCreateParms.from_buffer_copy(bytes(parm.buffer)).Handle
    assert handle != SHFL_HANDLE_NIL
    return root.value, handle


def test_the_machine_passes_its_heap_budget_to_the_device() -> None:
    machine = vbox_board(64, 1 * MIB, hgcm_heap_budget=5 * MIB)
    try:
        assert machine.vmmdev.commands.heap_available(HeapCategory.USER) == 5 * MIB
        assert VBoxMachine.__init__.__kwdefaults__["hgcm_heap_budget"] == DEFAULT_HEAP_BUDGET
    finally:
        machine.close()
