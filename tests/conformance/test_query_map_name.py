"""SHFL_FN_QUERY_MAP_NAME: svcCall's checks (valid-out string) and vbsfMappingsQueryName
(any root id with a mapping, mapped by the caller or not; UTF-8 or UTF-16 copy)."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders import strings
from hgcmlab.services.sharedfolders.abi import ShflFn
from tests.service.conftest import Guest

pytestmark = pytest.mark.shfl("QUERY_MAP_NAME")


@pytest.mark.parametrize(("utf8", "root", "size", "status", "header", "text"), [
    # size: the whole buffer (4-byte header + u16Size).
    (True, 1, 16, 0, (12, 2), b"ro\0"),
    (True, 1, 6, Status.VERR_BUFFER_OVERFLOW, (2, 2), b"\0\0"),
    (True, 9, 16, Status.VERR_INVALID_PARAMETER, (12, 0), b"\0\0\0"),
    (False, 0, 12, 0, (8, 4), "sf\0".encode("utf-16-le")),
    (False, 0, 9, Status.VERR_INVALID_PARAMETER, (5, 0), b"\0" * 5),  # u16Size 5 < 6
])
def test_copies_the_name(svc, utf8: bool, root: int, size: int, status: int, header, text: bytes) -> None:
    """The name in the caller's encoding; a root id without a mapping VERR_INVALID_PARAMETER;
    no MAP_FOLDER needed.

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfMappingsQueryName, HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    g = Guest(svc, utf8=utf8)
    buf = SvcParm.ptr(strings.empty_buffer(size))
    assert g.call(ShflFn.QUERY_MAP_NAME, SvcParm.u32(root), buf) == status
    assert strings.header(buf.buffer) == header
    assert bytes(buf.buffer[4:4 + len(text)]) == text


@pytest.mark.parametrize("params", [
    lambda: [SvcParm.u32(0)],
    lambda: [SvcParm.u64(0), SvcParm.ptr(strings.empty_buffer(8))],
    lambda: [SvcParm.u32(0), SvcParm.ptr(4)],            # not a valid-out string
])
def test_svccall_checks(guest: Guest, params) -> None:
    """Count, types, valid-out string: VERR_INVALID_PARAMETER.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    assert guest.call(ShflFn.QUERY_MAP_NAME, *params()) == Status.VERR_INVALID_PARAMETER
