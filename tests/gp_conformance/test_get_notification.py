"""GET_NOTIFICATION: remembered changes by timestamp, waits, their limits and ends."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.guestprops.abi import GuestPropFn
from hgcmlab.services.guestprops.service import GuestPropService
from hgcmlab.services.hgcm import ASYNC, SvcParm
from tests.gp_conformance.conftest import Guest, cstr

#: tstGuestPropSvc.cpp:g_aGetNotifications (Name\0Value\0Flags\0fWasDeleted\0).
NOTIFICATIONS = [
    b"Red\0Stop!\0TRANSIENT\0" b"0\0",
    b"Red\0Stop!\0TRANSIENT\0" b"1\0",
    b"Amber\0Caution!\0\0" b"1\0",
    b"Green\0Go!\0READONLY\0" b"0\0",
    b"Blue\0What on earth...?\0\0" b"0\0",
    b"/VirtualBox/GuestAdd/SomethingElse\0test\0\0" b"0\0",
    b"/VirtualBox/GuestAdd/SharedFolders/MountDir\0test\0RDONLYGUEST\0" b"0\0",
    b"/VirtualBox/HostInfo/VRDP/Client/1/Name\0test\0TRANSIENT, RDONLYGUEST, TRANSRESET\0" b"0\0",
    b"Red\0\0\0" b"1\0",
    b"Amber\0\0\0" b"1\0",
]
PATTERN = "/VirtualBox/GuestAdd/*|/VirtualBox/HostInfo/VRDP/Client*|Red*|Amber*|Green*|Blue*"


def _testcase_changes(svc: GuestPropService, guest: Guest) -> None:
    """testSetProp's allowed sets, then testDelProp's deletes of Red and Amber."""
    assert svc.set_property("Red", "Stop!", "transient") == Status.VINF_SUCCESS
    assert svc.set_property("Amber", "Caution!") == Status.VINF_SUCCESS
    assert guest.set("Green", "Go!", "readonly") == Status.VINF_SUCCESS
    assert guest.set("Blue", "What on earth...?", None) == Status.VINF_SUCCESS
    assert svc.set_property("/VirtualBox/GuestAdd/SomethingElse", "test") == Status.VINF_SUCCESS
    assert svc.set_property("/VirtualBox/GuestAdd/SharedFolders/MountDir", "test") == Status.VINF_SUCCESS
    assert svc.set_property("/VirtualBox/HostInfo/VRDP/Client/1/Name", "test", "TRANSRESET") == Status.VINF_SUCCESS
    assert svc.delete_property("Red") == Status.VINF_SUCCESS
    assert guest.delete("Amber") == Status.VINF_SUCCESS


@pytest.mark.guestprop("GET_NOTIFICATION")
def test_async_wait_completed_by_a_change(svc: GuestPropService, guest: Guest) -> None:
    """Timestamp 0 with nothing new waits (ASYNC); the next change completes it with the
    change's timestamp, name, value, flags and "0" (not deleted).

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getNotification, HostServices/GuestProperties/VBoxGuestPropSvc.cpp:doNotifications, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:setupAsyncNotification, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:testAsyncNotification
    """
    waiting = guest.wait("", 0)
    assert waiting.status is ASYNC
    assert svc.set_property("Red", "Stop!", "transient") == Status.VINF_SUCCESS
    assert waiting.completions == [Status.VINF_SUCCESS]
    assert waiting.params[3].value == len(NOTIFICATIONS[0])
    assert waiting.buffer(2, len(NOTIFICATIONS[0])) == NOTIFICATIONS[0]
    assert waiting.params[1].value == svc.get_property("Red")[1]


@pytest.mark.guestprop("GET_NOTIFICATION")
def test_walk_the_remembered_changes(svc: GuestPropService, guest: Guest) -> None:
    """An unknown timestamp starts at the oldest matching change (VWRN_NOT_FOUND); each
    returned timestamp then yields the next match; "deleted" is judged when asked (Red's
    set shows 1 once Red is gone).

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getOldNotificationInternal, HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getNotificationWriteOut, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:testGetNotification
    """
    _testcase_changes(svc, guest)
    timestamp = 1
    for index, expected in enumerate(NOTIFICATIONS[1:]):
        got = guest.wait(PATTERN, timestamp)
        assert got.status == (Status.VWRN_NOT_FOUND if index == 0 else Status.VINF_SUCCESS), expected
        assert got.buffer(2, got.params[3].value) == expected
        assert got.params[1].value > timestamp
        timestamp = got.params[1].value
    assert guest.wait(PATTERN, timestamp).status is ASYNC


@pytest.mark.guestprop("GET_NOTIFICATION")
def test_small_buffer(svc: GuestPropService, guest: Guest) -> None:
    """A buffer too small for the change is VERR_BUFFER_OVERFLOW with the size needed (the
    timestamp is written all the same).

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getNotificationWriteOut, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:testGetNotification
    """
    _testcase_changes(svc, guest)
    for size in range(1, len(NOTIFICATIONS[1])):
        got = guest.wait(PATTERN, 1, size)
        assert (got.status, got.params[3].value) == (Status.VERR_BUFFER_OVERFLOW, len(NOTIFICATIONS[1]))
        assert got.params[1].value != 1 and got.buffer(2) == bytes(size)


@pytest.mark.guestprop("GET_NOTIFICATION")
def test_wait_after_unknown_timestamp_keeps_the_warning(svc: GuestPropService, guest: Guest) -> None:
    """An unknown timestamp with no match queued waits; the completion carries
    VWRN_NOT_FOUND.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getNotification, HostServices/GuestProperties/VBoxGuestPropSvc.cpp:doNotifications
    """
    waiting = guest.wait("later", 12345)
    assert waiting.status is ASYNC
    assert svc.set_property("later", "x") == Status.VINF_SUCCESS
    assert waiting.completions == [Status.VWRN_NOT_FOUND]


@pytest.mark.guestprop("GET_NOTIFICATION")
def test_overflow_on_completion(svc: GuestPropService, guest: Guest) -> None:
    """A waiter whose buffer is too small for the change completes with
    VERR_BUFFER_OVERFLOW and the size needed.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:doNotifications
    """
    waiting = guest.wait("n", 0, 4)
    assert svc.set_property("n", "value") == Status.VINF_SUCCESS
    assert waiting.completions == [Status.VERR_BUFFER_OVERFLOW]
    assert waiting.params[3].value == len(b"n\0value\0\0" b"0\0")


@pytest.mark.guestprop("GET_NOTIFICATION")
def test_only_matching_waiters_complete(svc: GuestPropService, guest: Guest) -> None:
    """A change completes the waiters whose patterns match it and leaves the others.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:doNotifications
    """
    a, b = guest.wait("a*", 0), guest.wait("b*", 0)
    assert svc.set_property("apple", "1") == Status.VINF_SUCCESS
    assert a.completions == [Status.VINF_SUCCESS] and b.status is ASYNC
    assert list(svc.waiting()) == [b.call]


@pytest.mark.guestprop("GET_NOTIFICATION")
def test_same_patterns_interrupt_the_older_wait(svc: GuestPropService, guest: Guest) -> None:
    """A client's new wait with the same patterns completes its older one with
    VERR_INTERRUPTED; other clients' waits are not touched.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getNotification
    """
    other = Guest(svc, client_id=2)
    old, theirs = guest.wait("x", 0), other.wait("x", 0)
    new = guest.wait("x", 0)
    assert old.completions == [Status.VERR_INTERRUPTED]
    assert theirs.status is ASYNC and new.status is ASYNC


@pytest.mark.guestprop("GET_NOTIFICATION")
def test_concurrent_wait_limit(svc: GuestPropService, guest: Guest) -> None:
    """A client may keep GUEST_PROP_MAX_GUEST_CONCURRENT_WAITS (16) waits with different
    patterns; the next is VERR_OUT_OF_RESOURCES (the HGCM per-client call limit the
    service sets normally refuses it first).

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getNotification
    """
    waits = [guest.wait(f"p{i}", 0) for i in range(16)]
    assert all(w.status is ASYNC for w in waits)
    assert guest.wait("p16", 0).status == Status.VERR_OUT_OF_RESOURCES


@pytest.mark.guestprop("GET_NOTIFICATION")
def test_disconnect_and_cancel_end_waits(svc: GuestPropService, guest: Guest) -> None:
    """Disconnect completes the client's waits with VERR_INTERRUPTED; a cancelled wait
    leaves the queue (completed with VERR_INTERRUPTED, which the device does not write
    back) and no longer counts.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:svcDisconnect, HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getNotification
    """
    other = Guest(svc, client_id=2)
    mine, theirs = guest.wait("a", 0), other.wait("a", 0)
    svc.cancel(theirs.call)
    assert theirs.completions == [Status.VERR_INTERRUPTED]
    svc.disconnect(guest.client_id)
    assert mine.completions == [Status.VERR_INTERRUPTED]
    assert list(svc.waiting()) == []


@pytest.mark.guestprop("GET_NOTIFICATION")
def test_queue_keeps_the_last_256_changes(svc: GuestPropService, guest: Guest) -> None:
    """The service remembers GUEST_PROP_MAX_GUEST_NOTIFICATIONS (256) changes: after 300 a
    walk from an unknown timestamp starts at the set of value 44 (the 51 oldest changes,
    7 from load and 44 sets, are gone), with VWRN_NOT_FOUND.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:doNotifications, HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getOldNotificationInternal
    """
    for i in range(300):
        assert svc.set_property("n", str(i)) == Status.VINF_SUCCESS
    got = guest.wait("", 1)
    assert got.status == Status.VWRN_NOT_FOUND
    assert got.buffer(2, got.params[3].value) == b"n\0" + b"44\0\0" + b"0\0"


@pytest.mark.guestprop("GET_NOTIFICATION")
@pytest.mark.parametrize("params", [
    (cstr(""), SvcParm.u64(0), SvcParm.ptr(16)),
    (cstr(""), SvcParm.u32(0), SvcParm.ptr(16), SvcParm.u32(0)),
    (cstr(""), SvcParm.u64(0), SvcParm.ptr(0), SvcParm.u32(0)),
    (SvcParm.ptr(b"x"), SvcParm.u64(0), SvcParm.ptr(16), SvcParm.u32(0)),
], ids=["three-parms", "timestamp-u32", "empty-buffer", "patterns-unterminated"])
def test_bad_calls(guest: Guest, params: tuple[SvcParm, ...]) -> None:
    """Four parameters: a terminated pattern string, a 64-bit timestamp and a non-empty
    buffer; else VERR_INVALID_PARAMETER.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:getNotification
    """
    assert guest.call(GuestPropFn.GET_NOTIFICATION, *params).status == Status.VERR_INVALID_PARAMETER
