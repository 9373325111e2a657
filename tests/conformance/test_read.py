"""SHFL_FN_READ against VirtualBox 7.0.14: svcCall's checks, vbsfRead / vbsfReadPages,
vbsfCheckHandleAccess, RTFileReadAt / RTFileSgReadAt (one pread / preadv)."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflFn
from tests.conformance._file import CB_SENT, OFFSET_SENT, handle_call, handle_situation
from tests.service.conftest import Guest, Tree

#: situation -> (status, cb written back, bytes read).  cb stays as sent when svcCall's
#: own checks refuse (ROOT, NIL), is 0 after any later failure, else the count read.
HANDLE_CHECKS = {
    "root": (Status.VERR_INVALID_PARAMETER, CB_SENT, b""),
    "nil": (Status.VERR_INVALID_HANDLE, CB_SENT, b""),
    "never_opened": (Status.VERR_INVALID_HANDLE, 0, b""),
    "closed": (Status.VERR_INVALID_HANDLE, 0, b""),
    "dir": (Status.VERR_INVALID_HANDLE, 0, b""),
    "other_root": (Status.VERR_INVALID_HANDLE, 0, b""),
    "other_client": (Status.VERR_INVALID_HANDLE, 0, b""),
    "mapping_removed": (Status.VERR_ACCESS_DENIED, 0, b""),
    "read_only_share": (0, 4, b"-dat"),
    "file": (0, 3, b"llo"),
}


@pytest.mark.shfl("READ")
@pytest.mark.parametrize("pages", [False, True], ids=["ptr", "pages"])
@pytest.mark.parametrize("situation", list(HANDLE_CHECKS))
def test_read_handle_checks(guest: Guest, situation: str, pages: bool) -> None:
    """READ with each kind of handle: svcCall's ROOT/NIL checks, then the file-handle lookup
    (wrong kind, root or client: VERR_INVALID_HANDLE), then the mapping (removed:
    VERR_ACCESS_DENIED); a read-only share still reads.  cb as written back, buffer bytes.
    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfRead, HostServices/SharedFolders/vbsf.cpp:vbsfReadPages, HostServices/SharedFolders/vbsf.cpp:vbsfCheckHandleAccess, HostServices/SharedFolders/shflhandle.cpp:vbsfQueryHandle
    """
    status, cb, data = HANDLE_CHECKS[situation]
    root, handle = handle_situation(guest, situation)
    call = handle_call(guest, ShflFn.READ, root, handle, buffer=b"\xee" * 4, pages=pages)
    assert call.status == status
    assert (call.value(2), call.value(3)) == (OFFSET_SENT, cb)
    assert bytes(call.params[4].buffer) == data + b"\xee" * (4 - len(data))


#: (cb, buffer size, buffer kind, status, cb written back): svcCall's buffer check.
BUFFER_CHECKS = [
    (5, 4, "ptr", Status.VERR_INVALID_HANDLE, 5),     # quirk 7: the pointer case says "handle"
    (5, 4, "pages", Status.VERR_OUT_OF_RANGE, 5),
    (4, 4, "ptr", 0, 3),
    (0, 0, "ptr", 0, 0),                              # zero bytes always succeed
    (0, 0, "pages", 0, 0),
]


@pytest.mark.shfl("READ")
@pytest.mark.parametrize("cb,size,kind,status,cb_out", BUFFER_CHECKS)
def test_read_count_against_buffer(guest: Guest, cb: int, size: int, kind: str, status: int,
                                   cb_out: int) -> None:
    """READ's cb checked against the buffer before the handle is looked at; cb 0 succeeds.
    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfRead
    """
    root, handle = handle_situation(guest, "file")
    buf = SvcParm.pages(size) if kind == "pages" else SvcParm.ptr(size)
    cbp = SvcParm.u32(cb)
    st = guest.call(ShflFn.READ, SvcParm.u32(root), SvcParm.u64(handle), SvcParm.u64(2), cbp, buf)
    assert (st, cbp.value) == (status, cb_out)


#: (offset, cb, status, bytes): host outcomes of the one pread on "hello".
OFFSETS = [
    (0, 5, 0, b"hello"),
    (0, 10, 0, b"hello"),            # short read: the count read, no loop
    (5, 4, 0, b""),                  # at EOF
    (1 << 40, 4, 0, b""),            # far beyond EOF
    ((1 << 63), 4, Status.VERR_INVALID_PARAMETER, b""),   # negative off_t: EINVAL
    ((1 << 64) - 1, 4, Status.VERR_INVALID_PARAMETER, b""),
]


@pytest.mark.shfl("READ")
@pytest.mark.parametrize("pages", [False, True], ids=["ptr", "pages"])
@pytest.mark.parametrize("offset,cb,status,data", OFFSETS)
def test_read_offsets(guest: Guest, offset: int, cb: int, status: int, data: bytes, pages: bool) -> None:
    """READ at offsets before, at and past EOF and "negative" ones: cb := what pread returned.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRead, Runtime/r3/posix/fileio-at-posix.cpp:RTFileReadAt, Runtime/r3/posix/fileio-sg-at-posix.cpp:RTFileSgReadAt
    """
    root, handle = handle_situation(guest, "file")
    buf = SvcParm.pages(cb) if pages else SvcParm.ptr(cb)
    cbp, off = SvcParm.u32(cb), SvcParm.u64(offset)
    st = guest.call(ShflFn.READ, SvcParm.u32(root), SvcParm.u64(handle), off, cbp, buf)
    assert (st, cbp.value, off.value) == (status, len(data), offset)
    assert bytes(buf.buffer[:len(data)]) == data


@pytest.mark.shfl("READ", "CREATE")
def test_read_through_a_write_only_handle(guest: Guest, tree: Tree) -> None:
    """READ through a handle opened write-only: pread answers EBADF, VERR_INVALID_HANDLE, cb 0.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRead, Runtime/common/err/RTErrConvertFromErrno.cpp:RTErrConvertFromErrno
    """
    root = guest.map("sf")
    handle = guest.open(root, "sub/file.txt", ShflCf.ACCESS_WRITE | ShflCf.ACT_FAIL_IF_NEW)
    st, data, cb = guest.read(root, handle, 0, 4)
    assert (st, data, cb) == (Status.VERR_INVALID_HANDLE, b"", 0)
    assert (tree.share / "sub/file.txt").read_bytes() == b"hello"
