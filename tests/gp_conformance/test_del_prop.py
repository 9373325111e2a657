"""DEL_PROP: permission checks, absent names, the change it records."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.guestprops.abi import GuestPropFlag, GuestPropFn
from hgcmlab.services.guestprops.service import GuestPropService
from tests.gp_conformance.conftest import Guest, cstr


@pytest.mark.guestprop("DEL_PROP")
def test_delete_table_of_the_testcase(svc: GuestPropService, guest: Guest) -> None:
    """Deleting needs the side's write permission (VERR_PERMISSION_DENIED otherwise); an
    absent name is success.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:delProperty, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:testDelProp
    """
    assert svc.set_property("Red", "Stop!", "transient") == Status.VINF_SUCCESS
    assert svc.set_property("Amber", "Caution!") == Status.VINF_SUCCESS
    assert svc.set_property("Green", "Go!", "readonly") == Status.VINF_SUCCESS
    assert guest.delete("Red") == Status.VINF_SUCCESS
    assert svc.delete_property("Amber") == Status.VINF_SUCCESS
    assert guest.delete("Green") == Status.VERR_PERMISSION_DENIED
    assert svc.delete_property("Green") == Status.VERR_PERMISSION_DENIED
    assert guest.delete("Red") == Status.VINF_SUCCESS
    assert svc.get_property("Red") is None and svc.get_property("Green") is not None


@pytest.mark.guestprop("DEL_PROP")
@pytest.mark.parametrize(("name", "by_host", "create", "flags", "status"), [
    ("Red", True, True, "", Status.VINF_SUCCESS),
    ("Amber", False, True, "", Status.VINF_PERMISSION_DENIED),
    ("Red2", True, False, "", Status.VINF_SUCCESS),
    ("Amber2", False, False, "", Status.VINF_SUCCESS),
    ("Red3", True, True, "READONLY", Status.VERR_PERMISSION_DENIED),
    ("Amber3", False, True, "READONLY", Status.VERR_PERMISSION_DENIED),
    ("Red4", True, True, "RDONLYHOST", Status.VERR_PERMISSION_DENIED),
    ("Amber4", False, True, "RDONLYHOST", Status.VINF_PERMISSION_DENIED),
], ids=["host", "guest", "host-absent", "guest-absent", "host-readonly", "guest-readonly",
        "host-rdonlyhost", "guest-rdonlyhost"])
def test_global_rdonlyguest(svc: GuestPropService, guest: Guest, name: str, by_host: bool, create: bool,
                            flags: str, status: Status) -> None:
    """Under the global RDONLYGUEST flag a guest delete of an existing property is
    VINF_PERMISSION_DENIED (nothing deleted), of an absent one success.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:delProperty, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:testDelPropROGuest
    """
    svc.set_global_flags(GuestPropFlag.RDONLYGUEST)
    if create:
        assert svc.set_property(name, "none", flags) == Status.VINF_SUCCESS
    assert (svc.delete_property(name) if by_host else guest.delete(name)) == status
    assert (svc.get_property(name) is None) == (status == Status.VINF_SUCCESS)


@pytest.mark.guestprop("DEL_PROP")
@pytest.mark.parametrize("params", [(), (cstr("a"), cstr("b")), (cstr("a*"),), (cstr("x" * 64),)],
                         ids=["none", "two", "wildcard", "long-name"])
def test_bad_calls(guest: Guest, params: tuple) -> None:
    """One parameter holding a valid name, else VERR_INVALID_PARAMETER.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:delProperty
    """
    assert guest.call(GuestPropFn.DEL_PROP, *params).status == Status.VERR_INVALID_PARAMETER
