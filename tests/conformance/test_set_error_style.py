"""SHFL_FN_SET_ERROR_STYLE: svcCall checks each parameter's type and then its value (all
VERR_WRONG_PARAMETER_TYPE), then stores the style."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflErrorStyle, ShflFn
from tests.service.conftest import Guest

pytestmark = pytest.mark.shfl("SET_ERROR_STYLE")
W = Status.VERR_WRONG_PARAMETER_TYPE


@pytest.mark.parametrize(("params", "status", "style"), [
    ([SvcParm.u32(1), SvcParm.u32(0)], 0, ShflErrorStyle.WINDOWS),
    ([SvcParm.u32(2), SvcParm.u32(0)], 0, ShflErrorStyle.LINUX),
    ([SvcParm.u32(0), SvcParm.u32(0)], W, ShflErrorStyle.LINUX),
    ([SvcParm.u32(3), SvcParm.u32(0)], W, ShflErrorStyle.LINUX),
    ([SvcParm.u32(1), SvcParm.u32(5)], W, ShflErrorStyle.LINUX),
    ([SvcParm.u64(1), SvcParm.u32(0)], W, ShflErrorStyle.LINUX),
    ([SvcParm.u32(1), SvcParm.u64(0)], W, ShflErrorStyle.LINUX),
    ([SvcParm.u32(1)], Status.VERR_WRONG_PARAMETER_COUNT, ShflErrorStyle.LINUX),
])
def test_values_and_checks(guest: Guest, params, status: int, style: ShflErrorStyle) -> None:
    """Windows (1) and Linux (2) are stored; anything else is refused and changes nothing.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    assert guest.call(ShflFn.SET_ERROR_STYLE, *params) == status
    assert guest.svc.clients[guest.client_id].error_style is style
