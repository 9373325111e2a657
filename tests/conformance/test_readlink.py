"""SHFL_FN_READLINK against VirtualBox 7.0.14: vbsfReadLink over RTSymlinkRead (Runtime/r3/posix/symlink-posix.cpp)."""

from __future__ import annotations

import os

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflFn
from tests.service.conftest import Guest, Tree


@pytest.fixture
def root(guest: Guest) -> int:
    return guest.map("sf")


def readlink(g: Guest, root: int, path: str | None, size: int) -> tuple[int, bytes]:
    buf = SvcParm.ptr(b"\xAB" * size)
    st = g.call(ShflFn.READLINK, SvcParm.u32(root), g.s(path) if path is not None else SvcParm.ptr(0), buf)
    return st, bytes(buf.buffer)


_CASES = [
    # what, path, buffer size, status, buffer afterwards (None: untouched)
    ("link: target, NUL-terminated, rest untouched", "rel_out", 16, Status.VINF_SUCCESS, b"../outside\0" + b"\xAB" * 5),
    ("target exactly filling the buffer with its NUL", "rel_out", 11, Status.VINF_SUCCESS, b"../outside\0"),
    ("buffer one short: RTStrCopy truncates, VERR_BUFFER_OVERFLOW", "rel_out", 10, Status.VERR_BUFFER_OVERFLOW, b"../outsid\0"),
    ("not a link: readlink EINVAL", "sub", 16, Status.VERR_NOT_SYMLINK, None),
    ("missing: ENOENT", "nope", 16, Status.VERR_FILE_NOT_FOUND, None),
    ("link to a directory with a trailing delimiter: followed, EINVAL", "link_in/", 16, Status.VERR_NOT_SYMLINK, None),
    ("directory with a trailing delimiter", "sub/", 16, Status.VERR_NOT_SYMLINK, None),
    ("file with a trailing delimiter: ENOTDIR", "sub/file.txt/", 16, Status.VERR_PATH_NOT_FOUND, None),
    ("dangling link with a trailing delimiter: ENOENT", "flap/", 16, Status.VERR_FILE_NOT_FOUND, None),
    ("escaping link with a trailing delimiter: never followed out (SF1)", "rel_out/", 16, Status.VERR_ACCESS_DENIED, None),
    ("the share root itself: readlink EINVAL", "", 16, Status.VERR_NOT_SYMLINK, None),
    ("the share root with a delimiter", "/", 16, Status.VERR_NOT_SYMLINK, None),
    ("empty buffer", "rel_out", 0, Status.VERR_INVALID_PARAMETER, None),
    ("null path", None, 16, Status.VERR_INVALID_PARAMETER, None),
]


@pytest.mark.shfl("READLINK")
@pytest.mark.parametrize("what,path,size,status,after", _CASES, ids=[r[0] for r in _CASES])
def test_readlink_branches(guest: Guest, root: int, tree: Tree, what: str, path: str | None,
                           size: int, status: int, after: bytes | None) -> None:
    """READLINK per input: the status RTSymlinkRead gives, and the bytes it leaves in the buffer.

    The host path keeps the guest's trailing delimiter, so readlink(2) follows the final link
    and answers EINVAL (a directory) or ENOTDIR; a too small buffer gets the truncated
    target (RTStrCopy).  The link itself is never changed.
    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfReadLink, Runtime/r3/posix/symlink-posix.cpp:RTSymlinkReadA, Runtime/r3/posix/symlink-posix.cpp:RTSymlinkRead
    """
    os.symlink("nowhere", tree.share / "flap")
    st, buf = readlink(guest, root, path, size)
    assert st == status
    assert buf == (b"\xAB" * size if after is None else after)
    assert os.readlink(tree.share / "rel_out") == "../outside"


@pytest.mark.shfl("READLINK")
def test_backslash_client_gets_its_delimiter(guest: Guest) -> None:
    """A client with delimiter '\\': every '/' of the target is shown as '\\' (success only).

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfReadLink
    """
    win = Guest(guest.svc)
    wr = win.map("sf", delimiter="\\")
    assert readlink(win, wr, "rel_out", 12) == (Status.VINF_SUCCESS, b"..\\outside\0\xAB")
    assert readlink(win, wr, "rel_out", 5) == (Status.VERR_BUFFER_OVERFLOW, b"../o\0")
