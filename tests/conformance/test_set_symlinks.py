"""SHFL_FN_SET_SYMLINKS: no parameter checks; path lookups report links themselves after it."""

from __future__ import annotations

import pytest

from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflFn
from tests.service.conftest import Guest

pytestmark = pytest.mark.shfl("SET_SYMLINKS")


@pytest.mark.parametrize("params", [[], [SvcParm.u64(7), SvcParm.ptr(1)]])
def test_any_parameters_enable_symlink_semantics(guest: Guest, params) -> None:
    """VINF_SUCCESS for any parameters; a LOOKUP of a link then describes the link (type
    symlink) instead of its target.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfLookupFile
    """
    root = guest.map("sf")
    st, cp = guest.create(root, "link_in", ShflCf.LOOKUP)
    assert st == 0 and cp.Info.Attr.fMode & 0o170000 == 0o040000
    assert guest.call(ShflFn.SET_SYMLINKS, *params) == 0
    st, cp = guest.create(root, "link_in", ShflCf.LOOKUP)
    assert st == 0 and cp.Info.Attr.fMode & 0o170000 == 0o120000
