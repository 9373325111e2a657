"""hgcmlab.runtime.paths: guest path text -> confined component list."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hgcmlab.runtime.paths import (
    GuestPath,
    convert_guest_path,
    fold_name,
    has_wildcard,
    nt_wildcard_match,
    symlink_target_inside,
)
from hgcmlab.runtime.status import RtError, Status

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


@pytest.mark.parametrize("pattern,name,expected", [
    ("*", "anything", True), ("*", ".", True), ("*.txt", "a.TXT", True), ("*.txt", "a.dat", False),
    ("?", "a", True), ("?", "ab", False), ("a?c", "ABC", True), ("FILE.TXT", "file.txt", True),
    ("file", "file.txt", False), ("*a*b*c*", "xxaxxbxxcxx", True), ("*a*b*c*", "cba", False),
    ("<.txt", "a.b.txt", True), ("<", "noext", True), ("<", "a.b", False),
    ("a>>.txt", "a.txt", True), ("a>>.txt", "abc.txt", True), ("a>>.txt", "abcd.txt", False),
    ('a"', "a", True), ('a"', "a.", True), ('a"b', "a.b", True), ('a"b', "axb", False),
    ("<\"*", "x.y", True), ("é*", "É.txt", True),
])
def test_nt_wildcards(pattern: str, name: str, expected: bool) -> None:
    assert nt_wildcard_match(pattern, name) is expected


def test_nt_wildcards_hostile_pattern_is_fast() -> None:
    assert not nt_wildcard_match("*a" * 100 + "b", "a" * 255)


def test_fold_name_and_wildcard_detection() -> None:
    assert fold_name("straße") == "STRAßE"  # one code point each, like IPRT
    assert has_wildcard(b"a<b") and has_wildcard(b'"') and not has_wildcard(b"plain.txt")


@pytest.mark.parametrize("target,depth,inside", [
    (b"sub", 0, True), (b"..", 0, False), (b"..", 1, True), (b"../..", 1, False),
    (b"a/../../x", 1, True), (b"a/../../x", 0, False), (b"/etc", 3, False), (b"", 0, True),
    (b"./.././x", 1, True),
])
def test_symlink_target_inside(target: bytes, depth: int, inside: bool) -> None:
    assert symlink_target_inside(target, depth) is inside
