"""SHFL_FN_SET_UTF8: no parameter checks at all; the client's strings are UTF-8 from now on."""

from __future__ import annotations

import pytest

from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflFn
from tests.service.conftest import Guest

pytestmark = pytest.mark.shfl("SET_UTF8")


@pytest.mark.parametrize("params", [[], [SvcParm.u32(1)], [SvcParm.ptr(3), SvcParm.u64(2), SvcParm.u32(0)]])
def test_any_parameters_switch_to_utf8(svc, params) -> None:
    """Whatever the count and types: VINF_SUCCESS and UTF-8 strings afterwards (a UTF-8
    name now maps).

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    g = Guest(svc, utf8=False)
    assert g.call(ShflFn.SET_UTF8, *params) == 0
    g.utf8 = True
    assert g.map("sf") == 0
