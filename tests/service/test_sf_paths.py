"""REMOVE, RENAME, READLINK on a real tree."""

from __future__ import annotations

import os

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflFn, ShflRemove, ShflRename
from tests.service.conftest import Guest, Tree

RM, RN = ShflRemove, ShflRename


@pytest.fixture
def root(guest: Guest) -> int:
    return guest.map("sf")


def remove(g: Guest, root: int, path: str, flags: int) -> int:
    return g.call(ShflFn.REMOVE, SvcParm.u32(root), g.s(path), SvcParm.u32(flags))


def rename(g: Guest, root: int, src: str, dst: str, flags: int) -> int:
    return g.call(ShflFn.RENAME, SvcParm.u32(root), g.s(src), g.s(dst), SvcParm.u32(flags))


def test_remove(guest: Guest, root: int, tree: Tree) -> None:
    assert remove(guest, root, "sub", RM.DIR) == Status.VERR_DIR_NOT_EMPTY
    assert remove(guest, root, "sub", RM.FILE) == Status.VERR_IS_A_DIRECTORY
    assert remove(guest, root, "sub/file.txt", RM.DIR) == Status.VERR_NOT_A_DIRECTORY
    assert remove(guest, root, "sub/file.txt", RM.SYMLINK) == Status.VERR_NOT_SYMLINK
    assert remove(guest, root, "sub/nope", RM.FILE) == Status.VERR_FILE_NOT_FOUND
    assert remove(guest, root, "sub/file.txt/x", RM.FILE) == Status.VERR_PATH_NOT_FOUND
    assert remove(guest, root, "sub/file.txt", 8) == Status.VERR_INVALID_FLAGS
    assert remove(guest, root, "", RM.DIR) == Status.VERR_DIR_NOT_EMPTY  # rmdir(2) of the root path
    assert remove(guest, root, "sub/empty", 0) == 0 and not (tree.share / "sub/empty").exists()
    assert remove(guest, root, "sub/file.txt", RM.FILE) == 0 and not (tree.share / "sub/file.txt").exists()
    assert guest.call(ShflFn.REMOVE, SvcParm.u32(root), guest.s("x")) == Status.VERR_WRONG_PARAMETER_COUNT
    assert guest.call(ShflFn.REMOVE, SvcParm.u32(root), SvcParm.ptr(4), SvcParm.u64(1)) == \
        Status.VERR_INVALID_PARAMETER  # string checked before the flags' type


def test_s19_remove_through_link(guest: Guest, root: int, tree: Tree) -> None:
    assert remove(guest, root, "abs_out/secret.txt", RM.FILE) == Status.VERR_ACCESS_DENIED
    assert remove(guest, root, "abs_out", RM.FILE | RM.SYMLINK) == 0
    assert not (tree.share / "abs_out").is_symlink() and (tree.outside / "secret.txt").exists()


def test_a05_read_only(guest: Guest, tree: Tree) -> None:
    rr = guest.map("ro")
    assert remove(guest, rr, "file.txt", RM.FILE) == Status.VERR_WRITE_PROTECT
    assert rename(guest, rr, "file.txt", "x", RN.FILE) == Status.VERR_WRITE_PROTECT
    assert os.listdir(tree.ro) == ["file.txt"]


def test_rename(guest: Guest, root: int, tree: Tree) -> None:
    (tree.share / "b.txt").write_bytes(b"b")
    assert rename(guest, root, "sub/file.txt", "b.txt", RN.FILE) == Status.VERR_ALREADY_EXISTS
    assert rename(guest, root, "sub/file.txt", "sub/empty", RN.FILE | RN.REPLACE_IF_EXISTS) == \
        Status.VERR_ALREADY_EXISTS
    assert rename(guest, root, "sub", "x", RN.FILE) == Status.VERR_IS_A_DIRECTORY
    assert rename(guest, root, "b.txt", "x", RN.DIR) == Status.VERR_NOT_A_DIRECTORY
    assert rename(guest, root, "nope", "x", RN.FILE) == Status.VERR_FILE_NOT_FOUND
    assert rename(guest, root, "sub", "sub/empty/x", RN.DIR) == Status.VERR_INVALID_PARAMETER
    assert rename(guest, root, "b.txt", "x", 8) == Status.VERR_INVALID_PARAMETER
    assert rename(guest, root, "sub/file.txt", "b.txt", RN.FILE | RN.REPLACE_IF_EXISTS) == 0
    assert (tree.share / "b.txt").read_bytes() == b"hello"
    assert rename(guest, root, "sub", "sub2", 0) == 0 and (tree.share / "sub2/empty").is_dir()
    assert rename(guest, root, "b.txt", "../outside/stolen.txt", RN.FILE) == Status.VERR_INVALID_NAME  # S21
    assert rename(guest, root, "b.txt", "rel_out/stolen.txt", RN.FILE) == Status.VERR_ACCESS_DENIED


def test_readlink(guest: Guest, root: int, tree: Tree) -> None:
    def rl(path: str, size: int) -> tuple[int, bytes]:
        buf = SvcParm.ptr(size)
        st = guest.call(ShflFn.READLINK, SvcParm.u32(root), guest.s(path), buf)
        return st, bytes(buf.buffer)
    assert rl("rel_out", 16) == (0, b"../outside\0" + bytes(5))
    assert rl("rel_out", 5) == (Status.VERR_BUFFER_OVERFLOW, b"../o\0")
    assert rl("sub", 16)[0] == Status.VERR_NOT_SYMLINK
    assert rl("nope", 16)[0] == Status.VERR_FILE_NOT_FOUND
    assert guest.call(ShflFn.READLINK, SvcParm.u32(root), guest.s("rel_out"), SvcParm.ptr(0)) == \
        Status.VERR_INVALID_PARAMETER
    assert guest.call(ShflFn.READLINK, SvcParm.u32(root), SvcParm.ptr(0), SvcParm.ptr(8)) == \
        Status.VERR_INVALID_PARAMETER
    win = Guest(guest.svc)
    wr = win.map("sf", delimiter="\\")
    buf = SvcParm.ptr(16)
    assert win.call(ShflFn.READLINK, SvcParm.u32(wr), win.s("rel_out"), buf) == 0
    assert bytes(buf.buffer[:11]) == b"..\\outside\0"
