"""SHFL_FN_CREATE against VirtualBox 7.0.14: vbsfCreate -> vbsfOpenFile / vbsfOpenDir /
vbsfLookupFile -> IPRT (RTFileOpenEx, RTDirCreate, RTDirOpenFiltered, RTPathQueryInfoEx)."""

from __future__ import annotations

import os

import pytest

from runtime.status import Status
from services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCf, ShflCreateResult
from services.sharedfolders.service import SharedFoldersService
from tests.conformance._file import create, expected_info
from tests.service.conftest import Guest, Tree

CF = ShflCf
R = ShflCreateResult
NIL = SHFL_HANDLE_NIL

OPEN = CF.ACT_OPEN_IF_EXISTS | CF.ACT_FAIL_IF_NEW
OPEN_CREATE = CF.ACT_OPEN_IF_EXISTS | CF.ACT_CREATE_IF_NEW
CREATE_ONLY = CF.ACT_FAIL_IF_EXISTS | CF.ACT_CREATE_IF_NEW
REPLACE_CREATE = CF.ACT_REPLACE_IF_EXISTS | CF.ACT_CREATE_IF_NEW
OVERWRITE_CREATE = CF.ACT_OVERWRITE_IF_EXISTS | CF.ACT_CREATE_IF_NEW
REPLACE_ONLY = CF.ACT_REPLACE_IF_EXISTS | CF.ACT_FAIL_IF_NEW
OVERWRITE_ONLY = CF.ACT_OVERWRITE_IF_EXISTS | CF.ACT_FAIL_IF_NEW

VBOX_IPRT_REFUSAL = ("HostServices/SharedFolders/vbsf.cpp:vbsfConvertFileOpenFlags, "
                     "HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile, "
                     "Runtime/r3/fileio.cpp:rtFileRecalcAndValidateFlags")


def _next_handle(guest: Guest, root: int) -> int:
    """The value the next successful open gets (opened and closed again)."""
    created = create(guest, root, "sub/file.txt", CF.ACCESS_READ | OPEN)
    assert created.status == 0 and created.parms.Handle != NIL
    assert guest.close(root, created.parms.Handle) == 0
    return created.parms.Handle


# --- IPRT's open-flag validation: refused before the host is touched ------------------------

#: (share, path, flags, status, handle allocated first) for CREATE calls that VirtualBox
#: refuses without touching the host.  "allocated" says whether vbsfOpenFile had allocated the
#: handle already (refusal inside RTFileOpenEx): the next open then gets the following value.
REFUSALS = [
    # RTFILE_O_OPEN | RTFILE_O_TRUNCATE without RTFILE_O_WRITE: rtFileRecalcAndValidateFlags.
    ("sf", "sub/file.txt", CF.ACCESS_READ | REPLACE_ONLY, Status.VERR_INVALID_PARAMETER, True),
    ("sf", "sub/file.txt", CF.ACCESS_READ | OVERWRITE_ONLY, Status.VERR_INVALID_PARAMETER, True),
    ("sf", "sub/file.txt", CF.ACCESS_NONE | REPLACE_ONLY, Status.VERR_INVALID_PARAMETER, True),
    ("sf", "sub/file.txt", CF.ACCESS_NONE | OVERWRITE_ONLY, Status.VERR_INVALID_PARAMETER, True),
    ("sf", "sub/file.txt", CF.ACCESS_READ | CF.ACCESS_APPEND | REPLACE_ONLY,
     Status.VERR_INVALID_PARAMETER, True),
    ("sf", "sub/file.txt", CF.ACCESS_READ | CF.ACCESS_DENYALL | CF.ACCESS_ATTR_READWRITE | OVERWRITE_ONLY,
     Status.VERR_INVALID_PARAMETER, True),
    # The flags are refused before any host lookup: a missing file is no FILE_NOT_FOUND.
    ("sf", "sub/missing", CF.ACCESS_READ | REPLACE_ONLY, Status.VERR_INVALID_PARAMETER, True),
    ("sf", "nodir/missing", CF.ACCESS_READ | OVERWRITE_ONLY, Status.VERR_INVALID_PARAMETER, True),
    # Read-only share: the write bit is dropped, write-only leaves no access at all.
    ("ro", "file.txt", CF.ACCESS_WRITE | OPEN, Status.VERR_INVALID_PARAMETER, True),
    ("ro", "missing", CF.ACCESS_WRITE | OPEN, Status.VERR_INVALID_PARAMETER, True),
    # vbsfConvertFileOpenFlags: action pairs without a meaning, before the handle exists.
    ("sf", "sub/file.txt", CF.ACCESS_READWRITE | CF.ACT_FAIL_IF_EXISTS | CF.ACT_FAIL_IF_NEW,
     Status.VERR_INVALID_PARAMETER, False),
    ("sf", "sub/file.txt", CF.ACCESS_READWRITE | 0x40 | CF.ACT_FAIL_IF_NEW, Status.VERR_INVALID_PARAMETER, False),
    ("sf", "sub/file.txt", CF.ACCESS_READWRITE | CF.ACT_OPEN_IF_EXISTS | 0x200, Status.VERR_INVALID_PARAMETER, False),
    ("ro", "file.txt", CF.ACCESS_READ | CF.ACT_FAIL_IF_EXISTS | CF.ACT_FAIL_IF_NEW,
     Status.VERR_INVALID_PARAMETER, False),
    # vbsfCreate: replacing or creating on a read-only share, before vbsfOpenFile.
    ("ro", "file.txt", CF.ACCESS_READ | REPLACE_ONLY, Status.VERR_WRITE_PROTECT, False),
    ("ro", "file.txt", CF.ACCESS_READ | OVERWRITE_CREATE, Status.VERR_WRITE_PROTECT, False),
    ("ro", "missing", CF.ACCESS_READ | OPEN_CREATE, Status.VERR_WRITE_PROTECT, False),
]


@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("share,path,flags,status,allocated", REFUSALS)
def test_refused_open_flags_touch_nothing(svc: SharedFoldersService, guest: Guest, tree: Tree, share: str,
                                          path: str, flags: int, status: int, allocated: bool) -> None:
    """Open flags VirtualBox (or IPRT under it) refuses: status, Result NO_RESULT, Handle NIL.

    Read-only access with the FAIL_IF_NEW forms of REPLACE/OVERWRITE maps to RTFILE_O_OPEN |
    RTFILE_O_TRUNCATE without RTFILE_O_WRITE, which rtFileRecalcAndValidateFlags refuses
    (formerly we truncated the file: data loss).  Info stays as the guest sent it, the host
    is untouched, and the handle allocated before RTFileOpenEx moved the allocation cursor.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfCreate, HostServices/SharedFolders/vbsf.cpp:vbsfConvertFileOpenFlags, HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile, Runtime/r3/fileio.cpp:rtFileRecalcAndValidateFlags, HostServices/SharedFolders/shflhandle.cpp:vbsfAllocHandle
    """
    sf = guest.map("sf")
    root = sf if share == "sf" else guest.map("ro")
    host = (tree.share if share == "sf" else tree.ro) / path
    before = host.read_bytes() if host.exists() else None
    first = _next_handle(guest, sf)
    created = create(guest, root, path, flags)
    assert (created.status, created.parms.Result, created.parms.Handle) == (status, R.NO_RESULT, NIL)
    assert created.parms.CreateFlags == flags
    assert created.info_untouched
    assert (host.read_bytes() if host.exists() else None) == before
    assert _next_handle(guest, sf) == first + (2 if allocated else 1)


@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("flags", [CF.ACCESS_READ | REPLACE_CREATE, CF.ACCESS_NONE | OVERWRITE_CREATE])
def test_read_only_access_with_create_replace_truncates_like_the_host(guest: Guest, tree: Tree, flags: int) -> None:
    """Read-only access with the CREATE_IF_NEW forms of REPLACE/OVERWRITE on an existing file.

    These map to RTFILE_O_CREATE_REPLACE, which carries no RTFILE_O_TRUNCATE, so IPRT's
    validation passes; RTFileOpenEx tries O_CREAT|O_EXCL (EEXIST) then opens with
    O_RDONLY|O_TRUNC, which Linux honours: the file is emptied, Result FILE_REPLACED.  The
    following RTFileSetSize on the read-only descriptor fails and is ignored.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfConvertFileOpenFlags, HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile, Runtime/r3/posix/fileio-posix.cpp:RTFileOpenEx
    """
    root = guest.map("sf")
    created = create(guest, root, "sub/file.txt", flags, size=77)
    assert (created.status, created.parms.Result) == (0, R.FILE_REPLACED)
    assert created.parms.Handle == 1
    host = tree.share / "sub/file.txt"
    assert created.info_bytes == expected_info(os.stat(host))  # before reading (atime)
    assert host.read_bytes() == b""
    assert guest.write(root, created.parms.Handle, 0, b"x")[0] == Status.VERR_INVALID_HANDLE  # EBADF
