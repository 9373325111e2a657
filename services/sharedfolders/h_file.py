"""Handlers of the handle-based functions (reference §5.2.4-.7, .9, .16, .24, .27): CLOSE,
READ, WRITE, LOCK, INFORMATION, FLUSH, SET_FILE_SIZE, COPY_FILE_PART."""

from __future__ import annotations

import ctypes
import os
import stat as st_mod

from runtime.fs import HostFile, RtFs
from runtime.status import RtError, Status
from services.hgcm import SvcParm, SvcParmType
from services.sharedfolders.abi import (
    ShflFsObjInfo,
    ShflInfo,
    ShflLock,
    ShflVolInfo,
)
from services.sharedfolders.context import CallContext
from services.sharedfolders.handles import Handle, HandleKind
from services.sharedfolders.objinfo import to_shfl

FILE = (HandleKind.FILE,)
DIR = (HandleKind.DIR,)
ANY_KIND = (HandleKind.FILE, HandleKind.DIR)
_INFO_SIZE = ctypes.sizeof(ShflFsObjInfo)
_VOL_SIZE = ctypes.sizeof(ShflVolInfo)
_COPY_CHUNK = 1 << 20
_COPY_LIMIT = 1 << 60
_SIGN_BIT = 1 << 63


def _check_buffer(cb: int, buf: SvcParm) -> None:
    """READ/WRITE: cb must fit the buffer; VirtualBox reports VERR_INVALID_HANDLE for a
    pointer (quirk 7) and VERR_OUT_OF_RANGE for a page list."""
    if cb > len(buf.buffer):
        raise RtError(Status.VERR_INVALID_HANDLE if buf.type is SvcParmType.PTR
                      else Status.VERR_OUT_OF_RANGE, "cb exceeds buffer")


def close(ctx: CallContext) -> int:
    """CLOSE: close a file or directory handle of this client (no mapping check)."""
    root, handle = ctx.params
    ctx.service.check_reserved(handle.value)
    found = ctx.service.lookup_handle(ctx.client, root.value, handle.value, ANY_KIND)
    return ctx.service.close_handle(found)


def _open_transfer(ctx: CallContext, *, write: bool) -> tuple[Handle, int]:
    """READ/WRITE's common checks, in VirtualBox's order: reserved handle values, buffer
    size against cb, cb := 0 (what a failure leaves), then the handle access check.
    Returns the handle and the byte count requested."""
    root, handle, _offset, cb, buf = ctx.params
    ctx.service.check_reserved(handle.value)
    count = cb.value
    _check_buffer(count, buf)
    cb.value = 0
    return ctx.service.access_handle(ctx.client, root.value, handle.value, FILE, write=write), count


def read(ctx: CallContext) -> int:
    """READ: positional read; cb := bytes read (0 on failure)."""
    _root, _handle, offset, cb, buf = ctx.params
    found, count = _open_transfer(ctx, write=False)
    if count == 0:
        return Status.VINF_SUCCESS
    # Straight into the parameter's buffer: no copy of a large read is ever made.
    with memoryview(buf.buffer) as whole, whole[:count] as target:
        cb.value = found.obj.read_into(offset.value, target)
    return Status.VINF_SUCCESS


def write(ctx: CallContext) -> int:
    """WRITE: positional (or append) write; offset := new offset, cb := written.

    With a PTR buffer and a non-append handle cb keeps the requested count (quirk 8), except
    after a short write, where it is the count really written.
    """
    _root, _handle, offset, cb, buf = ctx.params
    found, count = _open_transfer(ctx, write=True)
    if count == 0:
        return Status.VINF_SUCCESS
    fobj = found.obj
    # A view of the parameter's buffer, not a copy (released before the buffer is used again).
    with memoryview(buf.buffer) as whole, whole[:count] as data:
        written = fobj.write_at(offset.value, data)
    if fobj.append:
        offset.value = max(fobj.size(), offset.value + written)
        cb.value = written
    else:
        offset.value += written
        # A short write (host error after some bytes) always reports what is on the host.
        cb.value = count if buf.type is SvcParmType.PTR and written == count else written
    return Status.VINF_SUCCESS


def flush(ctx: CallContext) -> int:
    """FLUSH: fsync; write-class (read-only share -> VERR_WRITE_PROTECT, quirk 10)."""
    root, handle = ctx.params
    ctx.service.check_reserved(handle.value)
    found = ctx.service.access_handle(ctx.client, root.value, handle.value, FILE, write=True)
    try:
        found.obj.flush()
    except RtError as err:
        if err.status == Status.VERR_INVALID_PARAMETER:
            return Status.VINF_NOT_SUPPORTED
        raise
    return Status.VINF_SUCCESS


def lock(ctx: CallContext) -> int:
    """LOCK: validated, then a no-op as on every POSIX VirtualBox host (quirk 9)."""
    root, handle, _, _, flags = ctx.params
    ctx.service.check_reserved(handle.value)
    mode = flags.value & ShflLock.MODE_MASK
    ctx.service.access_handle(ctx.client, root.value, handle.value, FILE, write=False)
    if flags.value & ShflLock.ENTIRE or mode == ShflLock.MODE_MASK:
        raise RtError(Status.VERR_INVALID_PARAMETER, "lock flags")
    return Status.VINF_SUCCESS


def set_file_size(ctx: CallContext) -> int:
    """SET_FILE_SIZE: truncate or extend a file handle (write-class)."""
    root, handle, size = ctx.params
    found = ctx.service.access_handle(ctx.client, root.value, handle.value, FILE, write=True)
    found.obj.set_size(size.value)
    return Status.VINF_SUCCESS


# --- INFORMATION -------------------------------------------------------------------------


def _unix_mode_from_dos(fmode: int, is_dir: bool) -> int:
    mode = 0o444 | (0o111 if is_dir or fmode & RtFs.DOS_DIRECTORY else 0)
    if not fmode & RtFs.DOS_READONLY:
        mode |= 0o222
    return mode


def _apply_mode(handle: Handle, fmode: int) -> None:
    """SET FILE mode rules: force owner-read (+exec on dirs), strip setuid/setgid/sticky,
    refuse (silently) a type that contradicts the object."""
    st = handle.obj.stat()
    is_dir = st_mod.S_ISDIR(st.st_mode)
    ftype = fmode & RtFs.TYPE_MASK
    if ftype and ftype != st.st_mode & RtFs.TYPE_MASK:
        return
    if fmode & RtFs.UNIX_MASK:
        fmode |= 0o500 if is_dir else 0o400
        perms = fmode & 0o777
    else:
        perms = _unix_mode_from_dos(fmode, is_dir)
    try:
        handle.obj.set_mode(perms)
    except RtError:
        pass  # VirtualBox ignores a failed mode change


def _info_set_file(ctx: CallContext, handle: Handle, buf: bytearray) -> None:
    info = ShflFsObjInfo.from_buffer_copy(bytes(buf[:_INFO_SIZE]))
    times = (info.AccessTime, info.ModificationTime, info.ChangeTime, info.BirthTime)
    if any(times):
        try:
            handle.obj.set_times(info.AccessTime or None, info.ModificationTime or None)
        except RtError:
            pass  # VirtualBox ignores failures to set times
    if info.Attr.fMode:
        _apply_mode(handle, info.Attr.fMode)


def _write_info(buf: bytearray, fobj: HostFile) -> None:
    buf[:_INFO_SIZE] = bytes(to_shfl(fobj.info()))


def _volume(ctx: CallContext, buf: bytearray, cb_in: int) -> int:
    if cb_in < _VOL_SIZE:
        raise RtError(Status.VERR_INVALID_PARAMETER, "volume info buffer")
    mapping = ctx.service.path_mapping(ctx.client, ctx.params[0].value)
    assert mapping.root is not None
    vfs = mapping.root.statvfs()
    vol = ShflVolInfo()
    vol.ullTotalAllocationBytes = vfs.f_blocks * vfs.f_frsize
    vol.ullAvailableAllocationBytes = vfs.f_bavail * vfs.f_frsize
    vol.ulBytesPerAllocationUnit = vfs.f_frsize & 0xFFFFFFFF
    vol.ulBytesPerSector = 512
    vol.ulSerial = mapping.root.volume_serial()
    props = vol.fsProperties
    props.cbMaxComponent = vfs.f_namemax
    props.fCaseSensitive = 1
    props.fReadOnly = 1 if vfs.f_flag & os.ST_RDONLY else 0
    props.fSupportsUnicode = 1
    buf[:_VOL_SIZE] = bytes(vol)
    return _VOL_SIZE


def information(ctx: CallContext) -> int:
    """INFORMATION: get/set file info, set size, volume info; cb := bytes produced."""
    root, handle, flags, cb, info = ctx.params
    if cb.value > len(info.buffer):
        raise RtError(Status.VERR_INVALID_PARAMETER, "cb exceeds buffer")
    cb_in, cb.value = cb.value, 0
    svc, client, fl = ctx.service, ctx.client, flags.value
    if fl & ShflInfo.SET:
        if fl & ShflInfo.FILE:
            kinds, write = ANY_KIND, True
        elif fl & ShflInfo.SIZE:
            kinds, write = FILE, True
        else:
            raise RtError(Status.VERR_INVALID_PARAMETER, "info flags")
    elif fl & ShflInfo.FILE:
        kinds, write = ANY_KIND, False
    elif fl & ShflInfo.VOLUME:
        cb.value = _volume(ctx, info.buffer, cb_in)
        return Status.VINF_SUCCESS
    else:
        raise RtError(Status.VERR_INVALID_PARAMETER, "info flags")
    svc.lookup_handle(client, root.value, handle.value, kinds, Status.VERR_INVALID_PARAMETER)
    if cb_in < _INFO_SIZE:
        raise RtError(Status.VERR_INVALID_PARAMETER, "info buffer")
    found = svc.access_handle(client, root.value, handle.value, kinds, write,
                              Status.VERR_INVALID_PARAMETER)
    if fl & ShflInfo.SET and fl & ShflInfo.FILE:
        _info_set_file(ctx, found, info.buffer)
    elif fl & ShflInfo.SET:
        size = ShflFsObjInfo.from_buffer_copy(bytes(info.buffer[:_INFO_SIZE])).cbObject
        if size < 0:
            raise RtError(Status.VERR_INVALID_PARAMETER, "negative size")
        found.obj.set_size(size)
    _write_info(info.buffer, found.obj)
    cb.value = _INFO_SIZE
    return Status.VINF_SUCCESS


# --- COPY_FILE_PART ----------------------------------------------------------------------


def copy_file_part(ctx: CallContext) -> int:
    """COPY_FILE_PART: copy up to cb bytes between two file handles at their own offsets,
    never more than the source held when the call started."""
    root_src, h_src, off_src, root_dst, h_dst, off_dst, cb, flags = ctx.params
    if off_src.value & _SIGN_BIT or off_dst.value & _SIGN_BIT:
        raise RtError(Status.VERR_NEGATIVE_SEEK, "negative offset")
    if cb.value >= _COPY_LIMIT:
        raise RtError(Status.VERR_OUT_OF_RANGE, "cb too large")
    if flags.value:
        raise RtError(Status.VERR_INVALID_FLAGS, "flags")
    remaining, cb.value = cb.value, 0
    svc = ctx.service
    src = svc.access_handle(ctx.client, root_src.value, h_src.value, FILE, write=False)
    dst = svc.access_handle(ctx.client, root_dst.value, h_dst.value, FILE, write=True)
    # Bounded by the source's size when the call starts: copying a file into itself ahead
    # of the read position would otherwise never reach EOF (one call filling the disk).
    remaining = min(remaining, max(0, src.obj.size() - off_src.value))
    copied = 0
    while remaining:
        data = src.obj.read_at(off_src.value + copied, min(remaining, _COPY_CHUNK))
        if not data:
            break
        written = dst.obj.write_at(off_dst.value + copied, data)
        copied += written
        remaining -= written
        if written < len(data):
            break
    cb.value = copied
    return Status.VINF_SUCCESS
