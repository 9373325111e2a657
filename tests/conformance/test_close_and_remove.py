"""SHFL_FN_CLOSE_AND_REMOVE: svcCall's checks (handle parameter not type checked, ROOT
refused), then vbsfRemove: the handle is closed FIRST, then root, path and writable checks,
then the same removal as REMOVE."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, SHFL_HANDLE_ROOT, ShflCf, ShflFn, ShflRemove
from tests.conformance._path import close_and_remove, kind, snapshot
from tests.service.conftest import READ_OPEN, Guest, Tree

RM = ShflRemove
FILE, DIR = int(RM.FILE), int(RM.DIR)
S = Status

pytestmark = pytest.mark.shfl("CLOSE_AND_REMOVE")


def _is_open(g: Guest, root: int, handle: int) -> bool:
    return g.read(root, handle, 0, 1)[0] == S.VINF_SUCCESS


def test_closes_then_removes(guest: Guest, tree: Tree) -> None:
    """A file handle of this root: closed, then the file is removed (VINF_SUCCESS).

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRemove, HostServices/SharedFolders/vbsf.cpp:vbsfClose
    """
    root = guest.map("sf")
    h = guest.open(root, "sub/file.txt")
    assert close_and_remove(guest, root, "sub/file.txt", FILE, SvcParm.u64(h)) == S.VINF_SUCCESS
    assert kind(tree.share / "sub/file.txt") == "missing"
    assert guest.close(root, h) == S.VERR_INVALID_HANDLE


@pytest.mark.parametrize(("path", "flags", "status", "removed"), [
    ("sub/file.txt/", FILE, S.VERR_PATH_NOT_FOUND, False),   # trailing delimiter reaches unlink
    ("sub", DIR, S.VERR_DIR_NOT_EMPTY, False),
    ("sub/empty", DIR, S.VINF_SUCCESS, True),
    ("../x", FILE, S.VERR_INVALID_NAME, False),
])
def test_handle_closed_whatever_the_removal_answers(guest: Guest, tree: Tree, path: str, flags: int,
                                                   status: int, removed: bool) -> None:
    """Once the handle is valid it is closed, whatever the path conversion or removal answers.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRemove, Runtime/r3/posix/fileio-posix.cpp:RTFileDelete, Runtime/r3/posix/dir-posix.cpp:RTDirRemove
    """
    root = guest.map("sf")
    h = guest.open(root, "sub/file.txt")
    before = snapshot(tree.share)
    assert close_and_remove(guest, root, path, flags, SvcParm.u64(h)) == status
    assert not _is_open(guest, root, h)
    assert (snapshot(tree.share) != before) == removed


def test_read_only_share_closes_the_handle_first(guest: Guest, tree: Tree) -> None:
    """A read-only mapping: the handle is closed, then VERR_WRITE_PROTECT; nothing removed.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRemove, HostServices/SharedFolders/mappings.cpp:vbsfMappingsQueryWritable
    """
    ro = guest.map("ro")
    h = guest.open(ro, "file.txt")
    assert close_and_remove(guest, ro, "file.txt", FILE, SvcParm.u64(h)) == S.VERR_WRITE_PROTECT
    assert not _is_open(guest, ro, h)
    assert kind(tree.ro / "file.txt") == "file:" + (tree.ro / "file.txt").read_text()


@pytest.mark.parametrize("case", ["other_root", "other_client", "closed", "zero", "unknown_root"])
def test_invalid_handle_stops_everything(svc, tree: Tree, case: str) -> None:
    """vbsfClose fails (handle of another root, of another client, already closed, 0; or an
    unknown root, which no handle belongs to): VERR_INVALID_HANDLE, before the root is even
    looked at, nothing removed and the handle (if any) stays open.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfClose, HostServices/SharedFolders/shflhandle.cpp:vbsfQueryHandleType
    """
    a, b = Guest(svc), Guest(svc)
    ra, ro = a.map("sf"), a.map("ro")
    rb = b.map("sf")
    h = a.open(ra, "sub/file.txt")
    gone = a.open(ra, "sub/empty", ShflCf.DIRECTORY | READ_OPEN)
    assert a.close(ra, gone) == 0
    caller, root, value = {
        "other_root": (a, ro, h), "other_client": (b, rb, h), "closed": (a, ra, gone),
        "zero": (a, ra, 0), "unknown_root": (a, 77, h)}[case]
    assert close_and_remove(caller, root, "sub/file.txt", FILE, SvcParm.u64(value)) == S.VERR_INVALID_HANDLE
    assert _is_open(a, ra, h)
    assert kind(tree.share / "sub/file.txt") == "file:hello"


@pytest.mark.parametrize(("params", "status"), [
    # svcCall: count, root type, path type, path string, flags type, flags value, handle != ROOT.
    (lambda g, h: [SvcParm.u32(0), g.s("x"), SvcParm.u32(FILE)], S.VERR_WRONG_PARAMETER_COUNT),
    (lambda g, h: [SvcParm.u64(0), SvcParm.ptr(2), SvcParm.u32(8), SvcParm.u64(SHFL_HANDLE_ROOT)],
     S.VERR_WRONG_PARAMETER_TYPE),
    (lambda g, h: [SvcParm.u32(0), SvcParm.ptr(2), SvcParm.u64(8), SvcParm.u64(SHFL_HANDLE_ROOT)],
     S.VERR_INVALID_PARAMETER),
    (lambda g, h: [SvcParm.u32(0), g.s("x"), SvcParm.u64(FILE), SvcParm.u64(h)], S.VERR_WRONG_PARAMETER_TYPE),
    (lambda g, h: [SvcParm.u32(0), g.s("x"), SvcParm.u32(8), SvcParm.u64(SHFL_HANDLE_ROOT)], S.VERR_INVALID_FLAGS),
    (lambda g, h: [SvcParm.u32(0), g.s("x"), SvcParm.u32(FILE), SvcParm.u64(SHFL_HANDLE_ROOT)],
     S.VERR_INVALID_HANDLE),
    # The handle parameter's type is never checked (quirk 6): a 32-bit or pointer parameter
    # is read as some 64-bit value; naming no handle, vbsfClose answers VERR_INVALID_HANDLE.
    (lambda g, h: [SvcParm.u32(0), g.s("sub/file.txt"), SvcParm.u32(FILE), SvcParm.ptr(8)], S.VERR_INVALID_HANDLE),
])
def test_svccall_order(guest: Guest, tree: Tree, params, status: int) -> None:
    """Which status wins when several parameters are wrong; nothing closed, nothing removed.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    root = guest.map("sf")
    h = guest.open(root, "sub/file.txt")
    assert guest.call(ShflFn.CLOSE_AND_REMOVE, *params(guest, h)) == status
    assert _is_open(guest, root, h)
    assert kind(tree.share / "sub/file.txt") == "file:hello"


def test_nil_handle_closes_nothing(guest: Guest, tree: Tree) -> None:
    """SHFL_HANDLE_NIL: nothing to close; a plain REMOVE.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRemove
    """
    root = guest.map("sf")
    h = guest.open(root, "sub/file.txt")
    assert close_and_remove(guest, root, "sub/file.txt", FILE, SvcParm.u64(SHFL_HANDLE_NIL)) == 0
    assert kind(tree.share / "sub/file.txt") == "missing"
    assert _is_open(guest, root, h)  # another handle is untouched (the fd outlives the name)
