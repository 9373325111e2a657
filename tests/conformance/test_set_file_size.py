"""SHFL_FN_SET_FILE_SIZE against VirtualBox 7.0.14: svcCall (no ROOT/NIL pre-check),
vbsfSetFileSize (file-handle lookup, write-class check), RTFileSetSize (ftruncate)."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflFn
from tests.conformance._file import handle_call, handle_situation
from tests.service.conftest import Guest, Tree

HANDLE_CHECKS = {
    "root": Status.VERR_INVALID_HANDLE,     # no svcCall pre-check: slot 0 is never valid
    "nil": Status.VERR_INVALID_HANDLE,
    "never_opened": Status.VERR_INVALID_HANDLE,
    "closed": Status.VERR_INVALID_HANDLE,
    "dir": Status.VERR_INVALID_HANDLE,
    "other_root": Status.VERR_INVALID_HANDLE,
    "other_client": Status.VERR_INVALID_HANDLE,
    "mapping_removed": Status.VERR_ACCESS_DENIED,
    "read_only_share": Status.VERR_WRITE_PROTECT,
    "file": 0,
}


@pytest.mark.shfl("SET_FILE_SIZE")
@pytest.mark.parametrize("situation", list(HANDLE_CHECKS))
def test_set_file_size_handle_checks(guest: Guest, tree: Tree, situation: str) -> None:
    """SET_FILE_SIZE with each kind of handle: the file-handle lookup (ROOT too gives
    VERR_INVALID_HANDLE), the mapping, write access; the file is only changed on success.
    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfSetFileSize, HostServices/SharedFolders/vbsf.cpp:vbsfCheckHandleAccess
    """
    root, handle = handle_situation(guest, situation)
    call = handle_call(guest, ShflFn.SET_FILE_SIZE, root, handle, size=2)
    assert call.status == HANDLE_CHECKS[situation]
    assert call.value(2) == 2
    assert (tree.share / "sub/file.txt").read_bytes() == (b"he" if situation == "file" else b"hello")
    assert (tree.ro / "file.txt").read_bytes() == b"ro-data"


#: (access, size, status, file afterwards)
SIZES = [
    (ShflCf.ACCESS_READWRITE, 0, 0, b""),
    (ShflCf.ACCESS_READWRITE, 8, 0, b"hello\0\0\0"),
    (ShflCf.ACCESS_WRITE, 3, 0, b"hel"),
    (ShflCf.ACCESS_READWRITE, 1 << 63, Status.VERR_INVALID_PARAMETER, b"hello"),  # negative off_t
    (ShflCf.ACCESS_READ, 3, Status.VERR_INVALID_PARAMETER, b"hello"),  # ftruncate: EINVAL
]


@pytest.mark.shfl("SET_FILE_SIZE", "CREATE")
@pytest.mark.parametrize("access,size,status,content", SIZES)
def test_set_file_size_host_outcomes(guest: Guest, tree: Tree, access: int, size: int, status: int,
                                     content: bytes) -> None:
    """SET_FILE_SIZE is one ftruncate of the handle's fd: shrink, extend with zeroes; a
    negative size or a handle opened without write access is EINVAL (VERR_INVALID_PARAMETER).
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSetFileSize, Runtime/r3/posix/fileio-posix.cpp:RTFileSetSize
    """
    root = guest.map("sf")
    handle = guest.open(root, "sub/file.txt", access | ShflCf.ACT_FAIL_IF_NEW)
    assert handle_call(guest, ShflFn.SET_FILE_SIZE, root, handle, size=size).status == status
    assert (tree.share / "sub/file.txt").read_bytes() == content
