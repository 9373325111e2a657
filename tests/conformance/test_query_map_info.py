"""SHFL_FN_QUERY_MAP_INFO: svcCall's checks (all VERR_INVALID_PARAMETER) and
vbsfMappingsQueryInfo: version and flags always written, then name and mount point."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders import strings
from hgcmlab.services.sharedfolders.abi import ShflFn, ShflMif
from tests.service.conftest import Guest, Tree

pytestmark = pytest.mark.shfl("QUERY_MAP_INFO")


def query(g: Guest, root: int, name_size: int = 16, mp_size: int = 16, qflags: int = 0):
    name, mp = SvcParm.ptr(strings.empty_buffer(name_size)), SvcParm.ptr(strings.empty_buffer(mp_size))
    flags, ver = SvcParm.u64(qflags), SvcParm.u32(0x99)
    st = g.call(ShflFn.QUERY_MAP_INFO, SvcParm.u32(root), name, mp, flags, ver)
    return st, bytes(name.buffer), bytes(mp.buffer), flags.value, ver.value


def test_fields_utf8_and_utf16(svc, tree: Tree) -> None:
    """Flags (the ICASE bits set for case-SENSITIVE, quirk 3), root id version, name and
    auto-mount point in the caller's encoding; no MAP_FOLDER needed.

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfMappingsQueryInfo
    """
    assert svc.add_mapping("am", str(tree.share / "sub"), auto_mount=True, auto_mount_point="/mnt/x",
                           writable=False, create_symlinks=True) == 0
    g8 = Guest(svc)
    st, name, mp, flags, ver = query(g8, 2)
    assert st == 0 and ver == 1
    assert flags == ShflMif.AUTO_MOUNT | ShflMif.HOST_ICASE | ShflMif.SYMLINK_CREATION
    assert name[:7] == bytes([12, 0, 2, 0]) + b"am\0"
    assert mp[:11] == bytes([12, 0, 6, 0]) + b"/mnt/x\0"
    g16 = Guest(svc, utf8=False)
    st, name, mp, flags, ver = query(g16, 0)
    assert st == 0 and flags == ShflMif.WRITABLE | ShflMif.HOST_ICASE and ver == 1
    assert name[:10] == bytes([12, 0, 4, 0]) + "sf\0".encode("utf-16-le")
    assert mp[:6] == bytes([12, 0, 0, 0, 0, 0])


def test_overflow_still_writes_flags_and_version(guest: Guest) -> None:
    """A name buffer too small: VERR_BUFFER_OVERFLOW with u16Length = the needed length,
    flags and version written before the copies.

    VBox: HostServices/SharedFolders/mappings.cpp:vbsfMappingsQueryInfo, include/VBox/shflsvc.h:ShflStringCopyUtf16BufAsUtf8
    """
    st, name, _mp, flags, ver = query(guest, 0, name_size=6)
    assert st == Status.VERR_BUFFER_OVERFLOW
    assert name[:4] == bytes([2, 0, 2, 0])
    assert flags == ShflMif.WRITABLE | ShflMif.HOST_ICASE and ver == 1


@pytest.mark.parametrize(("build", "status"), [
    (lambda g: [SvcParm.u32(0)] * 4, Status.VERR_INVALID_PARAMETER),
    (lambda g: [SvcParm.u32(9), SvcParm.ptr(strings.empty_buffer(8)), SvcParm.ptr(strings.empty_buffer(8)),
                SvcParm.u64(0), SvcParm.u32(0)], Status.VERR_INVALID_PARAMETER),  # no mapping at 9
    (lambda g: [SvcParm.u32(0), SvcParm.ptr(3), SvcParm.ptr(strings.empty_buffer(8)),
                SvcParm.u64(0), SvcParm.u32(0)], Status.VERR_INVALID_PARAMETER),
    (lambda g: [SvcParm.u32(0), SvcParm.ptr(strings.empty_buffer(8)), SvcParm.ptr(strings.empty_buffer(8)),
                SvcParm.u64(4), SvcParm.u32(0)], Status.VERR_INVALID_PARAMETER),  # unknown query flag
    (lambda g: [SvcParm.u32(0), SvcParm.ptr(strings.empty_buffer(8)), SvcParm.ptr(strings.empty_buffer(8)),
                SvcParm.u32(0), SvcParm.u32(0)], Status.VERR_INVALID_PARAMETER),
])
def test_checks(guest: Guest, build, status: int) -> None:
    """Every svcCall check and an unknown root id answer VERR_INVALID_PARAMETER.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/mappings.cpp:vbsfMappingsQueryInfo
    """
    assert guest.call(ShflFn.QUERY_MAP_INFO, *build(guest)) == status
