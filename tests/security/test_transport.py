"""VMMDev/HGCM transport cases of security.md §5.6 (V*) and the double-fetch race R01, driven
through the request port with the real Shared Folders service behind it (no CPU)."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev import builder
from hgcmlab.devices.vmmdev.abi import HgcmParmType, RequestType
from hgcmlab.devices.vmmdev.builder import CallBuilder, Param
from hgcmlab.devices.vmmdev.device import VMMDevDevice
from fuzz.harness import create_parms, shfl_call, utf8
from fuzz.tree import Tree, build_tree
from hgcmlab.machine.device import AttachContext
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.tracing import ListSink, Tracer
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import ASYNC, HgcmCall, HgcmService, _AsyncMarker
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCf, ShflFn
from hgcmlab.services.sharedfolders.service import SharedFoldersService

RAM = 1 << 20
REQ = 0x2000
BUF = 0x10000
READ_OPEN = ShflCf.ACCESS_READ | ShflCf.ACT_FAIL_IF_NEW


class SfRig:
    """VMMDev + Shared Folders over the §5.1 tree; client connected, UTF-8, "sf" mapped."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.memory = GuestMemory(RAM)
        self.memory.fill(0, RAM, 0x55)
        self.sink = ListSink()
        tracer = Tracer()
        tracer.add_sink(self.sink)
        self.service = SharedFoldersService()
        assert self.service.add_mapping("sf", str(tree.share)) == 0
        self.device = VMMDevDevice()
        self.device.register_service(self.service)
        self.device.attach(AttachContext(self.memory, tracer))
        after = self.submit(builder.connect(SharedFoldersService.name))
        self.client = struct.unpack_from("<I", after, 164)[0]
        assert builder.result_of(self.submit(shfl_call(self.client, ShflFn.SET_UTF8))) == 0
        mapped = self.submit(shfl_call(self.client, ShflFn.MAP_FOLDER, utf8("sf"), Param.u32(0),
                                       Param.u32(ord("/")), Param.u32(1)))
        assert builder.result_of(mapped) == 0
        self.root = struct.unpack_from("<I", mapped, 64)[0]

    def submit(self, request: bytes | bytearray, address: int = REQ) -> bytes:
        self.memory.write(address, request)
        self.device.io_write("request", 0, 4, address)
        return self.memory.read(address, len(request))

    def open(self, path: str) -> int:
        after = self.submit(shfl_call(self.client, ShflFn.CREATE, Param.u32(self.root), utf8(path),
                                      create_parms(READ_OPEN)))
        assert builder.result_of(after) == 0
        word0 = struct.unpack_from("<I", after, 44 + 32 + 4)[0]
        return struct.unpack_from("<Q", after, word0 >> 8)[0]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[SfRig]:
    tree = build_tree(tmp_path)
    before = tree.fingerprint()
    r = SfRig(tree)
    yield r
    r.service.close()
    assert tree.fingerprint() == before


def _rejected(rig: SfRig, request: bytearray) -> int:
    after = rig.submit(request)
    assert builder.flags_of(after) == 0, "synchronous failure: no DONE"
    assert rig.sink.of_kind("hgcm_rejected"), "a guest mistake leaves a trace event"
    return builder.rc_of(after)


def test_v01_tiny_header_is_ignored(rig: SfRig) -> None:
    request = bytearray(struct.pack("<IIIi", 8, 0x10001, RequestType.GetHostVersion, -1)) + b"\xAA" * 24
    assert rig.submit(request) == bytes(request)


def test_v03_oversize_gets_header_only_answer(rig: SfRig) -> None:
    request = builder.poisoned(64, RequestType.HGCMCall64)
    struct.pack_into("<I", request, 0, 0x100001)
    after = rig.submit(request)
    assert builder.rc_of(after) == Status.VERR_NOT_SUPPORTED
    assert after[24:] == bytes(request[24:]), "nothing but the header written"


@pytest.mark.parametrize("address", [RAM - 16, RAM - 4, RAM, 0xFFFFFFF0, 0xFFFFFFFF])
def test_v05_beyond_ram_is_a_controlled_failure(rig: SfRig, address: int) -> None:
    request = shfl_call(rig.client, ShflFn.QUERY_FEATURES, Param.u64(0), Param.u32(0))
    head = bytes(request[:24])
    if address + 24 <= RAM:
        rig.memory.write(address, head[:RAM - address])
    rig.device.io_write("request", 0, 4, address)  # never raises
    kinds = [e.kind for e in rig.sink.events[-1:]]
    assert kinds in (["vmmdev_request_dropped"], ["vmmdev_request"])


def test_v05_linaddr_outside_ram_never_touches_host_memory(rig: SfRig) -> None:
    h = rig.open("sub/file.txt")
    call = shfl_call(rig.client, ShflFn.READ, Param.u32(rig.root), Param.u64(h), Param.u64(0), Param.u32(5),
                     Param.linaddr(0x1_0000_0000, 5, HgcmParmType.LinAddr_Out))
    rig.memory.write(0x8000, call)
    snapshot = rig.memory.read(0, RAM)
    rig.device.io_write("request", 0, 4, 0x8000)
    after = rig.memory.read(0x8000, len(call))
    assert builder.result_of(after) == 0 and struct.unpack_from("<I", after, 44 + 48 + 4)[0] == 5
    assert rig.memory.read(0, 0x8000) == snapshot[:0x8000]
    assert rig.memory.read(0x8000 + len(call), RAM - 0x8000 - len(call)) == snapshot[0x8000 + len(call):]


@pytest.mark.parametrize("count", [33, 5])
def test_v07_parameter_count(rig: SfRig, count: int) -> None:
    call = CallBuilder(rig.client, ShflFn.QUERY_FEATURES)
    call.add(Param.u64(0))
    call.add(Param.u32(0))
    request = call.build()
    if count == 33:
        request += bytes(33 * 16)
        struct.pack_into("<I", request, 0, len(request))
    struct.pack_into("<I", request, 40, count)
    assert _rejected(rig, request) == Status.VERR_INVALID_PARAMETER


def test_v09_linaddr_too_big(rig: SfRig) -> None:
    call = shfl_call(rig.client, ShflFn.READ, Param.u32(rig.root), Param.u64(1), Param.u64(0), Param.u32(1),
                     Param.linaddr(BUF, 128 * 1024 * 1024 + 1, HgcmParmType.LinAddr_Out))
    assert _rejected(rig, call) == Status.VERR_INVALID_PARAMETER


def _nobounce(rig: SfRig, pages: list[int], size: int) -> bytearray:
    call = CallBuilder(rig.client, ShflFn.READ)
    for p in (Param.u32(rig.root), Param.u64(1), Param.u64(0), Param.u32(size)):
        call.add(p)
    call.add_page_list(size, pages, flags=2, param_type=HgcmParmType.NoBouncePageList)
    return call.build()


def test_v11_nobounce_bad(rig: SfRig) -> None:
    assert _rejected(rig, _nobounce(rig, [BUF, 0x2001], 8192)) == Status.VERR_INVALID_POINTER
    assert _rejected(rig, _nobounce(rig, [BUF, BUF + 4096], 16)) == Status.VERR_INVALID_PARAMETER


def test_v13_embedded_wrap(rig: SfRig) -> None:
    request = shfl_call(rig.client, ShflFn.QUERY_MAP_NAME, Param.u32(rig.root), bytes(16))
    struct.pack_into("<II", request, 44 + 16, HgcmParmType.Embedded, 3 | (0xFFFFF0 << 8))
    struct.pack_into("<I", request, 44 + 16 + 8, 0x20)
    assert _rejected(rig, request) == Status.VERR_INVALID_PARAMETER


def test_v15_bad_client_id(rig: SfRig) -> None:
    call = shfl_call(9999, ShflFn.QUERY_FEATURES, Param.u64(0), Param.u32(0))
    assert _rejected(rig, call) == Status.VERR_HGCM_INVALID_CLIENT_ID
    assert builder.result_of(rig.submit(builder.disconnect(rig.client))) == 0
    call = shfl_call(rig.client, ShflFn.QUERY_FEATURES, Param.u64(0), Param.u32(0))
    assert _rejected(rig, call) == Status.VERR_HGCM_INVALID_CLIENT_ID


def test_v17_no_info_leak(rig: SfRig) -> None:
    (rig.tree.share / "sub/tiny").write_bytes(b"0123456789")
    h = rig.open("sub/tiny")
    rig.memory.fill(BUF, 4096, 0xAA)
    call = shfl_call(rig.client, ShflFn.READ, Param.u32(rig.root), Param.u64(h), Param.u64(0), Param.u32(4096),
                     Param.linaddr(BUF, 4096, HgcmParmType.LinAddr_Out))
    after = rig.submit(call)
    assert builder.result_of(after) == 0
    assert struct.unpack_from("<I", after, 44 + 48 + 4)[0] == 10
    rest = rig.memory.read(BUF + 10, 4096 - 10)
    assert rig.memory.read(BUF, 10) == b"0123456789"
    assert rest in (bytes(4086), b"\xAA" * 4086)


def test_r01_double_fetch_path(rig: SfRig) -> None:
    """A second vCPU flips the path string in guest RAM while CREATE requests run: each call
    sees one consistent copy, so it opens sub/file.txt or fails with VERR_INVALID_NAME."""
    good, bad = utf8("sub/file.txt"), utf8("../outside/s")
    assert len(good) == len(bad)
    rig.memory.write(BUF, good)
    request = shfl_call(rig.client, ShflFn.CREATE, Param.u32(rig.root),
                        Param.linaddr(BUF, len(good), HgcmParmType.LinAddr_In), create_parms(READ_OPEN))
    stop = threading.Event()

    def flipper() -> None:
        while not stop.is_set():
            rig.memory.write(BUF, bad)
            rig.memory.write(BUF, good)

    thread = threading.Thread(target=flipper)
    thread.start()
    outcomes: set[int] = set()
    try:
        for _ in range(1500):
            after = rig.submit(request)
            result = builder.result_of(after)
            outcomes.add(result)
            if result == 0:
                word0 = struct.unpack_from("<I", after, 44 + 32 + 4)[0]
                handle = struct.unpack_from("<Q", after, word0 >> 8)[0]
                assert handle != SHFL_HANDLE_NIL
                rig.submit(shfl_call(rig.client, ShflFn.CLOSE, Param.u32(rig.root), Param.u64(handle)),
                           address=0x8000)
    finally:
        stop.set()
        thread.join()
    assert outcomes <= {0, Status.VERR_INVALID_NAME}


class _Pending(HgcmService):
    name = "Pending"
    call_limits = {0: 3, 1: 3, 2: 3}

    def call(self, call: HgcmCall) -> int | _AsyncMarker:
        return ASYNC


def test_pending_call_limit_per_client(rig: SfRig) -> None:
    """A limit of 3 admits 2 calls in flight: the new call is counted before the check
    (Main/src-client/HGCM.cpp:HGCMService::GuestCall)."""
    rig.device.register_service(_Pending())
    client = struct.unpack_from("<I", rig.submit(builder.connect("Pending")), 164)[0]
    for slot in range(2):
        after = rig.submit(shfl_call(client, 1), address=0x40000 + slot * 0x100)
        assert builder.rc_of(after) == Status.VINF_HGCM_ASYNC_EXECUTE and builder.flags_of(after) == 0
    assert _rejected(rig, shfl_call(client, 1)) == Status.VERR_HGCM_TOO_MANY_CLIENT_CALLS
    other = struct.unpack_from("<I", rig.submit(builder.connect("Pending")), 164)[0]
    assert builder.rc_of(rig.submit(shfl_call(other, 1), address=0x50000)) == Status.VINF_HGCM_ASYNC_EXECUTE
