"""Shared Folders wire ABI (``include/VBox/shflsvc.h`` of VirtualBox 7.0.14).

Function numbers, parameter counts, flag families and the packed structures guests put in
HGCM buffers.  Declared once here, with sizes asserted (tstShflSizes values), and imported
by the service, the guest assembly constants and the tests.
"""

from __future__ import annotations

import ctypes
from enum import IntEnum, IntFlag

from hgcmlab.runtime.wire import field_run

SERVICE_NAME = "VBoxSharedFolders"


class ShflFn(IntEnum):
    """Guest function numbers (SHFL_FN_*)."""

    QUERY_MAPPINGS = 1
    QUERY_MAP_NAME = 2
    CREATE = 3
    CLOSE = 4
    READ = 5
    WRITE = 6
    LOCK = 7
    LIST = 8
    INFORMATION = 9
    REMOVE = 11
    MAP_FOLDER_OLD = 12
    UNMAP_FOLDER = 13
    RENAME = 14
    FLUSH = 15
    SET_UTF8 = 16
    MAP_FOLDER = 17
    READLINK = 18
    SYMLINK = 19
    SET_SYMLINKS = 20
    QUERY_MAP_INFO = 21
    WAIT_FOR_MAPPINGS_CHANGES = 22
    CANCEL_MAPPINGS_CHANGES_WAITS = 23
    SET_FILE_SIZE = 24
    QUERY_FEATURES = 25
    COPY_FILE = 26
    COPY_FILE_PART = 27
    CLOSE_AND_REMOVE = 28
    SET_ERROR_STYLE = 29


#: SHFL_FN_LAST: the highest guest function number.
SHFL_FN_LAST = 29

#: SHFL_CPARMS_*: the parameter count each guest function takes.
SHFL_CPARMS: dict[ShflFn, int] = {
    ShflFn.QUERY_MAPPINGS: 3,
    ShflFn.QUERY_MAP_NAME: 2,
    ShflFn.CREATE: 3,
    ShflFn.CLOSE: 2,
    ShflFn.READ: 5,
    ShflFn.WRITE: 5,
    ShflFn.LOCK: 5,
    ShflFn.LIST: 8,
    ShflFn.INFORMATION: 5,
    ShflFn.REMOVE: 3,
    ShflFn.MAP_FOLDER_OLD: 3,
    ShflFn.UNMAP_FOLDER: 1,
    ShflFn.RENAME: 4,
    ShflFn.FLUSH: 2,
    ShflFn.SET_UTF8: 0,
    ShflFn.MAP_FOLDER: 4,
    ShflFn.READLINK: 3,
    ShflFn.SYMLINK: 4,
    ShflFn.SET_SYMLINKS: 0,
    ShflFn.QUERY_MAP_INFO: 5,
    ShflFn.WAIT_FOR_MAPPINGS_CHANGES: 1,
    ShflFn.CANCEL_MAPPINGS_CHANGES_WAITS: 0,
    ShflFn.SET_FILE_SIZE: 3,
    ShflFn.QUERY_FEATURES: 2,
    ShflFn.COPY_FILE: 5,
    ShflFn.COPY_FILE_PART: 8,
    ShflFn.CLOSE_AND_REMOVE: 4,
    ShflFn.SET_ERROR_STYLE: 2,
}


class ShflHostFn(IntEnum):
    """Host function numbers (separate number space)."""

    ADD_MAPPING = 1
    REMOVE_MAPPING = 2
    SET_STATUS_LED = 3
    ALLOW_SYMLINKS_CREATE = 4


SHFL_ROOT_NIL = 0xFFFFFFFF
SHFL_HANDLE_NIL = 0xFFFFFFFFFFFFFFFF
SHFL_HANDLE_ROOT = 0
SHFL_MAX_MAPPINGS = 64
SHFLSTRING_HEADER_SIZE = 4


class ShflCreateResult(IntEnum):
    """SHFLCREATERESULT."""

    NO_RESULT = 0
    PATH_NOT_FOUND = 1
    FILE_NOT_FOUND = 2
    FILE_EXISTS = 3
    FILE_CREATED = 4
    FILE_REPLACED = 5


class ShflCf(IntFlag):
    """SHFL_CF_* create flags (SHFLCREATEPARMS.CreateFlags)."""

    NONE = 0x00000000
    LOOKUP = 0x00000001
    OPEN_TARGET_DIRECTORY = 0x00000002
    DIRECTORY = 0x00000004
    ACT_MASK_IF_EXISTS = 0x000000F0
    ACT_OPEN_IF_EXISTS = 0x00000000
    ACT_FAIL_IF_EXISTS = 0x00000010
    ACT_REPLACE_IF_EXISTS = 0x00000020
    ACT_OVERWRITE_IF_EXISTS = 0x00000030
    ACT_MASK_IF_NEW = 0x00000F00
    ACT_CREATE_IF_NEW = 0x00000000
    ACT_FAIL_IF_NEW = 0x00000100
    ACCESS_MASK_RW = 0x00003000
    ACCESS_NONE = 0x00000000
    ACCESS_READ = 0x00001000
    ACCESS_WRITE = 0x00002000
    ACCESS_READWRITE = 0x00003000
    ACCESS_MASK_DENY = 0x0000C000
    ACCESS_DENYNONE = 0x00000000
    ACCESS_DENYREAD = 0x00004000
    ACCESS_DENYWRITE = 0x00008000
    ACCESS_DENYALL = 0x0000C000
    ACCESS_MASK_ATTR = 0x00030000
    ACCESS_ATTR_NONE = 0x00000000
    ACCESS_ATTR_READ = 0x00010000
    ACCESS_ATTR_WRITE = 0x00020000
    ACCESS_ATTR_READWRITE = 0x00030000
    ACCESS_APPEND = 0x00040000


class ShflMf(IntFlag):
    """SHFL_MF_* (QUERY_MAPPINGS flags)."""

    UCS2 = 0x00
    UTF8 = 0x01
    AUTOMOUNT = 0x10
    MASK = 0x11


SHFL_MS_NEW = 1
SHFL_MS_DELETED = 2


class ShflList(IntFlag):
    """SHFL_LIST_* flags."""

    NONE = 0
    RETURN_ONE = 1
    RESTART = 2


class ShflInfo(IntFlag):
    """SHFL_INFO_* flags."""

    GET = 0x0
    SET = 0x1
    MODE_MASK = 0x1
    NAME = 0x2
    SIZE = 0x4
    FILE = 0x8
    VOLUME = 0x10


class ShflLock(IntFlag):
    """SHFL_LOCK_* flags."""

    CANCEL = 0x0
    SHARED = 0x1
    EXCLUSIVE = 0x2
    MODE_MASK = 0x3
    NOWAIT = 0x0
    WAIT = 0x4
    PARTIAL = 0x0
    ENTIRE = 0x8


class ShflRemove(IntFlag):
    """SHFL_REMOVE_* flags."""

    FILE = 0x1
    DIR = 0x2
    SYMLINK = 0x4


class ShflRename(IntFlag):
    """SHFL_RENAME_* flags."""

    FILE = 0x1
    DIR = 0x2
    REPLACE_IF_EXISTS = 0x4


class ShflMiqf(IntFlag):
    """SHFL_MIQF_* (QUERY_MAP_INFO query flags)."""

    DRIVE_LETTER = 0x1
    PATH = 0x2


class ShflMif(IntFlag):
    """SHFL_MIF_* (QUERY_MAP_INFO returned flags)."""

    WRITABLE = 0x01
    AUTO_MOUNT = 0x02
    HOST_ICASE = 0x04
    GUEST_ICASE = 0x08
    SYMLINK_CREATION = 0x10


SHFL_FEATURE_WRITE_UPDATES_OFFSET = 0x1

#: Most times one client may map one root: vbsfMapFolder maps while the count is below _32K,
#: so the 32769th MAP_FOLDER gives VERR_TOO_MANY_OPENS.
SHFL_MAX_MAPS_PER_CLIENT_ROOT = 32768
#: Lifetime limit of blocking WAIT_FOR_MAPPINGS_CHANGES calls in VirtualBox.
SHFL_MAX_MAPPING_WAITS = 64


class ShflErrorStyle(IntEnum):
    """SHFLERRORSTYLE."""

    INVALID = 0
    WINDOWS = 1
    LINUX = 2


class ShflAddMappingFlag(IntFlag):
    """SHFL_ADD_MAPPING_F_*."""

    WRITABLE = 0x1
    AUTOMOUNT = 0x2
    CREATE_SYMLINKS = 0x4
    MISSING = 0x8


class ShflFsObjAttrAdd(IntEnum):
    """SHFLFSOBJATTRADD (differs from IPRT's numbering)."""

    NOTHING = 1
    UNIX = 2
    EASIZE = 3


class _Packed(ctypes.LittleEndianStructure):
    _pack_ = 1


class ShflStringHeader(_Packed):
    """SHFLSTRING header: sizes in bytes; the string bytes follow at offset 4."""

    _fields_ = [
        ("u16Size", ctypes.c_uint16),
        ("u16Length", ctypes.c_uint16),
    ]


assert ctypes.sizeof(ShflStringHeader) == SHFLSTRING_HEADER_SIZE
#: (u16Size, u16Length) of an SHFLSTRING, and u16Length alone.
SHFLSTRING_SIZES = field_run(ShflStringHeader, "u16Size", "u16Length")
SHFLSTRING_LENGTH = field_run(ShflStringHeader, "u16Length")


class ShflMapping(_Packed):
    """SHFLMAPPING: one entry of the QUERY_MAPPINGS array."""

    _fields_ = [
        ("u32Status", ctypes.c_uint32),
        ("root", ctypes.c_uint32),
    ]


assert ctypes.sizeof(ShflMapping) == 8


class ShflFsObjAttrUnix(_Packed):
    """The UNIX member of the SHFLFSOBJATTR union (36 bytes)."""

    _fields_ = [
        ("uid", ctypes.c_uint32),
        ("gid", ctypes.c_uint32),
        ("cHardlinks", ctypes.c_uint32),
        ("INodeIdDevice", ctypes.c_uint32),
        ("INodeId", ctypes.c_uint64),
        ("fFlags", ctypes.c_uint32),
        ("GenerationId", ctypes.c_uint32),
        ("Device", ctypes.c_uint32),
    ]


assert ctypes.sizeof(ShflFsObjAttrUnix) == 36


class ShflFsObjAttr(_Packed):
    """SHFLFSOBJATTR (44 bytes)."""

    _fields_ = [
        ("fMode", ctypes.c_uint32),
        ("enmAdditional", ctypes.c_uint32),
        ("u", ShflFsObjAttrUnix),
    ]


assert ctypes.sizeof(ShflFsObjAttr) == 44


class ShflFsObjInfo(_Packed):
    """SHFLFSOBJINFO (92 bytes); times are signed nanoseconds since the Unix epoch."""

    _fields_ = [
        ("cbObject", ctypes.c_int64),
        ("cbAllocated", ctypes.c_int64),
        ("AccessTime", ctypes.c_int64),
        ("ModificationTime", ctypes.c_int64),
        ("ChangeTime", ctypes.c_int64),
        ("BirthTime", ctypes.c_int64),
        ("Attr", ShflFsObjAttr),
    ]


assert ctypes.sizeof(ShflFsObjInfo) == 92


class ShflCreateParms(_Packed):
    """SHFLCREATEPARMS (108 bytes)."""

    _fields_ = [
        ("Handle", ctypes.c_uint64),
        ("Result", ctypes.c_uint32),
        ("CreateFlags", ctypes.c_uint32),
        ("Info", ShflFsObjInfo),
    ]


assert ctypes.sizeof(ShflCreateParms) == 108
#: (Handle, Result, CreateFlags) of SHFLCREATEPARMS, and the object size it reports.
SHFLCREATEPARMS_HEAD = field_run(ShflCreateParms, "Handle", "CreateFlags")
SHFLCREATEPARMS_OBJECT_SIZE = field_run(ShflCreateParms, "Info.cbObject")


class ShflDirInfoHeader(_Packed):
    """The fixed 126-byte part of an SHFLDIRINFO record; the name's bytes follow.

    sizeof(SHFLDIRINFO) is 128 (it counts a 2-byte string union); a record actually
    occupies 126 + name.u16Size bytes.
    """

    _fields_ = [
        ("Info", ShflFsObjInfo),
        ("cucShortName", ctypes.c_uint16),
        ("uszShortName", ctypes.c_uint16 * 14),
        ("name", ShflStringHeader),
    ]


assert ctypes.sizeof(ShflDirInfoHeader) == 126
#: Record fields LIST writes besides the object information.
SHFLDIRINFO_SHORT_NAME_LENGTH = field_run(ShflDirInfoHeader, "cucShortName")
SHFLDIRINFO_NAME_SIZES = field_run(ShflDirInfoHeader, "name.u16Size", "name.u16Length")
#: sizeof(SHFLDIRINFO) as VirtualBox declares it; the LIST buffer minimum.
SHFLDIRINFO_SIZE = 128


class ShflFsProperties(_Packed):
    """SHFLFSPROPERTIES (12 bytes)."""

    _fields_ = [
        ("cbMaxComponent", ctypes.c_uint32),
        ("fRemote", ctypes.c_uint8),
        ("fCaseSensitive", ctypes.c_uint8),
        ("fReadOnly", ctypes.c_uint8),
        ("fSupportsUnicode", ctypes.c_uint8),
        ("fCompressed", ctypes.c_uint8),
        ("fFileCompression", ctypes.c_uint8),
        ("padding", ctypes.c_uint8 * 2),
    ]


assert ctypes.sizeof(ShflFsProperties) == 12


class ShflVolInfo(_Packed):
    """SHFLVOLINFO (40 bytes)."""

    _fields_ = [
        ("ullTotalAllocationBytes", ctypes.c_int64),
        ("ullAvailableAllocationBytes", ctypes.c_int64),
        ("ulBytesPerAllocationUnit", ctypes.c_uint32),
        ("ulBytesPerSector", ctypes.c_uint32),
        ("ulSerial", ctypes.c_uint32),
        ("fsProperties", ShflFsProperties),
    ]


assert ctypes.sizeof(ShflVolInfo) == 40
