"""Flags text in and out: GuestPropValidateFlags / GuestPropWriteFlags, seen through SET_PROP
and GET_PROP (the only way a guest meets them)."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from tests.gp_conformance.conftest import Guest

#: tstGuestPropSvc.cpp:g_aValidFlagStrings (input, canonical output).
VALID = [
    ("  ", ""),
    ("transient, ", "TRANSIENT"),
    ("  rdOnLyHOST, transIENT  ,     READONLY    ", "TRANSIENT, READONLY"),
    (" rdonlyguest", "RDONLYGUEST"),
    ("rdonlyhost     ", "RDONLYHOST"),
    ("transient, transreset, rdonlyhost", "TRANSIENT, RDONLYHOST, TRANSRESET"),
    ("transient, transreset, rdonlyguest", "TRANSIENT, RDONLYGUEST, TRANSRESET"),
    ("rdonlyguest, rdonlyhost", "READONLY"),
    ("transient,   transreset, ", "TRANSIENT, TRANSRESET"),
    ("transreset, ", "TRANSIENT, TRANSRESET"),
]


@pytest.mark.guestprop("SET_PROP", "GET_PROP")
@pytest.mark.parametrize(("text", "canonical"), VALID, ids=[f"valid{i}" for i in range(len(VALID))])
def test_valid_flag_strings_round_trip(guest: Guest, text: str, canonical: str) -> None:
    """Valid flag lists are parsed case-insensitively with free spaces and a trailing comma,
    and written back canonically (READONLY for both RDONLY flags, TRANSRESET brings
    TRANSIENT).

    VBox: include/VBox/HostServices/GuestPropertySvc.h:GuestPropValidateFlags, include/VBox/HostServices/GuestPropertySvc.h:GuestPropWriteFlags, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:testConvertFlags
    """
    assert guest.set("flagtest", "v", text) == Status.VINF_SUCCESS
    got = guest.get("flagtest")
    assert got.status == Status.VINF_SUCCESS
    assert got.buffer(1, got.params[3].value) == b"v\0" + canonical.encode() + b"\0"


@pytest.mark.guestprop("SET_PROP")
@pytest.mark.parametrize("text", ["RDONLYHOST,,", "  TRANSIENT READONLY", "TRANSIENTX", "TRANS",
                                  "transıent"], ids=["double-comma", "no-comma", "junk-after", "prefix",
                                                     "non-ascii-lookalike"])
def test_invalid_flag_strings_refused(guest: Guest, text: str) -> None:
    """An unknown name, an empty item or a missing comma is VERR_PARSE_ERROR and nothing is
    set; names match in ASCII only.

    VBox: include/VBox/HostServices/GuestPropertySvc.h:GuestPropValidateFlags, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:g_apszInvalidFlagStrings
    """
    assert guest.set("flagtest", "v", text) == Status.VERR_PARSE_ERROR
    assert guest.get("flagtest").status == Status.VERR_NOT_FOUND
