"""The accelerator (devices/vmmdev/accel.py) against the device's path, from guest code.

Every scenario is a list of requests the test places in guest RAM and a guest program sends,
one ``out`` each, to the VMMDev request port: so each call reaches the device through the
CPU's OUT hook.  Each scenario runs on two machines built alike, one with the accelerator
and one without it (``VMMDevConfig.accelerator``), and everything the guest or the user
could see must come out identical: every byte of guest RAM, the host files, the cycle and
instruction counts, the exit, the run summary's call counts, the direct-path count and the
heap accounting.  Every scenario runs for both of the accelerator's hooks (the ``hook``
fixture): the native one (native/hgcm_accel.c, skipped where it cannot be built) and its
Python twin (accel_python.py).  ``Accelerator.calls`` says how many calls the hook took, so
a scenario meant for the hook cannot pass by silently falling back, and a scenario meant to
fall back cannot pass by being taken by the hook.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.direct import DirectClient
from hgcmlab.devices.vmmdev import accel, builder
from hgcmlab.devices.vmmdev.abi import (
    PAGE_SIZE,
    HGCM_CONNECT_CLIENT,
    VMMDEV_DEFAULT_PORT_BASE,
    VMMDEV_VERSION,
    HgcmConnect,
    HgcmParmDirection,
    HgcmParmType,
    ReportGuestInfo,
    RequestHeader,
    RequestType,
)
from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.boards import VBoxMachine, vbox_board
from hgcmlab.machine.layout import PAGING_AREA_SIZE, PAGING_STACK_RESERVE
from hgcmlab.machine.machine import RunEnd, RunResult
from hgcmlab.machine.tracing import CallbackSink, ListSink
from hgcmlab.runtime.faults import Fault, inject
from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflFn
from tests.device.test_direct_path import linaddr, pages

needs_native = pytest.mark.skipif(not accel.available(), reason=f"no native accelerator: {accel.unavailable_reason()}")
NATIVE, PYTHON = "native", "python"


@pytest.fixture(params=[pytest.param(NATIVE, marks=needs_native), PYTHON])
def hook(request: pytest.FixtureRequest) -> str:
    """Which of the accelerator's hooks the scenario runs with."""
    return request.param


def config(hook: str | None, timing: HgcmTiming | None = None) -> VMMDevConfig:
    """The device configuration with ``hook`` (None: no accelerator at all)."""
    return VMMDevConfig(accelerator=hook is not None, native=hook == NATIVE, timing=timing or HgcmTiming())

RAM = 4 * 1024 * 1024
TABLE = 0x200000         # u32 count, then the request addresses the guest sends in order
REQUESTS = 0x210000      # request i at REQUESTS + i * REQUEST_STRIDE
REQUEST_STRIDE = 0x1000
CONNECT = 0x1F0000
BUFFERS = 0x300000       # page aligned, far from the requests
CONTENT = bytes(range(251)) * 40  # 10040 bytes: not a multiple of the page size
PATTERN_START = 0x100000          # guest RAM from here to the paged start's tables holds this pattern
PATTERN = (bytes(range(3, 256, 7)) * (RAM // 16))[:RAM - PAGING_STACK_RESERVE - PAGING_AREA_SIZE - PATTERN_START]
RW = int(ShflCf.ACCESS_READWRITE | ShflCf.ACT_OPEN_IF_EXISTS | ShflCf.ACT_CREATE_IF_NEW)
READ_ONLY = int(ShflCf.ACCESS_READ | ShflCf.ACT_OPEN_IF_EXISTS | ShflCf.ACT_FAIL_IF_NEW)
TO_HOST, FROM_HOST, BOTH = (int(HgcmParmDirection.TO_HOST), int(HgcmParmDirection.FROM_HOST),
                            int(HgcmParmDirection.BOTH))
CALL64, CALL32 = int(RequestType.HGCMCall64), int(RequestType.HGCMCall32)
READ, WRITE, CLOSE = int(ShflFn.READ), int(ShflFn.WRITE), int(ShflFn.CLOSE)

GUEST = f"""
_start:
    mov esi, {TABLE}
    mov ecx, dword ptr [esi]
    add esi, 4
    mov dx, {VMMDEV_DEFAULT_PORT_BASE}
next:
    test ecx, ecx
    jz done
    mov eax, dword ptr [esi]
    out dx, eax
    add esi, 4
    dec ecx
    jmp next
done:
    mov al, 0
    out 0xf4, al
"""


@dataclass
class Session:
    """A machine with a connected client, share "s" (writable) and "ro" (read-only) mapped,
    and files open: the handles the requests use."""

    machine: VBoxMachine
    folder: Path
    client: int
    roots: dict[str, int]
    handles: dict[str, int] = field(default_factory=dict)

    def call(self, function: int, *, root: str = "s", handle: str | int = "f", offset: int = 0, cb: int = 0,
             buffer: Callable[[builder.CallBuilder], object] | None = None, request_type: int = CALL64,
             parms: list[builder.Param] | None = None) -> bytearray:
        """A READ/WRITE(root, handle, offset, cb, buffer) request, or ``parms`` as given."""
        call = builder.CallBuilder(self.client, function, request_type)
        if parms is None:
            call.add(builder.Param.u32(self.roots[root]))
            call.add(builder.Param.u64(self.handles[handle] if isinstance(handle, str) else handle))
            if function in (READ, WRITE):
                call.add(builder.Param.u64(offset))
                call.add(builder.Param.u32(cb))
                if buffer is not None:
                    buffer(call)
        else:
            for parm in parms:
                call.add(parm)
        return call.build()


def session(folder: Path, *, hook: str | None, mode: int = 64, timing: HgcmTiming | None = None,
            paging: bool = False) -> Session:
    """A fresh machine on a fresh copy of the files (the host-side set-up takes the Python
    path on both machines alike)."""
    (folder / "s").mkdir(parents=True)
    (folder / "ro").mkdir()
    (folder / "s" / "f.bin").write_bytes(CONTENT)
    (folder / "s" / "g.bin").write_bytes(CONTENT[::-1])
    (folder / "ro" / "r.bin").write_bytes(CONTENT[:5000])
    machine = vbox_board(mode, RAM, vmmdev_config=config(hook, timing))
    machine.add_share("s", folder / "s")
    machine.add_share("ro", folder / "ro", writable=False)
    machine.load(assemble(GUEST, mode=mode), paging=paging)
    machine.memory.write(PATTERN_START, PATTERN)
    machine.memory.write(CONNECT, builder.connect(machine.shared_folders.name))
    machine.vmmdev.io_write("request", 0, 4, CONNECT)
    client = HGCM_CONNECT_CLIENT.get(machine.memory.read(CONNECT, ctypes.sizeof(HgcmConnect)))
    api = DirectClient(machine.shared_folders, client)
    roots = {"s": api.map("s"), "ro": api.map("ro")}
    handles = {"f": api.create(roots["s"], "/f.bin", RW), "g": api.create(roots["s"], "/g.bin", RW),
               "r": api.create(roots["ro"], "/r.bin", READ_ONLY)}
    return Session(machine, folder, client, roots, handles)


Scenario = Callable[[Session], list[bytearray | int]]


def submit(state: Session, items: list[bytearray | int]) -> None:
    """Place the requests (an int repeats the request of that index) and the table."""
    addresses = []
    for item in items:
        if isinstance(item, int):
            addresses.append(addresses[item])
            continue
        address = REQUESTS + len(addresses) * REQUEST_STRIDE
        state.machine.memory.write(address, item)
        addresses.append(address)
    state.machine.memory.write(TABLE, struct.pack(f"<{len(addresses) + 1}I", len(addresses), *addresses))


@dataclass
class Outcome:
    ram: bytes
    files: dict[str, bytes]
    cycles: int
    instructions: int
    end: RunEnd
    exit_code: int | None
    calls: dict[str, int]
    direct: int
    heap: dict
    accelerated: int


def outcome(state: Session, result: RunResult) -> Outcome:
    machine = state.machine
    files = {str(path.relative_to(state.folder)): path.read_bytes()
             for path in sorted(state.folder.rglob("*")) if path.is_file()}
    return Outcome(machine.memory.read(0, RAM), files, machine.clock.now(), machine.cpu.instructions, result.end,
                   result.exit_code, dict(machine.vmmdev.counts.calls), machine.vmmdev.direct_calls,
                   dict(machine.vmmdev.commands.heap_used),
                   machine.accelerator.calls if machine.accelerator is not None else 0)


def both_ways(tmp_path: Path, hook: str, scenario: Scenario, *, mode: int = 64, timing: HgcmTiming | None = None,
              run: Callable[[Session], RunResult] | None = None,
              prepare: Callable[[Session], None] | None = None, paging: bool = False) -> tuple[Outcome, Outcome]:
    """Run ``scenario`` with the accelerator's ``hook`` and without the accelerator; assert
    identical outcomes and return (with, without)."""
    results = []
    for used in (hook, None):
        state = session(tmp_path / (used or "off"), hook=used, mode=mode, timing=timing, paging=paging)
        accelerator = state.machine.accelerator
        assert (accelerator is not None and accelerator.native == (used == NATIVE)) is (used is not None)
        submit(state, scenario(state))
        if prepare is not None:
            prepare(state)
        result = run(state) if run is not None else state.machine.run()
        results.append(outcome(state, result))
        state.machine.close()
    mine, theirs = results
    assert theirs.accelerated == 0
    assert mine.files == theirs.files, "host files differ"
    assert mine.ram == theirs.ram, "guest RAM differs"
    assert (mine.cycles, mine.instructions, mine.end, mine.exit_code) == (
        theirs.cycles, theirs.instructions, theirs.end, theirs.exit_code)
    assert (mine.calls, mine.direct, mine.heap) == (theirs.calls, theirs.direct, theirs.heap)
    return mine, theirs


def result_of(state: Session, index: int) -> int:
    return builder.result_of(state.machine.memory.read(REQUESTS + index * REQUEST_STRIDE, 64))


# --- scenarios the hook takes ------------------------------------------------------------------

def _reads_and_writes(state: Session) -> list[bytearray | int]:
    return [
        state.call(READ, cb=100, buffer=linaddr(BUFFERS, 4096)),                               # miss: Python
        state.call(READ, offset=50, cb=3000, buffer=linaddr(BUFFERS + 8192, 4096)),
        state.call(READ, offset=9000, cb=4000, buffer=linaddr(BUFFERS + 16384, 4096, HgcmParmType.LinAddr_Out)),
        state.call(READ, offset=20000, cb=64, buffer=linaddr(BUFFERS + 24576, 64, HgcmParmType.LinAddr_Out)),
        state.call(READ, offset=1, cb=9000, buffer=pages(9000, FROM_HOST, BUFFERS + 0x10000, offset_first=123)),
        state.call(READ, offset=7, cb=5000, buffer=pages(6000, BOTH, BUFFERS + 0x20000), request_type=CALL32),
        state.call(WRITE, cb=777, buffer=linaddr(0x100100, 777, HgcmParmType.LinAddr_In)),
        state.call(WRITE, offset=10000, cb=5000, buffer=pages(5000, TO_HOST, 0x180000, offset_first=10)),
        state.call(WRITE, handle="g", offset=3, cb=4096, buffer=linaddr(0x101000, 4096)),       # miss: Python
        state.call(WRITE, handle="g", offset=30000, cb=100, buffer=pages(100, BOTH, 0x102000), request_type=CALL32),
        1, 2, 4, 7,                                                                            # the same requests again
    ]


@pytest.mark.parametrize("mode", [64, 32])
def test_reads_and_writes_of_every_buffer_shape_match_the_python_path(hook: str, tmp_path: Path, mode: int) -> None:
    mine, _ = both_ways(tmp_path, hook, _reads_and_writes, mode=mode)
    # The first call on each of f and g misses the hook's handle table and takes Python.
    assert mine.accelerated == 14 - 2
    assert mine.calls["READ"] == 9 and mine.calls["WRITE"] == 5
    assert mine.files["s/f.bin"][10000:15000] != CONTENT[10000:15000]   # the writes reached the host


@pytest.mark.parametrize("mode", [64, 32])
def test_a_paged_guest_gets_page_lists_through_the_hook_and_linaddr_through_the_device(
        hook: str, tmp_path: Path, mode: int) -> None:
    """Started paged (the loader's identity map): the device must translate a LinAddr buffer
    through the guest's tables (VMMDevHGCM.cpp, PGMPhysGCPtr2GCPhys), which the hook leaves
    to the device; page lists are physical and go through the hook."""
    mine, _ = both_ways(tmp_path, hook, _reads_and_writes, mode=mode, paging=True)
    # The hook: the page-list calls on f after its first one (two, and two repeats); g's only
    # page-list call is its first; no LinAddr call.
    assert mine.accelerated == 4


def _scattered(state: Session) -> list[bytearray | int]:
    page = [BUFFERS + index * PAGE_SIZE for index in range(16)]
    return [
        state.call(READ, cb=10, buffer=linaddr(BUFFERS, 16)),                                  # export f
        state.call(READ, offset=5, cb=9000, buffer=pages(9000, FROM_HOST, offset_first=100,
                                                         page_list=[page[5], page[2], page[9]])),
        state.call(READ, offset=7000, cb=6000, buffer=pages(6000, FROM_HOST, page_list=[page[11], page[3]])),
        state.call(READ, offset=3, cb=5000, buffer=pages(7000, BOTH, offset_first=4000,
                                                        page_list=[page[14], page[1], page[12]]), request_type=CALL32),
        state.call(WRITE, offset=4000, cb=8192, buffer=pages(8192, TO_HOST, page_list=[page[7], page[7], page[0]])),
        state.call(WRITE, offset=20000, cb=3000, buffer=pages(3000, BOTH, offset_first=2000,
                                                             page_list=[page[4], page[10]])),
        # The pages used follow each other; an extra page listed after them does not.
        state.call(READ, cb=4096, buffer=pages(4096, FROM_HOST, page_list=[page[6], page[15]])),
        1, 4,
        # Read into pages that also travel to the host, one of them twice, short of the end
        # of the file: the general path's copy-back leaves that page as it was before the
        # read; left to Python.
        state.call(READ, offset=len(CONTENT) - 100, cb=8192,
                   buffer=pages(8192, BOTH, page_list=[page[8], page[8]])),
    ]


@pytest.mark.parametrize("mode", [64, 32])
def test_scattered_page_lists_match_the_bounce_buffer_path(hook: str, tmp_path: Path, mode: int) -> None:
    """Page lists whose pages are in any order, repeated, or followed by unused ones: the
    Python direct path leaves them to the bounce buffers (params.py: the page-by-page copy
    of vmmdevR3HgcmGuestBufferRead/-Write); the hook moves them with one preadv/pwritev
    over the pages and must leave the same bytes, zeros and counts (and not count them as
    direct-path calls)."""
    mine, theirs = both_ways(tmp_path, hook, _scattered, mode=mode)
    # All but the export and the two READs into pages that also travel to the host.
    assert mine.accelerated == 7
    assert theirs.direct == 1   # only the LinAddr export call is the direct path's
    assert mine.files["s/f.bin"][4000:12192] != CONTENT[4000:12192]


def test_a_round_trip_loop_on_one_request(hook: str, tmp_path: Path) -> None:
    def scenario(state: Session) -> list[bytearray | int]:
        return [state.call(READ, cb=1, buffer=linaddr(BUFFERS, 16)), *[0] * 200]
    mine, _ = both_ways(tmp_path, hook, scenario)
    assert mine.accelerated == 200


# --- what the hook must leave to Python ------------------------------------------------------

def _python_only(state: Session) -> list[bytearray | int]:
    return [
        state.call(READ, cb=10, buffer=linaddr(BUFFERS, 16)),                                     # export f
        state.call(WRITE, root="ro", handle="r", cb=10, buffer=linaddr(BUFFERS, 16)),             # read-only share
        state.call(READ, handle=0, cb=10, buffer=linaddr(BUFFERS, 16)),                           # SHFL_HANDLE_ROOT
        state.call(READ, handle=0xFFFFFFFFFFFFFFFF, cb=10, buffer=linaddr(BUFFERS, 16)),          # SHFL_HANDLE_NIL
        state.call(READ, handle=12345, cb=10, buffer=linaddr(BUFFERS, 16)),                       # unknown handle
        state.call(READ, root="ro", cb=10, buffer=linaddr(BUFFERS, 16)),                          # f under another root
        state.call(READ, cb=20, buffer=linaddr(BUFFERS, 16)),                                     # cb > buffer
        state.call(READ, cb=0, buffer=linaddr(BUFFERS, 16)),                                      # cb == 0
        state.call(READ, offset=1 << 63, cb=10, buffer=linaddr(BUFFERS, 16)),                     # negative offset
        state.call(READ, cb=10, buffer=linaddr(BUFFERS, 16, HgcmParmType.LinAddr_In)),            # wrong direction
        state.call(WRITE, cb=10, buffer=linaddr(BUFFERS, 16, HgcmParmType.LinAddr_Out)),          # wrong direction
        state.call(READ, cb=10, buffer=linaddr(REQUESTS + 11 * REQUEST_STRIDE, 64)),              # overlaps itself
        state.call(READ, cb=5000, buffer=pages(5000, FROM_HOST, page_list=[BUFFERS, BUFFERS + 3 * PAGE_SIZE + 8])),
        state.call(READ, cb=5000, buffer=pages(5000, FROM_HOST, page_list=[BUFFERS, RAM])),          # beyond RAM
        state.call(READ, cb=5000, buffer=pages(5000, FROM_HOST, page_list=[BUFFERS, 2**64 - 1])),    # NIL entry
        state.call(READ, cb=5000, buffer=pages(5000, FROM_HOST,
                                               page_list=[BUFFERS, REQUESTS + 15 * REQUEST_STRIDE])),  # overlaps itself
        state.call(READ, cb=10, buffer=linaddr(RAM - 8, 16)),                                     # beyond RAM
        state.call(READ, parms=[builder.Param.u32(state.roots["s"]), builder.Param.u64(state.handles["f"]),
                                builder.Param.u64(0), builder.Param.u32(1)]),                     # four parameters
        state.call(READ, parms=[builder.Param.u64(state.roots["s"]), builder.Param.u64(state.handles["f"]),
                                builder.Param.u64(0), builder.Param.u32(1),
                                builder.Param.linaddr(BUFFERS, 16)]),                             # root as a u64
    ]


@pytest.mark.parametrize("mode", [64, 32])
def test_calls_the_hook_does_not_model_go_to_python_with_the_same_statuses(hook: str, tmp_path: Path,
                                                                           mode: int) -> None:
    mine, _ = both_ways(tmp_path, hook, _python_only, mode=mode)
    assert mine.accelerated == 0


def test_a_closed_handle_is_never_used_again(hook: str, tmp_path: Path) -> None:
    """READ (exported), READ (the hook), CLOSE, READ: the last one must fail as in Python
    (VERR_INVALID_HANDLE), not read through the exported fd."""
    statuses = {}

    def scenario(state: Session) -> list[bytearray | int]:
        return [state.call(READ, cb=10, buffer=linaddr(BUFFERS, 16)), 0,
                state.call(CLOSE), state.call(READ, cb=10, buffer=linaddr(BUFFERS + 4096, 16))]

    def run(state: Session) -> RunResult:
        result = state.machine.run()
        statuses[state.machine.accelerator is not None] = [result_of(state, index) for index in (2, 3)]
        return result

    mine, _ = both_ways(tmp_path, hook, scenario, run=run)
    assert mine.accelerated == 1
    assert statuses[True] == statuses[False] == [Status.VINF_SUCCESS, Status.VERR_INVALID_HANDLE]


def test_a_disconnected_client_is_never_served_again(hook: str, tmp_path: Path) -> None:
    """READ (exported), READ (the hook), DISCONNECT, READ: the last one gets the device's
    VERR_HGCM_INVALID_CLIENT_ID on both paths."""
    statuses = {}

    def scenario(state: Session) -> list[bytearray | int]:
        return [state.call(READ, cb=10, buffer=linaddr(BUFFERS, 16)), 0, builder.disconnect(state.client),
                state.call(READ, cb=10, buffer=linaddr(BUFFERS + 4096, 16))]

    def run(state: Session) -> RunResult:
        result = state.machine.run()
        statuses[state.machine.accelerator is not None] = builder.rc_of(
            state.machine.memory.read(REQUESTS + 3 * REQUEST_STRIDE, 64))
        return result

    mine, _ = both_ways(tmp_path, hook, scenario, run=run)
    assert mine.accelerated == 1
    assert statuses[True] == statuses[False] == Status.VERR_HGCM_INVALID_CLIENT_ID


def test_a_removed_share_stops_the_hook_at_once(hook: str, tmp_path: Path) -> None:
    """The host unshares a folder between two runs: the handle's next READ fails in Python."""
    def scenario(state: Session) -> list[bytearray | int]:
        return [state.call(READ, cb=10, buffer=linaddr(BUFFERS, 16)), 0, 0]

    def run(state: Session) -> RunResult:
        machine = state.machine
        first = machine.run(max_instructions=4 + 2 * 7)   # the prologue and two calls
        assert first.end is RunEnd.BUDGET
        assert machine.shared_folders.remove_mapping("s") == Status.VINF_PERMISSION_DENIED
        return machine.run()

    mine, _ = both_ways(tmp_path, hook, scenario, run=run)
    assert mine.accelerated == 1


def test_tracing_sends_every_call_through_python_with_identical_traces(hook: str, tmp_path: Path) -> None:
    traces = {}

    def prepare(state: Session) -> None:
        sink = ListSink()
        state.machine.tracer.add_sink(sink)
        traces[state.machine.accelerator is not None] = sink

    mine, _ = both_ways(tmp_path, hook, _reads_and_writes, prepare=prepare)
    assert mine.accelerated == 0
    assert [event.to_json() for event in traces[True].events] == [event.to_json() for event in traces[False].events]


def test_a_sink_for_other_kinds_keeps_the_hook(hook: str, tmp_path: Path) -> None:
    def prepare(state: Session) -> None:
        state.machine.tracer.add_sink(CallbackSink({"guest_log"}, lambda event: None))

    mine, _ = both_ways(tmp_path, hook, _reads_and_writes, prepare=prepare)
    assert mine.accelerated == 12


def test_injected_host_faults_go_through_python(hook: str, tmp_path: Path) -> None:
    def run(state: Session) -> RunResult:
        with inject(Fault("preadv", errno=5, times=None)):
            return state.machine.run()

    mine, _ = both_ways(tmp_path, hook, _reads_and_writes, run=run)
    assert mine.accelerated == 0


def test_asynchronous_reads_go_through_python(hook: str, tmp_path: Path) -> None:
    mine, _ = both_ways(tmp_path, hook, _reads_and_writes, timing=HgcmTiming(async_functions=frozenset({READ})))
    assert mine.accelerated == 0


def test_an_asynchronous_function_elsewhere_leaves_the_hook_exact(hook: str, tmp_path: Path) -> None:
    """CLOSE completes later (a scheduled event, a deadline); the READs and WRITEs around it
    are taken by the hook and every cycle count still matches."""
    def scenario(state: Session) -> list[bytearray | int]:
        return [*_reads_and_writes(state), state.call(CLOSE, handle="g"), 1, 2, 3]

    mine, _ = both_ways(tmp_path, hook, scenario, timing=HgcmTiming(async_functions=frozenset({CLOSE})))
    assert mine.accelerated >= 12


@pytest.mark.parametrize("slice_cycles", [1, 997, 5000, 20011])
def test_until_cycle_slices_stop_at_the_same_places(hook: str, tmp_path: Path, slice_cycles: int) -> None:
    """Run in slices of ``slice_cycles``: every pause lands on the same instruction and cycle
    both ways (a call whose cost would reach the deadline is left to Python)."""
    stops: dict[bool, list[tuple[int, int]]] = {}

    def run(state: Session) -> RunResult:
        machine, seen = state.machine, []
        while True:
            result = machine.run(max_cycles=slice_cycles)
            seen.append((machine.clock.now(), machine.cpu.instructions))
            if result.end is not RunEnd.PAUSED:
                stops[machine.accelerator is not None] = seen
                return result

    mine, _ = both_ways(tmp_path, hook, _reads_and_writes, run=run)
    assert stops[True] == stops[False]
    if slice_cycles > 5000:
        assert mine.accelerated > 0


@pytest.mark.parametrize("budget", [5, 23, 41, 77])
def test_instruction_budgets_stop_at_the_same_places(hook: str, tmp_path: Path, budget: int) -> None:
    def run(state: Session) -> RunResult:
        machine = state.machine
        while True:
            result = machine.run(max_instructions=budget)
            if result.end is not RunEnd.BUDGET:
                return result

    both_ways(tmp_path, hook, _reads_and_writes, run=run)


def _report_additions(state: Session) -> None:
    """ReportGuestInfo (set-up, from the host side): from now on the fast acknowledge works."""
    report = ReportGuestInfo(header=RequestHeader.from_buffer_copy(
        builder.header(ctypes.sizeof(ReportGuestInfo), int(RequestType.ReportGuestInfo))),
        interfaceVersion=VMMDEV_VERSION, osType=0x53100)
    state.machine.memory.write(CONNECT, bytes(report))
    state.machine.vmmdev.io_write("request", 0, 4, CONNECT)
    assert state.machine.vmmdev.additions_ok


def test_acknowledged_events_are_raised_again_after_every_call_the_hook_takes(hook: str, tmp_path: Path) -> None:
    """A guest that acknowledges the HGCM event after each call (fast IRQ acknowledge: IN
    from the port at +8) makes every completion raise the event anew (VMMDev.cpp:
    VMMDevNotifyGuest: fHaveEvents, the interrupt line): the hook completes the call and
    has Python raise the event, with the same result."""
    guest = GUEST.replace("    add esi, 4\n    dec ecx", "    add dx, 8\n    in eax, dx\n    sub dx, 8\n"
                          "    add esi, 4\n    dec ecx")

    def prepare(state: Session) -> None:
        _report_additions(state)
        state.machine.load(assemble(guest, mode=64))

    mine, _ = both_ways(tmp_path, hook, _reads_and_writes, prepare=prepare)
    assert mine.accelerated == 12


def test_with_events_left_pending_the_same_guest_is_taken_by_the_hook(hook: str, tmp_path: Path) -> None:
    """The counterpart of the test above: no acknowledge, the event stays pending."""
    mine, _ = both_ways(tmp_path, hook, _reads_and_writes, prepare=_report_additions)
    assert mine.accelerated == 12


# --- any request: the hook decides exactly as Python does ---------------------------------------

def _templates(state: Session) -> list[bytearray]:
    """Requests the hook takes, to mutate."""
    return [
        state.call(READ, offset=50, cb=3000, buffer=linaddr(BUFFERS + 8192, 4096)),
        state.call(READ, offset=1, cb=9000, buffer=pages(9000, FROM_HOST, BUFFERS + 0x10000, offset_first=123)),
        state.call(WRITE, offset=10000, cb=5000, buffer=pages(5000, TO_HOST, 0x180000, offset_first=10),
                   request_type=CALL32),
        state.call(WRITE, offset=3, cb=4096, buffer=linaddr(0x101000, 4096, HgcmParmType.LinAddr_In)),
        state.call(READ, offset=9, cb=6000, buffer=pages(6000, FROM_HOST, offset_first=50,
                                                        page_list=[BUFFERS + 0x5000, BUFFERS])),
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(template=st.integers(0, 4), edits=st.lists(st.tuples(st.integers(0, 2047), st.integers(0, 255)),
                                                  min_size=1, max_size=4),
       word=st.one_of(st.none(), st.tuples(st.integers(0, 511), st.sampled_from(
           [0, 1, 2, 5, 11, 12, 0x3F, 0x40, 0xFFF, 0x1000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]))))
def test_mutated_requests_get_identical_outcomes(hook: str, tmp_path_factory: pytest.TempPathFactory, template: int,
                                                 edits: list[tuple[int, int]],
                                                 word: tuple[int, int] | None) -> None:
    """Byte edits and boundary words anywhere in a request the hook would take: each
    request is sent twice (the first may export the handle), and every outcome matches the
    Python path's."""
    def scenario(state: Session) -> list[bytearray | int]:
        request = _templates(state)[template]
        for offset, value in edits:
            request[offset % len(request)] = value
        if word is not None:
            offset = (word[0] * 4) % (len(request) - 3)
            request[offset:offset + 4] = word[1].to_bytes(4, "little")
        return [_templates(state)[template], request, 1]

    both_ways(tmp_path_factory.mktemp("mutated"), hook, scenario)


# --- the command line -------------------------------------------------------------------------

def test_cli_summary_and_files_are_the_same_with_and_without_the_accelerator(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`hgcmlab run` of the cp tool (64 KiB READ/WRITE calls): the same output, the same
    summary line (instructions, cycles, call counts) and the same copy by default (the
    native hook where it can be built), with `--no-native` (the Python hook) and with
    `--no-accelerator`; and the hooks did take the calls."""
    import io

    from hgcmlab.machine import boards
    from hgcmlab.machine.cli import main

    taken: list[tuple[bool, int] | None] = []
    real_close = boards.VBoxMachine.close

    def spying_close(self: boards.VBoxMachine) -> None:
        accelerator = self.accelerator
        taken.append(None if accelerator is None else (accelerator.native, accelerator.calls))
        real_close(self)

    monkeypatch.setattr(boards.VBoxMachine, "close", spying_close)
    program = Path(__file__).resolve().parents[2] / "guest_asm" / "programs" / "cp.s"
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "src.bin").write_bytes(bytes(range(256)) * 2000)   # 512,000 bytes: 8 READs
    outputs = []
    # Names of one length: the guest's instruction count depends on it.
    runs = {"native": [], "python": ["--no-native"], "device": ["--no-accelerator"]}
    for name, options in runs.items():
        out, err = io.StringIO(), io.StringIO()
        destination = f"d:/{name}.bin"
        status = main(["run", *options, "--share", f"d={tmp_path / 'host'}", str(program), "--", "d:/src.bin",
                       destination], out, err)
        assert status == 0, out.getvalue() + err.getvalue()
        outputs.append((out.getvalue(), err.getvalue()))
    assert outputs[0] == outputs[1] == outputs[2]
    assert "READ x9" in outputs[0][0] + outputs[0][1]
    (default_native, default_calls), (python_native, python_calls) = taken[0], taken[1]
    assert default_native is accel.available() and not python_native
    assert default_calls >= 14 and python_calls >= 14 and taken[2] is None
    for name in runs:
        assert (tmp_path / "host" / f"{name}.bin").read_bytes() == (tmp_path / "host" / "src.bin").read_bytes()


# --- whole drivers: polling, interrupts, asynchronous completion --------------------------------

@pytest.mark.parametrize("program, defines, force_async", [
    ("demo.s", None, False),
    ("demo_irq.s", None, False),
    ("demo_irq.s", {"FAST_IRQ_ACK": 1}, True),
    ("demo_poll_async.s", None, True),
])
@pytest.mark.parametrize("mode", [64, 32])
def test_bundled_drivers_run_identically(hook: str, tmp_path: Path, program: str, defines: dict[str, int] | None,
                                         force_async: bool, mode: int) -> None:
    """The bundled drivers (polling; interrupt-driven with `sti; hlt` and either kind of
    acknowledge; asynchronous completion found by polling) give the same log, exit, cycle
    and instruction counts, RAM and host file with and without the accelerator."""
    from hgcmlab.machine.programs import bundled_program

    image = bundled_program(program, mode=mode, defines=defines)
    seen = []
    for used in (hook, None):
        folder = tmp_path / str(used)
        folder.mkdir()
        # Reproducible shares: the object information CREATE returns (times, inode) is the
        # same for both folders, so guest RAM can be compared whole.
        machine = vbox_board(mode, reproducible=True, vmmdev_config=config(used, HgcmTiming(force_async=force_async)))
        machine.add_share("demo", folder)
        machine.load(image)
        result = machine.run()
        seen.append((result.end, result.exit_code, result.log_lines, result.cycles, result.instructions,
                     machine.memory.read(0, machine.memory.size), (folder / "hello.txt").read_bytes(),
                     dict(machine.vmmdev.counts.calls)))
        machine.close()
    assert seen[0][:2] == (RunEnd.EXIT, 0)
    assert seen[0] == seen[1]


def test_a_sink_added_during_the_run_sees_every_later_call(hook: str, tmp_path: Path) -> None:
    """A sink added by a callback in the middle of a run (here on the guest's third `out` to
    an unclaimed port) turns the hook off at once: every later call is traced, identically
    on both machines."""
    guest = GUEST.replace("    add esi, 4\n    dec ecx", "    out 0x80, al\n    add esi, 4\n    dec ecx")
    traces: dict[bool, ListSink] = {}

    def prepare(state: Session) -> None:
        machine = state.machine
        machine.load(assemble(guest, mode=64))
        late = ListSink()
        traces[machine.accelerator is not None] = late
        seen = []

        def on_unclaimed(_event: object) -> None:
            seen.append(_event)
            if len(seen) == 3:
                machine.tracer.add_sink(late)

        machine.tracer.add_sink(CallbackSink({"port_unclaimed"}, on_unclaimed))

    mine, _ = both_ways(tmp_path, hook, _reads_and_writes, prepare=prepare)
    assert 0 < mine.accelerated < 12   # the second and third READ went through the hook, nothing after
    mine_events = [event.to_json() for event in traces[True].events]
    assert mine_events == [event.to_json() for event in traces[False].events]
    assert sum('"hgcm_call"' in line for line in mine_events) == 11


# --- building and switching it off -------------------------------------------------------------

def test_the_environment_switch_turns_the_native_hook_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(accel.ENVIRONMENT, "0")
    assert accel.unavailable_reason() == f"{accel.ENVIRONMENT}=0"
    machine = vbox_board(64, RAM)
    try:
        assert machine.accelerator is not None and not machine.accelerator.native
    finally:
        machine.close()


def test_the_configuration_turns_the_accelerator_off() -> None:
    machine = vbox_board(64, RAM, vmmdev_config=VMMDevConfig(accelerator=False))
    try:
        assert machine.accelerator is None
    finally:
        machine.close()


def test_a_missing_compiler_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HGCMLAB_CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("HGCMLAB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(accel.NativeUnavailable) as raised:
        accel.build()
    assert "no-such-cc" in str(raised.value) and "\n" not in str(raised.value)


def test_a_compiler_that_fails_is_one_line_and_leaves_no_file(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    compiler = tmp_path / "broken-cc"
    compiler.write_text("#!/bin/sh\necho 'broken-cc: error: out of luck' >&2\nexit 1\n")
    compiler.chmod(0o755)
    monkeypatch.setenv("HGCMLAB_CC", str(compiler))
    monkeypatch.setenv("HGCMLAB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(accel.NativeUnavailable) as raised:
        accel.build()
    assert str(raised.value) == "the native accelerator did not compile: broken-cc: error: out of luck"
    assert not any((tmp_path / "cache").rglob("*.so"))


@needs_native
def test_the_build_is_cached_by_content(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HGCMLAB_CACHE_DIR", str(tmp_path / "cache"))
    first = accel.build()
    stamp = first.stat().st_mtime_ns
    assert accel.build() == first and first.stat().st_mtime_ns == stamp
    assert first.parent == tmp_path / "cache" / "native"
