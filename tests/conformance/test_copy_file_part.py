"""SHFL_FN_COPY_FILE_PART: svcCall's interleaved type and value checks, vbsfCopyFilePart's
handle checks (source read, destination write), RTFileCopyPart (SF9: offsets as
documented; SEC4: bounded by the source's size at the start)."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflFn
from tests.service.conftest import READ_OPEN, Guest, Tree

S = Status
RW_OPEN = ShflCf.ACCESS_READWRITE | ShflCf.ACT_OPEN_IF_EXISTS | ShflCf.ACT_FAIL_IF_NEW
NEG = 1 << 63

pytestmark = pytest.mark.shfl("COPY_FILE_PART")


def parms(rs, hs, os_, rd, hd, od, cb, fl=0, *, types=None) -> list[SvcParm]:
    values = [rs, hs, os_, rd, hd, od, cb, fl]
    kinds = types or ["u32", "u64", "u64", "u32", "u64", "u64", "u64", "u32"]
    return [getattr(SvcParm, k)(v) for k, v in zip(kinds, values)]


@pytest.fixture
def handles(guest: Guest, tree: Tree):
    (tree.share / "dst.bin").write_bytes(b"0123456789")
    root = guest.map("sf")
    return root, guest.open(root, "sub/file.txt"), guest.open(root, "dst.bin", RW_OPEN)


@pytest.mark.parametrize(("off_src", "off_dst", "cb", "copied", "result"), [
    (0, 0, 5, 5, b"hello56789"),
    (1, 4, 3, 3, b"0123ell789"),       # SF9: source offset reads, destination offset writes
    (2, 8, 100, 3, b"01234567llo"),    # EOF of the source ends the copy: VINF_SUCCESS
    (9, 0, 4, 0, b"0123456789"),
    (0, 0, 0, 0, b"0123456789"),
])
def test_copies_between_handles(guest: Guest, tree: Tree, handles, off_src: int, off_dst: int, cb: int,
                                copied: int, result: bytes) -> None:
    """Bytes copied at the given offsets; parameter 6 := the count copied.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfCopyFilePart, Runtime/r3/linux/RTFileCopyPartEx-linux.cpp:RTFileCopyPartEx
    """
    root, src, dst = handles
    p = parms(root, src, off_src, root, dst, off_dst, cb)
    assert guest.call(ShflFn.COPY_FILE_PART, *p) == 0
    assert p[6].value == copied
    assert (tree.share / "dst.bin").read_bytes() == result


@pytest.mark.parametrize(("case", "status"), [
    ("dst_read_only_handle", S.VERR_INVALID_HANDLE),  # copy_file_range to an O_RDONLY fd: EBADF
    ("src_dir", S.VERR_INVALID_HANDLE),
    ("src_other_root", S.VERR_INVALID_HANDLE),
    ("dst_unknown", S.VERR_INVALID_HANDLE),
    ("dst_on_read_only_share", S.VERR_WRITE_PROTECT),
])
def test_handle_checks(guest: Guest, tree: Tree, handles, case: str, status: int) -> None:
    """Source must be a file handle of its root (read check), destination a file handle of
    a writable root (write check); a destination handle opened read-only passes the checks
    and the host refuses the write (EBADF); cb := 0 in every case.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfCopyFilePart, HostServices/SharedFolders/vbsf.cpp:vbsfCheckHandleAccess, Runtime/r3/linux/RTFileCopyPartEx-linux.cpp:RTFileCopyPartEx
    """
    root, src, dst = handles
    ro = guest.map("ro")
    rs, hs, rd, hd = root, src, root, dst
    if case == "dst_read_only_handle":
        hd = guest.open(root, "dst.bin", READ_OPEN)
    elif case == "src_dir":
        hs = guest.open(root, "sub", ShflCf.DIRECTORY | READ_OPEN)
    elif case == "src_other_root":
        rs = ro
    elif case == "dst_unknown":
        hd = 0x777
    elif case == "dst_on_read_only_share":
        rd, hd = ro, guest.open(ro, "file.txt")
    p = parms(rs, hs, 0, rd, hd, 0, 5)
    assert guest.call(ShflFn.COPY_FILE_PART, *p) == status
    assert p[6].value == 0
    assert (tree.share / "dst.bin").read_bytes() == b"0123456789"


@pytest.mark.parametrize(("build", "status"), [
    # svcCall: each value check right after its own type check, before later types.
    (lambda r, s, d: parms(r, s, NEG, r, d, 0, 1, types=["u32", "u64", "u64", "u64", "u64", "u64", "u64", "u32"]),
     S.VERR_NEGATIVE_SEEK),
    (lambda r, s, d: parms(r, s, NEG, r, d, 0, 1, types=["u32", "u64", "u32", "u32", "u64", "u64", "u64", "u32"]),
     S.VERR_WRONG_PARAMETER_TYPE),
    (lambda r, s, d: parms(r, s, 0, r, d, NEG, 1, types=["u32", "u64", "u64", "u32", "u64", "u64", "u32", "u32"]),
     S.VERR_NEGATIVE_SEEK),
    (lambda r, s, d: parms(r, s, 0, r, d, 0, 1 << 60, types=["u32", "u64", "u64", "u32", "u64", "u64", "u64", "u64"]),
     S.VERR_OUT_OF_RANGE),
    (lambda r, s, d: parms(r, s, 0, r, d, 0, 1, 1), S.VERR_INVALID_FLAGS),
    (lambda r, s, d: parms(r, 0x777, 0, r, d, 0, 1, 1), S.VERR_INVALID_FLAGS),
    (lambda r, s, d: parms(r, s, 0, r, d, 0, 1)[:7], S.VERR_WRONG_PARAMETER_COUNT),
])
def test_svccall_order(guest: Guest, tree: Tree, handles, build, status: int) -> None:
    """Which status wins when several parameters are wrong; nothing copied.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall
    """
    root, src, dst = handles
    assert guest.call(ShflFn.COPY_FILE_PART, *build(root, src, dst)) == status
    assert (tree.share / "dst.bin").read_bytes() == b"0123456789"
