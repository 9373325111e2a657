"""SHFL_FN_LIST against VirtualBox 7.0.14: vbsfDirList over RTDirReadEx (Runtime/r3/posix/dir-posix.cpp).

The snapshot cursor (SF16), the root's ".." (SF13), confined link following (SF14) and the
root-naming filter (SF15) are project deviations pinned in tests/service/test_sf_list.py.
"""

from __future__ import annotations

import os

import pytest

from hgcmlab.runtime.fs import RtFs
from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflFn, ShflList
from tests.conformance._info import assert_info_is_stat, dummy, dummy_info_fields
from tests.service.conftest import READ_OPEN, Guest, Tree

DIR_OPEN = ShflCf.DIRECTORY | READ_OPEN
ONE = ShflList.RETURN_ONE
ROOT_NAMES = [".", "..", "abs_out", "dangling", "fifo", "link_in", "loop", "rel_out", "sub"]


@pytest.fixture
def root(guest: Guest) -> int:
    return guest.map("sf")


def _one(guest: Guest, root: int, d: int, name: str):  # noqa: ANN202  (a Listing)
    """RETURN_ONE calls until ``name`` comes; that call's Listing."""
    while True:
        got = guest.list(root, d, ONE)
        assert got.status >= 0, got.status
        if got.names == [name]:
            return got


@pytest.mark.shfl("LIST")
@pytest.mark.parametrize("name", ["dangling", "abs_out", "rel_out", "loop"])
def test_entry_that_cannot_be_stated_gets_iprt_dummy_info(guest: Guest, root: int, name: str) -> None:
    """A link whose target cannot be stat'ed (dangling, loop; escaping ones per SF14): dummy info, VWRN_NO_DIRENT_INFO.

    Every field as rtDirSetDummyInfo sets it: sizes and times 0, fMode = the d_type
    (symlink) | DOS NT_NORMAL, enmAdditional NOTHING, all UNIX fields 0 (vbfsCopyFsObjInfoFromIprt
    zeroes Attr.u and copies nothing for NOTHING).
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfDirList, Runtime/r3/posix/dir-posix.cpp:RTDirReadEx, Runtime/r3/posix/dir-posix.cpp:rtDirSetDummyInfo
    """
    d = guest.open(root, "", DIR_OPEN)
    got = _one(guest, root, d, name)
    assert (got.status, got.count, got.resume) == (Status.VWRN_NO_DIRENT_INFO, 1, 1)
    raw = bytes(got.records[0].info)
    assert dummy_info_fields(raw) == dummy(RtFs.TYPE_SYMLINK | RtFs.DOS_NT_NORMAL)


@pytest.mark.shfl("LIST")
def test_entry_info_is_the_lstat_with_the_name(guest: Guest, root: int, tree: Tree) -> None:
    """Entries IPRT can stat: every field from the entry's stat, DOS HIDDEN for a name starting with '.'.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfDirList, Runtime/r3/posix/path2-posix.cpp:RTPathQueryInfoEx, Runtime/r3/fs.cpp:rtFsModeFromUnix
    """
    (tree.share / "sub/.dot").write_bytes(b"12345678")
    d = guest.open(root, "sub", DIR_OPEN)
    got = guest.list(root, d)
    assert got.status == Status.VINF_SUCCESS
    recs = {r.name: bytes(r.info) for r in got.records}
    assert_info_is_stat(recs[".dot"], os.lstat(tree.share / "sub/.dot"), b".dot")
    assert_info_is_stat(recs["file.txt"], os.lstat(tree.share / "sub/file.txt"), b"file.txt")
    assert_info_is_stat(recs["empty"], os.lstat(tree.share / "sub/empty"), b"empty")
    assert_info_is_stat(recs["."], os.stat(tree.share / "sub"), b".")


@pytest.mark.shfl("LIST")
def test_empty_path_string_opens_the_search_stream(guest: Guest, root: int) -> None:
    """A path parameter holding an empty string (not a null pointer): the search stream is opened and kept.

    vbsfDirList tests the pointer, not the length: an empty string opens SearchHandle
    (the share root, listed unfiltered per SF15); later calls with any path read on from
    it, calls without a path read the plain stream.
    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfDirList
    """
    d = guest.open(root, "", DIR_OPEN)
    first = guest.list(root, d, ONE, path="")
    assert (first.status, first.names, first.resume) == (Status.VINF_SUCCESS, ["."], 1)
    more = guest.list(root, d, ONE, path="sub/*")  # still the search stream: next name
    assert more.names == [".."]
    plain = guest.list(root, d)  # the plain stream is separate and starts at the top
    assert (plain.status, plain.names) == (Status.VINF_SUCCESS, ROOT_NAMES)
    rest = guest.list(root, d, path="x")
    assert (rest.status, rest.names, rest.resume) == (Status.VINF_SUCCESS, ROOT_NAMES[2:], 0)


_CHECKS = [
    # what, handle kind, cb, buffer, status, (cb, resume, count) afterwards
    ("cb below sizeof(SHFLDIRINFO): nothing written back", "dir", 127, 4096, Status.VERR_INVALID_PARAMETER, (127, 0x55, 0x77)),
    ("cb above the buffer: nothing written back", "dir", 4097, 4096, Status.VERR_INVALID_PARAMETER, (4097, 0x55, 0x77)),
    ("file handle: vbsfQueryDirHandle finds none", "file", 4096, 4096, Status.VERR_INVALID_HANDLE, (0, 0, 0)),
    ("unknown handle", "none", 4096, 4096, Status.VERR_INVALID_HANDLE, (0, 0, 0)),
    ("handle of another root", "other-root", 4096, 4096, Status.VERR_INVALID_HANDLE, (0, 0, 0)),
]


@pytest.mark.shfl("LIST")
@pytest.mark.parametrize("what,kind,cb,bufsize,status,after", _CHECKS, ids=[r[0] for r in _CHECKS])
def test_parameter_and_handle_checks(guest: Guest, root: int, what: str, kind: str, cb: int,
                                     bufsize: int, status: int, after: tuple[int, int, int]) -> None:
    """LIST with one bad parameter or handle: its status; svcCall's write-back (none, or cb 0, resume 0, count 0).

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfDirList, HostServices/SharedFolders/vbsf.cpp:vbsfCheckHandleAccess
    """
    handle = {"dir": lambda: guest.open(root, "sub", DIR_OPEN),
              "file": lambda: guest.open(root, "sub/file.txt"),
              "none": lambda: 0xABC,
              "other-root": lambda: guest.open(root, "sub", DIR_OPEN)}[kind]()
    use_root = guest.map("ro") if kind == "other-root" else root
    got = guest.list(use_root, handle, cb=cb, bufsize=bufsize)
    assert (got.status, (got.cb, got.resume, got.count)) == (status, after)


@pytest.mark.shfl("LIST")
def test_end_of_directory_branches(guest: Guest, root: int, tree: Tree) -> None:
    """Reaching the end: with entries VINF_SUCCESS and resume 0; with none VERR_NO_MORE_FILES, cb/resume/count 0.

    vbsfDirList returns VERR_NO_MORE_FILES and sets *pIndex 0; svcCall turns it into success
    when cFiles != 0.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfDirList, HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    d = guest.open(root, "sub/empty", DIR_OPEN)
    got = guest.list(root, d)
    assert (got.status, got.names, got.resume, got.count, got.cb) == \
        (Status.VINF_SUCCESS, [".", ".."], 0, 2, 126 + 2 + 126 + 3)
    end = guest.list(root, d)
    assert (end.status, end.cb, end.resume, end.count) == (Status.VERR_NO_MORE_FILES, 0, 0, 0)


@pytest.mark.shfl("LIST")
def test_first_entry_not_fitting_is_buffer_overflow_and_kept(guest: Guest, root: int, tree: Tree) -> None:
    """The first entry needing more than cb: VINF_BUFFER_OVERFLOW, cb 0, resume 1, count 0; returned by the next call.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfDirList
    """
    long_name = "n" * 40
    (tree.share / "sub/empty" / long_name).write_bytes(b"")
    d = guest.open(root, "sub/empty", DIR_OPEN)
    assert guest.list(root, d, cb=128 + 1).names == ["."]  # 128 used, 1 left: ".." (129) saved
    over = guest.list(root, d, cb=128)
    assert (over.status, over.cb, over.resume, over.count) == (Status.VINF_BUFFER_OVERFLOW, 0, 1, 0)
    nxt = guest.list(root, d, cb=129)
    assert (nxt.status, nxt.names, nxt.resume) == (Status.VINF_SUCCESS, [".."], 1)
    over2 = guest.list(root, d, cb=126 + len(long_name))  # needs 126 + 41
    assert (over2.status, over2.count) == (Status.VINF_BUFFER_OVERFLOW, 0)
    last = guest.list(root, d)
    assert (last.status, last.names, last.resume) == (Status.VINF_SUCCESS, [long_name], 0)


@pytest.mark.shfl("LIST")
def test_list_old_style_parameter_faults(guest: Guest, root: int) -> None:
    """Wrong parameter count or type: VERR_INVALID_PARAMETER (old-style svcCall checks).

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    from hgcmlab.services.hgcm import SvcParm
    d = guest.open(root, "sub", DIR_OPEN)
    args = [SvcParm.u32(root), SvcParm.u64(d), SvcParm.u32(0), SvcParm.u32(4096), SvcParm.ptr(0),
            SvcParm.ptr(4096), SvcParm.u32(0)]
    assert guest.call(ShflFn.LIST, *args) == Status.VERR_INVALID_PARAMETER
    assert guest.call(ShflFn.LIST, *args, SvcParm.u64(0)) == Status.VERR_INVALID_PARAMETER
