"""SHFL_FN_CREATE against VirtualBox 7.0.14: vbsfCreate -> vbsfOpenFile / vbsfOpenDir /
vbsfLookupFile -> IPRT (RTFileOpenEx, RTDirCreate, RTDirOpenFiltered, RTPathQueryInfoEx)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from hgcmlab.runtime import faults
from hgcmlab.runtime.fs import RtFs
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCf, ShflCreateResult, ShflFn
from hgcmlab.services.sharedfolders.service import MAX_HANDLES_PER_CLIENT, SharedFoldersService
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


# --- LOOKUP ---------------------------------------------------------------------------------

#: (path, SET_SYMLINKS, Result, host object whose info is written (None: Info untouched),
#:  stat follows links, name IPRT sees for DOS_HIDDEN)
LOOKUPS = [
    ("sub/file.txt", False, R.FILE_EXISTS, "sub/file.txt", True, b"file.txt"),
    ("/sub/file.txt", False, R.FILE_EXISTS, "sub/file.txt", True, b"file.txt"),
    ("sub/nope", False, R.FILE_NOT_FOUND, None, True, None),
    ("nope/deeper", False, R.FILE_NOT_FOUND, None, True, None),          # ENOENT
    ("sub/file.txt/x", False, R.PATH_NOT_FOUND, None, True, None),       # ENOTDIR
    # The trailing delimiter survives the path conversion: stat("file.txt/") is ENOTDIR.
    ("sub/file.txt/", False, R.PATH_NOT_FOUND, None, True, None),
    ("sub/", False, R.FILE_EXISTS, "sub", True, None),                   # no name: ends in '/'
    (".hid/", False, R.FILE_EXISTS, ".hid", True, None),                 # hence not hidden
    (".hid", False, R.FILE_EXISTS, ".hid", True, b".hid"),
    (".dot", False, R.FILE_EXISTS, ".dot", True, b".dot"),               # NT_NORMAL | HIDDEN
    ("", False, R.FILE_EXISTS, "", True, b"share"),                      # the folder's own name
    ("link_in", False, R.FILE_EXISTS, "link_in", True, b"link_in"),
    ("link_in", True, R.FILE_EXISTS, "link_in", False, b"link_in"),      # lstat: the link
    ("link_in/", True, R.FILE_EXISTS, "link_in", True, None),            # '/' follows the link
    ("loop", True, R.FILE_EXISTS, "loop", False, b"loop"),
]


@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("path,symlinks,result,host,follow,name", LOOKUPS)
def test_lookup(guest: Guest, tree: Tree, path: str, symlinks: bool, result: int, host: str | None,
                follow: bool, name: bytes | None) -> None:
    """SHFL_CF_LOOKUP: RTPathQueryInfoEx of the host path; found, file/path not found.

    Success with Result FILE_EXISTS / FILE_NOT_FOUND (ENOENT) / PATH_NOT_FOUND (ENOTDIR), Handle
    NIL whatever the guest sent, Info filled only when found; IPRT's hidden bit comes from the
    last name of the path (none when it ends in a delimiter); nothing allocated.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfLookupFile, Runtime/r3/posix/path2-posix.cpp:RTPathQueryInfoEx, Runtime/r3/fs.cpp:rtFsModeFromUnix
    """
    (tree.share / ".hid").mkdir()
    (tree.share / ".dot").write_bytes(b"dot")
    root = guest.map("sf")
    if symlinks:
        assert guest.call(ShflFn.SET_SYMLINKS) == 0
    created = create(guest, root, path, CF.LOOKUP | CF.ACCESS_READWRITE, handle_in=0x1234)
    assert (created.status, created.parms.Result, created.parms.Handle) == (0, result, NIL)
    assert created.parms.CreateFlags == CF.LOOKUP | CF.ACCESS_READWRITE
    if host is None:
        assert created.info_untouched
    else:
        st = os.stat(tree.share / host, follow_symlinks=follow)
        assert created.info_bytes == expected_info(st, name)
    assert _next_handle(guest, root) == 1


@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("symlinks", [False, True])
def test_lookup_host_error_is_the_status(guest: Guest, symlinks: bool) -> None:
    """SHFL_CF_LOOKUP with a host error other than "not found" (ELOOP): that status, Result
    NO_RESULT, Handle NIL, Info untouched, in both link modes (a link inside the path is
    always followed).
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfLookupFile, Runtime/r3/posix/path2-posix.cpp:RTPathQueryInfoEx
    """
    root = guest.map("sf")
    if symlinks:
        assert guest.call(ShflFn.SET_SYMLINKS) == 0
    created = create(guest, root, "loop/x", CF.LOOKUP, handle_in=7)
    assert (created.status, created.parms.Result, created.parms.Handle) == \
        (Status.VERR_TOO_MANY_SYMLINKS, R.NO_RESULT, NIL)
    assert created.info_untouched


# --- files: the action matrix -----------------------------------------------------------------

#: (flags, file exists, status, Result, handle given, host bytes afterwards (None: absent),
#:  Info: "handle" = fstat of the opened file, "path" = the existing object by path, None =
#:  untouched).  The guest sends cbObject 3: only REPLACE/OVERWRITE apply it (RTFileSetSize).
ACTIONS = [
    (OPEN_CREATE, True, 0, R.FILE_EXISTS, True, b"hello", "handle"),
    (OPEN_CREATE, False, 0, R.FILE_CREATED, True, b"", "handle"),
    (OPEN, True, 0, R.FILE_EXISTS, True, b"hello", "handle"),
    (OPEN, False, 0, R.FILE_NOT_FOUND, False, None, None),
    (CREATE_ONLY, True, 0, R.FILE_EXISTS, False, b"hello", "path"),
    (CREATE_ONLY, False, 0, R.FILE_CREATED, True, b"", "handle"),
    (REPLACE_CREATE, True, 0, R.FILE_REPLACED, True, b"\0\0\0", "handle"),
    (REPLACE_CREATE, False, 0, R.FILE_CREATED, True, b"\0\0\0", "handle"),
    (OVERWRITE_CREATE, True, 0, R.FILE_REPLACED, True, b"\0\0\0", "handle"),
    (OVERWRITE_CREATE, False, 0, R.FILE_CREATED, True, b"\0\0\0", "handle"),
    (REPLACE_ONLY, True, 0, R.FILE_REPLACED, True, b"\0\0\0", "handle"),
    (REPLACE_ONLY, False, 0, R.FILE_NOT_FOUND, False, None, None),
    (OVERWRITE_ONLY, True, 0, R.FILE_REPLACED, True, b"\0\0\0", "handle"),
    (OVERWRITE_ONLY, False, 0, R.FILE_NOT_FOUND, False, None, None),
]


@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("access", [CF.ACCESS_READWRITE, CF.ACCESS_WRITE])
@pytest.mark.parametrize("flags,exists,status,result,opened,content,info", ACTIONS)
def test_file_actions(guest: Guest, tree: Tree, access: int, flags: int, exists: bool, status: int,
                      result: int, opened: bool, content: bytes | None, info: str | None) -> None:
    """Every valid (IF_EXISTS, IF_NEW) pair on an existing and a missing file, with write access.

    RTFileOpenEx's action taken gives the Result; "not found" and "already exists" are
    success with a Result; REPLACE/OVERWRITE then apply the guest's cbObject; Info is the
    opened file's (fstat: no name), or the existing object's for FILE_EXISTS without a handle.
    The handle is allocated before the open either way, so the next open gets value 2.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile, HostServices/SharedFolders/vbsf.cpp:vbsfConvertFileOpenFlags, Runtime/r3/posix/fileio-posix.cpp:RTFileOpenEx, Runtime/r3/posix/fileio-posix.cpp:RTFileSetSize
    """
    root = guest.map("sf")
    path = "sub/file.txt" if exists else "sub/new.txt"
    host = tree.share / path
    created = create(guest, root, path, access | flags, size=3)
    assert (created.status, created.parms.Result) == (status, result)
    assert created.parms.Handle == (1 if opened else NIL)
    assert created.parms.CreateFlags == access | flags
    if info is None:
        assert created.info_untouched
    else:
        assert created.info_bytes == expected_info(os.stat(host), None if info == "handle" else b"file.txt")
    assert (host.read_bytes() if host.exists() else None) == content
    if opened:
        assert guest.close(root, created.parms.Handle) == 0
    assert _next_handle(guest, root) == 2


#: (path, flags, status, Result): host outcomes of the open itself.
HOST_OUTCOMES = [
    ("nodir/new.txt", CF.ACCESS_READWRITE | OPEN_CREATE, 0, R.FILE_NOT_FOUND),          # ENOENT
    ("nodir/new.txt", CF.ACCESS_READ | OPEN, 0, R.FILE_NOT_FOUND),
    ("sub/file.txt/new", CF.ACCESS_READWRITE | OPEN_CREATE, 0, R.PATH_NOT_FOUND),        # ENOTDIR
    # A trailing delimiter reaches open(2): a non-directory is ENOTDIR, O_CREAT is EISDIR.
    ("sub/file.txt/", CF.ACCESS_READ | OPEN, 0, R.PATH_NOT_FOUND),
    ("sub/file.txt/", CF.ACCESS_READWRITE | REPLACE_ONLY, 0, R.PATH_NOT_FOUND),
    ("sub/file.txt/", CF.ACCESS_READWRITE | OPEN_CREATE, Status.VERR_IS_A_DIRECTORY, R.NO_RESULT),
    ("sub/new/", CF.ACCESS_READWRITE | CREATE_ONLY, Status.VERR_IS_A_DIRECTORY, R.NO_RESULT),
    ("sub/new/", CF.ACCESS_READ | OPEN, 0, R.FILE_NOT_FOUND),
    ("loop", CF.ACCESS_READ | OPEN, Status.VERR_TOO_MANY_SYMLINKS, R.NO_RESULT),          # ELOOP
]


@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("path,flags,status,result", HOST_OUTCOMES)
def test_file_open_host_outcomes(guest: Guest, tree: Tree, path: str, flags: int, status: int,
                                 result: int) -> None:
    """A file open the host refuses: ENOENT / ENOTDIR are success with a Result, others the status.

    Handle NIL, Info untouched, nothing created, and the handle allocated before the open
    was freed again (the next open gets value 2).
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile, Runtime/r3/posix/fileio-posix.cpp:RTFileOpenEx, Runtime/common/err/RTErrConvertFromErrno.cpp:RTErrConvertFromErrno
    """
    root = guest.map("sf")
    before = sorted(p.name for p in (tree.share / "sub").iterdir())
    created = create(guest, root, path, flags)
    assert (created.status, created.parms.Result, created.parms.Handle) == (status, result, NIL)
    assert created.info_untouched
    assert sorted(p.name for p in (tree.share / "sub").iterdir()) == before
    assert (tree.share / "sub/file.txt").read_bytes() == b"hello"
    assert _next_handle(guest, root) == 2


@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("flags,result", [(CF.ACCESS_READWRITE | OPEN_CREATE, R.FILE_EXISTS),
                                          (CF.ACCESS_READWRITE | REPLACE_CREATE, R.FILE_EXISTS),
                                          (CF.ACCESS_READWRITE | CREATE_ONLY, R.FILE_EXISTS)])
def test_create_through_dangling_link_inside(guest: Guest, tree: Tree, flags: int, result: int) -> None:
    """Creating through a dangling symlink whose target is inside the share.

    O_CREAT|O_EXCL answers EEXIST, the plain open ENOENT; RTFileOpenEx retries 64 times and
    then opens with O_CREAT, which creates the target and is reported as "opened": Result
    FILE_EXISTS with a handle.  CREATE_ONLY stops at EEXIST: FILE_EXISTS, no handle, and the
    path query (links followed) fails, so Info stays as sent.
    VBox: Runtime/r3/posix/fileio-posix.cpp:RTFileOpenEx, HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile
    """
    os.symlink("sub/target.txt", tree.share / "dangle")
    root = guest.map("sf")
    created = create(guest, root, "dangle", flags)
    assert (created.status, created.parms.Result) == (0, result)
    target = tree.share / "sub/target.txt"
    if flags & CF.ACT_MASK_IF_EXISTS == CF.ACT_FAIL_IF_EXISTS:
        assert created.parms.Handle == NIL and created.info_untouched and not target.exists()
    else:
        assert created.parms.Handle == 1
        assert created.info_bytes == expected_info(os.stat(target))
        assert target.read_bytes() == b""


# --- directories ----------------------------------------------------------------------------

#: (path, flags (SHFL_CF_DIRECTORY added unless the pre-query finds a directory anyway),
#:  status, Result, handle given, directory exists afterwards, Info from the directory)
DIRS = [
    ("sub/newdir", OPEN_CREATE, 0, R.FILE_CREATED, True, True, True),
    ("sub/newdir/", OPEN_CREATE, 0, R.FILE_CREATED, True, True, True),
    ("sub/newdir", CREATE_ONLY, 0, R.FILE_CREATED, True, True, True),
    ("sub/newdir", REPLACE_CREATE, 0, R.FILE_CREATED, True, True, True),
    ("sub/empty", OPEN_CREATE, 0, R.FILE_EXISTS, True, True, True),      # mkdir EEXIST, then open
    ("sub/empty", OPEN, 0, R.FILE_EXISTS, True, True, True),
    ("sub/empty", REPLACE_ONLY, 0, R.FILE_EXISTS, True, True, True),     # no mkdir: opened
    ("sub/empty", CREATE_ONLY, Status.VERR_ALREADY_EXISTS, R.FILE_EXISTS, False, True, False),
    ("sub/empty", REPLACE_CREATE, Status.VERR_ALREADY_EXISTS, R.FILE_EXISTS, False, True, False),
    ("sub/newdir", OPEN, Status.VERR_FILE_NOT_FOUND, R.FILE_NOT_FOUND, False, False, False),
    ("nodir/newdir", OPEN_CREATE, Status.VERR_FILE_NOT_FOUND, R.FILE_NOT_FOUND, False, False, False),
    ("nodir/newdir", CREATE_ONLY, Status.VERR_FILE_NOT_FOUND, R.FILE_NOT_FOUND, False, False, False),
    ("sub/file.txt/x", OPEN_CREATE, Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND, False, False, False),
    ("sub/file.txt", OPEN, Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND, False, False, False),
    ("sub/file.txt", OPEN_CREATE, Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND, False, False, False),
    ("sub/file.txt", CREATE_ONLY, Status.VERR_ALREADY_EXISTS, R.FILE_EXISTS, False, False, False),
    (".hid", OPEN, 0, R.FILE_EXISTS, True, True, True),                  # Info never hidden
    ("", OPEN, 0, R.FILE_EXISTS, True, True, True),                      # the share root
    ("", CREATE_ONLY, Status.VERR_ALREADY_EXISTS, R.FILE_EXISTS, False, True, False),
    # vbsfOpenDir does not validate the action pair: anything but CREATE_IF_NEW just opens.
    ("sub/empty", CF.ACT_FAIL_IF_EXISTS | CF.ACT_FAIL_IF_NEW, 0, R.FILE_EXISTS, True, True, True),
    ("sub/empty", 0x40 | CF.ACT_FAIL_IF_NEW, 0, R.FILE_EXISTS, True, True, True),
    ("sub/empty", CF.ACT_OPEN_IF_EXISTS | 0x200, 0, R.FILE_EXISTS, True, True, True),
    ("sub/newdir", 0x70 | 0x300, Status.VERR_FILE_NOT_FOUND, R.FILE_NOT_FOUND, False, False, False),
]


@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("path,flags,status,result,opened,is_dir,info", DIRS)
def test_directories(guest: Guest, tree: Tree, path: str, flags: int, status: int, result: int,
                     opened: bool, is_dir: bool, info: bool) -> None:
    """SHFL_CF_DIRECTORY: RTDirCreate (mode 0777) when CREATE_IF_NEW, then RTDirOpenFiltered
    unless the creation failed without OPEN_IF_EXISTS; every failure is the status itself.

    Info comes from RTDirQueryInfo, a path query of the directory's path as IPRT stores it
    (with a trailing slash: no hidden bit); the handle is allocated first in every branch.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfOpenDir, Runtime/r3/posix/dir-posix.cpp:RTDirCreate, Runtime/r3/dir.cpp:rtDirOpenCommon, Runtime/generic/RTDirQueryInfo-generic.cpp:RTDirQueryInfo
    """
    (tree.share / ".hid").mkdir()
    umask = os.umask(0o022)
    os.umask(umask)
    root = guest.map("sf")
    existed = (tree.share / path).is_dir()
    sent = CF.DIRECTORY | CF.ACCESS_READ | flags
    created = create(guest, root, path, sent)
    assert (created.status, created.parms.Result) == (status, result)
    assert created.parms.Handle == (1 if opened else NIL)
    assert created.parms.CreateFlags == sent
    host = tree.share / path
    if info:
        assert created.info_bytes == expected_info(os.stat(host))
    else:
        assert created.info_untouched
    assert host.is_dir() == is_dir
    if is_dir and not existed:
        assert host.stat().st_mode & 0o7777 == 0o777 & ~umask
    if opened:
        listing = guest.list(root, created.parms.Handle)
        assert listing.status == 0 and listing.names[:2] == [".", ".."]
        assert guest.close(root, created.parms.Handle) == 0
    assert (tree.share / "sub/file.txt").read_bytes() == b"hello"
    assert _next_handle(guest, root) == 2


@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("symlinks", [False, True])
def test_existing_directory_without_the_flag(guest: Guest, symlinks: bool) -> None:
    """A path the pre-query finds to be a directory gets SHFL_CF_DIRECTORY added (written back).

    With SET_SYMLINKS the pre-query is an lstat: a link to a directory is no directory, the
    file open follows it and RTFileOpenEx opens the directory read-only as a *file* handle
    (FILE_EXISTS, CreateFlags unchanged); READ on it then answers EISDIR.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfCreate, HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile, Runtime/r3/posix/fileio-posix.cpp:RTFileOpenEx
    """
    root = guest.map("sf")
    if symlinks:
        assert guest.call(ShflFn.SET_SYMLINKS) == 0
    sent = CF.ACCESS_READ | OPEN_CREATE  # O_EXCL: EEXIST (the link), then the plain open
    created = create(guest, root, "link_in", sent)
    assert (created.status, created.parms.Result, created.parms.Handle) == (0, R.FILE_EXISTS, 1)
    handle = created.parms.Handle
    if symlinks:
        assert created.parms.CreateFlags == sent
        assert guest.read(root, handle, 0, 4)[0] == Status.VERR_IS_A_DIRECTORY
        assert guest.list(root, handle).status == Status.VERR_INVALID_HANDLE
    else:
        assert created.parms.CreateFlags == sent | CF.DIRECTORY
        assert guest.list(root, handle).status == 0
        assert guest.read(root, handle, 0, 4)[0] == Status.VERR_INVALID_HANDLE
    assert guest.close(root, handle) == 0


@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("flags", [CF.ACCESS_WRITE | OPEN, CF.ACCESS_READWRITE | OPEN_CREATE])
def test_file_open_of_a_directory_link_with_write_access_is_eisdir(guest: Guest, flags: int) -> None:
    """With SET_SYMLINKS, a file open of a link to a directory with write access: open(2)
    answers EISDIR (after O_EXCL's EEXIST for OPEN_CREATE), the status VERR_IS_A_DIRECTORY
    with Result NO_RESULT.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile, Runtime/r3/posix/fileio-posix.cpp:RTFileOpenEx
    """
    root = guest.map("sf")
    assert guest.call(ShflFn.SET_SYMLINKS) == 0
    created = create(guest, root, "link_in", flags)
    assert (created.status, created.parms.Result, created.parms.Handle) == \
        (Status.VERR_IS_A_DIRECTORY, R.NO_RESULT, NIL)
    assert created.info_untouched


# --- Windows error style ------------------------------------------------------------------------

DIR = CF.DIRECTORY | CF.ACCESS_READ

#: (path, flags, Linux (status, Result), Windows (status, Result)) after SET_ERROR_STYLE(1).
ERROR_STYLES = [
    # vbsfOpenFile, VERR_FILE_NOT_FOUND: the parent missing or not a directory -> PATH_NOT_FOUND
    ("nodir/x", CF.ACCESS_READ | OPEN, (0, R.FILE_NOT_FOUND), (0, R.PATH_NOT_FOUND)),
    ("sub/x", CF.ACCESS_READ | OPEN, (0, R.FILE_NOT_FOUND), (0, R.FILE_NOT_FOUND)),
    # vbsfOpenFile, VERR_PATH_NOT_FOUND: a trailing delimiter with an existing parent directory
    ("sub/file.txt/", CF.ACCESS_READ | OPEN, (0, R.PATH_NOT_FOUND), (Status.VERR_INVALID_NAME, R.NO_RESULT)),
    ("sub/file.txt/x", CF.ACCESS_READ | OPEN, (0, R.PATH_NOT_FOUND), (0, R.PATH_NOT_FOUND)),
    # vbsfOpenDir, RTDirCreate VERR_FILE_NOT_FOUND
    ("nodir/d", DIR | CREATE_ONLY, (Status.VERR_FILE_NOT_FOUND, R.FILE_NOT_FOUND),
     (Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND)),
    # vbsfOpenDir, RTDirOpenFiltered VERR_FILE_NOT_FOUND / VERR_PATH_NOT_FOUND
    ("nodir/d", DIR | OPEN, (Status.VERR_FILE_NOT_FOUND, R.FILE_NOT_FOUND),
     (Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND)),
    ("sub/d", DIR | OPEN, (Status.VERR_FILE_NOT_FOUND, R.FILE_NOT_FOUND),
     (Status.VERR_FILE_NOT_FOUND, R.FILE_NOT_FOUND)),
    ("sub/file.txt", DIR | OPEN, (Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND),
     (Status.VERR_NOT_A_DIRECTORY, R.FILE_EXISTS)),
    # The host path keeps the delimiter: stat("file.txt/") fails, so no NOT_A_DIRECTORY.
    ("sub/file.txt/", DIR | OPEN, (Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND),
     (Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND)),
]


@pytest.mark.shfl("CREATE", "SET_ERROR_STYLE")
@pytest.mark.parametrize("windows", [False, True], ids=["linux", "windows"])
@pytest.mark.parametrize("path,flags,linux,win", ERROR_STYLES)
def test_windows_error_style(guest: Guest, tree: Tree, path: str, flags: int, linux: tuple[int, int],
                             win: tuple[int, int], windows: bool) -> None:
    """CREATE's "not found" answers, adjusted for a client in Windows error style.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile, HostServices/SharedFolders/vbsf.cpp:vbsfOpenDir, HostServices/SharedFolders/vbsf.cpp:vbsfErrorStyleIsWindowsPathNotFound, HostServices/SharedFolders/vbsf.cpp:vbsfErrorStyleIsWindowsNotADirectory, HostServices/SharedFolders/vbsf.cpp:vbsfErrorStyleIsWindowsInvalidNameForNonDir
    """
    root = guest.map("sf")
    if windows:
        assert guest.call(ShflFn.SET_ERROR_STYLE, SvcParm.u32(1), SvcParm.u32(0)) == 0
    created = create(guest, root, path, flags)
    assert (created.status, created.parms.Result) == (win if windows else linux)
    assert created.parms.Handle == NIL and created.info_untouched
    assert sorted(os.listdir(tree.share / "sub")) == ["empty", "file.txt"]


# --- OPEN_TARGET_DIRECTORY ----------------------------------------------------------------------

#: (share, path, flags sent, directory opened (relative to the share), Result)
TARGET_DIRS = [
    ("sf", "sub/file.txt", CF.ACCESS_READ | OPEN, "sub", R.FILE_EXISTS),
    ("sf", "sub/empty", CF.ACCESS_READ | CREATE_ONLY, "sub", R.FILE_EXISTS),
    ("sf", "sub/empty/", CF.ACCESS_READ | OPEN, "sub", R.FILE_EXISTS),
    ("sf", "sub", CF.ACCESS_READWRITE | REPLACE_ONLY, "", R.FILE_EXISTS),
    ("sf", "", CF.ACCESS_READ | OPEN, "", R.FILE_EXISTS),                  # the root stays the root
    ("ro", "file.txt", CF.ACCESS_READ | REPLACE_CREATE, "", R.FILE_EXISTS),  # no write check left
]


@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("share,path,flags,target,result", TARGET_DIRS)
def test_open_target_directory(guest: Guest, tree: Tree, share: str, path: str, flags: int, target: str,
                               result: int) -> None:
    """SHFL_CF_OPEN_TARGET_DIRECTORY on an existing path: the last component is stripped and
    the actions become DIRECTORY | OPEN_IF_EXISTS | FAIL_IF_NEW (written back) before the
    write-protect check; the parent directory is opened, nothing is replaced.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfCreate, HostServices/SharedFolders/vbsf.cpp:vbsfStripLastComponent, HostServices/SharedFolders/vbsf.cpp:vbsfOpenDir
    """
    root = guest.map(share)
    base = tree.share if share == "sf" else tree.ro
    sent = CF.OPEN_TARGET_DIRECTORY | flags
    created = create(guest, root, path, sent)
    assert (created.status, created.parms.Result, created.parms.Handle) == (0, result, 1)
    expected_flags = (sent & ~int(CF.ACT_MASK_IF_EXISTS | CF.ACT_MASK_IF_NEW)) | CF.DIRECTORY | OPEN
    assert created.parms.CreateFlags == expected_flags
    assert created.info_bytes == expected_info(os.stat(base / target))
    assert sorted(guest.list(root, 1).names) == sorted([".", ".."] + os.listdir(base / target))
    assert (tree.share / "sub/file.txt").read_bytes() == b"hello"
    assert (tree.ro / "file.txt").read_bytes() == b"ro-data"


@pytest.mark.shfl("CREATE")
def test_open_target_directory_of_a_missing_path_is_ignored(guest: Guest, tree: Tree) -> None:
    """SHFL_CF_OPEN_TARGET_DIRECTORY when the pre-query fails: ignored, the file is created.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfCreate, HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile
    """
    root = guest.map("sf")
    sent = CF.OPEN_TARGET_DIRECTORY | CF.ACCESS_READWRITE | OPEN_CREATE
    created = create(guest, root, "sub/new.txt", sent)
    assert (created.status, created.parms.Result, created.parms.Handle) == (0, R.FILE_CREATED, 1)
    assert created.parms.CreateFlags == sent
    assert (tree.share / "sub/new.txt").read_bytes() == b""


# --- the mode of a new file ---------------------------------------------------------------------

_DOS_READONLY, _DOS_HIDDEN, _DOS_DIRECTORY, _DOS_NT_NORMAL = 0x10000, 0x20000, 0x100000, 0x800000

#: (Handle sent, Info.Attr.fMode sent, host mode with umask 0)
CREATE_MODES = [
    (NIL, 0o100640, 0o640),
    (NIL, 0o640, 0o640),
    (NIL, 0, 0o600),                       # no bits: RT_FILE_PERMISSION
    (NIL, 0o107777, 0o777),                # only the 9 permission bits pass
    (NIL, 0o040755, 0o755),                # a type that is no file is not looked at
    (0, 0o100640, 0o600),                  # old additions (Handle 0): fMode is garbage
    (NIL, _DOS_READONLY, 0o444),           # DOS-only modes: r for all, w unless read-only
    (NIL, _DOS_NT_NORMAL, 0o666),
    (NIL, _DOS_DIRECTORY, 0o777),          # x for "directories"
    (0, _DOS_READONLY | _DOS_HIDDEN, 0o444),  # the DOS rule applies to old additions too
    (NIL, _DOS_HIDDEN | 0o604, 0o604),     # any Unix bit: the Unix bits win
]


@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("handle_in,fmode,mode", CREATE_MODES)
def test_create_mode(guest: Guest, tree: Tree, handle_in: int, fmode: int, mode: int) -> None:
    """The permission bits of a file CREATE makes: from Info.Attr.fMode (Unix bits, or the DOS
    attributes when no Unix bit is set), ignored for old additions (Handle sent as 0), 0600
    when nothing is left; the umask applies on the host (0 here).
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfConvertFileOpenFlags, Runtime/r3/posix/fileio-posix.cpp:RTFileOpenEx
    """
    root = guest.map("sf")
    old = os.umask(0)
    try:
        created = create(guest, root, "sub/new.txt", CF.ACCESS_READWRITE | CREATE_ONLY,
                         handle_in=handle_in, mode=fmode)
    finally:
        os.umask(old)
    assert (created.status, created.parms.Result, created.parms.Handle) == (0, R.FILE_CREATED, 1)
    assert (tree.share / "sub/new.txt").stat().st_mode & 0o7777 == mode


# --- read-only shares -----------------------------------------------------------------------------

#: (flags, status, Result, handle given): what reaches vbsfOpenFile on a read-only share.
READ_ONLY_SHARE = [
    (CF.ACCESS_READ | OPEN, 0, R.FILE_EXISTS, True),
    (CF.ACCESS_READWRITE | OPEN, 0, R.FILE_EXISTS, True),      # the write bit silently dropped
    (CF.ACCESS_NONE | OPEN, 0, R.FILE_EXISTS, True),
    (CF.ACCESS_READWRITE | CF.ACCESS_APPEND | OPEN, 0, R.FILE_EXISTS, True),
]


@pytest.mark.shfl("CREATE", "READ", "WRITE")
@pytest.mark.parametrize("flags,status,result,opened", READ_ONLY_SHARE)
def test_read_only_share_opens(guest: Guest, tree: Tree, flags: int, status: int, result: int,
                               opened: bool) -> None:
    """Opening an existing file on a read-only share: write access is dropped before IPRT
    sees the flags (read-write becomes read, append is then ignored); the handle reads, and
    WRITE through it is refused by the mapping check (VERR_WRITE_PROTECT).
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfConvertFileOpenFlags, HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile, HostServices/SharedFolders/vbsf.cpp:vbsfCheckHandleAccess
    """
    root = guest.map("ro")
    created = create(guest, root, "file.txt", flags)
    assert (created.status, created.parms.Result, created.parms.Handle) == (status, result, 1)
    assert created.info_bytes == expected_info(os.stat(tree.ro / "file.txt"))
    assert guest.read(root, 1, 0, 32) == (0, b"ro-data", 7)
    assert guest.write(root, 1, 0, b"x") == (Status.VERR_WRITE_PROTECT, 0, 0)
    assert (tree.ro / "file.txt").read_bytes() == b"ro-data"


# --- handle allocation ----------------------------------------------------------------------------

@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("flags", [CF.ACCESS_READWRITE | OPEN_CREATE, DIR | OPEN_CREATE])
def test_full_handle_table_refuses_before_the_host_is_touched(svc: SharedFoldersService, tree: Tree,
                                                               flags: int) -> None:
    """All 4095 handle slots in use: the handle allocation that precedes the host open fails,
    VERR_NO_MEMORY with Result NO_RESULT and Handle NIL, and nothing is created.
    VBox: HostServices/SharedFolders/shflhandle.cpp:vbsfAllocHandle, HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile, HostServices/SharedFolders/vbsf.cpp:vbsfOpenDir
    """
    holders = [Guest(svc) for _ in range(4)]
    left = 4095
    for holder in holders:
        root = holder.map("sf")
        for _ in range(min(left, 1024)):
            holder.open(root, "sub/file.txt")
        left -= min(left, 1024)
    assert left == 0
    guest = Guest(svc)
    root = guest.map("sf")
    created = create(guest, root, "sub/new", flags)
    assert (created.status, created.parms.Result, created.parms.Handle) == \
        (Status.VERR_NO_MEMORY, R.NO_RESULT, NIL)
    assert created.info_untouched
    assert not (tree.share / "sub/new").exists()
    # One slot freed: the next open gets exactly that slot (its second generation, SF4).
    assert holders[1].close(holders[1].map("sf"), 1024 + 7) == 0
    assert create(guest, root, "sub/new", flags).parms.Handle == (1 << 12) | (1024 + 7)


@pytest.mark.shfl("CREATE")
def test_per_client_handle_limit_refuses_before_the_host_is_touched(svc: SharedFoldersService,
                                                                     guest: Guest, tree: Tree) -> None:
    """Project policy SEC1 (no VirtualBox branch): past MAX_HANDLES_PER_CLIENT open handles a
    CREATE answers VERR_TOO_MANY_OPEN_FILES, Result NO_RESULT, Handle NIL, at the point where
    VirtualBox allocates the handle, so nothing is created on the host.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile, HostServices/SharedFolders/shflhandle.cpp:vbsfAllocHandle
    """
    root = guest.map("sf")
    for _ in range(MAX_HANDLES_PER_CLIENT):
        guest.open(root, "sub/file.txt")
    created = create(guest, root, "sub/new.txt", CF.ACCESS_READWRITE | OPEN_CREATE)
    assert (created.status, created.parms.Result, created.parms.Handle) == \
        (Status.VERR_TOO_MANY_OPEN_FILES, R.NO_RESULT, NIL)
    assert created.info_untouched
    assert not (tree.share / "sub/new.txt").exists()
    created = create(guest, root, "sub/newdir", DIR | OPEN_CREATE)
    assert created.status == Status.VERR_TOO_MANY_OPEN_FILES
    assert not (tree.share / "sub/newdir").exists()


# --- failures after the open ----------------------------------------------------------------------

@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("directory", [False, True], ids=["file", "dir"])
def test_info_query_failure_after_the_open(guest: Guest, tree: Tree, directory: bool) -> None:
    """The object was created and opened but querying its info fails (EIO): the status is
    that error, the Result already set (FILE_CREATED) stays, the object is closed again and
    its handle freed (Handle NIL; the next open gets value 2); the new object stays on the host.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile, HostServices/SharedFolders/vbsf.cpp:vbsfOpenDir, Runtime/generic/RTDirQueryInfo-generic.cpp:RTDirQueryInfo
    """
    root = guest.map("sf")
    flags = (DIR if directory else CF.ACCESS_READWRITE) | OPEN_CREATE
    fds = len(os.listdir("/proc/self/fd"))
    # A file's first fstat is our regular-file check after open(2); the second is the info.
    with faults.inject(faults.Fault("fstat", errno.EIO, after=0 if directory else 1)):
        created = create(guest, root, "sub/new", flags)
    assert len(os.listdir("/proc/self/fd")) == fds  # the opened object was closed again
    assert (created.status, created.parms.Result, created.parms.Handle) == \
        (Status.VERR_DEV_IO_ERROR, R.FILE_CREATED, NIL)
    assert created.info_untouched
    host = tree.share / "sub/new"
    assert host.is_dir() if directory else host.read_bytes() == b""
    assert _next_handle(guest, root) == 2


@pytest.mark.shfl("CREATE")
def test_type_check_failure_after_open_closes_the_file(guest: Guest, tree: Tree) -> None:
    """Our SF6 type check (an fstat right after open(2), which VirtualBox does not make)
    failing with EIO: that status, Handle NIL, the descriptor closed, no traceback; the file
    O_CREAT made stays (as after any failure following RTFileOpenEx).
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfOpenFile, Runtime/r3/posix/fileio-posix.cpp:RTFileOpenEx
    """
    root = guest.map("sf")
    fds = len(os.listdir("/proc/self/fd"))
    with faults.inject(faults.Fault("fstat", errno.EIO)):
        created = create(guest, root, "sub/new", CF.ACCESS_READWRITE | OPEN_CREATE)
    assert len(os.listdir("/proc/self/fd")) == fds
    assert (created.status, created.parms.Handle) == (Status.VERR_DEV_IO_ERROR, NIL)
    assert created.info_untouched
    assert (tree.share / "sub/new").read_bytes() == b""
    assert _next_handle(guest, root) == 2


@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("flags", [CF.LOOKUP, CF.LOOKUP | CF.ACCESS_WRITE | REPLACE_CREATE])
def test_lookup_on_a_read_only_share_is_no_write(guest: Guest, tree: Tree, flags: int) -> None:
    """SHFL_CF_LOOKUP is decided before the write-protect check: on a read-only share even
    with CREATE_IF_NEW / REPLACE actions it is a plain path query (FILE_EXISTS, Handle NIL).
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfCreate, HostServices/SharedFolders/vbsf.cpp:vbsfLookupFile
    """
    root = guest.map("ro")
    created = create(guest, root, "file.txt", flags)
    assert (created.status, created.parms.Result, created.parms.Handle) == (0, R.FILE_EXISTS, NIL)
    assert created.info_bytes == expected_info(os.stat(tree.ro / "file.txt"), b"file.txt")
    assert (tree.ro / "file.txt").read_bytes() == b"ro-data"


@pytest.mark.shfl("CREATE")
@pytest.mark.parametrize("use_openat2", [True, False], ids=["openat2", "walk"])
@pytest.mark.parametrize("path", ["", "/", "sub/.."])
def test_lookup_of_the_root_sees_the_share_folders_own_name(tmp_path: Path, use_openat2: bool,
                                                            path: str) -> None:
    """SHFL_CF_LOOKUP of the share root: IPRT's hidden bit comes from the folder's own name.

    The root's host path is the folder's absolute path without a trailing slash (mappings.cpp
    vbsfMappingsAdd -> vbsfPathAbs -> RTPathAbsEx; vbsfPathGuestToHost builds the root the
    same way for an empty or '..'-cancelled guest path), so RTPathFilename is the folder's
    name: a share folder named ".cache" is reported DOS_HIDDEN (with NT_NORMAL clear, as a
    directory), one named "plain" is not.
    VBox: HostServices/SharedFolders/vbsfpathabs.cpp:vbsfPathAbs, HostServices/SharedFolders/vbsf.cpp:vbsfLookupFile, Runtime/r3/fs.cpp:rtFsModeFromUnix
    """
    hidden, plain = tmp_path / ".cache", tmp_path / "plain"
    for folder in (hidden, plain):
        (folder / "sub").mkdir(parents=True)
    svc = SharedFoldersService(use_openat2=use_openat2)
    try:
        assert svc.add_mapping("hidden", str(hidden)) == 0
        assert svc.add_mapping("plain", str(plain)) == 0
        guest = Guest(svc)
        for name, folder in (("hidden", hidden), ("plain", plain)):
            root = guest.map(name)
            created = create(guest, root, path, CF.LOOKUP | CF.ACCESS_READ)
            assert (created.status, created.parms.Result, created.parms.Handle) == \
                (0, R.FILE_EXISTS, NIL)
            assert created.info_bytes == expected_info(os.stat(folder), folder.name.encode())
            is_hidden = bool(created.parms.Info.Attr.fMode & RtFs.DOS_HIDDEN)
            assert is_hidden == (name == "hidden")
    finally:
        svc.close()
