"""Adversarial cases of security.md §5 that the implemented functions cover.

The ``tree`` fixture asserts after every test that nothing outside the shares changed.
"""

from __future__ import annotations

import os

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCf, ShflCreateResult, ShflFn
from hgcmlab.services.sharedfolders.service import SharedFoldersService
from tests.service.conftest import READ_OPEN, Guest, Tree

CF = ShflCf
R = ShflCreateResult


@pytest.fixture
def root(guest: Guest) -> int:
    return guest.map("sf")


@pytest.mark.parametrize("path", ["../outside/secret.txt", "..", "sub/../../outside/secret.txt"])
def test_p01_p05_dotdot_escape(guest: Guest, root: int, path: str) -> None:
    for flags in (READ_OPEN, CF.DIRECTORY | READ_OPEN, CF.LOOKUP):
        st, cp = guest.create(root, path, flags)
        assert st == Status.VERR_INVALID_NAME and cp.Handle == SHFL_HANDLE_NIL


def test_p03_dotdot_inside_ok(guest: Guest, root: int) -> None:
    st, cp = guest.create(root, "sub/../sub/file.txt", READ_OPEN)
    assert (st, cp.Result) == (0, R.FILE_EXISTS)
    assert guest.read(root, cp.Handle, 0, 5)[1] == b"hello"


def test_p07_absolute_guest_path_is_relative(guest: Guest, root: int) -> None:
    st, cp = guest.create(root, "/etc/passwd", READ_OPEN)
    assert st == 0 and cp.Result in (R.PATH_NOT_FOUND, R.FILE_NOT_FOUND) and cp.Handle == SHFL_HANDLE_NIL


def test_p09_p11_backslashes(guest: Guest, root: int, tree: Tree) -> None:
    st, cp = guest.create(root, "a\\..\\..\\outside", CF.ACCESS_WRITE)
    assert (st, cp.Result) == (0, R.FILE_CREATED)
    assert (tree.share / "a\\..\\..\\outside").is_file()
    win = Guest(guest.svc)
    wr = win.map("sf", delimiter="\\")
    st, _ = win.create(wr, "sub\\..\\..\\outside\\secret.txt", READ_OPEN)
    assert st == Status.VERR_INVALID_NAME
    st, cp = win.create(wr, "sub\\file.txt", READ_OPEN)
    assert (st, cp.Result) == (0, R.FILE_EXISTS)
    assert win.create(wr, "sub/file.txt", READ_OPEN)[0] == Status.VERR_INVALID_NAME


def test_p19_long_component(guest: Guest, root: int, tree: Tree) -> None:
    st, _ = guest.create(root, "a" * 256, CF.ACCESS_WRITE)
    assert st == Status.VERR_FILENAME_TOO_LONG
    st, cp = guest.create(root, "a" * 255, CF.ACCESS_WRITE)
    assert (st, cp.Result) == (0, R.FILE_CREATED)
    assert [p.name for p in tree.share.iterdir() if p.name.startswith("aaa")] == ["a" * 255]


@pytest.mark.parametrize("path", ["rel_out/secret.txt", "abs_out/secret.txt"])
def test_s01_escaping_links(guest: Guest, root: int, path: str) -> None:
    st, cp = guest.create(root, path, READ_OPEN)
    assert st == Status.VERR_ACCESS_DENIED and cp.Handle == SHFL_HANDLE_NIL


def test_s03_abs_link_dir_open_fails(guest: Guest, root: int) -> None:
    st, cp = guest.create(root, "abs_out", CF.DIRECTORY | READ_OPEN)
    assert st == Status.VERR_ACCESS_DENIED and cp.Handle == SHFL_HANDLE_NIL


@pytest.mark.parametrize("flags", [
    CF.ACCESS_WRITE | CF.ACT_OVERWRITE_IF_EXISTS,
    CF.ACCESS_WRITE | CF.ACT_OPEN_IF_EXISTS,
    CF.ACCESS_WRITE | CF.ACT_REPLACE_IF_EXISTS | CF.ACT_FAIL_IF_NEW,
])
def test_s05_dangling_escape_never_creates(guest: Guest, root: int, tree: Tree, flags: int) -> None:
    st, cp = guest.create(root, "dangling", flags)
    assert st == Status.VERR_ACCESS_DENIED and cp.Handle == SHFL_HANDLE_NIL
    assert not (tree.outside / "created.txt").exists()


def test_s05_exclusive_create_on_dangling_reports_exists(guest: Guest, root: int, tree: Tree) -> None:
    st, cp = guest.create(root, "dangling", CF.ACCESS_WRITE | CF.ACT_FAIL_IF_EXISTS)
    assert (st, cp.Result, cp.Handle) == (0, R.FILE_EXISTS, SHFL_HANDLE_NIL)
    assert not (tree.outside / "created.txt").exists()


def test_s07_inside_link_followed(guest: Guest, root: int) -> None:
    st, cp = guest.create(root, "link_in/file.txt", READ_OPEN)
    assert st == 0 and guest.read(root, cp.Handle, 0, 5)[1] == b"hello"


def test_s09_lookup_never_reports_outside(guest: Guest, root: int, tree: Tree) -> None:
    st, cp = guest.create(root, "abs_out", CF.LOOKUP)
    outside_ino = os.stat(tree.outside).st_ino
    assert st == Status.VERR_ACCESS_DENIED or cp.Info.Attr.u.INodeId != outside_ino
    guest.call(ShflFn.SET_SYMLINKS)
    st, cp = guest.create(root, "abs_out", CF.LOOKUP)
    assert st == 0 and cp.Info.Attr.u.INodeId == os.lstat(tree.share / "abs_out").st_ino


def test_loop_and_fifo(guest: Guest, root: int) -> None:
    st, cp = guest.create(root, "loop", READ_OPEN)
    assert st == Status.VERR_TOO_MANY_SYMLINKS and cp.Handle == SHFL_HANDLE_NIL
    st, cp = guest.create(root, "fifo", READ_OPEN)  # never blocks, never yields a handle
    assert st == Status.VERR_ACCESS_DENIED and cp.Handle == SHFL_HANDLE_NIL


def test_a01_a03_read_only(guest: Guest, tree: Tree) -> None:
    rr = guest.map("ro")
    assert guest.create(rr, "new.txt", CF.ACCESS_WRITE)[0] == Status.VERR_WRITE_PROTECT
    st, _ = guest.create(rr, "file.txt", CF.ACCESS_WRITE | CF.ACT_REPLACE_IF_EXISTS | CF.ACT_FAIL_IF_NEW)
    assert st == Status.VERR_WRITE_PROTECT
    assert (tree.ro / "file.txt").read_bytes() == b"ro-data" and not (tree.ro / "new.txt").exists()


def test_h03_cross_client_handle(svc: SharedFoldersService) -> None:
    a, b = Guest(svc), Guest(svc)
    ra, rb = a.map("sf"), b.map("sf")
    h = a.open(ra, "sub/file.txt")
    assert b.read(rb, h, 0, 5)[0] == Status.VERR_INVALID_HANDLE
    assert b.close(rb, h) == Status.VERR_INVALID_HANDLE
    assert a.read(ra, h, 0, 5)[1] == b"hello"


def test_h05_type_confusion(guest: Guest, root: int) -> None:
    d = guest.open(root, "sub", CF.DIRECTORY | READ_OPEN)
    assert guest.read(root, d, 0, 4)[0] == Status.VERR_INVALID_HANDLE
    assert guest.write(root, d, 0, b"x")[0] == Status.VERR_INVALID_HANDLE


def test_h07_stale_handle_never_reaches_new_file(guest: Guest, root: int, tree: Tree) -> None:
    (tree.share / "other.txt").write_bytes(b"other")
    seen = set()
    for _ in range(4100):  # wrap the next-fit cursor so slots are reused
        h = guest.open(root, "sub/file.txt")
        assert h not in seen
        seen.add(h)
        assert guest.close(root, h) == 0
    h1 = guest.open(root, "sub/file.txt")
    guest.close(root, h1)
    h2 = guest.open(root, "other.txt")
    assert h2 != h1
    assert guest.read(root, h1, 0, 5)[0] == Status.VERR_INVALID_HANDLE
    assert guest.read(root, h2, 0, 5)[1] == b"other"


def test_fd_count_back_to_baseline_after_disconnect(svc: SharedFoldersService) -> None:
    before = len(os.listdir("/proc/self/fd"))
    g = Guest(svc)
    r = g.map("sf")
    for _ in range(10):
        g.open(r, "sub/file.txt")
        g.open(r, "sub", CF.DIRECTORY | READ_OPEN)
    assert len(os.listdir("/proc/self/fd")) >= before + 20
    g.disconnect()
    assert len(os.listdir("/proc/self/fd")) == before
