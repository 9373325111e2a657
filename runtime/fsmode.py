"""IPRT's file mode bits (RTFMODE), import-free.

Shared by the confined file API (runtime/fs.py, which re-exports ``RtFs``), the Shared
Folders ABI (SHFLFSOBJINFO carries these bits) and guest assembly (``RTFS_*`` symbols),
which may import only modules that import nothing of ours.
Values: VirtualBox 7.0.14 include/iprt/fs.h.
"""

from __future__ import annotations

from enum import IntFlag


class RtFs(IntFlag):
    """RTFS_* mode bits (RTFMODE): Unix bits in the low word, DOS/NT attributes above."""

    UNIX_ISUID = 0o4000
    UNIX_ISGID = 0o2000
    UNIX_ISTXT = 0o1000
    UNIX_IRUSR = 0o400
    UNIX_IXUSR = 0o100
    UNIX_ALL_ACCESS_PERMS = 0o777
    UNIX_ALL_PERMS = 0o7777
    TYPE_FIFO = 0o010000
    TYPE_DEV_CHAR = 0o020000
    TYPE_DIRECTORY = 0o040000
    TYPE_DEV_BLOCK = 0o060000
    TYPE_FILE = 0o100000
    TYPE_SYMLINK = 0o120000
    TYPE_SOCKET = 0o140000
    TYPE_WHITEOUT = 0o160000
    TYPE_MASK = 0o170000
    UNIX_MASK = 0xFFFF
    DOS_READONLY = 0x00010000
    DOS_HIDDEN = 0x00020000
    DOS_SYSTEM = 0x00040000
    DOS_DIRECTORY = 0x00100000
    DOS_ARCHIVED = 0x00200000
    DOS_NT_DEVICE = 0x00400000
    DOS_NT_NORMAL = 0x00800000
    DOS_NT_TEMPORARY = 0x01000000
    DOS_NT_SPARSE_FILE = 0x02000000
    DOS_NT_REPARSE_POINT = 0x04000000
    DOS_NT_COMPRESSED = 0x08000000
    DOS_NT_OFFLINE = 0x10000000
    DOS_NT_NOT_CONTENT_INDEXED = 0x20000000
    DOS_NT_ENCRYPTED = 0x40000000
    DOS_MASK = 0x7FFF0000
