"""Dispatch: unknown functions."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from tests.gp_conformance.conftest import Guest


@pytest.mark.guestprop("GET_PROP", "SET_PROP", "SET_PROP_VALUE", "DEL_PROP", "ENUM_PROPS", "GET_NOTIFICATION")
@pytest.mark.parametrize("function", [0, 7, 0xFFFFFFFF], ids=["zero", "seven", "max"])
def test_unknown_function(guest: Guest, function: int) -> None:
    """A function number outside GUEST_PROP_FN_* is VERR_NOT_IMPLEMENTED.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:Service::call
    """
    assert guest.call(function).status == Status.VERR_NOT_IMPLEMENTED
