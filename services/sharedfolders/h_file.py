"""Handlers of the handle-based functions (reference §5.2.4-.7, .9, .16, .24, .27): CLOSE,
READ, WRITE, LOCK, INFORMATION, FLUSH, SET_FILE_SIZE, COPY_FILE_PART."""

from __future__ import annotations

import ctypes
import os

from hgcmlab.runtime.fs import (
    HostFile,
    RtFs,
    fs_mode_is_valid,
    fs_mode_is_valid_permissions,
    fs_mode_normalize,
)
from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.hgcm import SvcParm, SvcParmType
from hgcmlab.services.sharedfolders.abi import (
    ShflFsObjInfo,
    ShflInfo,
    ShflLock,
    ShflVolInfo,
)
from hgcmlab.services.sharedfolders.context import CallContext
from hgcmlab.services.sharedfolders.handles import Handle, HandleKind
from hgcmlab.services.sharedfolders.objinfo import to_shfl

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
    ctx.state.check_reserved(handle.value)
    found = ctx.state.lookup_handle(ctx.client, root.value, handle.value, ANY_KIND)
    return ctx.state.close_handle(found)


def _open_transfer(ctx: CallContext, *, write: bool) -> tuple[Handle, int]:
    """READ/WRITE's common checks, in VirtualBox's order: reserved handle values, buffer
    size against cb, cb := 0 (what a failure leaves), then the handle access check.
    Returns the handle and the byte count requested."""
    root, handle, _offset, cb, buf = ctx.params
    ctx.state.check_reserved(handle.value)
    count = cb.value
    _check_buffer(count, buf)
    cb.value = 0
    return ctx.state.access_handle(ctx.client, root.value, handle.value, FILE, write=write), count


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
    ctx.state.check_reserved(handle.value)
    found = ctx.state.access_handle(ctx.client, root.value, handle.value, FILE, write=True)
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
    ctx.state.check_reserved(handle.value)
    mode = flags.value & ShflLock.MODE_MASK
    ctx.state.access_handle(ctx.client, root.value, handle.value, FILE, write=False)
    if flags.value & ShflLock.ENTIRE or mode == ShflLock.MODE_MASK:
        raise RtError(Status.VERR_INVALID_PARAMETER, "lock flags")
    return Status.VINF_SUCCESS


def set_file_size(ctx: CallContext) -> int:
    """SET_FILE_SIZE: truncate or extend a file handle (write-class)."""
    root, handle, size = ctx.params
    found = ctx.state.access_handle(ctx.client, root.value, handle.value, FILE, write=True)
    found.obj.set_size(size.value)
    return Status.VINF_SUCCESS


# --- INFORMATION -------------------------------------------------------------------------
# svcCall -> vbsfQueryFSInfo / vbsfSetFSInfo (HostServices/SharedFolders/vbsf.cpp).  Their
# order of checks: the handle must be one of this client's (any root; else
# VERR_INVALID_PARAMETER), of a kind the branch accepts (VERR_INVALID_PARAMETER), the
# buffer at least one SHFLFSOBJINFO (VERR_INVALID_PARAMETER), and only then
# vbsfCheckHandleAccess: another root VERR_INVALID_HANDLE, mapping gone VERR_ACCESS_DENIED,
# read-only mapping VERR_WRITE_PROTECT for SET.

_SPECIAL = RtFs.UNIX_ISUID | RtFs.UNIX_ISGID | RtFs.UNIX_ISTXT


def _file_mode_to_set(fmode: int) -> int | None:
    """vbsfSetFileInfo + RTFileSetMode on a file handle: the mode fchmod gets, or None when
    IPRT refuses it (VERR_INVALID_PARAMETER, which vbsfSetFileInfo ignores).

    A mode with Unix bits gets owner-read and loses setuid/setgid/sticky; then it is
    normalised with the file type.  A Unix mode without type bits and without DOS bits stays
    typeless and is refused (rtFsModeIsValid); a type contradicting DOS DIRECTORY is refused;
    a type contradicting the object is not looked at (fchmod ignores type bits).
    """
    if fmode & RtFs.UNIX_MASK:
        fmode = (fmode | RtFs.UNIX_IRUSR) & ~_SPECIAL
    fmode = fs_mode_normalize(fmode, RtFs.TYPE_FILE)
    return fmode if fs_mode_is_valid(fmode) else None


def _dir_mode_to_set(fmode: int) -> int | None:
    """vbsfSetFileInfo + RTDirSetMode (generic) + RTPathSetMode on a directory handle.

    Unix bits get owner read+execute and lose setuid/setgid/sticky; a DOS-only mode is
    marked DOS DIRECTORY (so it always becomes 0777: read-only is ignored on directories), a
    typeless Unix mode TYPE_DIRECTORY.  Refused (None) only when the type and DOS DIRECTORY
    disagree (rtFsModeIsValidPermissions); a file type without DOS bits is applied.
    """
    if fmode & RtFs.UNIX_MASK:
        fmode = (fmode | RtFs.UNIX_IRUSR | RtFs.UNIX_IXUSR) & ~_SPECIAL
    if not fmode & RtFs.UNIX_MASK:
        fmode |= RtFs.DOS_DIRECTORY
    elif not fmode & RtFs.TYPE_MASK:
        fmode |= RtFs.TYPE_DIRECTORY
    fmode = fs_mode_normalize(fmode, 0)
    return fmode if fs_mode_is_valid_permissions(fmode) else None


def _apply_mode(handle: Handle, fmode: int) -> None:
    """INFORMATION SET FILE's mode change; every failure is silent, as in VirtualBox."""
    target = _dir_mode_to_set(fmode) if handle.kind is HandleKind.DIR else _file_mode_to_set(fmode)
    if target is None:
        return
    try:
        handle.obj.set_mode(target)
    except RtError:
        pass  # "silent failure, because this tends to fail with e.g. windows guest & linux host"


def _info_set_file(handle: Handle, buf: bytearray) -> None:
    """vbsfSetFileInfo's changes: times (only non-zero ones; any non-zero time, change and
    birth time included, enters the branch, but only access/modification are settable),
    then the mode when fMode is non-zero.  Failures are ignored."""
    info = ShflFsObjInfo.from_buffer_copy(bytes(buf[:_INFO_SIZE]))
    times = (info.AccessTime, info.ModificationTime, info.ChangeTime, info.BirthTime)
    if any(times):
        try:
            handle.obj.set_times(info.AccessTime or None, info.ModificationTime or None)
        except RtError:
            pass  # VirtualBox's "temporary hack": a failure to set times is success
    if info.Attr.fMode:
        _apply_mode(handle, info.Attr.fMode)


def _write_info(buf: bytearray, fobj: HostFile) -> None:
    """Write the object's current info (a fresh query) as SHFLFSOBJINFO."""
    buf[:_INFO_SIZE] = bytes(to_shfl(fobj.info()))


def _volume(ctx: CallContext, buf: bytearray, cb_in: int) -> int:
    """vbsfQueryVolumeInfo: buffer size first, then the mapping; RTFsQuerySizes, Serial and
    Properties of the share root (posix fs-posix.cpp values); returns the bytes written."""
    if cb_in < _VOL_SIZE:
        raise RtError(Status.VERR_INVALID_PARAMETER, "volume info buffer")
    mapping = ctx.state.path_mapping(ctx.client, ctx.params[0].value)
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


def _own_handle(ctx: CallContext, value: int, kinds: tuple[HandleKind, ...]) -> None:
    """vbsfQueryHandleType / vbsfQuery*Handle: this client's handle of one of ``kinds``,
    whatever root it was opened under; else VERR_INVALID_PARAMETER."""
    handle = ctx.state.handles.lookup(value, ctx.client.client_id)
    if handle is None or handle.kind not in kinds:
        raise RtError(Status.VERR_INVALID_PARAMETER, f"handle {value:#x}")


def _checked_handle(ctx: CallContext, kinds: tuple[HandleKind, ...], cb_in: int,
                    write: bool) -> Handle:
    """The handle checks of vbsfQueryFileInfo / vbsfSetFileInfo / vbsfSetEndOfFile, in order:
    client's handle of the kind, buffer size, then vbsfCheckHandleAccess."""
    root, handle = ctx.params[0].value, ctx.params[1].value
    _own_handle(ctx, handle, kinds)
    if cb_in < _INFO_SIZE:
        raise RtError(Status.VERR_INVALID_PARAMETER, "info buffer")
    return ctx.state.access_handle(ctx.client, root, handle, kinds, write)


def information(ctx: CallContext) -> int:
    """INFORMATION(root, handle, flags, cb, buffer): GET FILE / VOLUME, SET FILE / SIZE.

    cb larger than the buffer: VERR_INVALID_PARAMETER with cb untouched; otherwise cb is the
    bytes produced on success and 0 on failure.  GET tests FILE before VOLUME, SET tests
    FILE before SIZE; other flags are VERR_INVALID_PARAMETER (for SET only after the handle
    is found to be the client's).  SET FILE and SET SIZE write the object's re-queried info.
    """
    _root, handle, flags, cb, info = ctx.params
    if cb.value > len(info.buffer):
        raise RtError(Status.VERR_INVALID_PARAMETER, "cb exceeds buffer")
    cb_in, cb.value = cb.value, 0
    fl = flags.value
    if fl & ShflInfo.SET:
        _own_handle(ctx, handle.value, ANY_KIND)  # vbsfSetFSInfo, before the flags
        if fl & ShflInfo.FILE:
            found = _checked_handle(ctx, ANY_KIND, cb_in, write=True)
            _info_set_file(found, info.buffer)
        elif fl & ShflInfo.SIZE:
            found = _checked_handle(ctx, FILE, cb_in, write=True)
            size = ShflFsObjInfo.from_buffer_copy(bytes(info.buffer[:_INFO_SIZE])).cbObject
            if size < 0:
                # RTFileSetSize hands ftruncate a negative off_t: EINVAL.
                raise RtError(Status.VERR_INVALID_PARAMETER, "negative size")
            found.obj.set_size(size)
        else:
            raise RtError(Status.VERR_INVALID_PARAMETER, "info flags")
    elif fl & ShflInfo.FILE:
        found = _checked_handle(ctx, ANY_KIND, cb_in, write=False)
    elif fl & ShflInfo.VOLUME:
        cb.value = _volume(ctx, info.buffer, cb_in)
        return Status.VINF_SUCCESS
    else:
        raise RtError(Status.VERR_INVALID_PARAMETER, "info flags")
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
    state = ctx.state
    src = state.access_handle(ctx.client, root_src.value, h_src.value, FILE, write=False)
    dst = state.access_handle(ctx.client, root_dst.value, h_dst.value, FILE, write=True)
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
