"""SHFL_FN_CANCEL_MAPPINGS_CHANGES_WAITS: completes this client's waits with VERR_CANCELLED
and sets the cancel-next flag; only the count is checked."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import ASYNC, SvcParm
from hgcmlab.services.sharedfolders.abi import ShflFn
from tests.service.conftest import Guest

pytestmark = pytest.mark.shfl("CANCEL_MAPPINGS_CHANGES_WAITS")


def test_cancels_only_the_callers_waits(svc) -> None:
    """Both of this client's waits complete with VERR_CANCELLED and the current version;
    another client's wait stays pending.

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfMappingsCancelChangesWaits
    """
    a, b = Guest(svc), Guest(svc)
    v = svc.table.version
    pa = [SvcParm.u32(v), SvcParm.u32(v)]
    for p in pa:
        assert a.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, p) is ASYNC
    assert b.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, SvcParm.u32(v)) is ASYNC
    assert a.call(ShflFn.CANCEL_MAPPINGS_CHANGES_WAITS) == 0
    assert [st for _, st in a.completions] == [Status.VERR_CANCELLED] * 2
    assert b.completions == [] and len(svc.clients[b.client_id].waits) == 1
    assert svc.clients[a.client_id].cancel_next_wait


@pytest.mark.parametrize("params", [[SvcParm.u32(0)], [SvcParm.ptr(1), SvcParm.u64(1)]])
def test_any_parameter_is_a_count_error(guest: Guest, params) -> None:
    """Any parameter: VERR_INVALID_PARAMETER and no flag set.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    assert guest.call(ShflFn.CANCEL_MAPPINGS_CHANGES_WAITS, *params) == Status.VERR_INVALID_PARAMETER
    assert not guest.svc.clients[guest.client_id].cancel_next_wait
