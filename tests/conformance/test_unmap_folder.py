"""SHFL_FN_UNMAP_FOLDER: svcCall's count/type checks, vbsfUnmapFolder's root and per-client
count checks; placeholders go away with their last map."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflFn
from tests.service.conftest import Guest

pytestmark = pytest.mark.shfl("UNMAP_FOLDER")


def unmap(g: Guest, root: int) -> int:
    return g.call(ShflFn.UNMAP_FOLDER, SvcParm.u32(root))


@pytest.mark.parametrize(("root", "status"), [
    (0, Status.VINF_SUCCESS),
    (1, Status.VERR_INVALID_HANDLE),     # exists, not mapped by this client
    (40, Status.VERR_FILE_NOT_FOUND),    # no mapping at this root id
    (0xFFFFFFFF, Status.VERR_FILE_NOT_FOUND),
])
def test_root_checks(guest: Guest, root: int, status: int) -> None:
    """Unknown root id: VERR_FILE_NOT_FOUND; known but not mapped by the caller:
    VERR_INVALID_HANDLE; mapped: the counts drop by one.

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfUnmapFolder
    """
    assert guest.map("sf") == 0
    assert unmap(guest, root) == status
    expected = 0 if status == 0 else 1
    assert guest.svc.mappings[0].use_count == expected
    assert guest.svc.clients[guest.client_id].map_counts.get(0, 0) == expected


def test_handles_survive_and_placeholder_goes(guest: Guest) -> None:
    """Unmapping keeps open handles; the last unmap of a removed (placeholder) mapping frees
    its root id.

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfUnmapFolder, HostServices/SharedFolders/mappings.cpp:vbsfMappingsRemove
    """
    root = guest.map("sf")
    h = guest.open(root, "sub/file.txt")
    assert guest.svc.remove_mapping("sf") == Status.VINF_PERMISSION_DENIED
    assert unmap(guest, root) == 0
    assert root not in guest.svc.mappings
    assert guest.close(root, h) == 0


@pytest.mark.parametrize("params", [[], [SvcParm.u64(0)], [SvcParm.u32(0), SvcParm.u32(0)]])
def test_svccall_checks(guest: Guest, params) -> None:
    """Wrong count or type: VERR_INVALID_PARAMETER, nothing unmapped.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    guest.map("sf")
    assert guest.call(ShflFn.UNMAP_FOLDER, *params) == Status.VERR_INVALID_PARAMETER
    assert guest.svc.mappings[0].use_count == 1
