"""SHFL_FN_MAP_FOLDER_OLD: MAP_FOLDER without the case flag (case-insensitive) and without
the UTF-16 length fudge."""

from __future__ import annotations

import struct

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders import strings
from hgcmlab.services.sharedfolders.abi import ShflFn
from tests.service.conftest import Guest

pytestmark = pytest.mark.shfl("MAP_FOLDER_OLD")


def test_maps_case_insensitively(guest: Guest) -> None:
    """A valid name: root id in parameter 1, the guest mapping is case-insensitive.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/mappings.cpp:vbsfMapFolder
    """
    root = SvcParm.u32(9)
    assert guest.call(ShflFn.MAP_FOLDER_OLD, guest.s("RO"), root, SvcParm.u32(0x5C)) == 0
    assert root.value == 1 and not guest.svc.mappings[1].guest_case_sensitive
    assert guest.svc.clients[guest.client_id].delimiter == 0x5C


def test_unknown_name_still_stores_the_delimiter(guest: Guest) -> None:
    """VERR_FILE_NOT_FOUND after the client's delimiter was stored.

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfMapFolder
    """
    root = SvcParm.u32(9)
    assert guest.call(ShflFn.MAP_FOLDER_OLD, guest.s("nope"), root, SvcParm.u32(0x5C)) == \
        Status.VERR_FILE_NOT_FOUND
    assert root.value == 9 and guest.svc.clients[guest.client_id].delimiter == 0x5C


@pytest.mark.parametrize("bad", ["count", "type", "fudge"])
def test_svccall_checks(svc, bad: str) -> None:
    """Wrong count, a wrong type, or a UTF-16 length that counted the terminator (no fudge
    here): VERR_INVALID_PARAMETER.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    g = Guest(svc, utf8=False)
    raw = bytearray(strings.build("sf", utf8=False, size=8))
    if bad == "fudge":
        struct.pack_into("<H", raw, 2, 6)
    params = [SvcParm.ptr(raw), SvcParm.u32(0), SvcParm.u32(0x2F)]
    if bad == "count":
        params.append(SvcParm.u32(1))
    if bad == "type":
        params[2] = SvcParm.u64(0x2F)
    assert g.call(ShflFn.MAP_FOLDER_OLD, *params) == Status.VERR_INVALID_PARAMETER
    assert svc.mappings[0].use_count == 0
