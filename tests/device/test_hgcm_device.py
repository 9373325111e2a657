"""HGCM through the request port, no CPU: connect, disconnect, calls and every malformed
parameter case of the reference (§4.4-4.9)."""

from __future__ import annotations

import struct

import pytest

from hgcmlab.devices.vmmdev import builder
from hgcmlab.devices.vmmdev.abi import (
    VBOX_HGCM_REQ_DONE,
    HgcmParmDirection,
    HgcmParmType,
    RequestType,
)
from hgcmlab.devices.vmmdev.builder import CallBuilder, Param
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import ASYNC, HgcmCall, SvcParmType
from tests.device.conftest import REQUEST_ADDRESS, DeviceRig

BUFFER = 0x10000
BUFFER2 = 0x30000


# --- connect / disconnect -------------------------------------------------------------------

def test_connect_answers_async_execute_done_result_and_client_id(rig: DeviceRig) -> None:
    after = rig.submit(builder.connect(rig.service.name))
    assert builder.rc_of(after) == Status.VINF_HGCM_ASYNC_EXECUTE
    assert builder.flags_of(after) & VBOX_HGCM_REQ_DONE
    assert builder.result_of(after) == Status.VINF_SUCCESS
    assert struct.unpack_from("<I", after, 164)[0] == 1
    assert struct.unpack_from("<I", after, 32)[0] == 2


def test_client_ids_count_up_and_are_never_reused(rig: DeviceRig) -> None:
    first, second = rig.connect(), rig.connect()
    rig.submit(builder.disconnect(first))
    third = rig.connect()
    assert (first, second, third) == (1, 2, 3)


def test_connect_to_unknown_service_completes_with_service_not_found(rig: DeviceRig) -> None:
    after = rig.submit(builder.connect("NoSuchService"))
    assert builder.rc_of(after) == Status.VINF_HGCM_ASYNC_EXECUTE
    assert builder.flags_of(after) & VBOX_HGCM_REQ_DONE
    assert builder.result_of(after) == Status.VERR_HGCM_SERVICE_NOT_FOUND
    assert struct.unpack_from("<I", after, 164)[0] == 0, "the guest's client id field is kept"


def test_service_names_match_case_sensitively(rig: DeviceRig) -> None:
    after = rig.submit(builder.connect(rig.service.name.lower()))
    assert builder.result_of(after) == Status.VERR_HGCM_SERVICE_NOT_FOUND


def test_connect_without_nul_in_name_fails_synchronously(rig: DeviceRig) -> None:
    request = builder.connect("x")
    request[36:164] = b"A" * 128
    after = rig.submit(request)
    assert builder.rc_of(after) == Status.VERR_INVALID_PARAMETER
    assert builder.flags_of(after) == 0, "no DONE on a synchronous failure"
    assert after[28:32] == bytes([builder.POISON]) * 4, "result keeps the guest's value"


def test_connect_shorter_than_168_bytes_is_invalid_parameter(rig: DeviceRig) -> None:
    request = builder.connect(rig.service.name)[:160]
    struct.pack_into("<I", request, 0, 160)
    assert builder.rc_of(rig.submit(request)) == Status.VERR_INVALID_PARAMETER


def test_disconnect_of_client_zero_is_synchronous_invalid_parameter(rig: DeviceRig) -> None:
    after = rig.submit(builder.disconnect(0))
    assert builder.rc_of(after) == Status.VERR_INVALID_PARAMETER
    assert builder.flags_of(after) == 0


def test_disconnect_unknown_client_completes_with_invalid_client_id(rig: DeviceRig) -> None:
    after = rig.submit(builder.disconnect(77))
    assert builder.rc_of(after) == Status.VINF_HGCM_ASYNC_EXECUTE
    assert builder.result_of(after) == Status.VERR_HGCM_INVALID_CLIENT_ID


def test_disconnect_reaches_the_service(rig: DeviceRig) -> None:
    client = rig.connect()
    after = rig.submit(builder.disconnect(client))
    assert builder.result_of(after) == Status.VINF_SUCCESS and builder.flags_of(after) & VBOX_HGCM_REQ_DONE
    assert rig.service.disconnected == [client]


# --- calls: transport of values and buffers ---------------------------------------------------

@pytest.mark.parametrize("request_type", [RequestType.HGCMCall32, RequestType.HGCMCall64])
def test_values_are_passed_and_written_back(rig: DeviceRig, request_type: RequestType) -> None:
    client = rig.connect()

    def behaviour(call: HgcmCall) -> int:
        call.params[0].value += 1
        call.params[1].value *= 2
        return Status.VERR_FILE_NOT_FOUND

    rig.service.behaviour = behaviour
    call = CallBuilder(client, 7, request_type)
    call.add(Param.u32(41))
    call.add(Param.u64(0x1_0000_0001))
    after = rig.submit(call.build())
    received = rig.service.calls[0]
    assert received.function == 7 and received.client_id == client
    assert [p.type for p in received.params] == [SvcParmType.U32, SvcParmType.U64]
    assert builder.rc_of(after) == Status.VINF_HGCM_ASYNC_EXECUTE
    assert builder.result_of(after) == Status.VERR_FILE_NOT_FOUND
    assert builder.flags_of(after) == VBOX_HGCM_REQ_DONE
    size = 12 if request_type == RequestType.HGCMCall32 else 16
    assert struct.unpack_from("<I", after, 44 + 4)[0] == 42, "values are written back even on failure"
    assert struct.unpack_from("<Q", after, 44 + size + 4)[0] == 0x2_0000_0002


@pytest.mark.parametrize("request_type", [RequestType.HGCMCall32, RequestType.HGCMCall64])
def test_linaddr_directions(rig: DeviceRig, request_type: RequestType) -> None:
    client = rig.connect()
    rig.memory.write(BUFFER, b"to-host!")
    rig.memory.write(BUFFER2, b"\xAA" * 16)
    rig.memory.write(BUFFER2 + 16, b"both-way")

    def behaviour(call: HgcmCall) -> int:
        assert bytes(call.params[0].buffer) == b"to-host!"
        assert bytes(call.params[1].buffer) == bytes(16), "out buffers start zeroed"
        assert bytes(call.params[2].buffer) == b"both-way"
        call.params[0].buffer[:] = b"IGNORED!"
        call.params[1].buffer[:5] = b"hello"
        call.params[2].buffer[:] = b"BOTH-WAY"
        return Status.VINF_SUCCESS

    rig.service.behaviour = behaviour
    call = CallBuilder(client, 1, request_type)
    call.add(Param.linaddr(BUFFER, 8, HgcmParmType.LinAddr_In))
    call.add(Param.linaddr(BUFFER2, 16, HgcmParmType.LinAddr_Out))
    call.add(Param.linaddr(BUFFER2 + 16, 8, HgcmParmType.LinAddr))
    after = rig.submit(call.build())
    assert builder.result_of(after) == Status.VINF_SUCCESS
    assert rig.memory.read(BUFFER, 8) == b"to-host!"
    assert rig.memory.read(BUFFER2, 16) == b"hello" + bytes(11), "the zeroed bounce buffer is copied back whole"
    assert rig.memory.read(BUFFER2 + 16, 8) == b"BOTH-WAY"


def test_page_list_scatter_gather_over_non_contiguous_pages(rig: DeviceRig) -> None:
    client = rig.connect()
    pages = [0x40000, 0x60000, 0x50000]
    rig.memory.write(pages[0] + 0xFF0, b"A" * 16)
    rig.memory.write(pages[1], b"B" * 4096)
    rig.memory.write(pages[2], b"C" * 8)
    seen: list[bytes] = []

    def behaviour(call: HgcmCall) -> int:
        seen.append(bytes(call.params[0].buffer))
        call.params[0].buffer[:] = bytes(range(256)) * 16 + bytes(range(24))
        return Status.VINF_SUCCESS

    rig.service.behaviour = behaviour
    call = CallBuilder(client, 1)
    call.add_page_list(16 + 4096 + 8, pages, flags=HgcmParmDirection.BOTH, offset_first=0xFF0)
    request = call.build()
    after = rig.submit(request)
    assert builder.result_of(after) == Status.VINF_SUCCESS
    assert seen == [b"A" * 16 + b"B" * 4096 + b"C" * 8]
    expected = bytes(range(256)) * 16 + bytes(range(24))
    assert rig.memory.read(pages[0] + 0xFF0, 16) == expected[:16]
    assert rig.memory.read(pages[1], 4096) == expected[16:16 + 4096]
    assert rig.memory.read(pages[2], 8) == expected[4112:]
    assert rig.memory.read(pages[2] + 8, 8) == b"\x55" * 8, "nothing beyond the buffer is written"
    assert struct.unpack_from("<I", after, 44 + 4)[0] == 16 + 4096 + 8, "type 10 keeps its size field"


def test_embedded_buffer_is_copied_back_and_its_size_updated(rig: DeviceRig) -> None:
    client = rig.connect()

    def behaviour(call: HgcmCall) -> int:
        parm = call.params[0]
        assert bytes(parm.buffer) == b"embedded"
        parm.buffer[:3] = b"xyz"
        parm.size = 3
        return Status.VINF_SUCCESS

    rig.service.behaviour = behaviour
    call = CallBuilder(client, 1)
    call.add_embedded(b"embedded", flags=HgcmParmDirection.BOTH)
    request = call.build()
    after = rig.submit(request)
    offset = struct.unpack_from("<I", request, 44 + 4)[0] >> 8
    assert after[offset:offset + 8] == b"xyzedded"
    assert struct.unpack_from("<I", after, 44 + 8)[0] == 3


def test_contiguous_page_list_size_field_reports_the_host_size(rig: DeviceRig) -> None:
    client = rig.connect()

    def behaviour(call: HgcmCall) -> int:
        call.params[0].buffer[:2] = b"ok"
        call.params[0].size = 2
        return Status.VINF_SUCCESS

    rig.service.behaviour = behaviour
    call = CallBuilder(client, 1)
    call.add_page_list(64, [0x40000], flags=HgcmParmDirection.FROM_HOST, param_type=HgcmParmType.ContiguousPageList)
    after = rig.submit(call.build())
    assert struct.unpack_from("<I", after, 44 + 4)[0] == 2
    assert rig.memory.read(0x40000, 4) == b"ok\x55\x55"


def test_linaddr_pages_outside_ram_read_as_unassigned_memory_and_drop_writes(rig: DeviceRig) -> None:
    """Unpaged, the buffer's pages translate to themselves and are contiguous, so
    VMMDevHGCM.cpp's vmmdevR3HgcmGuestBufferRead moves it with one PDMDevHlpPhysRead: the
    part beyond RAM is unassigned memory, which PGMPhysRead (PGMAllPhys.cpp) fills with
    0xFF; PGMPhysWrite skips it."""
    client = rig.connect()
    end = rig.memory.size

    def behaviour(call: HgcmCall) -> int:
        assert bytes(call.params[0].buffer) == b"\x55" * 16 + b"\xff" * 16
        call.params[0].buffer[:] = b"Z" * 32
        return Status.VINF_SUCCESS

    rig.service.behaviour = behaviour
    call = CallBuilder(client, 1)
    call.add(Param.linaddr(end - 16, 32, HgcmParmType.LinAddr))
    after = rig.submit(call.build())
    assert builder.result_of(after) == Status.VINF_SUCCESS
    assert rig.memory.read(end - 16, 16) == b"Z" * 16


def test_async_completion_sets_done_later_and_only_then(rig: DeviceRig) -> None:
    client = rig.connect()
    kept: list[HgcmCall] = []

    def behaviour(call: HgcmCall) -> object:
        kept.append(call)
        return ASYNC

    rig.service.behaviour = behaviour
    call = CallBuilder(client, 1)
    call.add(Param.u32(5))
    after = rig.submit(call.build())
    assert builder.rc_of(after) == Status.VINF_HGCM_ASYNC_EXECUTE and builder.flags_of(after) == 0
    assert REQUEST_ADDRESS in rig.device.pending
    kept[0].params[0].value = 9
    kept[0].complete(Status.VINF_SUCCESS)
    done = rig.memory.read(REQUEST_ADDRESS, len(after))
    assert builder.flags_of(done) == VBOX_HGCM_REQ_DONE and builder.result_of(done) == 0
    assert struct.unpack_from("<I", done, 48)[0] == 9
    assert REQUEST_ADDRESS not in rig.device.pending


def test_guest_changing_the_request_type_before_completion_gets_invalid_parameter(rig: DeviceRig) -> None:
    client = rig.connect()
    kept: list[HgcmCall] = []
    rig.service.behaviour = lambda call: kept.append(call) or ASYNC
    call = CallBuilder(client, 1)
    call.add(Param.u32(5))
    rig.submit(call.build())
    rig.memory.write_u32(REQUEST_ADDRESS + 8, RequestType.GetHostVersion)
    kept[0].params[0].value = 9
    kept[0].complete(Status.VINF_SUCCESS)
    done = rig.memory.read(REQUEST_ADDRESS, 60)
    assert builder.result_of(done) == Status.VERR_INVALID_PARAMETER
    assert builder.flags_of(done) & VBOX_HGCM_REQ_DONE
    assert struct.unpack_from("<I", done, 48)[0] == 5, "no outputs written into a retyped request"


def test_done_flag_is_the_last_write(rig: DeviceRig) -> None:
    client = rig.connect()
    writes: list[tuple[int, int]] = []
    original_write, original_write_u32 = rig.memory.write, rig.memory.write_u32
    rig.memory.write = lambda address, data: (writes.append((address, len(data))), original_write(address, data))[1]  # type: ignore[method-assign]
    rig.memory.write_u32 = lambda address, value: (writes.append((address, 4)), original_write_u32(address, value))[1]  # type: ignore[method-assign]
    rig.service.behaviour = lambda call: (call.params[0].buffer.__setitem__(slice(0, 4), b"data"), 0)[1]
    call = CallBuilder(client, 1)
    call.add(Param.linaddr(BUFFER, 4, HgcmParmType.LinAddr_Out))
    rig.submit(call.build())
    assert writes[-1] == (REQUEST_ADDRESS + 24, 4)
    assert builder.flags_of(rig.memory.read(REQUEST_ADDRESS, 32)) == VBOX_HGCM_REQ_DONE


# --- calls: malformed requests (all synchronous: rc = error, no DONE, result kept) ----------

def _sync_failure(rig: DeviceRig, request: bytearray) -> int:
    after = rig.submit(request)
    assert builder.flags_of(after) == 0, "a synchronous failure never sets DONE"
    assert builder.result_of(after) == 0, "result keeps the guest's value"
    assert not rig.service.calls, "the service never sees a rejected call"
    return builder.rc_of(after)


def test_call_with_client_zero(rig: DeviceRig) -> None:
    rig.connect()
    assert _sync_failure(rig, CallBuilder(0, 1).build()) == Status.VERR_INVALID_PARAMETER


@pytest.mark.parametrize("client", [99, 1])
def test_call_with_unknown_or_disconnected_client(rig: DeviceRig, client: int) -> None:
    rig.submit(builder.disconnect(rig.connect()))
    assert _sync_failure(rig, CallBuilder(client, 1).build()) == Status.VERR_HGCM_INVALID_CLIENT_ID


def test_call_shorter_than_44_bytes(rig: DeviceRig) -> None:
    request = CallBuilder(rig.connect(), 1).build()[:40]
    struct.pack_into("<I", request, 0, 40)
    assert builder.rc_of(rig.submit(request)) == Status.VERR_INVALID_PARAMETER


def test_more_than_32_parameters(rig: DeviceRig) -> None:
    call = CallBuilder(rig.connect(), 1)
    for _ in range(33):
        call.add(Param.u32(0))
    assert _sync_failure(rig, call.build()) == Status.VERR_INVALID_PARAMETER


def test_parameter_count_larger_than_the_request(rig: DeviceRig) -> None:
    call = CallBuilder(rig.connect(), 1)
    call.add(Param.u32(0))
    call.add(Param.u32(0))
    request = call.build()
    struct.pack_into("<I", request, 40, 5)
    assert _sync_failure(rig, request) == Status.VERR_INVALID_PARAMETER


@pytest.mark.parametrize("bad_type", [0, 3, 7, 8, 9, 14, 0xFFFFFFFF])
def test_rejected_parameter_types(rig: DeviceRig, bad_type: int) -> None:
    call = CallBuilder(rig.connect(), 1)
    call.add(Param(bad_type, 4, BUFFER))
    assert _sync_failure(rig, call.build()) == Status.VERR_INVALID_PARAMETER


def test_linaddr_larger_than_128_mib(rig: DeviceRig) -> None:
    call = CallBuilder(rig.connect(), 1)
    call.add(Param.linaddr(BUFFER, 0x08000001, HgcmParmType.LinAddr_In))
    assert _sync_failure(rig, call.build()) == Status.VERR_INVALID_PARAMETER


def test_call_buffers_above_the_per_call_heap_limit(rig: DeviceRig) -> None:
    call = CallBuilder(rig.connect(), 1)
    call.add(Param.linaddr(BUFFER, 0x08000000, HgcmParmType.LinAddr_Out))
    call.add(Param.linaddr(BUFFER, 0x00001000, HgcmParmType.LinAddr_Out))
    assert _sync_failure(rig, call.build()) == Status.VERR_NO_MEMORY


def _page_list_call(rig: DeviceRig, size: int = 16, pages: list[int] | None = None, *,
                    flags: int = HgcmParmDirection.TO_HOST, offset_first: int = 0,
                    param_type: int = HgcmParmType.PageList) -> bytearray:
    call = CallBuilder(rig.connect(), 1)
    call.add_page_list(size, pages if pages is not None else [0x40000], flags=flags,
                       offset_first=offset_first, param_type=param_type)
    return call.build()


def test_page_list_larger_than_128_mib(rig: DeviceRig) -> None:
    assert _sync_failure(rig, _page_list_call(rig, 0x08000001)) == Status.VERR_INVALID_PARAMETER


def test_page_list_offset_inside_the_parameter_array(rig: DeviceRig) -> None:
    request = _page_list_call(rig)
    struct.pack_into("<I", request, 44 + 8, 44)
    assert _sync_failure(rig, request) == Status.VERR_INVALID_PARAMETER


def test_zero_length_page_list_with_offset_zero_is_rejected(rig: DeviceRig) -> None:
    request = _page_list_call(rig, 0)
    struct.pack_into("<I", request, 44 + 8, 0)
    assert _sync_failure(rig, request) == Status.VERR_INVALID_PARAMETER


def test_page_list_offset_past_size_minus_16(rig: DeviceRig) -> None:
    request = _page_list_call(rig)
    struct.pack_into("<I", request, 44 + 8, len(request) - 15)
    assert _sync_failure(rig, request) == Status.VERR_INVALID_PARAMETER


def test_page_list_with_zero_pages(rig: DeviceRig) -> None:
    request = _page_list_call(rig)
    struct.pack_into("<H", request, 60 + 6, 0)
    assert _sync_failure(rig, request) == Status.VERR_INVALID_PARAMETER


def test_page_list_with_more_pages_than_the_request_holds(rig: DeviceRig) -> None:
    request = _page_list_call(rig)
    struct.pack_into("<H", request, 60 + 6, 2)
    assert _sync_failure(rig, request) == Status.VERR_INVALID_PARAMETER


@pytest.mark.parametrize("flags", [0, 4, 0x13])
def test_page_list_with_invalid_flags(rig: DeviceRig, flags: int) -> None:
    assert _sync_failure(rig, _page_list_call(rig, flags=flags)) == Status.VERR_INVALID_FLAGS


def test_page_list_first_page_offset_of_4096(rig: DeviceRig) -> None:
    assert _sync_failure(rig, _page_list_call(rig, offset_first=4096)) == Status.VERR_INVALID_PARAMETER


def test_contiguous_page_list_with_two_pages(rig: DeviceRig) -> None:
    request = _page_list_call(rig, 16, [0x40000, 0x41000], param_type=HgcmParmType.ContiguousPageList)
    assert _sync_failure(rig, request) == Status.VERR_INVALID_PARAMETER


def test_no_bounce_page_list_with_wrong_page_count(rig: DeviceRig) -> None:
    request = _page_list_call(rig, 8192, [0x40000], param_type=HgcmParmType.NoBouncePageList)
    assert _sync_failure(rig, request) == Status.VERR_INVALID_PARAMETER


def test_no_bounce_page_list_with_unaligned_entry(rig: DeviceRig) -> None:
    request = _page_list_call(rig, 8192, [0x40000, 0x2001], param_type=HgcmParmType.NoBouncePageList)
    assert _sync_failure(rig, request) == Status.VERR_INVALID_POINTER


def _embedded_call(rig: DeviceRig, flags: int = HgcmParmDirection.TO_HOST) -> bytearray:
    call = CallBuilder(rig.connect(), 1)
    call.add_embedded(b"12345678", flags=flags)
    return call.build()


@pytest.mark.parametrize("flags", [0, 4])
def test_embedded_with_invalid_flags(rig: DeviceRig, flags: int) -> None:
    assert _sync_failure(rig, _embedded_call(rig, flags)) == Status.VERR_INVALID_FLAGS


def test_embedded_data_inside_the_parameter_array(rig: DeviceRig) -> None:
    request = _embedded_call(rig)
    struct.pack_into("<I", request, 44 + 4, HgcmParmDirection.TO_HOST | (40 << 8))
    assert _sync_failure(rig, request) == Status.VERR_INVALID_PARAMETER


def test_embedded_offset_beyond_the_request(rig: DeviceRig) -> None:
    request = _embedded_call(rig)
    struct.pack_into("<I", request, 44 + 4, HgcmParmDirection.TO_HOST | (0xFFFFF0 << 8))
    struct.pack_into("<I", request, 44 + 8, 0x20)
    assert _sync_failure(rig, request) == Status.VERR_INVALID_PARAMETER


def test_embedded_size_beyond_the_request(rig: DeviceRig) -> None:
    request = _embedded_call(rig)
    struct.pack_into("<I", request, 44 + 8, 9)
    assert _sync_failure(rig, request) == Status.VERR_INVALID_PARAMETER


def test_call_cost_comes_from_the_service_declaration_unless_overridden() -> None:
    from hgcmlab.devices.vmmdev.config import HgcmTiming

    timing = HgcmTiming(call_cycles=100, byte_cycles=2, function_cycles={7: 50})
    assert timing.cost(None, 10) == 100 + 20, "connect/disconnect: the default"
    assert timing.cost(9, 10) == 100 + 20, "nothing declared"
    assert timing.cost(9, 10, declared=5000) == 5000 + 20, "the service's declaration"
    assert timing.cost(7, 10, declared=5000) == 50 + 20, "the configuration wins"


def test_declared_costs_can_be_switched_off() -> None:
    from hgcmlab.devices.vmmdev.config import HgcmTiming

    uniform = HgcmTiming(call_cycles=100, byte_cycles=0, declared_costs=False)
    assert uniform.cost(9, 0, declared=5000) == 100
