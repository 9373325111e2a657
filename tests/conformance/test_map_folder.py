"""SHFL_FN_MAP_FOLDER: svcCall's checks (old style, the UTF-16 length fudge) and
vbsfMapFolder's order: delimiter validity, the client's delimiter stored before the lookup,
lookup, per-client count, case-sensitivity compatibility."""

from __future__ import annotations

import struct

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders import strings
from hgcmlab.services.sharedfolders.abi import ShflFn
from tests.service.conftest import Guest

S = Status
SLASH, BACKSLASH = 0x2F, 0x5C

pytestmark = pytest.mark.shfl("MAP_FOLDER")


def map_folder(g: Guest, name: str, delimiter: int, case: int = 1) -> tuple[int, int]:
    root = SvcParm.u32(0x77)
    st = g.call(ShflFn.MAP_FOLDER, g.s(name), root, SvcParm.u32(delimiter), SvcParm.u32(case))
    return st, root.value


@pytest.mark.parametrize(("name", "delimiter", "status", "stored"), [
    ("sf", SLASH, S.VINF_SUCCESS, SLASH),
    ("SF", BACKSLASH, S.VINF_SUCCESS, BACKSLASH),          # names match case-insensitively
    ("nope", SLASH, S.VERR_FILE_NOT_FOUND, SLASH),         # stored although the lookup fails
    ("nope", BACKSLASH, S.VERR_FILE_NOT_FOUND, BACKSLASH),
    ("sf", ord(":"), S.VERR_INVALID_PARAMETER, 0),         # invalid: nothing stored
    ("sf", 0x1002F, S.VINF_SUCCESS, SLASH),                # RTUTF16 cast: the low 16 bits
])
def test_first_map_and_the_client_delimiter(guest: Guest, name: str, delimiter: int, status: int,
                                           stored: int) -> None:
    """A fresh client's first MAP_FOLDER: a valid delimiter is stored before the name
    lookup, so it sticks even when the lookup fails; an invalid one is refused first.

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfMapFolder, HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    st, root = map_folder(guest, name, delimiter)
    assert st == status
    assert root == (0 if status == 0 else 0x77)
    assert guest.svc.clients[guest.client_id].delimiter == stored


def test_failed_lookup_fixes_the_delimiter_for_later_maps(guest: Guest) -> None:
    """After a failed map with '\\', a '/' map is refused and a '\\' map works; paths are then
    converted with '\\' (a '/' inside a component is VERR_INVALID_NAME).

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfMapFolder, HostServices/SharedFolders/vbsfpath.cpp:vbsfPathGuestToHost
    """
    assert map_folder(guest, "nope", BACKSLASH)[0] == S.VERR_FILE_NOT_FOUND
    assert map_folder(guest, "sf", SLASH)[0] == S.VERR_INVALID_PARAMETER
    st, root = map_folder(guest, "sf", BACKSLASH)
    assert (st, root) == (0, 0)
    assert guest.create(root, "sub/file.txt", 0x1100)[0] == S.VERR_INVALID_NAME
    st, cp = guest.create(root, "sub\\file.txt", 0x1100)  # LOOKUP
    assert st == 0 and cp.Info.cbObject == 5


def test_count_and_case_sensitivity(guest: Guest) -> None:
    """Mapping again is counted; a different case sensitivity while mapped is
    VERR_INCOMPATIBLE_CONFIG (the delimiter check comes first).

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfMapFolder
    """
    assert map_folder(guest, "sf", SLASH, 1) == (0, 0)
    assert map_folder(guest, "sf", SLASH, 1) == (0, 0)
    assert guest.svc.clients[guest.client_id].map_counts[0] == 2
    assert map_folder(guest, "sf", SLASH, 0)[0] == S.VERR_INCOMPATIBLE_CONFIG
    assert map_folder(guest, "sf", BACKSLASH, 0)[0] == S.VERR_INVALID_PARAMETER
    assert guest.svc.mappings[0].use_count == 2


@pytest.mark.parametrize(("params", "status"), [
    (lambda g: [g.s("sf"), SvcParm.u32(0), SvcParm.u32(SLASH)], S.VERR_INVALID_PARAMETER),
    (lambda g: [g.s("sf"), SvcParm.u64(0), SvcParm.u32(SLASH), SvcParm.u32(1)], S.VERR_INVALID_PARAMETER),
    (lambda g: [SvcParm.ptr(3), SvcParm.u32(0), SvcParm.u32(SLASH), SvcParm.u32(1)], S.VERR_INVALID_PARAMETER),
    (lambda g: [g.s("sf"), SvcParm.u32(0), SvcParm.u32(SLASH), SvcParm.u64(1)], S.VERR_INVALID_PARAMETER),
])
def test_svccall_checks(guest: Guest, params, status: int) -> None:
    """Count, types and the name string: VERR_INVALID_PARAMETER (old style); no client
    state changes.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    assert guest.call(ShflFn.MAP_FOLDER, *params(guest)) == status
    assert guest.svc.clients[guest.client_id].delimiter == 0


def test_utf16_length_fudge(svc) -> None:
    """A UTF-16 name whose length counted the terminator is accepted after decrementing
    u16Length in the guest's buffer; a UTF-8 client gets no fudge.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    g = Guest(svc, utf8=False)
    raw = bytearray(strings.build("sf", utf8=False, size=8))
    struct.pack_into("<H", raw, 2, 6)
    name, root = SvcParm.ptr(raw), SvcParm.u32(7)
    assert g.call(ShflFn.MAP_FOLDER, name, root, SvcParm.u32(SLASH), SvcParm.u32(1)) == 0
    assert root.value == 0 and strings.header(name.buffer) == (8, 4)
    g8 = Guest(svc)
    raw8 = bytearray(strings.build("sf", utf8=True, size=4))
    struct.pack_into("<H", raw8, 2, 3)
    assert g8.call(ShflFn.MAP_FOLDER, SvcParm.ptr(raw8), SvcParm.u32(0), SvcParm.u32(SLASH),
                   SvcParm.u32(1)) == S.VERR_INVALID_PARAMETER


def test_per_client_map_count_limit(guest: Guest) -> None:
    """A client may map one root 32768 times (the count must be below _32K before each
    map); the next MAP_FOLDER is VERR_TOO_MANY_OPENS and changes no count.

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfMapFolder
    """
    for _ in range(32768):
        assert map_folder(guest, "sf", SLASH)[0] == 0
    assert map_folder(guest, "sf", SLASH)[0] == S.VERR_TOO_MANY_OPENS
    assert guest.svc.clients[guest.client_id].map_counts[0] == 32768
    assert guest.svc.mappings[0].use_count == 32768
