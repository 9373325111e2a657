"""SHFL_FN_FLUSH against VirtualBox 7.0.14: svcCall's checks, vbsfFlush (write-class handle
check), RTFileFlush (fsync; EINVAL is VINF_NOT_SUPPORTED)."""

from __future__ import annotations

import errno

import pytest

from hgcmlab.runtime import faults
from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import ShflFn
from tests.conformance._file import handle_call, handle_situation
from tests.service.conftest import Guest

HANDLE_CHECKS = {
    "root": Status.VERR_INVALID_PARAMETER,
    "nil": Status.VERR_INVALID_HANDLE,
    "never_opened": Status.VERR_INVALID_HANDLE,
    "closed": Status.VERR_INVALID_HANDLE,
    "dir": Status.VERR_INVALID_HANDLE,
    "other_root": Status.VERR_INVALID_HANDLE,
    "other_client": Status.VERR_INVALID_HANDLE,
    "mapping_removed": Status.VERR_ACCESS_DENIED,
    "read_only_share": Status.VERR_WRITE_PROTECT,   # quirk 10: write class
    "file": 0,
}


@pytest.mark.shfl("FLUSH")
@pytest.mark.parametrize("situation", list(HANDLE_CHECKS))
def test_flush_handle_checks(guest: Guest, situation: str) -> None:
    """FLUSH with each kind of handle: ROOT/NIL refused by svcCall, the file-handle lookup,
    the mapping, then write access (a read-only share: VERR_WRITE_PROTECT).
    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfFlush, HostServices/SharedFolders/vbsf.cpp:vbsfCheckHandleAccess
    """
    root, handle = handle_situation(guest, situation)
    assert handle_call(guest, ShflFn.FLUSH, root, handle).status == HANDLE_CHECKS[situation]


#: (fsync errno, status): RTFileFlush's translation of the host answer.
HOST_OUTCOMES = [
    (None, 0),
    (errno.EINVAL, Status.VINF_NOT_SUPPORTED),   # pseudo ttys and other odd files
    (errno.EIO, Status.VERR_DEV_IO_ERROR),
    (errno.ENOSPC, Status.VERR_DISK_FULL),
]


@pytest.mark.shfl("FLUSH")
@pytest.mark.parametrize("err,status", HOST_OUTCOMES)
def test_flush_host_outcomes(guest: Guest, err: int | None, status: int) -> None:
    """FLUSH is one fsync of the handle's fd; EINVAL is the informational VINF_NOT_SUPPORTED,
    other errors their IPRT status.
    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfFlush, Runtime/r3/posix/fileio-posix.cpp:RTFileFlush
    """
    root, handle = handle_situation(guest, "file")
    fault = () if err is None else (faults.Fault("fsync", err),)
    with faults.inject(*fault, record=("fsync",)) as log:
        assert handle_call(guest, ShflFn.FLUSH, root, handle).status == status
    assert log.count("fsync") == 1
