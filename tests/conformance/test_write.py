"""SHFL_FN_WRITE against VirtualBox 7.0.14: svcCall's checks, vbsfWrite / vbsfWritePages,
vbsfCheckHandleAccess, RTFileWriteAt / RTFileWrite / RTFileSgWriteAt."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflFn
from tests.conformance._file import CB_SENT, OFFSET_SENT, handle_call, handle_situation
from tests.service.conftest import Guest, Tree

CF = ShflCf

#: situation -> (status, cb, offset written back, "sf/sub/file.txt" afterwards).  Both stay
#: as sent when svcCall's own checks refuse; after a later failure cb is 0, offset as sent.
HANDLE_CHECKS = {
    "root": (Status.VERR_INVALID_PARAMETER, CB_SENT, OFFSET_SENT, b"hello"),
    "nil": (Status.VERR_INVALID_HANDLE, CB_SENT, OFFSET_SENT, b"hello"),
    "never_opened": (Status.VERR_INVALID_HANDLE, 0, OFFSET_SENT, b"hello"),
    "closed": (Status.VERR_INVALID_HANDLE, 0, OFFSET_SENT, b"hello"),
    "dir": (Status.VERR_INVALID_HANDLE, 0, OFFSET_SENT, b"hello"),
    "other_root": (Status.VERR_INVALID_HANDLE, 0, OFFSET_SENT, b"hello"),
    "other_client": (Status.VERR_INVALID_HANDLE, 0, OFFSET_SENT, b"hello"),
    "mapping_removed": (Status.VERR_ACCESS_DENIED, 0, OFFSET_SENT, b"hello"),
    "read_only_share": (Status.VERR_WRITE_PROTECT, 0, OFFSET_SENT, b"hello"),
    "file": (0, 4, OFFSET_SENT + 4, b"heWXYZ"),
}


@pytest.mark.shfl("WRITE")
@pytest.mark.parametrize("pages", [False, True], ids=["ptr", "pages"])
@pytest.mark.parametrize("situation", list(HANDLE_CHECKS))
def test_write_handle_checks(guest: Guest, tree: Tree, situation: str, pages: bool) -> None:
    """WRITE with each kind of handle: svcCall's ROOT/NIL checks, the file-handle lookup
    (VERR_INVALID_HANDLE), the mapping (removed: VERR_ACCESS_DENIED), then write access
    (read-only share: VERR_WRITE_PROTECT).  cb and offset as written back, host bytes.
    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfWrite, HostServices/SharedFolders/vbsf.cpp:vbsfWritePages, HostServices/SharedFolders/vbsf.cpp:vbsfCheckHandleAccess
    """
    status, cb, offset, content = HANDLE_CHECKS[situation]
    root, handle = handle_situation(guest, situation)
    call = handle_call(guest, ShflFn.WRITE, root, handle, pages=pages)
    assert (call.status, call.value(3), call.value(2)) == (status, cb, offset)
    assert (tree.share / "sub/file.txt").read_bytes() == content
    assert (tree.ro / "file.txt").read_bytes() == b"ro-data"


#: (cb, buffer size, kind, status, cb written back)
BUFFER_CHECKS = [
    (5, 4, "ptr", Status.VERR_INVALID_HANDLE, 5),     # quirk 7
    (5, 4, "pages", Status.VERR_OUT_OF_RANGE, 5),
    (0, 0, "ptr", 0, 0),
    (0, 4, "pages", 0, 0),
]


@pytest.mark.shfl("WRITE")
@pytest.mark.parametrize("append", [False, True])
@pytest.mark.parametrize("cb,size,kind,status,cb_out", BUFFER_CHECKS)
def test_write_count_against_buffer(guest: Guest, tree: Tree, cb: int, size: int, kind: str,
                                    status: int, cb_out: int, append: bool) -> None:
    """WRITE's cb checked against the buffer before the handle; writing 0 bytes succeeds and
    leaves the offset alone (also on an append handle).
    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfWrite, HostServices/SharedFolders/vbsf.cpp:vbsfWritePages
    """
    root = guest.map("sf")
    flags = CF.ACCESS_READWRITE | CF.ACT_FAIL_IF_NEW | (CF.ACCESS_APPEND if append else 0)
    handle = guest.open(root, "sub/file.txt", flags)
    buf = SvcParm.pages(size) if kind == "pages" else SvcParm.ptr(size)
    cbp, off = SvcParm.u32(cb), SvcParm.u64(1)
    st = guest.call(ShflFn.WRITE, SvcParm.u32(root), SvcParm.u64(handle), off, cbp, buf)
    assert (st, cbp.value, off.value) == (status, cb_out, 1)
    assert (tree.share / "sub/file.txt").read_bytes() == b"hello"


#: (append, offset, kind, offset written back, file afterwards); 3 bytes "ABC" each time.  Plain handles write at
#: the offset; append handles write at the end and report max(size, offset + written).
POSITIONS = [
    (False, 0, "ptr", 3, b"ABClo"),
    (False, 7, "ptr", 10, b"hello\0\0ABC"),          # beyond EOF: a hole
    (False, 0, "pages", 3, b"ABClo"),
    (True, 0, "ptr", 8, b"helloABC"),                # offset 0 + 3 < size 8
    (True, 100, "ptr", 103, b"helloABC"),            # guess 103 > size: the guess
    (True, 2, "pages", 8, b"helloABC"),
]


@pytest.mark.shfl("WRITE", "CREATE")
@pytest.mark.parametrize("append,offset,kind,offset_out,content", POSITIONS)
def test_write_positions_and_append(guest: Guest, tree: Tree, append: bool, offset: int, kind: str,
                                    offset_out: int, content: bytes) -> None:
    """WRITE at an offset, and through a handle opened with SHFL_CF_ACCESS_APPEND (O_APPEND):
    cb := bytes written, offset := offset + written, or for append handles the file size
    if that is larger (vbsfWriteCalcPostAppendFilePosition).
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfWrite, HostServices/SharedFolders/vbsf.cpp:vbsfWritePages, HostServices/SharedFolders/vbsf.cpp:vbsfWriteCalcPostAppendFilePosition, Runtime/r3/posix/fileio-posix.cpp:RTFileOpenEx
    """
    root = guest.map("sf")
    flags = CF.ACCESS_WRITE | CF.ACT_FAIL_IF_NEW | (CF.ACCESS_APPEND if append else 0)
    handle = guest.open(root, "sub/file.txt", flags)
    st, off, cb = guest.write(root, handle, offset, b"ABC", pages=kind == "pages")
    assert (st, cb, off) == (0, 3, offset_out)
    assert (tree.share / "sub/file.txt").read_bytes() == content


@pytest.mark.shfl("WRITE", "CREATE")
def test_append_flag_is_ignored_with_read_only_access(guest: Guest, tree: Tree) -> None:
    """SHFL_CF_ACCESS_APPEND with read access only: IPRT ignores RTFILE_O_APPEND (O_RDONLY),
    the open succeeds; a WRITE through it fails in pwrite with EBADF: VERR_INVALID_HANDLE.
    VBox: Runtime/r3/posix/fileio-posix.cpp:RTFileOpenEx, HostServices/SharedFolders/vbsf.cpp:vbsfWrite
    """
    root = guest.map("sf")
    handle = guest.open(root, "sub/file.txt", CF.ACCESS_READ | CF.ACCESS_APPEND | CF.ACT_FAIL_IF_NEW)
    assert guest.write(root, handle, 0, b"ABC") == (Status.VERR_INVALID_HANDLE, 0, 0)
    assert guest.read(root, handle, 0, 10) == (0, b"hello", 5)
    assert (tree.share / "sub/file.txt").read_bytes() == b"hello"


@pytest.mark.shfl("WRITE")
@pytest.mark.parametrize("offset", [1 << 63, (1 << 64) - 1])
@pytest.mark.parametrize("append", [False, True])
def test_write_at_negative_offset(guest: Guest, tree: Tree, offset: int, append: bool) -> None:
    """WRITE at an offset that is negative as off_t: pwrite / lseek answer EINVAL:
    VERR_INVALID_PARAMETER, cb 0, offset as sent, nothing written.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfWrite, Runtime/r3/posix/fileio-at-posix.cpp:RTFileWriteAt, Runtime/r3/posix/fileio-posix.cpp:RTFileSeek
    """
    root = guest.map("sf")
    flags = CF.ACCESS_WRITE | CF.ACT_FAIL_IF_NEW | (CF.ACCESS_APPEND if append else 0)
    handle = guest.open(root, "sub/file.txt", flags)
    assert guest.write(root, handle, offset, b"ABC") == (Status.VERR_INVALID_PARAMETER, offset, 0)
    assert (tree.share / "sub/file.txt").read_bytes() == b"hello"
