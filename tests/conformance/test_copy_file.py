"""SHFL_FN_COPY_FILE: svcCall's interleaved checks, vbsfCopyFile (source then destination
path, each with its root), RTFileCopy: open the source, create the destination
exclusively, copy.  Project policy SF18: writable destination mapping, regular source,
no half-copied destination."""

from __future__ import annotations

import os

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflFn
from tests.conformance._path import copy_file, kind, snapshot
from tests.service.conftest import Guest, Tree

S = Status

pytestmark = pytest.mark.shfl("COPY_FILE")


@pytest.mark.parametrize(("src", "dst", "status"), [
    ("sub/file.txt", "copy.txt", S.VINF_SUCCESS),
    ("link_in/file.txt", "copy.txt", S.VINF_SUCCESS),        # in-share links followed
    ("sub/file.txt", "sub/file.txt", S.VERR_ALREADY_EXISTS),  # RTFILE_O_CREATE
    ("sub/file.txt", "link_in", S.VERR_ALREADY_EXISTS),
    ("nope", "copy.txt", S.VERR_FILE_NOT_FOUND),
    ("sub/file.txt/", "copy.txt", S.VERR_PATH_NOT_FOUND),    # open("file/"): ENOTDIR
    ("sub/file.txt", "copy.txt/", S.VERR_IS_A_DIRECTORY),    # creating open with a slash: EISDIR
    ("sub/file.txt", "nodir/copy.txt", S.VERR_FILE_NOT_FOUND),  # ENOENT
    ("sub/file.txt", "sub/file.txt/copy.txt", S.VERR_PATH_NOT_FOUND),  # ENOTDIR
    ("sub/file.txt", "dangling", S.VERR_ALREADY_EXISTS),     # O_EXCL never follows the link (SF1 too)
    ("sub", "copy.txt", S.VERR_IS_A_DIRECTORY),              # SF18: never created
    ("rel_out/secret.txt", "copy.txt", S.VERR_ACCESS_DENIED),  # SF1
    ("fifo", "copy.txt", S.VERR_ACCESS_DENIED),              # SF18 (a FIFO would block the host)
])
def test_copy_matrix(guest: Guest, tree: Tree, src: str, dst: str, status: int) -> None:
    """Source kinds and destination states; on success the copy has the source's bytes and
    mode 0600 (RTFileOpen's default, less the umask).

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfCopyFile, Runtime/generic/RTFileCopyEx-generic.cpp:RTFileCopyEx, Runtime/r3/posix/fileio-posix.cpp:RTFileOpenEx
    """
    root = guest.map("sf")
    before = snapshot(tree.share)
    assert copy_file(guest, root, src, root, dst) == status
    if status == 0:
        assert snapshot(tree.share) == {**before, "copy.txt": "file:hello"}
        umask = os.umask(0)
        os.umask(umask)
        assert (tree.share / "copy.txt").stat().st_mode & 0o777 == 0o600 & ~umask
    else:
        assert snapshot(tree.share) == before
    assert kind(tree.outside / "secret.txt") == "file:TOPSECRET"


def test_across_mappings_and_read_only(guest: Guest, tree: Tree) -> None:
    """From the read-only share into the writable one works; into the read-only one is
    VERR_WRITE_PROTECT (SF18; VirtualBox would write, quirk 4).

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfCopyFile
    """
    sf, ro = guest.map("sf"), guest.map("ro")
    assert copy_file(guest, ro, "file.txt", sf, "fromro.txt") == 0
    assert (tree.share / "fromro.txt").read_bytes() == (tree.ro / "file.txt").read_bytes()
    assert copy_file(guest, sf, "sub/file.txt", ro, "x.txt") == S.VERR_WRITE_PROTECT
    assert os.listdir(tree.ro) == ["file.txt"]


@pytest.mark.parametrize(("params", "status"), [
    # svcCall: count; root src type; path src type, string; root dst type; path dst type,
    # string; flags type, value; then the source root, the destination root.
    (lambda g: [SvcParm.u32(0), g.s("a"), SvcParm.u32(0), g.s("b")], S.VERR_WRONG_PARAMETER_COUNT),
    (lambda g: [SvcParm.u64(0), SvcParm.ptr(2), SvcParm.u64(0), SvcParm.ptr(2), SvcParm.u32(1)],
     S.VERR_WRONG_PARAMETER_TYPE),
    (lambda g: [SvcParm.u32(0), SvcParm.ptr(2), SvcParm.u64(0), SvcParm.ptr(2), SvcParm.u32(1)],
     S.VERR_INVALID_PARAMETER),
    (lambda g: [SvcParm.u32(0), g.s("a"), SvcParm.u64(0), SvcParm.ptr(2), SvcParm.u32(1)],
     S.VERR_WRONG_PARAMETER_TYPE),
    (lambda g: [SvcParm.u32(0), g.s("a"), SvcParm.u32(0), SvcParm.ptr(2), SvcParm.u64(1)],
     S.VERR_INVALID_PARAMETER),
    (lambda g: [SvcParm.u32(0), g.s("a"), SvcParm.u32(0), g.s("b"), SvcParm.u64(1)],
     S.VERR_WRONG_PARAMETER_TYPE),
    (lambda g: [SvcParm.u32(70), g.s("a"), SvcParm.u32(71), g.s("b"), SvcParm.u32(1)], S.VERR_INVALID_FLAGS),
    (lambda g: [SvcParm.u32(70), g.s("../a"), SvcParm.u32(0), g.s("b"), SvcParm.u32(0)],
     S.VERR_INVALID_PARAMETER),
    (lambda g: [SvcParm.u32(0), g.s("../a"), SvcParm.u32(70), g.s("b"), SvcParm.u32(0)], S.VERR_INVALID_NAME),
    (lambda g: [SvcParm.u32(0), g.s("sub/file.txt"), SvcParm.u32(70), g.s("../b"), SvcParm.u32(0)],
     S.VERR_INVALID_PARAMETER),
])
def test_order_of_checks(guest: Guest, tree: Tree, params, status: int) -> None:
    """Which status wins: svcCall's interleaved checks, then the source path (its root
    first), then the destination path.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfCopyFile, HostServices/SharedFolders/vbsfpath.cpp:vbsfPathGuestToHost
    """
    guest.map("sf")
    before = snapshot(tree.share)
    assert guest.call(ShflFn.COPY_FILE, *params(guest)) == status
    assert snapshot(tree.share) == before
