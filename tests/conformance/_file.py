"""Helpers of the file-function conformance tests (CREATE, CLOSE, READ, WRITE, LOCK, FLUSH,
SET_FILE_SIZE): raw CREATE calls that keep the exact bytes sent, and the SHFLFSOBJINFO
VirtualBox writes for a host object, computed here from ``os.stat`` independently of the
code under test (IPRT fs2-posix.cpp:rtFsConvertStatToObjInfo, fs.cpp:rtFsModeFromUnix,
include/VBox/shflsvc.h:vbfsCopyFsObjInfoFromIprt).
"""

from __future__ import annotations

import ctypes
import os
import stat
from dataclasses import dataclass

from services.hgcm import SvcParm
from services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCreateParms, ShflFn, ShflFsObjInfo
from tests.service.conftest import Guest

#: A byte pattern for the Info the guest sends, so "left as the guest sent it" is visible.
SENT_INFO = bytes((0xA0 + i) & 0xFF for i in range(ctypes.sizeof(ShflFsObjInfo)))

_DOS_READONLY = 0x00010000
_DOS_HIDDEN = 0x00020000
_DOS_DIRECTORY = 0x00100000
_DOS_NT_NORMAL = 0x00800000
_DOS_MASK = 0x7FFF0000
_SPECIAL = 0o7000
_SHFLFSOBJATTRADD_UNIX = 2


@dataclass
class Created:
    """One CREATE: the status, the parms as written back, and the bytes that were sent."""

    status: int
    parms: ShflCreateParms
    sent: bytes

    @property
    def info_bytes(self) -> bytes:
        return bytes(self.parms.Info)

    @property
    def info_untouched(self) -> bool:
        """Info is exactly what the guest sent."""
        return self.info_bytes == bytes(ShflCreateParms.from_buffer_copy(self.sent).Info)


def create(guest: Guest, root: int, path: str, flags: int, *, handle_in: int = SHFL_HANDLE_NIL,
           mode: int | None = None, size: int | None = None) -> Created:
    """CREATE with Info preset to ``SENT_INFO`` (then fMode / cbObject if given)."""
    cp = ShflCreateParms()
    ctypes.memmove(ctypes.addressof(cp.Info), SENT_INFO, len(SENT_INFO))
    cp.Handle = handle_in
    cp.Result = 0x5A5A5A5A
    cp.CreateFlags = flags
    if mode is not None:
        cp.Info.Attr.fMode = mode
    if size is not None:
        cp.Info.cbObject = size
    sent = bytes(cp)
    parm = SvcParm.ptr(sent)
    status = guest.call(ShflFn.CREATE, SvcParm.u32(root), guest.s(path), parm)
    return Created(status, ShflCreateParms.from_buffer_copy(bytes(parm.buffer)), sent)


def vbox_mode(st_mode: int, name: bytes | None) -> int:
    """fMode as rtFsModeFromUnix builds it and vbfsCopyFsObjInfoFromIprt passes it on.

    NT_NORMAL is added when no DOS bit is set *before* the hidden check, so a hidden
    writable file carries both NT_NORMAL and HIDDEN.  ``name`` None: IPRT saw no file name
    (handle queries, paths ending in a slash).
    """
    mode = st_mode & 0xFFFF
    if not mode & 0o222:
        mode |= _DOS_READONLY
    if stat.S_ISDIR(st_mode):
        mode |= _DOS_DIRECTORY
    if not mode & _DOS_MASK:
        mode |= _DOS_NT_NORMAL
    if name is not None and name.startswith(b".") and name not in (b".", b".."):
        mode |= _DOS_HIDDEN
    return mode & ~_SPECIAL


def expected_info(st: os.stat_result, name: bytes | None = None) -> bytes:
    """The 92 SHFLFSOBJINFO bytes VirtualBox writes for an object with stat ``st``."""
    info = ShflFsObjInfo()
    info.cbObject = st.st_size
    info.cbAllocated = st.st_blocks * 512
    info.AccessTime = st.st_atime_ns
    info.ModificationTime = st.st_mtime_ns
    info.ChangeTime = st.st_ctime_ns
    info.BirthTime = st.st_ctime_ns  # no birth time on Linux: IPRT repeats the change time
    info.Attr.fMode = vbox_mode(st.st_mode, name)
    info.Attr.enmAdditional = _SHFLFSOBJATTRADD_UNIX
    unix = info.Attr.u
    unix.uid, unix.gid = st.st_uid, st.st_gid
    unix.cHardlinks = st.st_nlink
    unix.INodeIdDevice = st.st_dev & 0xFFFFFFFF
    unix.INodeId = st.st_ino
    unix.Device = st.st_rdev & 0xFFFFFFFF
    return bytes(info)
