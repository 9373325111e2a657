"""svcCall's dispatch: which status a wrong parameter count gets per function (old-style
cases answer VERR_INVALID_PARAMETER, new-style ASSERT_GUEST cases
VERR_WRONG_PARAMETER_COUNT, SET_UTF8/SET_SYMLINKS check nothing), unknown functions, and
the first-failing-check rule across a parameter's type and value checks."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import HgcmCall, SvcParm
from hgcmlab.services.sharedfolders.abi import ShflFn
from tests.service.conftest import Guest

S = Status
OLD, NEW = S.VERR_INVALID_PARAMETER, S.VERR_WRONG_PARAMETER_COUNT

# Read from svcCall case by case (VirtualBox 7.0.14), not from our function table.
COUNT_STATUS = {
    ShflFn.QUERY_MAPPINGS: OLD, ShflFn.QUERY_MAP_NAME: OLD, ShflFn.CREATE: OLD, ShflFn.CLOSE: OLD,
    ShflFn.READ: NEW, ShflFn.WRITE: NEW, ShflFn.LOCK: OLD, ShflFn.LIST: OLD, ShflFn.INFORMATION: OLD,
    ShflFn.REMOVE: NEW, ShflFn.MAP_FOLDER_OLD: OLD, ShflFn.UNMAP_FOLDER: OLD, ShflFn.RENAME: OLD,
    ShflFn.FLUSH: OLD, ShflFn.SET_UTF8: S.VINF_SUCCESS, ShflFn.MAP_FOLDER: OLD, ShflFn.READLINK: OLD,
    ShflFn.SYMLINK: OLD, ShflFn.SET_SYMLINKS: S.VINF_SUCCESS, ShflFn.QUERY_MAP_INFO: OLD,
    ShflFn.WAIT_FOR_MAPPINGS_CHANGES: OLD, ShflFn.CANCEL_MAPPINGS_CHANGES_WAITS: OLD,
    ShflFn.SET_FILE_SIZE: NEW, ShflFn.QUERY_FEATURES: NEW, ShflFn.COPY_FILE: NEW,
    ShflFn.COPY_FILE_PART: NEW, ShflFn.CLOSE_AND_REMOVE: NEW, ShflFn.SET_ERROR_STYLE: NEW,
}


@pytest.mark.shfl(*(fn.name for fn in COUNT_STATUS))
@pytest.mark.parametrize("fn", list(COUNT_STATUS), ids=lambda fn: fn.name)
def test_wrong_parameter_count(guest: Guest, fn: ShflFn) -> None:
    """Nine parameters (more than any function takes): each function's count status.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    assert guest.call(fn, *[SvcParm.u32(0)] * 9) == COUNT_STATUS[fn]


@pytest.mark.shfl("QUERY_FEATURES")
@pytest.mark.parametrize("fn", [0, 10, 30, 31, 0xFFFFFFFF])
def test_unknown_function_numbers(guest: Guest, fn: int) -> None:
    """Function numbers without a case (0, 10, above QUERY_FEATURES' last function 29):
    VERR_NOT_IMPLEMENTED whatever the parameters.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    assert guest.call(fn, SvcParm.ptr(3)) == S.VERR_NOT_IMPLEMENTED


@pytest.mark.shfl("REMOVE", "COPY_FILE", "CLOSE_AND_REMOVE")
@pytest.mark.parametrize(("fn", "params", "status"), [
    # A bad string parameter is reported before a later parameter's wrong type.
    (ShflFn.REMOVE, lambda g: [SvcParm.u32(0), SvcParm.ptr(3), SvcParm.u64(0)], S.VERR_INVALID_PARAMETER),
    (ShflFn.CLOSE_AND_REMOVE, lambda g: [SvcParm.u32(0), SvcParm.ptr(3), SvcParm.u64(0), SvcParm.u64(0)],
     S.VERR_INVALID_PARAMETER),
    (ShflFn.COPY_FILE, lambda g: [SvcParm.u32(0), SvcParm.ptr(3), SvcParm.u64(0), SvcParm.u32(0), SvcParm.u32(0)],
     S.VERR_INVALID_PARAMETER),
    # A value check right after its type check comes before a later parameter's type.
    (ShflFn.REMOVE, lambda g: [SvcParm.u32(0), g.s("x"), SvcParm.u32(0x10)], S.VERR_INVALID_FLAGS),
    (ShflFn.CLOSE_AND_REMOVE, lambda g: [SvcParm.u32(0), g.s("x"), SvcParm.u32(0x10), SvcParm.ptr(1)],
     S.VERR_INVALID_FLAGS),
])
def test_string_and_value_checks_are_interleaved(guest: Guest, fn: ShflFn, params, status: int) -> None:
    """New-style cases check each string or value right after that parameter's type.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    guest.map("sf")
    assert guest.call(fn, *params(guest)) == status


@pytest.mark.shfl(*(fn.name for fn in COUNT_STATUS))
def test_unknown_client(svc) -> None:
    """A call from a client id the service never connected: VERR_INVALID_CLIENT_ID (the
    HGCM layer's answer; svcCall is never reached).

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    call = HgcmCall(4242, int(ShflFn.QUERY_FEATURES), [SvcParm.u64(0), SvcParm.u32(0)])
    assert svc.call(call) == S.VERR_INVALID_CLIENT_ID


@pytest.mark.shfl("SYMLINK")
@pytest.mark.parametrize(("utf8", "params", "status"), [
    (False, lambda g: [SvcParm.u32(0), SvcParm.ptr(b"\x02\x00\x03\x00"), g.s("t"), SvcParm.ptr(92)],
     S.VERR_INVALID_PARAMETER),
    (False, lambda g: [SvcParm.u32(0), g.s("l"), g.s("t"), SvcParm.ptr(91)], S.VERR_INVALID_PARAMETER),
    (False, lambda g: [SvcParm.u32(0), g.s("l"), g.s("t"), SvcParm.ptr(92)], S.VERR_NOT_IMPLEMENTED),
    (True, lambda g: [SvcParm.u32(0), g.s("l"), g.s("t"), SvcParm.ptr(93)], S.VERR_INVALID_PARAMETER),
])
def test_symlink_checks_strings_before_refusing_utf16(svc, utf8: bool, params, status: int) -> None:
    """SYMLINK: svcCall validates both strings in the client's encoding and the info size
    before vbsfSymlink refuses a UTF-16 client with VERR_NOT_IMPLEMENTED.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfSymlink
    """
    g = Guest(svc, utf8=utf8)
    g.map("sf")
    assert g.call(ShflFn.SYMLINK, *params(g)) == status
