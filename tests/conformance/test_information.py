"""SHFL_FN_INFORMATION against VirtualBox 7.0.14: GET FILE, GET VOLUME, SET FILE, SET SIZE.

svcCall (HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp) checks cb against the buffer,
then vbsfQueryFSInfo / vbsfSetFSInfo pick the branch by flag; every branch checks the handle
(this client's, of the right kind), the buffer size, then vbsfCheckHandleAccess (root, mapping,
writability).  Expected host effects follow IPRT on Linux down to the syscall.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from hgcmlab.runtime.fs import SYSCALLS, RtFs
from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflInfo, ShflVolInfo
from tests.conformance._info import INFO_SIZE, assert_info_is_stat, info_call, request
from tests.service.conftest import READ_OPEN, Guest, Tree

CF = ShflCf
RW_OPEN = CF.ACCESS_READWRITE | CF.ACT_FAIL_IF_NEW
DIR_OPEN = CF.DIRECTORY | READ_OPEN
GET_FILE, GET_VOLUME = ShflInfo.FILE, ShflInfo.VOLUME
SET_FILE, SET_SIZE = ShflInfo.SET | ShflInfo.FILE, ShflInfo.SET | ShflInfo.SIZE
VOL_SIZE = ctypes.sizeof(ShflVolInfo)
DOS_RO, DOS_DIR, DOS_HIDDEN = RtFs.DOS_READONLY, RtFs.DOS_DIRECTORY, RtFs.DOS_HIDDEN
DOS_ARCHIVED, DOS_REPARSE = RtFs.DOS_ARCHIVED, RtFs.DOS_NT_REPARSE_POINT


@pytest.fixture
def root(guest: Guest) -> int:
    return guest.map("sf")


def _perms(path: Path) -> int:
    return os.stat(path).st_mode & 0o7777


# --- GET FILE ----------------------------------------------------------------------------


@pytest.mark.shfl("INFORMATION")
@pytest.mark.parametrize("rel", ["sub/file.txt", "sub/.dot", "sub/ro.txt"])
def test_get_file_on_a_file_handle_returns_its_fstat(guest: Guest, root: int, tree: Tree,
                                                     rel: str) -> None:
    """GET FILE on a file handle (plain, dot-named, read-only): every field from fstat, never DOS HIDDEN.

    RTFileQueryInfo converts the fstat without a name, so a dot-named file is not hidden;
    a file without write bits is DOS READONLY; setuid/setgid/sticky are cleared.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfQueryFileInfo, Runtime/r3/posix/fileio2-posix.cpp:RTFileQueryInfo, Runtime/r3/posix/fs2-posix.cpp:rtFsConvertStatToObjInfo
    """
    (tree.share / "sub/.dot").write_bytes(b"dotdot")
    (tree.share / "sub/ro.txt").write_bytes(b"r")
    os.chmod(tree.share / "sub/ro.txt", 0o6444)
    h = guest.open(root, rel)
    st, cb, buf = info_call(guest, root, h, GET_FILE)
    assert (st, cb) == (Status.VINF_SUCCESS, INFO_SIZE)
    assert_info_is_stat(buf, os.stat(tree.share / rel))


@pytest.mark.shfl("INFORMATION")
def test_get_file_on_a_directory_handle_never_marks_it_hidden(guest: Guest, root: int,
                                                               tree: Tree) -> None:
    """GET FILE on a directory handle whose name starts with '.': its stat, without DOS HIDDEN.

    RTDirQueryInfo stats the handle's path, which rtDirOpenCommon stores with a trailing
    slash, so RTPathFilename finds no name and the hidden test never fires.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfQueryFileInfo, Runtime/generic/RTDirQueryInfo-generic.cpp:RTDirQueryInfo, Runtime/r3/dir.cpp:rtDirOpenCommon, Runtime/r3/fs.cpp:rtFsModeFromUnix
    """
    (tree.share / ".hid").mkdir()
    d = guest.open(root, ".hid", DIR_OPEN)
    st, cb, buf = info_call(guest, root, d, GET_FILE)
    assert (st, cb) == (Status.VINF_SUCCESS, INFO_SIZE)
    assert_info_is_stat(buf, os.stat(tree.share / ".hid"))  # no name: no DOS_HIDDEN


@pytest.mark.shfl("INFORMATION")
def test_get_with_file_and_volume_flags_takes_the_file_branch(guest: Guest, root: int,
                                                              tree: Tree) -> None:
    """GET with FILE and VOLUME both set: FILE is tested first, file info comes back.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfQueryFSInfo
    """
    h = guest.open(root, "sub/file.txt")
    st, cb, buf = info_call(guest, root, h, GET_FILE | GET_VOLUME)
    assert (st, cb) == (Status.VINF_SUCCESS, INFO_SIZE)
    assert_info_is_stat(buf, os.stat(tree.share / "sub/file.txt"))


# Each row: which parameter is wrong, flags, buffer size, cb, expected status, expected cb.
_BAD_GETS = [
    ("cb larger than the buffer (svcCall, cb untouched)", GET_FILE, 92, 93, Status.VERR_INVALID_PARAMETER, 93),
    ("buffer one byte short of SHFLFSOBJINFO", GET_FILE, 91, 91, Status.VERR_INVALID_PARAMETER, 0),
    ("neither FILE nor VOLUME", 0, 92, 92, Status.VERR_INVALID_PARAMETER, 0),
    ("only NAME (not handled by GET)", ShflInfo.NAME, 92, 92, Status.VERR_INVALID_PARAMETER, 0),
    ("only SIZE without SET", ShflInfo.SIZE, 92, 92, Status.VERR_INVALID_PARAMETER, 0),
]


@pytest.mark.shfl("INFORMATION")
@pytest.mark.parametrize("what,flags,size,cb,status,cb_after", _BAD_GETS, ids=[r[0] for r in _BAD_GETS])
def test_get_parameter_checks(guest: Guest, root: int, what: str, flags: int, size: int, cb: int,
                              status: int, cb_after: int) -> None:
    """GET with one bad parameter: the status of the check that catches it, cb as svcCall leaves it.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfQueryFSInfo, HostServices/SharedFolders/vbsf.cpp:vbsfQueryFileInfo
    """
    h = guest.open(root, "sub/file.txt")
    data = b"\xAB" * size
    st, cb_out, buf = info_call(guest, root, h, flags, data, cb=cb)
    assert (st, cb_out) == (status, cb_after)
    assert buf == data  # nothing written into the buffer


@pytest.mark.shfl("INFORMATION")
@pytest.mark.parametrize("flags", [GET_FILE, SET_FILE, SET_SIZE], ids=["get", "set-file", "set-size"])
def test_handle_of_another_root_is_invalid_handle(guest: Guest, root: int, tree: Tree,
                                                  flags: int) -> None:
    """A valid handle of this client used with another root it has mapped: VERR_INVALID_HANDLE, cb 0.

    vbsfQueryHandleType does not look at the root; vbsfCheckHandleAccess compares it and
    answers VERR_INVALID_HANDLE.  Nothing on the host changes.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfCheckHandleAccess, HostServices/SharedFolders/vbsf.cpp:vbsfQueryFileInfo, HostServices/SharedFolders/vbsf.cpp:vbsfSetFileInfo, HostServices/SharedFolders/vbsf.cpp:vbsfSetEndOfFile
    """
    other = guest.map("ro")
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    before = os.stat(tree.share / "sub/file.txt")
    st, cb, _ = info_call(guest, other, h, flags, request(fmode=0o100777, size=1))
    assert (st, cb) == (Status.VERR_INVALID_HANDLE, 0)
    after = os.stat(tree.share / "sub/file.txt")
    assert (after.st_mode, after.st_size) == (before.st_mode, before.st_size)


@pytest.mark.shfl("INFORMATION")
def test_buffer_size_is_checked_before_the_root(guest: Guest, root: int) -> None:
    """Another root and a short buffer together: the buffer check comes first (VERR_INVALID_PARAMETER).

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfQueryFileInfo
    """
    other = guest.map("ro")
    h = guest.open(root, "sub/file.txt")
    assert info_call(guest, other, h, GET_FILE, 91)[:2] == (Status.VERR_INVALID_PARAMETER, 0)


@pytest.mark.shfl("INFORMATION")
@pytest.mark.parametrize("flags", [GET_FILE, SET_FILE, SET_SIZE, ShflInfo.SET | ShflInfo.VOLUME],
                         ids=["get", "set-file", "set-size", "set-volume"])
def test_unknown_or_foreign_handle_is_invalid_parameter(svc, guest: Guest, root: int,  # noqa: ANN001
                                                        flags: int) -> None:
    """A handle value this client does not own (unknown, or another client's): VERR_INVALID_PARAMETER.

    VBox: HostServices/SharedFolders/shflhandle.cpp:vbsfQueryHandleType, HostServices/SharedFolders/vbsf.cpp:vbsfSetFSInfo, HostServices/SharedFolders/vbsf.cpp:vbsfQueryFileInfo
    """
    other = Guest(svc)
    foreign = other.open(other.map("sf"), "sub/file.txt", RW_OPEN)
    for value in (0x999, foreign):
        assert info_call(guest, root, value, flags, request())[:2] == (Status.VERR_INVALID_PARAMETER, 0)


# --- SET FILE: checks --------------------------------------------------------------------


@pytest.mark.shfl("INFORMATION")
def test_set_without_file_or_size_is_invalid_parameter(guest: Guest, root: int, tree: Tree) -> None:
    """SET with neither FILE nor SIZE (e.g. VOLUME) on a valid handle: VERR_INVALID_PARAMETER, nothing changed.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSetFSInfo
    """
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    before = _perms(tree.share / "sub/file.txt")
    st, cb, _ = info_call(guest, root, h, ShflInfo.SET | ShflInfo.VOLUME, request(fmode=0o100777))
    assert (st, cb) == (Status.VERR_INVALID_PARAMETER, 0)
    assert _perms(tree.share / "sub/file.txt") == before


@pytest.mark.shfl("INFORMATION")
@pytest.mark.parametrize("flags", [SET_FILE, SET_SIZE], ids=["set-file", "set-size"])
def test_set_on_a_read_only_mapping_is_write_protect(guest: Guest, tree: Tree, flags: int) -> None:
    """SET FILE / SET SIZE through a read-only mapping: VERR_WRITE_PROTECT, cb 0, file unchanged.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfCheckHandleAccess, HostServices/SharedFolders/vbsf.cpp:vbsfSetFileInfo, HostServices/SharedFolders/vbsf.cpp:vbsfSetEndOfFile
    """
    rr = guest.map("ro")
    h = guest.open(rr, "file.txt")
    before = os.stat(tree.ro / "file.txt")
    st, cb, _ = info_call(guest, rr, h, flags, request(fmode=0o100777, atime=5000, size=1))
    assert (st, cb) == (Status.VERR_WRITE_PROTECT, 0)
    after = os.stat(tree.ro / "file.txt")
    assert (after.st_mode, after.st_size, after.st_atime_ns) == (before.st_mode, before.st_size, before.st_atime_ns)


@pytest.mark.shfl("INFORMATION")
def test_set_file_with_nothing_to_change_returns_the_current_info(guest: Guest, root: int,
                                                                  tree: Tree) -> None:
    """SET FILE with all times 0 and fMode 0: no change, status 0, cb 92, the re-queried info.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSetFileInfo
    """
    path = tree.share / "sub/file.txt"
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    before = os.stat(path)
    st, cb, buf = info_call(guest, root, h, SET_FILE, request())
    assert (st, cb) == (Status.VINF_SUCCESS, INFO_SIZE)
    after = os.stat(path)
    assert (after.st_mode, after.st_atime_ns, after.st_mtime_ns, after.st_ctime_ns) == \
        (before.st_mode, before.st_atime_ns, before.st_mtime_ns, before.st_ctime_ns)
    assert_info_is_stat(buf, after)


# --- SET FILE: modes ---------------------------------------------------------------------

# (guest fMode, expected permissions afterwards; None = unchanged) on a file that starts 0600.
_FILE_MODES = [
    ("unix with file type", 0o100644, 0o644),
    ("setuid/setgid/sticky stripped", 0o107777, 0o777),
    ("type only: owner-read forced", 0o100000, 0o400),
    ("unix without type or DOS bits: rtFsModeIsValid refuses", 0o644, None),
    ("only setuid: owner-read added, still typeless, refused", 0o4000, None),
    ("directory type on a file: applied, fchmod ignores the type", 0o040755, 0o755),
    ("symlink type on a file: applied", 0o120711, 0o711),
    ("unix with DOS bits, no type: typed from DOS_DIRECTORY", 0o640 | DOS_DIR, 0o640),
    ("file type contradicting DOS_DIRECTORY: refused", 0o100640 | DOS_DIR, None),
    ("DOS read-only", DOS_RO, 0o444),
    ("DOS archived", DOS_ARCHIVED, 0o666),
    ("DOS hidden", DOS_HIDDEN, 0o666),
    ("DOS directory: rwx for all", DOS_DIR, 0o777),
    ("DOS directory + read-only: read-only ignored with DIRECTORY", DOS_DIR | DOS_RO, 0o777),
    ("DOS reparse point + read-only: symlink type, applied", DOS_REPARSE | DOS_RO, 0o444),
    ("DOS directory + reparse point: symlink type vs DIRECTORY, refused", DOS_DIR | DOS_REPARSE, None),
]


@pytest.mark.shfl("INFORMATION")
@pytest.mark.parametrize("what,fmode,perms", _FILE_MODES, ids=[r[0] for r in _FILE_MODES])
def test_set_file_mode_on_a_file(guest: Guest, root: int, tree: Tree, what: str, fmode: int,
                                 perms: int | None) -> None:
    """SET FILE fMode on a file handle: the permissions fchmod gets, or none when IPRT refuses; status 0 either way.

    vbsfSetFileInfo forces owner-read and strips the special bits when Unix bits are given;
    RTFileSetMode normalises with the file type and refuses invalid modes (ignored).
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSetFileInfo, Runtime/r3/posix/fileio-posix.cpp:RTFileSetMode, Runtime/r3/fs.cpp:rtFsModeNormalize, Runtime/r3/fs.cpp:rtFsModeIsValid
    """
    path = tree.share / "sub/file.txt"
    os.chmod(path, 0o600)
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    st, cb, buf = info_call(guest, root, h, SET_FILE, request(fmode=fmode))
    assert (st, cb) == (Status.VINF_SUCCESS, INFO_SIZE)
    assert _perms(path) == (0o600 if perms is None else perms)
    assert_info_is_stat(buf, os.stat(path))


# On a directory that starts 0700.
_DIR_MODES = [
    ("unix with directory type", 0o040755, 0o755),
    ("unix without type: TYPE_DIRECTORY added", 0o751, 0o751),
    ("no permissions: owner read+execute forced", 0o040000, 0o500),
    ("setuid/setgid/sticky stripped", 0o047777, 0o777),
    ("file type on a directory: applied", 0o100644, 0o744),
    ("unix + DOS bits, no type", 0o640 | DOS_ARCHIVED, 0o740),
    ("directory type + DOS read-only", 0o040751 | DOS_RO, 0o751),
    ("file type contradicting DOS_DIRECTORY: refused", 0o100644 | DOS_DIR, None),
    ("DOS read-only: ignored on directories, rwx for all", DOS_RO, 0o777),
    ("DOS hidden", DOS_HIDDEN, 0o777),
]


@pytest.mark.shfl("INFORMATION")
@pytest.mark.parametrize("what,fmode,perms", _DIR_MODES, ids=[r[0] for r in _DIR_MODES])
def test_set_file_mode_on_a_directory(guest: Guest, root: int, tree: Tree, what: str, fmode: int,
                                      perms: int | None) -> None:
    """SET FILE fMode on a directory handle: the permissions chmod gets, or none when IPRT refuses; status 0.

    vbsfSetFileInfo forces owner read+execute for Unix modes; RTDirSetMode marks a DOS-only
    mode DIRECTORY and a typeless Unix mode TYPE_DIRECTORY; RTPathSetMode refuses only a
    type/DOS_DIRECTORY disagreement (rtFsModeIsValidPermissions).
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSetFileInfo, Runtime/generic/RTDirSetMode-generic.cpp:RTDirSetMode, Runtime/r3/posix/path-posix.cpp:RTPathSetMode, Runtime/r3/fs.cpp:rtFsModeFromDos
    """
    path = tree.share / "sub/empty"
    os.chmod(path, 0o700)
    d = guest.open(root, "sub/empty", DIR_OPEN)
    st, cb, buf = info_call(guest, root, d, SET_FILE, request(fmode=fmode))
    assert (st, cb) == (Status.VINF_SUCCESS, INFO_SIZE)
    assert _perms(path) == (0o700 if perms is None else perms)
    assert_info_is_stat(buf, os.stat(path))


# --- SET FILE: times ---------------------------------------------------------------------

_T_A = 1_600_000_000_123_456_789
_T_M = 1_500_000_000_987_654_321


def _set_times(path: Path, atime: int, mtime: int) -> None:
    os.utime(path, ns=(atime, mtime))


_TIMES = [
    # (what, request times (a, m, c, b), expected (atime, mtime) from a start of (_T_A, _T_M))
    ("access and modification: microseconds kept", (1_700_000_000_111_222_333, 1_700_000_001_444_555_666, 0, 0),
     (1_700_000_000_111_222_000, 1_700_000_001_444_555_000)),
    ("access only: the unchanged one is truncated too", (1_700_000_000_111_222_333, 0, 0, 0),
     (1_700_000_000_111_222_000, 1_500_000_000_987_654_000)),
    ("modification only", (0, 1_700_000_000_000_000_999, 0, 0),
     (1_600_000_000_123_456_000, 1_700_000_000_000_000_000)),
    ("negative time: truncated toward zero", (-1_500, 0, 0, 0), (-1_000, 1_500_000_000_987_654_000)),
]


@pytest.mark.shfl("INFORMATION")
@pytest.mark.parametrize("kind", ["file", "dir"])
@pytest.mark.parametrize("what,times,expected", _TIMES, ids=[r[0] for r in _TIMES])
def test_set_times_are_microseconds(guest: Guest, root: int, tree: Tree, kind: str, what: str,
                                    times: tuple[int, int, int, int],
                                    expected: tuple[int, int]) -> None:
    """SET FILE with non-zero times: zero ones stay, set ones keep whole microseconds (futimes/lutimes).

    RTFileSetTimes (no USE_FUTIMENS on Linux) and RTPathSetTimesEx convert through struct
    timeval (RTTimeSpecGetTimeval, truncating), re-reading the time not given.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSetFileInfo, Runtime/r3/posix/fileio2-posix.cpp:RTFileSetTimes, Runtime/generic/RTDirSetTimes-generic.cpp:RTDirSetTimes, Runtime/r3/posix/path2-posix.cpp:RTPathSetTimesEx
    """
    rel = "sub/file.txt" if kind == "file" else "sub/empty"
    path = tree.share / rel
    _set_times(path, _T_A, _T_M)
    h = guest.open(root, rel, RW_OPEN if kind == "file" else DIR_OPEN)
    a, m, c, b = times
    st, cb, buf = info_call(guest, root, h, SET_FILE, request(atime=a, mtime=m, ctime=c, btime=b))
    assert (st, cb) == (Status.VINF_SUCCESS, INFO_SIZE)
    after = os.stat(path)
    assert (after.st_atime_ns, after.st_mtime_ns) == expected
    assert_info_is_stat(buf, after)


@pytest.mark.shfl("INFORMATION")
@pytest.mark.parametrize("kind", ["file", "dir"])
def test_set_change_or_birth_time_only_touches_nothing(guest: Guest, root: int, tree: Tree,
                                                       kind: str) -> None:
    """SET FILE with only change/birth times non-zero: no syscall, all host times (ctime too) unchanged.

    The branch is entered, but RTFileSetTimes returns at once without access/modification
    time and RTPathSetTimesEx only queries.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSetFileInfo, Runtime/r3/posix/fileio2-posix.cpp:RTFileSetTimes, Runtime/r3/posix/path2-posix.cpp:RTPathSetTimesEx
    """
    rel = "sub/file.txt" if kind == "file" else "sub/empty"
    path = tree.share / rel
    _set_times(path, _T_A, _T_M)
    before = os.stat(path)
    h = guest.open(root, rel, RW_OPEN if kind == "file" else DIR_OPEN)
    st, cb, buf = info_call(guest, root, h, SET_FILE, request(ctime=123_456_789, btime=987_654_321))
    assert (st, cb) == (Status.VINF_SUCCESS, INFO_SIZE)
    after = os.stat(path)
    assert (after.st_atime_ns, after.st_mtime_ns, after.st_ctime_ns) == \
        (before.st_atime_ns, before.st_mtime_ns, before.st_ctime_ns)
    assert_info_is_stat(buf, after)


@pytest.mark.shfl("INFORMATION")
def test_set_times_then_mode_in_one_call(guest: Guest, root: int, tree: Tree) -> None:
    """SET FILE with a time and a mode: both applied, the written-back info is the re-queried one.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSetFileInfo, HostServices/SharedFolders/vbsf.cpp:vbsfQueryFileInfo
    """
    path = tree.share / "sub/file.txt"
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    st, cb, buf = info_call(guest, root, h, SET_FILE, request(fmode=0o100640, mtime=2_000_000_000_000_000_500))
    assert (st, cb) == (Status.VINF_SUCCESS, INFO_SIZE)
    after = os.stat(path)
    assert (after.st_mode & 0o7777, after.st_mtime_ns) == (0o640, 2_000_000_000_000_000_000)
    assert_info_is_stat(buf, after)


# --- SET SIZE ----------------------------------------------------------------------------


@pytest.mark.shfl("INFORMATION")
@pytest.mark.parametrize("size,data", [(2, b"he"), (8, b"hello\0\0\0"), (0, b"")], ids=["shrink", "grow", "empty"])
def test_set_size_truncates_or_extends(guest: Guest, root: int, tree: Tree, size: int,
                                       data: bytes) -> None:
    """SET SIZE on a file handle: ftruncate to cbObject, status 0, cb 92, the file's fresh info.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSetEndOfFile, Runtime/r3/posix/fileio-posix.cpp:RTFileSetSize
    """
    path = tree.share / "sub/file.txt"
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    st, cb, buf = info_call(guest, root, h, SET_SIZE, request(size=size))
    assert (st, cb) == (Status.VINF_SUCCESS, INFO_SIZE)
    assert_info_is_stat(buf, os.stat(path))  # before reading it back (atime)
    assert path.read_bytes() == data


_BAD_SIZES = [
    ("directory handle", "dir", 92, 5, Status.VERR_INVALID_PARAMETER),
    ("buffer one byte short", "file", 91, 5, Status.VERR_INVALID_PARAMETER),
    ("negative size: ftruncate EINVAL", "file", 92, -1, Status.VERR_INVALID_PARAMETER),
]


@pytest.mark.shfl("INFORMATION")
@pytest.mark.parametrize("what,kind,bufsize,size,status", _BAD_SIZES, ids=[r[0] for r in _BAD_SIZES])
def test_set_size_refusals(guest: Guest, root: int, tree: Tree, what: str, kind: str,
                           bufsize: int, size: int, status: int) -> None:
    """SET SIZE with a directory handle, a short buffer or a negative size: the status, cb 0, file unchanged.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSetEndOfFile, Runtime/r3/posix/fileio-posix.cpp:RTFileSetSize
    """
    h = guest.open(root, "sub/file.txt", RW_OPEN) if kind == "file" else guest.open(root, "sub", DIR_OPEN)
    st, cb, _ = info_call(guest, root, h, SET_SIZE, request(size=size)[:bufsize])
    assert (st, cb) == (status, 0)
    assert (tree.share / "sub/file.txt").read_bytes() == b"hello"


@pytest.mark.shfl("INFORMATION")
def test_set_with_size_and_volume_takes_the_size_branch(guest: Guest, root: int, tree: Tree) -> None:
    """SET with SIZE and VOLUME: vbsfSetFSInfo tests SIZE (VOLUME is not a SET branch), the size is applied.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSetFSInfo, HostServices/SharedFolders/vbsf.cpp:vbsfSetEndOfFile
    """
    path = tree.share / "sub/file.txt"
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    st, cb, buf = info_call(guest, root, h, SET_SIZE | ShflInfo.VOLUME, request(size=3))
    assert (st, cb) == (Status.VINF_SUCCESS, INFO_SIZE)
    assert_info_is_stat(buf, os.stat(path))
    assert path.read_bytes() == b"hel"


@pytest.mark.shfl("INFORMATION")
def test_set_with_file_and_size_takes_the_file_branch(guest: Guest, root: int, tree: Tree) -> None:
    """SET with FILE and SIZE both set: FILE is tested first, cbObject is not applied.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSetFSInfo
    """
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    st, cb, _ = info_call(guest, root, h, SET_FILE | ShflInfo.SIZE, request(size=1))
    assert (st, cb) == (Status.VINF_SUCCESS, INFO_SIZE)
    assert (tree.share / "sub/file.txt").read_bytes() == b"hello"


# --- GET VOLUME --------------------------------------------------------------------------


@pytest.mark.shfl("INFORMATION")
@pytest.mark.parametrize("read_only", [False, True], ids=["rw-fs", "ro-fs"])
def test_get_volume_fields(guest: Guest, root: int, tree: Tree, monkeypatch: pytest.MonkeyPatch,
                           read_only: bool) -> None:
    """GET VOLUME: statvfs sizes, sector 512, serial = st_dev, properties; cb 40; the handle is not looked at.

    The host's statvfs answer is fixed (the shared disk's free space moves), so every field
    is compared exactly: total = f_blocks * f_frsize, available = f_bavail * f_frsize,
    allocation unit = f_frsize, cbMaxComponent = f_namemax, fReadOnly = ST_RDONLY.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfQueryVolumeInfo, Runtime/r3/posix/fs-posix.cpp:RTFsQuerySizes, Runtime/r3/posix/fs-posix.cpp:RTFsQuerySerial, Runtime/r3/posix/fs-posix.cpp:RTFsQueryProperties
    """
    # f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_favail, f_flag, f_namemax
    fake = os.statvfs_result((4096, 2048, 1_000_003, 900_000, 700_001, 10, 5, 5,
                              os.ST_RDONLY if read_only else 0, 143))
    monkeypatch.setitem(SYSCALLS, "fstatvfs", lambda fd: fake)
    st, cb, buf = info_call(guest, root, 0xDEAD, GET_VOLUME, b"\xAB" * 48)
    vol = ShflVolInfo.from_buffer_copy(buf[:VOL_SIZE])
    p = vol.fsProperties
    assert (st, cb) == (Status.VINF_SUCCESS, VOL_SIZE)
    assert (vol.ullTotalAllocationBytes, vol.ullAvailableAllocationBytes, vol.ulBytesPerAllocationUnit,
            vol.ulBytesPerSector, vol.ulSerial) == \
        (1_000_003 * 2048, 700_001 * 2048, 2048, 512, os.stat(tree.share).st_dev & 0xFFFFFFFF)
    assert (p.cbMaxComponent, p.fRemote, p.fCaseSensitive, p.fReadOnly, p.fSupportsUnicode,
            p.fCompressed, p.fFileCompression) == (143, 0, 1, int(read_only), 1, 0, 0)
    assert buf[VOL_SIZE:] == b"\xAB" * (48 - VOL_SIZE)


@pytest.mark.shfl("INFORMATION")
def test_get_volume_refusals(guest: Guest, root: int) -> None:
    """GET VOLUME with a buffer short of SHFLVOLINFO, or a root not mapped: VERR_INVALID_PARAMETER, cb 0.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfQueryVolumeInfo
    """
    assert info_call(guest, root, 0, GET_VOLUME, VOL_SIZE - 1)[:2] == (Status.VERR_INVALID_PARAMETER, 0)
    assert info_call(guest, 77, 0, GET_VOLUME, VOL_SIZE)[:2] == (Status.VERR_INVALID_PARAMETER, 0)


@pytest.mark.shfl("INFORMATION")
def test_directory_handle_info_follows_the_object_not_the_path(guest: Guest, root: int,
                                                               tree: Tree) -> None:
    """GET / SET FILE on a directory handle whose directory was renamed on the host: our fd's object (deviation SF11).

    VirtualBox re-resolves the handle's path (RTDirQueryInfo, RTDirSetMode, RTDirSetTimes
    all go by path), so it would answer VERR_FILE_NOT_FOUND here; we use the handle's fd.
    VBox: Runtime/generic/RTDirQueryInfo-generic.cpp:RTDirQueryInfo, Runtime/generic/RTDirSetMode-generic.cpp:RTDirSetMode
    """
    d = guest.open(root, "sub/empty", DIR_OPEN)
    os.rename(tree.share / "sub/empty", tree.share / "moved")
    st, cb, buf = info_call(guest, root, d, SET_FILE, request(fmode=0o040750))
    assert (st, cb) == (Status.VINF_SUCCESS, INFO_SIZE)
    assert _perms(tree.share / "moved") == 0o750
    assert_info_is_stat(buf, os.stat(tree.share / "moved"))
    st, cb, buf = info_call(guest, root, d, GET_FILE)
    assert (st, cb) == (Status.VINF_SUCCESS, INFO_SIZE)
    assert_info_is_stat(buf, os.stat(tree.share / "moved"))


@pytest.mark.shfl("INFORMATION")
@pytest.mark.parametrize("flags", [GET_FILE, SET_FILE, SET_SIZE], ids=["get", "set-file", "set-size"])
def test_handle_whose_share_was_removed_is_access_denied(svc, guest: Guest, root: int,  # noqa: ANN001
                                                         tree: Tree, flags: int) -> None:
    """A handle whose share the host removed (still mapped by the guest: a placeholder): VERR_ACCESS_DENIED, cb 0.

    vbsfCheckHandleAccess: vbsfMappingsQueryWritable fails for the removed share.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfCheckHandleAccess, HostServices/SharedFolders/mappings.cpp:vbsfMappingsQueryWritable
    """
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    before = os.stat(tree.share / "sub/file.txt")
    assert svc.remove_mapping("sf") == Status.VINF_PERMISSION_DENIED
    st, cb, _ = info_call(guest, root, h, flags, request(fmode=0o100777, size=1))
    assert (st, cb) == (Status.VERR_ACCESS_DENIED, 0)
    after = os.stat(tree.share / "sub/file.txt")
    assert (after.st_mode, after.st_size) == (before.st_mode, before.st_size)
