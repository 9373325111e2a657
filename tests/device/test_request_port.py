"""The request port without a CPU: header checks, dropped requests, simple requests."""

from __future__ import annotations

import struct

from hgcmlab.devices.vmmdev import builder
from hgcmlab.devices.vmmdev.abi import (
    HOST_FEATURES,
    VMMDEV_MAX_VMMDEVREQ_SIZE,
    ReqHostVersion,
    RequestType,
    field_offset,
)
from hgcmlab.runtime.status import Status
from tests.device.conftest import RAM_SIZE, REQUEST_ADDRESS, DeviceRig


def test_size_below_header_is_dropped_without_write_back(rig: DeviceRig) -> None:
    request = builder.poisoned(40, RequestType.GetHostVersion)
    struct.pack_into("<I", request, 0, 8)
    after = rig.submit(request)
    assert after == bytes(request)
    assert rig.sink.of_kind("vmmdev_request_dropped")[0].fields["reason"] == "size below the header size"


def test_wrong_header_version_is_dropped(rig: DeviceRig) -> None:
    request = builder.poisoned(40, RequestType.GetHostVersion, version=0x10000)
    assert rig.submit(request) == bytes(request)
    assert rig.sink.of_kind("vmmdev_request_dropped")


def test_oversize_request_gets_header_only_answer(rig: DeviceRig) -> None:
    request = builder.poisoned(64, RequestType.GetHostVersion)
    struct.pack_into("<I", request, 0, VMMDEV_MAX_VMMDEVREQ_SIZE + 1)
    after = rig.submit(request)
    assert builder.rc_of(after) == Status.VERR_NOT_SUPPORTED
    assert after[:12] == request[:12] and after[16:] == request[16:]


def test_header_outside_ram_is_dropped_without_exception(rig: DeviceRig) -> None:
    rig.device.io_write("request", 0, 4, RAM_SIZE - 8)
    rig.device.io_write("request", 0, 4, 0xFFFFFFF0)
    assert len(rig.sink.of_kind("vmmdev_request_dropped")) == 2


def test_request_crossing_end_of_ram_is_refused(rig: DeviceRig) -> None:
    address = RAM_SIZE - 32
    request = builder.poisoned(40, RequestType.GetHostVersion)
    rig.memory.write(address, request[:32])
    rig.device.io_write("request", 0, 4, address)
    after = rig.memory.read(address, 32)
    assert builder.rc_of(after) == Status.VERR_INVALID_PARAMETER
    assert after[24:] == request[24:32]


def test_unknown_request_type_is_not_implemented_and_written_back(rig: DeviceRig) -> None:
    for request_type in (RequestType.InvalidRequest, 9999, RequestType.VideoAccelFlush):
        request = builder.poisoned(48, request_type)
        after = rig.submit(request)
        assert builder.rc_of(after) == Status.VERR_NOT_IMPLEMENTED
        assert after[24:] == request[24:]


def test_get_host_version_fills_the_version_and_features(rig: DeviceRig) -> None:
    after = rig.submit(builder.poisoned(40, RequestType.GetHostVersion))
    assert builder.rc_of(after) == Status.VINF_SUCCESS
    major, minor, build, _revision, features = struct.unpack_from("<HHIII", after, field_offset(ReqHostVersion, "major"))
    assert (major, minor, build) == (7, 0, 14)
    assert features == HOST_FEATURES and features & 0x1, "Linux refuses to load without HGCM_PHYS_PAGE_LIST"


def test_get_host_version_with_wrong_size_is_invalid_parameter(rig: DeviceRig) -> None:
    request = builder.poisoned(44, RequestType.GetHostVersion)
    after = rig.submit(request)
    assert builder.rc_of(after) == Status.VERR_INVALID_PARAMETER
    assert after[24:] == request[24:]


def _guest_info(version: int) -> bytearray:
    request = builder.poisoned(32, RequestType.ReportGuestInfo)
    struct.pack_into("<II", request, 24, version, 0x53100)
    return request


def test_report_guest_info_accepts_interface_1_4_and_rejects_2_0(rig: DeviceRig) -> None:
    assert builder.rc_of(rig.submit(_guest_info(0x00010004))) == Status.VINF_SUCCESS
    assert builder.rc_of(rig.submit(_guest_info(0x00020000))) == Status.VERR_VERSION_MISMATCH


def test_strict_mode_refuses_hgcm_before_report_guest_info() -> None:
    rig = DeviceRig(require_guest_info=True)
    request = builder.connect(rig.service.name)
    after = rig.submit(request)
    assert builder.rc_of(after) == Status.VERR_NOT_SUPPORTED
    assert after[24:] == request[24:], "only the header is written"
    assert builder.rc_of(rig.submit(builder.poisoned(40, RequestType.GetHostVersion))) == Status.VINF_SUCCESS
    assert builder.rc_of(rig.submit(_guest_info(0x00010004))) == Status.VINF_SUCCESS
    after = rig.submit(builder.connect(rig.service.name))
    assert builder.rc_of(after) == Status.VINF_HGCM_ASYNC_EXECUTE
    assert builder.result_of(after) == Status.VINF_SUCCESS


def test_narrow_write_to_request_port_is_dropped_by_the_bus() -> None:
    from hgcmlab.machine.portbus import PortBus

    rig = DeviceRig()
    bus = PortBus(rig.tracer)
    for port_range in rig.device.port_ranges():
        bus.claim(rig.device, port_range, 0xD020 + port_range.offset)
    request = builder.poisoned(40, RequestType.GetHostVersion)
    rig.memory.write(REQUEST_ADDRESS, request)
    bus.write(0xD020, 2, REQUEST_ADDRESS)
    assert rig.memory.read(REQUEST_ADDRESS, 40) == bytes(request)
    assert rig.sink.of_kind("port_unclaimed")[0].fields["size"] == 2
    bus.write(0xD020, 4, REQUEST_ADDRESS)
    assert builder.rc_of(rig.memory.read(REQUEST_ADDRESS, 40)) == Status.VINF_SUCCESS
