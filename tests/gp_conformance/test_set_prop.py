"""SET_PROP and SET_PROP_VALUE: checks, permissions, host-reserved names, the limit."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.guestprops.abi import GuestPropFlag, GuestPropFn
from hgcmlab.services.guestprops.service import GuestPropService
from hgcmlab.services.hgcm import SvcParm
from tests.gp_conformance.conftest import EPOCH_NS, FakeClock, Guest, cstr, host_block_of_the_testcase

#: tstGuestPropSvc.cpp:testSetProp's s_aSetProperties: name, value, flags, by host, with
#: SET_PROP (else SET_PROP_VALUE), allowed.
SET_PROPERTIES = [
    ("Red", "Stop!", "transient", False, True, True),
    ("Amber", "Caution!", "", False, False, True),
    ("Green", "Go!", "readonly", True, True, True),
    ("Blue", "What on earth...?", "", True, False, True),
    ("/test/name", "test", "", False, True, False),
    ("TEST NAME", "test", "", True, True, False),
    ("Green", "gone out...", "", False, False, False),
    ("Green", "gone out...", "", True, False, False),
    ("/VirtualBox/GuestAdd/SharedFolders/MountDir", "test", "", False, True, False),
    ("/VirtualBox/GuestAdd/SomethingElse", "test", "", False, True, True),
    ("/VirtualBox/HostInfo/VRDP/Client/1/Name", "test", "", False, False, False),
    ("/VirtualBox/GuestAdd/SharedFolders/MountDir", "test", "", True, True, True),
    ("/VirtualBox/HostInfo/VRDP/Client/1/Name", "test", "TRANSRESET", True, True, True),
]


@pytest.mark.guestprop("SET_PROP", "SET_PROP_VALUE")
def test_set_table_of_the_testcase(svc: GuestPropService, guest: Guest) -> None:
    """Guest and host sets in the testcase's order: read-only flags refuse the side they
    name with VERR_PERMISSION_DENIED, guests may not set host-reserved names, the host may.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:setPropertyInternal, HostServices/GuestProperties/VBoxGuestPropSvc.cpp:checkPermission, HostServices/GuestProperties/VBoxGuestPropSvc.cpp:checkHostReserved, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:testSetProp
    """
    host_block_of_the_testcase(svc)
    for name, value, flags, by_host, set_prop, allowed in SET_PROPERTIES:
        if by_host:
            status = svc.set_property(name, value, flags)
        else:
            status = guest.set(name, value, flags if set_prop else None)
        assert status == (Status.VINF_SUCCESS if allowed else Status.VERR_PERMISSION_DENIED), name
    assert svc.get_property("/VirtualBox/GuestAdd/SharedFolders/MountDir")[2] == "RDONLYGUEST"
    assert svc.get_property("/VirtualBox/HostInfo/VRDP/Client/1/Name")[2] == "TRANSIENT, RDONLYGUEST, TRANSRESET"


@pytest.mark.guestprop("SET_PROP_VALUE")
def test_set_prop_value_clears_flags(svc: GuestPropService, guest: Guest) -> None:
    """Without a flags parameter the flags are NILFLAG, so SET_PROP_VALUE on a TRANSIENT
    property leaves it without flags.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:setProperty
    """
    assert guest.set("p", "1", "transient") == Status.VINF_SUCCESS
    assert guest.set("p", "2", None) == Status.VINF_SUCCESS
    assert svc.get_property("p")[0::2] == ("2", "")


@pytest.mark.guestprop("SET_PROP", "SET_PROP_VALUE")
@pytest.mark.parametrize(("fn", "count"), [(GuestPropFn.SET_PROP, 1), (GuestPropFn.SET_PROP, 4),
                                           (GuestPropFn.SET_PROP_VALUE, 3)],
                         ids=["set-1", "set-4", "value-3"])
def test_parameter_count_two_or_three(svc: GuestPropService, guest: Guest, fn: GuestPropFn,
                                      count: int) -> None:
    """Both functions take 2 or 3 parameters (SET_PROP_VALUE with flags sets them); other
    counts are VERR_INVALID_PARAMETER.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:setProperty
    """
    params = [cstr("p"), cstr("v"), cstr("transient"), cstr("x")][:count]
    status = guest.call(fn, *params).status
    if count == 3:
        assert status == Status.VINF_SUCCESS
        assert svc.get_property("p")[2] == "TRANSIENT"
    else:
        assert status == Status.VERR_INVALID_PARAMETER


@pytest.mark.guestprop("SET_PROP")
@pytest.mark.parametrize(("name", "value", "flags", "status"), [
    (SvcParm.u32(1), cstr("v"), cstr(""), Status.VERR_INVALID_PARAMETER),
    (SvcParm.ptr(b""), cstr("v"), cstr(""), Status.VERR_INVALID_PARAMETER),
    (SvcParm.ptr(b"abc"), cstr("v"), cstr(""), Status.VERR_INVALID_PARAMETER),
    (SvcParm.ptr(b"a\xff\0"), cstr("v"), cstr(""), Status.VERR_INVALID_PARAMETER),
    (cstr(""), cstr("v"), cstr(""), Status.VERR_INVALID_PARAMETER),
    (cstr("x" * 63), cstr("v"), cstr(""), Status.VINF_SUCCESS),
    (cstr("x" * 64), cstr("v"), cstr(""), Status.VERR_INVALID_PARAMETER),
    (SvcParm.ptr(b"ab\0*"), cstr("v"), cstr(""), Status.VERR_INVALID_PARAMETER),
    (cstr("a?"), cstr("v"), cstr(""), Status.VERR_INVALID_PARAMETER),
    (cstr("a|b"), cstr("v"), cstr(""), Status.VERR_INVALID_PARAMETER),
    (cstr("n"), cstr("v" * 1023), cstr(""), Status.VINF_SUCCESS),
    (cstr("n"), cstr("v" * 1024), cstr(""), Status.VERR_TOO_MUCH_DATA),
    (cstr("n"), SvcParm.ptr(b"v\0" + bytes(1100)), cstr(""), Status.VERR_TOO_MUCH_DATA),
    (cstr("n*"), cstr("v" * 1024), cstr("junk"), Status.VERR_INVALID_PARAMETER),
    (cstr("n"), cstr("v" * 1024), cstr("junk"), Status.VERR_TOO_MUCH_DATA),
    (cstr("n"), cstr("v"), SvcParm.u64(0), Status.VERR_INVALID_PARAMETER),
    (cstr("n"), SvcParm.ptr(b"\xed\xa0\x80\0"), cstr(""), Status.VERR_INVALID_PARAMETER),
], ids=["name-not-ptr", "name-empty-buffer", "name-unterminated", "name-bad-utf8", "name-1-byte",
        "name-64-bytes", "name-65-bytes", "wildcard-after-nul", "question-mark", "bar",
        "value-1024-bytes", "value-1025-bytes", "value-buffer-too-big", "name-before-value",
        "value-before-flags", "flags-not-ptr", "value-surrogate"])
def test_checks_in_order(guest: Guest, name: SvcParm, value: SvcParm, flags: SvcParm, status: Status) -> None:
    """Types and strings first (all VERR_INVALID_PARAMETER), then the name buffer (2..64
    bytes, no ``*?|`` anywhere in it), then the value buffer (at most 1024 bytes:
    VERR_TOO_MUCH_DATA), then the flags.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:setProperty, include/VBox/HostServices/GuestPropertySvc.h:GuestPropValidateName, include/VBox/HostServices/GuestPropertySvc.h:GuestPropValidateValue, include/VBox/hgcmsvc.h:HGCMSvcGetCStr
    """
    assert guest.call(GuestPropFn.SET_PROP, name, value, flags).status == status


@pytest.mark.guestprop("SET_PROP")
def test_global_rdonlyguest(svc: GuestPropService, guest: Guest) -> None:
    """With the global RDONLYGUEST flag a guest set is VINF_PERMISSION_DENIED and changes
    nothing; a property's own read-only flag still wins with VERR_PERMISSION_DENIED; the
    host is not affected.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:checkPermission, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:testSetPropROGuest
    """
    svc.set_global_flags(GuestPropFlag.RDONLYGUEST)
    assert guest.set("Red", "Stop!", "transient") == Status.VINF_PERMISSION_DENIED
    assert guest.set("Amber", "Caution!", None) == Status.VINF_PERMISSION_DENIED
    assert svc.set_property("Green", "Go!", "readonly") == Status.VINF_SUCCESS
    assert svc.set_property("Blue", "What on earth...?") == Status.VINF_SUCCESS
    assert guest.set("/test/name", "test") == Status.VINF_PERMISSION_DENIED
    assert guest.set("Green", "gone out...", None) == Status.VERR_PERMISSION_DENIED
    assert svc.set_property("Green", "gone out....") == Status.VERR_PERMISSION_DENIED
    assert svc.get_property("Red") is None and svc.get_property("/test/name") is None


@pytest.mark.guestprop("SET_PROP")
def test_property_limit(svc: GuestPropService, guest: Guest) -> None:
    """At GUEST_PROP_MAX_PROPS (256, seven set at load) a new name is VERR_TOO_MUCH_DATA,
    existing ones can still be changed; the refused create is still announced as a change
    (a deletion) to waiters.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:setPropertyInternal, HostServices/GuestProperties/VBoxGuestPropSvc.cpp:initialize, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:test6
    """
    fmt = "/MyProperties/Sub/Sub/Sub/Sub/Sub/Sub/Sub/PropertyNo#{}"
    count = 0
    while (status := svc.set_property(fmt.format(count), "myvalue")) == Status.VINF_SUCCESS:
        count += 1
    assert status == Status.VERR_TOO_MUCH_DATA and count == 256 - 7
    assert guest.set(fmt.format(0), "myvalue", None) == Status.VINF_SUCCESS
    waiting = guest.wait("extra", 0)
    assert guest.set("extra", "v") == Status.VERR_TOO_MUCH_DATA
    assert waiting.status == Status.VINF_SUCCESS
    assert waiting.buffer(2, waiting.params[3].value) == b"extra\0\0\0" + b"1\0"


@pytest.mark.guestprop("SET_PROP")
def test_same_cycle_changes_get_distinct_stamps(svc: GuestPropService, guest: Guest, clock: FakeClock) -> None:
    """Changes at one clock reading get stamps one nanosecond apart, and the run of such
    adjustments lets a clock that steps back a little keep stamps increasing; a clock that
    moves on is used as it is.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getCurrentTimestamp
    """
    clock.now_ns = EPOCH_NS + 1000
    for name in ("a", "b", "c"):
        assert guest.set(name, "v") == Status.VINF_SUCCESS
    clock.now_ns = EPOCH_NS + 1001
    assert guest.set("d", "v") == Status.VINF_SUCCESS
    clock.now_ns = EPOCH_NS + 5000
    assert guest.set("e", "v") == Status.VINF_SUCCESS
    stamps = [svc.get_property(n)[1] - EPOCH_NS for n in "abcde"]
    assert stamps == [1000, 1001, 1002, 1003, 5000]


@pytest.mark.guestprop("SET_PROP")
def test_refused_set_still_takes_a_stamp(svc: GuestPropService, guest: Guest, clock: FakeClock) -> None:
    """setProperty takes its timestamp before any check, so a refused call moves the
    timestamp source on too.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:setProperty
    """
    clock.now_ns = EPOCH_NS + 1000
    assert guest.set("bad*name", "v") == Status.VERR_INVALID_PARAMETER
    assert guest.set("good", "v") == Status.VINF_SUCCESS
    assert svc.get_property("good")[1] == EPOCH_NS + 1001
