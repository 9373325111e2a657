"""IPRT object info -> SHFLFSOBJINFO (reference §3.4)."""

from __future__ import annotations

from hgcmlab.runtime.fs import ObjInfo, RtFs
from hgcmlab.services.sharedfolders.abi import ShflFsObjAttrAdd, ShflFsObjInfo

_SPECIAL_BITS = RtFs.UNIX_ISUID | RtFs.UNIX_ISGID | RtFs.UNIX_ISTXT
_U32 = 0xFFFFFFFF


def to_shfl(info: ObjInfo) -> ShflFsObjInfo:
    """Fill a SHFLFSOBJINFO as the service does on a Linux host.

    setuid/setgid/sticky are cleared from fMode (vbfsCopyFsObjInfoFromIprt); the additional
    attributes are UNIX with device numbers truncated to 32 bits, except for IPRT's dummy
    info, whose enmAdditional is NOTHING with every UNIX field zero.
    """
    out = ShflFsObjInfo()
    out.cbObject = info.size
    out.cbAllocated = info.allocated
    out.AccessTime = info.access_ns
    out.ModificationTime = info.modification_ns
    out.ChangeTime = info.change_ns
    out.BirthTime = info.birth_ns
    out.Attr.fMode = info.mode & ~int(_SPECIAL_BITS) & _U32
    if not info.unix_attrs:
        out.Attr.enmAdditional = ShflFsObjAttrAdd.NOTHING
        return out  # Attr.u stays zeroed (RT_ZERO in vbfsCopyFsObjInfoFromIprt)
    out.Attr.enmAdditional = ShflFsObjAttrAdd.UNIX
    unix = out.Attr.u
    unix.uid = info.uid & _U32
    unix.gid = info.gid & _U32
    unix.cHardlinks = info.nlink & _U32
    unix.INodeIdDevice = info.dev & _U32
    unix.INodeId = info.ino
    unix.fFlags = 0
    unix.GenerationId = 0
    unix.Device = info.rdev & _U32
    return out
