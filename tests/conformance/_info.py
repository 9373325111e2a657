"""Helpers for the INFORMATION, LIST, READLINK and SYMLINK conformance tests.

Expected values here are written from VirtualBox's code (IPRT's stat conversion,
rtFsConvertStatToObjInfo in Runtime/r3/posix/fs2-posix.cpp, and vbfsCopyFsObjInfoFromIprt in
include/VBox/shflsvc.h), computed from the host's own stat, never from our code under test.
"""

from __future__ import annotations

import os
import stat as st_mod

from hgcmlab.runtime.fs import RtFs
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflFn, ShflFsObjAttrAdd, ShflFsObjInfo
from tests.service.conftest import Guest

INFO_SIZE = 92
SPECIAL = 0o7000


def info_call(g: Guest, root: int, handle: int, flags: int, data: bytes | int = INFO_SIZE,
              cb: int | None = None) -> tuple[int, int, bytes]:
    """One INFORMATION call; returns (status, cb written back, the whole buffer after)."""
    buf = SvcParm.ptr(data)
    cbp = SvcParm.u32(len(buf.buffer) if cb is None else cb)
    st = g.call(ShflFn.INFORMATION, SvcParm.u32(root), SvcParm.u64(handle), SvcParm.u32(flags),
                cbp, buf)
    return st, cbp.value, bytes(buf.buffer)


def request(*, fmode: int = 0, atime: int = 0, mtime: int = 0, ctime: int = 0, btime: int = 0,
            size: int = 0) -> bytes:
    """A SHFLFSOBJINFO as a guest fills it for SET."""
    req = ShflFsObjInfo()
    req.Attr.fMode = fmode
    req.AccessTime, req.ModificationTime, req.ChangeTime, req.BirthTime = atime, mtime, ctime, btime
    req.cbObject = size
    return bytes(req)


def expected_mode(st: os.stat_result, name: bytes | None = None) -> int:
    """fMode as rtFsModeFromUnix builds it from a stat, minus the special bits."""
    mode = st.st_mode & 0xFFFF
    if not mode & 0o222:
        mode |= RtFs.DOS_READONLY
    if st_mod.S_ISDIR(st.st_mode):
        mode |= RtFs.DOS_DIRECTORY
    if not mode & RtFs.DOS_MASK:
        mode |= RtFs.DOS_NT_NORMAL
    if name is not None and name.startswith(b".") and name not in (b".", b".."):
        mode |= RtFs.DOS_HIDDEN
    return mode & ~SPECIAL


def assert_info_is_stat(raw: bytes, st: os.stat_result, name: bytes | None = None) -> None:
    """Every field of a SHFLFSOBJINFO equals what VirtualBox derives from ``st``."""
    info = ShflFsObjInfo.from_buffer_copy(raw[:INFO_SIZE])
    got = (info.cbObject, info.cbAllocated, info.AccessTime, info.ModificationTime,
           info.ChangeTime, info.BirthTime, info.Attr.fMode, info.Attr.enmAdditional,
           info.Attr.u.uid, info.Attr.u.gid, info.Attr.u.cHardlinks, info.Attr.u.INodeIdDevice,
           info.Attr.u.INodeId, info.Attr.u.fFlags, info.Attr.u.GenerationId, info.Attr.u.Device)
    want = (st.st_size, st.st_blocks * 512, st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns,
            st.st_ctime_ns,  # no birth time on Linux: IPRT repeats the change time
            expected_mode(st, name), ShflFsObjAttrAdd.UNIX, st.st_uid, st.st_gid, st.st_nlink,
            st.st_dev & 0xFFFFFFFF, st.st_ino, 0, 0, st.st_rdev & 0xFFFFFFFF)
    assert got == want, [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]


def dummy_info_fields(raw: bytes) -> tuple[int, ...]:
    """The fields rtDirSetDummyInfo sets, for comparison with an expected dummy tuple:
    (sizes, four times, fMode, enmAdditional, every UNIX field)."""
    info = ShflFsObjInfo.from_buffer_copy(raw[:INFO_SIZE])
    u = info.Attr.u
    return (info.cbObject, info.cbAllocated, info.AccessTime, info.ModificationTime,
            info.ChangeTime, info.BirthTime, info.Attr.fMode, info.Attr.enmAdditional,
            u.uid, u.gid, u.cHardlinks, u.INodeIdDevice, u.INodeId, u.fFlags, u.GenerationId,
            u.Device)


def dummy(fmode: int) -> tuple[int, ...]:
    """The dummy info tuple rtDirSetDummyInfo produces for an entry of type ``fmode``."""
    return (0, 0, 0, 0, 0, 0, fmode, ShflFsObjAttrAdd.NOTHING, 0, 0, 0, 0, 0, 0, 0, 0)

