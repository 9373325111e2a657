"""GET_PROP: value and flags into the buffer, timestamp and size out."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.guestprops.abi import GuestPropFn
from hgcmlab.services.guestprops.service import GuestPropService
from hgcmlab.services.hgcm import SvcParm
from tests.gp_conformance.conftest import EPOCH_NS, Guest, cstr, host_block_of_the_testcase


@pytest.mark.guestprop("GET_PROP")
def test_get_table_of_the_testcase(svc: GuestPropService, guest: Guest) -> None:
    """Value and flags come back as "value\\0flags\\0" with the stored timestamp (host block
    timestamps kept as given); an unknown name is VERR_NOT_FOUND.  The clock stands still,
    so the third stamp taken (load takes two) is the clock plus 2.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getProperty, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:testGetProp
    """
    host_block_of_the_testcase(svc)
    assert svc.set_property("Green", "Go!", "readonly") == Status.VINF_SUCCESS
    for name, data, stamp in [("test/name/", b"test/value/\0\0", 0),
                              ("test name", b"test value\0TRANSIENT, READONLY\0", 999),
                              ("TEST NAME", b"TEST VALUE\0RDONLYHOST\0", 999999),
                              ("/test/name", b"/test/value\0RDONLYGUEST\0", 999999999999),
                              ("Green", b"Go!\0READONLY\0", EPOCH_NS + 2)]:
        got = guest.get(name)
        assert (got.status, got.params[3].value, got.buffer(1, len(data))) == (Status.VINF_SUCCESS, len(data), data)
        assert got.params[2].value == stamp, name
    assert guest.get("Red").status == Status.VERR_NOT_FOUND


@pytest.mark.guestprop("GET_PROP")
def test_small_buffer_reports_size(guest: Guest) -> None:
    """A buffer one byte short is VERR_BUFFER_OVERFLOW with the size needed and nothing
    written (timestamp untouched); the exact size succeeds.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getProperty, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:test4
    """
    assert guest.set("/MyProperties/Sub/Property", "Property Value", "transient") == Status.VINF_SUCCESS
    needed = len(b"Property Value\0TRANSIENT\0")
    short = guest.get("/MyProperties/Sub/Property", needed - 1)
    assert (short.status, short.params[3].value) == (Status.VERR_BUFFER_OVERFLOW, needed)
    assert short.buffer(1) == bytes(needed - 1) and short.params[2].value == 0
    exact = guest.get("/MyProperties/Sub/Property", needed)
    assert exact.status == Status.VINF_SUCCESS and exact.params[2].value != 0


@pytest.mark.guestprop("GET_PROP")
@pytest.mark.parametrize("params", [
    (cstr("n"), SvcParm.ptr(16), SvcParm.u64(0)),
    (cstr("n"), SvcParm.ptr(0), SvcParm.u64(0), SvcParm.u32(0)),
    (cstr("n"), SvcParm.u32(16), SvcParm.u64(0), SvcParm.u32(0)),
    (SvcParm.ptr(b"n"), SvcParm.ptr(16), SvcParm.u64(0), SvcParm.u32(0)),
    (cstr("n*"), SvcParm.ptr(16), SvcParm.u64(0), SvcParm.u32(0)),
], ids=["three-parms", "empty-buffer", "buffer-not-ptr", "name-unterminated", "wildcard-name"])
def test_bad_calls(guest: Guest, params: tuple[SvcParm, ...]) -> None:
    """Four parameters, a terminated name and a non-empty buffer, then a valid name: else
    VERR_INVALID_PARAMETER (checked before the lookup).

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getProperty, include/VBox/hgcmsvc.h:HGCMSvcGetBuf
    """
    assert guest.set("n", "v") == Status.VINF_SUCCESS
    assert guest.call(GuestPropFn.GET_PROP, *params).status == Status.VERR_INVALID_PARAMETER


@pytest.mark.guestprop("GET_PROP")
def test_outputs_not_type_checked(guest: Guest) -> None:
    """The timestamp and size parameters are only written: any type is accepted, and a
    32-bit timestamp parameter gets the stamp's low half.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getProperty, include/VBox/hgcmsvc.h:HGCMSvcSetU64
    """
    assert guest.set("n", "v") == Status.VINF_SUCCESS
    got = guest.call(GuestPropFn.GET_PROP, cstr("n"), SvcParm.ptr(16), SvcParm.u32(0), SvcParm.u64(0))
    assert got.status == Status.VINF_SUCCESS
    assert got.params[2].value == (EPOCH_NS + 2) & 0xFFFFFFFF  # the third stamp
    assert got.params[3].value == len(b"v\0\0")


@pytest.mark.guestprop("GET_PROP")
def test_properties_set_at_load(guest: Guest) -> None:
    """The service starts with the host version (7.0.14, r161095), reset/resume counters
    and sysprep properties, all TRANSIENT and RDONLYGUEST.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:initialize, HostServices/GuestProperties/VBoxGuestPropSvc.cpp:setHostVersionProps
    """
    for name, value in [("/VirtualBox/HostInfo/VBoxVer", b"7.0.14"), ("/VirtualBox/HostInfo/VBoxVerExt", b"7.0.14"),
                        ("/VirtualBox/HostInfo/VBoxRev", b"161095"), ("/VirtualBox/VMInfo/ResetCounter", b"0"),
                        ("/VirtualBox/VMInfo/ResumeCounter", b"0"), ("/VirtualBox/HostGuest/SysprepExec", b""),
                        ("/VirtualBox/HostGuest/SysprepArgs", b"")]:
        got = guest.get(name)
        assert got.buffer(1, got.params[3].value) == value + b"\0TRANSIENT, RDONLYGUEST\0", name
    assert guest.set("/VirtualBox/HostInfo/VBoxVer", "8") == Status.VERR_PERMISSION_DENIED
