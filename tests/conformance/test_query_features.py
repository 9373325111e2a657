"""SHFL_FN_QUERY_FEATURES: new-style count/type checks; features and last function."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import SHFL_FEATURE_WRITE_UPDATES_OFFSET, SHFL_FN_LAST, ShflFn
from tests.service.conftest import Guest

pytestmark = pytest.mark.shfl("QUERY_FEATURES")


def test_reports_features_and_last_function(guest: Guest) -> None:
    """f64Features := WRITE_UPDATES_OFFSET (bit 0), u32LastFunction := 29.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    feats, last = SvcParm.u64(0xFF), SvcParm.u32(0)
    assert guest.call(ShflFn.QUERY_FEATURES, feats, last) == 0
    assert (feats.value, last.value) == (SHFL_FEATURE_WRITE_UPDATES_OFFSET, SHFL_FN_LAST) == (1, 29)


@pytest.mark.parametrize(("params", "status"), [
    ([SvcParm.u64(0)], Status.VERR_WRONG_PARAMETER_COUNT),
    ([SvcParm.u32(0), SvcParm.u32(0)], Status.VERR_WRONG_PARAMETER_TYPE),
    ([SvcParm.u64(0), SvcParm.u64(0)], Status.VERR_WRONG_PARAMETER_TYPE),
])
def test_svccall_checks(guest: Guest, params, status: int) -> None:
    """Count then types, new style; nothing written.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    assert guest.call(ShflFn.QUERY_FEATURES, *params) == status
    assert all(p.value == 0 for p in params)
