"""SHFL_FN_CLOSE against VirtualBox 7.0.14: svcCall's checks, vbsfClose (handle type and
root, no mapping check), vbsfCloseFile / vbsfCloseDir, vbsfFreeFileHandle."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import ShflFn
from tests.conformance._file import handle_call, handle_situation
from tests.service.conftest import Guest

#: situation -> (status, whether the handle is gone afterwards)
HANDLE_CHECKS = {
    "root": (Status.VERR_INVALID_PARAMETER, False),
    "nil": (Status.VERR_INVALID_HANDLE, False),
    "never_opened": (Status.VERR_INVALID_HANDLE, False),
    "closed": (Status.VERR_INVALID_HANDLE, True),
    "dir": (0, True),
    "other_root": (Status.VERR_INVALID_HANDLE, False),
    "other_client": (Status.VERR_INVALID_HANDLE, False),
    "mapping_removed": (0, True),          # no mapping check: closing always works
    "read_only_share": (0, True),
    "file": (0, True),
}


@pytest.mark.shfl("CLOSE")
@pytest.mark.parametrize("situation", list(HANDLE_CHECKS))
def test_close_handle_checks(guest: Guest, situation: str) -> None:
    """CLOSE with each kind of handle: ROOT/NIL refused by svcCall, then the handle must be
    this client's, of either type, opened under this root (else VERR_INVALID_HANDLE); the
    mapping is not checked.  A closed handle answers VERR_INVALID_HANDLE afterwards; one
    CLOSE refused stays usable under its own root.
    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfClose, HostServices/SharedFolders/shflhandle.cpp:vbsfQueryHandleType
    """
    status, gone = HANDLE_CHECKS[situation]
    root, handle = handle_situation(guest, situation)
    assert handle_call(guest, ShflFn.CLOSE, root, handle).status == status
    if situation == "other_root":
        root = guest.map("sf")
    if situation not in ("root", "nil", "never_opened", "other_client"):
        again = handle_call(guest, ShflFn.CLOSE, root, handle).status
        assert again == (Status.VERR_INVALID_HANDLE if gone else 0)


@pytest.mark.shfl("CLOSE", "CREATE")
def test_close_frees_the_slot_for_next_fit_allocation(guest: Guest) -> None:
    """Handles are allocated next-fit: after closing handle 1 the next open gets 3, not 1;
    allocation wraps to the lowest free slot only at the end of the table.
    VBox: HostServices/SharedFolders/shflhandle.cpp:vbsfAllocHandle, HostServices/SharedFolders/shflhandle.cpp:vbsfFreeHandle
    """
    root = guest.map("sf")
    first = guest.open(root, "sub/file.txt")
    second = guest.open(root, "sub/file.txt")
    assert (first, second) == (1, 2)
    assert guest.close(root, first) == 0
    assert guest.open(root, "sub/file.txt") == 3
