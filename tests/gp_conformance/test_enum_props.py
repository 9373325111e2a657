"""ENUM_PROPS: patterns, output layout and order, sizes."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.guestprops.abi import GuestPropFn
from hgcmlab.services.guestprops.service import GuestPropService
from hgcmlab.services.hgcm import SvcParm
from tests.gp_conformance.conftest import Guest, host_block_of_the_testcase


def _sdbm(name: bytes) -> int:
    """IPRT's string-space key, written from the published formula
    hash(i) = hash(i - 1) * 65599 + c (strhash.h)."""
    value = 0
    for byte in name:
        value = (value * 65599 + byte) % (1 << 32)
    return value


RESULT1 = [b"TEST NAME\0TEST VALUE\0" b"999999\0RDONLYHOST\0",
           b"/test/name\0/test/value\0" b"999999999999\0RDONLYGUEST\0"]
SIZE1 = sum(len(r) for r in RESULT1) + 4


@pytest.mark.guestprop("ENUM_PROPS")
@pytest.mark.parametrize("patterns", [b"/t*\0?E*\0", b"/t*|?E*\0"], ids=["nul-separated", "bar-separated"])
def test_enum_table_of_the_testcase(svc: GuestPropService, guest: Guest, patterns: bytes) -> None:
    """Patterns separated by NUL or ``|``; each match as "name\\0value\\0timestamp\\0flags\\0"
    with a decimal timestamp, then four NULs; one byte short is VERR_BUFFER_OVERFLOW with
    the size needed.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:enumProps, HostServices/GuestProperties/VBoxGuestPropSvc.cpp:enumPropsCallback, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:testEnumPropsHost
    """
    host_block_of_the_testcase(svc)
    short = guest.enum(patterns, SIZE1 - 1)
    assert (short.status, short.params[2].value) == (Status.VERR_BUFFER_OVERFLOW, SIZE1)
    got = guest.enum(patterns, SIZE1)
    assert (got.status, got.params[2].value) == (Status.VINF_SUCCESS, SIZE1)
    in_order = sorted(RESULT1, key=lambda record: _sdbm(record.split(b"\0")[0]))
    assert got.buffer(1, SIZE1) == b"".join(in_order) + bytes(4)


@pytest.mark.guestprop("ENUM_PROPS")
def test_order_is_string_space_order(svc: GuestPropService, guest: Guest) -> None:
    """Properties come in ascending order of the sdbm hash of their names (the string
    space's AVL walk), not in insertion or name order.

    VBox: Runtime/common/string/strspace.cpp:RTStrSpaceEnumerate, Runtime/include/internal/strhash.h:sdbm, Runtime/common/table/avl_DoWithAll.cpp.h:DoWithAll
    """
    names = [f"/order/{i}" for i in (7, 3, 12, 5, 1, 30)]
    for name in names:
        assert svc.set_property(name, "v") == Status.VINF_SUCCESS
    got = guest.enum(b"/order/*\0")
    fields = got.buffer(1, got.params[2].value - 4).split(b"\0")[:-1]
    assert fields[0::4] == sorted((n.encode() for n in names), key=_sdbm)


@pytest.mark.guestprop("ENUM_PROPS")
def test_equal_hashes_chain_after_the_head(svc: GuestPropService, guest: Guest) -> None:
    """Names with one hash chain behind the first: a newcomer goes right after the head,
    so three colliding names enumerate first, third, second.

    VBox: Runtime/common/string/strspace.cpp:RTStrSpaceInsert
    """
    # "abbb0" and "aAaAo" share their hash, so every concatenation of two of them of one
    # length does too: h(xy) = h(x) * 65599**len(y) + h(y).
    first, second, third = b"abbb0aAaAo", b"aAaAoabbb0", b"abbb0abbb0"
    assert _sdbm(first) == _sdbm(second) == _sdbm(third)
    for name in (first, second, third):
        assert svc.set_property(name.decode(), "v") == Status.VINF_SUCCESS
    got = guest.enum(b"|".join((first, second, third)) + b"\0")
    assert got.buffer(1, got.params[2].value - 4).split(b"\0")[:-1][0::4] == [first, third, second]


@pytest.mark.guestprop("ENUM_PROPS")
def test_entries_that_do_not_fit_are_skipped(svc: GuestPropService, guest: Guest) -> None:
    """A property that does not fit ends the writing (the rest of the buffer counts as used)
    while the size keeps adding up, so the call is VERR_BUFFER_OVERFLOW with the full size.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:enumPropsCallback, HostServices/GuestProperties/testcase/tstGuestPropSvc.cpp:test5
    """
    for name, value in [("/MyProperties/Sub/Sub/Sub/Sub/Sub/Sub/Sub/Property", "Property Value"),
                        ("/MyProperties/12357", "83848569"), ("/MyProperties/56678", "abcdefghijklm"),
                        ("/MyProperties/932769", "n")]:
        assert svc.set_property(name, value) == Status.VINF_SUCCESS
    full = guest.enum(b"/MyProperties/*\0")
    assert full.status == Status.VINF_SUCCESS
    for size in range(full.params[2].value):
        part = guest.enum(b"/MyProperties/*\0", size) if size else guest.call(
            GuestPropFn.ENUM_PROPS, SvcParm.ptr(b"/MyProperties/*\0"), SvcParm.ptr(0), SvcParm.u32(0))
        if size == 0:
            assert part.status == Status.VERR_INVALID_PARAMETER
            continue
        assert (part.status, part.params[2].value) == (Status.VERR_BUFFER_OVERFLOW, full.params[2].value)
        written = part.buffer(1).rstrip(b"\0")
        assert full.buffer(1).startswith(written)


@pytest.mark.guestprop("ENUM_PROPS")
@pytest.mark.parametrize(("patterns", "status"), [
    (b"a\0b", Status.VERR_BUFFER_OVERFLOW),
    (b"a\0b\xff\0", Status.VERR_INVALID_UTF8_ENCODING),
    (b"a\0\xef\xbf\xbe\0", Status.VERR_CODE_POINT_ENDIAN_INDICATOR),
    (b"a\0\xed\xa0\x80\0", Status.VERR_CODE_POINT_SURROGATE),
    (b"*" + bytes(1023), Status.VINF_SUCCESS),
    (b"*" + bytes(1024), Status.VERR_TOO_MUCH_DATA),
    (b"\xff\0", Status.VERR_INVALID_PARAMETER),
], ids=["later-unterminated", "later-bad-utf8", "later-fffe", "later-surrogate", "1024-bytes",
        "1025-bytes", "first-bad-utf8"])
def test_pattern_buffer_checks(guest: Guest, patterns: bytes, status: Status) -> None:
    """The first pattern is checked like every string (VERR_INVALID_PARAMETER); the buffer
    may hold 1024 bytes (VERR_TOO_MUCH_DATA beyond); each pattern after a NUL is checked on
    its own and its IPRT status returned as it is.

    VBox: HostServices/GuestProperties/VBoxGuestPropSvc.cpp:enumProps, Runtime/common/string/utf-8.cpp:rtUtf8Length, Runtime/common/string/utf-8.cpp:RTStrValidateEncodingEx
    """
    assert guest.enum(patterns).status == status


@pytest.mark.guestprop("ENUM_PROPS")
@pytest.mark.parametrize(("patterns", "expected"), [
    (b"\0", ["alpha", "beta", "gamma"]),
    (b"\0beta\0", ["beta"]),
    (b"a*?\0", ["alpha"]),
    (b"?e*\0", ["beta"]),
    (b"*a\0", ["alpha", "beta", "gamma"]),
    (b"*m*\0", ["gamma"]),
    (b"alpha||gamma\0", ["alpha", "gamma"]),
    (b"ALPHA\0", []),
], ids=["empty-all", "leading-nul", "star-swallows-question", "question", "suffix", "infix",
        "empty-alternative", "case-sensitive"])
def test_pattern_matching(svc: GuestPropService, guest: Guest, patterns: bytes, expected: list[str]) -> None:
    """``*`` any run (and it swallows the ``*``/``?`` after it), ``?`` one byte, ``|``
    alternatives, case-sensitive; an empty list matches all, and a leading NUL becomes an
    empty first alternative that matches nothing.

    VBox: Runtime/common/string/simplepattern.cpp:RTStrSimplePatternMultiMatch, Runtime/common/string/simplepattern.cpp:RTStrSimplePatternNMatch, HostServices/GuestProperties/VBoxGuestPropSvc.cpp:Property::Matches
    """
    for name in ("alpha", "beta", "gamma"):
        assert svc.set_property(f"{name}", "v") == Status.VINF_SUCCESS
    got = guest.enum(patterns)
    names = got.buffer(1, got.params[2].value - 4).split(b"\0")[:-1][0::4]
    assert sorted(n.decode() for n in names if not n.startswith(b"/VirtualBox/")) == expected
