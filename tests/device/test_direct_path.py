"""The direct path of READ/WRITE (devices/vmmdev/direct.py) against the bounce-buffer path.

Every scenario runs twice on identical guest RAM and identical host files: once with
``VMMDevConfig.direct_buffers`` on, once off.  Guest RAM (every byte), the trace (every
event and field), the host file and the heap accounting must come out the same; the
device's ``direct_calls`` counter says which path a call took, so a scenario meant for the
direct path cannot pass by silently taking the general one.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.direct import DirectClient
from hgcmlab.devices.vmmdev import builder
from hgcmlab.devices.vmmdev.abi import PAGE_SIZE, HgcmParmDirection, HgcmParmType, RequestType
from hgcmlab.devices.vmmdev.commands import COMMAND_HEAP_COST
from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.devices.vmmdev.device import VMMDevDevice
from hgcmlab.devices.vmmdev.direct import plan
from hgcmlab.machine.device import AttachContext
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.tracing import ListSink, Tracer
from hgcmlab.runtime.faults import Fault, inject
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import DirectBuffer
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflFn
from hgcmlab.services.sharedfolders.service import SharedFoldersService

RAM = 1024 * 1024
REQUEST = 0x2000
BUFFER = 0x10000  # page aligned, far from the request
CONTENT = bytes(range(256)) * 40  # 10240 bytes
RW = int(ShflCf.ACCESS_READWRITE | ShflCf.ACT_OPEN_IF_EXISTS | ShflCf.ACT_CREATE_IF_NEW)
TO_HOST, FROM_HOST, BOTH = (int(HgcmParmDirection.TO_HOST), int(HgcmParmDirection.FROM_HOST),
                            int(HgcmParmDirection.BOTH))
CALL64, CALL32 = int(RequestType.HGCMCall64), int(RequestType.HGCMCall32)


class Rig:
    """A VMMDev with the real Shared Folders service on ``folder``, 1 MiB of RAM filled
    with a pattern, one client with the share mapped and ``f.bin`` open read-write."""

    def __init__(self, folder: Path, *, direct: bool, traced: bool = True, heap_budget: int | None = None,
                 timing: HgcmTiming | None = None) -> None:
        folder.mkdir()
        (folder / "f.bin").write_bytes(CONTENT)
        self.folder = folder
        self.memory = GuestMemory(RAM)
        self.memory.write(0, bytes((i * 7 + 3) & 0xFF for i in range(RAM)))
        self.tracer = Tracer()
        self.sink = ListSink()
        if traced:
            self.tracer.add_sink(self.sink)
        config = VMMDevConfig(direct_buffers=direct, timing=timing or HgcmTiming())
        kwargs = {} if heap_budget is None else {"heap_budget": heap_budget}
        self.device = VMMDevDevice(config=config, **kwargs)
        self.service = SharedFoldersService()
        self.service.add_mapping("s", str(folder))
        self.device.register_service(self.service)
        self.device.attach(AttachContext(self.memory, self.tracer))
        self.memory.write(REQUEST, builder.connect(self.service.name))
        self.device.io_write("request", 0, 4, REQUEST)
        self.client_id = struct.unpack_from("<I", self.memory.read(REQUEST, 168), 164)[0]
        api = DirectClient(self.service, self.client_id)  # the client's set-up, from the host side
        self.root = api.map("s")
        self.handle = api.create(self.root, "/f.bin", RW)

    def call(self, function: int, cb: int, buffer: Callable[[builder.CallBuilder], object], *,
             offset: int = 0, handle: int | None = None, request_type: int = CALL64,
             address: int = REQUEST) -> bytes:
        """Submit READ/WRITE(root, handle, offset, cb, buffer) at ``address``; the request
        as the guest sees it afterwards."""
        call = builder.CallBuilder(self.client_id, function, request_type)
        call.add(builder.Param.u32(self.root))
        call.add(builder.Param.u64(self.handle if handle is None else handle))
        call.add(builder.Param.u64(offset))
        call.add(builder.Param.u32(cb))
        buffer(call)
        data = call.build()
        self.memory.write(address, data)
        self.device.io_write("request", 0, 4, address)
        return self.memory.read(address, len(data))

    def outcome(self) -> tuple[bytes, list[str], bytes, dict]:
        """Everything a difference could show in: RAM, trace, host file, heap in use."""
        return (self.memory.read(0, RAM), [event.to_json() for event in self.sink.events],
                (self.folder / "f.bin").read_bytes(), dict(self.device.commands.heap_used))


def linaddr(address: int, size: int, param_type: int = HgcmParmType.LinAddr) -> Callable[[builder.CallBuilder], object]:
    return lambda call: call.add(builder.Param.linaddr(address, size, param_type))


def pages(size: int, flags: int, first: int = BUFFER, offset_first: int = 0,
          page_list: list[int] | None = None) -> Callable[[builder.CallBuilder], object]:
    count = (offset_first + size + PAGE_SIZE - 1) // PAGE_SIZE
    listed = page_list if page_list is not None else [first + i * PAGE_SIZE for i in range(count)]
    return lambda call: call.add_page_list(size, listed, flags=flags, offset_first=offset_first)


def both_paths(tmp_path: Path, scenario: Callable[[Rig], object], **rig_options: object) -> tuple[Rig, Rig]:
    """Run ``scenario`` on a direct and on a general rig; assert identical outcomes."""
    direct = Rig(tmp_path / "direct", direct=True, **rig_options)  # type: ignore[arg-type]
    general = Rig(tmp_path / "general", direct=False, **rig_options)  # type: ignore[arg-type]
    scenario(direct)
    scenario(general)
    assert general.device.direct_calls == 0
    mine, theirs = direct.outcome(), general.outcome()
    assert mine[2] == theirs[2], "host file differs"
    assert mine[1] == theirs[1], "trace differs"
    assert mine[0] == theirs[0], "guest RAM differs"
    assert mine[3] == theirs[3], "heap accounting differs"
    return direct, general


READ, WRITE = int(ShflFn.READ), int(ShflFn.WRITE)

#: (name, function, cb, buffer, offset, request type): shapes the direct path takes.
DIRECT_CASES = [
    ("read pages from-host, past EOF (tail zeroed)", READ, 3 * PAGE_SIZE, pages(3 * PAGE_SIZE, FROM_HOST), 9000, CALL64),
    ("read pages both, offset into first page", READ, 5000, pages(5000, BOTH, offset_first=100), 0, CALL64),
    ("read LinAddr (both), short at EOF", READ, 4000, linaddr(BUFFER + 3, 4000), 8000, CALL64),
    ("read LinAddr_Out", READ, 300, linaddr(BUFFER, 300, HgcmParmType.LinAddr_Out), 17, CALL64),
    ("read at EOF: nothing read, all zeroed", READ, 64, linaddr(BUFFER, 64, HgcmParmType.LinAddr_Out), 1 << 20, CALL64),
    ("read HGCMCall32 pages", READ, 6000, pages(6000, FROM_HOST), 1, CALL32),
    ("read HGCMCall32 LinAddr", READ, 100, linaddr(BUFFER, 100), 5, CALL32),
    ("write pages to-host, extends the file", WRITE, 3 * PAGE_SIZE, pages(3 * PAGE_SIZE, TO_HOST), 9000, CALL64),
    ("write pages both", WRITE, 100, pages(100, BOTH, offset_first=4000), 0, CALL64),
    ("write LinAddr", WRITE, 777, linaddr(BUFFER + 1, 777), 3, CALL64),
    ("write LinAddr_In", WRITE, 20, linaddr(BUFFER, 20, HgcmParmType.LinAddr_In), 10240, CALL64),
    ("write HGCMCall32 LinAddr_In", WRITE, 50, linaddr(BUFFER, 50, HgcmParmType.LinAddr_In), 0, CALL32),
]


@pytest.mark.parametrize("traced", [True, False])
@pytest.mark.parametrize("case", DIRECT_CASES, ids=[case[0] for case in DIRECT_CASES])
def test_direct_shapes_give_what_bounce_buffers_give(tmp_path: Path, case: tuple, traced: bool) -> None:
    _name, function, cb, buffer, offset, request_type = case
    direct, _general = both_paths(
        tmp_path, lambda rig: rig.call(function, cb, buffer, offset=offset, request_type=request_type),
        traced=traced)
    assert direct.device.direct_calls == 1


def test_short_read_zeroes_exactly_the_tail_of_a_from_host_buffer(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "r", direct=True)
    after = rig.call(READ, 200, linaddr(BUFFER, 300, HgcmParmType.LinAddr_Out), offset=10200)
    assert rig.device.direct_calls == 1
    assert builder.result_of(after) == Status.VINF_SUCCESS and builder.flags_of(after) & 1
    assert struct.unpack_from("<I", after, 44 + 3 * 16 + 4)[0] == 40  # cb := bytes read
    assert rig.memory.read(BUFFER, 300) == CONTENT[10200:] + bytes(260)  # 40 bytes, 260 zeros


def test_failed_read_zeroes_the_whole_from_host_buffer(tmp_path: Path) -> None:
    """VBoxSharedFoldersSvc.cpp: svcCall SHFL_FN_READ fails; the device still copies the
    (zero-filled) bounce buffer back (VMMDevHGCM.cpp: vmmdevR3HgcmCompleteCallRequest)."""
    def scenario(rig: Rig) -> None:
        after = rig.call(READ, 100, pages(100, FROM_HOST), handle=0x12345)
        assert builder.result_of(after) == Status.VERR_INVALID_HANDLE
        after = rig.call(READ, 200, linaddr(BUFFER + 500, 100, HgcmParmType.LinAddr_Out))
        assert builder.result_of(after) == Status.VERR_INVALID_HANDLE  # cb > buffer (quirk 7)
    direct, _ = both_paths(tmp_path, scenario)
    assert direct.device.direct_calls == 2
    assert direct.memory.read(BUFFER, 100) == bytes(100)


def test_only_changed_fields_are_written_back(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "r", direct=True)
    call = builder.CallBuilder(rig.client_id, WRITE)
    for param in (builder.Param.u32(rig.root), builder.Param.u64(rig.handle), builder.Param.u64(4),
                  builder.Param.u32(8)):
        call.add(param)
    call.add(builder.Param.linaddr(BUFFER, 8, HgcmParmType.LinAddr_In))
    request = call.build()
    rig.memory.write(REQUEST, request)
    rig.device.io_write("request", 0, 4, REQUEST)
    after = bytearray(rig.memory.read(REQUEST, len(request)))
    assert rig.device.direct_calls == 1
    expected = bytearray(request)
    struct.pack_into("<i", expected, 12, Status.VINF_HGCM_ASYNC_EXECUTE)  # rc, set on acceptance
    struct.pack_into("<Ii", expected, 24, 1, Status.VINF_SUCCESS)  # DONE, result
    struct.pack_into("<Q", expected, 44 + 2 * 16 + 4, 12)  # offset := 4 + 8 written
    assert after == expected
    assert (rig.folder / "f.bin").read_bytes()[4:12] == rig.memory.read(BUFFER, 8)


#: Shapes the direct path leaves to the general one; the outcome must still be the same.
GENERAL_CASES = [
    ("write from-host-only pages: zeros go to the host", WRITE, 100, pages(100, FROM_HOST)),
    ("write LinAddr_Out: zeros go to the host", WRITE, 100, linaddr(BUFFER, 100, HgcmParmType.LinAddr_Out)),
    ("read to-host-only pages: nothing comes back", READ, 100, pages(100, TO_HOST)),
    ("read LinAddr_In: nothing comes back", READ, 100, linaddr(BUFFER, 100, HgcmParmType.LinAddr_In)),
    ("pages not consecutive", READ, 2 * PAGE_SIZE, pages(2 * PAGE_SIZE, FROM_HOST, page_list=[BUFFER + PAGE_SIZE, BUFFER])),
    ("page entry not page aligned", READ, 100, pages(100, FROM_HOST, page_list=[BUFFER + 8])),
    ("page list shorter than cb", READ, 2 * PAGE_SIZE, pages(2 * PAGE_SIZE, FROM_HOST, page_list=[BUFFER])),
    ("page list with invalid flags", READ, 100, pages(100, 4)),
    ("LinAddr running past RAM", READ, 2 * PAGE_SIZE, linaddr(RAM - PAGE_SIZE, 2 * PAGE_SIZE)),
    ("pages beyond RAM", WRITE, PAGE_SIZE, pages(PAGE_SIZE, TO_HOST, first=RAM)),
    ("buffer overlapping the request", READ, 64, linaddr(REQUEST + 40, 64)),
    ("zero-byte buffer", READ, 0, linaddr(BUFFER, 0)),
    ("cb above 128 MiB", READ, 0x08000001, linaddr(BUFFER, 0x08000001)),
    ("contiguous page list", READ, 100, lambda call: call.add_page_list(100, [BUFFER], flags=FROM_HOST,
                                                                        param_type=HgcmParmType.ContiguousPageList)),
    ("embedded buffer", WRITE, 4, lambda call: call.add_embedded(b"abcd", flags=TO_HOST)),
]


@pytest.mark.parametrize("case", GENERAL_CASES, ids=[case[0] for case in GENERAL_CASES])
def test_unusual_shapes_take_the_general_path(tmp_path: Path, case: tuple) -> None:
    _name, function, cb, buffer = case
    direct, _ = both_paths(tmp_path, lambda rig: rig.call(function, cb, buffer))
    assert direct.device.direct_calls == 0


def test_a_list_like_the_last_consecutive_one_but_for_one_entry_takes_the_general_path(tmp_path: Path) -> None:
    """The direct plan keeps the bytes of the last consecutive run it checked; a later list
    with the same first page and count but another last entry must not pass for it."""
    size = 3 * PAGE_SIZE
    broken = [BUFFER, BUFFER + PAGE_SIZE, BUFFER + 3 * PAGE_SIZE]

    def scenario(rig: Rig) -> None:
        rig.call(READ, size, pages(size, FROM_HOST))
        rig.call(READ, size, pages(size, FROM_HOST, page_list=broken))
        rig.call(READ, size, pages(size, FROM_HOST))

    direct, _ = both_paths(tmp_path, scenario)
    assert direct.device.direct_calls == 2


def test_a_wrong_parameter_count_gets_the_services_status_on_either_path(tmp_path: Path) -> None:
    def scenario(rig: Rig) -> None:
        after = rig.call(READ, 4, lambda call: (call.add(builder.Param.linaddr(BUFFER, 4)),
                                                call.add(builder.Param.u32(0))))
        assert builder.result_of(after) == Status.VERR_WRONG_PARAMETER_COUNT
    direct, _ = both_paths(tmp_path, scenario)
    assert direct.device.direct_calls == 1


def test_bit32_in_place_of_the_buffer_takes_the_general_path(tmp_path: Path) -> None:
    direct, _ = both_paths(tmp_path, lambda rig: rig.call(READ, 4, lambda call: call.add(builder.Param.u32(7))))
    assert direct.device.direct_calls == 0


def test_heap_budget_too_small_fails_the_same_way(tmp_path: Path) -> None:
    def scenario(rig: Rig) -> None:
        after = rig.call(READ, 4096, pages(4096, FROM_HOST))
        assert builder.rc_of(after) == Status.VERR_NO_MEMORY
        after = rig.call(READ, 100, pages(100, FROM_HOST))
        assert builder.result_of(after) == Status.VINF_SUCCESS
    direct, _ = both_paths(tmp_path, scenario, heap_budget=COMMAND_HEAP_COST + 4095)
    assert direct.device.direct_calls == 1
    assert direct.device.commands.heap_used[0] == 0


def test_asynchronous_timing_takes_the_general_path(tmp_path: Path) -> None:
    timing = HgcmTiming(async_functions=frozenset({READ, WRITE}))
    direct, _ = both_paths(tmp_path, lambda rig: rig.call(READ, 100, pages(100, FROM_HOST)), timing=timing)
    assert direct.device.direct_calls == 0


def test_a_request_address_with_a_command_pending_takes_the_general_path(tmp_path: Path) -> None:
    def scenario(rig: Rig) -> None:
        wait = builder.CallBuilder(rig.client_id, int(ShflFn.WAIT_FOR_MAPPINGS_CHANGES))
        wait.add(builder.Param.u32(rig.service.table.version))
        rig.memory.write(0x3000, wait.build())
        rig.device.io_write("request", 0, 4, 0x3000)
        assert 0x3000 in rig.device.pending
        rig.call(READ, 100, pages(100, FROM_HOST), address=0x3000)
        rig.call(READ, 100, pages(100, FROM_HOST))
    direct, _ = both_paths(tmp_path, scenario)
    assert direct.device.direct_calls == 1


def test_partial_write_reports_what_reached_the_host(tmp_path: Path) -> None:
    """SEC3 (docs/deviations.md): a host failure after some bytes reports those bytes."""
    def scenario(rig: Rig) -> None:
        with inject(Fault("pwrite", short=3), Fault("pwrite", errno.ENOSPC, after=1)):
            after = rig.call(WRITE, 10, linaddr(BUFFER, 10, HgcmParmType.LinAddr_In))
        assert builder.result_of(after) == Status.VINF_SUCCESS
        assert struct.unpack_from("<I", after, 44 + 3 * 16 + 4)[0] == 3
    direct, _ = both_paths(tmp_path, scenario)
    assert direct.device.direct_calls == 1
    assert direct.folder.joinpath("f.bin").read_bytes()[:3] == direct.memory.read(BUFFER, 3)


def test_host_read_error_gives_the_same_status_and_zeros(tmp_path: Path) -> None:
    def scenario(rig: Rig) -> None:
        with inject(Fault("preadv", errno.EIO)):
            after = rig.call(READ, 100, pages(100, FROM_HOST))
        assert builder.result_of(after) == Status.VERR_DEV_IO_ERROR
    direct, _ = both_paths(tmp_path, scenario)
    assert direct.device.direct_calls == 1


def test_no_view_of_guest_memory_outlives_the_call(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "r", direct=True)
    rig.call(READ, 100, pages(100, FROM_HOST))
    rig.call(WRITE, 100, linaddr(BUFFER, 100))
    assert rig.device.direct_calls == 2
    rig.service.close()
    rig.memory.close()  # raises BufferError while any view of the mapping is alive


@pytest.mark.parametrize(("direction", "spec", "taken"), [
    (TO_HOST, DirectBuffer(4, reads=True), True),
    (FROM_HOST, DirectBuffer(4, reads=True), False),
    (FROM_HOST, DirectBuffer(4, stored=3), True),
    (TO_HOST, DirectBuffer(4, stored=3), False),
    (BOTH, DirectBuffer(4, reads=True, stored=3), True),
    (TO_HOST, DirectBuffer(5), False),  # the declared buffer index is not a parameter
])
def test_plan_honours_the_declared_use_of_the_buffer(direction: int, spec: DirectBuffer, taken: bool) -> None:
    call = builder.CallBuilder(1, READ)
    for param in (builder.Param.u32(1), builder.Param.u64(2), builder.Param.u64(3), builder.Param.u32(16)):
        call.add(param)
    call.add_page_list(16, [BUFFER], flags=direction)
    found = plan(call.build(), CALL64, REQUEST, RAM, spec)
    assert (found is not None) is taken
    if found is not None:
        assert (found.address, found.size, found.direction, found.buffer_index) == (BUFFER, 16, direction, 4)
        assert found.params[:4] == [(1, 1), (2, 2), (2, 3), (1, 16)]


def test_direct_calls_leave_no_call_parameter_or_view_alive(tmp_path: Path) -> None:
    """Reference counting alone frees what a direct call made (tests/device/
    test_memory_bounds.py pins the same for the general path)."""
    import gc

    from hgcmlab.services.hgcm import HgcmCall, SvcParm

    rig = Rig(tmp_path / "r", direct=True, traced=False)
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        def alive() -> int:
            return sum(1 for obj in gc.get_objects() if isinstance(obj, (HgcmCall, SvcParm, memoryview)))
        baseline = alive()
        for index in range(200):
            after = rig.call(READ if index % 2 else WRITE, 4096, pages(4096, BOTH), offset=index)
            assert builder.result_of(after) == Status.VINF_SUCCESS
        assert rig.device.direct_calls == 200
        assert alive() == baseline
        assert set(rig.device.commands.heap_used.values()) == {0}
    finally:
        if enabled:
            gc.enable()


@pytest.mark.parametrize("wrong", [0, 1, 128, 254, 255])
@pytest.mark.parametrize("delta", [1, PAGE_SIZE, -PAGE_SIZE, 1 << 40])
def test_plan_takes_a_page_list_only_when_every_page_follows_the_one_before(wrong: int, delta: int) -> None:
    size = 256 * PAGE_SIZE
    listed = [0x400000 + index * PAGE_SIZE for index in range(256)]

    def planned(page_list: list[int]) -> object:
        call = builder.CallBuilder(1, READ)
        for param in (builder.Param.u32(1), builder.Param.u64(2), builder.Param.u64(3), builder.Param.u32(size)):
            call.add(param)
        call.add_page_list(size, page_list, flags=FROM_HOST)
        return plan(call.build(), CALL64, REQUEST, 64 * RAM, DirectBuffer(4, stored=3))

    found = planned(listed)
    assert found is not None and (found.address, found.size) == (0x400000, size)  # type: ignore[attr-defined]
    listed[wrong] += delta
    assert planned(listed) is None


@pytest.mark.parametrize("buffer_type", [int(HgcmParmType.PageList), int(HgcmParmType.Bit32),
                                         int(HgcmParmType.Bit64)])
@pytest.mark.parametrize("bad_type", [int(HgcmParmType.LinAddr), int(HgcmParmType.PageList), 0, 99])
@pytest.mark.parametrize("bad_index", [0, 1, 2, 3])
def test_plan_refuses_every_value_parameter_of_another_type(buffer_type: int, bad_type: int,
                                                            bad_index: int) -> None:
    """The value parameters' types are counted, not checked one by one: one wrong type is
    refused wherever it is, also beside a buffer typed as a value (which hides it from the
    count and is refused by the buffer's own check)."""
    values = [builder.Param.u32(1), builder.Param.u64(2), builder.Param.u64(3), builder.Param.u32(16)]

    def planned(params: list[builder.Param]) -> object:
        call = builder.CallBuilder(1, READ)
        for param in params:
            call.add(param)
        call.add_page_list(16, [BUFFER], flags=FROM_HOST, param_type=buffer_type)
        return plan(call.build(), CALL64, REQUEST, RAM, DirectBuffer(4, stored=3))

    assert (planned(values) is not None) is (buffer_type == HgcmParmType.PageList)
    values[bad_index] = builder.Param(bad_type, values[bad_index].word0, values[bad_index].word1)
    assert planned(values) is None
