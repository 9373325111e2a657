"""Resource limits and the symlink policy (docs/security.md)."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflFn, ShflMif
from hgcmlab.services.sharedfolders.mappings import SymlinkPolicy
from hgcmlab.services.sharedfolders.service import MAX_HANDLES_PER_CLIENT, SharedFoldersService
from hgcmlab.services.sharedfolders import strings
from tests.service.conftest import READ_OPEN, Guest, Tree

CF = ShflCf


def test_per_client_handle_limit(svc: SharedFoldersService) -> None:
    a, b = Guest(svc), Guest(svc)
    ra, rb = a.map("sf"), b.map("sf")
    handles = [a.open(ra, "sub/file.txt") for _ in range(MAX_HANDLES_PER_CLIENT)]
    st, cp = a.create(ra, "sub/file.txt", READ_OPEN)
    assert st == Status.VERR_TOO_MANY_OPEN_FILES and cp.Handle == 0xFFFFFFFFFFFFFFFF
    st, _ = a.create(ra, "sub", CF.DIRECTORY | READ_OPEN)
    assert st == Status.VERR_TOO_MANY_OPEN_FILES
    assert b.read(rb, b.open(rb, "sub/file.txt"), 0, 5)[1] == b"hello"  # others unaffected
    assert a.close(ra, handles[0]) == 0
    assert a.read(ra, a.open(ra, "sub/file.txt"), 0, 5)[1] == b"hello"


def _symlink(g: Guest, root: int, link: str, target: str) -> int:
    return g.call(ShflFn.SYMLINK, SvcParm.u32(root), SvcParm.ptr(strings.build(link, True)),
                  SvcParm.ptr(strings.build(target, True)), SvcParm.ptr(92))


def _policy_guest(svc: SharedFoldersService, tree: Tree, policy: SymlinkPolicy) -> tuple[Guest, int]:
    assert svc.add_mapping("pol", str(tree.share), create_symlinks=True, symlink_policy=policy) == 0
    g = Guest(svc)
    return g, g.map("pol")


def _mif(g: Guest, root: int) -> int:
    flags = SvcParm.u64(0)
    st = g.call(ShflFn.QUERY_MAP_INFO, SvcParm.u32(root), SvcParm.ptr(strings.empty_buffer(64)),
                SvcParm.ptr(strings.empty_buffer(64)), flags, SvcParm.u32(0))
    assert st == 0
    return flags.value


def test_s13_policy_forbidden(svc: SharedFoldersService, tree: Tree) -> None:
    g, r = _policy_guest(svc, tree, SymlinkPolicy.FORBIDDEN)
    assert _symlink(g, r, "l3", "sub") == Status.VERR_WRITE_PROTECT
    assert not (tree.share / "l3").is_symlink()
    assert not _mif(g, r) & ShflMif.SYMLINK_CREATION


def test_policy_subtree_is_the_default_when_creation_is_enabled(svc: SharedFoldersService, tree: Tree) -> None:
    assert svc.add_mapping("sl", str(tree.share), create_symlinks=True) == 0
    g = Guest(svc)
    r = g.map("sl")
    assert _symlink(g, r, "ok", "sub/file.txt") == 0
    assert _symlink(g, r, "esc", "../outside") == Status.VERR_ACCESS_DENIED
    assert not (tree.share / "esc").is_symlink() and _mif(g, r) & ShflMif.SYMLINK_CREATION


@pytest.mark.parametrize("target", ["../outside", "/etc", "sub/../../outside"])
def test_s15_policy_any_stores_but_never_follows_out(svc: SharedFoldersService, tree: Tree, target: str) -> None:
    g, r = _policy_guest(svc, tree, SymlinkPolicy.ANY)
    assert _symlink(g, r, "esc", target) == 0
    assert (tree.share / "esc").is_symlink()
    st, cp = g.create(r, "esc/secret.txt", READ_OPEN)
    assert st == Status.VERR_ACCESS_DENIED and cp.Handle == 0xFFFFFFFFFFFFFFFF
    st, _ = g.create(r, "esc", CF.DIRECTORY | READ_OPEN)
    assert st == Status.VERR_ACCESS_DENIED


def test_default_mapping_has_symlink_creation_off(svc: SharedFoldersService, tree: Tree) -> None:
    g = Guest(svc)
    r = g.map("sf")
    assert _symlink(g, r, "l1", "sub") == Status.VERR_WRITE_PROTECT
    assert not _mif(g, r) & ShflMif.SYMLINK_CREATION


def test_copy_file_part_into_itself_is_bounded(guest: Guest, tree: Tree) -> None:
    root = guest.map("sf")
    h = guest.open(root, "sub/file.txt", CF.ACCESS_READWRITE | CF.ACT_FAIL_IF_NEW)
    cb = SvcParm.u64(1 << 59)
    st = guest.call(ShflFn.COPY_FILE_PART, SvcParm.u32(root), SvcParm.u64(h), SvcParm.u64(0),
                    SvcParm.u32(root), SvcParm.u64(h), SvcParm.u64(5), cb, SvcParm.u32(0))
    assert (st, cb.value) == (0, 5)
    assert (tree.share / "sub/file.txt").read_bytes() == b"hellohello"
