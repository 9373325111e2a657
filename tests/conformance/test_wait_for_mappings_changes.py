"""SHFL_FN_WAIT_FOR_MAPPINGS_CHANGES: svcCall's checks, vbsfMappingsWaitForChanges:
cancel-next flag, stale version, pending wait completed with VERR_CANCELLED on a change."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import ASYNC, SvcParm
from hgcmlab.services.sharedfolders.abi import ShflFn
from tests.service.conftest import Guest, Tree

pytestmark = pytest.mark.shfl("WAIT_FOR_MAPPINGS_CHANGES")


def test_stale_version_returns_at_once(guest: Guest) -> None:
    """A version other than the current one: VINF_SUCCESS at once, parameter := current.

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfMappingsWaitForChanges
    """
    ver = SvcParm.u32(12345)
    assert guest.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, ver) == 0
    assert ver.value == guest.svc.table.version == 2


def test_current_version_pends_until_a_change(guest: Guest, tree: Tree) -> None:
    """The current version: the call pends; adding a mapping completes it with
    VERR_CANCELLED (quirk 1) and the new version.

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfMappingsWaitForChanges, HostServices/SharedFolders/mappings.cpp:vbsfMappingsWakeupAllWaiters
    """
    ver = SvcParm.u32(guest.svc.table.version)
    assert guest.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, ver) is ASYNC
    assert guest.completions == []
    assert guest.svc.add_mapping("new", str(tree.share / "sub")) == 0
    assert [st for _, st in guest.completions] == [Status.VERR_CANCELLED]
    assert ver.value == 3


def test_cancel_flag_wins_over_a_stale_version(guest: Guest) -> None:
    """After CANCEL_MAPPINGS_CHANGES_WAITS the next wait returns VERR_CANCELLED (even with a
    stale version), the parameter := current, and the flag is cleared.

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfMappingsWaitForChanges
    """
    assert guest.call(ShflFn.CANCEL_MAPPINGS_CHANGES_WAITS) == 0
    ver = SvcParm.u32(999)
    assert guest.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, ver) == Status.VERR_CANCELLED
    assert ver.value == 2
    assert guest.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, SvcParm.u32(2)) is ASYNC


@pytest.mark.parametrize("params", [[], [SvcParm.u64(2)], [SvcParm.u32(2), SvcParm.u32(0)]])
def test_svccall_checks(guest: Guest, params) -> None:
    """Wrong count or type: VERR_INVALID_PARAMETER, no wait registered.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    assert guest.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, *params) == Status.VERR_INVALID_PARAMETER
    assert guest.svc.clients[guest.client_id].waits == []
