"""COPY_FILE_PART (INFORMATION moved to tests/conformance/test_information.py)."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflFn
from tests.service.conftest import Guest, Tree

CF = ShflCf


@pytest.fixture
def root(guest: Guest) -> int:
    return guest.map("sf")


def copy_part(g: Guest, rs: int, hs: int, os_: int, rd: int, hd: int, od: int, cb: int,
              flags: int = 0) -> tuple[int, int]:
    cbp = SvcParm.u64(cb)
    st = g.call(ShflFn.COPY_FILE_PART, SvcParm.u32(rs), SvcParm.u64(hs), SvcParm.u64(os_),
                SvcParm.u32(rd), SvcParm.u64(hd), SvcParm.u64(od), cbp, SvcParm.u32(flags))
    return st, cbp.value


def test_copy_file_part(guest: Guest, root: int, tree: Tree) -> None:
    src = guest.open(root, "sub/file.txt")
    dst = guest.open(root, "copy.txt", CF.ACCESS_READWRITE)
    assert copy_part(guest, root, src, 1, root, dst, 3, 100) == (0, 4)  # offsets not swapped
    assert (tree.share / "copy.txt").read_bytes() == b"\0\0\0ello"
    assert copy_part(guest, root, src, 1 << 63, root, dst, 0, 1)[0] == Status.VERR_NEGATIVE_SEEK
    assert copy_part(guest, root, src, 0, root, dst, 0, 1 << 60)[0] == Status.VERR_OUT_OF_RANGE
    assert copy_part(guest, root, src, 0, root, dst, 0, 1, 1)[0] == Status.VERR_INVALID_FLAGS
    rr = guest.map("ro")
    ro_dst = guest.open(rr, "file.txt")
    assert copy_part(guest, root, src, 0, rr, ro_dst, 0, 5) == (Status.VERR_WRITE_PROTECT, 0)  # A07
    assert (tree.ro / "file.txt").read_bytes() == b"ro-data"
