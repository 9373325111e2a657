"""CLOSE, READ, WRITE (incl. append), FLUSH, LOCK, SET_FILE_SIZE on real files."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCf, ShflFn, ShflLock
from tests.service.conftest import Guest, Tree

CF = ShflCf
RW_OPEN = CF.ACCESS_READWRITE | CF.ACT_OPEN_IF_EXISTS | CF.ACT_FAIL_IF_NEW


@pytest.fixture
def root(guest: Guest) -> int:
    return guest.map("sf")


def test_read_simple_short_and_eof(guest: Guest, root: int) -> None:
    h = guest.open(root, "sub/file.txt")
    assert guest.read(root, h, 0, 5) == (0, b"hello", 5)
    assert guest.read(root, h, 3, 10) == (0, b"lo", 2)
    assert guest.read(root, h, 5, 10) == (0, b"", 0)
    assert guest.read(root, h, 1000, 10) == (0, b"", 0)
    assert guest.read(root, h, 0, 0) == (0, b"", 0)


def test_read_buffer_smaller_than_cb(guest: Guest, root: int) -> None:
    h = guest.open(root, "sub/file.txt")
    st, _, cb = guest.read(root, h, 0, 10, bufsize=4)
    assert (st, cb) == (Status.VERR_INVALID_HANDLE, 10)  # quirk 7; cb untouched
    buf, cbp = SvcParm.pages(4), SvcParm.u32(10)
    st = guest.call(ShflFn.READ, SvcParm.u32(root), SvcParm.u64(h), SvcParm.u64(0), cbp, buf)
    assert st == Status.VERR_OUT_OF_RANGE


def test_read_pages_variant_and_huge_offset(guest: Guest, root: int) -> None:
    h = guest.open(root, "sub/file.txt")
    buf, cbp = SvcParm.pages(8), SvcParm.u32(8)
    assert guest.call(ShflFn.READ, SvcParm.u32(root), SvcParm.u64(h), SvcParm.u64(1), cbp, buf) == 0
    assert (cbp.value, bytes(buf.buffer[:4])) == (4, b"ello")
    st, _, cb = guest.read(root, h, 0xFFFFFFFFFFFFFFF0, 16)  # A13
    assert (st, cb) == (Status.VERR_INVALID_PARAMETER, 0)


def test_reserved_handles(guest: Guest, root: int) -> None:  # H01
    assert guest.read(root, 0, 0, 4)[0] == Status.VERR_INVALID_PARAMETER
    assert guest.read(root, SHFL_HANDLE_NIL, 0, 4)[0] == Status.VERR_INVALID_HANDLE
    assert guest.write(root, 0, 0, b"x")[0] == Status.VERR_INVALID_PARAMETER
    assert guest.close(root, 0) == Status.VERR_INVALID_PARAMETER
    assert guest.close(root, SHFL_HANDLE_NIL) == Status.VERR_INVALID_HANDLE
    assert guest.call(ShflFn.FLUSH, SvcParm.u32(root), SvcParm.u64(0)) == Status.VERR_INVALID_PARAMETER
    assert guest.call(ShflFn.FLUSH, SvcParm.u32(root), SvcParm.u64(SHFL_HANDLE_NIL)) == Status.VERR_INVALID_HANDLE


def test_write_positional_and_hole(guest: Guest, root: int, tree: Tree) -> None:
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    assert guest.write(root, h, 1, b"EL") == (0, 3, 2)
    assert guest.write(root, h, 8, b"Z") == (0, 9, 1)
    assert (tree.share / "sub/file.txt").read_bytes() == b"hELlo\0\0\0Z"
    assert guest.write(root, h, 4, b"", cb=0) == (0, 4, 0)


def test_write_ptr_reports_requested_count_pages_actual(guest: Guest, root: int, tree: Tree) -> None:
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    assert guest.write(root, h, 0, b"abc", pages=True) == (0, 3, 3)
    st, off, cb = guest.write(root, h, 0, b"abcdef", cb=10)
    assert st == Status.VERR_INVALID_HANDLE and (off, cb) == (0, 10)
    st, off, cb = guest.write(root, h, 0, b"abcdef", cb=10, pages=True)
    assert st == Status.VERR_OUT_OF_RANGE


def test_append_handle(guest: Guest, root: int, tree: Tree) -> None:
    h = guest.open(root, "sub/file.txt", CF.ACCESS_WRITE | CF.ACCESS_APPEND | CF.ACT_FAIL_IF_NEW)
    assert guest.write(root, h, 0, b" world") == (0, 11, 6)
    assert guest.write(root, h, 100, b"!") == (0, 101, 1)  # max(size, offset + written)
    assert (tree.share / "sub/file.txt").read_bytes() == b"hello world!"


def test_append_ignored_for_read_only_open(guest: Guest, root: int) -> None:
    h = guest.open(root, "sub/file.txt", CF.ACCESS_READ | CF.ACCESS_APPEND | CF.ACT_FAIL_IF_NEW)
    assert guest.write(root, h, 0, b"x")[0] == Status.VERR_INVALID_HANDLE  # EBADF


def test_write_on_read_handle_and_read_on_write_handle(guest: Guest, root: int, tree: Tree) -> None:
    h = guest.open(root, "sub/file.txt")
    assert guest.write(root, h, 0, b"x") == (Status.VERR_INVALID_HANDLE, 0, 0)
    w = guest.open(root, "sub/file.txt", CF.ACCESS_WRITE | CF.ACT_FAIL_IF_NEW)
    assert guest.read(root, w, 0, 3) == (Status.VERR_INVALID_HANDLE, b"", 0)
    assert (tree.share / "sub/file.txt").read_bytes() == b"hello"


def test_close_then_handle_is_dead(guest: Guest, root: int) -> None:
    h = guest.open(root, "sub/file.txt")
    assert guest.close(root, h) == 0
    assert guest.close(root, h) == Status.VERR_INVALID_HANDLE
    assert guest.read(root, h, 0, 1)[0] == Status.VERR_INVALID_HANDLE
    d = guest.open(root, "sub")
    assert guest.close(root, d) == 0


def test_handle_under_other_root_is_invalid(guest: Guest, root: int) -> None:
    rr = guest.map("ro")
    h = guest.open(root, "sub/file.txt")
    assert guest.read(rr, h, 0, 1)[0] == Status.VERR_INVALID_HANDLE
    assert guest.close(rr, h) == Status.VERR_INVALID_HANDLE


def test_flush(guest: Guest, root: int) -> None:
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    assert guest.call(ShflFn.FLUSH, SvcParm.u32(root), SvcParm.u64(h)) == 0
    d = guest.open(root, "sub")
    assert guest.call(ShflFn.FLUSH, SvcParm.u32(root), SvcParm.u64(d)) == Status.VERR_INVALID_HANDLE
    rr = guest.map("ro")
    hr = guest.open(rr, "file.txt")
    assert guest.call(ShflFn.FLUSH, SvcParm.u32(rr), SvcParm.u64(hr)) == Status.VERR_WRITE_PROTECT


def test_lock_is_validated_noop(guest: Guest, root: int) -> None:
    h = guest.open(root, "sub/file.txt")

    def lock(flags: int, handle: int = h) -> int:
        return guest.call(ShflFn.LOCK, SvcParm.u32(root), SvcParm.u64(handle), SvcParm.u64(50000),
                          SvcParm.u64(4000), SvcParm.u32(flags))
    assert lock(ShflLock.SHARED) == 0
    assert lock(ShflLock.CANCEL) == 0
    assert lock(ShflLock.EXCLUSIVE | ShflLock.WAIT) == 0
    assert lock(3) == Status.VERR_INVALID_PARAMETER
    assert lock(ShflLock.SHARED | ShflLock.ENTIRE) == Status.VERR_INVALID_PARAMETER
    assert lock(ShflLock.CANCEL | ShflLock.ENTIRE) == Status.VERR_INVALID_PARAMETER
    assert lock(ShflLock.SHARED, 0) == Status.VERR_INVALID_PARAMETER


def test_set_file_size(guest: Guest, root: int, tree: Tree) -> None:
    h = guest.open(root, "sub/file.txt", RW_OPEN)

    def setsize(size: int, handle: int = h) -> int:
        return guest.call(ShflFn.SET_FILE_SIZE, SvcParm.u32(root), SvcParm.u64(handle), SvcParm.u64(size))
    assert setsize(2) == 0 and (tree.share / "sub/file.txt").read_bytes() == b"he"
    assert setsize(4) == 0 and (tree.share / "sub/file.txt").read_bytes() == b"he\0\0"
    assert setsize((1 << 63) - 1) == Status.VERR_FILE_TOO_BIG  # A11
    assert setsize(1 << 63) == Status.VERR_INVALID_PARAMETER
    assert (tree.share / "sub/file.txt").stat().st_size == 4
    assert setsize(1, 0xABC) == Status.VERR_INVALID_HANDLE
