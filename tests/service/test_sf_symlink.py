"""SHFL_FN_SYMLINK (reference §5.2.19) under the project's symlink policy."""

from __future__ import annotations

import os

import pytest

from hgcmlab.runtime.fs import RtFs
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders import strings
from hgcmlab.services.sharedfolders.abi import ShflFn, ShflFsObjInfo
from hgcmlab.services.sharedfolders.service import SharedFoldersService
from tests.service.conftest import READ_OPEN, Guest, Tree


@pytest.fixture
def links(svc: SharedFoldersService, tree: Tree) -> SharedFoldersService:
    """Adds "sl" (the share again, symlink creation on) and "rosl" (read-only, creation on)."""
    assert svc.add_mapping("sl", str(tree.share), create_symlinks=True) == 0
    assert svc.add_mapping("rosl", str(tree.ro), writable=False, create_symlinks=True) == 0
    return svc


def symlink(g: Guest, root: int, link: str, target: str, info_size: int = 92) -> tuple[int, bytes]:
    info = SvcParm.ptr(info_size)
    st = g.call(ShflFn.SYMLINK, SvcParm.u32(root), g.s(link), g.s(target), info)
    return st, bytes(info.buffer)


def test_s11_creation_disabled(guest: Guest, tree: Tree) -> None:
    root = guest.map("sf")
    assert symlink(guest, root, "l1", "/etc/passwd")[0] == Status.VERR_WRITE_PROTECT
    assert symlink(guest, root, "l1", "sub")[0] == Status.VERR_WRITE_PROTECT
    assert not os.path.lexists(tree.share / "l1")


def test_s17_utf16_client_not_implemented(links: SharedFoldersService, tree: Tree) -> None:
    g = Guest(links, utf8=False)
    root = g.map("sl")
    assert symlink(g, root, "l1", "sub")[0] == Status.VERR_NOT_IMPLEMENTED
    # svcCall checks the strings (in the client's encoding) and the info size before
    # vbsfSymlink refuses the UTF-16 client (VBoxSharedFoldersSvc.cpp:svcCall).
    bad = SvcParm.ptr(b"\x02\x00\x03\x00")
    assert g.call(ShflFn.SYMLINK, SvcParm.u32(root), bad, bad, SvcParm.ptr(92)) == Status.VERR_INVALID_PARAMETER
    assert g.call(ShflFn.SYMLINK, SvcParm.u32(root), g.s("l1"), g.s("sub"), SvcParm.ptr(91)) == \
        Status.VERR_INVALID_PARAMETER
    assert not os.path.lexists(tree.share / "l1")


def test_create_inside_link_and_info(links: SharedFoldersService, tree: Tree) -> None:
    g = Guest(links)
    root = g.map("sl")
    st, raw = symlink(g, root, "sub/to_file", "file.txt")
    assert st == 0 and os.readlink(tree.share / "sub/to_file") == "file.txt"
    info = ShflFsObjInfo.from_buffer_copy(raw)
    host = os.lstat(tree.share / "sub/to_file")
    assert info.Attr.fMode & RtFs.TYPE_MASK == RtFs.TYPE_SYMLINK
    assert (info.cbObject, info.Attr.u.INodeId) == (8, host.st_ino)
    assert g.read(root, g.open(root, "sub/to_file"), 0, 5)[1] == b"hello"
    assert symlink(g, root, "up", "sub/../sub/empty")[0] == 0
    assert symlink(g, root, "sub/back", "../link_in")[0] == 0
    assert symlink(g, root, "sub/to_file", "other")[0] == Status.VERR_ALREADY_EXISTS
    assert symlink(g, root, "abs_out", "sub")[0] == Status.VERR_ALREADY_EXISTS
    assert os.readlink(tree.share / "abs_out") == str(tree.outside)


@pytest.mark.parametrize("target", [
    "/etc/passwd", "..", "../outside", "sub/../../outside/secret.txt", "a/b/../../../x",
])
def test_s15_escaping_targets_refused(links: SharedFoldersService, tree: Tree, target: str) -> None:
    g = Guest(links)
    root = g.map("sl")
    assert symlink(g, root, "esc", target)[0] == Status.VERR_ACCESS_DENIED
    deeper = target if target.startswith("/") else "../" + target  # one more level to climb
    assert symlink(g, root, "sub/esc", deeper)[0] == Status.VERR_ACCESS_DENIED
    assert not os.path.lexists(tree.share / "esc") and not os.path.lexists(tree.share / "sub/esc")


def test_target_depth_comes_from_the_real_directory(links: SharedFoldersService, tree: Tree) -> None:
    (tree.share / "a/b").mkdir(parents=True)
    os.symlink("../..", tree.share / "a/b/up")  # a/b/up is the share root itself
    g = Guest(links)
    root = g.map("sl")
    # Lexically "a/b/up/../x" is a/b/x, but the link would live in the root: outside.
    assert symlink(g, root, "a/b/up/l", "../x")[0] == Status.VERR_ACCESS_DENIED
    assert symlink(g, root, "link_in/l", "../sub")[0] == 0  # link_in is sub: one level down
    assert os.readlink(tree.share / "sub/l") == "../sub"


def test_read_only_share_and_bad_parameters(links: SharedFoldersService, tree: Tree) -> None:
    g = Guest(links)
    rosl, sl = g.map("rosl"), g.map("sl")
    assert symlink(g, rosl, "l", "file.txt")[0] == Status.VERR_WRITE_PROTECT  # project policy
    assert symlink(g, sl, "l", "sub", info_size=91)[0] == Status.VERR_INVALID_PARAMETER
    assert symlink(g, sl, "../l", "sub")[0] == Status.VERR_INVALID_NAME
    assert symlink(g, sl, "rel_out/l", "x")[0] == Status.VERR_ACCESS_DENIED
    assert symlink(g, sl, "l", "")[0] == Status.VERR_FILE_NOT_FOUND
    assert symlink(g, 63, "l", "sub")[0] == Status.VERR_INVALID_PARAMETER
    assert g.call(ShflFn.SYMLINK, SvcParm.u32(sl), g.s("l"), g.s("x")) == Status.VERR_INVALID_PARAMETER
    bad = SvcParm.ptr(strings.build("x", True)[:-1])
    assert g.call(ShflFn.SYMLINK, SvcParm.u32(sl), g.s("l"), bad, SvcParm.ptr(92)) == \
        Status.VERR_INVALID_PARAMETER
    assert sorted(os.listdir(tree.ro)) == ["file.txt"]
    assert not os.path.lexists(tree.share / "l")


def test_backslash_client_target_characters(links: SharedFoldersService, tree: Tree) -> None:
    g = Guest(links)
    root = g.map("sl", delimiter="\\")
    assert symlink(g, root, "sub\\l", "a/b")[0] == Status.VERR_INVALID_NAME
    assert symlink(g, root, "sub\\l", "..\\outside")[0] == 0  # stored raw: one odd name
    assert os.readlink(tree.share / "sub/l") == "..\\outside"
    st, cp = g.create(root, "sub\\l", READ_OPEN)
    assert cp.Handle == 0xFFFFFFFFFFFFFFFF  # dangling inside the share, nothing outside
