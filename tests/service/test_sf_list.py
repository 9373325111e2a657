"""SHFL_FN_LIST (reference §5.2.8, quirk 19) on real directories, both resolvers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hgcmlab.runtime.fs import RtFs
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflFn, ShflList
from hgcmlab.services.sharedfolders.service import SharedFoldersService
from tests.service.conftest import READ_OPEN, Guest, Tree

CF = ShflCf
DIR_OPEN = CF.DIRECTORY | READ_OPEN
ONE, RESTART = ShflList.RETURN_ONE, ShflList.RESTART
ROOT_NAMES = [".", "..", "abs_out", "dangling", "fifo", "link_in", "loop", "rel_out", "sub"]


@pytest.fixture
def root(guest: Guest) -> int:
    return guest.map("sf")


def kind(rec_mode: int) -> int:
    return rec_mode & RtFs.TYPE_MASK


def test_list_root_then_no_more_files(guest: Guest, root: int) -> None:
    d = guest.open(root, "", DIR_OPEN)
    first = guest.list(root, d)
    assert (first.status, first.resume, first.count) == (0, 0, len(ROOT_NAMES))
    assert first.names == ROOT_NAMES
    assert first.cb == sum(126 + len(n) + 1 for n in ROOT_NAMES)  # packed, no padding
    assert all(r.u16_size == r.u16_length + 1 for r in first.records)
    again = guest.list(root, d)
    assert (again.status, again.cb, again.resume, again.count) == (Status.VERR_NO_MORE_FILES, 0, 0, 0)


def test_entry_info_and_confinement(guest: Guest, root: int, tree: Tree) -> None:
    d = guest.open(root, "", DIR_OPEN)
    recs = {r.name: r.info for r in guest.list(root, d).records}
    root_ino = os.stat(tree.share).st_ino
    assert recs["."].Attr.u.INodeId == root_ino
    assert recs[".."].Attr.u.INodeId == root_ino  # never the directory above the share
    assert kind(recs["sub"].Attr.fMode) == RtFs.TYPE_DIRECTORY
    assert recs["sub"].Attr.fMode & RtFs.DOS_DIRECTORY
    assert kind(recs["link_in"].Attr.fMode) == RtFs.TYPE_DIRECTORY  # followed, inside
    outside_ino = os.stat(tree.outside).st_ino
    for name in ("abs_out", "rel_out", "dangling"):  # escaping links: dummy info only
        info = recs[name]
        assert info.Attr.u.INodeId == 0 and info.cbObject == 0 and info.ModificationTime == 0
        assert info.Attr.fMode == RtFs.TYPE_SYMLINK | RtFs.DOS_NT_NORMAL
        assert info.Attr.u.INodeId != outside_ino
    assert kind(recs["fifo"].Attr.fMode) == RtFs.TYPE_FIFO
    guest.call(ShflFn.SET_SYMLINKS)
    d2 = guest.open(root, "", DIR_OPEN)
    recs = {r.name: r.info for r in guest.list(root, d2).records}
    assert recs["abs_out"].Attr.u.INodeId == os.lstat(tree.share / "abs_out").st_ino
    assert kind(recs["link_in"].Attr.fMode) == RtFs.TYPE_SYMLINK and recs["link_in"].cbObject == 3


def test_subdirectory_dotdot_and_file_info(guest: Guest, root: int, tree: Tree) -> None:
    d = guest.open(root, "sub", DIR_OPEN)
    recs = {r.name: r.info for r in guest.list(root, d).records}
    assert list(recs) == [".", "..", "empty", "file.txt"]
    assert recs[".."].Attr.u.INodeId == os.stat(tree.share).st_ino
    assert recs["file.txt"].cbObject == 5 and recs["file.txt"].Attr.u.INodeId == \
        os.stat(tree.share / "sub/file.txt").st_ino


def test_parameter_validation_and_write_back(guest: Guest, root: int) -> None:
    d = guest.open(root, "sub", DIR_OPEN)
    small = guest.list(root, d, cb=127)
    assert (small.status, small.cb, small.resume, small.count) == (Status.VERR_INVALID_PARAMETER, 127, 0x55, 0x77)
    assert guest.list(root, d, cb=200, bufsize=199).status == Status.VERR_INVALID_PARAMETER
    f = guest.open(root, "sub/file.txt")
    wrong = guest.list(root, f)  # H05: a file handle
    assert (wrong.status, wrong.cb, wrong.resume, wrong.count) == (Status.VERR_INVALID_HANDLE, 0, 0, 0)
    assert guest.list(root, 0xABC).status == Status.VERR_INVALID_HANDLE
    rr = guest.map("ro")
    assert guest.list(rr, d).status == Status.VERR_INVALID_HANDLE  # handle of another root
    args = [SvcParm.u32(root), SvcParm.u64(d), SvcParm.u32(0), SvcParm.u32(4096), SvcParm.ptr(0),
            SvcParm.ptr(4096), SvcParm.u32(0)]
    assert guest.call(ShflFn.LIST, *args) == Status.VERR_INVALID_PARAMETER  # old style count
    args.append(SvcParm.u64(0))
    assert guest.call(ShflFn.LIST, *args) == Status.VERR_INVALID_PARAMETER  # old style type


def test_exact_fit_overflow_and_saved_entry(guest: Guest, root: int) -> None:
    d = guest.open(root, "sub", DIR_OPEN)
    one = guest.list(root, d, cb=128)  # "." needs exactly 126 + 2
    assert (one.status, one.resume, one.names, one.cb) == (0, 1, ["."], 128)
    over = guest.list(root, d, cb=128)  # ".." needs 129: nothing fits
    assert (over.status, over.cb, over.resume, over.count) == (Status.VINF_BUFFER_OVERFLOW, 0, 1, 0)
    rest = guest.list(root, d)
    assert (rest.status, rest.resume, rest.names) == (0, 0, ["..", "empty", "file.txt"])


def test_partial_batch_keeps_entry_for_next_call(guest: Guest, root: int) -> None:
    d = guest.open(root, "sub", DIR_OPEN)
    part = guest.list(root, d, cb=128 + 129 + 100)  # ".", ".." fit; "empty" (132) does not
    assert (part.status, part.resume, part.names) == (0, 1, [".", ".."])
    assert guest.list(root, d).names == ["empty", "file.txt"]


def test_return_one_restart_and_saved_survives_rewind(guest: Guest, root: int) -> None:
    d = guest.open(root, "sub", DIR_OPEN)
    assert guest.list(root, d, ONE).names == ["."]
    assert guest.list(root, d, ONE).names == [".."]
    again = guest.list(root, d, ONE | RESTART)
    assert (again.status, again.resume, again.names) == (0, 1, ["."])
    assert guest.list(root, d, cb=128).status == Status.VINF_BUFFER_OVERFLOW  # ".." parked
    after = guest.list(root, d, RESTART)
    assert after.names == ["..", ".", "..", "empty", "file.txt"]  # quirk 19: parked entry first


def test_vanished_entry_returned_with_dummy_info(guest: Guest, root: int, tree: Tree) -> None:
    d = guest.open(root, "sub", DIR_OPEN)
    assert guest.list(root, d, ONE).names == ["."]  # snapshot taken
    (tree.share / "sub/file.txt").unlink()
    assert guest.list(root, d, ONE).names == [".."]
    assert guest.list(root, d, ONE).names == ["empty"]
    gone = guest.list(root, d, ONE)
    assert (gone.status, gone.names) == (Status.VWRN_NO_DIRENT_INFO, ["file.txt"])
    info = gone.records[0].info
    assert (info.cbObject, info.Attr.fMode, info.Attr.u.INodeId) == (0, RtFs.DOS_NT_NORMAL, 0)
    assert guest.list(root, d).status == Status.VERR_NO_MORE_FILES


def test_utf16_client_encoding_and_over_estimate(svc: SharedFoldersService, tree: Tree) -> None:
    (tree.share / "u").mkdir()
    (tree.share / "u/é").write_bytes(b"")
    g = Guest(svc, utf8=False)
    r = g.map("sf")
    d = g.open(r, "u", DIR_OPEN)
    dots = 126 + 4 + 126 + 6
    # "é" needs 126 + 4 bytes but the check charges 126 + 2 * (2 + 1) = 132.
    part = g.list(r, d, cb=dots + 130)
    assert (part.status, part.names, part.cb) == (0, [".", ".."], dots)
    rest = g.list(r, d)
    assert rest.names == ["é"] and (rest.records[0].u16_size, rest.records[0].u16_length) == (4, 2)
    assert rest.cb == 130


def test_names_invalid_in_client_encoding_are_skipped(svc: SharedFoldersService, tree: Tree) -> None:
    (tree.share / "sub/ok.txt").write_bytes(b"")
    fd = os.open(os.path.join(os.fsencode(tree.share), b"sub", b"bad\xff"), os.O_CREAT | os.O_WRONLY)
    os.close(fd)
    for utf8 in (True, False):
        g = Guest(svc, utf8=utf8)
        r = g.map("sf")
        d = g.open(r, "sub", DIR_OPEN)
        assert g.list(r, d).names == [".", "..", "empty", "file.txt", "ok.txt"]


def test_filter_path_first_call_only(guest: Guest, root: int, tree: Tree) -> None:
    for name in ("a.txt", "B.TXT", "c.dat"):
        (tree.share / "sub" / name).write_bytes(b"")
    d = guest.open(root, "sub", DIR_OPEN)
    found = guest.list(root, d, RESTART, path="sub/*.txt")  # RESTART ignored when opened now
    assert (found.status, found.resume, found.names) == (0, 0, ["B.TXT", "a.txt", "file.txt"])
    assert guest.list(root, d, path="sub/*.dat").status == Status.VERR_NO_MORE_FILES  # same search
    assert guest.list(root, d, RESTART, path="whatever").names == ["B.TXT", "a.txt", "file.txt"]
    plain = guest.list(root, d)  # no path: the handle's own, unfiltered stream
    assert plain.names == [".", "..", "B.TXT", "a.txt", "c.dat", "empty", "file.txt"]


@pytest.mark.parametrize("path,names", [
    ("sub/FILE.TXT", ["file.txt"]),
    ("sub/*", [".", "..", "empty", "file.txt"]),
    ("sub/", [".", "..", "empty", "file.txt"]),
    ("sub/?mpty", ["empty"]),
    ("sub/<.txt", ["file.txt"]),
    ("/", ROOT_NAMES),
    ("link_in/f*", ["file.txt"]),
])
def test_filter_patterns(guest: Guest, root: int, path: str, names: list[str]) -> None:
    d = guest.open(root, "", DIR_OPEN)
    assert guest.list(root, d, path=path).names == names


@pytest.mark.parametrize("path,status", [
    ("nope/*", Status.VERR_FILE_NOT_FOUND),
    ("../*", Status.VERR_INVALID_NAME),         # C11
    ("sub/../../*", Status.VERR_INVALID_NAME),
    ("abs_out/*", Status.VERR_ACCESS_DENIED),   # S03: never names outside the share
    ("rel_out/secret.txt", Status.VERR_ACCESS_DENIED),
    ("sub/file.txt/*", Status.VERR_PATH_NOT_FOUND),
])
def test_filter_open_failures(guest: Guest, root: int, path: str, status: int) -> None:
    d = guest.open(root, "", DIR_OPEN)
    res = guest.list(root, d, path=path)
    assert (res.status, res.cb, res.resume, res.count) == (status, 0, 0, 0)
    assert guest.list(root, d, path="sub/*").names == [".", "..", "empty", "file.txt"]  # not bound


def test_p23_target_directory_lists_root(guest: Guest, root: int) -> None:
    st, cp = guest.create(root, "sub", CF.OPEN_TARGET_DIRECTORY | READ_OPEN)
    assert st == 0
    assert guest.list(root, cp.Handle).names == ROOT_NAMES


def test_self_link_does_not_expose_parent(guest: Guest, root: int, tree: Tree) -> None:
    os.symlink(".", tree.share / "self")
    d = guest.open(root, "self", DIR_OPEN)
    recs = {r.name: r.info for r in guest.list(root, d).records}
    assert recs[".."].Attr.u.INodeId == os.stat(tree.share).st_ino


def test_ten_thousand_entries_each_exactly_once(svc: SharedFoldersService, tmp_path: Path) -> None:
    big = tmp_path / "share/big"
    big.mkdir()
    expected = {f"file-{i:05d}.dat" for i in range(10_000)}
    for name in expected:
        (big / name).touch()
    for utf8 in (True, False):
        g = Guest(svc, utf8=utf8)
        r = g.map("sf")
        d = g.open(r, "big", DIR_OPEN)
        seen: list[str] = []
        calls = 0
        while True:
            res = g.list(r, d, cb=1000)
            calls += 1
            if res.status == Status.VERR_NO_MORE_FILES:
                assert (res.count, res.resume) == (0, 0)
                break
            assert res.status == 0 and res.count > 0
            assert res.resume == (0 if len(seen) + res.count == 10_002 else 1)
            seen += res.names
        assert len(seen) == 10_002 and set(seen) == expected | {".", ".."}
        assert calls > 1000


def test_search_stream_fd_released_on_close_and_disconnect(svc: SharedFoldersService) -> None:
    before = len(os.listdir("/proc/self/fd"))
    g = Guest(svc)
    r = g.map("sf")
    d = g.open(r, "", DIR_OPEN)
    assert g.list(r, d, path="sub/*").count == 4
    assert g.close(r, d) == 0
    d2 = g.open(r, "", DIR_OPEN)
    assert g.list(r, d2, path="link_in/*").count == 4
    g.disconnect()
    assert len(os.listdir("/proc/self/fd")) == before
