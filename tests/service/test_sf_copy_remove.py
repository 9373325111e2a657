"""SHFL_FN_COPY_FILE (§5.2.26) and SHFL_FN_CLOSE_AND_REMOVE (§5.2.11)."""

from __future__ import annotations

import errno
import os

import pytest

from hgcmlab.runtime.faults import Fault, inject
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCf, ShflFn, ShflRemove
from hgcmlab.services.sharedfolders.service import SharedFoldersService
from tests.service.conftest import READ_OPEN, Guest, Tree

CF, RM = ShflCf, ShflRemove


@pytest.fixture
def root(guest: Guest) -> int:
    return guest.map("sf")


def copy(g: Guest, src_root: int, src: str, dst_root: int, dst: str, flags: int = 0) -> int:
    return g.call(ShflFn.COPY_FILE, SvcParm.u32(src_root), g.s(src), SvcParm.u32(dst_root), g.s(dst),
                  SvcParm.u32(flags))


def close_and_remove(g: Guest, root: int, path: str, flags: int, handle: SvcParm) -> int:
    return g.call(ShflFn.CLOSE_AND_REMOVE, SvcParm.u32(root), g.s(path), SvcParm.u32(flags), handle)


def test_copy_file(guest: Guest, root: int, tree: Tree) -> None:
    assert copy(guest, root, "sub/file.txt", root, "copy.txt") == 0
    assert (tree.share / "copy.txt").read_bytes() == b"hello"
    assert copy(guest, root, "sub/file.txt", root, "copy.txt") == Status.VERR_ALREADY_EXISTS
    assert copy(guest, root, "nope", root, "x") == Status.VERR_FILE_NOT_FOUND
    assert copy(guest, root, "sub", root, "x") == Status.VERR_IS_A_DIRECTORY
    assert copy(guest, root, "fifo", root, "x") == Status.VERR_ACCESS_DENIED
    assert copy(guest, root, "link_in/file.txt", root, "sub/empty/c") == 0
    assert not (tree.share / "x").exists()


def test_copy_across_shares_and_read_only_destination(guest: Guest, root: int, tree: Tree) -> None:
    rr = guest.map("ro")
    assert copy(guest, rr, "file.txt", root, "from_ro.txt") == 0
    assert (tree.share / "from_ro.txt").read_bytes() == b"ro-data"
    assert copy(guest, root, "sub/file.txt", rr, "new.txt") == Status.VERR_WRITE_PROTECT  # quirk 4 fixed
    assert sorted(os.listdir(tree.ro)) == ["file.txt"]


def test_copy_confinement(guest: Guest, root: int, tree: Tree) -> None:
    assert copy(guest, root, "rel_out/secret.txt", root, "stolen") == Status.VERR_ACCESS_DENIED
    assert copy(guest, root, "../outside/secret.txt", root, "stolen") == Status.VERR_INVALID_NAME
    assert copy(guest, root, "sub/file.txt", root, "abs_out/x") == Status.VERR_ACCESS_DENIED
    assert copy(guest, root, "sub/file.txt", root, "dangling") == Status.VERR_ALREADY_EXISTS
    assert not (tree.share / "stolen").exists() and not (tree.outside / "created.txt").exists()


def test_copy_validation_order(guest: Guest, root: int) -> None:
    assert copy(guest, root, "sub/file.txt", root, "c", flags=1) == Status.VERR_INVALID_FLAGS
    assert guest.call(ShflFn.COPY_FILE, SvcParm.u32(root)) == Status.VERR_WRONG_PARAMETER_COUNT
    args = [SvcParm.u32(root), SvcParm.ptr(4), SvcParm.u64(root), guest.s("c"), SvcParm.u32(0)]
    assert guest.call(ShflFn.COPY_FILE, *args) == Status.VERR_INVALID_PARAMETER  # string 1 first
    args[1] = guest.s("sub/file.txt")
    assert guest.call(ShflFn.COPY_FILE, *args) == Status.VERR_WRONG_PARAMETER_TYPE
    assert copy(guest, root, "sub/file.txt", 63, "c") == Status.VERR_INVALID_PARAMETER


@pytest.mark.parametrize("refused", [errno.EXDEV, errno.ENOSYS])
def test_copy_falls_back_when_fast_paths_refused(guest: Guest, root: int, tree: Tree,
                                                 refused: int) -> None:
    big = os.urandom(3 << 20)
    (tree.share / "big.bin").write_bytes(big)
    faults = [Fault("copy_file_range", refused, times=None)]
    if refused == errno.ENOSYS:
        faults.append(Fault("sendfile", refused, times=None))
    with inject(*faults) as log:
        assert copy(guest, root, "big.bin", root, "big2.bin") == 0
    assert (tree.share / "big2.bin").read_bytes() == big
    assert log.count("copy_file_range") == 1


def test_failed_copy_leaves_no_destination(guest: Guest, root: int, tree: Tree) -> None:
    with inject(Fault("copy_file_range", errno.ENOSPC)):
        assert copy(guest, root, "sub/file.txt", root, "c.txt") == Status.VERR_DISK_FULL
    assert not (tree.share / "c.txt").exists()


def test_close_and_remove(guest: Guest, root: int, tree: Tree) -> None:
    h = guest.open(root, "sub/file.txt")
    assert close_and_remove(guest, root, "sub/file.txt", RM.FILE, SvcParm.u64(h)) == 0
    assert not (tree.share / "sub/file.txt").exists()
    assert guest.close(root, h) == Status.VERR_INVALID_HANDLE  # it was closed
    d = guest.open(root, "sub/empty", CF.DIRECTORY | READ_OPEN)
    assert close_and_remove(guest, root, "sub/empty", RM.DIR, SvcParm.u64(d)) == 0
    assert not (tree.share / "sub/empty").exists()
    (tree.share / "b.txt").write_bytes(b"")
    assert close_and_remove(guest, root, "b.txt", RM.FILE, SvcParm.u64(SHFL_HANDLE_NIL)) == 0
    assert not (tree.share / "b.txt").exists()


def test_close_and_remove_failures_remove_nothing(svc: SharedFoldersService, tree: Tree) -> None:
    a, b = Guest(svc), Guest(svc)
    ra, rb = a.map("sf"), b.map("sf")
    h = a.open(ra, "sub/file.txt")
    assert close_and_remove(b, rb, "sub/file.txt", RM.FILE, SvcParm.u64(h)) == Status.VERR_INVALID_HANDLE
    rr = a.map("ro")
    # vbsfRemove closes first: a handle of another root is VERR_INVALID_HANDLE (vbsfClose).
    assert close_and_remove(a, rr, "file.txt", RM.FILE, SvcParm.u64(h)) == Status.VERR_INVALID_HANDLE
    assert close_and_remove(a, ra, "sub/file.txt", RM.FILE, SvcParm.u64(0)) == Status.VERR_INVALID_HANDLE
    assert close_and_remove(a, ra, "sub/file.txt", RM.FILE, SvcParm.ptr(8)) == Status.VERR_INVALID_HANDLE
    assert close_and_remove(a, ra, "sub/file.txt", 8, SvcParm.u64(h)) == Status.VERR_INVALID_FLAGS
    assert (tree.share / "sub/file.txt").exists() and (tree.ro / "file.txt").exists()
    assert a.read(ra, h, 0, 5)[1] == b"hello"  # still open after every refusal
    assert close_and_remove(a, ra, "sub", RM.DIR, SvcParm.u64(h)) == Status.VERR_DIR_NOT_EMPTY
    assert a.read(ra, h, 0, 5)[0] == Status.VERR_INVALID_HANDLE  # closed, then removal failed
    assert a.call(ShflFn.CLOSE_AND_REMOVE, SvcParm.u32(ra), a.s("x"), SvcParm.u32(1)) == \
        Status.VERR_WRONG_PARAMETER_COUNT
    assert close_and_remove(a, ra, "abs_out/secret.txt", RM.FILE, SvcParm.u64(SHFL_HANDLE_NIL)) == \
        Status.VERR_ACCESS_DENIED
