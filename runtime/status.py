"""VirtualBox / IPRT status codes and the host errno -> status conversion.

Values are those of VirtualBox 7.0.14 (include/iprt/err.h, include/VBox/err.h) as listed in
the project reference.  Negative values are failures (VERR_*), non-negative values are
success codes (VINF_* / VWRN_*).  ``errno -> Status`` follows IPRT's RTErrConvertFromErrno on
a Linux host; it is the only place in the project where errno numbers are translated.
"""

from __future__ import annotations

import errno as _errno
from enum import IntEnum


class Status(IntEnum):
    """Every VBox/IPRT status code the project produces or recognises."""

    VINF_SUCCESS = 0
    VERR_GENERAL_FAILURE = -1
    VERR_INVALID_PARAMETER = -2
    VERR_INVALID_MAGIC = -3
    VERR_INVALID_HANDLE = -4
    VERR_INVALID_POINTER = -6
    VERR_NO_MEMORY = -8
    VERR_PERMISSION_DENIED = -10
    VINF_PERMISSION_DENIED = 10
    VERR_VERSION_MISMATCH = -11
    VERR_NOT_IMPLEMENTED = -12
    VERR_INVALID_FLAGS = -13
    VERR_NOT_SYMLINK = -19
    VERR_NO_TMP_MEMORY = -20
    VERR_INVALID_FMODE = -21
    VERR_UNRESOLVED_ERROR = -35
    VERR_INVALID_FUNCTION = -36
    VERR_NOT_SUPPORTED = -37
    VINF_NOT_SUPPORTED = 37
    VERR_ACCESS_DENIED = -38
    VERR_INTERRUPTED = -39
    VERR_TIMEOUT = -40
    VERR_BUFFER_OVERFLOW = -41
    VINF_BUFFER_OVERFLOW = 41
    VERR_TOO_MUCH_DATA = -42
    VERR_PROCESS_NOT_FOUND = -50
    VERR_TRY_AGAIN = -52
    VINF_TRY_AGAIN = 52
    VERR_PARSE_ERROR = -53
    VERR_OUT_OF_RANGE = -54
    VERR_NO_TRANSLATION = -58
    VERR_CODE_POINT_ENDIAN_INDICATOR = -59
    VERR_CODE_POINT_SURROGATE = -60
    VERR_INVALID_UTF8_ENCODING = -61
    VERR_INVALID_UTF16_ENCODING = -62
    VERR_CANCELLED = -70
    VERR_NOT_FOUND = -78
    VWRN_NOT_FOUND = 78
    VERR_INVALID_STATE = -79
    VERR_OUT_OF_RESOURCES = -80
    VERR_FILE_IO_ERROR = -100
    VERR_OPEN_FAILED = -101
    VERR_FILE_NOT_FOUND = -102
    VERR_PATH_NOT_FOUND = -103
    VERR_INVALID_NAME = -104
    VERR_ALREADY_EXISTS = -105
    VERR_TOO_MANY_OPEN_FILES = -106
    VERR_SEEK = -107
    VERR_NEGATIVE_SEEK = -108
    VERR_SEEK_ON_DEVICE = -109
    VERR_EOF = -110
    VERR_READ_ERROR = -111
    VERR_WRITE_ERROR = -112
    VERR_WRITE_PROTECT = -113
    VERR_SHARING_VIOLATION = -114
    VERR_FILE_LOCK_FAILED = -115
    VERR_FILE_LOCK_VIOLATION = -116
    VERR_CANT_CREATE = -117
    VERR_CANT_DELETE_DIRECTORY = -118
    VERR_NOT_SAME_DEVICE = -119
    VERR_FILENAME_TOO_LONG = -120
    VERR_MEDIA_NOT_PRESENT = -121
    VERR_MEDIA_NOT_RECOGNIZED = -122
    VERR_DIR_NOT_EMPTY = -125
    VERR_NOT_A_DIRECTORY = -126
    VERR_IS_A_DIRECTORY = -127
    VERR_FILE_TOO_BIG = -128
    VERR_RESOURCE_BUSY = -138
    VERR_NOT_A_FILE = -139
    VERR_IS_A_FILE = -140
    VERR_STALE_FILE_HANDLE = -147
    VERR_DISK_IO_ERROR = -150
    VERR_DISK_FULL = -152
    VERR_TOO_MANY_SYMLINKS = -156
    VERR_SYMLINK_NOT_ALLOWED = -159
    VERR_IS_A_SYMLINK = -160
    VERR_NO_MORE_FILES = -201
    VERR_NO_MORE_SEARCH_HANDLES = -202
    VWRN_NO_DIRENT_INFO = 203
    VERR_INTERNAL_ERROR = -225
    VERR_INTERNAL_ERROR_2 = -226
    VERR_INTERNAL_ERROR_3 = -227
    VERR_INTERNAL_ERROR_4 = -228
    VERR_INTERNAL_ERROR_5 = -229
    VERR_DEV_IO_ERROR = -250
    VERR_IO_BAD_UNIT = -251
    VERR_IO_NOT_READY = -252
    VERR_IO_BAD_COMMAND = -253
    VERR_IO_CRC = -254
    VERR_IO_BAD_LENGTH = -255
    VERR_IO_SECTOR_NOT_FOUND = -256
    VERR_IO_GEN_FAILURE = -257
    VERR_BROKEN_PIPE = -301
    VERR_NO_DATA = -304
    VERR_TOO_MANY_OPENS = -356
    VERR_SEM_DESTROYED = -363
    VERR_DEADLOCK = -365
    VERR_NET_NO_NETWORK = -405
    VERR_NET_NOT_UNIQUE_NAME = -406
    VERR_NET_IN_PROGRESS = -436
    VERR_NET_ALREADY_IN_PROGRESS = -437
    VERR_NET_NOT_SOCKET = -438
    VERR_NET_DEST_ADDRESS_REQUIRED = -439
    VERR_NET_MSG_SIZE = -440
    VERR_NET_PROTOCOL_TYPE = -441
    VERR_NET_PROTOCOL_NOT_AVAILABLE = -442
    VERR_NET_PROTOCOL_NOT_SUPPORTED = -443
    VERR_NET_SOCKET_TYPE_NOT_SUPPORTED = -444
    VERR_NET_OPERATION_NOT_SUPPORTED = -445
    VERR_NET_PROTOCOL_FAMILY_NOT_SUPPORTED = -446
    VERR_NET_ADDRESS_FAMILY_NOT_SUPPORTED = -447
    VERR_NET_ADDRESS_IN_USE = -448
    VERR_NET_ADDRESS_NOT_AVAILABLE = -449
    VERR_NET_DOWN = -450
    VERR_NET_UNREACHABLE = -451
    VERR_NET_CONNECTION_RESET = -452
    VERR_NET_CONNECTION_ABORTED = -453
    VERR_NET_CONNECTION_RESET_BY_PEER = -454
    VERR_NET_NO_BUFFER_SPACE = -455
    VERR_NET_ALREADY_CONNECTED = -456
    VERR_NET_NOT_CONNECTED = -457
    VERR_NET_SHUTDOWN = -458
    VERR_NET_TOO_MANY_REFERENCES = -459
    VERR_NET_CONNECTION_TIMED_OUT = -460
    VERR_NET_CONNECTION_REFUSED = -461
    VERR_NET_HOST_DOWN = -464
    VERR_NET_HOST_UNREACHABLE = -465
    VERR_NET_PROTOCOL_ERROR = -466
    VERR_BAD_EXE_FORMAT = -608
    VINF_EM_HALT = 1112
    #: PGM: a guest-physical address in no RAM or MMIO range (include/VBox/err.h).
    VERR_PGM_INVALID_GC_PHYSICAL_ADDRESS = -1605
    VERR_HGCM_SERVICE_NOT_FOUND = -2900
    VINF_HGCM_CLIENT_REJECTED = 2901
    VERR_HGCM_INVALID_CMD_ADDRESS = -2902
    VINF_HGCM_ASYNC_EXECUTE = 2903
    VERR_HGCM_INTERNAL = -2904
    VERR_HGCM_INVALID_CLIENT_ID = -2905
    VINF_HGCM_SAVE_STATE = 2906
    VERR_HGCM_SERVICE_EXISTS = -2907
    VERR_HGCM_TOO_MANY_CLIENTS = -2908
    VERR_HGCM_TOO_MANY_CLIENT_CALLS = -2909
    VERR_VBGL_NOT_INITIALIZED = -3300
    VERR_VBGL_INVALID_ADDR = -3301
    VERR_MISMATCH = -22408
    VERR_WRONG_PARAMETER_COUNT = -22415
    VERR_WRONG_PARAMETER_TYPE = -22416
    VERR_INVALID_CLIENT_ID = -22417
    VERR_INCOMPATIBLE_CONFIG = -22420

    @property
    def is_success(self) -> bool:
        """True for VINF_*/VWRN_* codes (value >= 0)."""
        return self.value >= 0

    @property
    def is_failure(self) -> bool:
        """True for VERR_* codes (value < 0)."""
        return self.value < 0


def status_name(code: int) -> str:
    """Return the symbolic name of ``code``, or ``"status <n>"`` when it is not in the table."""
    try:
        return Status(code).name
    except ValueError:
        return f"status {code}"


class RtError(Exception):
    """A failure inside a host service or the runtime, carrying the status to report.

    Raised by ``runtime`` and service internals, caught at the one translation point per tier
    (the service dispatcher), never allowed to reach the device or the user.
    """

    def __init__(self, status: int, message: str = "") -> None:
        self.status = int(status)
        #: What failed, for the trace (``hgcm_service_error``); may be empty.
        self.reason = message
        super().__init__(f"{status_name(self.status)}{': ' + message if message else ''}")


# IPRT RTErrConvertFromErrno on Linux; errnos absent here become VERR_UNRESOLVED_ERROR.
_ERRNO_TO_STATUS: dict[int, Status] = {
    _errno.EPERM: Status.VERR_ACCESS_DENIED,
    _errno.ENOENT: Status.VERR_FILE_NOT_FOUND,
    _errno.ESRCH: Status.VERR_PROCESS_NOT_FOUND,
    _errno.EINTR: Status.VERR_INTERRUPTED,
    _errno.EIO: Status.VERR_DEV_IO_ERROR,
    _errno.ENXIO: Status.VERR_DEV_IO_ERROR,
    _errno.E2BIG: Status.VERR_TOO_MUCH_DATA,
    _errno.ENOEXEC: Status.VERR_BAD_EXE_FORMAT,
    _errno.EBADF: Status.VERR_INVALID_HANDLE,
    _errno.ECHILD: Status.VERR_PROCESS_NOT_FOUND,
    _errno.EAGAIN: Status.VERR_TRY_AGAIN,
    _errno.EWOULDBLOCK: Status.VERR_TRY_AGAIN,
    _errno.ENOMEM: Status.VERR_NO_MEMORY,
    _errno.EACCES: Status.VERR_ACCESS_DENIED,
    _errno.EFAULT: Status.VERR_INVALID_POINTER,
    _errno.EBUSY: Status.VERR_RESOURCE_BUSY,
    _errno.EEXIST: Status.VERR_ALREADY_EXISTS,
    _errno.EXDEV: Status.VERR_NOT_SAME_DEVICE,
    _errno.ENODEV: Status.VERR_NOT_SUPPORTED,
    _errno.ENOTDIR: Status.VERR_PATH_NOT_FOUND,
    _errno.EISDIR: Status.VERR_IS_A_DIRECTORY,
    _errno.EINVAL: Status.VERR_INVALID_PARAMETER,
    _errno.ENFILE: Status.VERR_TOO_MANY_OPEN_FILES,
    _errno.EMFILE: Status.VERR_TOO_MANY_OPEN_FILES,
    _errno.ENOTTY: Status.VERR_INVALID_FUNCTION,
    _errno.ETXTBSY: Status.VERR_SHARING_VIOLATION,
    _errno.EFBIG: Status.VERR_FILE_TOO_BIG,
    _errno.ENOSPC: Status.VERR_DISK_FULL,
    _errno.ESPIPE: Status.VERR_SEEK_ON_DEVICE,
    _errno.EROFS: Status.VERR_WRITE_PROTECT,
    _errno.EPIPE: Status.VERR_BROKEN_PIPE,
    _errno.EDOM: Status.VERR_INVALID_PARAMETER,
    _errno.ERANGE: Status.VERR_OUT_OF_RANGE,
    _errno.EDEADLK: Status.VERR_DEADLOCK,
    _errno.ENAMETOOLONG: Status.VERR_FILENAME_TOO_LONG,
    _errno.ENOLCK: Status.VERR_FILE_LOCK_FAILED,
    _errno.ENOSYS: Status.VERR_NOT_SUPPORTED,
    _errno.ENOTEMPTY: Status.VERR_DIR_NOT_EMPTY,
    _errno.ELOOP: Status.VERR_TOO_MANY_SYMLINKS,
    _errno.ENODATA: Status.VERR_NO_DATA,
    _errno.ENONET: Status.VERR_NET_NO_NETWORK,
    _errno.EPROTO: Status.VERR_NET_PROTOCOL_ERROR,
    _errno.EOVERFLOW: Status.VERR_TOO_MUCH_DATA,
    _errno.ENOTUNIQ: Status.VERR_NET_NOT_UNIQUE_NAME,
    _errno.EBADFD: Status.VERR_INVALID_HANDLE,
    _errno.EILSEQ: Status.VERR_NO_TRANSLATION,
    _errno.ERESTART: Status.VERR_INTERRUPTED,
    _errno.ENOTSOCK: Status.VERR_NET_NOT_SOCKET,
    _errno.EDESTADDRREQ: Status.VERR_NET_DEST_ADDRESS_REQUIRED,
    _errno.EMSGSIZE: Status.VERR_NET_MSG_SIZE,
    _errno.EPROTOTYPE: Status.VERR_NET_PROTOCOL_TYPE,
    _errno.ENOPROTOOPT: Status.VERR_NET_PROTOCOL_NOT_AVAILABLE,
    _errno.EPROTONOSUPPORT: Status.VERR_NET_PROTOCOL_NOT_SUPPORTED,
    _errno.ESOCKTNOSUPPORT: Status.VERR_NET_SOCKET_TYPE_NOT_SUPPORTED,
    _errno.EOPNOTSUPP: Status.VERR_NET_OPERATION_NOT_SUPPORTED,
    _errno.EPFNOSUPPORT: Status.VERR_NET_PROTOCOL_FAMILY_NOT_SUPPORTED,
    _errno.EAFNOSUPPORT: Status.VERR_NET_ADDRESS_FAMILY_NOT_SUPPORTED,
    _errno.EADDRINUSE: Status.VERR_NET_ADDRESS_IN_USE,
    _errno.EADDRNOTAVAIL: Status.VERR_NET_ADDRESS_NOT_AVAILABLE,
    _errno.ENETDOWN: Status.VERR_NET_DOWN,
    _errno.ENETUNREACH: Status.VERR_NET_UNREACHABLE,
    _errno.ENETRESET: Status.VERR_NET_CONNECTION_RESET,
    _errno.ECONNABORTED: Status.VERR_NET_CONNECTION_ABORTED,
    _errno.ECONNRESET: Status.VERR_NET_CONNECTION_RESET_BY_PEER,
    _errno.ENOBUFS: Status.VERR_NET_NO_BUFFER_SPACE,
    _errno.EISCONN: Status.VERR_NET_ALREADY_CONNECTED,
    _errno.ENOTCONN: Status.VERR_NET_NOT_CONNECTED,
    _errno.ESHUTDOWN: Status.VERR_NET_SHUTDOWN,
    _errno.ETOOMANYREFS: Status.VERR_NET_TOO_MANY_REFERENCES,
    _errno.ETIMEDOUT: Status.VERR_TIMEOUT,
    _errno.ECONNREFUSED: Status.VERR_NET_CONNECTION_REFUSED,
    _errno.EHOSTDOWN: Status.VERR_NET_HOST_DOWN,
    _errno.EHOSTUNREACH: Status.VERR_NET_HOST_UNREACHABLE,
    _errno.EALREADY: Status.VERR_NET_ALREADY_IN_PROGRESS,
    _errno.EINPROGRESS: Status.VERR_NET_IN_PROGRESS,
    _errno.ESTALE: Status.VERR_STALE_FILE_HANDLE,
    _errno.EDQUOT: Status.VERR_DISK_FULL,
    _errno.ENOMEDIUM: Status.VERR_MEDIA_NOT_PRESENT,
    _errno.EMEDIUMTYPE: Status.VERR_MEDIA_NOT_RECOGNIZED,
}


def status_from_errno(err: int) -> Status:
    """Convert a host errno into the status VirtualBox reports for it (0 -> VINF_SUCCESS)."""
    if err == 0:
        return Status.VINF_SUCCESS
    return _ERRNO_TO_STATUS.get(err, Status.VERR_UNRESOLVED_ERROR)


def status_from_oserror(exc: OSError) -> Status:
    """Convert an OSError raised by a host file operation into a status."""
    return status_from_errno(exc.errno or 0) if exc.errno else Status.VERR_UNRESOLVED_ERROR
