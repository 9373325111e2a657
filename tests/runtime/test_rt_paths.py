"""runtime.paths: guest path text -> confined component list."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.paths import GuestPath, convert_guest_path
from runtime.status import RtError, Status

SLASH, BACK = 0x2F, 0x5C


def comps(text: str, delim: int = SLASH) -> tuple[bytes, ...]:
    return convert_guest_path(text, delim).components


def err(text: str, delim: int = SLASH) -> int:
    with pytest.raises(RtError) as info:
        convert_guest_path(text, delim)
    return info.value.status


def test_leading_delimiters_stripped_and_repeats_collapse() -> None:
    assert comps("///a//b/") == (b"a", b"b")
    assert comps("\\\\a\\\\b", BACK) == (b"a", b"b")


def test_empty_and_dot_mean_root() -> None:
    assert convert_guest_path("", SLASH).is_root
    assert convert_guest_path("/./.", SLASH).is_root
    assert comps("a/b/..") == (b"a",)
    assert comps("a/..") == ()


def test_dotdot_inside_is_fine_and_escape_is_invalid_name() -> None:
    assert comps("sub/../sub/file.txt") == (b"sub", b"file.txt")
    assert err("..") == Status.VERR_INVALID_NAME
    assert err("a/../../x") == Status.VERR_INVALID_NAME
    # VirtualBox normalises lexically against the host root and would accept this one.
    assert err("../share/x") == Status.VERR_INVALID_NAME


def test_backslash_is_a_name_char_for_slash_clients() -> None:
    assert comps("a\\..\\..\\outside") == (b"a\\..\\..\\outside",)


def test_slash_inside_component_rejected_for_backslash_clients() -> None:
    assert err("a/b", BACK) == Status.VERR_INVALID_NAME
    assert comps("sub\\file.txt", BACK) == (b"sub", b"file.txt")
    assert err("sub\\..\\..\\outside\\secret.txt", BACK) == Status.VERR_INVALID_NAME


def test_nul_rejected() -> None:
    assert err("a\0b") == Status.VERR_INVALID_NAME


def test_delimiter_zero_converts_nothing() -> None:
    assert comps("abc", 0) == (b"abc",)
    assert convert_guest_path("", 0).is_root
    assert err("a/b", 0) == Status.VERR_INVALID_NAME


def test_length_limits() -> None:
    assert comps("a" * 255) == (b"a" * 255,)
    assert err("a" * 256) == Status.VERR_FILENAME_TOO_LONG
    assert err("é" * 128) == Status.VERR_FILENAME_TOO_LONG  # 256 UTF-8 bytes
    long_ok = "/".join(["b" * 255] * 16)  # 16*256-1 = 4095 bytes
    assert len(comps(long_ok)) == 16
    assert err(long_ok + "/c") == Status.VERR_FILENAME_TOO_LONG


def test_trailing_delimiter_recorded() -> None:
    assert convert_guest_path("a/b/", SLASH).trailing_delimiter
    assert not convert_guest_path("a/b", SLASH).trailing_delimiter
    assert not convert_guest_path("/", SLASH).trailing_delimiter


def test_guestpath_helpers() -> None:
    p = GuestPath((b"a", b"b"))
    assert p.name == b"b" and p.parent() == GuestPath((b"a",))
    assert p.host_relpath() == b"a/b" and GuestPath(()).host_relpath() == b"."
    assert GuestPath(()).parent().is_root


@given(st.lists(st.sampled_from(["a", "..", ".", "", "b\\c", "é"]), max_size=12))
def test_never_escapes_or_yields_special_components(parts: list[str]) -> None:
    try:
        result = comps("/".join(parts))
    except RtError as e:
        assert e.status == Status.VERR_INVALID_NAME
        return
    assert all(c not in (b"", b".", b"..") and b"/" not in c for c in result)
