"""SHFL_FN_QUERY_MAPPINGS: svcCall's checks (flags, array size against the count), the
UTF-8 side effect, vbsfMappingsQuery's listing (placeholders listed unless AUTOMOUNT)."""

from __future__ import annotations

import struct

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflFn, ShflMf
from tests.service.conftest import Guest, Tree

pytestmark = pytest.mark.shfl("QUERY_MAPPINGS")


def query(g: Guest, flags: int, capacity: int, bufsize: int | None = None):
    count = SvcParm.u32(capacity)
    arr = SvcParm.ptr(bytes([0xAA]) * (8 * capacity if bufsize is None else bufsize))
    st = g.call(ShflFn.QUERY_MAPPINGS, SvcParm.u32(flags), count, arr)
    entries = [struct.unpack_from("<II", arr.buffer, i * 8) for i in range(len(arr.buffer) // 8)]
    return st, count.value, entries


FILL = (0xAAAAAAAA, 0xAAAAAAAA)


@pytest.mark.parametrize(("flags", "capacity", "bufsize", "result"), [
    (0, 3, None, (0, 2, [(1, 0), (1, 1), FILL])),
    (0, 1, None, (Status.VINF_BUFFER_OVERFLOW, 2, [(1, 0)])),
    (0, 0, 0, (Status.VINF_BUFFER_OVERFLOW, 2, [])),
    (0, 2, 17, (0, 2, [(1, 0), (1, 1)])),                   # 17 // 8 == 2
    (0, 2, 15, (Status.VERR_INVALID_PARAMETER, 2, [FILL])),  # 15 // 8 != 2
    (0x4, 2, None, (Status.VERR_INVALID_PARAMETER, 2, [FILL, FILL])),
    (ShflMf.AUTOMOUNT, 2, None, (0, 0, [FILL, FILL])),
])
def test_listing_and_checks(guest: Guest, flags: int, capacity: int, bufsize, result) -> None:
    """Entries (SHFL_MS_NEW, root) up to the capacity, the total in parameter 1,
    VINF_BUFFER_OVERFLOW when it did not fit; bad flags or array size VERR_INVALID_PARAMETER.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/mappings.cpp:vbsfMappingsQuery
    """
    assert query(guest, flags, capacity, bufsize) == result


def test_placeholders_and_automount(guest: Guest, tree: Tree) -> None:
    """A removed-but-mapped mapping (placeholder) is listed, except with AUTOMOUNT.

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfMappingsQuery
    """
    assert guest.svc.add_mapping("auto", str(tree.share / "sub"), auto_mount=True) == 0
    guest.map("auto")
    assert guest.svc.remove_mapping("auto") == Status.VINF_PERMISSION_DENIED
    assert query(guest, 0, 3)[:2] == (0, 3)
    assert query(guest, ShflMf.AUTOMOUNT, 3)[:2] == (0, 0)


@pytest.mark.parametrize(("flags", "capacity", "bufsize", "utf8_after"), [
    (ShflMf.UTF8, 2, None, True),
    (ShflMf.UTF8, 2, 15, False),                  # the size check comes first
    (ShflMf.UTF8 | 0x4, 2, None, False),
])
def test_utf8_flag_side_effect(svc, flags: int, capacity: int, bufsize, utf8_after: bool) -> None:
    """SHFL_MF_UTF8 switches the client to UTF-8 (only once the parameters passed).

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    g = Guest(svc, utf8=False)
    query(g, flags, capacity, bufsize)
    assert svc.clients[g.client_id].utf8 is utf8_after
