"""Confined host file API in IPRT terms (our IPRT for the Shared Folders service).

Every operation is relative to a ``HostRoot``: a share's host directory opened once with
O_PATH.  Resolution beneath it is kernel-enforced with ``openat2`` (RESOLVE_BENEATH |
RESOLVE_NO_MAGICLINKS) when the kernel has it, else by a manual walk that opens one component
at a time with O_NOFOLLOW and splices in-root symlink targets itself.  Either way host
symlinks are followed only while they stay beneath the root; anything that would leave it
raises ``RtError(VERR_ACCESS_DENIED)`` (project policy) and touches nothing outside.

The final component is handled per operation: opens follow it (confined), name operations
(mkdir, unlink, rmdir, rename, symlink, readlink) act on the name itself in its parent
directory fd.  A guest path ending in its delimiter reaches open, unlink, rmdir, lstat and
rename as "name/", as VirtualBox's host path does, so the kernel gives its own answers
(ENOTDIR for a non-directory, a final symlink followed by lstat).  Open files and
directories keep real fds.  Every failure is an RtError with the IPRT status; errno is
translated here and nowhere else in the service stack.  All host
syscalls of the service go through this module, which is where fault injection hooks in.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat as st_mod
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal

from hgcmlab.runtime.fsmode import RtFs
from hgcmlab.runtime.paths import PATH_MAX, GuestPath
from hgcmlab.runtime.status import RtError, Status, status_from_errno


_WRITE_BITS = 0o222
_SYS_OPENAT2 = 437
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_MAX_SYMLINK_HOPS = 40
_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_O_DIR_NOFOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _openat2_raw(dirfd: int, path: bytes, flags: int, mode: int, resolve: int) -> int:
    """openat2(2) through libc's syscall(); the new fd, or OSError with the errno."""
    how = struct.pack("<QQQ", flags, mode, resolve)
    res = _libc.syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dirfd), ctypes.c_char_p(path),
                        ctypes.c_char_p(how), ctypes.c_size_t(24))
    if res < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(res)


#: Every host syscall this module makes, in one place.  Code below calls ``_sys.NAME``;
#: ``hgcmlab.runtime.faults`` swaps entries for failing or short-changing wrappers in tests, and
#: when nothing is injected each entry is the plain ``os`` function (no extra cost).
SYSCALLS: dict[str, Callable[..., Any]] = {
    name: getattr(os, name) for name in (
        "close", "copy_file_range", "dup", "fchmod", "fstat", "fstatvfs", "fsync", "ftruncate",
        "listdir", "lseek", "mkdir", "open", "pread", "preadv", "pwrite", "readlink", "rename", "rmdir",
        "sendfile", "set_blocking", "stat", "symlink", "unlink", "utime", "write")
}
SYSCALLS["openat2"] = _openat2_raw
SYSCALLS["fcntl"] = fcntl.fcntl


class _Syscalls:
    """Attribute view of ``SYSCALLS`` (``_sys.pread(...)``), always current."""

    # __getattribute__, not __getattr__: the latter runs only after the ordinary lookup has
    # failed and raised, which cost about 1.5 us per syscall (one per READ/WRITE call).
    # Other names (``__class__``, ...) take the ordinary lookup.
    def __getattribute__(self, name: str) -> Any:
        try:
            return SYSCALLS[name]
        except KeyError:
            return object.__getattribute__(self, name)


_sys = _Syscalls()
#: Retries of an I/O syscall that reported EINTR (Python retries real ones itself, PEP 475).
EINTR_RETRIES = 16


def _io(call: Callable[..., Any], *args: Any) -> Any:
    """Run an I/O syscall, retrying EINTR a bounded number of times."""
    for _ in range(EINTR_RETRIES):
        try:
            return call(*args)
        except InterruptedError:
            continue
    return call(*args)


@dataclass(frozen=True)
class ObjInfo:
    """RTFSOBJINFO with the UNIX additional attributes, as IPRT fills it on Linux."""

    size: int
    allocated: int
    access_ns: int
    modification_ns: int
    change_ns: int
    birth_ns: int
    mode: int
    uid: int
    gid: int
    nlink: int
    dev: int
    ino: int
    rdev: int
    #: False for IPRT's dummy info (rtDirSetDummyInfo): enmAdditional is NOTHING and the
    #: UNIX attribute fields are all zero.
    unix_attrs: bool = True


def obj_info(st: os.stat_result, name: bytes | None = None) -> ObjInfo:
    """Convert a stat result the way IPRT does (rtFsConvertStatToObjInfo).

    DOS bits: READONLY when no write bit is set, DIRECTORY for directories, NT_NORMAL when
    neither is set, then HIDDEN when ``name`` (given only for path-based queries and
    directory entries) starts with '.' and is not "." or ".." (fs.cpp:rtFsModeFromUnix
    checks the name last, so a hidden plain file carries NT_NORMAL and HIDDEN).  Linux has
    no birth time, so it repeats the change time.
    """
    mode = st.st_mode & 0xFFFF
    if not mode & _WRITE_BITS:
        mode |= RtFs.DOS_READONLY
    if st_mod.S_ISDIR(st.st_mode):
        mode |= RtFs.DOS_DIRECTORY
    if not mode & RtFs.DOS_MASK:
        mode |= RtFs.DOS_NT_NORMAL
    if name is not None and name.startswith(b".") and name not in (b".", b".."):
        mode |= RtFs.DOS_HIDDEN
    return ObjInfo(
        size=st.st_size,
        allocated=st.st_blocks * 512,
        access_ns=st.st_atime_ns,
        modification_ns=st.st_mtime_ns,
        change_ns=st.st_ctime_ns,
        birth_ns=st.st_ctime_ns,
        mode=mode,
        uid=st.st_uid,
        gid=st.st_gid,
        nlink=st.st_nlink,
        dev=st.st_dev,
        ino=st.st_ino,
        rdev=st.st_rdev,
    )


@dataclass(frozen=True)
class DirEntry:
    """One directory entry as a listing returns it: name, info, and whether the info is real.

    ``has_info`` False means the entry's info could not be read (vanished, dangling or
    escaping link, ...) and ``info`` is IPRT's dummy: zero sizes and times, the type from the
    entry itself, DOS NT_NORMAL (or DIRECTORY for directories).  VirtualBox reports such an
    entry with VWRN_NO_DIRENT_INFO.
    """

    name: bytes
    info: ObjInfo
    has_info: bool


def _dummy_info(st_mode: int) -> ObjInfo:
    """IPRT's placeholder for an entry it cannot stat (dir-posix.cpp:rtDirSetDummyInfo):
    zero sizes and times, the entry's type with DOS NT_NORMAL (DIRECTORY for directories,
    nothing but NT_NORMAL for an unknown type), enmAdditional NOTHING, all UNIX fields 0."""
    ftype = st_mode & RtFs.TYPE_MASK
    dos = RtFs.DOS_DIRECTORY if ftype == RtFs.TYPE_DIRECTORY else RtFs.DOS_NT_NORMAL
    return ObjInfo(size=0, allocated=0, access_ns=0, modification_ns=0, change_ns=0,
                   birth_ns=0, mode=int(ftype | dos), uid=0, gid=0, nlink=0, dev=0, ino=0,
                   rdev=0, unix_attrs=False)


# --- IPRT mode normalisation (Runtime/r3/fs.cpp), used by INFORMATION SET ----------------

_DOS_SHIFT = 16
_EXEC_BITS = 0o111
_READ_BITS = 0o444


def _is_dir_type(fmode: int) -> bool:
    return fmode & RtFs.TYPE_MASK == RtFs.TYPE_DIRECTORY


def fs_mode_from_dos(fmode: int, ftype: int) -> int:
    """rtFsModeFromDos without a name (the only way INFORMATION SET reaches it): Unix bits
    derived from the DOS attributes.  Everything is readable; a DOS directory becomes a
    directory (and executable), anything else a file; NT_REPARSE_POINT turns the type into
    a symlink (the caller always passes the symlink reparse tag); writable unless READONLY
    is set without DIRECTORY (read-only is ignored on directories)."""
    fmode &= ~((1 << _DOS_SHIFT) - 1) & 0xFFFFFFFF
    if ftype == RtFs.TYPE_DIRECTORY:
        fmode |= RtFs.DOS_DIRECTORY
    fmode |= _READ_BITS
    if fmode & RtFs.DOS_DIRECTORY:
        fmode |= RtFs.TYPE_DIRECTORY | _EXEC_BITS
    else:
        fmode |= RtFs.TYPE_FILE
    if fmode & RtFs.DOS_NT_REPARSE_POINT:
        fmode = (fmode & ~RtFs.TYPE_MASK) | RtFs.TYPE_SYMLINK
    if fmode & (RtFs.DOS_DIRECTORY | RtFs.DOS_READONLY) != RtFs.DOS_READONLY:
        fmode |= _WRITE_BITS
    return int(fmode)


def fs_mode_from_unix(fmode: int) -> int:
    """rtFsModeFromUnix without a name: DOS attributes derived from the Unix bits.  The type
    argument IPRT takes is never applied (its test ``!(fType & MASK) && fType`` is always
    false), so a mode without type bits stays without them."""
    fmode &= RtFs.UNIX_MASK
    if not fmode & _WRITE_BITS:
        fmode |= RtFs.DOS_READONLY
    if _is_dir_type(fmode):
        fmode |= RtFs.DOS_DIRECTORY
    if not fmode & RtFs.DOS_MASK:
        fmode |= RtFs.DOS_NT_NORMAL
    return int(fmode)


def fs_mode_normalize(fmode: int, ftype: int) -> int:
    """rtFsModeNormalize: complete whichever half (Unix or DOS) of ``fmode`` is missing."""
    if not fmode & RtFs.UNIX_MASK:
        return fs_mode_from_dos(fmode, ftype)
    if not fmode & RtFs.DOS_MASK:
        return fs_mode_from_unix(fmode)
    if not fmode & RtFs.TYPE_MASK:
        return int(fmode | (RtFs.TYPE_DIRECTORY if fmode & RtFs.DOS_DIRECTORY else RtFs.TYPE_FILE))
    if _is_dir_type(fmode):
        return int(fmode | RtFs.DOS_DIRECTORY)
    return fmode


def fs_mode_is_valid_permissions(fmode: int) -> bool:
    """rtFsModeIsValidPermissions: a directory type exactly when DOS DIRECTORY is set."""
    return _is_dir_type(fmode) == bool(fmode & RtFs.DOS_DIRECTORY)


def fs_mode_is_valid(fmode: int) -> bool:
    """rtFsModeIsValid: valid permissions and some type bits."""
    return fs_mode_is_valid_permissions(fmode) and bool(fmode & RtFs.TYPE_MASK)


def _micro_truncated_ns(ns: int) -> int:
    """A time as futimes/lutimes store it: IPRT's RTTimeSpecGetTimeval keeps whole
    microseconds, truncated toward zero (C division), so sub-microsecond digits are lost."""
    micro = abs(ns) // 1000
    return (micro if ns >= 0 else -micro) * 1000


class Access(IntEnum):
    """Requested data access of a file open (RTFILE_O_READ / WRITE / READWRITE)."""

    READ = os.O_RDONLY
    WRITE = os.O_WRONLY
    READWRITE = os.O_RDWR


class Disposition(IntEnum):
    """RTFILE_O_* open actions."""

    OPEN = 1            # existing only
    OPEN_CREATE = 2     # existing, or create
    CREATE = 3          # create only (exclusive)
    CREATE_REPLACE = 4  # create, or truncate existing
    TRUNCATE = 5        # existing only, truncated


class OpenAction(IntEnum):
    """What an open did (RTFILEACTION_*)."""

    OPENED = 1
    CREATED = 2
    REPLACED = 3


#: Which source type a rename demands (RTFS_TYPE_DIRECTORY, RTFS_TYPE_FILE, or any).
RenameType = Literal["dir", "file"] | None


def _same_object(a: os.stat_result, b: os.stat_result) -> bool:
    """rtPathSame's test: same device, inode and file type."""
    return (a.st_dev, a.st_ino, st_mod.S_IFMT(a.st_mode)) == \
        (b.st_dev, b.st_ino, st_mod.S_IFMT(b.st_mode))


def _raise(exc: OSError) -> RtError:
    return RtError(status_from_errno(exc.errno or 0) if exc.errno else Status.VERR_UNRESOLVED_ERROR,
                   str(exc))


def openat2_available() -> bool:
    """True when the running kernel accepts openat2 with RESOLVE_BENEATH."""
    fd = os.open("/", _O_PATH_DIR)
    try:
        os.close(_openat2_raw(fd, b".", os.O_PATH | os.O_CLOEXEC, 0, _RESOLVE_BENEATH))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


_COPY_CHUNK = 1 << 24
#: Exclusive-create-then-open rounds of RTFileOpenEx before it opens with plain O_CREAT.
_CREATE_TRIES = 64
_NO_FAST_COPY = frozenset({errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP,
                           errno.ENOTSUP})


def _copy_step(method: int, src: int, dst: int, offset: int) -> int:
    """One chunk at ``offset`` of both files with copy method 0, 1 or 2; bytes moved."""
    if method == 0:
        return _sys.copy_file_range(src, dst, _COPY_CHUNK, offset, offset)
    if method == 1:
        _sys.lseek(dst, offset, os.SEEK_SET)  # sendfile writes at the output's position
        return _sys.sendfile(dst, src, offset, _COPY_CHUNK)
    data = _sys.pread(src, 1 << 20, offset)
    return _sys.pwrite(dst, data, offset) if data else 0


class HostFile:
    """An open host file: a real fd plus whether writes go to the end (O_APPEND)."""

    def __init__(self, fd: int, append: bool) -> None:
        self.fd = fd
        self.append = append

    def read_at(self, offset: int, count: int) -> bytes:
        """Positional read; may return fewer bytes (0 at or after EOF)."""
        if offset >= 1 << 63:
            raise RtError(Status.VERR_INVALID_PARAMETER, "negative offset")
        try:
            return _io(_sys.pread, self.fd, count, offset)
        except OSError as exc:
            raise _raise(exc) from None

    def read_into(self, offset: int, target: memoryview) -> int:
        """Positional read straight into ``target`` (no intermediate bytes object); the
        count read, which may be short (0 at or after EOF)."""
        if offset >= 1 << 63:
            raise RtError(Status.VERR_INVALID_PARAMETER, "negative offset")
        try:
            return int(_io(_sys.preadv, self.fd, [target], offset))
        except OSError as exc:
            raise _raise(exc) from None

    def write_at(self, offset: int, data: bytes | bytearray | memoryview) -> int:
        """Write ``data`` at ``offset`` (at the end for append handles); bytes written.

        Short writes are continued until everything is written.  A failure after some bytes
        went out returns that count (those bytes are in the file); a failure before any
        raises the status (ENOSPC -> VERR_DISK_FULL, EIO -> VERR_DEV_IO_ERROR, ...).
        """
        if offset >= 1 << 63:
            raise RtError(Status.VERR_INVALID_PARAMETER, "negative offset")
        done = 0
        view = memoryview(data)
        while done < len(data):
            try:
                if self.append:
                    step = _io(_sys.write, self.fd, view[done:])
                else:
                    step = _io(_sys.pwrite, self.fd, view[done:], offset + done)
            except OSError as exc:
                if done:
                    return done
                raise _raise(exc) from None
            if step <= 0:
                break
            done += step
        return done

    def size(self) -> int:
        """Current file size."""
        return self.stat().st_size

    def stat(self) -> os.stat_result:
        """fstat of the open file."""
        try:
            return _sys.fstat(self.fd)
        except OSError as exc:
            raise _raise(exc) from None

    def info(self) -> ObjInfo:
        """Object info of the open file (no name: handle queries never set DOS_HIDDEN)."""
        return obj_info(self.stat())

    def access(self) -> Access:
        """The data access the file was opened with (the fd's O_ACCMODE), so a saved
        handle can be re-opened the same way."""
        try:
            return Access(_sys.fcntl(self.fd, fcntl.F_GETFL) & os.O_ACCMODE)
        except OSError as exc:
            raise _raise(exc) from None

    def flush(self) -> None:
        """fsync the file."""
        try:
            _io(_sys.fsync, self.fd)
        except OSError as exc:
            raise _raise(exc) from None

    def set_size(self, size: int) -> None:
        """Truncate or extend to ``size`` bytes."""
        if size >= 1 << 63:
            raise RtError(Status.VERR_INVALID_PARAMETER, "negative size")
        try:
            _io(_sys.ftruncate, self.fd, size)
        except OSError as exc:
            raise _raise(exc) from None

    def set_mode(self, mode: int) -> None:
        """chmod the open object to the permission bits of ``mode`` (fchmod: never follows
        anything; type bits are ignored, as the kernel ignores them)."""
        try:
            _sys.fchmod(self.fd, mode & 0o7777)
        except OSError as exc:
            raise _raise(exc) from None

    def set_times(self, access_ns: int | None, modification_ns: int | None) -> None:
        """Set access/modification times as IPRT does on Linux (RTFileSetTimes with futimes,
        RTDirSetTimes with lutimes): None leaves a time as it is; with neither given no
        syscall is made at all.  Both times written are whole microseconds truncated toward
        zero, the unchanged one included (IPRT reads it back and converts it too)."""
        if access_ns is None and modification_ns is None:
            return
        try:
            if access_ns is None or modification_ns is None:
                cur = _sys.fstat(self.fd)
                access_ns = cur.st_atime_ns if access_ns is None else access_ns
                modification_ns = cur.st_mtime_ns if modification_ns is None else modification_ns
            _sys.utime(self.fd, ns=(_micro_truncated_ns(access_ns),
                                  _micro_truncated_ns(modification_ns)))
        except OSError as exc:
            raise _raise(exc) from None

    def copy_to(self, dst: HostFile) -> int:
        """Copy this whole file into ``dst``, both from offset 0, fd to fd; bytes copied.

        copy_file_range first (in-kernel, reflinks where the file system can); where the
        kernel refuses it for this pair (other file system, unsupported) sendfile, and
        where that is refused too plain pread/pwrite.  Neither fd's position is relied on.
        """
        offset, method = 0, 0
        while True:
            try:
                done = _copy_step(method, self.fd, dst.fd, offset)
            except OSError as exc:
                if exc.errno in _NO_FAST_COPY and method < 2:
                    method += 1
                    continue
                raise _raise(exc) from None
            if done == 0:
                return offset
            offset += done

    def close(self) -> None:
        """Close the fd (once)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            try:
                _sys.close(fd)
            except OSError as exc:
                raise _raise(exc) from None


class HostDir(HostFile):
    """An open host directory (O_RDONLY | O_DIRECTORY fd) and the path it was opened by."""

    def __init__(self, fd: int, path: GuestPath) -> None:
        super().__init__(fd, append=False)
        self.path = path

    def names(self) -> list[bytes]:
        """Entry names, "." and ".." first, the rest sorted bytewise for determinism."""
        try:
            listed = _sys.listdir(self.fd)
        except OSError as exc:
            raise _raise(exc) from None
        return [b".", b".."] + sorted(os.fsencode(n) for n in listed)


class HostRoot:
    """A share's host directory, opened once; all operations resolve beneath it.

    ``use_openat2`` None picks openat2 when the kernel has it; tests force either path.
    """

    def __init__(self, host_path: str | bytes, *, use_openat2: bool | None = None) -> None:
        try:
            self._fd = _sys.open(host_path, _O_PATH_DIR)
        except OSError as exc:
            raise _raise(exc) from None
        root_st = _sys.fstat(self._fd)
        self.dev_ino = (root_st.st_dev, root_st.st_ino)
        self.use_openat2 = openat2_available() if use_openat2 is None else use_openat2
        # VirtualBox's host path of the share root is the folder's absolute path without a
        # trailing slash (mappings.cpp:vbsfMappingsAdd via vbsfPathAbs, RTPathAbsEx), so a
        # path query of the root sees the folder's own name (None for the host's "/").
        self.root_name: bytes | None = os.path.basename(os.path.abspath(os.fsencode(host_path))) or None

    def locate(self, fobj: HostFile) -> GuestPath | None:
        """Where the open ``fobj`` is now beneath the root (it may have been renamed since
        it was opened), from the kernel's record of both fds' paths (/proc/self/fd); None
        when it is not beneath the root any more (moved out, deleted) or unknown."""
        try:
            root = _sys.readlink(f"/proc/self/fd/{self._fd}".encode())
            where = _sys.readlink(f"/proc/self/fd/{fobj.fd}".encode())
        except OSError:
            return None
        if where == root:
            return GuestPath(())
        prefix = root.rstrip(b"/") + b"/"
        if not where.startswith(prefix) or where.endswith(b" (deleted)"):
            return None
        return GuestPath(tuple(where[len(prefix):].split(b"/")))

    def close(self) -> None:
        """Release the root fd."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            _sys.close(fd)

    # --- resolution -------------------------------------------------------------------

    def _openat2(self, rel: bytes, flags: int, mode: int = 0) -> int:
        for _ in range(64):
            try:
                return _sys.openat2(self._fd, rel, flags | os.O_CLOEXEC,
                                    mode if flags & os.O_CREAT else 0,
                                    _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
            except OSError as exc:
                err = exc.errno or 0
            if err in (errno.EAGAIN, errno.EINTR):
                continue  # the kernel saw a possible rename race; retry (bounded)
            if err == errno.EXDEV:
                raise RtError(Status.VERR_ACCESS_DENIED, "path resolves outside the share")
            raise RtError(status_from_errno(err), f"openat2 {rel!r}")
        raise RtError(Status.VERR_TRY_AGAIN, "openat2 kept racing")

    def _walk(self, components: tuple[bytes, ...], follow_final: bool) -> tuple[int, bytes]:
        """Manual confined walk: (O_PATH fd of the final parent directory, final name).

        Symlinks before the final component (and the final one when ``follow_final``) are
        read and spliced in; absolute targets and ".." above the root are escapes.  The
        final name may not exist (for creation).  The caller closes the returned fd.
        """
        stack = [_sys.dup(self._fd)]
        pending = list(components)
        hops = 0
        try:
            while pending:
                name = pending.pop(0)
                if name in (b"", b"."):
                    continue
                if name == b"..":
                    if len(stack) == 1:
                        raise RtError(Status.VERR_ACCESS_DENIED, "symlink leaves the share")
                    _sys.close(stack.pop())
                    continue
                is_last = not pending
                try:
                    st = _sys.stat(name, dir_fd=stack[-1], follow_symlinks=False)
                except FileNotFoundError:
                    if is_last:
                        return stack.pop(), name
                    raise
                if st_mod.S_ISLNK(st.st_mode) and (follow_final or not is_last):
                    hops += 1
                    if hops > _MAX_SYMLINK_HOPS:
                        raise RtError(Status.VERR_TOO_MANY_SYMLINKS, "symlink loop")
                    target = _sys.readlink(name, dir_fd=stack[-1])
                    if target.startswith(b"/"):
                        raise RtError(Status.VERR_ACCESS_DENIED, "absolute symlink target")
                    pending = target.split(b"/") + pending
                    continue
                if is_last:
                    return stack.pop(), name
                stack.append(_sys.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                     dir_fd=stack[-1]))
            return stack.pop(), b"."
        except OSError as exc:
            raise _raise(exc) from None
        finally:
            for fd in stack:
                _sys.close(fd)

    @contextmanager
    def _parent(self, path: GuestPath, follow_final: bool = False) -> Iterator[tuple[int, bytes]]:
        """Yield (parent dir fd, final name) for a name operation; the fd is closed after."""
        if self.use_openat2 and not follow_final:
            if path.is_root:
                pfd, name = _sys.dup(self._fd), b"."
            else:
                pfd, name = self._openat2(path.parent().host_relpath(), _O_PATH_DIR), path.name
        else:
            pfd, name = self._walk(path.components, follow_final)
        try:
            yield pfd, name
        finally:
            _sys.close(pfd)

    def _open(self, path: GuestPath, flags: int, mode: int = 0, follow: bool = True,
              slash: bool = False) -> int:
        """Open ``path`` beneath the root with ``flags`` (O_CLOEXEC added).

        ``slash`` hands the final name to the kernel with a trailing '/', as VirtualBox's
        host path keeps the guest's trailing delimiter: the kernel then refuses a
        non-directory (ENOTDIR) and any O_CREAT (EISDIR).
        """
        tail = b"/" if slash and not path.is_root else b""
        if self.use_openat2:
            return self._openat2(path.host_relpath() + tail, flags | (0 if follow else os.O_NOFOLLOW), mode)
        # O_EXCL never follows a final symlink (the kernel reports EEXIST); match that.
        follow = follow and not (flags & os.O_CREAT and flags & os.O_EXCL)
        with self._parent(path, follow_final=follow) as (pfd, name):
            try:
                return _sys.open(name + tail if name != b"." else name,
                                 flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=pfd)
            except OSError as exc:
                raise _raise(exc) from None

    # --- queries ----------------------------------------------------------------------

    def stat(self, path: GuestPath, follow: bool, slash: bool = False) -> os.stat_result:
        """stat (``follow``) or lstat of ``path``, confined.

        ``slash`` stats the name with a trailing '/', as IPRT does when VirtualBox's host
        path kept the guest's trailing delimiter: a non-directory then answers
        VERR_PATH_NOT_FOUND (ENOTDIR) and a final symlink is followed even by lstat.
        """
        fd = self._open(path, os.O_PATH, follow=follow or slash, slash=slash)
        try:
            return _sys.fstat(fd)
        except OSError as exc:
            raise _raise(exc) from None
        finally:
            _sys.close(fd)

    def query_info(self, path: GuestPath, follow: bool, named: bool = True) -> ObjInfo:
        """Object info of ``path`` (RTPathQueryInfoEx with FOLLOW_LINK or ON_LINK).

        A path the guest ended with its delimiter is queried with the trailing slash (see
        ``stat``).  The final name decides DOS_HIDDEN, as IPRT's RTPathFilename does: for
        the root it is the share folder's own name (``root_name``); there is none when the
        path ends with the guest's delimiter or ``named`` is False (IPRT queried a path it
        ended with a slash itself, e.g. RTDirQueryInfo).
        """
        slash = path.trailing_delimiter
        name = None
        if named and not slash:
            name = self.root_name if path.is_root else path.name
        return self.describe(self.stat(path, follow, slash), name)

    def describe(self, st: os.stat_result, name: bytes | None = None) -> ObjInfo:
        """The object info the guest is shown for ``st`` (``obj_info``).  Every path and
        listing query of this root goes through here; a subclass may present it differently
        (hgcmlab.services.sharedfolders.reproducible)."""
        return obj_info(st, name)

    def volume_serial(self) -> int:
        """The volume serial the guest is shown: the root's host device number, 32 bits."""
        return self.dev_ino[0] & 0xFFFFFFFF

    def is_root(self, st: os.stat_result) -> bool:
        """True when ``st`` describes the share root directory."""
        return (st.st_dev, st.st_ino) == self.dev_ino

    def statvfs(self) -> os.statvfs_result:
        """statvfs of the file system holding the root."""
        try:
            return _sys.fstatvfs(self._fd)
        except OSError as exc:
            raise _raise(exc) from None

    def dir_entry(self, d: HostDir, name: bytes, follow: bool) -> DirEntry:
        """Info of entry ``name`` of the listed directory ``d`` (RTDirReadEx); never raises.

        Plain entries are lstat'ed in ``d`` itself.  A symlink is followed (``follow``) only
        through the confined resolver, so a link leaving the share yields dummy info, never
        the outside object's.  "." is ``d``; ".." is its parent, except that the share
        root's ".." is the root itself: the directory above the share is never described.
        """
        try:
            if name in (b".", b".."):
                st = _sys.fstat(d.fd)
                if name == b".." and not self.is_root(st):
                    st = _sys.stat(b"..", dir_fd=d.fd)
                return DirEntry(name, self.describe(st, name), True)
            st = _sys.stat(name, dir_fd=d.fd, follow_symlinks=False)
        except OSError:
            return DirEntry(name, _dummy_info(0), False)
        if follow and st_mod.S_ISLNK(st.st_mode):
            try:
                return DirEntry(name, self.query_info(d.path.child(name), follow=True), True)
            except RtError:
                return DirEntry(name, _dummy_info(st.st_mode), False)
        return DirEntry(name, self.describe(st, name), True)

    def dir_depth(self, path: GuestPath) -> int:
        """How many levels beneath the root the directory ``path`` really is.

        ``path`` is resolved (confined, links followed), then its ".." chain is climbed to
        the root; lexical depth would be wrong when a symlink leads to the directory.  A
        chain that reaches "/" without meeting the root raises VERR_ACCESS_DENIED.
        """
        fd = self._open(path, os.O_PATH | os.O_DIRECTORY)
        try:
            for depth in range(PATH_MAX):
                st = _sys.fstat(fd)
                if self.is_root(st):
                    return depth
                up = _sys.open(b"..", _O_PATH_DIR, dir_fd=fd)
                _sys.close(fd)
                fd = up
                if (st.st_dev, st.st_ino) == self._dev_ino_of(fd):
                    break  # ".." of "/" is "/" itself
        except OSError as exc:
            raise _raise(exc) from None
        finally:
            _sys.close(fd)
        raise RtError(Status.VERR_ACCESS_DENIED, "directory is not beneath the share root")

    @staticmethod
    def _dev_ino_of(fd: int) -> tuple[int, int]:
        st = _sys.fstat(fd)
        return st.st_dev, st.st_ino

    # --- files and directories --------------------------------------------------------

    def open_file(self, path: GuestPath, access: Access, disposition: Disposition,
                  mode: int = 0o600, append: bool = False,
                  dirs: bool = False) -> tuple[HostFile, OpenAction]:
        """Open or create a regular file (RTFileOpenEx) and report what happened.

        Only regular files are opened (and, with ``dirs``, directories, which the kernel
        opens only for reading without O_CREAT, as RTFileOpenEx does): a directory
        otherwise gives VERR_IS_A_DIRECTORY, any other type (FIFO, device, socket)
        VERR_ACCESS_DENIED, so a guest cannot block the host or reach a device through a
        share.  A path the guest ended with its delimiter is opened
        with the trailing slash, as VirtualBox's host does: a creating open then fails with
        VERR_IS_A_DIRECTORY, opening an existing non-directory with VERR_PATH_NOT_FOUND.
        """
        slash = path.trailing_delimiter
        base = int(access) | os.O_NOCTTY | os.O_NONBLOCK | (os.O_APPEND if append else 0)
        mode &= 0o777
        creating = disposition in (Disposition.OPEN_CREATE, Disposition.CREATE,
                                   Disposition.CREATE_REPLACE)
        trunc = os.O_TRUNC if disposition in (Disposition.CREATE_REPLACE, Disposition.TRUNCATE) else 0
        if disposition is Disposition.CREATE:
            return self._checked(self._open(path, base | os.O_CREAT | os.O_EXCL, mode, slash=slash),
                                 append, dirs), OpenAction.CREATED
        if not creating:
            fd = self._open(path, base | trunc, slash=slash)
            return self._checked(fd, append, dirs), OpenAction.REPLACED if trunc else OpenAction.OPENED
        # RTFileOpenEx's OPEN_CREATE / CREATE_REPLACE: exclusive creation first, then an open
        # of what exists; a name that exists but does not resolve (a dangling link, or a file
        # removed in between) makes it try again, 64 times, and then open with O_CREAT (which
        # follows the link, confined) and report "opened".
        replaced = OpenAction.REPLACED if trunc else OpenAction.OPENED
        for _ in range(_CREATE_TRIES):
            try:
                return self._checked(self._open(path, base | os.O_CREAT | os.O_EXCL | trunc, mode,
                                                slash=slash), append, dirs), OpenAction.CREATED
            except RtError as err:
                if err.status != Status.VERR_ALREADY_EXISTS:
                    raise
            try:
                return self._checked(self._open(path, base | trunc, slash=slash), append, dirs), replaced
            except RtError as err:
                if err.status != Status.VERR_FILE_NOT_FOUND:
                    raise
        return self._checked(self._open(path, base | os.O_CREAT | trunc, mode, slash=slash),
                             append, dirs), OpenAction.OPENED

    @staticmethod
    def _checked(fd: int, append: bool, dirs: bool = False) -> HostFile:
        """Wrap a freshly opened fd after checking its type (SF6); the fd is closed on any
        failure."""
        try:
            st = _sys.fstat(fd)
            if st_mod.S_ISREG(st.st_mode) or dirs and st_mod.S_ISDIR(st.st_mode):
                _sys.set_blocking(fd, True)
                return HostFile(fd, append)
        except OSError as exc:
            _sys.close(fd)
            raise _raise(exc) from None
        _sys.close(fd)
        if st_mod.S_ISDIR(st.st_mode):
            raise RtError(Status.VERR_IS_A_DIRECTORY, "is a directory")
        raise RtError(Status.VERR_ACCESS_DENIED, "not a regular file")

    def mkdir(self, path: GuestPath, mode: int = 0o777) -> None:
        """Create a directory (the final component is never followed)."""
        with self._parent(path) as (pfd, name):
            try:
                _sys.mkdir(name, mode & 0o777, dir_fd=pfd)
            except OSError as exc:
                raise _raise(exc) from None

    def open_dir(self, path: GuestPath) -> HostDir:
        """Open a directory for listing (follows in-root links)."""
        fd = self._open(path, os.O_RDONLY | os.O_DIRECTORY)
        return HostDir(fd, path)

    @staticmethod
    def _final(path: GuestPath, name: bytes) -> bytes:
        """The final name as the host syscall gets it: with the guest's trailing delimiter
        kept as '/', as VirtualBox's host path keeps it (vbsfPathGuestToHost, RTPathAbsEx)."""
        return name + b"/" if path.trailing_delimiter and name != b"." else name

    def unlink(self, path: GuestPath) -> None:
        """unlink(2) of the final name, never followed (RTFileDelete).

        The kernel answers: a directory EISDIR (VERR_IS_A_DIRECTORY, also for the share root);
        with the guest's trailing delimiter a non-directory ENOTDIR (VERR_PATH_NOT_FOUND).
        """
        with self._parent(path) as (pfd, name):
            try:
                _sys.unlink(self._final(path, name), dir_fd=pfd)
            except OSError as exc:
                raise _raise(exc) from None

    def delete_symlink(self, path: GuestPath) -> None:
        """RTSymlinkDelete: lstat the path (a trailing delimiter makes it follow the link,
        confined here), refuse anything but a symlink (VERR_NOT_SYMLINK), then unlink."""
        st = self.lstat_path(path)
        if st is None:
            raise RtError(Status.VERR_FILE_NOT_FOUND, "missing")
        if not st_mod.S_ISLNK(st.st_mode):
            raise RtError(Status.VERR_NOT_SYMLINK, "not a symlink")
        self.unlink(path)

    def rmdir(self, path: GuestPath) -> None:
        """rmdir(2) of the final name, never followed, with RTDirRemove's answers.

        ENOTDIR (a symlink or a non-directory named) is refined by a stat that follows
        links (confined): a non-directory gives VERR_NOT_A_DIRECTORY, anything else
        (directory behind a link, dangling link, nothing) VERR_PATH_NOT_FOUND.  The share
        root is never removed: VirtualBox's rmdir of the root path answers ENOTEMPTY when
        it has entries (so do we) and removes the share's own directory when it is empty,
        a change outside the share that we refuse with VERR_ACCESS_DENIED (deviation SF19,
        which also lists the answers from outside the root that we do not model).
        """
        if path.is_root:
            if self._root_has_entries():
                raise RtError(Status.VERR_DIR_NOT_EMPTY, "the share root is not empty")
            raise RtError(Status.VERR_ACCESS_DENIED, "the share root cannot be removed")
        with self._parent(path) as (pfd, name):
            try:
                _sys.rmdir(self._final(path, name), dir_fd=pfd)
                return
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    raise RtError(Status.VERR_DIR_NOT_EMPTY, str(exc)) from None
                if exc.errno != errno.ENOTDIR:
                    raise _raise(exc) from None
        try:
            st = self.stat(GuestPath(path.components), follow=True)
        except RtError:
            raise RtError(Status.VERR_PATH_NOT_FOUND, "not a directory") from None
        if st_mod.S_ISDIR(st.st_mode):
            raise RtError(Status.VERR_PATH_NOT_FOUND, "a link to a directory")
        raise RtError(Status.VERR_NOT_A_DIRECTORY, "not a directory")

    def _root_has_entries(self) -> bool:
        fd = self._open(GuestPath(()), os.O_RDONLY | os.O_DIRECTORY)
        try:
            return bool(_sys.listdir(fd))
        except OSError as exc:
            raise _raise(exc) from None
        finally:
            _sys.close(fd)

    def lstat_at(self, path: GuestPath) -> os.stat_result | None:
        """lstat of ``path``'s final name in its (confined) parent; None when missing."""
        with self._parent(path) as (pfd, name):
            try:
                return _sys.stat(name, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise _raise(exc) from None

    def lstat_path(self, path: GuestPath) -> os.stat_result | None:
        """lstat(2) of the path as VirtualBox's host path spells it; None for ENOENT.

        Without a trailing delimiter the final name itself; with one, the kernel follows a
        final symlink and wants a directory (ENOTDIR, VERR_PATH_NOT_FOUND, otherwise): we
        follow it confined.  A missing parent is ENOENT (None) like lstat's.
        """
        try:
            if not path.trailing_delimiter:
                return self.lstat_at(path)
            return self.stat(path, follow=True, slash=True)
        except RtError as err:
            if err.status == Status.VERR_FILE_NOT_FOUND:
                return None
            raise

    def rename(self, src: GuestPath, dst: GuestPath, *, replace: bool,
               want: RenameType = None,
               before: Callable[[os.stat_result], None] | None = None) -> None:
        """Rename like IPRT's rtPathPosixRename (RTPathRename, RTFileRename, RTDirRename).

        1. lstat the source (``lstat_path``): missing -> VERR_FILE_NOT_FOUND; ``want`` "dir":
           a non-directory -> VERR_NOT_A_DIRECTORY; "file": a directory ->
           VERR_IS_A_DIRECTORY; None: any type.
        2. lstat the destination: an existing object other than the source is
           VERR_ALREADY_EXISTS when it is a directory or ``replace`` is off.
        3. ``before(source stat)`` may veto (the caller's policy), then renameat(2) of the
           final names (never followed; trailing delimiters kept).  ENOTDIR/EEXIST with
           ``replace``: same object -> success; a directory destination ->
           VERR_ALREADY_EXISTS; else the destination is unlinked and the rename retried.
           ENOTDIR without ``replace`` -> VERR_ALREADY_EXISTS.
        The share root cannot be named in a renameat of ours; the kernel's answer for it
        is modelled (for a root that is not a mount point): root onto itself succeeds
        (nothing changes), root elsewhere is ENOENT when the destination's directory is
        missing, else EINVAL (VERR_INVALID_PARAMETER: a directory into its own subtree).
        """
        src_st = self.lstat_path(src)
        if src_st is None:
            raise RtError(Status.VERR_FILE_NOT_FOUND, "source missing")
        if want == "dir" and not st_mod.S_ISDIR(src_st.st_mode):
            raise RtError(Status.VERR_NOT_A_DIRECTORY, "source is not a directory")
        if want == "file" and st_mod.S_ISDIR(src_st.st_mode):
            raise RtError(Status.VERR_IS_A_DIRECTORY, "source is a directory")
        dst_st = self.lstat_path(dst)
        if dst_st is not None and not _same_object(src_st, dst_st):
            if st_mod.S_ISDIR(dst_st.st_mode) or not replace:
                raise RtError(Status.VERR_ALREADY_EXISTS, "destination exists")
        if before is not None:
            before(src_st)
        err = self._renameat(src, dst)
        if err == 0:
            return
        if replace and err in (errno.ENOTDIR, errno.EEXIST):
            now_src, now_dst = self._lstat_quiet(src), self._lstat_quiet(dst)
            if now_src is not None and now_dst is not None and _same_object(now_src, now_dst):
                return
            dst_st = self.lstat_path(dst)
            if dst_st is not None and st_mod.S_ISDIR(dst_st.st_mode):
                raise RtError(Status.VERR_ALREADY_EXISTS, "destination is a directory")
            self.unlink(dst)
            err = self._renameat(src, dst)
            if err:
                raise RtError(status_from_errno(err), "rename after unlinking the destination")
            return
        if err == errno.ENOTDIR:
            raise RtError(Status.VERR_ALREADY_EXISTS, "rename: ENOTDIR")
        raise RtError(status_from_errno(err), "rename")

    def _lstat_quiet(self, path: GuestPath) -> os.stat_result | None:
        try:
            return self.lstat_path(path)
        except RtError:
            return None

    def _renameat(self, src: GuestPath, dst: GuestPath) -> int:
        """renameat(2) of the final names; the errno (0 on success)."""
        if src.is_root:
            if dst.is_root:
                return 0
            try:
                self.stat(dst.parent(), follow=True)
            except RtError:
                return errno.ENOENT  # the destination's directory is looked up first
            return errno.EINVAL
        if dst.is_root:
            # Reached only when the source resolves to the root through a symlink named
            # with a trailing delimiter: the kernel refuses a symlink with a slash.
            return errno.ENOTDIR
        with self._parent(src) as (sfd, sname), self._parent(dst) as (dfd, dname):
            try:
                _sys.rename(self._final(src, sname), self._final(dst, dname),
                            src_dir_fd=sfd, dst_dir_fd=dfd)
            except OSError as exc:
                return exc.errno or errno.EIO
        return 0

    def symlinks_beneath(self, path: GuestPath, max_depth: int) -> Iterator[tuple[int, bytes]]:
        """Every symlink at or beneath ``path``'s final name, never following one:
        (levels below the final name's directory, raw target).  ``path`` itself a symlink:
        (0, target); a directory: its links at depth 1, 2, ... up to ``max_depth``
        (depth-first, names sorted; deeper directories are not entered).

        One directory fd is open at a time (the walk climbs back through ".."), so a deep
        tree costs memory for the names along the current branch, not fds or recursion.
        An entry that vanishes during the walk is skipped.  Close the iterator (or run it
        to the end) to release the fd.
        """
        with self._parent(path) as (pfd, name):
            try:
                st = _sys.stat(name, dir_fd=pfd, follow_symlinks=False)
                if st_mod.S_ISLNK(st.st_mode):
                    yield 0, _sys.readlink(name, dir_fd=pfd)
                    return
                if not st_mod.S_ISDIR(st.st_mode) or max_depth < 1:
                    return
                fd = _sys.open(name, _O_DIR_NOFOLLOW, dir_fd=pfd)
            except OSError as exc:
                raise _raise(exc) from None
        try:
            branch: list[tuple[list[bytes], int]] = []
            names, index, depth = self._sorted_names(fd), 0, 1
            while True:
                if index == len(names):
                    if not branch:
                        return
                    up = _sys.open(b"..", _O_DIR_NOFOLLOW, dir_fd=fd)
                    _sys.close(fd)
                    fd = up
                    (names, index), depth = branch.pop(), depth - 1
                    continue
                entry = names[index]
                index += 1
                try:
                    st = _sys.stat(entry, dir_fd=fd, follow_symlinks=False)
                    if st_mod.S_ISLNK(st.st_mode):
                        target = _sys.readlink(entry, dir_fd=fd)
                    elif st_mod.S_ISDIR(st.st_mode) and depth < max_depth:
                        sub = _sys.open(entry, _O_DIR_NOFOLLOW, dir_fd=fd)
                        _sys.close(fd)
                        fd = sub
                        branch.append((names, index))
                        names, index, depth = self._sorted_names(fd), 0, depth + 1
                        continue
                    else:
                        continue
                except FileNotFoundError:
                    continue
                yield depth, target
        except OSError as exc:
            raise _raise(exc) from None
        finally:
            _sys.close(fd)

    @staticmethod
    def _sorted_names(fd: int) -> list[bytes]:
        return sorted(os.fsencode(n) for n in _sys.listdir(fd))

    def readlink(self, path: GuestPath) -> bytes:
        """The raw target of a symlink (VERR_NOT_SYMLINK for anything else).

        A path the guest ended with its delimiter reaches readlink(2) with the trailing
        slash (RTSymlinkRead): the kernel then follows the final link (confined here) and
        answers EINVAL for a directory (VERR_NOT_SYMLINK) and ENOTDIR for anything else
        (VERR_PATH_NOT_FOUND, IPRT's ENOTDIR); no target is ever returned.
        """
        if path.trailing_delimiter and not path.is_root:
            _sys.close(self._open(path, os.O_PATH, slash=True))
            raise RtError(Status.VERR_NOT_SYMLINK, "a directory is not a symlink")
        with self._parent(path) as (pfd, name):
            try:
                st = _sys.stat(name, dir_fd=pfd, follow_symlinks=False)
                if not st_mod.S_ISLNK(st.st_mode):
                    raise RtError(Status.VERR_NOT_SYMLINK, "not a symlink")
                return _sys.readlink(name, dir_fd=pfd)
            except OSError as exc:
                raise _raise(exc) from None

    def symlink(self, path: GuestPath, target: bytes) -> os.stat_result:
        """Create symlink ``path`` -> ``target`` (text stored as is); returns its lstat.

        A link path the guest ended with its delimiter reaches symlink(2) with the trailing
        slash (RTSymlinkCreate): the kernel creates nothing and answers ENOENT when the name
        is free (VERR_FILE_NOT_FOUND), EEXIST when it is taken (VERR_ALREADY_EXISTS).
        """
        tail = b"/" if path.trailing_delimiter and not path.is_root else b""
        with self._parent(path) as (pfd, name):
            try:
                _sys.symlink(target, name + tail, dir_fd=pfd)
                return _sys.stat(name, dir_fd=pfd, follow_symlinks=False)
            except OSError as exc:
                raise _raise(exc) from None
