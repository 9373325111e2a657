"""Property-based tests (hypothesis) over guest paths and request encodings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.harness import Harness
from fuzz.tree import build_tree
from hgcmlab.runtime.fs import HostRoot
from hgcmlab.runtime.paths import DELIM_BACKSLASH, DELIM_SLASH, convert_guest_path
from hgcmlab.runtime.status import RtError
from hgcmlab.services.sharedfolders import strings

_PIECES = st.sampled_from(["..", ".", "", "sub", "file.txt", "link_in", "rel_out", "abs_out", "dangling",
                           "loop", "fifo", "empty", "a\\b", "x/y", "\0", "é", "\udc80"])
_PATHS = st.lists(_PIECES, max_size=8).map("/".join)
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@given(_PATHS, st.sampled_from([DELIM_SLASH, DELIM_BACKSLASH, 0]))
@settings(max_examples=500, deadline=None)
def test_accepted_paths_are_clean_components(text: str, delimiter: int) -> None:
    try:
        path = convert_guest_path(text, delimiter)
    except RtError:
        return
    for comp in path.components:
        assert comp not in (b"", b".", b"..") and b"/" not in comp and b"\0" not in comp


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[HostRoot]]]:
    base = tmp_path_factory.mktemp("prop")
    tree = build_tree(base)
    hosts = [HostRoot(str(tree.share), use_openat2=True), HostRoot(str(tree.share), use_openat2=False)]
    yield tree.share, hosts
    for h in hosts:
        h.close()


@given(_PATHS)
@_SETTINGS
def test_every_resolution_stays_beneath_the_share(roots: tuple[Path, list[HostRoot]], text: str) -> None:
    share, hosts = roots
    try:
        path = convert_guest_path(text, DELIM_SLASH)
    except RtError:
        return
    for host in hosts:
        try:
            fd = host._open(path, os.O_PATH)  # noqa: SLF001 - the resolver itself is under test
        except RtError:
            continue
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        assert real == str(share) or real.startswith(str(share) + "/"), (text, real)


@given(st.binary(max_size=64), st.booleans())
@settings(max_examples=500, deadline=None)
def test_shflstring_parser_only_raises_rt_errors(raw: bytes, utf8: bool) -> None:
    try:
        strings.parse_in(raw, utf8)
        strings.parse_in_or_null(raw, utf8)
        strings.check_valid_out(raw)
    except RtError:
        pass


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("hfuzz"))
    yield h
    h.close()


_RECORD = st.tuples(st.integers(0, 255), st.binary(max_size=200)).map(
    lambda r: bytes([r[0]]) + len(r[1]).to_bytes(2, "little") + r[1])


@given(st.lists(_RECORD, max_size=6).map(b"".join))
@_SETTINGS
def test_any_request_program_keeps_the_invariants(harness: Harness, program: bytes) -> None:
    harness.run(program)
