"""SHFL_FN_LOCK against VirtualBox 7.0.14: svcCall's checks, vbsfLock / vbsfUnlock (validated,
then no host call on a POSIX host)."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import ShflFn, ShflLock
from tests.conformance._file import handle_call, handle_situation
from tests.service.conftest import Guest, Tree

HANDLE_CHECKS = {
    "root": Status.VERR_INVALID_PARAMETER,
    "nil": Status.VERR_INVALID_HANDLE,
    "never_opened": Status.VERR_INVALID_HANDLE,
    "closed": Status.VERR_INVALID_HANDLE,
    "dir": Status.VERR_INVALID_HANDLE,
    "other_root": Status.VERR_INVALID_HANDLE,
    "other_client": Status.VERR_INVALID_HANDLE,
    "mapping_removed": Status.VERR_ACCESS_DENIED,
    "read_only_share": 0,                  # a read-class check
    "file": 0,
}


@pytest.mark.shfl("LOCK")
@pytest.mark.parametrize("flags", [ShflLock.SHARED, ShflLock.CANCEL, ShflLock.EXCLUSIVE | ShflLock.WAIT])
@pytest.mark.parametrize("situation", list(HANDLE_CHECKS))
def test_lock_handle_checks(guest: Guest, situation: str, flags: int) -> None:
    """LOCK / unlock with each kind of handle: ROOT/NIL refused by svcCall, then the file-handle
    lookup and the mapping check (read class: a read-only share may lock).
    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfLock, HostServices/SharedFolders/vbsf.cpp:vbsfUnlock, HostServices/SharedFolders/vbsf.cpp:vbsfCheckHandleAccess
    """
    root, handle = handle_situation(guest, situation)
    assert handle_call(guest, ShflFn.LOCK, root, handle, lock_flags=flags).status == HANDLE_CHECKS[situation]


#: (flags, status): vbsfLock / vbsfUnlock after the handle check; a POSIX host locks nothing.
FLAGS = [
    (ShflLock.SHARED, 0),
    (ShflLock.EXCLUSIVE, 0),
    (ShflLock.SHARED | ShflLock.WAIT, 0),               # WAIT is dropped by svcCall
    (ShflLock.CANCEL, 0),                               # unlock
    (ShflLock.MODE_MASK, Status.VERR_INVALID_PARAMETER),  # mode 3
    (ShflLock.SHARED | ShflLock.ENTIRE, Status.VERR_INVALID_PARAMETER),
    (ShflLock.CANCEL | ShflLock.ENTIRE, Status.VERR_INVALID_PARAMETER),
    (0xFFFFFFF0 | ShflLock.SHARED, 0),                  # unknown upper bits are ignored
]


@pytest.mark.shfl("LOCK")
@pytest.mark.parametrize("flags,status", FLAGS)
def test_lock_flags(guest: Guest, tree: Tree, flags: int, status: int) -> None:
    """LOCK flags: shared/exclusive/cancel succeed without any host lock (Linux host: the
    RTFileLock call is compiled out), mode 3 or ENTIRE is VERR_INVALID_PARAMETER.
    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfLock, HostServices/SharedFolders/vbsf.cpp:vbsfUnlock
    """
    root, handle = handle_situation(guest, "file")
    assert handle_call(guest, ShflFn.LOCK, root, handle, lock_flags=flags).status == status
    # Nothing is locked on the host: another client can lock and write the same range.
    other = Guest(guest.svc)
    other_root = other.map("sf")
    other_handle = other.open(other_root, "sub/file.txt", 0x3100)
    assert handle_call(other, ShflFn.LOCK, other_root, other_handle, lock_flags=ShflLock.EXCLUSIVE).status == 0
    assert other.write(other_root, other_handle, 0, b"H")[0] == 0
    assert (tree.share / "sub/file.txt").read_bytes() == b"Hello"
