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

from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCreateParms, ShflFn, ShflFsObjInfo
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


# --- handle-based calls -------------------------------------------------------------------------

#: Preset values of the written-back parameters, so "left alone" and "set to 0" differ.
CB_SENT = 4
OFFSET_SENT = 2


@dataclass
class HandleCall:
    """One handle-based call: its status and every parameter as written back."""

    status: int
    params: list[SvcParm]

    def value(self, index: int) -> int:
        return self.params[index].value


def handle_call(guest: Guest, fn: ShflFn, root: int, handle: int, *, buffer: bytes | None = None,
                pages: bool = False, size: int = 0, lock_flags: int = 1) -> HandleCall:
    """Call ``fn`` (CLOSE, READ, WRITE, LOCK, FLUSH, SET_FILE_SIZE) on ``handle`` with small
    fixed arguments: READ/WRITE use offset ``OFFSET_SENT`` and cb ``CB_SENT`` over a buffer of
    ``buffer`` (default ``b"WXYZ"``), LOCK locks 1 byte at 0 with ``lock_flags``."""
    data = b"WXYZ" if buffer is None else buffer
    buf = SvcParm.pages(data) if pages else SvcParm.ptr(data)
    head = [SvcParm.u32(root), SvcParm.u64(handle)]
    if fn in (ShflFn.READ, ShflFn.WRITE):
        params = head + [SvcParm.u64(OFFSET_SENT), SvcParm.u32(CB_SENT), buf]
    elif fn is ShflFn.LOCK:
        params = head + [SvcParm.u64(0), SvcParm.u64(1), SvcParm.u32(lock_flags)]
    elif fn is ShflFn.SET_FILE_SIZE:
        params = head + [SvcParm.u64(size)]
    else:
        params = head
    return HandleCall(guest.call(fn, *params), params)


_READ_OPEN = 0x1000 | 0x100          # ACCESS_READ | OPEN_IF_EXISTS | FAIL_IF_NEW
_RW_OPEN = 0x3000 | 0x100            # ACCESS_READWRITE | OPEN_IF_EXISTS | FAIL_IF_NEW

#: Handle situations every handle-based function distinguishes (see ``handle_situation``).
SITUATIONS = ("root", "nil", "never_opened", "closed", "dir", "other_root", "other_client",
              "mapping_removed", "read_only_share", "file")


def handle_situation(guest: Guest, name: str) -> tuple[int, int]:
    """Set up situation ``name`` for ``guest`` (which has "sf" and "ro" mapped) and return
    the (root, handle) to call with:

    root: SHFL_HANDLE_ROOT (0); nil: SHFL_HANDLE_NIL; never_opened: a value never handed
    out; closed: a file handle already closed; dir: a directory handle ("sub");
    other_root: a file handle of "sf" used with the root of "ro"; other_client: a file
    handle another client opened; mapping_removed: a file handle whose mapping the host
    removed since; read_only_share: a file handle of "ro" (opened read-write, the write
    access dropped); file: a read-write handle of "sf/sub/file.txt" ("hello").
    """
    sf, ro = guest.map("sf"), guest.map("ro")
    if name == "root":
        return sf, 0
    if name == "nil":
        return sf, SHFL_HANDLE_NIL
    if name == "never_opened":
        return sf, 0x77
    if name == "closed":
        handle = guest.open(sf, "sub/file.txt", _RW_OPEN)
        assert guest.close(sf, handle) == 0
        return sf, handle
    if name == "dir":
        return sf, guest.open(sf, "sub", _READ_OPEN)
    if name == "other_root":
        return ro, guest.open(sf, "sub/file.txt", _RW_OPEN)
    if name == "other_client":
        other = Guest(guest.svc)
        assert other.map("sf") == sf
        return sf, other.open(sf, "sub/file.txt", _RW_OPEN)
    if name == "mapping_removed":
        handle = guest.open(sf, "sub/file.txt", _RW_OPEN)
        guest.svc.remove_mapping("sf")
        return sf, handle
    if name == "read_only_share":
        return ro, guest.open(ro, "file.txt", _RW_OPEN)
    assert name == "file", name
    return sf, guest.open(sf, "sub/file.txt", _RW_OPEN)
