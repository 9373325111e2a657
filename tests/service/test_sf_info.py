"""INFORMATION (get/set file info, set size, volume) and COPY_FILE_PART."""

from __future__ import annotations

import ctypes
import os

import pytest

from runtime.fs import RtFs
from runtime.status import Status
from services.hgcm import SvcParm
from services.sharedfolders.abi import ShflCf, ShflFn, ShflFsObjInfo, ShflInfo, ShflVolInfo
from tests.service.conftest import READ_OPEN, Guest, Tree

CF = ShflCf
RW_OPEN = CF.ACCESS_READWRITE | CF.ACT_FAIL_IF_NEW


@pytest.fixture
def root(guest: Guest) -> int:
    return guest.map("sf")


def info_call(g: Guest, root: int, h: int, flags: int, data: bytes | int = 92,
              cb: int | None = None) -> tuple[int, int, bytearray]:
    buf = SvcParm.ptr(data)
    cbp = SvcParm.u32(len(buf.buffer) if cb is None else cb)
    st = g.call(ShflFn.INFORMATION, SvcParm.u32(root), SvcParm.u64(h), SvcParm.u32(flags), cbp, buf)
    return st, cbp.value, buf.buffer


def test_get_file_info(guest: Guest, root: int, tree: Tree) -> None:
    h = guest.open(root, "sub/file.txt")
    st, cb, buf = info_call(guest, root, h, ShflInfo.FILE)
    info = ShflFsObjInfo.from_buffer_copy(bytes(buf))
    host = os.stat(tree.share / "sub/file.txt")
    assert (st, cb, info.cbObject, info.Attr.u.INodeId) == (0, 92, 5, host.st_ino)
    assert info.ModificationTime == host.st_mtime_ns
    assert info_call(guest, root, h, ShflInfo.FILE, 91)[0] == Status.VERR_INVALID_PARAMETER
    assert info_call(guest, root, h, ShflInfo.FILE, 92, cb=93)[0] == Status.VERR_INVALID_PARAMETER
    assert info_call(guest, root, 0x999, ShflInfo.FILE)[0] == Status.VERR_INVALID_PARAMETER
    assert info_call(guest, root, h, ShflInfo.NAME)[:2] == (Status.VERR_INVALID_PARAMETER, 0)
    d = guest.open(root, "sub", CF.DIRECTORY | READ_OPEN)
    dinfo = ShflFsObjInfo.from_buffer_copy(bytes(info_call(guest, root, d, ShflInfo.FILE)[2]))
    assert dinfo.Attr.fMode & RtFs.DOS_DIRECTORY


def test_a09_set_mode_strips_special_bits(guest: Guest, root: int, tree: Tree) -> None:
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    req = ShflFsObjInfo()
    req.Attr.fMode = 0o104777
    st, cb, buf = info_call(guest, root, h, ShflInfo.SET | ShflInfo.FILE, bytes(req))
    assert (st, cb) == (0, 92)
    assert (tree.share / "sub/file.txt").stat().st_mode & 0o7777 == 0o777
    assert ShflFsObjInfo.from_buffer_copy(bytes(buf)).Attr.fMode & 0o7777 == 0o777
    req.Attr.fMode = 0o100000
    info_call(guest, root, h, ShflInfo.SET | ShflInfo.FILE, bytes(req))
    assert (tree.share / "sub/file.txt").stat().st_mode & 0o7777 == 0o400


def test_set_times_zero_means_unchanged(guest: Guest, root: int, tree: Tree) -> None:
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    before = (tree.share / "sub/file.txt").stat()
    req = ShflFsObjInfo()
    req.AccessTime = 100000
    assert info_call(guest, root, h, ShflInfo.SET | ShflInfo.FILE, bytes(req))[0] == 0
    after = (tree.share / "sub/file.txt").stat()
    assert after.st_atime_ns == 100000 and after.st_mtime_ns == before.st_mtime_ns


def test_set_size_and_read_only(guest: Guest, root: int, tree: Tree) -> None:
    h = guest.open(root, "sub/file.txt", RW_OPEN)
    req = ShflFsObjInfo()
    req.cbObject = 50000
    st, cb, buf = info_call(guest, root, h, ShflInfo.SET | ShflInfo.SIZE, bytes(req))
    assert (st, cb) == (0, 92) and (tree.share / "sub/file.txt").stat().st_size == 50000
    d = guest.open(root, "sub", CF.DIRECTORY | READ_OPEN)
    assert info_call(guest, root, d, ShflInfo.SET | ShflInfo.SIZE, bytes(req))[0] == Status.VERR_INVALID_PARAMETER
    rr = guest.map("ro")
    hr = guest.open(rr, "file.txt")
    assert info_call(guest, rr, hr, ShflInfo.SET | ShflInfo.FILE, bytes(req))[0] == Status.VERR_WRITE_PROTECT
    assert (tree.ro / "file.txt").read_bytes() == b"ro-data"


def test_volume_info(guest: Guest, root: int, tree: Tree) -> None:
    st, cb, buf = info_call(guest, root, 0, ShflInfo.VOLUME, 40)
    vol = ShflVolInfo.from_buffer_copy(bytes(buf))
    vfs = os.statvfs(tree.share)
    assert (st, cb) == (0, ctypes.sizeof(ShflVolInfo))
    assert vol.ulBytesPerSector == 512 and vol.ulBytesPerAllocationUnit == vfs.f_frsize
    assert vol.ulSerial == os.stat(tree.share).st_dev & 0xFFFFFFFF
    assert vol.fsProperties.fCaseSensitive == 1 and vol.fsProperties.cbMaxComponent == vfs.f_namemax
    assert info_call(guest, root, 0, ShflInfo.VOLUME, 39)[0] == Status.VERR_INVALID_PARAMETER


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
